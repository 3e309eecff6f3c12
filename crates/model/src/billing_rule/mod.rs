//! Billing rules: the five rule types, each holding exactly its own fields, parsed from request fields.
//!
//! Three forms of a rule exist, each for one job:
//! - [`RuleFields`]: what a client sent (every field optional, numbers still raw JSON);
//! - [`RuleDefinition`]: a valid rule, built from fields by `TryFrom`, which collects every problem;
//! - [`RuleColumns`]: the flat text columns the store keeps and the API returns.
//!
//! An update overlays the client's fields on the stored rule's fields and parses the result again, so an
//! update can never leave a rule that a create would have refused.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::token::RuleToken;
use super::{decimal, required_text};

pub mod custom_sql;
use custom_sql::CustomSql;

/// The five rule types. Accepted in any case, shown capitalised as in Vantage's examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleType {
    Exclusion,
    Adjustment,
    Credit,
    Charge,
    Custom,
}

impl RuleType {
    /// The capitalised name the API returns.
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleType::Exclusion => "Exclusion",
            RuleType::Adjustment => "Adjustment",
            RuleType::Credit => "Credit",
            RuleType::Charge => "Charge",
            RuleType::Custom => "Custom",
        }
    }
}

impl fmt::Display for RuleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RuleType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "exclusion" => Ok(RuleType::Exclusion),
            "adjustment" => Ok(RuleType::Adjustment),
            "credit" => Ok(RuleType::Credit),
            "charge" => Ok(RuleType::Charge),
            "custom" => Ok(RuleType::Custom),
            _ => Err(format!("type must be one of exclusion, adjustment, credit, charge, custom (got {s:?})")),
        }
    }
}

/// The largest adjustment percentage accepted: 1000 shows ten times the cost. Anything above is far more
/// likely a typo (7500 for 75.00) than a markup, and would silently multiply a customer's bill.
pub const MAX_PERCENTAGE: u32 = 1000;

/// The largest credit or charge amount accepted per month (a trillion in the billing currency).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// Longest `sql_query` accepted; real rules are a few hundred characters.
pub const MAX_SQL_LEN: usize = 16 * 1024;

/// A valid billing rule's type-specific part: one variant per type, holding exactly that type's fields.
#[derive(Debug, Clone, PartialEq)]
pub enum BillingRule {
    /// Removes cost rows whose charge type equals `charge_type` (case-insensitive).
    Exclusion { charge_type: String },
    /// Shows `percentage` percent of each cost (75 shows 75%).
    Adjustment { percentage: Decimal },
    /// A monthly credit line item of −|amount|.
    Credit(LineItem),
    /// A monthly fee line item of +|amount|.
    Charge(LineItem),
    /// A custom SQL rule over the `costs` table, already checked against the allowed grammar.
    Custom(CustomSql),
}

impl BillingRule {
    /// The rule's type.
    pub fn rule_type(&self) -> RuleType {
        match self {
            BillingRule::Exclusion { .. } => RuleType::Exclusion,
            BillingRule::Adjustment { .. } => RuleType::Adjustment,
            BillingRule::Credit(_) => RuleType::Credit,
            BillingRule::Charge(_) => RuleType::Charge,
            BillingRule::Custom(_) => RuleType::Custom,
        }
    }
}

/// The line item a credit or charge rule adds each month.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    pub service: String,
    pub category: String,
    pub sub_category: String,
    pub amount: Decimal,
}

/// A valid billing rule: its common fields plus the type-specific [`BillingRule`].
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDefinition {
    pub title: String,
    pub rule: BillingRule,
    /// First day the rule touches (inclusive). For credits and charges, from `start_date` or `start_period`.
    pub start_date: Option<NaiveDate>,
    /// Last day the rule touches (inclusive); open-ended when absent.
    pub end_date: Option<NaiveDate>,
    /// The deprecated `start_period`, kept so clients that set it read it back.
    pub start_period: Option<NaiveDate>,
    pub apply_to_all: bool,
}

impl RuleDefinition {
    /// The group the rule runs in among a managed account's rules (docs/design.md "Billing rules").
    pub fn group(&self) -> RuleGroup {
        match &self.rule {
            BillingRule::Custom(sql) => sql.group(),
            BillingRule::Credit(_) | BillingRule::Charge(_) => RuleGroup::MonthlyInsert,
            BillingRule::Exclusion { .. } | BillingRule::Adjustment { .. } => RuleGroup::Transform,
        }
    }
}

/// The fields of a create or update request, as sent. Unknown fields are ignored, as Vantage does,
/// so clients that send every attribute (Terraform) work unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleFields {
    #[serde(rename = "type")]
    pub rule_type: Option<String>,
    pub title: Option<String>,
    pub start_period: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub apply_to_all: Option<bool>,
    pub charge_type: Option<String>,
    pub percentage: Option<Value>,
    pub service: Option<String>,
    pub category: Option<String>,
    pub sub_category: Option<String>,
    pub amount: Option<Value>,
    pub sql_query: Option<String>,
}

impl RuleFields {
    /// These fields with every field that `update` sets replacing this one's (null means "unchanged").
    pub fn overlay(self, update: RuleFields) -> RuleFields {
        fn pick<T>(new: Option<T>, old: Option<T>) -> Option<T> {
            new.or(old)
        }
        let number = |v: Option<Value>| v.filter(|v| !v.is_null());
        RuleFields {
            rule_type: pick(update.rule_type, self.rule_type),
            title: pick(update.title, self.title),
            start_period: pick(update.start_period, self.start_period),
            start_date: pick(update.start_date, self.start_date),
            end_date: pick(update.end_date, self.end_date),
            apply_to_all: pick(update.apply_to_all, self.apply_to_all),
            charge_type: pick(update.charge_type, self.charge_type),
            percentage: pick(number(update.percentage), self.percentage),
            service: pick(update.service, self.service),
            category: pick(update.category, self.category),
            sub_category: pick(update.sub_category, self.sub_category),
            amount: pick(number(update.amount), self.amount),
            sql_query: pick(update.sql_query, self.sql_query),
        }
    }
}

/// Parses `2024-05-01` or an ISO 8601 timestamp at any time of day (`2024-05-01T00:00:00Z`): the date is kept.
fn parse_date(field: &str, value: Option<String>, errors: &mut Vec<String>) -> Option<NaiveDate> {
    let value = value?;
    let text = value.trim();
    let date_part = text.get(..10).unwrap_or(text);
    let rest = text.get(10..).unwrap_or("");
    let well_formed_rest = rest.is_empty()
        || chrono::DateTime::parse_from_rfc3339(text).is_ok()
        || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").is_ok();
    match NaiveDate::parse_from_str(date_part, "%Y-%m-%d") {
        Ok(d) if well_formed_rest && (1900..=9999).contains(&chrono::Datelike::year(&d)) => Some(d),
        _ => {
            errors.push(format!("{field} must be a date like 2024-05-01, got {value:?}"));
            None
        }
    }
}

impl TryFrom<RuleFields> for RuleDefinition {
    type Error = Vec<String>;

    fn try_from(f: RuleFields) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let rule_type = match f.rule_type.as_deref() {
            None => {
                errors.push("type is required".to_string());
                None
            }
            Some(t) => t.parse::<RuleType>().map_err(|e| errors.push(e)).ok(),
        };
        let title = required_text("title", f.title, &mut errors);
        let start_period = parse_date("start_period", f.start_period, &mut errors);
        let start_date = parse_date("start_date", f.start_date, &mut errors);
        let end_date = parse_date("end_date", f.end_date, &mut errors);
        if let (Some(s), Some(e)) = (start_date.or(start_period), end_date) {
            if e < s {
                errors.push(format!("end_date ({e}) must not be before start_date ({s})"));
            }
        }

        let rule = rule_type.and_then(|t| match t {
            RuleType::Exclusion => {
                let charge_type = required_text("charge_type", f.charge_type, &mut errors);
                charge_type.map(|charge_type| BillingRule::Exclusion { charge_type })
            }
            RuleType::Adjustment => {
                parse_percentage(f.percentage, &mut errors).map(|percentage| BillingRule::Adjustment { percentage })
            }
            RuleType::Credit | RuleType::Charge => {
                let service = required_text("service", f.service, &mut errors);
                let category = required_text("category", f.category, &mut errors);
                let sub_category = required_text("sub_category", f.sub_category, &mut errors);
                let amount = parse_amount(f.amount, &mut errors);
                if start_date.is_none() && start_period.is_none() {
                    errors.push(format!("start_date (or start_period) is required for {} rules", t));
                }
                match (service, category, sub_category, amount) {
                    (Some(service), Some(category), Some(sub_category), Some(amount)) => {
                        let item = LineItem { service, category, sub_category, amount };
                        Some(if t == RuleType::Credit { BillingRule::Credit(item) } else { BillingRule::Charge(item) })
                    }
                    _ => None,
                }
            }
            RuleType::Custom => match f.sql_query {
                None => {
                    errors.push("sql_query is required for Custom rules".to_string());
                    None
                }
                Some(sql) if sql.len() > MAX_SQL_LEN => {
                    errors.push(format!("sql_query must be at most {MAX_SQL_LEN} characters"));
                    None
                }
                Some(sql) => CustomSql::parse(&sql)
                    .map_err(|e| errors.push(format!("sql_query: {e}")))
                    .ok()
                    .map(BillingRule::Custom),
            },
        });

        match (title, rule) {
            (Some(title), Some(rule)) if errors.is_empty() => Ok(RuleDefinition {
                title,
                rule,
                start_date: start_date.or(start_period),
                end_date,
                start_period,
                apply_to_all: f.apply_to_all.unwrap_or(false),
            }),
            _ => Err(errors),
        }
    }
}

fn parse_percentage(value: Option<Value>, errors: &mut Vec<String>) -> Option<Decimal> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        errors.push("percentage is required for Adjustment rules".to_string());
        return None;
    };
    match decimal::from_json("percentage", &value) {
        Ok(p) if p.is_sign_negative() && !p.is_zero() => {
            errors.push(format!("percentage must not be negative (got {p})"));
            None
        }
        Ok(p) if p > Decimal::from(MAX_PERCENTAGE) => {
            errors.push(format!("percentage must be at most {MAX_PERCENTAGE} (got {p})"));
            None
        }
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn parse_amount(value: Option<Value>, errors: &mut Vec<String>) -> Option<Decimal> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        errors.push("amount is required for Credit and Charge rules".to_string());
        return None;
    };
    match decimal::from_json("amount", &value) {
        Ok(a) if a.is_zero() => {
            errors.push("amount must not be zero".to_string());
            None
        }
        Ok(a) if a.abs() > Decimal::from(MAX_AMOUNT) => {
            errors.push(format!("amount must be at most {MAX_AMOUNT} in absolute value (got {a})"));
            None
        }
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// A rule as the store keeps it and the API returns it: flat, text-valued, nulls where a type has no field.
/// Every field of a rule is here, so two rules with equal columns compute alike (the result cache's key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleColumns {
    pub title: String,
    pub rule_type: RuleType,
    /// The group it runs in, kept when the rule is saved so nobody parses its SQL again to know it.
    pub group: RuleGroup,
    pub charge_type: Option<String>,
    /// Decimal string, as the API shows it (`75.0`).
    pub percentage: Option<String>,
    pub service: Option<String>,
    pub category: Option<String>,
    pub sub_category: Option<String>,
    /// Decimal string, as the API shows it (`300.0`).
    pub amount: Option<String>,
    pub start_period: Option<NaiveDate>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub apply_to_all: bool,
    pub sql_query: Option<String>,
}

impl From<&RuleDefinition> for RuleColumns {
    fn from(d: &RuleDefinition) -> Self {
        let mut c = RuleColumns {
            title: d.title.clone(),
            rule_type: d.rule.rule_type(),
            group: d.group(),
            charge_type: None,
            percentage: None,
            service: None,
            category: None,
            sub_category: None,
            amount: None,
            start_period: d.start_period,
            start_date: d.start_date,
            end_date: d.end_date,
            apply_to_all: d.apply_to_all,
            sql_query: None,
        };
        match &d.rule {
            BillingRule::Exclusion { charge_type } => c.charge_type = Some(charge_type.clone()),
            BillingRule::Adjustment { percentage } => c.percentage = Some(decimal::to_wire(*percentage)),
            BillingRule::Credit(item) | BillingRule::Charge(item) => {
                c.service = Some(item.service.clone());
                c.category = Some(item.category.clone());
                c.sub_category = Some(item.sub_category.clone());
                c.amount = Some(decimal::to_wire(item.amount));
            }
            BillingRule::Custom(sql) => c.sql_query = Some(sql.text().to_string()),
        }
        c
    }
}

impl From<RuleColumns> for RuleFields {
    fn from(c: RuleColumns) -> Self {
        let date = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        RuleFields {
            rule_type: Some(c.rule_type.as_str().to_string()),
            title: Some(c.title),
            // start_date is derived from start_period when only the latter was given; re-deriving keeps it so.
            start_date: if c.start_period.is_some() && c.start_date == c.start_period {
                None
            } else {
                date(c.start_date)
            },
            start_period: date(c.start_period),
            end_date: date(c.end_date),
            apply_to_all: Some(c.apply_to_all),
            charge_type: c.charge_type,
            percentage: c.percentage.map(Value::String),
            service: c.service,
            category: c.category,
            sub_category: c.sub_category,
            amount: c.amount.map(Value::String),
            sql_query: c.sql_query,
        }
    }
}

/// A stored billing rule.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingRuleRow {
    pub token: RuleToken,
    pub columns: RuleColumns,
    pub created_by_token: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<RuleDefinition, Vec<String>> {
        RuleDefinition::try_from(serde_json::from_value::<RuleFields>(body).unwrap())
    }

    #[test]
    fn an_exclusion_needs_a_charge_type() {
        let errors = parse(json!({"type": "exclusion", "title": "x"})).unwrap_err();
        assert_eq!(errors, vec!["charge_type is required"]);
    }

    #[test]
    fn an_adjustment_without_percentage_is_rejected() {
        let errors = parse(json!({"type": "Adjustment", "title": "x"})).unwrap_err();
        assert_eq!(errors, vec!["percentage is required for Adjustment rules"]);
    }

    #[test]
    fn an_adjustment_percentage_may_be_a_string_or_a_number() {
        let a = parse(json!({"type": "ADJUSTMENT", "title": "x", "percentage": "75"})).unwrap();
        let b = parse(json!({"type": "adjustment", "title": "x", "percentage": 75.0})).unwrap();
        assert_eq!(a.rule, b.rule);
        assert_eq!(RuleColumns::from(&a).percentage.as_deref(), Some("75.0"));
    }

    #[test]
    fn negative_and_absurd_percentages_are_rejected() {
        let neg = parse(json!({"type": "adjustment", "title": "x", "percentage": -5})).unwrap_err();
        assert!(neg[0].contains("must not be negative"), "{neg:?}");
        let big = parse(json!({"type": "adjustment", "title": "x", "percentage": 7500})).unwrap_err();
        assert!(big[0].contains("at most 1000"), "{big:?}");
    }

    #[test]
    fn a_credit_lists_every_missing_field_at_once() {
        let errors = parse(json!({"type": "credit", "title": "x"})).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "service is required",
                "category is required",
                "sub_category is required",
                "amount is required for Credit and Charge rules",
                "start_date (or start_period) is required for Credit rules",
            ]
        );
    }

    #[test]
    fn a_charge_accepts_the_deprecated_start_period() {
        let d = parse(json!({"type": "charge", "title": "Fee", "service": "MSP", "category": "Fee",
            "sub_category": "Monthly", "amount": 300, "start_period": "2024-05-01"}))
        .unwrap();
        assert_eq!(d.start_date, NaiveDate::from_ymd_opt(2024, 5, 1));
        let c = RuleColumns::from(&d);
        assert_eq!(c.amount.as_deref(), Some("300.0"));
        assert_eq!(c.start_period, NaiveDate::from_ymd_opt(2024, 5, 1));
    }

    #[test]
    fn timestamps_are_accepted_as_dates_and_bad_dates_are_named() {
        let d = parse(json!({"type": "exclusion", "title": "x", "charge_type": "Tax",
            "start_date": "2024-06-28T00:00:00Z"}))
        .unwrap();
        assert_eq!(d.start_date, NaiveDate::from_ymd_opt(2024, 6, 28));
        let errors = parse(json!({"type": "exclusion", "title": "x", "charge_type": "Tax",
            "end_date": "2024-13-01"}))
        .unwrap_err();
        assert!(errors[0].starts_with("end_date must be a date"), "{errors:?}");
    }

    #[test]
    fn an_end_before_the_start_is_rejected() {
        let errors = parse(json!({"type": "exclusion", "title": "x", "charge_type": "Tax",
            "start_date": "2024-06-01", "end_date": "2024-05-01"}))
        .unwrap_err();
        assert!(errors[0].contains("must not be before"), "{errors:?}");
    }

    #[test]
    fn an_unknown_type_is_rejected() {
        let errors = parse(json!({"type": "discount", "title": "x"})).unwrap_err();
        assert!(errors[0].starts_with("type must be one of"), "{errors:?}");
    }

    #[test]
    fn a_blank_or_overlong_title_is_rejected() {
        let blank = parse(json!({"type": "exclusion", "title": "  ", "charge_type": "Tax"})).unwrap_err();
        assert_eq!(blank, vec!["title must not be blank"]);
        let long = "x".repeat(256);
        let over = parse(json!({"type": "exclusion", "title": long, "charge_type": "Tax"})).unwrap_err();
        assert_eq!(over, vec!["title must be at most 255 characters"]);
    }

    #[test]
    fn an_update_overlays_and_reparses_the_stored_rule() {
        let d = parse(json!({"type": "adjustment", "title": "x", "percentage": 75})).unwrap();
        let stored = RuleFields::from(RuleColumns::from(&d));
        let updated = stored.clone().overlay(serde_json::from_value(json!({"percentage": "80.5"})).unwrap());
        let d2 = RuleDefinition::try_from(updated).unwrap();
        assert_eq!(d2.rule, BillingRule::Adjustment { percentage: "80.5".parse().unwrap() });
        let bad = stored.overlay(serde_json::from_value(json!({"percentage": "lots"})).unwrap());
        assert!(RuleDefinition::try_from(bad).is_err());
    }

    #[test]
    fn a_custom_rule_keeps_its_checked_sql() {
        let d = parse(json!({"type": "custom", "title": "x",
            "sql_query": "UPDATE costs SET costs.amount = costs.amount * 0.95"}))
        .unwrap();
        assert!(matches!(d.rule, BillingRule::Custom(_)));
        let errors = parse(json!({"type": "custom", "title": "x", "sql_query": "DROP TABLE costs"})).unwrap_err();
        assert!(errors[0].starts_with("sql_query:"), "{errors:?}");
    }
}

/// The group of a rule stored before groups were kept with it (its SQL is parsed once, when it is read).
pub fn legacy_group(rule_type: RuleType, sql_query: Option<&str>) -> RuleGroup {
    match rule_type {
        RuleType::Credit | RuleType::Charge => RuleGroup::MonthlyInsert,
        RuleType::Custom => {
            sql_query.and_then(|sql| CustomSql::parse(sql).ok()).map_or(RuleGroup::Transform, |s| s.group())
        }
        RuleType::Exclusion | RuleType::Adjustment => RuleGroup::Transform,
    }
}

pub use custom_sql::RuleGroup;

/// A group's name in messages.
pub fn group_name(g: RuleGroup) -> &'static str {
    match g {
        RuleGroup::CostInsert => "cost insert (INSERT … VALUES)",
        RuleGroup::Transform => "transform (exclusion, adjustment, UPDATE)",
        RuleGroup::MonthlyInsert => "monthly insert (credit, charge, INSERT … SELECT)",
    }
}

/// Checks that rules are listed group by group: cost inserts, then transforms, then monthly inserts.
pub fn check_rule_order<T: fmt::Display>(rules: &[(T, RuleGroup)]) -> Result<(), String> {
    let mut highest: Option<RuleGroup> = None;
    for (token, group) in rules {
        if let Some(h) = highest {
            if *group < h {
                return Err(format!(
                    "billing_rule_tokens: {token} is a {} rule and must come before every {} rule \
                     (the order is cost inserts, then transforms, then monthly inserts)",
                    group_name(*group),
                    group_name(h)
                ));
            }
        }
        highest = Some(highest.map_or(*group, |h| h.max(*group)));
    }
    Ok(())
}

/// The rules a managed account runs: its own list, with the parent's `apply_to_all` rules it does not list
/// added at the end of their group.
pub fn effective_rules<T: Clone + PartialEq>(listed: &[(T, RuleGroup)], apply_to_all: &[(T, RuleGroup)]) -> Vec<T> {
    let mut all: Vec<(T, RuleGroup)> = listed.to_vec();
    for (token, group) in apply_to_all {
        if !all.iter().any(|(t, _)| t == token) {
            all.push((token.clone(), *group));
        }
    }
    // Stable: listed rules keep their order inside a group; apply_to_all ones land at its end.
    all.sort_by_key(|(_, g)| *g);
    all.into_iter().map(|(t, _)| t).collect()
}

#[cfg(test)]
mod order_tests {
    use super::*;

    fn r(t: &str, g: RuleGroup) -> (String, RuleGroup) {
        (t.to_string(), g)
    }

    #[test]
    fn rules_out_of_group_order_name_the_offending_token() {
        let list = [r("a", RuleGroup::Transform), r("b", RuleGroup::MonthlyInsert), r("c", RuleGroup::Transform)];
        let e = check_rule_order(&list).unwrap_err();
        assert!(e.starts_with("billing_rule_tokens: c is a transform"), "{e}");
        assert!(check_rule_order(&list[..2]).is_ok());
    }

    #[test]
    fn apply_to_all_rules_join_the_end_of_their_group() {
        let listed = [r("t1", RuleGroup::Transform), r("m1", RuleGroup::MonthlyInsert)];
        let all = [r("t2", RuleGroup::Transform), r("i1", RuleGroup::CostInsert), r("m1", RuleGroup::MonthlyInsert)];
        assert_eq!(effective_rules(&listed, &all), vec!["i1", "t1", "t2", "m1"]);
    }
}
