//! costd's own `/v2/alert_deliveries` (the alerts' outbox: every message, its status, attempts and last
//! error) and `/v2/webhook_signing_secret` (what a receiver checks `X-Costd-Signature` with), and how
//! webhook addresses are shown to a token that may only read (their path is their secret).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::Query;
use super::pagination::{Links, Paging};
use super::{timestamp, ApiError, AppState, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(deliveries)).routes(routes!(signing_secret))
}

#[derive(Debug, Default, Deserialize)]
struct DeliveryParams {
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
pub(super) fn channels_for(caller: &crate::model::account::Principal, channels: Vec<String>) -> Vec<String> {
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

#[utoipa::path(get, path = "/alert_deliveries", tag = "alert_deliveries", operation_id = "alert_deliveries_list", params(("budget_alert_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = DeliveriesBody), super::openapi::ApiErrors))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<DeliveryParams>,
) -> Result<axum::Json<DeliveriesBody>> {
    let alert = params.budget_alert_token.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let found =
        crate::service::alerts::deliveries(state.store.as_ref(), &caller.account_token, alert, paging.page).await?;
    let links = paging.links(found.total);
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

#[utoipa::path(get, path = "/webhook_signing_secret", tag = "alert_deliveries", operation_id = "webhook_signing_secret", responses((status = 200, description = "OK", body = SigningSecretBody), super::openapi::ApiErrors))]
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
