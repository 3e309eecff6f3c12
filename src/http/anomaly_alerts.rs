//! `/v2/anomaly_alerts` (Vantage's): the anomalies found, each once per report, provider, service and day,
//! with the status and feedback a user gives them. Found by `service::alerts::anomalies`.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::budgets::InWorkspace;
use super::extract::{Json, Query};
use super::pagination::{Links, Paging};
use super::{timestamp, AppState, Result};
use crate::model::anomaly::{AlertUpdate, AnomalyAlert};
use crate::service::{anomalies, records};
use crate::store::wing::AnomalyAlerts;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show, update))
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

fn body(a: AnomalyAlert) -> AnomalyAlertBody {
    let d = a.definition;
    AnomalyAlertBody {
        token: a.token.to_string(),
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
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct AnomalyAlertsBody {
    anomaly_alerts: Vec<AnomalyAlertBody>,
    links: Links,
}

#[utoipa::path(get, path = "/anomaly_alerts", tag = "anomaly_alerts", operation_id = "anomaly_alerts_list", params(("workspace_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = AnomalyAlertsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<InWorkspace>,
) -> Result<axum::Json<AnomalyAlertsBody>> {
    let found = records::list::<AnomalyAlerts>(
        state.store.as_ref(),
        &caller.account_token,
        params.workspace_token.as_deref(),
        paging.page,
    )
    .await?;
    let anomaly_alerts = found.items.into_iter().map(body).collect();
    Ok(axum::Json(AnomalyAlertsBody { anomaly_alerts, links: paging.links(found.total) }))
}

#[utoipa::path(get, path = "/anomaly_alerts/{anomaly_alert_token}", tag = "anomaly_alerts", operation_id = "anomaly_alerts_show", params(("anomaly_alert_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyAlertBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<AnomalyAlertBody>> {
    let found = records::get::<AnomalyAlerts>(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(body(found)))
}

#[utoipa::path(put, path = "/anomaly_alerts/{anomaly_alert_token}", tag = "anomaly_alerts", operation_id = "anomaly_alerts_update", request_body = AlertUpdate, params(("anomaly_alert_token" = String, Path)), responses((status = 200, description = "OK", body = AnomalyAlertBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(update): Json<AlertUpdate>,
) -> Result<axum::Json<AnomalyAlertBody>> {
    let updated = anomalies::update_alert(state.store.as_ref(), &caller.account_token, &token, update).await?;
    Ok(axum::Json(body(updated)))
}
