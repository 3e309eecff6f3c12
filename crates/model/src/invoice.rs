//! Invoices: the billing period a request names, the status life cycle, and the invoice document — the
//! cost lines, the adjustment lines and the total, computed exactly and stored whole, so a sent invoice
//! never changes when costs or rules do.
//!
//! Money: every cost line is the exact sum (18 places) of the managed account's costs for that provider,
//! service and charge type with its billing rules applied. The subtotal is their exact sum; a percentage
//! adjustment is that percentage of the subtotal (exact to 18 places); the total is the subtotal plus the
//! adjustments, rounded **once**, at the end, to 2 places, half away from zero. So the total differs from
//! `GET /v2/costs`' `total_cost` (the same sum, rounded the same way) only by the adjustments.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::amount::Amount;
use super::billing_profile::{
    AdjustmentItem, AdjustmentType, BankingInformation, BillingInformation, Calculation, CustomField,
};
use super::token::{AccountToken, InvoiceToken};

/// Where an invoice is in its life:
///
/// ```text
///   create ──▶ draft ──send──▶ sent ──send_and_approve──▶ approved
///               │ ▲                                          ▲
///               └─┘ regenerate                               │
///               └───────────────send_and_approve─────────────┘
/// ```
/// A draft can be regenerated (new lines from today's costs and rules; same number). Sending freezes it:
/// a sent or approved invoice's lines never change again, and `send` on one re-sends the same document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    Draft,
    Sent,
    Approved,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Sent => "sent",
            InvoiceStatus::Approved => "approved",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceStatus> {
        match s {
            "draft" => Some(InvoiceStatus::Draft),
            "sent" => Some(InvoiceStatus::Sent),
            "approved" => Some(InvoiceStatus::Approved),
            _ => None,
        }
    }

    /// Frozen: its document is final.
    pub fn is_frozen(self) -> bool {
        self != InvoiceStatus::Draft
    }

    /// The status after `send` (a re-send keeps an approved invoice approved).
    pub fn after_send(self) -> InvoiceStatus {
        match self {
            InvoiceStatus::Draft | InvoiceStatus::Sent => InvoiceStatus::Sent,
            InvoiceStatus::Approved => InvoiceStatus::Approved,
        }
    }
}

/// The longest period one invoice may cover: a year (an invoice spanning more is surely a wrong date).
pub const MAX_PERIOD_DAYS: i64 = 366;

/// A billing period, both ends included (as `GET /v2/costs`' start_date and end_date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingPeriod {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl BillingPeriod {
    /// Parses `billing_period_start` and `billing_period_end` (`YYYY-MM-DD`).
    pub fn parse(start: Option<&str>, end: Option<&str>) -> Result<BillingPeriod, Vec<String>> {
        let mut errors = Vec::new();
        let mut date = |field: &str, v: Option<&str>| match v.map(str::trim) {
            None | Some("") => {
                errors.push(format!("{field} is required (YYYY-MM-DD)"));
                None
            }
            Some(v) => match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    errors.push(format!("{field} must be a date (YYYY-MM-DD), got {v:?}"));
                    None
                }
            },
        };
        let start = date("billing_period_start", start);
        let end = date("billing_period_end", end);
        let (Some(start), Some(end)) = (start, end) else { return Err(errors) };
        if end < start {
            return Err(vec![format!("billing_period_end ({end}) must not be before billing_period_start ({start})")]);
        }
        if (end - start).num_days() >= MAX_PERIOD_DAYS {
            return Err(vec![format!(
                "the billing period {start}..{end} is longer than a year; invoice each period separately"
            )]);
        }
        Ok(BillingPeriod { start, end })
    }

    pub fn overlaps(&self, other: &BillingPeriod) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// Who an invoice is from or to, as printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub billing: BillingInformation,
    pub custom_fields: Vec<CustomField>,
}

/// One cost line: the costs of one provider, service and charge type in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    pub provider: String,
    pub service: String,
    pub charge_type: String,
    pub amount: Amount,
}

/// One adjustment line, with its signed amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentLine {
    pub name: String,
    pub adjustment_type: AdjustmentType,
    pub calculation_type: Calculation,
    /// The percentage or fixed amount as configured.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: rust_decimal::Decimal,
    /// What it adds (negative: subtracts).
    pub amount: Amount,
}

/// An invoice's content, as generated and as stored: what the PDF and CSV print and what `total` is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDocument {
    pub seller: Party,
    pub buyer: Party,
    pub banking: Option<BankingInformation>,
    pub issued_on: NaiveDate,
    pub due_on: NaiveDate,
    pub payment_terms_days: u32,
    pub currency: String,
    pub lines: Vec<CostLine>,
    /// Exact sum of the cost lines.
    pub subtotal: Amount,
    pub adjustments: Vec<AdjustmentLine>,
    /// Subtotal plus adjustments, rounded once to 2 places, half away from zero.
    pub total: Amount,
    /// The tag key the lines are grouped by (their `provider` holds its value, `""` for a cost without it);
    /// `None`: by provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_key: Option<String>,
    /// How the costs came to be in `currency`, when the managed account's workspace converts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<InvoiceConversion>,
}

/// The exchange rates an invoice's costs were converted by (docs/currency.md), as printed on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceConversion {
    /// Each cost at the rate of its own day, or of its billing period's last day.
    pub end_of_billing_period: bool,
    pub rates: Vec<RateUsed>,
}

/// One rate an invoice used: `1 base = rate currency`, in effect from `effective_date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateUsed {
    pub base: String,
    pub currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: rust_decimal::Decimal,
    pub effective_date: NaiveDate,
}

impl InvoiceConversion {
    /// What the invoice prints: how the costs were converted, then one sentence per rate.
    pub fn lines(&self, to: &str) -> Vec<String> {
        let when = if self.end_of_billing_period {
            "the rate in effect on the last day of its month"
        } else {
            "the rate in effect on its own day"
        };
        let mut lines = vec![format!("Costs converted to {to}, each at {when}:")];
        lines.extend(self.rates.iter().map(|r| {
            format!("1 {} = {} {}, in effect from {}", r.base, r.rate.normalize(), r.currency, r.effective_date)
        }));
        lines
    }
}

/// What goes into an invoice before it is computed.
#[derive(Debug, Clone)]
pub struct InvoiceInput {
    pub seller: Party,
    pub buyer: Party,
    pub banking: Option<BankingInformation>,
    pub issued_on: NaiveDate,
    pub payment_terms_days: u32,
    pub currency: String,
    /// (provider, service, charge_type, amount) rows, in any order and possibly repeating a key.
    pub costs: Vec<(String, String, String, Amount)>,
    pub adjustments: Vec<AdjustmentItem>,
    pub conversion: Option<InvoiceConversion>,
    /// The costs' first field is this tag's value rather than the provider.
    pub tag_key: Option<String>,
}

/// The default payment terms (Vantage's: "Defaults to 10").
pub const DEFAULT_PAYMENT_TERMS_DAYS: u32 = 10;

/// Most days of payment terms accepted.
pub const MAX_PAYMENT_TERMS_DAYS: u32 = 365;

impl InvoiceDocument {
    /// Computes the invoice: lines summed per (provider, service, charge type) and sorted by provider,
    /// service, charge type; adjustments in the profile's order; the total rounded once. `Err` names an
    /// amount that does not fit (38 digits).
    pub fn compute(input: InvoiceInput) -> Result<InvoiceDocument, String> {
        let too_big = || "the invoice's amounts do not fit 38 digits".to_string();
        let mut sums: std::collections::BTreeMap<(String, String, String), Amount> = Default::default();
        for (provider, service, charge_type, amount) in input.costs {
            let slot = sums.entry((provider, service, charge_type)).or_insert(Amount::ZERO);
            *slot = slot.checked_add(amount).ok_or_else(too_big)?;
        }
        let lines: Vec<CostLine> = sums
            .into_iter()
            .map(|((provider, service, charge_type), amount)| CostLine { provider, service, charge_type, amount })
            .collect();
        let subtotal = lines.iter().try_fold(Amount::ZERO, |acc, l| acc.checked_add(l.amount)).ok_or_else(too_big)?;
        let mut adjustments = Vec::with_capacity(input.adjustments.len());
        let mut total = subtotal;
        for item in input.adjustments {
            let magnitude = match item.calculation_type {
                Calculation::Fixed => Amount::from_decimal(item.amount),
                Calculation::Percentage => subtotal.percent(item.amount),
            }
            .ok_or_else(too_big)?;
            let amount = match item.adjustment_type {
                AdjustmentType::Charge => magnitude,
                AdjustmentType::Credit | AdjustmentType::Discount => magnitude.negated(),
            };
            total = total.checked_add(amount).ok_or_else(too_big)?;
            adjustments.push(AdjustmentLine {
                name: item.name,
                adjustment_type: item.adjustment_type,
                calculation_type: item.calculation_type,
                rate: item.amount,
                amount,
            });
        }
        let due_on = input.issued_on + chrono::Duration::days(i64::from(input.payment_terms_days));
        let places = currency_places(&input.currency);
        Ok(InvoiceDocument {
            seller: input.seller,
            buyer: input.buyer,
            banking: input.banking,
            issued_on: input.issued_on,
            due_on,
            payment_terms_days: input.payment_terms_days,
            currency: input.currency,
            lines,
            subtotal,
            adjustments,
            total: total.rounded(places),
            conversion: input.conversion,
            tag_key: input.tag_key,
        })
    }

    /// The invoice as printed: each cost line and adjustment at the currency's places (half away from
    /// zero), the subtotal the sum of the printed lines, and the rounding line that makes what is printed add
    /// up to the total exactly (the total is rounded once from the exact amounts, so the printed lines'
    /// own roundings are what the rounding line gives back).
    pub fn printed(&self) -> Printed {
        let places = currency_places(&self.currency);
        let lines: Vec<Amount> = self.lines.iter().map(|l| l.amount.rounded(places)).collect();
        let adjustments: Vec<Amount> = self.adjustments.iter().map(|a| a.amount.rounded(places)).collect();
        // Each printed amount is within half a unit of its exact one: the sums stay far inside 38 digits.
        let subtotal = lines.iter().fold(Amount::ZERO, |acc, l| acc.checked_add(*l).unwrap_or(acc));
        let shown = adjustments.iter().fold(subtotal, |acc, a| acc.checked_add(*a).unwrap_or(acc));
        let rounding = self.total.checked_sub(shown).unwrap_or(Amount::ZERO);
        Printed { places, lines, subtotal, adjustments, rounding }
    }
}

/// What an invoice prints ([`InvoiceDocument::printed`]): amounts at the currency's places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    /// The currency's decimal places.
    pub places: u32,
    /// Each cost line, in the document's order.
    pub lines: Vec<Amount>,
    /// The sum of the printed lines.
    pub subtotal: Amount,
    /// Each adjustment, in the document's order.
    pub adjustments: Vec<Amount>,
    /// The total less everything printed above it (zero when the roundings cancel out).
    pub rounding: Amount,
}

/// The decimal places a currency's amounts are paid in (ISO 4217's minor units): none for the yen, won and
/// the like, three for the Gulf dinars, two for every other code.
pub fn currency_places(code: &str) -> u32 {
    const NONE: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    if NONE.contains(&code) {
        0
    } else if THREE.contains(&code) {
        3
    } else {
        2
    }
}

/// Formats an invoice number: `INV-000042`. Numbers count from 1 per MSP account with no gaps.
pub fn invoice_number(n: i64) -> String {
    format!("INV-{n:06}")
}

/// A stored invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub token: InvoiceToken,
    /// 1, 2, 3… per MSP account, without gaps.
    pub number: i64,
    pub msp_account_token: AccountToken,
    /// The managed account invoiced.
    pub account_token: AccountToken,
    /// Its name when the invoice was made.
    pub account_name: String,
    pub period: BillingPeriod,
    pub status: InvoiceStatus,
    pub document: InvoiceDocument,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An invoice to number and record.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub account_token: AccountToken,
    pub account_name: String,
    pub period: BillingPeriod,
    pub document: InvoiceDocument,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn a(s: &str) -> Amount {
        Amount::parse("a", s).unwrap()
    }

    fn input(costs: Vec<(&str, &str, &str, &str)>, adjustments: Vec<AdjustmentItem>) -> InvoiceInput {
        InvoiceInput {
            seller: Party::default(),
            buyer: Party::default(),
            banking: None,
            issued_on: NaiveDate::from_ymd_opt(2024, 10, 1).unwrap(),
            payment_terms_days: 10,
            currency: "USD".into(),
            costs: costs.into_iter().map(|(p, s, c, x)| (p.into(), s.into(), c.into(), a(x))).collect(),
            adjustments,
            conversion: None,
            tag_key: None,
        }
    }

    fn item(t: AdjustmentType, c: Calculation, amount: &str) -> AdjustmentItem {
        AdjustmentItem { name: "x".into(), adjustment_type: t, calculation_type: c, amount: amount.parse().unwrap() }
    }

    #[test]
    fn lines_group_by_provider_service_and_charge_type_and_the_total_rounds_once() {
        let doc = InvoiceDocument::compute(input(
            vec![
                ("aws", "EC2", "Usage", "0.004"),
                ("aws", "EC2", "Usage", "0.001"),
                ("aws", "S3", "Usage", "0.0049"),
                ("azure", "VM", "Tax", "1"),
            ],
            vec![
                item(AdjustmentType::Charge, Calculation::Percentage, "10"),
                item(AdjustmentType::Discount, Calculation::Fixed, "0.5"),
            ],
        ))
        .unwrap();
        assert_eq!(doc.lines.len(), 3);
        assert_eq!(doc.lines[0].amount.to_string(), "0.005");
        assert_eq!(doc.subtotal.to_string(), "1.0099");
        assert_eq!(doc.adjustments[0].amount.to_string(), "0.10099");
        assert_eq!(doc.adjustments[1].amount.to_string(), "-0.5");
        // 1.0099 + 0.10099 − 0.5 = 0.61089 → 0.61 (rounding each line first would give 1.01 + 0.10 − 0.50).
        assert_eq!(doc.total.to_string(), "0.61");
        assert_eq!(doc.due_on, NaiveDate::from_ymd_opt(2024, 10, 11).unwrap());
    }

    #[test]
    fn printed_lines_are_at_the_currencys_places_and_a_rounding_line_makes_them_add_up() {
        let doc = InvoiceDocument::compute(input(
            vec![("aws", "EC2", "Usage", "0.004"), ("aws", "S3", "Usage", "0.004"), ("aws", "RDS", "Usage", "0.004")],
            vec![item(AdjustmentType::Charge, Calculation::Percentage, "10")],
        ))
        .unwrap();
        // 0.012 + 0.0012 = 0.0132 → 0.01; each line prints 0.00 and the charge 0.00: the rounding line is 0.01.
        let printed = doc.printed();
        assert_eq!(printed.lines, vec![Amount::ZERO; 3]);
        assert_eq!((printed.subtotal, printed.adjustments.clone()), (Amount::ZERO, vec![Amount::ZERO]));
        assert_eq!(printed.rounding.to_string(), "0.01");
        let sum =
            printed.lines.iter().chain(&printed.adjustments).fold(printed.rounding, |s, x| s.checked_add(*x).unwrap());
        assert_eq!(sum, doc.total);
        // A yen invoice is in whole yen, its total too.
        let mut yen = input(vec![("p", "s", "c", "100.5"), ("p", "t", "c", "0.4")], vec![]);
        yen.currency = "JPY".into();
        let doc = InvoiceDocument::compute(yen).unwrap();
        assert_eq!(doc.total.to_string(), "101.0");
        let printed = doc.printed();
        assert_eq!(
            (printed.places, printed.lines.clone(), printed.rounding),
            (0, vec![a("101"), a("0")], Amount::ZERO)
        );
        assert_eq!((currency_places("KWD"), currency_places("EUR")), (3, 2));
    }

    proptest! {
        /// Whatever the lines, what an invoice prints adds up to its total exactly.
        #[test]
        fn printed_amounts_add_up_to_the_total(
            lines in prop::collection::vec(-10_000_000_000i64..10_000_000_000, 1..20),
            pct in 0u32..50,
        ) {
            let costs: Vec<(String, String, String, Amount)> = lines
                .iter()
                .enumerate()
                .map(|(i, x)| ("p".to_string(), format!("s{i}"), "c".to_string(), Amount::from_decimal(Decimal::new(*x, 6)).unwrap()))
                .collect();
            let mut i = input(vec![], vec![item(AdjustmentType::Discount, Calculation::Percentage, &pct.to_string())]);
            i.costs = costs;
            let doc = InvoiceDocument::compute(i).unwrap();
            let p = doc.printed();
            let sum = p.lines.iter().chain(&p.adjustments).fold(p.rounding, |s, x| s.checked_add(*x).unwrap());
            prop_assert_eq!(sum, doc.total);
            prop_assert!(p.lines.iter().all(|l| l.rounded(2) == *l));
        }
    }

    #[test]
    fn half_a_cent_rounds_away_from_zero_both_ways() {
        let up = InvoiceDocument::compute(input(vec![("p", "s", "c", "10.005")], vec![])).unwrap();
        assert_eq!(up.total.to_string(), "10.01");
        let down = InvoiceDocument::compute(input(vec![("p", "s", "c", "-10.005")], vec![])).unwrap();
        assert_eq!(down.total.to_string(), "-10.01");
    }

    #[test]
    fn periods_must_be_real_ordered_and_at_most_a_year() {
        assert!(BillingPeriod::parse(Some("2024-09-01"), Some("2024-09-30")).is_ok());
        let e = BillingPeriod::parse(Some("2024-13-01"), None).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(
            BillingPeriod::parse(Some("2024-09-30"), Some("2024-09-01")).unwrap_err()[0].contains("must not be before")
        );
        assert!(
            BillingPeriod::parse(Some("2024-01-01"), Some("2025-01-01")).unwrap_err()[0].contains("longer than a year")
        );
    }

    proptest! {
        /// The invoice total is the exact sum of the costs plus each adjustment (a percentage of that exact
        /// sum), rounded once: checked against rust_decimal arithmetic.
        #[test]
        fn the_total_is_the_rounded_exact_sum_of_costs_and_adjustments(
            costs in proptest::collection::vec((0u8..3, 0u8..3, -1_000_000_000i64..1_000_000_000, 0u32..9), 0..40),
            adjustments in proptest::collection::vec((0u8..3, any::<bool>(), 0u32..100_000, 2u32..6), 0..4),
        ) {
            let costs: Vec<(String, String, String, Amount)> = costs
                .iter()
                .map(|(p, s, m, scale)| {
                    let d = Decimal::new(*m, *scale);
                    (format!("p{p}"), format!("s{s}"), "Usage".to_string(), Amount::from_decimal(d).unwrap())
                })
                .collect();
            let items: Vec<AdjustmentItem> = adjustments
                .iter()
                .map(|(t, pct, m, scale)| AdjustmentItem {
                    name: "adj".into(),
                    adjustment_type: [AdjustmentType::Charge, AdjustmentType::Credit, AdjustmentType::Discount][*t as usize],
                    calculation_type: if *pct { Calculation::Percentage } else { Calculation::Fixed },
                    amount: Decimal::new(i64::from(*m), *scale),
                })
                .collect();
            // Through text: an amount at 18 places can exceed what a Decimal holds; its digits never do.
            let d = |a: Amount| Decimal::from_str(&a.to_string()).unwrap();
            let subtotal: Decimal = costs.iter().map(|c| d(c.3)).sum();
            let mut expected = subtotal;
            for i in &items {
                let magnitude = match i.calculation_type {
                    Calculation::Fixed => i.amount,
                    Calculation::Percentage => (subtotal * i.amount / Decimal::ONE_HUNDRED)
                        .round_dp_with_strategy(18, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
                };
                expected += if i.adjustment_type == AdjustmentType::Charge { magnitude } else { -magnitude };
            }
            let expected = expected.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
            let doc = InvoiceDocument::compute(InvoiceInput { costs, adjustments: items, ..input(vec![], vec![]) }).unwrap();
            prop_assert_eq!(d(doc.subtotal), subtotal);
            prop_assert_eq!(d(doc.total), expected.normalize());
            let line_sum: Decimal = doc.lines.iter().map(|l| d(l.amount)).sum();
            prop_assert_eq!(line_sum, subtotal);
        }
    }
}
