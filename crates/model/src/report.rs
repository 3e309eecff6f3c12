//! Cost reports, saved filters and folders as the API takes them: request bodies parsed into what is
//! stored (every problem listed, each naming its field), and a report's dates, a named interval resolved
//! against "today" or fixed dates, with its previous period.
//!
//! Dates, as Vantage's Python client sends them (it requires `end_date` and `previous_period_end_date` on
//! every create, "" standing for none):
//! - a named `date_interval` wins over an `end_date` and a `previous_period_end_date` given without their
//!   starts (the interval decides both periods); with a full `start_date`..`end_date` it still conflicts;
//! - an `end_date` alone is the month to that day (from the 1st of its month);
//! - a `previous_period_end_date` alone, beside fixed dates, takes the current period's length: as many
//!   whole months when both periods are whole months, else as many days.
//!
//! References to other objects (workspace, folder, saved filters) are only parsed here; the service
//! checks that they exist in the caller's account.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::cost_query::DateBin;
use crate::cost_query::{month_of, parse_groupings, AggregateBy, CostSettings, Grouping};
use crate::vql::Filter;

/// The kinds of object that share the reports store: each has a workspace, a title and a definition. (The
/// alerts wing has tables of its own: `record`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    Folder,
    SavedFilter,
    CostReport,
}

impl ViewKind {
    pub const ALL: [ViewKind; 3] = [ViewKind::Folder, ViewKind::SavedFilter, ViewKind::CostReport];

    pub fn as_str(self) -> &'static str {
        match self {
            ViewKind::Folder => "folder",
            ViewKind::SavedFilter => "saved_filter",
            ViewKind::CostReport => "cost_report",
        }
    }

    /// Vantage's token prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            ViewKind::Folder => "fldr_",
            ViewKind::SavedFilter => "svd_fltr_",
            ViewKind::CostReport => crate::token::prefix::REPORT,
        }
    }

    /// What the API calls one, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            ViewKind::Folder => "folder",
            ViewKind::SavedFilter => "saved filter",
            ViewKind::CostReport => "cost report",
        }
    }
}

/// A report's named date range (Vantage's `date_interval`), resolved against the day a query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateInterval {
    ThisMonth,
    /// The N days before today (today is not complete).
    LastDays(u32),
    LastMonth,
    /// The N whole calendar months before this one.
    LastMonths(u32),
    NextMonth,
    /// The N calendar months after this one.
    NextMonths(u32),
    YearToDate,
    /// Fixed `start_date` and `end_date`.
    Custom,
}

/// Every name Vantage gives an interval, with its meaning.
const INTERVALS: [(&str, DateInterval); 17] = [
    ("this_month", DateInterval::ThisMonth),
    ("last_3_days", DateInterval::LastDays(3)),
    ("last_7_days", DateInterval::LastDays(7)),
    ("last_14_days", DateInterval::LastDays(14)),
    ("last_30_days", DateInterval::LastDays(30)),
    ("last_month", DateInterval::LastMonth),
    ("last_3_months", DateInterval::LastMonths(3)),
    ("last_6_months", DateInterval::LastMonths(6)),
    ("last_12_months", DateInterval::LastMonths(12)),
    ("last_24_months", DateInterval::LastMonths(24)),
    ("last_36_months", DateInterval::LastMonths(36)),
    ("next_month", DateInterval::NextMonth),
    ("next_3_months", DateInterval::NextMonths(3)),
    ("next_6_months", DateInterval::NextMonths(6)),
    ("next_12_months", DateInterval::NextMonths(12)),
    ("year_to_date", DateInterval::YearToDate),
    ("custom", DateInterval::Custom),
];

impl DateInterval {
    pub fn parse(name: &str) -> Result<DateInterval, String> {
        INTERVALS.iter().find(|(n, _)| *n == name).map(|(_, i)| *i).ok_or_else(|| {
            let names: Vec<&str> = INTERVALS.iter().map(|(n, _)| *n).collect();
            format!("date_interval must be one of {}, got {name:?}", names.join(", "))
        })
    }

    pub fn name(self) -> &'static str {
        INTERVALS.iter().find(|(_, i)| *i == self).map(|(n, _)| *n).expect("every interval is named")
    }

    /// The first and last day the interval covers on `today`; `None` for [`DateInterval::Custom`].
    pub fn resolve(self, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let (month_start, _) = month_of(today);
        let months_from = |n: i32| -> NaiveDate {
            if n >= 0 {
                month_start.checked_add_months(Months::new(n as u32))
            } else {
                month_start.checked_sub_months(Months::new(n.unsigned_abs()))
            }
            .expect("a date within a few years")
        };
        let day_before = |d: NaiveDate| d.pred_opt().expect("a date after the epoch");
        Some(match self {
            DateInterval::ThisMonth => month_of(today),
            DateInterval::LastDays(n) => (today - chrono::Days::new(u64::from(n)), day_before(today)),
            DateInterval::LastMonth => (months_from(-1), day_before(month_start)),
            DateInterval::LastMonths(n) => (months_from(-(n as i32)), day_before(month_start)),
            DateInterval::NextMonth => (months_from(1), day_before(months_from(2))),
            DateInterval::NextMonths(n) => (months_from(1), day_before(months_from(n as i32 + 1))),
            DateInterval::YearToDate => (NaiveDate::from_ymd_opt(today.year(), 1, 1).expect("valid date"), today),
            DateInterval::Custom => return None,
        })
    }
}

/// The period before `start..=end` that a report compares with: as many whole months before, when the
/// range is whole months; else as many days before.
pub fn previous_period(start: NaiveDate, end: NaiveDate) -> (NaiveDate, NaiveDate) {
    let whole_months = start.day() == 1 && end.succ_opt().is_some_and(|next| next.day() == 1);
    if whole_months {
        let months = (end.year() - start.year()) * 12 + end.month() as i32 - start.month() as i32 + 1;
        let previous_start = start.checked_sub_months(Months::new(months as u32)).expect("a date after the epoch");
        (previous_start, start.pred_opt().expect("a date after the epoch"))
    } else {
        let days = (end - start).num_days() + 1;
        (start - chrono::Duration::days(days), start.pred_opt().expect("a date after the epoch"))
    }
}

/// The start of the previous period that ends on `previous_end` and is as long as `start..=end`: as many
/// whole months when both are whole months, else as many days.
pub fn previous_period_ending(start: NaiveDate, end: NaiveDate, previous_end: NaiveDate) -> NaiveDate {
    let ends_a_month = |d: NaiveDate| d.succ_opt().is_some_and(|next| next.day() == 1);
    if start.day() == 1 && ends_a_month(end) && ends_a_month(previous_end) {
        let months = (end.year() - start.year()) * 12 + end.month() as i32 - start.month() as i32 + 1;
        let first = previous_end.with_day(1).expect("day 1 exists");
        first.checked_sub_months(Months::new(months as u32 - 1)).expect("a date after the epoch")
    } else {
        previous_end - chrono::Duration::days((end - start).num_days())
    }
}

/// How a report bins dates. `cumulative` is a chart of running totals, costed by day.
const REPORT_BINS: [&str; 5] = ["cumulative", "day", "week", "month", "quarter"];
const CHART_TYPES: [&str; 5] = ["area", "line", "pie", "bar", "multi_bar"];
const Y_AXES: [&str; 3] = ["cost", "usage", "count"];

/// A report's chart settings (display only: they shape no number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartSettings {
    pub x_axis_dimension: Vec<String>,
    pub y_axis_dimension: String,
}

impl Default for ChartSettings {
    fn default() -> Self {
        ChartSettings { x_axis_dimension: vec!["date".into()], y_axis_dimension: "cost".into() }
    }
}

/// A cost report as stored, less what the store keeps in columns (title, workspace, folder, saved
/// filters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDefinition {
    pub filter: Option<String>,
    /// Comma-separated, checked; `None`: the costs API's default groupings.
    pub groupings: Option<String>,
    pub settings: CostSettings,
    /// [`DateInterval`]'s name; `custom` with fixed dates.
    pub date_interval: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub previous_period_start_date: Option<NaiveDate>,
    pub previous_period_end_date: Option<NaiveDate>,
    pub chart_type: String,
    pub date_bin: String,
    pub chart_settings: ChartSettings,
    /// The segment that generated the report (`model::segment`): the report shows that segment's costs,
    /// and is changed only through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_token: Option<String>,
}

impl Default for ReportDefinition {
    /// Vantage's defaults: this month, line chart, cumulative.
    fn default() -> Self {
        ReportDefinition {
            filter: None,
            groupings: None,
            settings: CostSettings::default(),
            date_interval: "this_month".into(),
            start_date: None,
            end_date: None,
            previous_period_start_date: None,
            previous_period_end_date: None,
            chart_type: "line".into(),
            date_bin: "cumulative".into(),
            chart_settings: ChartSettings::default(),
            segment_token: None,
        }
    }
}

impl ReportDefinition {
    /// The dates the report covers on `today`.
    pub fn dates(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        match (self.start_date, self.end_date) {
            (Some(start), Some(end)) => (start, end),
            _ => DateInterval::parse(&self.date_interval)
                .ok()
                .and_then(|i| i.resolve(today))
                .unwrap_or_else(|| month_of(today)),
        }
    }

    /// The period the report compares with on `today`: the one set, or the one before [`Self::dates`].
    pub fn previous_dates(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        match (self.previous_period_start_date, self.previous_period_end_date) {
            (Some(start), Some(end)) => (start, end),
            _ => {
                let (start, end) = self.dates(today);
                previous_period(start, end)
            }
        }
    }

    /// The costs query's date bin: a cumulative chart is costed by day.
    pub fn cost_date_bin(&self) -> DateBin {
        self.date_bin.parse().unwrap_or(DateBin::Day)
    }

    /// The report's groupings for the costs query.
    pub fn grouping_list(&self) -> Option<Vec<Grouping>> {
        // Checked when the report was stored, by the same grammar.
        self.groupings.as_ref().map(|g| {
            let mut list = Vec::new();
            parse_groupings(g, &mut list, &mut Vec::new());
            list
        })
    }
}

/// The `settings` object of a request: each field given replaces the current value.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingsFields {
    include_credits: Option<bool>,
    include_refunds: Option<bool>,
    include_discounts: Option<bool>,
    include_tax: Option<bool>,
    amortize: Option<bool>,
    unallocated: Option<bool>,
    aggregate_by: Option<String>,
    show_previous_period: Option<bool>,
    complete_period: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChartSettingsFields {
    x_axis_dimension: Option<Vec<String>>,
    y_axis_dimension: Option<String>,
}

/// A cost report's create or update body, as Vantage names its fields.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CostReportFields {
    pub title: Option<String>,
    pub workspace_token: Option<String>,
    pub folder_token: Option<String>,
    pub saved_filter_tokens: Option<Vec<String>>,
    groupings: Option<String>,
    filter: Option<String>,
    /// The business metrics attached from the report's side (`business_metric::parse_report_metrics`):
    /// kept apart from the report's definition, as the attachments belong to both.
    pub business_metric_tokens_with_metadata: Option<Vec<serde_json::Value>>,
    default_forecast: Option<serde_json::Value>,
    settings: Option<SettingsFields>,
    previous_period_start_date: Option<String>,
    previous_period_end_date: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    date_interval: Option<String>,
    chart_type: Option<String>,
    date_bin: Option<String>,
    chart_settings: Option<ChartSettingsFields>,
}

/// A date field: absent, empty (Vantage's Python client requires `end_date` and
/// `previous_period_end_date`, so "" stands for none) or a date.
fn date_field(name: &str, value: Option<&str>, errors: &mut Vec<String>) -> Option<NaiveDate> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    match NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(format!("{name} must be a date like 2024-05-01, got {v:?}"));
            None
        }
    }
}

fn one_of(name: &str, value: &str, allowed: &[&str], errors: &mut Vec<String>) -> bool {
    let ok = allowed.contains(&value);
    if !ok {
        errors.push(format!("{name} must be one of {}, got {value:?}", allowed.join(", ")));
    }
    ok
}

/// A title: required on create, never blank, at most 255 characters.
pub fn title(value: Option<&str>, current: Option<&str>, errors: &mut Vec<String>) -> String {
    match value.map(str::trim) {
        Some("") => errors.push("title must not be blank".into()),
        Some(t) if t.chars().count() > 255 => errors.push("title must be at most 255 characters".into()),
        Some(t) => return t.to_string(),
        None if current.is_none() => errors.push("title is required".into()),
        None => {}
    }
    current.unwrap_or_default().to_string()
}

/// A VQL filter, checked; empty text is no filter.
pub fn filter_field(name: &str, value: Option<&str>, errors: &mut Vec<String>) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    match Filter::parse(v) {
        Ok(_) => Some(v.to_string()),
        Err(e) => {
            errors.push(format!("{name}: {e}"));
            None
        }
    }
}

impl ReportDefinition {
    /// `current` (Vantage's defaults on create) with `fields` laid over it, every problem listed.
    pub fn overlay(current: &ReportDefinition, fields: &CostReportFields) -> Result<ReportDefinition, Vec<String>> {
        let mut errors = Vec::new();
        let mut next = current.clone();

        if let Some(f) = &fields.filter {
            next.filter = filter_field("filter", Some(f), &mut errors);
        }
        if let Some(g) = &fields.groupings {
            let mut list = Vec::new();
            parse_groupings(g, &mut list, &mut errors);
            next.groupings =
                (!list.is_empty()).then(|| list.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(","));
        }
        if fields.default_forecast.as_ref().is_some_and(|f| !f.is_null()) {
            errors.push("default_forecast: costd has no report forecasts to select; send none".into());
        }
        if let Some(s) = &fields.settings {
            let t = &mut next.settings;
            for (value, slot) in [
                (s.include_credits, &mut t.include_credits),
                (s.include_refunds, &mut t.include_refunds),
                (s.include_discounts, &mut t.include_discounts),
                (s.include_tax, &mut t.include_tax),
                (s.amortize, &mut t.amortize),
                (s.unallocated, &mut t.unallocated),
                (s.show_previous_period, &mut t.show_previous_period),
            ] {
                if let Some(v) = value {
                    *slot = v;
                }
            }
            if let Some(a) = &s.aggregate_by {
                match AggregateBy::parse(a) {
                    Ok(a) => t.aggregate_by = a,
                    Err(e) => errors.push(format!("settings.{e}")),
                }
            }
            if s.complete_period == Some(true) {
                errors.push("settings.complete_period: not supported yet; periods end where the dates say".into());
            }
            errors.extend(t.unsupported(|n| format!("settings.{n}")));
        }

        // Dates: fixed start and end, or a named interval (the default: this month).
        let start = date_field("start_date", fields.start_date.as_deref(), &mut errors);
        let end = date_field("end_date", fields.end_date.as_deref(), &mut errors);
        let interval = match fields.date_interval.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            Some(name) => match DateInterval::parse(name) {
                Ok(i) => Some(i),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            None => None,
        };
        // Vantage's Python client requires `end_date` and `previous_period_end_date` on every create, so its
        // users send them beside a named interval, or alone: a named interval wins over an end (and a
        // previous end) given without its start, and an end alone is the month to that day.
        let mut interval_wins = false;
        match (start, end, interval) {
            (Some(_), Some(_), Some(i)) if i != DateInterval::Custom => errors.push(format!(
                "date_interval {} cannot go with start_date and end_date; send one or the other",
                i.name()
            )),
            (Some(s), Some(e), _) if e < s => {
                errors.push(format!("end_date ({e}) must not be before start_date ({s})"))
            }
            (Some(s), Some(e), _) => {
                (next.start_date, next.end_date) = (Some(s), Some(e));
                next.date_interval = DateInterval::Custom.name().into();
            }
            (Some(_), None, _) => errors.push("start_date needs end_date".into()),
            (None, Some(_), Some(i)) if i != DateInterval::Custom => {
                (next.start_date, next.end_date) = (None, None);
                next.date_interval = i.name().into();
                interval_wins = true;
            }
            (None, Some(e), _) => {
                (next.start_date, next.end_date) = (Some(e.with_day(1).expect("day 1 exists")), Some(e));
                next.date_interval = DateInterval::Custom.name().into();
            }
            (None, None, Some(DateInterval::Custom)) if next.start_date.is_none() => {
                errors.push("date_interval custom needs start_date and end_date".into())
            }
            (None, None, Some(DateInterval::Custom)) => {}
            (None, None, Some(i)) => {
                (next.start_date, next.end_date) = (None, None);
                next.date_interval = i.name().into();
                interval_wins = true;
            }
            (None, None, None) => {}
        }
        let previous_start =
            date_field("previous_period_start_date", fields.previous_period_start_date.as_deref(), &mut errors);
        let previous_end =
            date_field("previous_period_end_date", fields.previous_period_end_date.as_deref(), &mut errors);
        match (previous_start, previous_end) {
            (Some(s), Some(e)) if e < s => errors
                .push(format!("previous_period_end_date ({e}) must not be before previous_period_start_date ({s})")),
            (Some(s), Some(e)) => (next.previous_period_start_date, next.previous_period_end_date) = (Some(s), Some(e)),
            (Some(_), None) => errors.push("previous_period_start_date needs previous_period_end_date".into()),
            // A previous period given by its end alone: the named interval decides it, or it is as long as
            // the fixed current period.
            (None, Some(e)) => match (next.start_date, next.end_date) {
                (Some(s), Some(current_end)) if !interval_wins => {
                    let start = previous_period_ending(s, current_end, e);
                    (next.previous_period_start_date, next.previous_period_end_date) = (Some(start), Some(e));
                }
                _ => (next.previous_period_start_date, next.previous_period_end_date) = (None, None),
            },
            (None, None) => {}
        }
        if let Some(c) = fields.chart_type.as_deref().map(str::trim) {
            if one_of("chart_type", c, &CHART_TYPES, &mut errors) {
                next.chart_type = c.to_string();
            }
        }
        if let Some(b) = fields.date_bin.as_deref().map(str::trim) {
            if b == "hour" {
                errors.push("date_bin: costd keeps costs by day, so hour is not available".into());
            } else if one_of("date_bin", b, &REPORT_BINS, &mut errors) {
                next.date_bin = b.to_string();
            }
        }
        if let Some(c) = &fields.chart_settings {
            if let Some(x) = &c.x_axis_dimension {
                if x.len() == 1 && !x[0].trim().is_empty() {
                    next.chart_settings.x_axis_dimension = vec![x[0].trim().to_string()];
                } else {
                    errors.push("chart_settings.x_axis_dimension takes exactly one dimension, e.g. [\"date\"]".into());
                }
            }
            if let Some(y) = c.y_axis_dimension.as_deref().map(str::trim) {
                if one_of("chart_settings.y_axis_dimension", y, &Y_AXES, &mut errors) {
                    next.chart_settings.y_axis_dimension = y.to_string();
                }
            }
        }
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }
}

/// A folder's or saved filter's create or update body.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FolderFields {
    pub title: Option<String>,
    pub parent_folder_token: Option<String>,
    pub saved_filter_tokens: Option<Vec<String>>,
    pub workspace_token: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavedFilterFields {
    pub title: Option<String>,
    pub workspace_token: Option<String>,
    pub filter: Option<String>,
}

/// Folder types Vantage names: costd has cost folders only.
pub fn folder_type(value: Option<&str>, errors: &mut Vec<String>) {
    if let Some(t) = value.map(str::trim) {
        if t == "ProviderResourceFolder" {
            errors.push("type: costd has no provider resources; folders are CostFolder".into());
        } else if t != "CostFolder" {
            errors.push(format!("type must be CostFolder, got {t:?}"));
        }
    }
}

/// A saved filter as stored beside its title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFilterDefinition {
    pub filter: Option<String>,
    /// The user token of whoever made it.
    pub created_by: Option<String>,
}

/// A cost report, saved filter or folder (see [`crate::report`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportObject {
    pub token: String,
    pub kind: ViewKind,
    pub workspace_token: String,
    /// A report's folder, a folder's parent.
    pub folder_token: Option<String>,
    pub title: String,
    /// The kind's definition (JSON), read by the service.
    pub definition: String,
    /// The saved filters it applies, in order (reports and folders).
    pub saved_filter_tokens: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A report object to write: everything but its token and times.
#[derive(Debug, Clone)]
pub struct ReportObjectFields {
    pub workspace_token: String,
    pub folder_token: Option<String>,
    pub title: String,
    pub definition: String,
    pub saved_filter_tokens: Vec<String>,
}

/// Which report objects a list shows.
#[derive(Debug, Clone, Default)]
pub struct ReportObjectFilter {
    pub workspace_token: Option<String>,
    pub folder_token: Option<String>,
    /// Titles containing this, case-insensitively.
    pub title_like: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_named_interval_resolves_against_today() {
        let today = d("2026-03-15");
        let cases = [
            ("this_month", "2026-03-01", "2026-03-31"),
            ("last_3_days", "2026-03-12", "2026-03-14"),
            ("last_7_days", "2026-03-08", "2026-03-14"),
            ("last_14_days", "2026-03-01", "2026-03-14"),
            ("last_30_days", "2026-02-13", "2026-03-14"),
            ("last_month", "2026-02-01", "2026-02-28"),
            ("last_3_months", "2025-12-01", "2026-02-28"),
            ("last_6_months", "2025-09-01", "2026-02-28"),
            ("last_12_months", "2025-03-01", "2026-02-28"),
            ("last_24_months", "2024-03-01", "2026-02-28"),
            ("last_36_months", "2023-03-01", "2026-02-28"),
            ("next_month", "2026-04-01", "2026-04-30"),
            ("next_3_months", "2026-04-01", "2026-06-30"),
            ("next_6_months", "2026-04-01", "2026-09-30"),
            ("next_12_months", "2026-04-01", "2027-03-31"),
            ("year_to_date", "2026-01-01", "2026-03-15"),
        ];
        for (name, start, end) in cases {
            let i = DateInterval::parse(name).unwrap();
            assert_eq!(i.name(), name);
            assert_eq!(i.resolve(today), Some((d(start), d(end))), "{name}");
        }
        assert_eq!(DateInterval::parse("custom").unwrap().resolve(today), None);
        assert!(DateInterval::parse("last_week").unwrap_err().contains("last_3_days"));
        // The first of a month and the first of a year.
        assert_eq!(DateInterval::LastDays(7).resolve(d("2026-01-01")), Some((d("2025-12-25"), d("2025-12-31"))));
        assert_eq!(DateInterval::LastMonth.resolve(d("2026-01-01")), Some((d("2025-12-01"), d("2025-12-31"))));
        assert_eq!(DateInterval::YearToDate.resolve(d("2024-12-31")), Some((d("2024-01-01"), d("2024-12-31"))));
    }

    #[test]
    fn a_previous_period_is_as_many_months_or_days_before() {
        assert_eq!(previous_period(d("2026-03-01"), d("2026-03-31")), (d("2026-02-01"), d("2026-02-28")));
        assert_eq!(previous_period(d("2025-12-01"), d("2026-02-28")), (d("2025-09-01"), d("2025-11-30")));
        assert_eq!(previous_period(d("2026-03-08"), d("2026-03-14")), (d("2026-03-01"), d("2026-03-07")));
        assert_eq!(previous_period(d("2026-03-01"), d("2026-03-15")), (d("2026-02-14"), d("2026-02-28")));
    }

    fn fields(json: serde_json::Value) -> CostReportFields {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_report_body_overlays_vantage_defaults() {
        let r = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({
                "title": "EC2", "filter": "costs.service = 'EC2'", "groupings": "service,region,service",
                "date_interval": "last_month", "chart_type": "bar", "date_bin": "month",
                "settings": {"include_credits": true, "amortize": false, "aggregate_by": "usage"},
                "end_date": "", "previous_period_end_date": ""
            })),
        )
        .unwrap();
        assert_eq!(r.groupings.as_deref(), Some("service,region"));
        assert_eq!((r.date_interval.as_str(), r.start_date), ("last_month", None));
        assert_eq!(r.dates(d("2026-03-15")), (d("2026-02-01"), d("2026-02-28")));
        assert_eq!(r.previous_dates(d("2026-03-15")), (d("2026-01-01"), d("2026-01-31")));
        assert!(r.settings.include_credits && !r.settings.amortize && r.settings.include_tax);
        assert_eq!(r.settings.aggregate_by, AggregateBy::Usage);
        assert_eq!(r.cost_date_bin(), DateBin::Month);

        let fixed = ReportDefinition::overlay(
            &r,
            &fields(serde_json::json!({"start_date": "2024-01-01", "end_date": "2024-03-31",
                "previous_period_start_date": "2023-01-01", "previous_period_end_date": "2023-03-31"})),
        )
        .unwrap();
        assert_eq!(
            (fixed.date_interval.as_str(), fixed.dates(d("2026-03-15"))),
            ("custom", (d("2024-01-01"), d("2024-03-31")))
        );
        assert_eq!(fixed.previous_dates(d("2026-03-15")), (d("2023-01-01"), d("2023-03-31")));
        assert_eq!(fixed.filter, r.filter, "an update keeps what it does not name");
    }

    #[test]
    fn every_problem_of_a_report_body_is_listed_by_field() {
        let errors = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({
                "filter": "costs.nope = 1", "groupings": "service,colour", "date_interval": "last_week",
                "chart_type": "donut", "date_bin": "hour", "start_date": "2024-02-30", "end_date": "2024-03-01",
                "previous_period_start_date": "2024-01-01",
                "settings": {"unallocated": true, "aggregate_by": "count", "complete_period": true},
                "chart_settings": {"x_axis_dimension": ["date", "service"], "y_axis_dimension": "money"}
            })),
        )
        .unwrap_err();
        for needle in [
            "filter:",
            "colour",
            "date_interval must be",
            "chart_type",
            "date_bin: costd keeps costs by day",
            "start_date must be a date",
            "previous_period_start_date needs",
            "settings.unallocated",
            "settings.aggregate_by: count",
            "settings.complete_period",
            "x_axis_dimension",
            "y_axis_dimension",
        ] {
            assert!(errors.iter().any(|e| e.contains(needle)), "{needle} in {errors:?}");
        }
        let interval_and_dates = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({"date_interval": "last_month", "start_date": "2024-01-01", "end_date": "2024-01-31"})),
        )
        .unwrap_err();
        assert!(interval_and_dates[0].contains("cannot go with"), "{interval_and_dates:?}");
        let custom_alone_end = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({"start_date": "2024-01-01", "previous_period_start_date": "2023-12-01"})),
        )
        .unwrap_err();
        assert_eq!(
            custom_alone_end,
            vec!["start_date needs end_date", "previous_period_start_date needs previous_period_end_date"]
        );
        let custom_alone = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({"date_interval": "custom"})),
        )
        .unwrap_err();
        assert!(custom_alone[0].contains("custom needs"));
    }

    #[test]
    fn the_python_clients_date_shapes_are_accepted() {
        let today = d("2026-03-15");
        // A named interval wins over the end dates the client must send.
        let named = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({"date_interval": "last_month", "end_date": "2024-01-31",
                                       "previous_period_end_date": "2023-12-31"})),
        )
        .unwrap();
        assert_eq!(
            (named.date_interval.as_str(), named.start_date, named.previous_period_end_date),
            ("last_month", None, None)
        );
        assert_eq!(named.dates(today), (d("2026-02-01"), d("2026-02-28")));
        assert_eq!(named.previous_dates(today), (d("2026-01-01"), d("2026-01-31")));
        // An end alone is the month to that day; a previous end alone takes the current period's length.
        let ends = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({"end_date": "2024-03-20", "previous_period_end_date": "2024-02-20"})),
        )
        .unwrap();
        assert_eq!(ends.date_interval, "custom");
        assert_eq!(ends.dates(today), (d("2024-03-01"), d("2024-03-20")));
        assert_eq!(ends.previous_dates(today), (d("2024-02-01"), d("2024-02-20")));
        // Three dates: whole months stay whole months, other ranges keep their days.
        let quarter = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({"start_date": "2024-04-01", "end_date": "2024-06-30",
                                       "previous_period_end_date": "2023-06-30"})),
        )
        .unwrap();
        assert_eq!(quarter.previous_dates(today), (d("2023-04-01"), d("2023-06-30")));
        let week = ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(serde_json::json!({"start_date": "2024-03-04", "end_date": "2024-03-10",
                                       "previous_period_end_date": "2024-02-29"})),
        )
        .unwrap();
        assert_eq!(week.previous_dates(today), (d("2024-02-23"), d("2024-02-29")));
        // With a full range, an interval still conflicts.
        assert!(ReportDefinition::overlay(
            &ReportDefinition::default(),
            &fields(
                serde_json::json!({"date_interval": "last_month", "start_date": "2024-01-01", "end_date": "2024-01-31",
                                       "previous_period_end_date": "2023-12-31"})
            ),
        )
        .is_err());
    }
}
