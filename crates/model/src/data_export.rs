//! A cost data export as stored: what was asked, how far it got, and until when its file can be downloaded.

use chrono::{DateTime, Utc};

/// A cost data export (made by `service::exports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataExport {
    pub token: String,
    /// pending, completed or failed.
    pub status: String,
    /// What was asked, as JSON (Vantage's `attributes`).
    pub attributes: String,
    pub rows: Option<i64>,
    /// Why it failed, in words a caller may read.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
}
