//! Cost data exports: their state, what was asked, and how long their file is kept.

use chrono::{DateTime, Utc};

use crate::DataExport;

pub(crate) const EXPORT_COLUMNS: &str =
    "token, status, attributes, row_count, error, created_at, completed_at, valid_until";

#[derive(sqlx::FromRow)]
pub(crate) struct ExportRow {
    token: String,
    status: String,
    attributes: String,
    row_count: Option<i64>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    valid_until: Option<DateTime<Utc>>,
}

impl From<ExportRow> for DataExport {
    fn from(r: ExportRow) -> Self {
        DataExport {
            token: r.token,
            status: r.status,
            attributes: r.attributes,
            rows: r.row_count,
            error: r.error,
            created_at: r.created_at,
            completed_at: r.completed_at,
            valid_until: r.valid_until,
        }
    }
}
