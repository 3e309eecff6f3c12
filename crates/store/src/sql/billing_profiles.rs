//! An MSP's billing profiles; the parts (billing, business, banking, adjustments) are one JSON document, as
//! they are only ever read and written whole.

use chrono::{DateTime, Utc};

use crate::BillingProfile;
use costd_model::billing_profile::BillingProfileSettings;
use costd_model::token::BillingProfileToken;

/// Columns of a profile with the count of managed accounts linked to it.
pub(crate) const PROFILE_COLUMNS: &str = "bp.token, bp.settings, bp.created_at, bp.updated_at, \
     (SELECT COUNT(*) FROM accounts a WHERE a.msp_billing_profile_token = bp.token) AS managed_accounts_count";

#[derive(sqlx::FromRow)]
pub(crate) struct ProfileRow {
    token: crate::Text<BillingProfileToken>,
    settings: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    managed_accounts_count: i64,
}

impl TryFrom<ProfileRow> for BillingProfile {
    type Error = anyhow::Error;

    fn try_from(r: ProfileRow) -> anyhow::Result<Self> {
        let settings: BillingProfileSettings = serde_json::from_str(&r.settings)
            .map_err(|e| anyhow::anyhow!("billing profile {} has unreadable settings: {e}", r.token.0))?;
        Ok(BillingProfile {
            token: r.token.0,
            settings,
            managed_accounts_count: r.managed_accounts_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) fn settings_json(settings: &BillingProfileSettings) -> String {
    serde_json::to_string(settings).expect("plain data serialises")
}
