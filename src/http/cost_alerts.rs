//! `/v2/cost_alerts` with their events (Vantage's): a report's cost over an interval against the one before,
//! in total or per group. The rules are in `model::cost_alert` and `service::cost_alerts`; the pass that
//! judges them is `service::alerts::cost_alerts`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::alert_deliveries::channels_for;
use super::auth::Caller;
use super::budgets::InWorkspace;
use super::extract::{Json, Query};
use super::pagination::{Links, Paging};
use super::{timestamp, AppState, Result};
use crate::model::cost_alert::{CostAlert, CostAlertEvent, CostAlertFields};
use crate::service::{cost_alerts, records};
use crate::store::wing::CostAlerts;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(events))
        .routes(routes!(event))
}

/// An exact amount as a JSON number (serde_json keeps its digits).
fn number(a: crate::model::amount::Amount) -> serde_json::Value {
    serde_json::from_str(&a.to_string()).expect("an amount is a JSON number")
}

#[derive(Serialize, utoipa::ToSchema)]
struct CostAlertBody {
    token: String,
    title: String,
    email_recipients: Vec<String>,
    slack_channels: Vec<String>,
    teams_channels: Vec<String>,
    created_at: String,
    updated_at: String,
    workspace_token: String,
    interval: &'static str,
    threshold: serde_json::Value,
    unit_type: &'static str,
    minimum_threshold: Option<serde_json::Value>,
    report_tokens: Vec<String>,
}

fn body(a: CostAlert, caller: &crate::model::account::Principal) -> CostAlertBody {
    let d = a.definition;
    CostAlertBody {
        token: a.token.to_string(),
        title: a.title,
        email_recipients: d.email_recipients,
        slack_channels: channels_for(caller, d.slack_channels),
        teams_channels: channels_for(caller, d.teams_channels),
        created_at: timestamp(a.created_at),
        updated_at: timestamp(a.updated_at),
        workspace_token: a.workspace_token,
        interval: d.interval.as_str(),
        threshold: number(d.threshold),
        unit_type: d.unit_type.as_str(),
        minimum_threshold: d.minimum_threshold.map(number),
        report_tokens: d.report_tokens,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct CostAlertsBody {
    cost_alerts: Vec<CostAlertBody>,
    links: Links,
}

#[utoipa::path(get, path = "/cost_alerts", tag = "cost_alerts", operation_id = "cost_alerts_list", params(("workspace_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = CostAlertsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<InWorkspace>,
) -> Result<axum::Json<CostAlertsBody>> {
    let found = records::list::<CostAlerts>(
        state.store.as_ref(),
        &caller.account_token,
        params.workspace_token.as_deref(),
        paging.page,
    )
    .await?;
    let cost_alerts = found.items.into_iter().map(|a| body(a, &caller)).collect();
    Ok(axum::Json(CostAlertsBody { cost_alerts, links: paging.links(found.total) }))
}

#[utoipa::path(post, path = "/cost_alerts", tag = "cost_alerts", operation_id = "cost_alerts_create", request_body = CostAlertFields, responses((status = 201, description = "Created", body = CostAlertBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<CostAlertFields>,
) -> Result<(StatusCode, axum::Json<CostAlertBody>)> {
    let created = cost_alerts::create(state.store.as_ref(), &caller.account_token, fields).await?;
    state.alert_wake.evaluate.notify_one();
    Ok((StatusCode::CREATED, axum::Json(body(created, &caller))))
}

#[utoipa::path(get, path = "/cost_alerts/{cost_alert_token}", tag = "cost_alerts", operation_id = "cost_alerts_show", params(("cost_alert_token" = String, Path)), responses((status = 200, description = "OK", body = CostAlertBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<CostAlertBody>> {
    let found = records::get::<CostAlerts>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(body(found, &caller)))
}

#[utoipa::path(put, path = "/cost_alerts/{cost_alert_token}", tag = "cost_alerts", operation_id = "cost_alerts_update", request_body = CostAlertFields, params(("cost_alert_token" = String, Path)), responses((status = 200, description = "OK", body = CostAlertBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<CostAlertFields>,
) -> Result<axum::Json<CostAlertBody>> {
    let updated = cost_alerts::update(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    state.alert_wake.evaluate.notify_one();
    Ok(axum::Json(body(updated, &caller)))
}

#[utoipa::path(delete, path = "/cost_alerts/{cost_alert_token}", tag = "cost_alerts", operation_id = "cost_alerts_remove", params(("cost_alert_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    cost_alerts::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct CostAlertEventBody {
    token: String,
    created_at: String,
    triggered_at: String,
    description: String,
    alert_type: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    report_token: String,
    alert_token: String,
}

fn event_body(e: CostAlertEvent) -> CostAlertEventBody {
    CostAlertEventBody {
        token: e.token.to_string(),
        created_at: timestamp(e.created_at),
        triggered_at: timestamp(e.created_at),
        description: e.definition.description,
        alert_type: "cost_alert",
        metadata: e.definition.metadata,
        report_token: e.definition.report_token,
        alert_token: e.definition.alert_token,
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct CostAlertEventsBody {
    cost_alert_events: Vec<CostAlertEventBody>,
    links: Links,
}

#[derive(Debug, Default, Deserialize)]
struct EventParams {
    report_token: Option<String>,
}

#[utoipa::path(get, path = "/cost_alerts/{cost_alert_token}/events", tag = "cost_alerts", operation_id = "cost_alert_events_list", params(("cost_alert_token" = String, Path), ("report_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = CostAlertEventsBody), super::openapi::ApiErrors))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    paging: Paging,
    Query(params): Query<EventParams>,
) -> Result<axum::Json<CostAlertEventsBody>> {
    let report = params.report_token.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let found = cost_alerts::events(state.store.as_ref(), &caller.account_token, &token, report, paging.page).await?;
    let cost_alert_events = found.items.into_iter().map(event_body).collect();
    Ok(axum::Json(CostAlertEventsBody { cost_alert_events, links: paging.links(found.total) }))
}

#[utoipa::path(get, path = "/cost_alerts/{cost_alert_token}/events/{event_token}", tag = "cost_alerts", operation_id = "cost_alert_events_show", params(("cost_alert_token" = String, Path), ("event_token" = String, Path)), responses((status = 200, description = "OK", body = CostAlertEventBody), super::openapi::ApiErrors))]
async fn event(
    State(state): State<AppState>,
    caller: Caller,
    Path((alert, event)): Path<(String, String)>,
) -> Result<axum::Json<CostAlertEventBody>> {
    let found = cost_alerts::event(state.store.as_ref(), &caller.account_token, &alert, &event).await?;
    Ok(axum::Json(event_body(found)))
}
