//! A committed cost upload: one file of cost rows under an integration, with its sum and date range.

use chrono::{DateTime, NaiveDate, Utc};

use super::amount::Amount;
use super::token::{IntegrationToken, UploadToken};

/// A committed cost upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub token: UploadToken,
    pub integration_token: IntegrationToken,
    pub filename: String,
    /// Sum of BilledCost.
    pub amount: Amount,
    pub currency: String,
    pub rows: i64,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub import_status: String,
    pub created_by_token: String,
    pub created_at: DateTime<Utc>,
    /// With a rollup file (`engine::rollup`): the most decimal places any of its amounts has.
    pub rollup_decimals: Option<u8>,
}
