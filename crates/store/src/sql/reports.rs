//! Cost reports, saved filters and folders: one table (`report_objects`) keyed by kind, and the ordered
//! saved filters each report or folder applies.

use chrono::{DateTime, Utc};

use crate::ReportObject;
use costd_model::report::ViewKind;

pub(crate) const REPORT_OBJECT_COLUMNS: &str =
    "token, kind, workspace_token, folder_token, title, definition, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ReportObjectRow {
    pub(crate) token: String,
    kind: String,
    workspace_token: String,
    folder_token: Option<String>,
    title: String,
    definition: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ReportObjectRow {
    pub(crate) fn into_object(self, saved_filter_tokens: Vec<String>) -> anyhow::Result<ReportObject> {
        let kind = ViewKind::ALL
            .into_iter()
            .find(|k| k.as_str() == self.kind)
            .ok_or_else(|| anyhow::anyhow!("report object {} has an unknown kind {:?}", self.token, self.kind))?;
        Ok(ReportObject {
            token: self.token,
            kind,
            workspace_token: self.workspace_token,
            folder_token: self.folder_token,
            title: self.title,
            definition: self.definition,
            saved_filter_tokens,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}
