//! `/v2/budgets`, `/v2/budget_alerts` and `/v2/cost_alerts` with their events (Vantage's), and costd's own `/v2/alert_deliveries` (the alerts'
//! outbox: every message, its status, attempts and last error) and `/v2/webhook_signing_secret` (what a
//! receiver checks `X-Costd-Signature` with). The rules are in `model::budget`, `service::budgets` and
//! `service::alerts`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::cost_reports::list_objects;
use super::extract::{Json, Query};
use super::pagination::{base_url, Links, ListParams, MAX_LIMIT};
use super::{timestamp, ApiError, AppState, Result};
use crate::model::budget::{BudgetAlertFields, BudgetFields, BudgetPeriod};
use crate::model::cost_alert::{CostAlertFields, NotificationFields};
use crate::model::report::ViewKind;
use crate::service::budgets;
use crate::service::reports;
use crate::service::{anomalies, cost_alerts};
use crate::store::ReportObject;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(list_alerts, create_alert))
        .routes(routes!(show_alert, update_alert, remove_alert))
        .routes(routes!(list_cost_alerts, create_cost_alert))
        .routes(routes!(show_cost_alert, update_cost_alert, remove_cost_alert))
        .routes(routes!(cost_alert_events))
        .routes(routes!(cost_alert_event))
        .routes(routes!(list_notifications, create_notification))
        .routes(routes!(show_notification, update_notification, remove_notification))
        .routes(routes!(list_anomaly_notifications, create_anomaly_notification))
        .routes(routes!(show_anomaly_notification, update_anomaly_notification, remove_anomaly_notification))
        .routes(routes!(list_anomaly_alerts))
        .routes(routes!(show_anomaly_alert, update_anomaly_alert))
        .routes(routes!(deliveries))
        .routes(routes!(signing_secret))
}

/// A day as Vantage writes a budget's dates.
fn day(d: chrono::NaiveDate) -> String {
    format!("{d}T00:00:00Z")
}

#[derive(Serialize, utoipa::ToSchema)]
struct PeriodBody {
    start_at: String,
    end_at: String,
    amount: String,
}

impl From<&BudgetPeriod> for PeriodBody {
    fn from(p: &BudgetPeriod) -> Self {
        PeriodBody { start_at: day(p.start), end_at: day(p.end), amount: p.amount.to_string() }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct PerformanceBody {
    date: String,
    actual: String,
    amount: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetBody {
    token: String,
    name: String,
    workspace_token: String,
    user_token: Option<String>,
    created_by_token: Option<String>,
    cost_report_token: Option<String>,
    created_at: String,
    budget_alert_tokens: Vec<String>,
    child_budget_tokens: Vec<String>,
    periods: Vec<PeriodBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    performance: Option<Vec<PerformanceBody>>,
}

async fn budget_body(
    state: &AppState,
    caller: &Caller,
    b: ReportObject,
    alerts: &std::collections::BTreeMap<String, Vec<String>>,
    with_performance: bool,
) -> Result<BudgetBody> {
    let definition = budgets::budget_definition(&b)?;
    let performance = if with_performance {
        let p =
            budgets::performance(&state.costs_context(), &caller.account_token, &b, (state.today)(), |_| true).await?;
        Some(
            p.periods
                .iter()
                .map(|p| PerformanceBody {
                    date: day(p.period.start),
                    actual: p.actual.to_string(),
                    amount: p.period.amount.to_string(),
                })
                .collect(),
        )
    } else {
        None
    };
    let periods = budgets::periods_of(state.store.as_ref(), &caller.account_token, &b).await?;
    Ok(BudgetBody {
        budget_alert_tokens: alerts.get(&b.token).cloned().unwrap_or_default(),
        token: b.token,
        name: b.title,
        workspace_token: b.workspace_token,
        user_token: None,
        created_by_token: None,
        cost_report_token: definition.cost_report_token,
        created_at: timestamp(b.created_at),
        child_budget_tokens: definition.child_budget_tokens,
        periods: periods.iter().map(Into::into).collect(),
        performance,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetsBody {
    budgets: Vec<BudgetBody>,
    links: Links,
}

#[utoipa::path(get, path = "/budgets", tag = "budgets", operation_id = "budgets_list", responses((status = 200, description = "OK", body = BudgetsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<BudgetsBody>> {
    let (items, links) = list_objects(&state, &caller, ViewKind::Budget, &params, &uri, &headers).await?;
    let alerts = budgets::alerts_by_budget(state.store.as_ref(), &caller.account_token).await?;
    let mut out = Vec::with_capacity(items.len());
    for b in items {
        out.push(budget_body(&state, &caller, b, &alerts, false).await?);
    }
    Ok(axum::Json(BudgetsBody { budgets: out, links }))
}

#[utoipa::path(post, path = "/budgets", tag = "budgets", operation_id = "budgets_create", request_body = BudgetFields, responses((status = 201, description = "Created", body = BudgetBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<BudgetFields>,
) -> Result<(StatusCode, axum::Json<BudgetBody>)> {
    let created = budgets::create(state.store.as_ref(), &caller.account_token, fields).await?;
    let body = budget_body(&state, &caller, created, &Default::default(), false).await?;
    Ok((StatusCode::CREATED, axum::Json(body)))
}

#[derive(Debug, Default, Deserialize)]
struct ShowParams {
    /// `true`/`false` (any case: Python clients send `True`), or 1/0.
    include_performance: Option<String>,
}

#[utoipa::path(get, path = "/budgets/{budget_token}", tag = "budgets", operation_id = "budgets_show", params(("budget_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Query(params): Query<ShowParams>,
) -> Result<axum::Json<BudgetBody>> {
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::Budget, &token).await?;
    let alerts = budgets::alerts_by_budget(state.store.as_ref(), &caller.account_token).await?;
    let with_performance = match params.include_performance.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" || v == "1" => true,
        Some(v) if v == "false" || v == "0" || v.is_empty() => false,
        Some(v) => return Err(ApiError::bad_request(format!("include_performance must be true or false, got {v:?}"))),
    };
    let body = budget_body(&state, &caller, found, &alerts, with_performance).await?;
    Ok(axum::Json(body))
}

#[utoipa::path(put, path = "/budgets/{budget_token}", tag = "budgets", operation_id = "budgets_update", request_body = BudgetFields, params(("budget_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<BudgetFields>,
) -> Result<axum::Json<BudgetBody>> {
    let updated = budgets::update(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    let alerts = budgets::alerts_by_budget(state.store.as_ref(), &caller.account_token).await?;
    Ok(axum::Json(budget_body(&state, &caller, updated, &alerts, false).await?))
}

#[utoipa::path(delete, path = "/budgets/{budget_token}", tag = "budgets", operation_id = "budgets_remove", params(("budget_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    budgets::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
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

fn alert_body(a: ReportObject, caller: &crate::model::account::Principal) -> Result<BudgetAlertBody> {
    let d = budgets::alert_definition(&a)?;
    Ok(BudgetAlertBody {
        token: a.token,
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
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetAlertsBody {
    budget_alerts: Vec<BudgetAlertBody>,
    links: Links,
}

#[derive(Debug, Default, Deserialize)]
struct AlertListParams {
    page: Option<u32>,
    limit: Option<u32>,
    workspace_token: Option<String>,
    budget_token: Option<String>,
}

#[utoipa::path(get, path = "/budget_alerts", tag = "budgets", operation_id = "budget_alerts_list", responses((status = 200, description = "OK", body = BudgetAlertsBody), super::openapi::ApiErrors))]
async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<AlertListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<BudgetAlertsBody>> {
    let list = ListParams {
        page: params.page,
        limit: params.limit,
        workspace_token: params.workspace_token.clone(),
        ..Default::default()
    };
    let budget = params.budget_token.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let (items, links) = match budget {
        None => list_objects(&state, &caller, ViewKind::BudgetAlert, &list, &uri, &headers).await?,
        // The alerts watching one budget: few, so read whole and paged here.
        Some(budget) => {
            let page = list.page_request(MAX_LIMIT)?;
            let mut all = budgets::all(state.store.as_ref(), &caller.account_token, ViewKind::BudgetAlert).await?;
            all.retain(|a| {
                budgets::alert_definition(a).is_ok_and(|d| d.budget_tokens.iter().any(|b| b == budget))
                    && list.workspace_token.as_deref().is_none_or(|w| w == a.workspace_token)
            });
            let total = all.len() as i64;
            let skip = (page.page as usize - 1).saturating_mul(page.limit as usize);
            let items = all.into_iter().skip(skip).take(page.limit as usize).collect();
            (items, Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, page, total))
        }
    };
    let budget_alerts = items.into_iter().map(|o| alert_body(o, &caller)).collect::<Result<_>>()?;
    Ok(axum::Json(BudgetAlertsBody { budget_alerts, links }))
}

#[utoipa::path(post, path = "/budget_alerts", tag = "budgets", operation_id = "budget_alerts_create", request_body = BudgetAlertFields, responses((status = 201, description = "Created", body = BudgetAlertBody), super::openapi::ApiErrors))]
async fn create_alert(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<BudgetAlertFields>,
) -> Result<(StatusCode, axum::Json<BudgetAlertBody>)> {
    let created = budgets::create_alert(state.store.as_ref(), &caller.account_token, fields).await?;
    // A new alert may fire on the costs already there.
    state.alert_wake.evaluate.notify_one();
    Ok((StatusCode::CREATED, axum::Json(alert_body(created, &caller)?)))
}

#[utoipa::path(get, path = "/budget_alerts/{budget_alert_token}", tag = "budgets", operation_id = "budget_alerts_show", params(("budget_alert_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetAlertBody), super::openapi::ApiErrors))]
async fn show_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<BudgetAlertBody>> {
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::BudgetAlert, &token).await?;
    Ok(axum::Json(alert_body(found, &caller)?))
}

#[utoipa::path(put, path = "/budget_alerts/{budget_alert_token}", tag = "budgets", operation_id = "budget_alerts_update", request_body = BudgetAlertFields, params(("budget_alert_token" = String, Path)), responses((status = 200, description = "OK", body = BudgetAlertBody), super::openapi::ApiErrors))]
async fn update_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<BudgetAlertFields>,
) -> Result<axum::Json<BudgetAlertBody>> {
    let updated = budgets::update_alert(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    state.alert_wake.evaluate.notify_one();
    Ok(axum::Json(alert_body(updated, &caller)?))
}

#[utoipa::path(delete, path = "/budget_alerts/{budget_alert_token}", tag = "budgets", operation_id = "budget_alerts_remove", params(("budget_alert_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove_alert(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    reports::delete(state.store.as_ref(), &caller.account_token, ViewKind::BudgetAlert, &token).await?;
    Ok(StatusCode::NO_CONTENT)
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

fn cost_alert_body(a: ReportObject, caller: &crate::model::account::Principal) -> Result<CostAlertBody> {
    let d = cost_alerts::definition(&a)?;
    Ok(CostAlertBody {
        token: a.token,
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
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct CostAlertsBody {
    cost_alerts: Vec<CostAlertBody>,
    links: Links,
}

#[utoipa::path(get, path = "/cost_alerts", tag = "budgets", operation_id = "cost_alerts_list", responses((status = 200, description = "OK", body = CostAlertsBody), super::openapi::ApiErrors))]
async fn list_cost_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<CostAlertsBody>> {
    let (items, links) = list_objects(&state, &caller, ViewKind::CostAlert, &params, &uri, &headers).await?;
    let cost_alerts = items.into_iter().map(|o| cost_alert_body(o, &caller)).collect::<Result<_>>()?;
    Ok(axum::Json(CostAlertsBody { cost_alerts, links }))
}

#[utoipa::path(post, path = "/cost_alerts", tag = "budgets", operation_id = "cost_alerts_create", request_body = CostAlertFields, responses((status = 201, description = "Created", body = CostAlertBody), super::openapi::ApiErrors))]
async fn create_cost_alert(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<CostAlertFields>,
) -> Result<(StatusCode, axum::Json<CostAlertBody>)> {
    let created = cost_alerts::create(state.store.as_ref(), &caller.account_token, fields).await?;
    state.alert_wake.evaluate.notify_one();
    Ok((StatusCode::CREATED, axum::Json(cost_alert_body(created, &caller)?)))
}

#[utoipa::path(get, path = "/cost_alerts/{cost_alert_token}", tag = "budgets", operation_id = "cost_alerts_show", params(("cost_alert_token" = String, Path)), responses((status = 200, description = "OK", body = CostAlertBody), super::openapi::ApiErrors))]
async fn show_cost_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<CostAlertBody>> {
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::CostAlert, &token).await?;
    Ok(axum::Json(cost_alert_body(found, &caller)?))
}

#[utoipa::path(put, path = "/cost_alerts/{cost_alert_token}", tag = "budgets", operation_id = "cost_alerts_update", request_body = CostAlertFields, params(("cost_alert_token" = String, Path)), responses((status = 200, description = "OK", body = CostAlertBody), super::openapi::ApiErrors))]
async fn update_cost_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<CostAlertFields>,
) -> Result<axum::Json<CostAlertBody>> {
    let updated = cost_alerts::update(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    state.alert_wake.evaluate.notify_one();
    Ok(axum::Json(cost_alert_body(updated, &caller)?))
}

#[utoipa::path(delete, path = "/cost_alerts/{cost_alert_token}", tag = "budgets", operation_id = "cost_alerts_remove", params(("cost_alert_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove_cost_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<StatusCode> {
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

fn event_body(e: ReportObject) -> Result<CostAlertEventBody> {
    let d = cost_alerts::event_definition(&e)?;
    Ok(CostAlertEventBody {
        token: e.token,
        created_at: timestamp(e.created_at),
        triggered_at: timestamp(e.created_at),
        description: d.description,
        alert_type: "cost_alert",
        metadata: d.metadata,
        report_token: d.report_token,
        alert_token: e.folder_token.unwrap_or_default(),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct CostAlertEventsBody {
    cost_alert_events: Vec<CostAlertEventBody>,
    links: Links,
}

#[derive(Debug, Default, Deserialize)]
struct EventParams {
    page: Option<u32>,
    limit: Option<u32>,
    report_token: Option<String>,
}

#[utoipa::path(get, path = "/cost_alerts/{cost_alert_token}/events", tag = "budgets", operation_id = "cost_alert_events_list", params(("cost_alert_token" = String, Path)), responses((status = 200, description = "OK", body = CostAlertEventsBody), super::openapi::ApiErrors))]
async fn cost_alert_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Query(params): Query<EventParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<CostAlertEventsBody>> {
    let page = ListParams { page: params.page, limit: params.limit, ..Default::default() }.page_request(MAX_LIMIT)?;
    let report = params.report_token.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let found = cost_alerts::events(state.store.as_ref(), &caller.account_token, &token, report, page).await?;
    let links = Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, page, found.total);
    let cost_alert_events = found.items.into_iter().map(event_body).collect::<Result<_>>()?;
    Ok(axum::Json(CostAlertEventsBody { cost_alert_events, links }))
}

#[utoipa::path(get, path = "/cost_alerts/{cost_alert_token}/events/{event_token}", tag = "budgets", operation_id = "cost_alert_events_show", params(("cost_alert_token" = String, Path), ("event_token" = String, Path)), responses((status = 200, description = "OK", body = CostAlertEventBody), super::openapi::ApiErrors))]
async fn cost_alert_event(
    State(state): State<AppState>,
    caller: Caller,
    Path((alert, event)): Path<(String, String)>,
) -> Result<axum::Json<CostAlertEventBody>> {
    reports::get(state.store.as_ref(), &caller.account_token, ViewKind::CostAlert, &alert).await?;
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::CostAlertEvent, &event).await?;
    if found.folder_token.as_deref() != Some(alert.as_str()) {
        return Err(ApiError::NotFound("cost alert event not found".into()));
    }
    Ok(axum::Json(event_body(found)?))
}

#[derive(Serialize, utoipa::ToSchema)]
struct NotificationBody {
    token: String,
    title: String,
    cost_report_token: String,
    user_tokens: Vec<String>,
    recipient_channels: Vec<String>,
    frequency: &'static str,
    change: &'static str,
}

fn notification_body(n: ReportObject, caller: &crate::model::account::Principal) -> Result<NotificationBody> {
    let d = cost_alerts::notification_definition(&n)?;
    Ok(NotificationBody {
        token: n.token,
        title: n.title,
        frequency: d.frequency_name(),
        change: d.change.as_str(),
        cost_report_token: d.cost_report_token,
        user_tokens: d.user_tokens,
        recipient_channels: channels_for(caller, d.recipient_channels),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct NotificationsBody {
    report_notifications: Vec<NotificationBody>,
    links: Links,
}

#[utoipa::path(get, path = "/report_notifications", tag = "budgets", operation_id = "report_notifications_list", responses((status = 200, description = "OK", body = NotificationsBody), super::openapi::ApiErrors))]
async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<NotificationsBody>> {
    let (items, links) = list_objects(&state, &caller, ViewKind::ReportNotification, &params, &uri, &headers).await?;
    let report_notifications = items.into_iter().map(|o| notification_body(o, &caller)).collect::<Result<_>>()?;
    Ok(axum::Json(NotificationsBody { report_notifications, links }))
}

#[utoipa::path(post, path = "/report_notifications", tag = "budgets", operation_id = "report_notifications_create", request_body = NotificationFields, responses((status = 201, description = "Created", body = NotificationBody), super::openapi::ApiErrors))]
async fn create_notification(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<NotificationFields>,
) -> Result<(StatusCode, axum::Json<NotificationBody>)> {
    let created = cost_alerts::create_notification(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(notification_body(created, &caller)?)))
}

#[utoipa::path(get, path = "/report_notifications/{report_notification_token}", tag = "budgets", operation_id = "report_notifications_show", params(("report_notification_token" = String, Path)), responses((status = 200, description = "OK", body = NotificationBody), super::openapi::ApiErrors))]
async fn show_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<NotificationBody>> {
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::ReportNotification, &token).await?;
    Ok(axum::Json(notification_body(found, &caller)?))
}

#[utoipa::path(put, path = "/report_notifications/{report_notification_token}", tag = "budgets", operation_id = "report_notifications_update", request_body = NotificationFields, params(("report_notification_token" = String, Path)), responses((status = 200, description = "OK", body = NotificationBody), super::openapi::ApiErrors))]
async fn update_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<NotificationFields>,
) -> Result<axum::Json<NotificationBody>> {
    let updated = cost_alerts::update_notification(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(notification_body(updated, &caller)?))
}

#[utoipa::path(delete, path = "/report_notifications/{report_notification_token}", tag = "budgets", operation_id = "report_notifications_remove", params(("report_notification_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<StatusCode> {
    reports::delete(state.store.as_ref(), &caller.account_token, ViewKind::ReportNotification, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct AnomalyNotificationBody {
    token: String,
    cost_report_token: String,
    created_at: String,
    updated_at: String,
    threshold: u32,
    user_tokens: Vec<String>,
    recipient_channels: Vec<String>,
}

fn anomaly_notification_body(
    n: ReportObject,
    caller: &crate::model::account::Principal,
) -> Result<AnomalyNotificationBody> {
    let d = anomalies::notification_definition(&n)?;
    Ok(AnomalyNotificationBody {
        token: n.token,
        cost_report_token: d.cost_report_token,
        created_at: timestamp(n.created_at),
        updated_at: timestamp(n.updated_at),
        threshold: d.threshold,
        user_tokens: d.user_tokens,
        recipient_channels: channels_for(caller, d.recipient_channels),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct AnomalyNotificationsBody {
    anomaly_notifications: Vec<AnomalyNotificationBody>,
    links: Links,
}

#[utoipa::path(get, path = "/anomaly_notifications", tag = "budgets", operation_id = "anomaly_notifications_list", responses((status = 200, description = "OK", body = AnomalyNotificationsBody), super::openapi::ApiErrors))]
async fn list_anomaly_notifications(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<AnomalyNotificationsBody>> {
    let (items, links) = list_objects(&state, &caller, ViewKind::AnomalyNotification, &params, &uri, &headers).await?;
    let anomaly_notifications =
        items.into_iter().map(|o| anomaly_notification_body(o, &caller)).collect::<Result<_>>()?;
    Ok(axum::Json(AnomalyNotificationsBody { anomaly_notifications, links }))
}

#[utoipa::path(post, path = "/anomaly_notifications", tag = "budgets", operation_id = "anomaly_notifications_create", request_body = crate::model::anomaly::NotificationFields, responses((status = 201, description = "Created", body = AnomalyNotificationBody), super::openapi::ApiErrors))]
async fn create_anomaly_notification(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<crate::model::anomaly::NotificationFields>,
) -> Result<(StatusCode, axum::Json<AnomalyNotificationBody>)> {
    let created = anomalies::create_notification(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(anomaly_notification_body(created, &caller)?)))
}

#[utoipa::path(get, path = "/anomaly_notifications/{anomaly_notification_token}", tag = "budgets", operation_id = "anomaly_notifications_show", params(("anomaly_notification_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyNotificationBody), super::openapi::ApiErrors))]
async fn show_anomaly_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<AnomalyNotificationBody>> {
    let found =
        reports::get(state.store.as_ref(), &caller.account_token, ViewKind::AnomalyNotification, &token).await?;
    Ok(axum::Json(anomaly_notification_body(found, &caller)?))
}

#[utoipa::path(put, path = "/anomaly_notifications/{anomaly_notification_token}", tag = "budgets", operation_id = "anomaly_notifications_update", request_body = crate::model::anomaly::NotificationFields, params(("anomaly_notification_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyNotificationBody), super::openapi::ApiErrors))]
async fn update_anomaly_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<crate::model::anomaly::NotificationFields>,
) -> Result<axum::Json<AnomalyNotificationBody>> {
    let updated = anomalies::update_notification(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(anomaly_notification_body(updated, &caller)?))
}

#[utoipa::path(delete, path = "/anomaly_notifications/{anomaly_notification_token}", tag = "budgets", operation_id = "anomaly_notifications_remove", params(("anomaly_notification_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove_anomaly_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<StatusCode> {
    reports::delete(state.store.as_ref(), &caller.account_token, ViewKind::AnomalyNotification, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct AnomalyAlertBody {
    token: String,
    created_at: String,
    alerted_at: String,
    category: String,
    service: String,
    provider: String,
    amount: String,
    previous_amount: String,
    seven_day_average: String,
    status: String,
    feedback: Option<String>,
    resources: Vec<String>,
    resource_tokens: Vec<String>,
    cost_report_token: String,
    /// costd's own: the day the anomaly is on.
    day: String,
    /// costd's own: the top of the expected band (`previous_amount` is its middle, the expected cost).
    expected_upper: Option<String>,
}

fn anomaly_alert_body(a: ReportObject) -> Result<AnomalyAlertBody> {
    let d = anomalies::alert_definition(&a)?;
    Ok(AnomalyAlertBody {
        token: a.token,
        created_at: timestamp(a.created_at),
        alerted_at: timestamp(a.created_at),
        category: d.category,
        service: d.service,
        provider: d.provider,
        amount: d.amount.to_string(),
        previous_amount: d.previous_amount.to_string(),
        seven_day_average: d.seven_day_average.to_string(),
        status: d.status,
        feedback: d.feedback,
        resources: Vec::new(),
        resource_tokens: Vec::new(),
        cost_report_token: d.cost_report_token,
        day: d.day.to_string(),
        expected_upper: d.expected_upper.map(|a| a.to_string()),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct AnomalyAlertsBody {
    anomaly_alerts: Vec<AnomalyAlertBody>,
    links: Links,
}

#[utoipa::path(get, path = "/anomaly_alerts", tag = "budgets", operation_id = "anomaly_alerts_list", responses((status = 200, description = "OK", body = AnomalyAlertsBody), super::openapi::ApiErrors))]
async fn list_anomaly_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<AnomalyAlertsBody>> {
    let (items, links) = list_objects(&state, &caller, ViewKind::AnomalyAlert, &params, &uri, &headers).await?;
    let anomaly_alerts = items.into_iter().map(anomaly_alert_body).collect::<Result<_>>()?;
    Ok(axum::Json(AnomalyAlertsBody { anomaly_alerts, links }))
}

#[utoipa::path(get, path = "/anomaly_alerts/{anomaly_alert_token}", tag = "budgets", operation_id = "anomaly_alerts_show", params(("anomaly_alert_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyAlertBody), super::openapi::ApiErrors))]
async fn show_anomaly_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<AnomalyAlertBody>> {
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::AnomalyAlert, &token).await?;
    Ok(axum::Json(anomaly_alert_body(found)?))
}

#[utoipa::path(put, path = "/anomaly_alerts/{anomaly_alert_token}", tag = "budgets", operation_id = "anomaly_alerts_update", request_body = crate::model::anomaly::AlertUpdate, params(("anomaly_alert_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyAlertBody), super::openapi::ApiErrors))]
async fn update_anomaly_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(update): Json<crate::model::anomaly::AlertUpdate>,
) -> Result<axum::Json<AnomalyAlertBody>> {
    let updated = anomalies::update_alert(state.store.as_ref(), &caller.account_token, &token, update).await?;
    Ok(axum::Json(anomaly_alert_body(updated)?))
}

#[derive(Debug, Default, Deserialize)]
struct DeliveryParams {
    page: Option<u32>,
    limit: Option<u32>,
    budget_alert_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryBody {
    token: String,
    /// The alert the message is of (a budget alert or a cost alert).
    budget_alert_token: String,
    event_key: String,
    /// An email address, or a webhook's scheme and host (its path is a secret).
    recipient: String,
    subject: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: String,
    delivered_at: Option<String>,
    next_attempt_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveriesBody {
    alert_deliveries: Vec<DeliveryBody>,
    links: Links,
}

/// Recipients as the caller may see them: a webhook URL's path and query are its secret (whoever has them can
/// post into the channel), so a token that cannot write sees each as `alert_deliveries` shows it.
fn channels_for(caller: &crate::model::account::Principal, channels: Vec<String>) -> Vec<String> {
    if caller.scopes.write {
        channels
    } else {
        channels.iter().map(|c| shown_recipient(c)).collect()
    }
}

/// A recipient as a list may show it: a webhook URL's path and query carry its secret.
fn shown_recipient(recipient: &str) -> String {
    match url::Url::parse(recipient) {
        Ok(u) if u.scheme().starts_with("http") => {
            format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default())
        }
        _ => recipient.to_string(),
    }
}

#[utoipa::path(get, path = "/alert_deliveries", tag = "budgets", operation_id = "alert_deliveries_list", responses((status = 200, description = "OK", body = DeliveriesBody), super::openapi::ApiErrors))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<DeliveryParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<DeliveriesBody>> {
    let page = ListParams { page: params.page, limit: params.limit, ..Default::default() }.page_request(MAX_LIMIT)?;
    let alert = params.budget_alert_token.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let found = crate::service::alerts::deliveries(state.store.as_ref(), &caller.account_token, alert, page).await?;
    let links = Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, page, found.total);
    let alert_deliveries = found
        .items
        .into_iter()
        .map(|n| {
            let subject = serde_json::from_str::<crate::service::alerts::Message>(&n.message)
                .map(|m| m.subject)
                .unwrap_or_default();
            let next = (n.status == "pending")
                .then(|| chrono::DateTime::from_timestamp_millis(n.next_attempt_ms).map(timestamp))
                .flatten();
            DeliveryBody {
                recipient: shown_recipient(&n.recipient),
                token: n.token,
                budget_alert_token: n.source_token,
                event_key: n.event_key,
                subject,
                status: n.status,
                attempts: n.attempts,
                last_error: n.last_error,
                created_at: timestamp(n.created_at),
                delivered_at: n.delivered_at.map(timestamp),
                next_attempt_at: next,
            }
        })
        .collect();
    Ok(axum::Json(DeliveriesBody { alert_deliveries, links }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct SigningSecretBody {
    secret: String,
    header: &'static str,
    scheme: &'static str,
}

#[utoipa::path(get, path = "/webhook_signing_secret", tag = "budgets", operation_id = "webhook_signing_secret", responses((status = 200, description = "OK", body = SigningSecretBody), super::openapi::ApiErrors))]
async fn signing_secret(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<SigningSecretBody>> {
    // Whoever holds it can forge costd's alerts to the account's receivers: only a token that may write.
    if !caller.scopes.write {
        return Err(ApiError::Forbidden("the webhook signing secret needs a token with the write scope".into()));
    }
    let secret = crate::service::alerts::signing_secret(state.store.as_ref(), &caller.account_token).await?;
    Ok(axum::Json(SigningSecretBody {
        secret,
        header: "X-Costd-Signature",
        scheme: "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" under the secret>",
    }))
}
