//! `/v2/budget_alerts` (Vantage's): alerts on budgets' periods, by threshold, on actuals or forecasts. The
//! rules are in `model::budget` and `service::budgets`; the pass that judges them is
//! `service::alerts::budget_alerts`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::alert_deliveries::channels_for;
use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, Paging};
use super::{timestamp, AppState, Result};
use crate::model::budget::{BudgetAlert, BudgetAlertFields};
use crate::service::{budgets, records};
use crate::store::wing::BudgetAlerts;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetAlertBody {
    token: String,
    budget_tokens: Vec<String>,
    created_at: String,
    workspace_token: String,
    user_token: Option<String>,
    user_tokens: Vec<String>,
    duration_in_days: Option<u32>,
    threshold: u32,
    period_to_track: &'static str,
    integration_provider: Option<String>,
    recipient_channels: Vec<String>,
    /// costd's: `actual` or `forecast`.
    based_on: &'static str,
}

fn body(a: BudgetAlert, caller: &crate::model::account::Principal) -> BudgetAlertBody {
    let d = a.definition;
    BudgetAlertBody {
        token: a.token.to_string(),
        budget_tokens: d.budget_tokens,
        created_at: timestamp(a.created_at),
        workspace_token: a.workspace_token,
        user_token: None,
        user_tokens: d.user_tokens,
        duration_in_days: d.duration_in_days,
        threshold: d.threshold,
        period_to_track: d.period_to_track.as_str(),
        integration_provider: None,
        recipient_channels: channels_for(caller, d.recipient_channels),
        based_on: d.based_on.as_str(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetAlertsBody {
    budget_alerts: Vec<BudgetAlertBody>,
    links: Links,
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    workspace_token: Option<String>,
    budget_token: Option<String>,
}

#[utoipa::path(get, path = "/budget_alerts", tag = "budget_alerts", operation_id = "budget_alerts_list", params(("workspace_token" = Option<String>, Query), ("budget_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = BudgetAlertsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<BudgetAlertsBody>> {
    let found = budgets::list_alerts(
        state.store.as_ref(),
        &caller.account_token,
        params.workspace_token.as_deref(),
        params.budget_token.as_deref(),
        paging.page,
    )
    .await?;
    let budget_alerts = found.items.into_iter().map(|a| body(a, &caller)).collect();
    Ok(axum::Json(BudgetAlertsBody { budget_alerts, links: paging.links(found.total) }))
}

#[utoipa::path(post, path = "/budget_alerts", tag = "budget_alerts", operation_id = "budget_alerts_create", request_body = BudgetAlertFields, responses((status = 201, description = "Created", body = BudgetAlertBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<BudgetAlertFields>,
) -> Result<(StatusCode, axum::Json<BudgetAlertBody>)> {
    let created = budgets::create_alert(state.store.as_ref(), &caller.account_token, fields).await?;
    // A new alert may fire on the costs already there.
    state.alert_wake.evaluate.notify_one();
    Ok((StatusCode::CREATED, axum::Json(body(created, &caller))))
}

#[utoipa::path(get, path = "/budget_alerts/{budget_alert_token}", tag = "budget_alerts", operation_id = "budget_alerts_show", params(("budget_alert_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetAlertBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<BudgetAlertBody>> {
    let found = records::get::<BudgetAlerts>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(body(found, &caller)))
}

#[utoipa::path(put, path = "/budget_alerts/{budget_alert_token}", tag = "budget_alerts", operation_id = "budget_alerts_update", request_body = BudgetAlertFields, params(("budget_alert_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetAlertBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<BudgetAlertFields>,
) -> Result<axum::Json<BudgetAlertBody>> {
    let updated = budgets::update_alert(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    state.alert_wake.evaluate.notify_one();
    Ok(axum::Json(body(updated, &caller)))
}

#[utoipa::path(delete, path = "/budget_alerts/{budget_alert_token}", tag = "budget_alerts", operation_id = "budget_alerts_remove", params(("budget_alert_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    records::delete::<BudgetAlerts>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
