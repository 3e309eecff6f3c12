//! Managed accounts: what a create or update request may say.

use serde::Deserialize;

use super::account::Account;
use super::billing_profile::{BillingInformation, BusinessInformationFields, CustomField};
use super::invoice::{DEFAULT_PAYMENT_TERMS_DAYS, MAX_PAYMENT_TERMS_DAYS};
use super::token::{BillingProfileToken, IntegrationToken, RuleToken};
use super::{required_text, text};

/// The settable parts of a managed account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedAccountSettings {
    pub name: String,
    pub contact_email: String,
    pub email_domain: Option<String>,
    pub integration_tokens: Vec<IntegrationToken>,
    pub rule_tokens: Vec<RuleToken>,
    pub invoicing: Invoicing,
}

/// How an MSP invoices a managed account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoicing {
    /// The MSP's profile its invoices are issued under (required to invoice it).
    pub billing_profile: Option<BillingProfileToken>,
    /// Days from an invoice's date to its due date.
    pub payment_terms_days: u32,
    /// The customer's billing details printed on its invoices (its name alone when empty).
    pub billing: BillingInformation,
    pub custom_fields: Vec<CustomField>,
    /// Its invoices' lines by this tag's values (a virtual tag's or a provider tag's), then service and
    /// charge type, instead of by provider (costd's `invoice_tag_key`).
    pub tag_key: Option<String>,
}

impl Default for Invoicing {
    fn default() -> Self {
        Invoicing {
            billing_profile: None,
            payment_terms_days: DEFAULT_PAYMENT_TERMS_DAYS,
            billing: BillingInformation::default(),
            custom_fields: Vec::new(),
            tag_key: None,
        }
    }
}

/// Create or update fields as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManagedAccountFields {
    pub name: Option<String>,
    pub contact_email: Option<String>,
    pub email_domain: Option<String>,
    pub access_credential_tokens: Option<Vec<String>>,
    pub billing_rule_tokens: Option<Vec<String>>,
    /// A billing profile's token; an empty string unlinks.
    pub msp_billing_profile_token: Option<String>,
    pub payment_terms_days: Option<i64>,
    pub include_managed_account_integrations: Option<bool>,
    pub billing_information_attributes: Option<BillingInformation>,
    pub business_information_attributes: Option<BusinessInformationFields>,
    /// costd's: group the invoices' lines by this tag key (`""` clears).
    pub invoice_tag_key: Option<String>,
}

/// A list of tokens of one kind (`what` names it in messages): each once, each of that kind (a token of
/// another kind cannot be one of the account's, so it reads as not found).
fn token_list<T: PartialEq + std::fmt::Display>(
    field: &str,
    what: &str,
    tokens: Option<Vec<String>>,
    parse: impl Fn(&str) -> Option<T>,
    errors: &mut Vec<String>,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for t in tokens.unwrap_or_default() {
        match parse(t.trim()) {
            Some(t) if out.contains(&t) => errors.push(format!("{field}: {t} is listed twice")),
            Some(t) => out.push(t),
            None => errors.push(format!("{field}: no {what} {t} in this account")),
        }
    }
    out
}

impl TryFrom<ManagedAccountFields> for ManagedAccountSettings {
    type Error = Vec<String>;

    /// A new managed account from a create request.
    fn try_from(f: ManagedAccountFields) -> Result<Self, Self::Error> {
        ManagedAccountSettings::apply(None, f)
    }
}

impl ManagedAccountSettings {
    /// These settings with an update request applied: what it sends replaces, the rest stays; the result is
    /// checked as a create would be.
    pub fn update(&self, fields: ManagedAccountFields) -> Result<Self, Vec<String>> {
        ManagedAccountSettings::apply(Some(self), fields)
    }

    fn apply(base: Option<&ManagedAccountSettings>, f: ManagedAccountFields) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let name = required_text("name", f.name.or_else(|| base.map(|b| b.name.clone())), &mut errors);
        let contact_email = required_text(
            "contact_email",
            f.contact_email.or_else(|| base.map(|b| b.contact_email.clone())),
            &mut errors,
        );
        if let Some(e) = &contact_email {
            if !super::billing_profile::is_email(e) {
                errors.push(format!("contact_email must be an email address, got {e:?}"));
            }
        }
        let email_domain = match f.email_domain {
            Some(d) => text("email_domain", d, &mut errors),
            None => base.and_then(|b| b.email_domain.clone()),
        };
        let integration_tokens = match f.access_credential_tokens {
            Some(list) => {
                token_list("access_credential_tokens", "integration", Some(list), IntegrationToken::parse, &mut errors)
            }
            None => base.map(|b| b.integration_tokens.clone()).unwrap_or_default(),
        };
        let rule_tokens = match f.billing_rule_tokens {
            Some(list) => token_list("billing_rule_tokens", "billing rule", Some(list), RuleToken::parse, &mut errors),
            None => base.map(|b| b.rule_tokens.clone()).unwrap_or_default(),
        };
        let invoicing = apply_invoicing(
            base.map(|b| &b.invoicing),
            InvoicingRequest {
                profile: f.msp_billing_profile_token,
                terms: f.payment_terms_days,
                include_own: f.include_managed_account_integrations,
                billing: f.billing_information_attributes,
                business: f.business_information_attributes,
                tag_key: f.invoice_tag_key,
            },
            &mut errors,
        );
        match (name, contact_email) {
            (Some(name), Some(contact_email)) if errors.is_empty() => Ok(ManagedAccountSettings {
                name,
                contact_email,
                email_domain,
                integration_tokens,
                rule_tokens,
                invoicing,
            }),
            _ => Err(errors),
        }
    }
}

/// The invoicing fields of a request.
struct InvoicingRequest {
    profile: Option<String>,
    terms: Option<i64>,
    include_own: Option<bool>,
    billing: Option<BillingInformation>,
    business: Option<BusinessInformationFields>,
    tag_key: Option<String>,
}

/// The invoicing fields of a request over the stored ones.
fn apply_invoicing(base: Option<&Invoicing>, request: InvoicingRequest, errors: &mut Vec<String>) -> Invoicing {
    let InvoicingRequest { profile, terms, include_own, billing, business, tag_key } = request;
    let base = base.cloned().unwrap_or_default();
    let billing_profile = match profile.as_deref().map(str::trim) {
        None => base.billing_profile,
        Some("") => None,
        Some(t) => BillingProfileToken::parse(t).or_else(|| {
            errors.push(format!("msp_billing_profile_token: no billing profile {t} in this account"));
            None
        }),
    };
    let payment_terms_days = match terms {
        None => base.payment_terms_days,
        Some(d) if (0..=i64::from(MAX_PAYMENT_TERMS_DAYS)).contains(&d) => d as u32,
        Some(d) => {
            errors.push(format!("payment_terms_days must be between 0 and {MAX_PAYMENT_TERMS_DAYS}, got {d}"));
            base.payment_terms_days
        }
    };
    if include_own == Some(true) {
        // Never accepted and ignored: costd invoices what the MSP assigns, and says so.
        errors.push(
            "include_managed_account_integrations: costd invoices only the integrations the MSP assigns \
             (access_credential_tokens); a managed account's own integrations cannot be included"
                .to_string(),
        );
    }
    let billing = match billing {
        Some(b) => b.apply(&base.billing, "billing_information_attributes", errors),
        None => base.billing,
    };
    let custom_fields =
        business.and_then(|b| b.custom_fields("business_information_attributes", errors)).unwrap_or(base.custom_fields);
    let tag_key = match tag_key.as_deref().map(str::trim) {
        None => base.tag_key,
        Some("") => None,
        Some(k) if k.chars().count() > 255 => {
            errors.push("invoice_tag_key must be at most 255 characters".to_string());
            base.tag_key
        }
        Some(k) => Some(k.to_string()),
    };
    Invoicing { billing_profile, payment_terms_days, billing, custom_fields, tag_key }
}

/// A managed account as its parent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedAccount {
    pub account: Account,
    pub contact_email: String,
    pub email_domain: Option<String>,
    /// The parent's integrations whose costs it sees.
    pub integration_tokens: Vec<IntegrationToken>,
    /// The parent's billing rules it runs, in the order they were given (apply_to_all rules not included).
    pub rule_tokens: Vec<RuleToken>,
    pub invoicing: Invoicing,
}

impl ManagedAccount {
    /// Its settings, as an update request changes them.
    pub fn settings(&self) -> ManagedAccountSettings {
        ManagedAccountSettings {
            name: self.account.name.clone(),
            contact_email: self.contact_email.clone(),
            email_domain: self.email_domain.clone(),
            integration_tokens: self.integration_tokens.clone(),
            rule_tokens: self.rule_tokens.clone(),
            invoicing: self.invoicing.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managed_account_needs_a_name_and_a_real_email() {
        let e = ManagedAccountSettings::try_from(ManagedAccountFields::default()).unwrap_err();
        assert_eq!(e, vec!["name is required", "contact_email is required"]);
        let e = ManagedAccountSettings::try_from(ManagedAccountFields {
            name: Some("Acme".into()),
            contact_email: Some("nobody".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e[0].starts_with("contact_email must be an email address"));
    }

    #[test]
    fn duplicate_tokens_are_refused() {
        let e = ManagedAccountSettings::try_from(ManagedAccountFields {
            name: Some("Acme".into()),
            contact_email: Some("a@acme.com".into()),
            billing_rule_tokens: Some(vec!["bllng_rule_01".into(), "bllng_rule_01".into(), "acct_01".into()]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e,
            vec![
                "billing_rule_tokens: bllng_rule_01 is listed twice",
                "billing_rule_tokens: no billing rule acct_01 in this account"
            ]
        );
    }
}
