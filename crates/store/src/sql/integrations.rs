//! Custom-provider integrations, with their workspaces; deleting one retires its uploads' files.

use chrono::{DateTime, Utc};

use crate::Integration;
use costd_model::token::IntegrationToken;

#[derive(sqlx::FromRow)]
pub(crate) struct IntegrationRow {
    token: crate::Text<IntegrationToken>,
    provider: String,
    name: String,
    description: Option<String>,
    status: String,
    last_updated: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    location: Option<String>,
    last_synced_at: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct SyncedPeriodRow {
    period: String,
    manifest_key: String,
    manifest_etag: Option<String>,
    manifest_id: String,
    upload_token: String,
    rows: i64,
    synced_at: DateTime<Utc>,
}

impl From<SyncedPeriodRow> for crate::SyncedPeriod {
    fn from(r: SyncedPeriodRow) -> Self {
        crate::SyncedPeriod {
            period: r.period,
            manifest_key: r.manifest_key,
            manifest_etag: r.manifest_etag,
            manifest_id: r.manifest_id,
            upload_token: r.upload_token,
            rows: r.rows,
            synced_at: r.synced_at,
        }
    }
}

impl IntegrationRow {
    pub(crate) fn with_workspaces(self, workspace_tokens: Vec<String>) -> Integration {
        Integration {
            token: self.token.0,
            provider: self.provider,
            name: self.name,
            description: self.description,
            status: self.status,
            last_updated: self.last_updated,
            workspace_tokens,
            created_at: self.created_at,
            location: self.location,
            last_synced_at: self.last_synced_at,
            last_error: self.last_error,
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token.0
    }
}

/// Groups `(integration, workspace)` pairs by integration, keeping their order.
pub(crate) fn group_workspaces(pairs: Vec<(String, String)>) -> std::collections::HashMap<String, Vec<String>> {
    let mut map: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (integration, workspace) in pairs {
        map.entry(integration).or_default().push(workspace);
    }
    map
}
