//! `/v2/billing_rules`: list, create, get, update (PUT; `type` is immutable), delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::Json;
use super::pagination::{Links, Paging};
use super::{path_token, timestamp, ApiError, AppState, Result};
use crate::model::billing_rule::RuleFields;
use crate::model::token::RuleToken;
use crate::service::billing_rules;
use crate::store::BillingRuleRow;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

/// A billing rule as the API shows it: null fields are omitted, amounts are decimal strings.
#[derive(Serialize, utoipa::ToSchema)]
struct BillingRuleBody {
    #[schema(value_type = String)]
    token: RuleToken,
    title: String,
    #[serde(rename = "type")]
    rule_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date: Option<String>,
    apply_to_all: bool,
    created_by_token: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percentage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql_query: Option<String>,
}

impl From<BillingRuleRow> for BillingRuleBody {
    fn from(r: BillingRuleRow) -> Self {
        let c = r.columns;
        let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string());
        BillingRuleBody {
            token: r.token,
            title: c.title,
            rule_type: c.rule_type.as_str().to_string(),
            start_date: date(c.start_date),
            end_date: date(c.end_date),
            apply_to_all: c.apply_to_all,
            created_by_token: r.created_by_token,
            created_at: timestamp(r.created_at),
            service: c.service,
            category: c.category,
            percentage: c.percentage,
            charge_type: c.charge_type,
            sub_category: c.sub_category,
            start_period: date(c.start_period),
            amount: c.amount,
            sql_query: c.sql_query,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct BillingRulesBody {
    billing_rules: Vec<BillingRuleBody>,
    links: Links,
}

fn not_found() -> ApiError {
    ApiError::NotFound("billing rule not found".into())
}

#[utoipa::path(get, path = "/billing_rules", tag = "billing_rules", operation_id = "billing_rules_list", responses((status = 200, description = "OK", body = BillingRulesBody), super::openapi::ApiErrors))]
async fn list(State(state): State<AppState>, caller: Caller, paging: Paging) -> Result<axum::Json<BillingRulesBody>> {
    let page = paging.page;
    let found = billing_rules::list(state.store.as_ref(), &caller.account_token, page).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(BillingRulesBody { billing_rules: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/billing_rules", tag = "billing_rules", operation_id = "billing_rules_create", request_body = RuleFields, responses((status = 201, description = "Created", body = BillingRuleBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<RuleFields>,
) -> Result<(StatusCode, axum::Json<BillingRuleBody>)> {
    let created =
        billing_rules::create(state.store.as_ref(), &caller.account_token, &caller.user_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/billing_rules/{billing_rule_token}", tag = "billing_rules", operation_id = "billing_rules_show", params(("billing_rule_token" = String, Path)), responses((status = 200, description = "OK", body = BillingRuleBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<BillingRuleBody>> {
    let token = path_token(&text, RuleToken::parse, not_found)?;
    Ok(axum::Json(billing_rules::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

#[utoipa::path(put, path = "/billing_rules/{billing_rule_token}", tag = "billing_rules", operation_id = "billing_rules_update", request_body = RuleFields, params(("billing_rule_token" = String, Path)), responses((status = 200, description = "OK", body = BillingRuleBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<RuleFields>,
) -> Result<axum::Json<BillingRuleBody>> {
    let token = path_token(&text, RuleToken::parse, not_found)?;
    let updated = billing_rules::update(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(updated.into()))
}

#[utoipa::path(delete, path = "/billing_rules/{billing_rule_token}", tag = "billing_rules", operation_id = "billing_rules_remove", params(("billing_rule_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<StatusCode> {
    let token = path_token(&text, RuleToken::parse, not_found)?;
    billing_rules::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
