//! `/v2/anomaly_notifications` (Vantage's): who hears of a report's anomalies, from what rise. The rules
//! are in `model::anomaly` and `service::anomalies`; the pass that finds anomalies is
//! `service::alerts::anomalies`.

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
use super::{timestamp, AppState, Result};
use crate::model::anomaly::{AnomalyNotification, NotificationFields};
use crate::service::{anomalies, records};
use crate::store::wing::AnomalyNotifications;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
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

fn body(n: AnomalyNotification, caller: &crate::model::account::Principal) -> AnomalyNotificationBody {
    let d = n.definition;
    AnomalyNotificationBody {
        token: n.token.to_string(),
        cost_report_token: d.cost_report_token,
        created_at: timestamp(n.created_at),
        updated_at: timestamp(n.updated_at),
        threshold: d.threshold,
        user_tokens: d.user_tokens,
        recipient_channels: channels_for(caller, d.recipient_channels),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct AnomalyNotificationsBody {
    anomaly_notifications: Vec<AnomalyNotificationBody>,
    links: Links,
}

#[utoipa::path(get, path = "/anomaly_notifications", tag = "anomaly_notifications", operation_id = "anomaly_notifications_list", params(("workspace_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = AnomalyNotificationsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<InWorkspace>,
) -> Result<axum::Json<AnomalyNotificationsBody>> {
    let found = records::list::<AnomalyNotifications>(
        state.store.as_ref(),
        &caller.account_token,
        params.workspace_token.as_deref(),
        paging.page,
    )
    .await?;
    let anomaly_notifications = found.items.into_iter().map(|n| body(n, &caller)).collect();
    Ok(axum::Json(AnomalyNotificationsBody { anomaly_notifications, links: paging.links(found.total) }))
}

#[utoipa::path(post, path = "/anomaly_notifications", tag = "anomaly_notifications", operation_id = "anomaly_notifications_create", request_body = NotificationFields, responses((status = 201, description = "Created", body = AnomalyNotificationBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<NotificationFields>,
) -> Result<(StatusCode, axum::Json<AnomalyNotificationBody>)> {
    let created = anomalies::create_notification(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(body(created, &caller))))
}

#[utoipa::path(get, path = "/anomaly_notifications/{anomaly_notification_token}", tag = "anomaly_notifications", operation_id = "anomaly_notifications_show", params(("anomaly_notification_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyNotificationBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<AnomalyNotificationBody>> {
    let found = records::get::<AnomalyNotifications>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(body(found, &caller)))
}

#[utoipa::path(put, path = "/anomaly_notifications/{anomaly_notification_token}", tag = "anomaly_notifications", operation_id = "anomaly_notifications_update", request_body = NotificationFields, params(("anomaly_notification_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyNotificationBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<NotificationFields>,
) -> Result<axum::Json<AnomalyNotificationBody>> {
    let updated = anomalies::update_notification(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(body(updated, &caller)))
}

#[utoipa::path(delete, path = "/anomaly_notifications/{anomaly_notification_token}", tag = "anomaly_notifications", operation_id = "anomaly_notifications_remove", params(("anomaly_notification_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    records::delete::<AnomalyNotifications>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
