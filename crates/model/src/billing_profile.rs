//! MSP billing profiles: who sends an invoice (company, address, bank details, custom fields) and the
//! adjustments (taxes, fees, discounts) every invoice under the profile carries. Also the billing details
//! of a managed account (the invoice's customer), which share the same parts.
//!
//! On the wire each part is an `…_attributes` object with a `token` (Rails' nested attributes, as Vantage
//! writes them); a part's token is derived from its owner's token, so it is stable and needs no storage,
//! and a `token` or `id` sent back in a request is ignored.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::token::BillingProfileToken;
use super::{decimal, text, MAX_TEXT_LEN};

/// Billing address and contact (a profile's, or a managed account's as the invoice's customer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillingInformation {
    pub company_name: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: Option<String>,
    pub address_line_1: Option<String>,
    pub address_line_2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub billing_email: Option<Vec<String>>,
}

impl BillingInformation {
    /// The address as printed on an invoice, a line each, blank parts left out.
    pub fn address_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> =
            [&self.address_line_1, &self.address_line_2].into_iter().flatten().cloned().collect();
        let city_line: Vec<&str> =
            [&self.postal_code, &self.city, &self.state].into_iter().flatten().map(String::as_str).collect();
        if !city_line.is_empty() {
            lines.push(city_line.join(" "));
        }
        if let Some(c) = &self.country_code {
            lines.push(c.clone());
        }
        lines
    }
}

/// A named value printed on invoices (a VAT number, a purchase order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomField {
    pub name: String,
    pub value: Option<String>,
}

/// Bank details printed on invoices so the customer can pay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankingInformation {
    pub bank_name: Option<String>,
    pub beneficiary_name: Option<String>,
    pub tax_id: Option<String>,
    pub account_number: Option<String>,
    pub routing_number: Option<String>,
    pub iban: Option<String>,
    pub swift_bic: Option<String>,
}

/// Which way an adjustment moves the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdjustmentType {
    /// Adds (a tax, a fee).
    Charge,
    /// Subtracts.
    Credit,
    /// Subtracts.
    Discount,
}

impl AdjustmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentType::Charge => "charge",
            AdjustmentType::Credit => "credit",
            AdjustmentType::Discount => "discount",
        }
    }
}

/// How an adjustment's amount is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Calculation {
    /// That much money, in the invoice's currency.
    Fixed,
    /// That percentage of the invoice's cost subtotal.
    Percentage,
}

impl Calculation {
    pub fn as_str(self) -> &'static str {
        match self {
            Calculation::Fixed => "fixed",
            Calculation::Percentage => "percentage",
        }
    }
}

/// One tax, fee, credit or discount line that every invoice under a profile carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentItem {
    pub name: String,
    pub adjustment_type: AdjustmentType,
    pub calculation_type: Calculation,
    /// Never negative: the type gives the sign.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// The most a percentage adjustment may be: a discount or credit of more than the whole subtotal is
/// surely a typo.
pub const MAX_ADJUSTMENT_PERCENTAGE: u32 = 100;

/// Everything a profile says, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingProfileSettings {
    pub nickname: String,
    pub billing: BillingInformation,
    pub custom_fields: Vec<CustomField>,
    pub banking: Option<BankingInformation>,
    pub adjustments: Vec<AdjustmentItem>,
}

/// `business_information_attributes` as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessInformationFields {
    pub metadata: Option<BusinessMetadataFields>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BusinessMetadataFields {
    pub custom_fields: Option<Vec<CustomFieldFields>>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomFieldFields {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// `banking_information_attributes` as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BankingInformationFields {
    pub bank_name: Option<String>,
    pub beneficiary_name: Option<String>,
    pub tax_id: Option<String>,
    pub secure_data: Option<SecureDataFields>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecureDataFields {
    pub account_number: Option<String>,
    pub routing_number: Option<String>,
    pub iban: Option<String>,
    pub swift_bic: Option<String>,
}

/// `invoice_adjustment_attributes` as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvoiceAdjustmentFields {
    pub adjustment_items: Option<Vec<AdjustmentItemFields>>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdjustmentItemFields {
    pub name: Option<String>,
    pub adjustment_type: Option<String>,
    pub calculation_type: Option<String>,
    /// A JSON number or a decimal string (Vantage's spec says number; its Python client sends a string).
    pub amount: Option<Value>,
}

/// A create or update request as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillingProfileFields {
    pub nickname: Option<String>,
    pub billing_information_attributes: Option<BillingInformation>,
    pub business_information_attributes: Option<BusinessInformationFields>,
    pub banking_information_attributes: Option<BankingInformationFields>,
    pub invoice_adjustment_attributes: Option<InvoiceAdjustmentFields>,
}

/// An optional text field: trimmed, blank is none, at most [`MAX_TEXT_LEN`] characters.
fn optional(field: &str, value: Option<String>, errors: &mut Vec<String>) -> Option<String> {
    let v = value?;
    let trimmed = v.trim();
    if trimmed.is_empty() {
        return None;
    }
    text(field, trimmed.to_string(), errors)
}

/// An email address, loosely: something@domain.tld, no spaces.
pub fn is_email(e: &str) -> bool {
    !e.contains(char::is_whitespace)
        && e.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
}

impl BillingInformation {
    /// `self`, as a request sent it (`token`/`id` ignored), over `base`: a key sent replaces the stored one,
    /// a key left out keeps it, and an empty string clears it; checked.
    pub fn apply(self, base: &BillingInformation, prefix: &str, errors: &mut Vec<String>) -> BillingInformation {
        let f = |name: &str| format!("{prefix}.{name}");
        let pick = |sent: Option<String>, stored: &Option<String>, name: &str, errors: &mut Vec<String>| match sent {
            Some(v) => optional(&f(name), Some(v), errors),
            None => stored.clone(),
        };
        let country_code = match self.country_code {
            Some(c) => {
                let c = c.trim().to_ascii_uppercase();
                if c.is_empty() {
                    None
                } else if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                    Some(c)
                } else {
                    errors.push(format!("{} must be a two-letter ISO country code, got {c:?}", f("country_code")));
                    None
                }
            }
            None => base.country_code.clone(),
        };
        let billing_email = match self.billing_email {
            Some(list) => {
                let mut out = Vec::new();
                for e in list {
                    let e = e.trim().to_string();
                    if !is_email(&e) {
                        errors.push(format!("{} must hold email addresses, got {e:?}", f("billing_email")));
                    } else if !out.contains(&e) {
                        out.push(e);
                    }
                }
                (!out.is_empty()).then_some(out)
            }
            None => base.billing_email.clone(),
        };
        BillingInformation {
            company_name: pick(self.company_name, &base.company_name, "company_name", errors),
            country_code,
            address_line_1: pick(self.address_line_1, &base.address_line_1, "address_line_1", errors),
            address_line_2: pick(self.address_line_2, &base.address_line_2, "address_line_2", errors),
            city: pick(self.city, &base.city, "city", errors),
            state: pick(self.state, &base.state, "state", errors),
            postal_code: pick(self.postal_code, &base.postal_code, "postal_code", errors),
            billing_email,
        }
    }
}

impl BusinessInformationFields {
    /// The custom fields this sets (`None`: not sent, keep the stored ones).
    pub fn custom_fields(self, prefix: &str, errors: &mut Vec<String>) -> Option<Vec<CustomField>> {
        let list = self.metadata?.custom_fields?;
        let mut out = Vec::new();
        for (i, c) in list.into_iter().enumerate() {
            let field = format!("{prefix}.metadata.custom_fields[{i}]");
            match c.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) {
                Some(name) if name.chars().count() <= MAX_TEXT_LEN => {
                    out.push(CustomField { name, value: optional(&format!("{field}.value"), c.value, errors) })
                }
                Some(_) => errors.push(format!("{field}.name must be at most {MAX_TEXT_LEN} characters")),
                None => errors.push(format!("{field}.name is required")),
            }
        }
        Some(out)
    }
}

impl BankingInformationFields {
    fn apply(self, base: Option<&BankingInformation>, errors: &mut Vec<String>) -> BankingInformation {
        let base = base.cloned().unwrap_or_default();
        let p = "banking_information_attributes";
        let pick = |sent: Option<String>, stored: Option<String>, name: &str, errors: &mut Vec<String>| match sent {
            Some(v) => optional(&format!("{p}.{name}"), Some(v), errors),
            None => stored,
        };
        let secure = self.secure_data.unwrap_or_default();
        BankingInformation {
            bank_name: pick(self.bank_name, base.bank_name, "bank_name", errors),
            beneficiary_name: pick(self.beneficiary_name, base.beneficiary_name, "beneficiary_name", errors),
            tax_id: pick(self.tax_id, base.tax_id, "tax_id", errors),
            account_number: pick(secure.account_number, base.account_number, "secure_data.account_number", errors),
            routing_number: pick(secure.routing_number, base.routing_number, "secure_data.routing_number", errors),
            iban: pick(secure.iban.map(|i| i.replace(' ', "")), base.iban, "secure_data.iban", errors),
            swift_bic: pick(secure.swift_bic, base.swift_bic, "secure_data.swift_bic", errors),
        }
    }
}

impl AdjustmentItemFields {
    fn parse(self, i: usize, errors: &mut Vec<String>) -> Option<AdjustmentItem> {
        let field = format!("invoice_adjustment_attributes.adjustment_items[{i}]");
        let before = errors.len();
        let name = match self.name.map(|n| n.trim().to_string()) {
            Some(n) if !n.is_empty() => text(&format!("{field}.name"), n, errors),
            _ => {
                errors.push(format!("{field}.name is required"));
                None
            }
        };
        let adjustment_type = match self.adjustment_type.as_deref().map(|t| t.trim().to_ascii_lowercase()).as_deref() {
            None | Some("charge") => Some(AdjustmentType::Charge),
            Some("credit") => Some(AdjustmentType::Credit),
            Some("discount") => Some(AdjustmentType::Discount),
            Some(other) => {
                errors.push(format!("{field}.adjustment_type must be charge, credit or discount, got {other:?}"));
                None
            }
        };
        let calculation_type = match self.calculation_type.as_deref().map(|t| t.trim().to_ascii_lowercase()).as_deref()
        {
            Some("fixed") => Some(Calculation::Fixed),
            Some("percentage") => Some(Calculation::Percentage),
            Some(other) => {
                errors.push(format!("{field}.calculation_type must be fixed or percentage, got {other:?}"));
                None
            }
            None => {
                errors.push(format!("{field}.calculation_type is required (fixed or percentage)"));
                None
            }
        };
        let amount = match self.amount {
            None | Some(Value::Null) => {
                errors.push(format!("{field}.amount is required"));
                None
            }
            Some(v) => match decimal::from_json(&format!("{field}.amount"), &v) {
                Ok(a) if a.is_sign_negative() && !a.is_zero() => {
                    errors.push(format!(
                        "{field}.amount must not be negative (got {a}); use adjustment_type credit or discount to subtract"
                    ));
                    None
                }
                Ok(a) => Some(a),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        if let (Some(Calculation::Percentage), Some(a)) = (calculation_type, amount) {
            if a > Decimal::from(MAX_ADJUSTMENT_PERCENTAGE) {
                errors.push(format!(
                    "{field}.amount is a percentage and must be at most {MAX_ADJUSTMENT_PERCENTAGE} (got {a})"
                ));
            }
        }
        if let (Some(Calculation::Fixed), Some(a)) = (calculation_type, amount) {
            if super::amount::Amount::from_decimal(a).is_none() {
                errors.push(format!("{field}.amount {a} does not fit an amount"));
            }
        }
        if errors.len() > before {
            return None;
        }
        Some(AdjustmentItem {
            name: name?,
            adjustment_type: adjustment_type?,
            calculation_type: calculation_type?,
            amount: amount?,
        })
    }
}

impl BillingProfileSettings {
    /// A new profile from a create request.
    pub fn create(fields: BillingProfileFields) -> Result<Self, Vec<String>> {
        let empty = BillingProfileSettings {
            nickname: String::new(),
            billing: BillingInformation::default(),
            custom_fields: Vec::new(),
            banking: None,
            adjustments: Vec::new(),
        };
        if fields.nickname.is_none() {
            let mut errors = vec!["nickname is required".to_string()];
            // Report the other problems too.
            if let Err(more) = empty.update(BillingProfileFields { nickname: Some("-".into()), ..fields }) {
                errors.extend(more);
            }
            return Err(errors);
        }
        empty.update(fields)
    }

    /// This profile with an update request applied: what a request sets replaces, the rest stays; a sent
    /// `adjustment_items` or `custom_fields` list replaces the whole list.
    pub fn update(&self, fields: BillingProfileFields) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let nickname = match fields.nickname {
            Some(n) => text("nickname", n.trim().to_string(), &mut errors).unwrap_or_default(),
            None => self.nickname.clone(),
        };
        let billing = match fields.billing_information_attributes {
            Some(b) => b.apply(&self.billing, "billing_information_attributes", &mut errors),
            None => self.billing.clone(),
        };
        let custom_fields = fields
            .business_information_attributes
            .and_then(|b| b.custom_fields("business_information_attributes", &mut errors))
            .unwrap_or_else(|| self.custom_fields.clone());
        let banking = match fields.banking_information_attributes {
            Some(b) => {
                Some(b.apply(self.banking.as_ref(), &mut errors)).filter(|b| *b != BankingInformation::default())
            }
            None => self.banking.clone(),
        };
        let adjustments = match fields.invoice_adjustment_attributes.and_then(|a| a.adjustment_items) {
            Some(items) => items.into_iter().enumerate().filter_map(|(i, item)| item.parse(i, &mut errors)).collect(),
            None => self.adjustments.clone(),
        };
        if errors.is_empty() {
            Ok(BillingProfileSettings { nickname, billing, custom_fields, banking, adjustments })
        } else {
            Err(errors)
        }
    }
}

/// Shows the last four characters of a secret (an account number, an IBAN) and masks the rest: API reads
/// never give bank details back whole; the invoice PDF, which the customer needs to pay, prints them.
pub fn masked(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let keep = chars.len().min(4);
    let shown: String = chars[chars.len() - keep..].iter().collect();
    format!("{}{shown}", "*".repeat(chars.len() - keep))
}

/// A stored billing profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingProfile {
    pub token: BillingProfileToken,
    pub settings: BillingProfileSettings,
    /// Managed accounts linked to it.
    pub managed_accounts_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> BillingProfileFields {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_profile_needs_a_nickname_and_reports_every_other_problem_too() {
        let e = BillingProfileSettings::create(fields(json!({
            "billing_information_attributes": {"country_code": "Germany", "billing_email": ["x"]},
        })))
        .unwrap_err();
        assert_eq!(e[0], "nickname is required");
        assert!(e.iter().any(|m| m.contains("country_code must be a two-letter")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("billing_email must hold email addresses")), "{e:?}");
    }

    #[test]
    fn adjustments_parse_numbers_and_strings_exactly_and_refuse_nonsense() {
        let p = BillingProfileSettings::create(fields(json!({
            "nickname": "EU",
            "invoice_adjustment_attributes": {"token": "ignored", "adjustment_items": [
                {"name": "VAT", "calculation_type": "percentage", "amount": 19},
                {"name": "Fee", "adjustment_type": "charge", "calculation_type": "fixed", "amount": "12.345"},
                {"name": "Loyalty", "adjustment_type": "Discount", "calculation_type": "percentage", "amount": 0.1}
            ]}
        })))
        .unwrap();
        assert_eq!(p.adjustments.len(), 3);
        assert_eq!(p.adjustments[0].adjustment_type, AdjustmentType::Charge);
        assert_eq!(p.adjustments[1].amount.to_string(), "12.345");
        assert_eq!(p.adjustments[2].amount.to_string(), "0.1");
        let e = BillingProfileSettings::create(fields(json!({
            "nickname": "Bad",
            "invoice_adjustment_attributes": {"adjustment_items": [
                {"name": "A", "calculation_type": "percentage", "amount": 150},
                {"name": "B", "calculation_type": "fixed", "amount": -3},
                {"name": "", "adjustment_type": "tax", "calculation_type": "sometimes"},
            ]}
        })))
        .unwrap_err();
        assert_eq!(e.len(), 6, "{e:?}");
        assert!(e[0].contains("[0].amount is a percentage and must be at most 100"));
        assert!(e[1].contains("[1].amount must not be negative"));
        assert!(e[2].contains("[2].name is required"));
    }

    #[test]
    fn an_update_keeps_what_it_does_not_send_and_clears_what_it_blanks() {
        let p = BillingProfileSettings::create(fields(json!({
            "nickname": "US",
            "billing_information_attributes": {"company_name": "Acme MSP", "city": "Austin", "country_code": "us"},
            "banking_information_attributes": {"bank_name": "First", "secure_data": {"iban": "DE89 3704 0044 0532 0130 00"}},
        })))
        .unwrap();
        assert_eq!(p.billing.country_code.as_deref(), Some("US"));
        assert_eq!(p.banking.as_ref().unwrap().iban.as_deref(), Some("DE89370400440532013000"));
        let q = p
            .update(fields(json!({"billing_information_attributes": {"token": "x", "city": ""}, "nickname": "US 2"})))
            .unwrap();
        assert_eq!(q.nickname, "US 2");
        assert_eq!(q.billing.company_name.as_deref(), Some("Acme MSP"));
        assert_eq!(q.billing.city, None);
        assert_eq!(q.banking, p.banking);
    }

    #[test]
    fn secrets_are_masked_but_for_the_last_four() {
        assert_eq!(masked("DE89370400440532013000"), "******************3000");
        assert_eq!(masked("12"), "12");
    }
}
