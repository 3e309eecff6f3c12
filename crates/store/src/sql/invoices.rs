//! An MSP's invoices. Numbers come from one counter row per MSP account, locked by the creating
//! transaction: concurrent creates queue on it, and a create that is refused (an overlapping period) or
//! fails rolls the counter back with it, so numbers have no gaps and no duplicates.

use chrono::{DateTime, NaiveDate, Utc};

use crate::Invoice;
use costd_model::invoice::{BillingPeriod, InvoiceDocument, InvoiceStatus};
use costd_model::token::{AccountToken, InvoiceToken};

pub(crate) const INVOICE_COLUMNS: &str = "token, number, msp_account_token, account_token, account_name, \
     period_start, period_end, status, document, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct InvoiceRow {
    token: crate::Text<InvoiceToken>,
    number: i64,
    msp_account_token: crate::Text<AccountToken>,
    account_token: crate::Text<AccountToken>,
    account_name: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    status: String,
    document: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<InvoiceRow> for Invoice {
    type Error = anyhow::Error;

    fn try_from(r: InvoiceRow) -> anyhow::Result<Self> {
        let status = InvoiceStatus::parse(&r.status)
            .ok_or_else(|| anyhow::anyhow!("invoice {} has an unknown status {:?}", r.token.0, r.status))?;
        let document: InvoiceDocument = serde_json::from_str(&r.document)
            .map_err(|e| anyhow::anyhow!("invoice {} has an unreadable document: {e}", r.token.0))?;
        Ok(Invoice {
            token: r.token.0,
            number: r.number,
            msp_account_token: r.msp_account_token.0,
            account_token: r.account_token.0,
            account_name: r.account_name,
            period: BillingPeriod { start: r.period_start, end: r.period_end },
            status,
            document,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) fn document_json(document: &InvoiceDocument) -> String {
    serde_json::to_string(document).expect("plain data serialises")
}

/// `status IN (…)` for these statuses (their fixed names, never user text).
pub(crate) fn status_in(statuses: &[InvoiceStatus]) -> String {
    let names: Vec<String> = statuses.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("status IN ({})", if names.is_empty() { "NULL".to_string() } else { names.join(", ") })
}
