//! `/v2/managed_accounts`: an MSP account's customers, each seeing some of the MSP's integrations with
//! some of its billing rules applied, in order.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{base_url, Links, ListParams, MAX_LIMIT};
use super::{ApiError, AppState, Result};
use crate::model::billing_rule::{check_rule_order, group_of, RuleGroup};
use crate::model::managed_account::ManagedAccountFields;
use crate::service::costs::effective_rules_of;
use crate::store::{ManagedAccount, ManagedAccountSettings, Store};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/managed_accounts", get(list).post(create))
        .route("/managed_accounts/{managed_account_token}", get(show).put(update).delete(remove))
}

#[derive(Serialize)]
struct ManagedAccountBody {
    token: String,
    name: String,
    contact_email: String,
    parent_account_token: String,
    access_credential_tokens: Vec<String>,
    /// The rules that run, in order: the listed ones plus the parent's apply_to_all rules.
    billing_rule_tokens: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_domain: Option<String>,
}

#[derive(Serialize)]
struct ManagedAccountsBody {
    managed_accounts: Vec<ManagedAccountBody>,
    links: Links,
}

fn not_found() -> ApiError {
    ApiError::NotFound("managed account not found".into())
}

/// The groups of the parent's rules named in `tokens`; unknown tokens are 400s naming them.
async fn rule_groups(store: &dyn Store, parent: &str, tokens: &[String]) -> Result<Vec<(String, RuleGroup)>> {
    let mut groups = Vec::with_capacity(tokens.len());
    let mut unknown = Vec::new();
    for t in tokens {
        match store.get_billing_rule(parent, t).await? {
            Some(rule) => groups.push((t.clone(), group_of(&rule.columns))),
            None => unknown.push(format!("billing_rule_tokens: no billing rule {t} in this account")),
        }
    }
    if unknown.is_empty() {
        Ok(groups)
    } else {
        Err(ApiError::BadRequest(unknown))
    }
}

async fn body(store: &dyn Store, m: ManagedAccount) -> Result<ManagedAccountBody> {
    let parent = m.account.parent_account_token.clone().unwrap_or_default();
    let billing_rule_tokens =
        effective_rules_of(store, &parent, &m.rule_tokens).await?.into_iter().map(|r| r.token).collect();
    Ok(ManagedAccountBody {
        token: m.account.token,
        name: m.account.name,
        contact_email: m.contact_email,
        parent_account_token: parent,
        access_credential_tokens: m.integration_tokens,
        billing_rule_tokens,
        email_domain: m.email_domain,
    })
}

/// Checks that the caller may manage accounts and that every named integration and rule is its own,
/// with the rules in group order.
async fn validate(state: &AppState, parent: &str, settings: &ManagedAccountSettings) -> Result<()> {
    let caller =
        state.store.get_account(parent).await?.ok_or_else(|| anyhow::anyhow!("the caller's account vanished"))?;
    if caller.parent_account_token.is_some() {
        return Err(ApiError::Forbidden("a managed account cannot have managed accounts".into()));
    }
    let mut errors = Vec::new();
    for t in &settings.integration_tokens {
        if state.store.get_integration(parent, t).await?.is_none() {
            errors.push(format!("access_credential_tokens: no integration {t} in this account"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors));
    }
    let groups = rule_groups(state.store.as_ref(), parent, &settings.rule_tokens).await?;
    check_rule_order(&groups).map_err(ApiError::bad_request)
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<ManagedAccountsBody>> {
    let page = params.page_request(MAX_LIMIT)?;
    let found = state.store.list_managed_accounts(&caller.account_token, page).await?;
    let mut items = Vec::with_capacity(found.items.len());
    for m in found.items {
        items.push(body(state.store.as_ref(), m).await?);
    }
    let links = Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, page, found.total);
    Ok(axum::Json(ManagedAccountsBody { managed_accounts: items, links }))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<ManagedAccountFields>,
) -> Result<(StatusCode, axum::Json<ManagedAccountBody>)> {
    let settings = ManagedAccountSettings::try_from(fields).map_err(ApiError::BadRequest)?;
    validate(&state, &caller.account_token, &settings).await?;
    let created = state.store.create_managed_account(&caller.account_token, &settings).await?;
    Ok((StatusCode::CREATED, axum::Json(body(state.store.as_ref(), created).await?)))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<ManagedAccountBody>> {
    let found = state.store.get_managed_account(&caller.account_token, &token).await?.ok_or_else(not_found)?;
    Ok(axum::Json(body(state.store.as_ref(), found).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<ManagedAccountFields>,
) -> Result<axum::Json<ManagedAccountBody>> {
    let current = state.store.get_managed_account(&caller.account_token, &token).await?.ok_or_else(not_found)?;
    let current_fields = ManagedAccountFields::from(ManagedAccountSettings {
        name: current.account.name,
        contact_email: current.contact_email,
        email_domain: current.email_domain,
        integration_tokens: current.integration_tokens,
        rule_tokens: current.rule_tokens,
    });
    let settings = ManagedAccountSettings::try_from(current_fields.overlay(fields)).map_err(ApiError::BadRequest)?;
    validate(&state, &caller.account_token, &settings).await?;
    let updated =
        state.store.update_managed_account(&caller.account_token, &token, &settings).await?.ok_or_else(not_found)?;
    Ok(axum::Json(body(state.store.as_ref(), updated).await?))
}

async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    if state.store.delete_managed_account(&caller.account_token, &token).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
