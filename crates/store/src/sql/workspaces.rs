//! Workspaces of an account.

use chrono::{DateTime, Utc};

use crate::Workspace;
use costd_model::workspace::WorkspaceSettings;

#[derive(sqlx::FromRow)]
pub(crate) struct WorkspaceRow {
    token: String,
    name: String,
    enable_currency_conversion: bool,
    currency: String,
    exchange_rate_date: String,
    created_at: DateTime<Utc>,
}

impl From<WorkspaceRow> for Workspace {
    fn from(r: WorkspaceRow) -> Self {
        Workspace {
            token: r.token,
            settings: WorkspaceSettings {
                name: r.name,
                enable_currency_conversion: r.enable_currency_conversion,
                currency: r.currency,
                exchange_rate_date: r.exchange_rate_date,
            },
            created_at: r.created_at,
        }
    }
}
