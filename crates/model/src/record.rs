//! A record of the alerts wing as the store returns it: the columns every kind shares (token, workspace,
//! title, times) around the kind's own definition (`budget::BudgetDefinition`, …), decoded by the store.
//! Each kind names its record type beside its definition (`budget::Budget`, `anomaly::AnomalyAlert`, …).

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct Record<T, D> {
    pub token: T,
    pub workspace_token: String,
    /// A budget's name, a cost alert's title; for the kinds Vantage does not name, a title costd writes
    /// (an event's or anomaly's key, which is unique under its owner).
    pub title: String,
    pub definition: D,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
