//! The costs query as a domain type: what `GET /v2/costs`, `costd query`, a stored cost report, a budget
//! or an alert asks of the costs, parsed once into a [`CostQuery`] that holds no engine type. It is `Eq +
//! Hash`, so the result cache keys on the query itself; the engine (`engine::costs`) compiles it.
//!
//! Adding a costs parameter: a field of [`CostQuery`] (or of [`CostSettings`] for a `settings[…]` one), its
//! parsing in [`parse_params_with`] (and `CostSettings::set`), its default in [`Defaults`], and what the
//! engine does with it in `engine::costs::grouped`. A cost report stores [`CostSettings`] whole, so a new
//! setting needs nothing more there.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::vql::Filter;
use crate::PageRequest;

/// How rows are binned in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateBin {
    Day,
    Week,
    Month,
    Quarter,
}

impl std::str::FromStr for DateBin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(DateBin::Day),
            "week" => Ok(DateBin::Week),
            "month" => Ok(DateBin::Month),
            "quarter" => Ok(DateBin::Quarter),
            other => Err(format!("date_bin must be day, week, month or quarter, got {other:?}")),
        }
    }
}

impl DateBin {
    /// The first day of the bin `day` falls in: itself, its week's Monday, its month's or quarter's first
    /// day (as the engine bins rows).
    pub fn start_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            DateBin::Day => day,
            DateBin::Week => day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
            DateBin::Month => day.with_day(1).expect("every month has a first day"),
            DateBin::Quarter => NaiveDate::from_ymd_opt(day.year(), (day.month() - 1) / 3 * 3 + 1, 1)
                .expect("every quarter has a first day"),
        }
    }
}

/// Which charge types show (Vantage's `settings[include_*]`) and which amount is summed: what the engine
/// needs of [`CostSettings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Settings {
    pub include_credits: bool,
    pub include_refunds: bool,
    pub include_discounts: bool,
    pub include_tax: bool,
    /// Sum FOCUS EffectiveCost (amortized) where a row has one, else BilledCost; off: BilledCost always.
    pub amortize: bool,
}

impl Default for Settings {
    /// Vantage's defaults.
    fn default() -> Self {
        Settings {
            include_credits: false,
            include_refunds: false,
            include_discounts: true,
            include_tax: true,
            amortize: true,
        }
    }
}

/// What each row sums besides its cost (Vantage's `settings[aggregate_by]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Aggregate {
    #[default]
    Cost,
    /// Also the usage (FOCUS ConsumedQuantity), per usage unit: rows are split by unit.
    Usage,
}

/// A grouping read from one cost column (`GET /v2/costs?groupings=`): the ten Vantage documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnGrouping {
    Provider,
    Service,
    AccountId,
    BillingAccountId,
    ChargeType,
    CostCategory,
    CostSubcategory,
    Region,
    ResourceId,
    UsageUnit,
}

impl ColumnGrouping {
    pub const ALL: [ColumnGrouping; 10] = [
        ColumnGrouping::Provider,
        ColumnGrouping::Service,
        ColumnGrouping::AccountId,
        ColumnGrouping::BillingAccountId,
        ColumnGrouping::ChargeType,
        ColumnGrouping::CostCategory,
        ColumnGrouping::CostSubcategory,
        ColumnGrouping::Region,
        ColumnGrouping::ResourceId,
        ColumnGrouping::UsageUnit,
    ];

    /// Its name in `groupings=`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnGrouping::Provider => "provider",
            ColumnGrouping::Service => "service",
            ColumnGrouping::AccountId => "account_id",
            ColumnGrouping::BillingAccountId => "billing_account_id",
            ColumnGrouping::ChargeType => "charge_type",
            ColumnGrouping::CostCategory => "cost_category",
            ColumnGrouping::CostSubcategory => "cost_subcategory",
            ColumnGrouping::Region => "region",
            ColumnGrouping::ResourceId => "resource_id",
            ColumnGrouping::UsageUnit => "usage_unit",
        }
    }
}

/// One grouping of the costs query: a column, whether a row has tags, or one tag's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grouping {
    Column(ColumnGrouping),
    /// `tagged`: whether the row has any tag.
    Tagged,
    /// `tag:<key>`: the value of the row's tag `key` (never empty).
    Tag(String),
    /// The integration a row came from (its token; none for a billing rule's line item). costd's own, not a
    /// `groupings=` value: invoices name their lines by it.
    Integration,
}

impl Grouping {
    /// Its name in `groupings=` (and in the result's rows and CSV headers).
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            Grouping::Column(c) => Cow::Borrowed(c.name()),
            Grouping::Tagged => Cow::Borrowed("tagged"),
            Grouping::Tag(key) => Cow::Owned(format!("tag:{key}")),
            Grouping::Integration => Cow::Borrowed("integration"),
        }
    }
}

impl From<ColumnGrouping> for Grouping {
    fn from(c: ColumnGrouping) -> Self {
        Grouping::Column(c)
    }
}

impl Serialize for Grouping {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl std::fmt::Display for Grouping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Grouping {
    type Err = String;

    fn from_str(g: &str) -> Result<Self, Self::Err> {
        if let Some(c) = ColumnGrouping::ALL.into_iter().find(|c| c.name() == g) {
            return Ok(Grouping::Column(c));
        }
        match g.strip_prefix("tag:") {
            Some(key) if !key.is_empty() => Ok(Grouping::Tag(key.to_string())),
            _ if g == "tagged" => Ok(Grouping::Tagged),
            _ => {
                let mut valid: Vec<&str> = ColumnGrouping::ALL.iter().map(|c| c.name()).collect();
                valid.sort_unstable();
                Err(format!("groupings: unknown grouping {g:?}; valid: {}, tagged, tag:<key>", valid.join(", ")))
            }
        }
    }
}

/// What to compute: every parameter of a costs query, checked. Equal queries over the same uploads and
/// rules have equal results (the result cache's key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CostQuery {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// In the order given, each once.
    pub groupings: Vec<Grouping>,
    pub date_bin: DateBin,
    pub descending: bool,
    pub settings: Settings,
    pub aggregate: Aggregate,
    /// Every filter the query applies (a report's, its saved filters', `filter=`), ANDed.
    pub filter: Option<Filter>,
    /// A segment's report: only the costs the segment is assigned (`model::segment`).
    pub segment: Option<crate::segment::SegmentScope>,
}

impl CostQuery {
    /// Every VQL filter the query reads: its own and its segment's.
    pub fn filters(&self) -> impl Iterator<Item = &Filter> {
        self.filter.iter().chain(self.segment.iter().flat_map(|s| s.filters()))
    }
}

/// `total_cost.amount`: rounded to 2 places, half away from zero (docs/design.md "Money").
pub fn round_total(total: Amount) -> String {
    total.rounded(2).to_string()
}

/// Largest `limit` of `/v2/costs`.
pub const MAX_COSTS_LIMIT: u32 = 5000;
pub const DEFAULT_GROUPINGS: [ColumnGrouping; 3] =
    [ColumnGrouping::Provider, ColumnGrouping::Service, ColumnGrouping::AccountId];

/// [`DEFAULT_GROUPINGS`] as a query's list.
pub fn default_groupings() -> Vec<Grouping> {
    DEFAULT_GROUPINGS.into_iter().map(Grouping::Column).collect()
}

/// The query string, checked; every problem is listed.
pub struct Params {
    pub query: CostQuery,
    pub workspace_token: Option<String>,
    pub page: PageRequest,
}

/// What `settings[aggregate_by]` sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateBy {
    #[default]
    Cost,
    Usage,
    Count,
}

impl AggregateBy {
    pub fn parse(v: &str) -> Result<AggregateBy, String> {
        match v {
            "cost" => Ok(AggregateBy::Cost),
            "usage" => Ok(AggregateBy::Usage),
            "count" => Ok(AggregateBy::Count),
            _ => Err(format!("aggregate_by must be cost, usage or count, got {v:?}")),
        }
    }
}

/// Vantage's costs settings, every one, with Vantage's defaults. The same struct is a cost report's
/// `settings` and the `settings[…]` of `GET /v2/costs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostSettings {
    pub include_credits: bool,
    pub include_refunds: bool,
    pub include_discounts: bool,
    pub include_tax: bool,
    /// FOCUS EffectiveCost (amortized) instead of BilledCost.
    pub amortize: bool,
    pub unallocated: bool,
    pub aggregate_by: AggregateBy,
    pub show_previous_period: bool,
}

impl Default for CostSettings {
    fn default() -> Self {
        let engine = Settings::default();
        CostSettings {
            include_credits: engine.include_credits,
            include_refunds: engine.include_refunds,
            include_discounts: engine.include_discounts,
            include_tax: engine.include_tax,
            amortize: engine.amortize,
            unallocated: false,
            aggregate_by: AggregateBy::Cost,
            show_previous_period: true,
        }
    }
}

impl CostSettings {
    /// What the engine needs of them.
    pub fn engine(&self) -> Settings {
        Settings {
            include_credits: self.include_credits,
            include_refunds: self.include_refunds,
            include_discounts: self.include_discounts,
            include_tax: self.include_tax,
            amortize: self.amortize,
        }
    }

    pub fn aggregate(&self) -> Aggregate {
        match self.aggregate_by {
            AggregateBy::Usage => Aggregate::Usage,
            AggregateBy::Cost | AggregateBy::Count => Aggregate::Cost,
        }
    }

    /// The values costd cannot honour, each named with `prefix` (`settings[` or `settings.`): refused,
    /// never ignored.
    pub fn unsupported(&self, name: impl Fn(&str) -> String) -> Vec<String> {
        let mut problems = Vec::new();
        if self.unallocated {
            problems.push(format!(
                "{}: costd has no Kubernetes allocation; a segment's unallocated costs are its \
                 \"Unallocated Costs\" segment (track_unallocated): pass false",
                name("unallocated")
            ));
        }
        if self.aggregate_by == AggregateBy::Count {
            problems.push(format!("{}: count is not supported yet; aggregate by cost or usage", name("aggregate_by")));
        }
        problems
    }

    /// Sets the setting `key` (without `settings[…]`) from query-string text; false when there is no such
    /// setting.
    fn set(&mut self, key: &str, v: &str, errors: &mut Vec<String>) -> bool {
        let name = format!("settings[{key}]");
        let flag = |errors: &mut Vec<String>| match v {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => {
                errors.push(format!("{name} must be true or false, got {v:?}"));
                None
            }
        };
        match key {
            "include_credits" => self.include_credits = flag(errors).unwrap_or(self.include_credits),
            "include_refunds" => self.include_refunds = flag(errors).unwrap_or(self.include_refunds),
            "include_discounts" => self.include_discounts = flag(errors).unwrap_or(self.include_discounts),
            "include_tax" => self.include_tax = flag(errors).unwrap_or(self.include_tax),
            "amortize" => self.amortize = flag(errors).unwrap_or(self.amortize),
            "unallocated" => self.unallocated = flag(errors).unwrap_or(self.unallocated),
            "aggregate_by" => match AggregateBy::parse(v) {
                Ok(a) => self.aggregate_by = a,
                Err(e) => errors.push(format!("{name}: {e}")),
            },
            "show_previous_period" => {
                // The Costs response has no place for a previous period: asking for one is refused.
                if flag(errors) == Some(true) {
                    errors.push(format!(
                        "{name}: GET /v2/costs answers one period and its response has no previous-period \
                         field; query the previous period's dates (a cost report shows them as \
                         previous_period_start_date and previous_period_end_date), or pass false"
                    ));
                }
            }
            _ => return false,
        }
        true
    }
}

/// Most groupings one query may have. Every grouping is a column of the result and a key of its GROUP BY;
/// no chart or table reads more, and each `tag:` one reads every row's tags.
pub const MAX_GROUPINGS: usize = 10;

/// Checks a list of groupings (comma-separated text) into `list`, each once, in order.
pub fn parse_groupings(text: &str, list: &mut Vec<Grouping>, errors: &mut Vec<String>) {
    for g in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if list.len() == MAX_GROUPINGS && !list.iter().any(|x| x.name() == g) {
            errors.push(format!("groupings: at most {MAX_GROUPINGS} groupings may be given"));
            return;
        }
        match g.parse::<Grouping>() {
            Err(e) => errors.push(e),
            Ok(g) if !list.contains(&g) => list.push(g),
            Ok(_) => {}
        }
    }
}

/// What the query string starts from: this month, Vantage's settings, or a cost report's definition.
#[derive(Clone)]
pub struct Defaults {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub groupings: Vec<Grouping>,
    pub date_bin: DateBin,
    pub settings: CostSettings,
    /// Filters the query always applies (a report's own and its saved filters'), ANDed with `filter=`.
    pub filters: Vec<Filter>,
    /// The report's workspace: `workspace_token=` may only repeat it.
    pub workspace: Option<String>,
    /// Defaults come from `cost_report_token=`, which is then no error.
    pub from_report: bool,
    /// The report is a segment's: its costs are the segment's.
    pub segment: Option<crate::segment::SegmentScope>,
}

impl Defaults {
    /// `GET /v2/costs` without a report: this month (as of `today`), by day, Vantage's groupings.
    pub fn this_month(today: NaiveDate) -> Defaults {
        let (start, end) = month_of(today);
        Defaults {
            start,
            end,
            groupings: default_groupings(),
            date_bin: DateBin::Day,
            settings: CostSettings::default(),
            filters: Vec::new(),
            workspace: None,
            from_report: false,
            segment: None,
        }
    }
}

/// The first and last day of `day`'s month.
pub fn month_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let start = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).expect("valid date");
    let end = start.checked_add_months(chrono::Months::new(1)).expect("valid date").pred_opt().expect("valid date");
    (start, end)
}

/// The `cost_report_token` of a query string, if it names one.
pub fn report_token(raw: &str) -> Option<String> {
    form_urlencoded::parse(raw.as_bytes()).find(|(k, _)| k == "cost_report_token").map(|(_, v)| v.trim().to_string())
}

pub fn parse_params(raw: &str) -> Result<Params, Vec<String>> {
    parse_params_with(raw, Defaults::this_month(Utc::now().date_naive()))
}

/// The query string over `defaults`: each parameter given replaces its default, `filter` is ANDed.
pub fn parse_params_with(raw: &str, defaults: Defaults) -> Result<Params, Vec<String>> {
    let mut errors = Vec::new();
    let Defaults { mut start, mut end, groupings: default_groupings, mut date_bin, mut settings, mut filters, .. } =
        defaults.clone();
    let mut groupings = None::<Vec<Grouping>>;
    let mut descending = true;
    let (mut page, mut limit) = (1u32, 100u32);
    let mut workspace_token = defaults.workspace.clone();

    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let v = value.trim();
        match key.as_ref() {
            "filter" if !v.is_empty() => match Filter::parse(v) {
                Ok(e) => filters.push(e),
                Err(e) => errors.push(e),
            },
            "filter" => {}
            "cost_report_token" if defaults.from_report => {}
            "cost_report_token" => errors.push("cost_report_token: not taken here; pass a VQL filter".into()),
            "workspace_token" => match &defaults.workspace {
                Some(ws) if defaults.from_report && ws != v => errors.push(format!(
                    "workspace_token: the cost report is in workspace {ws}; leave workspace_token out or pass that one"
                )),
                _ => workspace_token = Some(v.to_string()),
            },
            "start_date" | "end_date" => match NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d") {
                Ok(d) if key == "start_date" => start = d,
                Ok(d) => end = d,
                Err(_) => errors.push(format!("{key} must be a date like 2024-05-01, got {v:?}")),
            },
            "groupings" | "groupings[]" => parse_groupings(v, groupings.get_or_insert_with(Vec::new), &mut errors),
            "date_bin" => match v.parse::<DateBin>() {
                Ok(b) => date_bin = b,
                Err(e) => errors.push(e),
            },
            "order" => match v {
                "asc" => descending = false,
                "desc" => descending = true,
                _ => errors.push(format!("order must be asc or desc, got {v:?}")),
            },
            "page" => match v.parse::<u32>() {
                Ok(p) if p >= 1 => page = p,
                _ => errors.push(format!("page must be a whole number from 1, got {v:?}")),
            },
            "limit" => match v.parse::<u32>() {
                Ok(l) if (1..=MAX_COSTS_LIMIT).contains(&l) => limit = l,
                _ => errors.push(format!("limit must be between 1 and {MAX_COSTS_LIMIT}, got {v:?}")),
            },
            other => match other.strip_prefix("settings[").and_then(|k| k.strip_suffix(']')) {
                Some(name) => {
                    if !settings.set(name, v, &mut errors) {
                        errors.push(format!("{other}: no such setting"));
                    }
                }
                None => errors.push(format!(
                    "{other}: unknown parameter; GET /v2/costs takes cost_report_token, filter, workspace_token, \
                     start_date, end_date, groupings, order, limit, page, date_bin and settings[…]"
                )),
            },
        }
    }
    if end < start {
        errors.push(format!("end_date ({end}) must not be before start_date ({start})"));
    }
    errors.extend(settings.unsupported(|n| format!("settings[{n}]")));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Params {
        query: CostQuery {
            start,
            end,
            groupings: groupings.unwrap_or(default_groupings),
            date_bin,
            descending,
            settings: settings.engine(),
            aggregate: settings.aggregate(),
            filter: Filter::all(filters),
            segment: defaults.segment,
        },
        workspace_token,
        page: PageRequest { page, limit },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bin_starts_on_its_monday_first_of_month_or_quarter() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(DateBin::Day.start_of(d("2026-08-13")), d("2026-08-13"));
        assert_eq!(DateBin::Week.start_of(d("2026-08-13")), d("2026-08-10"));
        assert_eq!(DateBin::Week.start_of(d("2026-08-10")), d("2026-08-10"));
        assert_eq!(DateBin::Month.start_of(d("2026-08-13")), d("2026-08-01"));
        assert_eq!(DateBin::Quarter.start_of(d("2026-08-13")), d("2026-07-01"));
        assert_eq!(DateBin::Quarter.start_of(d("2026-12-31")), d("2026-10-01"));
    }

    #[test]
    fn the_defaults_are_this_month_by_day_newest_first() {
        let p = parse_params("").unwrap();
        assert_eq!(p.query.groupings, default_groupings());
        assert_eq!((p.query.date_bin, p.query.descending), (DateBin::Day, true));
        assert_eq!(p.query.start.day(), 1);
        assert_eq!((p.page.page, p.page.limit), (1, 100));
    }

    #[test]
    fn totals_round_half_away_from_zero() {
        let one = 10i128.pow(18);
        let a = |v: i128| Amount::from_unscaled(v).unwrap();
        assert_eq!(round_total(a(one * 1005 / 1000)), "1.01");
        assert_eq!(round_total(a(-one * 1005 / 1000)), "-1.01");
        assert_eq!(round_total(a(one * 1004 / 1000)), "1.0");
        assert_eq!(round_total(Amount::ZERO), "0.0");
    }

    #[test]
    fn groupings_are_capped() {
        let tags: Vec<String> = (0..MAX_GROUPINGS).map(|i| format!("tag:k{i}")).collect();
        let p = parse_params(&format!("groupings={}", tags.join(","))).unwrap();
        assert_eq!(p.query.groupings.len(), MAX_GROUPINGS);
        // A repeated grouping is not another one.
        assert!(parse_params(&format!("groupings={},tag:k0", tags.join(","))).is_ok());
        let errors = parse_params(&format!("groupings={},service", tags.join(","))).err().unwrap();
        assert_eq!(errors, vec![format!("groupings: at most {MAX_GROUPINGS} groupings may be given")]);
        // Over several parameters too.
        let split = format!("groupings={}&groupings[]=service", tags.join(","));
        assert!(parse_params(&split).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_query_string_is_parsed_or_refused_without_panicking(s in "\\PC{0,120}") {
            let _ = parse_params(&s);
        }

        #[test]
        fn well_formed_parameters_parse(
            groupings in proptest::collection::vec(proptest::sample::select(vec![
                "account_id", "billing_account_id", "charge_type", "cost_category", "cost_subcategory", "provider",
                "region", "resource_id", "service", "usage_unit", "tagged", "tag:kubernetes.io/cluster", "tag:Cost Center",
            ]), 1..4),
            bin in proptest::sample::select(vec!["day", "week", "month", "quarter"]),
            limit in 1u32..=5000,
            page in 1u32..100,
            flags in proptest::prelude::any::<[bool; 4]>(),
        ) {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("groupings", &groupings.join(","));
            q.append_pair("date_bin", bin);
            q.append_pair("start_date", "2024-01-01");
            q.append_pair("end_date", "2024-12-31");
            q.append_pair("limit", &limit.to_string());
            q.append_pair("page", &page.to_string());
            for (name, on) in ["include_credits", "include_refunds", "include_discounts", "amortize"].iter().zip(flags) {
                q.append_pair(&format!("settings[{name}]"), &on.to_string());
            }
            let p = parse_params(&q.finish());
            proptest::prop_assert!(p.is_ok(), "{:?}", p.err());
            let p = p.unwrap();
            proptest::prop_assert_eq!((p.page.limit, p.page.page), (limit, page));
            proptest::prop_assert_eq!(p.query.settings.include_credits, flags[0]);
        }
    }
}
