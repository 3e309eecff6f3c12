//! Cost uploads: committed (replacing and retiring the upload of the same filename), listed, deleted (retired), read as one snapshot; retired files for the janitor.

use chrono::{DateTime, NaiveDate, Utc};

use crate::Upload;
use costd_model::token::{IntegrationToken, UploadToken};

#[derive(sqlx::FromRow)]
pub(crate) struct UploadRow {
    token: crate::Text<UploadToken>,
    integration_token: crate::Text<IntegrationToken>,
    filename: String,
    amount: crate::Text<costd_model::amount::Amount>,
    currency: String,
    row_count: i64,
    start_date: NaiveDate,
    end_date: NaiveDate,
    import_status: String,
    created_by_token: String,
    created_at: DateTime<Utc>,
    rollup_decimals: Option<i32>,
}

impl From<UploadRow> for Upload {
    fn from(r: UploadRow) -> Self {
        Upload {
            token: r.token.0,
            integration_token: r.integration_token.0,
            filename: r.filename,
            amount: r.amount.0,
            currency: r.currency,
            rows: r.row_count,
            start_date: r.start_date,
            end_date: r.end_date,
            import_status: r.import_status,
            created_by_token: r.created_by_token,
            created_at: r.created_at,
            rollup_decimals: r.rollup_decimals.and_then(|d| u8::try_from(d).ok()),
        }
    }
}
