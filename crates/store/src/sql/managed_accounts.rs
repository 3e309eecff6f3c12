//! Managed accounts of an MSP, with their ordered integration and rule links (a page's links in two reads).

use super::accounts::AccountRow;
use crate::ManagedAccount;
use costd_model::billing_profile::{BillingInformation, CustomField};
use costd_model::managed_account::Invoicing;
use costd_model::token::{BillingProfileToken, IntegrationToken, RuleToken};

/// The columns a managed account adds to its account row.
pub(crate) const MANAGED_COLUMNS: &str =
    "contact_email, email_domain, msp_billing_profile_token, payment_terms_days, invoicing_details";

/// A managed account's billing details as stored (JSON in `invoicing_details`).
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct InvoicingDetails {
    billing: BillingInformation,
    custom_fields: Vec<CustomField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag_key: Option<String>,
}

impl InvoicingDetails {
    pub(crate) fn json(invoicing: &Invoicing) -> String {
        let details = InvoicingDetails {
            billing: invoicing.billing.clone(),
            custom_fields: invoicing.custom_fields.clone(),
            tag_key: invoicing.tag_key.clone(),
        };
        serde_json::to_string(&details).expect("plain data serialises")
    }
}

impl ManagedRow {
    pub(crate) fn token(&self) -> &costd_model::token::AccountToken {
        self.account.token()
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ManagedRow {
    #[sqlx(flatten)]
    account: AccountRow,
    contact_email: Option<String>,
    email_domain: Option<String>,
    msp_billing_profile_token: Option<crate::Text<BillingProfileToken>>,
    payment_terms_days: Option<i32>,
    invoicing_details: Option<String>,
}

impl ManagedRow {
    pub(crate) fn into_managed(
        self,
        integration_tokens: Vec<IntegrationToken>,
        rule_tokens: Vec<RuleToken>,
    ) -> ManagedAccount {
        // Written by `InvoicingDetails::json` only; a row from before invoicing has none.
        let details: InvoicingDetails =
            self.invoicing_details.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
        let invoicing = Invoicing {
            billing_profile: self.msp_billing_profile_token.map(|t| t.0),
            payment_terms_days: self
                .payment_terms_days
                .map_or(costd_model::invoice::DEFAULT_PAYMENT_TERMS_DAYS, |d| d.max(0) as u32),
            billing: details.billing,
            custom_fields: details.custom_fields,
            tag_key: details.tag_key,
        };
        ManagedAccount {
            account: self.account.into(),
            contact_email: self.contact_email.unwrap_or_default(),
            email_domain: self.email_domain,
            integration_tokens,
            rule_tokens,
            invoicing,
        }
    }
}
