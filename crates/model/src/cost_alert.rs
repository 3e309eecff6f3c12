//! Cost alerts as Vantage's API takes them (`createCostAlert`), parsed into what is stored, and the pure rule
//! deciding when one fires.
//!
//! - A cost alert watches reports: for each, the cost of the last complete `interval` (yesterday; last
//!   week, Monday to Sunday; last month; last quarter) against the one before it. A report that names
//!   groupings (say `service`) is judged for each group on its own, each group's rise its own event.
//! - It fires when the cost went **up** by at least `threshold`: an amount with `unit_type: currency`, a
//!   percentage of the earlier cost with `percentage` (and then, when `minimum_threshold` is set, by at least
//!   that amount too, so cents never alert). A fall never fires; from nothing to something is an infinite
//!   rise. Exact integer arithmetic throughout.
//! - A report notification (`NotificationDefinition`) is a scheduled summary: each day, week or month, the
//!   report's cost over the last complete one against the one before, the change in dollars or percent.
//! - Recipients: `email_recipients` (addresses) and `slack_channels` / `teams_channels`, which in costd are
//!   incoming-webhook URLs (Vantage names channels of its own chat integrations, which costd does not have).

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::amount::{mul_wide, Amount};
use crate::budget::Recipient;

/// The period a cost alert compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Day,
    Week,
    Month,
    Quarter,
}

impl Interval {
    pub fn parse(text: &str) -> Result<Interval, String> {
        match text.trim() {
            "day" => Ok(Interval::Day),
            "week" => Ok(Interval::Week),
            "month" => Ok(Interval::Month),
            "quarter" => Ok(Interval::Quarter),
            other => Err(format!("interval must be day, week, month or quarter, got {other:?}")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Quarter => "quarter",
        }
    }

    /// The last complete interval before `today` and the one before it, each `(first, last)` day.
    pub fn windows(self, today: NaiveDate) -> ((NaiveDate, NaiveDate), (NaiveDate, NaiveDate)) {
        let day = chrono::Duration::days(1);
        match self {
            Interval::Day => {
                let current = today - day;
                ((current, current), (current - day, current - day))
            }
            Interval::Week => {
                let monday = today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
                let current = (monday - chrono::Duration::days(7), monday - day);
                (current, (current.0 - chrono::Duration::days(7), current.0 - day))
            }
            Interval::Month | Interval::Quarter => {
                let months = if self == Interval::Month { 1 } else { 3 };
                let first_of_month = today.with_day(1).expect("day 1 exists");
                let start = if self == Interval::Month {
                    first_of_month
                } else {
                    first_of_month.with_month(((today.month() - 1) / 3) * 3 + 1).expect("a quarter's first month")
                };
                let current_start = start.checked_sub_months(Months::new(months)).expect("a date after the epoch");
                let previous_start =
                    current_start.checked_sub_months(Months::new(months)).expect("a date after the epoch");
                ((current_start, start - day), (previous_start, current_start - day))
            }
        }
    }
}

/// How a cost alert's threshold reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitType {
    Currency,
    Percentage,
}

impl UnitType {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Currency => "currency",
            UnitType::Percentage => "percentage",
        }
    }
}

/// A cost alert as the store returns it.
pub type CostAlert = crate::record::Record<crate::token::CostAlertToken, CostAlertDefinition>;
/// One firing of a cost alert as the store returns it (titled by its event key).
pub type CostAlertEvent = crate::record::Record<crate::token::CostAlertEventToken, EventDefinition>;
/// A scheduled report summary as the store returns it.
pub type ReportNotification = crate::record::Record<crate::token::ReportNotificationToken, NotificationDefinition>;

/// One firing of a cost alert, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDefinition {
    pub alert_token: String,
    pub report_token: String,
    pub description: String,
    pub metadata: serde_json::Map<String, Value>,
}

/// A cost alert as stored, less its title and workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostAlertDefinition {
    pub interval: Interval,
    pub threshold: Amount,
    pub unit_type: UnitType,
    pub minimum_threshold: Option<Amount>,
    pub report_tokens: Vec<String>,
    pub email_recipients: Vec<String>,
    pub slack_channels: Vec<String>,
    pub teams_channels: Vec<String>,
}

impl CostAlertDefinition {
    /// Everyone the alert's messages go to.
    pub fn recipients(&self) -> Vec<Recipient> {
        self.email_recipients
            .iter()
            .chain(&self.slack_channels)
            .chain(&self.teams_channels)
            .filter_map(|r| Recipient::parse("recipient", r).ok())
            .collect()
    }

    /// Whether a rise from `previous` to `current` fires the alert (see the module doc).
    pub fn fires(&self, previous: Amount, current: Amount) -> bool {
        // Two amounts of opposite signs near the range's ends differ by more than an i128 holds: such a
        // rise passes any threshold.
        let Some(rise) = current.unscaled().checked_sub(previous.unscaled()) else {
            return current > previous;
        };
        if rise <= 0 {
            return false;
        }
        let rise_wide = rise.unsigned_abs();
        let threshold = self.threshold.unscaled().max(0).unsigned_abs();
        match self.unit_type {
            UnitType::Currency => rise_wide >= threshold,
            UnitType::Percentage => {
                if let Some(minimum) = self.minimum_threshold {
                    if rise < minimum.unscaled() {
                        return false;
                    }
                }
                if previous.unscaled() <= 0 {
                    return true;
                }
                // rise / previous × 100 ≥ threshold, both sides at 18 places: rise × 100 × 10^18 against
                // previous × threshold, as 256-bit products.
                let scale = 10u128.pow(crate::amount::SCALE);
                let left = mul_wide(rise_wide, 100 * scale);
                let right = mul_wide(previous.unscaled().unsigned_abs(), threshold);
                left >= right
            }
        }
    }
}

/// A cost alert's create or update body.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostAlertFields {
    pub title: Option<String>,
    pub interval: Option<String>,
    pub threshold: Option<Value>,
    pub unit_type: Option<String>,
    pub workspace_token: Option<String>,
    pub report_tokens: Option<Vec<String>>,
    pub email_recipients: Option<Vec<String>>,
    pub slack_channels: Option<Vec<String>>,
    pub teams_channels: Option<Vec<String>>,
    pub minimum_threshold: Option<Value>,
}

fn amount(field: &str, value: &Value, errors: &mut Vec<String>) -> Option<Amount> {
    match crate::decimal::from_json(field, value)
        .and_then(|d| Amount::from_decimal(d).ok_or_else(|| format!("{field} is too large")))
    {
        Ok(a) if a.unscaled() <= 0 => {
            errors.push(format!("{field} must be more than 0, got {a}"));
            None
        }
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn addresses(field: &str, values: &[String], webhook: bool, errors: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, text) in values.iter().enumerate() {
        let name = format!("{field}[{i}]");
        match Recipient::parse(&name, text) {
            Ok(Recipient::Email(e)) if !webhook => out.push(e),
            Ok(Recipient::Webhook(u)) if webhook => out.push(u.to_string()),
            Ok(_) if webhook => errors.push(format!(
                "{name} must be an incoming-webhook URL (costd has no chat integration to name channels in), got {text:?}"
            )),
            Ok(_) => errors.push(format!("{name} must be an email address, got {text:?}")),
            Err(_) if webhook => errors.push(format!(
                "{name} must be an incoming-webhook URL (costd has no chat integration to name channels in), got {text:?}"
            )),
            Err(e) => errors.push(e),
        }
    }
    out.dedup();
    out
}

impl CostAlertDefinition {
    /// `current` (none on create) with `fields` laid over it, every problem listed.
    pub fn overlay(
        current: Option<&CostAlertDefinition>,
        f: &CostAlertFields,
    ) -> Result<CostAlertDefinition, Vec<String>> {
        let mut errors = Vec::new();
        let interval = match (&f.interval, current) {
            (Some(i), _) => Interval::parse(i).map_err(|e| errors.push(e)).ok(),
            (None, Some(c)) => Some(c.interval),
            (None, None) => {
                errors.push("interval is required (day, week, month or quarter)".into());
                None
            }
        };
        let unit_type = match (f.unit_type.as_deref().map(str::trim), current) {
            (Some("currency"), _) => Some(UnitType::Currency),
            (Some("percentage"), _) => Some(UnitType::Percentage),
            (Some(other), _) => {
                errors.push(format!("unit_type must be currency or percentage, got {other:?}"));
                None
            }
            (None, Some(c)) => Some(c.unit_type),
            (None, None) => {
                errors.push("unit_type is required (currency or percentage)".into());
                None
            }
        };
        let threshold = match (&f.threshold, current) {
            (Some(v), _) => amount("threshold", v, &mut errors),
            (None, Some(c)) => Some(c.threshold),
            (None, None) => {
                errors.push("threshold is required".into());
                None
            }
        };
        let minimum_threshold = match &f.minimum_threshold {
            Some(Value::Null) => None,
            Some(v) => amount("minimum_threshold", v, &mut errors),
            None => current.and_then(|c| c.minimum_threshold),
        };
        if minimum_threshold.is_some() && unit_type == Some(UnitType::Currency) {
            errors.push("minimum_threshold only goes with unit_type percentage".into());
        }
        let report_tokens = match (&f.report_tokens, current) {
            (Some(r), _) => {
                let mut out: Vec<String> = Vec::new();
                for t in r.iter().map(|t| t.trim()) {
                    if !t.starts_with(crate::token::prefix::REPORT) {
                        errors.push(format!("report_tokens must hold cost report tokens, got {t:?}"));
                    } else if !out.iter().any(|o| o == t) {
                        out.push(t.to_string());
                    }
                }
                out
            }
            (None, Some(c)) => c.report_tokens.clone(),
            (None, None) => Vec::new(),
        };
        if report_tokens.is_empty() && !errors.iter().any(|e| e.starts_with("report_tokens")) {
            errors.push("report_tokens: a cost alert watches at least one cost report".into());
        }
        let list = |given: &Option<Vec<String>>,
                    current: Option<&Vec<String>>,
                    field: &str,
                    webhook: bool,
                    errors: &mut Vec<String>| {
            match given {
                Some(v) => addresses(field, v, webhook, errors),
                None => current.cloned().unwrap_or_default(),
            }
        };
        let email_recipients =
            list(&f.email_recipients, current.map(|c| &c.email_recipients), "email_recipients", false, &mut errors);
        let slack_channels =
            list(&f.slack_channels, current.map(|c| &c.slack_channels), "slack_channels", true, &mut errors);
        let teams_channels =
            list(&f.teams_channels, current.map(|c| &c.teams_channels), "teams_channels", true, &mut errors);
        crate::budget::check_recipient_count(
            email_recipients.len() + slack_channels.len() + teams_channels.len(),
            &mut errors,
        );
        match (errors.is_empty(), interval, unit_type, threshold) {
            (true, Some(interval), Some(unit_type), Some(threshold)) => Ok(CostAlertDefinition {
                interval,
                threshold,
                unit_type,
                minimum_threshold,
                report_tokens,
                email_recipients,
                slack_channels,
                teams_channels,
            }),
            _ => Err(errors),
        }
    }
}

/// How a report notification states the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Percentage,
    Dollars,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Percentage => "percentage",
            Change::Dollars => "dollars",
        }
    }
}

/// A report notification as stored, less its title and workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationDefinition {
    pub cost_report_token: String,
    /// Day, week or month (Vantage's daily, weekly, monthly).
    pub frequency: Interval,
    pub change: Change,
    pub user_tokens: Vec<String>,
    /// Each an email address or a webhook URL.
    pub recipient_channels: Vec<String>,
}

impl NotificationDefinition {
    pub fn frequency_name(&self) -> &'static str {
        match self.frequency {
            Interval::Day => "daily",
            Interval::Week => "weekly",
            _ => "monthly",
        }
    }

    pub fn recipients(&self) -> Vec<Recipient> {
        self.recipient_channels.iter().filter_map(|r| Recipient::parse("recipient", r).ok()).collect()
    }
}

/// A report notification's create or update body.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationFields {
    pub title: Option<String>,
    pub cost_report_token: Option<String>,
    pub workspace_token: Option<String>,
    pub user_tokens: Option<Vec<String>>,
    pub recipient_channels: Option<Vec<String>>,
    pub frequency: Option<String>,
    pub change: Option<String>,
}

impl NotificationDefinition {
    /// `current` (none on create) with `f` laid over it, every problem listed.
    pub fn overlay(
        current: Option<&NotificationDefinition>,
        f: &NotificationFields,
    ) -> Result<NotificationDefinition, Vec<String>> {
        let mut errors = Vec::new();
        let report = match (f.cost_report_token.as_deref().map(str::trim), current) {
            (Some(r), _) if r.starts_with(crate::token::prefix::REPORT) => Some(r.to_string()),
            (Some(r), _) => {
                errors.push(format!("cost_report_token must be a cost report token, got {r:?}"));
                None
            }
            (None, Some(c)) => Some(c.cost_report_token.clone()),
            (None, None) => {
                errors.push("cost_report_token is required".into());
                None
            }
        };
        let frequency = match (f.frequency.as_deref().map(str::trim), current) {
            (Some("daily"), _) => Some(Interval::Day),
            (Some("weekly"), _) => Some(Interval::Week),
            (Some("monthly"), _) => Some(Interval::Month),
            (Some(other), _) => {
                errors.push(format!("frequency must be daily, weekly or monthly, got {other:?}"));
                None
            }
            (None, Some(c)) => Some(c.frequency),
            (None, None) => {
                errors.push("frequency is required (daily, weekly or monthly)".into());
                None
            }
        };
        let change = match (f.change.as_deref().map(str::trim), current) {
            (Some("percentage"), _) => Some(Change::Percentage),
            (Some("dollars"), _) => Some(Change::Dollars),
            (Some(other), _) => {
                errors.push(format!("change must be percentage or dollars, got {other:?}"));
                None
            }
            (None, Some(c)) => Some(c.change),
            (None, None) => {
                errors.push("change is required (percentage or dollars)".into());
                None
            }
        };
        let user_tokens = match &f.user_tokens {
            Some(u) => u.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            None => current.map(|c| c.user_tokens.clone()).unwrap_or_default(),
        };
        let recipient_channels = match &f.recipient_channels {
            Some(r) => crate::budget::recipient_channels(r, &mut errors),
            None => current.map(|c| c.recipient_channels.clone()).unwrap_or_default(),
        };
        crate::budget::check_recipient_count(recipient_channels.len() + user_tokens.len(), &mut errors);
        match (errors.is_empty(), report, frequency, change) {
            (true, Some(cost_report_token), Some(frequency), Some(change)) => {
                Ok(NotificationDefinition { cost_report_token, frequency, change, user_tokens, recipient_channels })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn a(s: &str) -> Amount {
        Amount::parse("a", s).unwrap()
    }

    fn alert(json: Value) -> Result<CostAlertDefinition, Vec<String>> {
        CostAlertDefinition::overlay(None, &serde_json::from_value(json).unwrap())
    }

    #[test]
    fn a_rise_across_the_whole_decimal_range_fires_instead_of_overflowing() {
        let top = "99999999999999999999";
        let d = alert(serde_json::json!({"title": "x", "interval": "day", "threshold": 5, "unit_type": "currency",
                             "report_tokens": ["rprt_1"]}))
        .unwrap();
        assert!(d.fires(a(&format!("-{top}")), a(top)));
        assert!(!d.fires(a(top), a(&format!("-{top}"))));
    }

    #[test]
    fn each_interval_compares_the_last_complete_one_with_the_one_before() {
        let today = d("2024-05-15"); // a Wednesday
        assert_eq!(
            Interval::Day.windows(today),
            ((d("2024-05-14"), d("2024-05-14")), (d("2024-05-13"), d("2024-05-13")))
        );
        assert_eq!(
            Interval::Week.windows(today),
            ((d("2024-05-06"), d("2024-05-12")), (d("2024-04-29"), d("2024-05-05")))
        );
        assert_eq!(
            Interval::Month.windows(today),
            ((d("2024-04-01"), d("2024-04-30")), (d("2024-03-01"), d("2024-03-31")))
        );
        assert_eq!(
            Interval::Quarter.windows(today),
            ((d("2024-01-01"), d("2024-03-31")), (d("2023-10-01"), d("2023-12-31")))
        );
        assert_eq!(Interval::Month.windows(d("2024-01-01")).1, (d("2023-11-01"), d("2023-11-30")));
    }

    #[test]
    fn a_rise_fires_at_its_threshold_exactly() {
        let money = alert(serde_json::json!({"interval": "day", "threshold": 50, "unit_type": "currency", "report_tokens": ["rprt_1"]})).unwrap();
        assert!(money.fires(a("100"), a("150")));
        assert!(!money.fires(a("100"), a("149.999999999999999999")));
        assert!(!money.fires(a("200"), a("100")), "a fall never fires");
        let pct = alert(serde_json::json!({"interval": "week", "threshold": "12.5", "unit_type": "percentage",
            "minimum_threshold": 10, "report_tokens": ["rprt_1"]}))
        .unwrap();
        assert!(pct.fires(a("100"), a("112.5")));
        assert!(!pct.fires(a("100"), a("112.499999999999999999")));
        assert!(!pct.fires(a("1"), a("2")), "100% but below the minimum amount");
        assert!(pct.fires(a("0"), a("10")), "from nothing: an infinite rise, past the minimum");
        // The largest amounts compare without overflow.
        let max = a("99999999999999999999.999999999999999999");
        let huge = alert(serde_json::json!({"interval": "day", "threshold": 1000, "unit_type": "percentage", "report_tokens": ["rprt_1"]})).unwrap();
        assert!(!huge.fires(a("10000000000000000000"), max));
        assert!(huge.fires(a("1"), max));
    }

    #[test]
    fn every_problem_of_a_cost_alert_body_is_listed_by_field() {
        let e = alert(
            serde_json::json!({"interval": "hour", "threshold": -1, "unit_type": "dollars", "report_tokens": ["fldr_1"],
            "email_recipients": ["nobody"], "slack_channels": ["#finops"], "teams_channels": ["ops@example.com"]}),
        )
        .unwrap_err();
        for needle in [
            "interval must be",
            "threshold must be more than 0",
            "unit_type must be",
            "report_tokens must hold",
            "email_recipients[0]",
            "slack_channels[0] must be an incoming-webhook URL",
            "teams_channels[0]",
        ] {
            assert!(e.iter().any(|m| m.contains(needle)), "{needle} in {e:?}");
        }
        let e = alert(serde_json::json!({"interval": "day", "threshold": 5, "unit_type": "currency", "minimum_threshold": 1, "report_tokens": []})).unwrap_err();
        assert!(
            e.iter().any(|m| m.contains("only goes with")) && e.iter().any(|m| m.contains("at least one")),
            "{e:?}"
        );
        let ok = alert(serde_json::json!({"interval": "month", "threshold": 10, "unit_type": "percentage", "report_tokens": ["rprt_1"],
            "email_recipients": ["a@example.com"], "slack_channels": ["https://hooks.slack.com/services/T/B/x"]})).unwrap();
        assert_eq!(ok.recipients().len(), 2);
    }

    #[test]
    fn a_report_notification_body_is_parsed_by_field() {
        let ok = NotificationDefinition::overlay(None, &serde_json::from_value(serde_json::json!({"title": "Weekly",
            "cost_report_token": "rprt_1", "frequency": "weekly", "change": "dollars", "recipient_channels": ["a@example.com"]})).unwrap())
        .unwrap();
        assert_eq!((ok.frequency, ok.change, ok.frequency_name()), (Interval::Week, Change::Dollars, "weekly"));
        let e = NotificationDefinition::overlay(
            None,
            &serde_json::from_value(serde_json::json!({"cost_report_token": "bdgt_1",
            "frequency": "hourly", "change": "euros", "recipient_channels": ["#x"]}))
            .unwrap(),
        )
        .unwrap_err();
        for needle in ["cost_report_token must be", "frequency must be", "change must be", "recipient_channels[0]"] {
            assert!(e.iter().any(|m| m.contains(needle)), "{needle} in {e:?}");
        }
    }
}
