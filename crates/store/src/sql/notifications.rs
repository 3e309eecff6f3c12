//! The alerts' outbox (`notifications`): written once per firing and recipient, claimed by lease for each
//! delivery attempt, finished with its outcome.

use chrono::{DateTime, Utc};

use crate::Notification;

pub(crate) const NOTIFICATION_COLUMNS: &str = "id, token, account_token, source_token, event_key, recipient, message, \
     status, attempts, next_attempt_ms, last_error, created_at, delivered_at";

#[derive(sqlx::FromRow)]
pub(crate) struct NotificationRow {
    id: i64,
    token: String,
    account_token: crate::Text<costd_model::token::AccountToken>,
    source_token: String,
    event_key: String,
    recipient: String,
    message: String,
    status: String,
    attempts: i32,
    next_attempt_ms: i64,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<NotificationRow> for Notification {
    fn from(r: NotificationRow) -> Self {
        Notification {
            id: r.id,
            token: r.token,
            account: r.account_token.0,
            source_token: r.source_token,
            event_key: r.event_key,
            recipient: r.recipient,
            message: r.message,
            status: r.status,
            attempts: r.attempts,
            next_attempt_ms: r.next_attempt_ms,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        }
    }
}
