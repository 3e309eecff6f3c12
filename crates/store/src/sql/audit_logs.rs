//! Audit log entries: a row per write, its changed and unchanged values JSON text decoded here, so the
//! store hands out whole entries.

use chrono::{DateTime, Utc};

use costd_model::audit::{AuditEntry, AuditEvent, AuditSource};

pub(crate) const AUDIT_COLUMNS: &str = "token, account_token, object_type, object_token, object_title, event, \
     source, user_name, user_token, workspace_token, changed_values, unchanged_values, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    token: String,
    account_token: String,
    object_type: String,
    object_token: Option<String>,
    object_title: Option<String>,
    event: String,
    source: String,
    user_name: String,
    user_token: Option<String>,
    workspace_token: Option<String>,
    changed_values: String,
    unchanged_values: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = anyhow::Error;

    fn try_from(r: AuditRow) -> anyhow::Result<Self> {
        let object = |text: &str, what: &str| -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
            serde_json::from_str(text)
                .map_err(|e| anyhow::anyhow!("audit entry {} has unreadable {what}: {e}", r.token))
        };
        Ok(AuditEntry {
            event: AuditEvent::parse(&r.event)
                .ok_or_else(|| anyhow::anyhow!("audit entry {} has an unknown event {:?}", r.token, r.event))?,
            source: AuditSource::parse(&r.source)
                .ok_or_else(|| anyhow::anyhow!("audit entry {} has an unknown source {:?}", r.token, r.source))?,
            changed_values: object(&r.changed_values, "changed values")?,
            unchanged_values: object(&r.unchanged_values, "unchanged values")?,
            token: r.token.into(),
            account_token: r.account_token.into(),
            object_type: r.object_type,
            object_token: r.object_token,
            object_title: r.object_title,
            user: r.user_name,
            user_token: r.user_token,
            workspace_token: r.workspace_token,
            created_at: r.created_at,
        })
    }
}
