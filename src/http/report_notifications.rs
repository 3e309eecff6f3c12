//! `/v2/report_notifications` (Vantage's): scheduled summaries of a report, daily, weekly or monthly. The
//! rules are in `model::cost_alert` and `service::cost_alerts`; the pass that sends them is
//! `service::alerts::report_summaries`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::alert_deliveries::channels_for;
use super::auth::Caller;
use super::budgets::InWorkspace;
use super::extract::{Json, Query};
use super::pagination::{Links, Paging};
use super::{AppState, Result};
use crate::model::cost_alert::{NotificationFields, ReportNotification};
use crate::service::{cost_alerts, records};
use crate::store::wing::ReportNotifications;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
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

fn body(n: ReportNotification, caller: &crate::model::account::Principal) -> NotificationBody {
    let d = n.definition;
    NotificationBody {
        token: n.token.to_string(),
        title: n.title,
        frequency: d.frequency_name(),
        change: d.change.as_str(),
        cost_report_token: d.cost_report_token,
        user_tokens: d.user_tokens,
        recipient_channels: channels_for(caller, d.recipient_channels),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct NotificationsBody {
    report_notifications: Vec<NotificationBody>,
    links: Links,
}

#[utoipa::path(get, path = "/report_notifications", tag = "report_notifications", operation_id = "report_notifications_list", params(("workspace_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = NotificationsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<InWorkspace>,
) -> Result<axum::Json<NotificationsBody>> {
    let found = records::list::<ReportNotifications>(
        state.store.as_ref(),
        &caller.account_token,
        params.workspace_token.as_deref(),
        paging.page,
    )
    .await?;
    let report_notifications = found.items.into_iter().map(|n| body(n, &caller)).collect();
    Ok(axum::Json(NotificationsBody { report_notifications, links: paging.links(found.total) }))
}

#[utoipa::path(post, path = "/report_notifications", tag = "report_notifications", operation_id = "report_notifications_create", request_body = NotificationFields, responses((status = 201, description = "Created", body = NotificationBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<NotificationFields>,
) -> Result<(StatusCode, axum::Json<NotificationBody>)> {
    let created = cost_alerts::create_notification(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(body(created, &caller))))
}

#[utoipa::path(get, path = "/report_notifications/{report_notification_token}", tag = "report_notifications", operation_id = "report_notifications_show", params(("report_notification_token" = String, Path)), responses((status = 200, description = "OK", body = NotificationBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<NotificationBody>> {
    let found = records::get::<ReportNotifications>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(body(found, &caller)))
}

#[utoipa::path(put, path = "/report_notifications/{report_notification_token}", tag = "report_notifications", operation_id = "report_notifications_update", request_body = NotificationFields, params(("report_notification_token" = String, Path)), responses((status = 200, description = "OK", body = NotificationBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<NotificationFields>,
) -> Result<axum::Json<NotificationBody>> {
    let updated = cost_alerts::update_notification(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(body(updated, &caller)))
}

#[utoipa::path(delete, path = "/report_notifications/{report_notification_token}", tag = "report_notifications", operation_id = "report_notifications_remove", params(("report_notification_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    records::delete::<ReportNotifications>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
