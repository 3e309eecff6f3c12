//! `/v2/managed_accounts`: an MSP account's customers, each seeing some of the MSP's integrations with
//! some of its billing rules applied, in order.

use crate::service::ServiceError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::billing_profiles::{BillingInformationBody, BusinessInformationBody};
use super::extract::Json;
use super::pagination::{Links, Paging};
use super::{path_token, AppState, Result};
use crate::model::managed_account::ManagedAccountFields;
use crate::model::token::{AccountToken, BillingProfileToken, IntegrationToken, RuleToken};
use crate::service::managed_accounts::{self as managed, ManagedView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ManagedAccountBody {
    #[schema(value_type = String)]
    token: AccountToken,
    name: String,
    contact_email: String,
    #[schema(value_type = Option<String>)]
    parent_account_token: Option<AccountToken>,
    #[schema(value_type = Vec<String>)]
    access_credential_tokens: Vec<IntegrationToken>,
    /// The rules that run, in order: the listed ones plus the parent's apply_to_all rules.
    #[schema(value_type = Vec<String>)]
    billing_rule_tokens: Vec<RuleToken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    msp_billing_profile_token: Option<BillingProfileToken>,
    payment_terms_days: u32,
    /// Always false: costd invoices the integrations the MSP assigns (true is refused, never ignored).
    include_managed_account_integrations: bool,
    billing_information_attributes: BillingInformationBody,
    business_information_attributes: BusinessInformationBody,
    /// costd's: the tag key its invoices' lines are grouped by (null: by provider).
    invoice_tag_key: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ManagedAccountsBody {
    managed_accounts: Vec<ManagedAccountBody>,
    links: Links,
}

impl From<ManagedView> for ManagedAccountBody {
    fn from(v: ManagedView) -> Self {
        let m = v.account;
        let owner = m.account.token.to_string();
        let invoicing = m.invoicing;
        ManagedAccountBody {
            msp_billing_profile_token: invoicing.billing_profile,
            payment_terms_days: invoicing.payment_terms_days,
            include_managed_account_integrations: false,
            billing_information_attributes: BillingInformationBody::new(&owner, invoicing.billing),
            business_information_attributes: BusinessInformationBody::new(&owner, invoicing.custom_fields),
            invoice_tag_key: invoicing.tag_key,
            token: m.account.token,
            name: m.account.name,
            contact_email: m.contact_email,
            parent_account_token: m.account.parent_account_token,
            access_credential_tokens: m.integration_tokens,
            billing_rule_tokens: v.effective_rule_tokens,
            email_domain: m.email_domain,
        }
    }
}

#[utoipa::path(get, path = "/managed_accounts", tag = "managed_accounts", operation_id = "managed_accounts_list", responses((status = 200, description = "OK", body = ManagedAccountsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
) -> Result<axum::Json<ManagedAccountsBody>> {
    let page = paging.page;
    let found = managed::list(state.store.as_ref(), &caller.account_token, page).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(ManagedAccountsBody { managed_accounts: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/managed_accounts", tag = "managed_accounts", operation_id = "managed_accounts_create", request_body = ManagedAccountFields, responses((status = 201, description = "Created", body = ManagedAccountBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<ManagedAccountFields>,
) -> Result<(StatusCode, axum::Json<ManagedAccountBody>)> {
    let created = managed::create(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/managed_accounts/{managed_account_token}", tag = "managed_accounts", operation_id = "managed_accounts_show", params(("managed_account_token" = String, Path)), responses((status = 200, description = "OK", body = ManagedAccountBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<ManagedAccountBody>> {
    let token = path_token(&text, AccountToken::parse, || ServiceError::NotFound("managed account").into())?;
    Ok(axum::Json(managed::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

#[utoipa::path(put, path = "/managed_accounts/{managed_account_token}", tag = "managed_accounts", operation_id = "managed_accounts_update", request_body = ManagedAccountFields, params(("managed_account_token" = String, Path)), responses((status = 200, description = "OK", body = ManagedAccountBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<ManagedAccountFields>,
) -> Result<axum::Json<ManagedAccountBody>> {
    let token = path_token(&text, AccountToken::parse, || ServiceError::NotFound("managed account").into())?;
    Ok(axum::Json(managed::update(state.store.as_ref(), &caller.account_token, &token, fields).await?.into()))
}

#[utoipa::path(delete, path = "/managed_accounts/{managed_account_token}", tag = "managed_accounts", operation_id = "managed_accounts_remove", params(("managed_account_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<StatusCode> {
    let token = path_token(&text, AccountToken::parse, || ServiceError::NotFound("managed account").into())?;
    managed::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
