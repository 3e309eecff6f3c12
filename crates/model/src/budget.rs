//! Budgets and budget alerts as Vantage's API takes them (`createBudget`, `createBudgetAlert`), parsed into
//! what is stored, every problem listed by field; and the pure rule deciding when a budget alert fires.
//!
//! - A budget follows one cost report (its filters, settings and workspace) over a list of periods, each
//!   `start_at..=end_at` (dates; a missing `end_at` is the end of `start_at`'s month) with an exact amount.
//!   Periods are sorted and may not overlap.
//! - A hierarchical budget names child budgets instead: its report and periods are ignored (as Vantage
//!   documents), and its periods and actuals are its children's, summed period by period. Children must be
//!   leaf budgets (one level), so a budget can never contain itself.
//! - A budget alert watches budgets: it fires once per budget and period when the period's actual cost
//!   reaches `threshold` percent of its amount, on a day inside its window (`duration_in_days` from the
//!   start or the end of the period; none: the whole period). With costd's `based_on: "forecast"` it
//!   compares the period's forecast instead (its actual so far plus the report's forecast for its days
//!   still to come), so it warns before the money is spent; Vantage's body has no such field, so
//!   `actual` is the default.
//! - Recipients are `recipient_channels`: an `http(s)` URL is a webhook (Slack and Teams incoming webhooks
//!   are recognised by host; any other URL gets costd's signed JSON), an email address is mailed through
//!   the SMTP setting. `user_tokens` name users of the account's directory (`model::user`), reached at
//!   their addresses.
//!
//! References (the report, child budgets, budgets an alert watches) are only parsed here; the service
//! checks that they are the caller's.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::amount::Amount;

/// Most periods one budget holds (a monthly budget for ten years is 120).
pub const MAX_PERIODS: usize = 1000;

/// One budget period: its days (inclusive) and amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetPeriod {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub amount: Amount,
}

impl BudgetPeriod {
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start <= day && day <= self.end
    }
}

/// A budget as the store returns it.
pub type Budget = crate::record::Record<crate::token::BudgetToken, BudgetDefinition>;
/// A budget alert as the store returns it.
pub type BudgetAlert = crate::record::Record<crate::token::BudgetAlertToken, BudgetAlertDefinition>;

/// A budget as stored, less its name and workspace (store columns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetDefinition {
    /// The report whose costs are the budget's actuals (none for a hierarchical budget).
    pub cost_report_token: Option<String>,
    pub child_budget_tokens: Vec<String>,
    /// Sorted, not overlapping (empty for a hierarchical budget: its children's are used).
    pub periods: Vec<BudgetPeriod>,
}

impl BudgetDefinition {
    pub fn is_hierarchical(&self) -> bool {
        !self.child_budget_tokens.is_empty()
    }

    /// The period that holds `day`.
    pub fn period_of(&self, day: NaiveDate) -> Option<&BudgetPeriod> {
        self.periods.iter().find(|p| p.contains(day))
    }
}

/// A budget's create or update body.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetFields {
    pub name: Option<String>,
    pub workspace_token: Option<String>,
    pub cost_report_token: Option<String>,
    pub child_budget_tokens: Option<Vec<String>>,
    pub periods: Option<Vec<Value>>,
}

/// A date field: `YYYY-MM-DD`, or an ISO timestamp whose day is taken.
fn date(field: &str, value: Option<&Value>, errors: &mut Vec<String>) -> Option<NaiveDate> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => {
            let s = s.trim();
            match NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    errors.push(format!("{field} must be a date like 2024-05-01, got {s:?}"));
                    None
                }
            }
        }
        Some(other) => {
            errors.push(format!("{field} must be a date like 2024-05-01, got {other}"));
            None
        }
    }
}

/// The last day of `day`'s month.
pub fn end_of_month(day: NaiveDate) -> NaiveDate {
    let first = day.with_day(1).expect("day 1 exists");
    first.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).expect("a date before 262143")
}

fn periods(values: &[Value], errors: &mut Vec<String>) -> Vec<BudgetPeriod> {
    if values.len() > MAX_PERIODS {
        errors.push(format!("periods holds {} periods; a budget holds at most {MAX_PERIODS}", values.len()));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let field = |name: &str| format!("periods[{i}].{name}");
        let Some(object) = value.as_object() else {
            errors.push(format!("periods[{i}] must be an object with start_at, end_at and amount"));
            continue;
        };
        let start = date(&field("start_at"), object.get("start_at"), errors);
        if start.is_none() && !errors.iter().any(|e| e.starts_with(&field("start_at"))) {
            errors.push(format!("{} is required", field("start_at")));
        }
        let end = date(&field("end_at"), object.get("end_at"), errors);
        let amount = match object.get("amount") {
            None | Some(Value::Null) => {
                errors.push(format!("{} is required", field("amount")));
                None
            }
            Some(v) => match crate::decimal::from_json(&field("amount"), v)
                .and_then(|d| Amount::from_decimal(d).ok_or_else(|| format!("{} is too large", field("amount"))))
            {
                Ok(a) if a.unscaled() < 0 => {
                    errors.push(format!("{} must not be negative, got {a}", field("amount")));
                    None
                }
                Ok(a) => Some(a),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        if let (Some(start), Some(amount)) = (start, amount) {
            let end = end.unwrap_or_else(|| end_of_month(start));
            if end < start {
                errors.push(format!("{} ({end}) must not be before {} ({start})", field("end_at"), field("start_at")));
                continue;
            }
            out.push(BudgetPeriod { start, end, amount });
        }
    }
    out.sort_by_key(|p| p.start);
    for pair in out.windows(2) {
        if pair[1].start <= pair[0].end {
            errors.push(format!(
                "periods overlap: {}..{} and {}..{}; each day belongs to one period",
                pair[0].start, pair[0].end, pair[1].start, pair[1].end
            ));
        }
    }
    out
}

fn tokens(field: &str, values: &[String], prefix: &str, errors: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().map(|v| v.trim()) {
        if !v.starts_with(prefix) {
            errors.push(format!("{field} must hold {prefix}… tokens, got {v:?}"));
        } else if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out
}

impl BudgetDefinition {
    /// `current` (none on create) with `fields` laid over it, every problem listed.
    pub fn overlay(current: Option<&BudgetDefinition>, fields: &BudgetFields) -> Result<BudgetDefinition, Vec<String>> {
        let mut errors = Vec::new();
        let mut next = current.cloned().unwrap_or_default();
        if let Some(children) = &fields.child_budget_tokens {
            next.child_budget_tokens = tokens("child_budget_tokens", children, "bdgt_", &mut errors);
        }
        if let Some(report) = fields.cost_report_token.as_deref().map(str::trim) {
            next.cost_report_token = (!report.is_empty()).then(|| report.to_string());
        }
        if let Some(p) = &fields.periods {
            next.periods = periods(p, &mut errors);
        }
        if next.is_hierarchical() {
            // Vantage: a hierarchical budget's report and periods are ignored.
            next.cost_report_token = None;
            next.periods.clear();
        } else {
            match &next.cost_report_token {
                None => errors
                    .push("cost_report_token is required (or child_budget_tokens for a hierarchical budget)".into()),
                Some(r) if !r.starts_with(crate::token::prefix::REPORT) => {
                    errors.push(format!("cost_report_token must be a cost report token, got {r:?}"))
                }
                Some(_) => {}
            }
            if next.periods.is_empty() && !errors.iter().any(|e| e.starts_with("periods")) {
                errors.push("periods: a budget needs at least one period with start_at and amount".into());
            }
        }
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }
}

/// Which end of a period an alert's `duration_in_days` counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodToTrack {
    StartOfTheMonth,
    EndOfTheMonth,
}

impl PeriodToTrack {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodToTrack::StartOfTheMonth => "start_of_the_month",
            PeriodToTrack::EndOfTheMonth => "end_of_the_month",
        }
    }
}

/// Where an alert's message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Email(String),
    Webhook(url::Url),
}

impl Recipient {
    pub fn parse(field: &str, text: &str) -> Result<Recipient, String> {
        let text = text.trim();
        if text.starts_with("http://") || text.starts_with("https://") {
            let url = url::Url::parse(text).map_err(|e| format!("{field} is not a valid URL ({e}): {text:?}"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("{field} needs a host: {text:?}"));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(format!("{field} must not carry a user name or password: put secrets in the path"));
            }
            Ok(Recipient::Webhook(url))
        } else if crate::billing_profile::is_email(text) {
            Ok(Recipient::Email(text.to_string()))
        } else {
            Err(format!("{field} must be an email address or an http(s) webhook URL, got {text:?}"))
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Recipient::Email(e) => e.clone(),
            Recipient::Webhook(u) => u.to_string(),
        }
    }
}

/// Most recipients one alert or notification may have (addresses, webhooks and users together): an alert is
/// a message to its owners' channels, not a mailing list costd could be made to relay.
pub const MAX_RECIPIENTS: usize = 20;

/// Adds a problem when an alert has more than [`MAX_RECIPIENTS`] recipients.
pub fn check_recipient_count(count: usize, errors: &mut Vec<String>) {
    if count > MAX_RECIPIENTS {
        errors.push(format!(
            "an alert may have at most {MAX_RECIPIENTS} recipients (addresses, webhooks and users together), got \
             {count}"
        ));
    }
}

/// A `recipient_channels` list: each an email address or a webhook URL, repeats dropped, each problem
/// listed by its index.
pub fn recipient_channels(values: &[String], errors: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, text) in values.iter().enumerate() {
        match Recipient::parse(&format!("recipient_channels[{i}]"), text) {
            Ok(r) if !out.contains(&r.as_text()) => out.push(r.as_text()),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    out
}

/// What a budget alert compares with the budget's amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasedOn {
    /// The period's cost so far.
    #[default]
    Actual,
    /// The period's cost so far plus the forecast of its days still to come.
    Forecast,
}

impl BasedOn {
    pub fn as_str(self) -> &'static str {
        match self {
            BasedOn::Actual => "actual",
            BasedOn::Forecast => "forecast",
        }
    }
}

/// A budget alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAlertDefinition {
    pub budget_tokens: Vec<String>,
    /// Percent of the period's amount, 1..=1000.
    pub threshold: u32,
    pub user_tokens: Vec<String>,
    pub duration_in_days: Option<u32>,
    pub period_to_track: PeriodToTrack,
    /// Each an email address or a webhook URL (checked by [`Recipient::parse`]).
    pub recipient_channels: Vec<String>,
    /// Alerts stored before costd had the field compare actuals.
    #[serde(default)]
    pub based_on: BasedOn,
}

impl BudgetAlertDefinition {
    pub fn recipients(&self) -> Vec<Recipient> {
        self.recipient_channels.iter().filter_map(|r| Recipient::parse("recipient_channels", r).ok()).collect()
    }

    /// The days of `period` on which the alert may fire.
    pub fn window(&self, period: &BudgetPeriod) -> (NaiveDate, NaiveDate) {
        match self.duration_in_days {
            None => (period.start, period.end),
            Some(days) => {
                let span = chrono::Duration::days(i64::from(days) - 1);
                match self.period_to_track {
                    PeriodToTrack::StartOfTheMonth => (period.start, (period.start + span).min(period.end)),
                    PeriodToTrack::EndOfTheMonth => ((period.end - span).max(period.start), period.end),
                }
            }
        }
    }

    /// Whether the alert fires for `period` on `today` with `actual` spent in it: today inside its window
    /// and the actual at or past the threshold (exact: actual × 100 ≥ amount × threshold). Nothing spent never
    /// fires; a period with a zero amount fires on any positive spend.
    pub fn fires(&self, period: &BudgetPeriod, actual: Amount, today: NaiveDate) -> bool {
        let (from, to) = self.window(period);
        if today < from || today > to {
            return false;
        }
        if actual.unscaled() <= 0 {
            return false;
        }
        // Exact: both sides widened to 192 bits, so no amount is too large to compare.
        crate::amount::mul_wide(actual.unscaled().unsigned_abs(), 100)
            >= crate::amount::mul_wide(period.amount.unscaled().max(0).unsigned_abs(), u128::from(self.threshold))
    }
}

/// A budget alert's create or update body. `duration_in_days` arrives as a string ("" for the whole
/// month) or a number.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetAlertFields {
    pub budget_tokens: Option<Vec<String>>,
    pub threshold: Option<Value>,
    pub user_tokens: Option<Vec<String>>,
    pub duration_in_days: Option<Value>,
    pub period_to_track: Option<String>,
    pub recipient_channels: Option<Vec<String>>,
    /// Vantage's `slack` / `microsoft_graph`: costd takes webhook URLs in `recipient_channels` instead.
    pub integration_provider: Option<String>,
    /// costd's: `actual` (the default) or `forecast`.
    pub based_on: Option<String>,
}

impl BudgetAlertDefinition {
    /// `current` (none on create) with `fields` laid over it, every problem listed.
    pub fn overlay(
        current: Option<&BudgetAlertDefinition>,
        fields: &BudgetAlertFields,
    ) -> Result<BudgetAlertDefinition, Vec<String>> {
        let mut errors = Vec::new();
        let budget_tokens = match &fields.budget_tokens {
            Some(b) => tokens("budget_tokens", b, "bdgt_", &mut errors),
            None => current.map(|c| c.budget_tokens.clone()).unwrap_or_default(),
        };
        if budget_tokens.is_empty() && !errors.iter().any(|e| e.starts_with("budget_tokens")) {
            errors.push("budget_tokens: an alert watches at least one budget".into());
        }
        let threshold = match &fields.threshold {
            Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())) {
                Some(t @ 1..=1000) => t as u32,
                _ => {
                    errors.push(format!("threshold must be a whole percentage from 1 to 1000, got {v}"));
                    0
                }
            },
            None => match current {
                Some(c) => c.threshold,
                None => {
                    errors.push("threshold is required (a percentage of the budget, e.g. 80)".into());
                    0
                }
            },
        };
        let duration_in_days = match &fields.duration_in_days {
            None => current.and_then(|c| c.duration_in_days),
            Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())) {
                Some(d @ 1..=31) => Some(d as u32),
                _ => {
                    errors.push(format!("duration_in_days must be empty (the whole month) or 1 to 31, got {v}"));
                    None
                }
            },
        };
        let period_to_track = match fields.period_to_track.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some("start_of_the_month") => PeriodToTrack::StartOfTheMonth,
            Some("end_of_the_month") => PeriodToTrack::EndOfTheMonth,
            Some(other) => {
                errors.push(format!("period_to_track must be start_of_the_month or end_of_the_month, got {other:?}"));
                PeriodToTrack::StartOfTheMonth
            }
            None => current.map(|c| c.period_to_track).unwrap_or(PeriodToTrack::StartOfTheMonth),
        };
        let user_tokens = match &fields.user_tokens {
            Some(u) => u.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            None => current.map(|c| c.user_tokens.clone()).unwrap_or_default(),
        };
        let recipient_channels = match &fields.recipient_channels {
            Some(r) => recipient_channels(r, &mut errors),
            None => current.map(|c| c.recipient_channels.clone()).unwrap_or_default(),
        };
        check_recipient_count(recipient_channels.len() + user_tokens.len(), &mut errors);
        if let Some(p) = fields.integration_provider.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            errors.push(format!(
                "integration_provider {p:?}: costd has no chat integrations to pick; put a Slack or Teams incoming \
                 webhook URL in recipient_channels"
            ));
        }
        let based_on = match fields.based_on.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            Some("actual") => BasedOn::Actual,
            Some("forecast") => BasedOn::Forecast,
            Some(other) => {
                errors.push(format!("based_on must be actual or forecast, got {other:?}"));
                BasedOn::Actual
            }
            None => current.map(|c| c.based_on).unwrap_or_default(),
        };
        if errors.is_empty() {
            Ok(BudgetAlertDefinition {
                budget_tokens,
                threshold,
                user_tokens,
                duration_in_days,
                period_to_track,
                recipient_channels,
                based_on,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn budget(json: Value) -> Result<BudgetDefinition, Vec<String>> {
        BudgetDefinition::overlay(None, &serde_json::from_value(json).unwrap())
    }

    #[test]
    fn a_budget_body_becomes_sorted_exact_periods() {
        let b = budget(serde_json::json!({"name": "Cloud", "cost_report_token": "rprt_1",
            "periods": [{"start_at": "2024-02-01", "amount": 0.1},
                        {"start_at": "2024-01-01T00:00:00Z", "end_at": "2024-01-31", "amount": "1000.25"}]}))
        .unwrap();
        assert_eq!(b.periods.len(), 2);
        assert_eq!(
            (b.periods[0].start, b.periods[0].end, b.periods[0].amount.to_string()),
            (d("2024-01-01"), d("2024-01-31"), "1000.25".into())
        );
        // No end: the end of the start's month (a leap February). 0.1 is exactly 0.1.
        assert_eq!((b.periods[1].end, b.periods[1].amount.to_string()), (d("2024-02-29"), "0.1".into()));
        assert_eq!(b.period_of(d("2024-02-29")).map(|p| p.start), Some(d("2024-02-01")));
        assert_eq!(b.period_of(d("2024-03-01")), None);
    }

    #[test]
    fn every_problem_of_a_budget_body_is_listed_by_field() {
        let e = budget(serde_json::json!({"cost_report_token": "fldr_1",
            "periods": [{"start_at": "Jan", "amount": 1}, {"start_at": "2024-01-01", "amount": -5},
                        {"start_at": "2024-03-10", "end_at": "2024-03-01", "amount": 1}, {"amount": 1},
                        {"start_at": "2024-04-01", "amount": "x"}, 7]}))
        .unwrap_err();
        for needle in [
            "cost_report_token must be a cost report token",
            "periods[0].start_at must be a date",
            "periods[1].amount must not be negative",
            "periods[2].end_at (2024-03-01) must not be before",
            "periods[3].start_at is required",
            "periods[4].amount must be a number",
            "periods[5] must be an object",
        ] {
            assert!(e.iter().any(|m| m.contains(needle)), "{needle} in {e:?}");
        }
        let overlap = budget(serde_json::json!({"cost_report_token": "rprt_1",
            "periods": [{"start_at": "2024-01-01", "amount": 1}, {"start_at": "2024-01-15", "end_at": "2024-02-15", "amount": 1}]}))
        .unwrap_err();
        assert!(overlap[0].contains("periods overlap"), "{overlap:?}");
        assert!(
            budget(serde_json::json!({"cost_report_token": "rprt_1"})).unwrap_err()[0].contains("at least one period")
        );
        assert!(budget(serde_json::json!({"periods": [{"start_at": "2024-01-01", "amount": 1}]})).unwrap_err()[0]
            .contains("cost_report_token is required"));
    }

    #[test]
    fn a_hierarchical_budget_ignores_its_report_and_periods() {
        let b = budget(
            serde_json::json!({"cost_report_token": "rprt_1", "child_budget_tokens": ["bdgt_a", "bdgt_a", "bdgt_b"],
            "periods": [{"start_at": "2024-01-01", "amount": 1}]}),
        )
        .unwrap();
        assert_eq!(
            (b.cost_report_token, b.child_budget_tokens, b.periods),
            (None, vec!["bdgt_a".into(), "bdgt_b".into()], vec![])
        );
        assert!(budget(serde_json::json!({"child_budget_tokens": ["rprt_1"]})).unwrap_err()[0].contains("bdgt_"));
    }

    fn alert(json: Value) -> Result<BudgetAlertDefinition, Vec<String>> {
        BudgetAlertDefinition::overlay(None, &serde_json::from_value(json).unwrap())
    }

    fn period(start: &str, end: &str, amount: &str) -> BudgetPeriod {
        BudgetPeriod { start: d(start), end: d(end), amount: Amount::parse("amount", amount).unwrap() }
    }

    #[test]
    fn an_alert_fires_at_its_threshold_exactly_and_only_inside_its_window() {
        let a =
            alert(serde_json::json!({"budget_tokens": ["bdgt_1"], "threshold": 80, "duration_in_days": ""})).unwrap();
        let march = period("2024-03-01", "2024-03-31", "1000");
        let amount = |s: &str| Amount::parse("a", s).unwrap();
        assert!(!a.fires(&march, amount("799.999999999999999999"), d("2024-03-20")));
        assert!(a.fires(&march, amount("800"), d("2024-03-20")));
        assert!(!a.fires(&march, amount("5000"), d("2024-04-01")), "after the period");
        let first_week =
            alert(serde_json::json!({"budget_tokens": ["bdgt_1"], "threshold": 50, "duration_in_days": "7"})).unwrap();
        assert_eq!(first_week.window(&march), (d("2024-03-01"), d("2024-03-07")));
        assert!(first_week.fires(&march, amount("500"), d("2024-03-07")));
        assert!(!first_week.fires(&march, amount("500"), d("2024-03-08")));
        let last_days = alert(serde_json::json!({"budget_tokens": ["bdgt_1"], "threshold": 100, "duration_in_days": 3,
            "period_to_track": "end_of_the_month"}))
        .unwrap();
        assert_eq!(last_days.window(&march), (d("2024-03-29"), d("2024-03-31")));
        // A zero budget fires on any spend, never on none.
        let zero = period("2024-03-01", "2024-03-31", "0");
        assert!(!a.fires(&zero, Amount::ZERO, d("2024-03-02")));
        assert!(a.fires(&zero, amount("0.01"), d("2024-03-02")));
        // The largest amounts compare exactly too.
        let max = 10i128.pow(38) - 1;
        let huge = BudgetPeriod { amount: Amount::from_unscaled(max).unwrap(), ..march };
        let all = alert(serde_json::json!({"budget_tokens": ["bdgt_1"], "threshold": 1000})).unwrap();
        assert!(!all.fires(&huge, Amount::from_unscaled(max).unwrap(), d("2024-03-02")), "10× the largest budget");
        let all = alert(serde_json::json!({"budget_tokens": ["bdgt_1"], "threshold": 100})).unwrap();
        assert!(all.fires(&huge, Amount::from_unscaled(max).unwrap(), d("2024-03-02")));
        assert!(!all.fires(&huge, Amount::from_unscaled(max - 1).unwrap(), d("2024-03-02")));
    }

    #[test]
    fn every_problem_of_an_alert_body_is_listed_by_field() {
        let e = alert(serde_json::json!({"budget_tokens": [], "threshold": 0, "duration_in_days": "40",
            "period_to_track": "midday", "recipient_channels": ["#finance", "ftp://x", "http://"],
            "integration_provider": "slack", "based_on": "hope"}))
        .unwrap_err();
        for needle in [
            "budget_tokens: an alert watches",
            "threshold must be a whole percentage",
            "duration_in_days must be empty",
            "period_to_track must be",
            "recipient_channels[0] must be an email address or an http(s) webhook URL",
            "recipient_channels[1]",
            "recipient_channels[2]",
            "integration_provider",
            "based_on must be actual or forecast",
        ] {
            assert!(e.iter().any(|m| m.contains(needle)), "{needle} in {e:?}");
        }
        let ok = alert(serde_json::json!({"budget_tokens": ["bdgt_1"], "threshold": "90",
            "recipient_channels": ["ops@example.com", "https://hooks.slack.com/services/T/B/X"]}))
        .unwrap();
        assert_eq!(ok.recipients().len(), 2);
        assert_eq!(ok.period_to_track, PeriodToTrack::StartOfTheMonth);
        assert_eq!(ok.based_on, BasedOn::Actual);
        let forecast =
            alert(serde_json::json!({"budget_tokens": ["bdgt_1"], "threshold": 90, "based_on": "forecast"})).unwrap();
        assert_eq!(forecast.based_on, BasedOn::Forecast);
        // An update that does not name it keeps it; an alert stored before the field compares actuals.
        let kept = BudgetAlertDefinition::overlay(Some(&forecast), &BudgetAlertFields::default()).unwrap();
        assert_eq!(kept.based_on, BasedOn::Forecast);
        let old: BudgetAlertDefinition = serde_json::from_str(
            r#"{"budget_tokens":["bdgt_1"],"threshold":5,"user_tokens":[],"duration_in_days":null,
                "period_to_track":"start_of_the_month","recipient_channels":[]}"#,
        )
        .unwrap();
        assert_eq!(old.based_on, BasedOn::Actual);
        assert!(
            alert(serde_json::json!({"budget_tokens": ["bdgt_1"]})).unwrap_err()[0].contains("threshold is required")
        );
    }
}
