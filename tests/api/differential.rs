//! Differential test of the costs engine: random uploads and random rule sets (all five types, custom SQL
//! of each kind), costd's answer through the API against a small reference evaluator written here with
//! `rust_decimal`. Every row and the total must agree to the last of 18 decimal places.
//!
//! The reference follows DESIGN.md "Billing rules" literally, row by row: rules run in their groups' order
//! (cost inserts, transforms, monthly inserts), each within its start/end dates, every amount rounded half
//! away from zero to 18 places after each step; then the settings hide charge types, and rows are summed
//! per month, service and charge type. Rows may carry an EffectiveCost, which is their amount when the
//! query amortizes; the same query as a data export must give the same rows. Rows may carry tags (`team`,
//! `env`; rows a rule inserts carry none): grouped by `tag:team`, and by `tag:team,tag:env` (the one-parse
//! path of several tag groupings), the same rows must sum per month and tag values as the reference says.
//! A random virtual tag (docs/allocation.md), saved by the MSP and read by its managed account, groups the
//! same rows by `tag:<key>`: the first value whose filter and date ranges match names a row or splits it by
//! percentages (each share but the last rounded half away from zero to 18 places, in exact integers here;
//! the last takes the rest), a provider value of the key (or of the collapsed `env`) stays where the tag may
//! not override it, and the sums per month and value must agree, their total unchanged. A value may also
//! split in proportion, per month, to the cost of the rows another filter keeps by their provider `team`
//! tag, or to the MSP's random business metric by label (its labels renamed and merged by label transforms
//! at random: `web/1` and `web/2` share as one, `t-web`): each share `amount × part / whole` rounded half
//! away from zero (in integers here), the last the rest, only positive parts sharing, ordered by name; a
//! month with no part leaves the row whole as `unallocated`. Grouped by the tag alone, costd sums each
//! group's shares without a row per share (`engine::allocation::fused`); with a filter naming the tag it
//! makes a row per share: both must give the reference's rows (the tagged ones, with the filter).
//! The files are in EUR or USD at random, and the customer's workspace shows costs in USD with random
//! rates the MSP uploaded (given either way, by the day or by the billing period's end): after the rules,
//! each EUR row is converted by the rate in effect for it, × or ÷, rounded half away from zero to 18 places
//! once (in integers here), before anything is summed or split (docs/currency.md).
//! The customer's cost report of the same costs, with a random business metric attached (random days and
//! amounts, zero sums included, a random unit scale, unit cost or gross margin), answers unit costs per month
//! that must equal the reference's monthly cost divided by the metric's monthly sum, rounded half away from
//! zero to 18 places once, in integers here; a month whose metric sums to zero has none (docs/unit-costs.md).
//! The customer's random segment tree (docs/segments.md): each segment's report must hold, per month, the
//! rows the reference assigns it (among siblings the lowest priority, then the oldest, whose filter is true
//! for the row; down the tree as far as a child takes it; a tracked parent's unallocated child last, with
//! everything), a row with no region never kept by `costs.region != 'x'` and never lost either.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use rust_decimal::prelude::*;
use rust_decimal::RoundingStrategy::MidpointAwayFromZero;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

const START: (i32, u32, u32) = (2024, 7, 1);
const END: (i32, u32, u32) = (2024, 8, 31);

fn date(d: (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.0, d.1, d.2).unwrap()
}

/// One cost row as the reference sees it.
#[derive(Debug, Clone)]
struct Row {
    day: NaiveDate,
    charge_type: String,
    service: String,
    region: String,
    amount: Decimal,
    /// FOCUS EffectiveCost, the amortized amount (`None`: the row has none, so it counts its BilledCost).
    effective: Option<Decimal>,
    tags: Tags,
    /// Its file's BillingCurrency; `None` for a row a rule inserted, which takes the first upload's.
    currency: Option<&'static str>,
}

/// A row's tags (FOCUS `Tags`, a JSON object): a key absent here is absent from the object.
#[derive(Debug, Clone, Default)]
struct Tags {
    team: Option<String>,
    env: Option<String>,
}

impl Tags {
    fn value(&self, key: &str) -> Option<String> {
        match key {
            "team" => self.team.clone(),
            "env" => self.env.clone(),
            _ => None,
        }
    }

    /// The `Tags` cell: the JSON object, quoted for CSV, or empty when the row has no tags.
    fn cell(&self) -> String {
        let mut object = serde_json::Map::new();
        for (key, value) in [("team", &self.team), ("env", &self.env)] {
            if let Some(v) = value {
                object.insert(key.into(), json!(v));
            }
        }
        if object.is_empty() {
            String::new()
        } else {
            format!("\"{}\"", Value::Object(object).to_string().replace('"', "\"\""))
        }
    }
}

/// A random rule, with what the API is sent and what the reference does.
#[derive(Debug, Clone)]
enum Rule {
    Exclusion {
        charge_type: String,
        range: Range,
    },
    Adjustment {
        percentage: Decimal,
        range: Range,
    },
    Credit {
        amount: Decimal,
        start: NaiveDate,
        end: Option<NaiveDate>,
    },
    Charge {
        amount: Decimal,
        start: NaiveDate,
        end: Option<NaiveDate>,
    },
    /// `UPDATE costs SET amount = amount * k WHERE service = s`
    Scale {
        factor: Decimal,
        service: String,
    },
    /// `UPDATE costs SET amount = amount / d WHERE region = r`
    Divide {
        divisor: Decimal,
        region: String,
    },
    /// `UPDATE costs SET service = 'Renamed' WHERE cost_type = t`
    Rename {
        charge_type: String,
    },
    /// `INSERT INTO costs (accrued_at, amount, service) VALUES (day, amount, 'Setup')`
    InsertValues {
        day: NaiveDate,
        amount: Decimal,
    },
    /// `INSERT INTO costs (service, amount) SELECT 'Share', SUM(amount) * k FROM costs WHERE cost_type = 'Usage'`
    InsertShare {
        factor: Decimal,
        range: Range,
    },
}

/// A rule's optional start and end dates.
#[derive(Debug, Clone, Copy, Default)]
struct Range {
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
}

impl Range {
    fn covers(&self, d: NaiveDate) -> bool {
        self.start.is_none_or(|s| d >= s) && self.end.is_none_or(|e| d <= e)
    }

    fn json(&self, body: &mut Value) {
        if let Some(s) = self.start {
            body["start_date"] = json!(s.to_string());
        }
        if let Some(e) = self.end {
            body["end_date"] = json!(e.to_string());
        }
    }
}

/// Which of DESIGN's groups a rule runs in.
fn group(rule: &Rule) -> u8 {
    match rule {
        Rule::InsertValues { .. } => 0,
        Rule::Exclusion { .. }
        | Rule::Adjustment { .. }
        | Rule::Scale { .. }
        | Rule::Divide { .. }
        | Rule::Rename { .. } => 1,
        Rule::Credit { .. } | Rule::Charge { .. } | Rule::InsertShare { .. } => 2,
    }
}

fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(18, MidpointAwayFromZero)
}

fn first_of(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

impl Rule {
    /// The API body creating the rule.
    fn body(&self) -> Value {
        let mut body = match self {
            Rule::Exclusion { charge_type, range } => {
                let mut b = json!({"type": "exclusion", "title": "x", "charge_type": charge_type.to_lowercase()});
                range.json(&mut b);
                b
            }
            Rule::Adjustment { percentage, range } => {
                let mut b = json!({"type": "adjustment", "title": "a", "percentage": percentage.to_string()});
                range.json(&mut b);
                b
            }
            Rule::Credit { amount, start, end } | Rule::Charge { amount, start, end } => {
                let kind = if matches!(self, Rule::Credit { .. }) { "credit" } else { "charge" };
                let service = if kind == "credit" { "Support" } else { "MSP" };
                let mut b = json!({"type": kind, "title": kind, "service": service, "category": "c", "sub_category": "s",
                    "amount": amount.to_string(), "start_date": start.to_string()});
                if let Some(e) = end {
                    b["end_date"] = json!(e.to_string());
                }
                b
            }
            Rule::Scale { factor, service } => {
                custom(&format!("UPDATE costs SET amount = amount * {factor} WHERE service = '{service}'"))
            }
            Rule::Divide { divisor, region } => {
                custom(&format!("UPDATE costs SET amount = amount / {divisor} WHERE region = '{region}'"))
            }
            Rule::Rename { charge_type } => {
                custom(&format!("UPDATE costs SET service = 'Renamed' WHERE cost_type = '{charge_type}'"))
            }
            Rule::InsertValues { day, amount } => {
                custom(&format!("INSERT INTO costs (accrued_at, amount, service) VALUES ('{day}', {amount}, 'Setup')"))
            }
            Rule::InsertShare { factor, range } => {
                let mut b = custom(&format!(
                    "INSERT INTO costs (service, amount) SELECT 'Share', SUM(amount) * {factor} FROM costs WHERE cost_type = 'Usage'"
                ));
                range.json(&mut b);
                b
            }
        };
        body["title"] = json!("rule");
        body
    }

    /// What the rule does to the rows (already limited to the query's window).
    fn apply(&self, rows: Vec<Row>, window: (NaiveDate, NaiveDate)) -> Vec<Row> {
        let in_window = |d: NaiveDate| d >= window.0 && d <= window.1;
        match self {
            Rule::Exclusion { charge_type, range } => rows
                .into_iter()
                .filter(|r| !(r.charge_type.eq_ignore_ascii_case(charge_type) && range.covers(r.day)))
                .collect(),
            Rule::Adjustment { percentage, range } => rows
                .into_iter()
                .map(|mut r| {
                    if range.covers(r.day) {
                        r.amount = round(r.amount * *percentage / Decimal::ONE_HUNDRED);
                    }
                    r
                })
                .collect(),
            Rule::Scale { factor, service } => rows
                .into_iter()
                .map(|mut r| {
                    if &r.service == service {
                        r.amount = round(r.amount * *factor);
                    }
                    r
                })
                .collect(),
            Rule::Divide { divisor, region } => rows
                .into_iter()
                .map(|mut r| {
                    if &r.region == region {
                        r.amount = round(r.amount / *divisor);
                    }
                    r
                })
                .collect(),
            Rule::Rename { charge_type } => rows
                .into_iter()
                .map(|mut r| {
                    if &r.charge_type == charge_type {
                        r.service = "Renamed".into();
                    }
                    r
                })
                .collect(),
            Rule::Credit { amount, start, end } | Rule::Charge { amount, start, end } => {
                let credit = matches!(self, Rule::Credit { .. });
                let mut rows = rows;
                // One line item per month from the rule's start month to its end (or the window's), each
                // on the 1st, shown when the window covers that day.
                let last = end.map_or(window.1, |e| e.min(window.1));
                let mut m = first_of((*start).max(window.0));
                while m <= last {
                    if m >= window.0 && m >= first_of(*start) {
                        rows.push(Row {
                            day: m,
                            charge_type: if credit { "Credit" } else { "Fee" }.into(),
                            service: if credit { "Support" } else { "MSP" }.into(),
                            region: String::new(),
                            amount: if credit { -amount.abs() } else { amount.abs() },
                            effective: None,
                            tags: Tags::default(),
                            currency: None,
                        });
                    }
                    m = m.checked_add_months(chrono::Months::new(1)).unwrap();
                }
                rows
            }
            Rule::InsertValues { day, amount } => {
                let mut rows = rows;
                if in_window(*day) {
                    rows.push(Row {
                        day: *day,
                        charge_type: "Fee".into(),
                        service: "Setup".into(),
                        region: String::new(),
                        amount: *amount,
                        effective: None,
                        tags: Tags::default(),
                        currency: None,
                    });
                }
                rows
            }
            Rule::InsertShare { factor, range } => {
                let mut sums: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
                for r in rows.iter().filter(|r| r.charge_type == "Usage" && range.covers(r.day)) {
                    *sums.entry(first_of(r.day)).or_default() += r.amount;
                }
                let mut rows = rows;
                for (month, sum) in sums {
                    if in_window(month) && range.covers(month) {
                        rows.push(Row {
                            day: month,
                            charge_type: "Fee".into(),
                            service: "Share".into(),
                            region: String::new(),
                            amount: round(sum * *factor),
                            effective: None,
                            tags: Tags::default(),
                            currency: None,
                        });
                    }
                }
                rows
            }
        }
    }
}

fn custom(sql: &str) -> Value {
    json!({"type": "custom", "sql_query": sql})
}

const TYPES: [&str; 6] = ["Usage", "Tax", "Credit", "Fee", "Refund", "Discount"];
const SERVICES: [&str; 3] = ["EC2", "S3", "RDS"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
/// Tag values: short ones, and one longer than an Arrow string view holds inline.
const TEAMS: [&str; 3] = ["web", "data", "platform-engineering"];
const ENVS: [&str; 2] = ["prod", "dev"];

fn day() -> impl Strategy<Value = NaiveDate> {
    // 2024-06-15 to 2024-09-15: rows on both sides of the window.
    (0i64..93).prop_map(|n| date((2024, 6, 15)) + chrono::Duration::days(n))
}

fn money() -> impl Strategy<Value = Decimal> {
    // Up to four places, as real exports mostly have; negative amounts too.
    (-10_000_000i64..100_000_000).prop_map(|n| Decimal::new(n, 4))
}

fn row() -> impl Strategy<Value = Row> {
    let tags = (proptest::option::of(0..TEAMS.len()), proptest::option::of(0..ENVS.len()))
        .prop_map(|(t, e)| Tags { team: t.map(|t| TEAMS[t].into()), env: e.map(|e| ENVS[e].into()) });
    (day(), 0..TYPES.len(), 0..SERVICES.len(), 0..REGIONS.len(), money(), proptest::option::of(money()), tags).prop_map(
        |(day, t, s, r, amount, effective, tags)| Row {
            day,
            charge_type: TYPES[t].into(),
            service: SERVICES[s].into(),
            region: REGIONS[r].into(),
            amount,
            effective,
            tags,
            currency: None,
        },
    )
}

fn range() -> impl Strategy<Value = Range> {
    (proptest::option::of(day()), proptest::option::of(day())).prop_map(|(a, b)| match (a, b) {
        (Some(a), Some(b)) if b < a => Range { start: Some(b), end: Some(a) },
        (start, end) => Range { start, end },
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    let pick = |v: &'static [&'static str]| proptest::sample::select(v.to_vec()).prop_map(|s| s.to_string());
    let factor = proptest::sample::select(vec!["0.95", "1.1", "2", "0.333", "0.5", "1.0005"]).prop_map(dec);
    prop_oneof![
        (pick(&TYPES), range()).prop_map(|(charge_type, range)| Rule::Exclusion { charge_type, range }),
        (proptest::sample::select(vec!["75", "50", "110", "33.33", "12.5", "100", "0"]).prop_map(dec), range())
            .prop_map(|(percentage, range)| Rule::Adjustment { percentage, range }),
        (money(), day(), proptest::option::of(day())).prop_map(|(amount, start, end)| Rule::Credit {
            amount: if amount.is_zero() { Decimal::ONE } else { amount },
            start,
            end: end.filter(|e| *e >= start),
        }),
        (money(), day(), proptest::option::of(day())).prop_map(|(amount, start, end)| Rule::Charge {
            amount: if amount.is_zero() { Decimal::ONE } else { amount },
            start,
            end: end.filter(|e| *e >= start),
        }),
        (factor.clone(), pick(&SERVICES)).prop_map(|(factor, service)| Rule::Scale { factor, service }),
        (proptest::sample::select(vec!["3", "7", "8", "0.5"]).prop_map(dec), pick(&REGIONS))
            .prop_map(|(divisor, region)| Rule::Divide { divisor, region }),
        pick(&TYPES).prop_map(|charge_type| Rule::Rename { charge_type }),
        (day(), money()).prop_map(|(day, amount)| Rule::InsertValues { day, amount }),
        (factor, range()).prop_map(|(factor, range)| Rule::InsertShare { factor, range }),
    ]
}

/// What the settings show: DESIGN's defaults hide credits and refunds; amortized, a row counts its
/// EffectiveCost where it has one (before any rule runs).
#[derive(Debug, Clone, Copy)]
struct Shown {
    credits: bool,
    refunds: bool,
    amortize: bool,
}

/// The rows the query sums: in the window, amortized when asked, after every rule, less the hidden charge types.
fn shown_rows(files: &[Vec<Row>], rules: &[Rule], shown: Shown, rates: &Rates) -> Vec<Row> {
    let window = (date(START), date(END));
    let mut rows: Vec<Row> = files
        .iter()
        .flatten()
        .filter(|r| r.day >= window.0 && r.day <= window.1)
        .map(|r| Row { amount: if shown.amortize { r.effective.unwrap_or(r.amount) } else { r.amount }, ..r.clone() })
        .collect();
    for rule in rules {
        rows = rule.apply(rows, window);
    }
    // Then every row in USD, the workspace's currency; a rule's rows are in the first upload's currency.
    let first = files[0][0].currency;
    for r in &mut rows {
        if r.currency.or(first) == Some("EUR") {
            r.amount = rates.convert(r.amount, r.day);
        }
    }
    rows.retain(|r| (shown.credits || r.charge_type != "Credit") && (shown.refunds || r.charge_type != "Refund"));
    rows
}

fn reference(
    files: &[Vec<Row>],
    rules: &[Rule],
    shown: Shown,
    rates: &Rates,
) -> (BTreeMap<(String, String, String), Decimal>, Decimal) {
    let mut grouped: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
    let mut total = Decimal::ZERO;
    for r in shown_rows(files, rules, shown, rates) {
        *grouped.entry((first_of(r.day).to_string(), r.service.clone(), r.charge_type.clone())).or_default() +=
            r.amount;
        total += r.amount;
    }
    (grouped, total)
}

/// The same rows summed per month and the values of tags `keys` (none where a row lacks the tag).
type ByTags = BTreeMap<(String, Vec<Option<String>>), Decimal>;

fn reference_by_tags(files: &[Vec<Row>], rules: &[Rule], shown: Shown, rates: &Rates, keys: &[&str]) -> ByTags {
    let mut grouped = ByTags::new();
    for r in shown_rows(files, rules, shown, rates) {
        let values = keys.iter().map(|k| r.tags.value(k)).collect();
        *grouped.entry((first_of(r.day).to_string(), values)).or_default() += r.amount;
    }
    grouped
}

/// A random virtual tag and what the reference does with it.
#[derive(Debug, Clone)]
struct VirtualTag {
    key: &'static str,
    overridable: bool,
    /// Whether the provider's `env` counts as the key's value.
    collapse_env: bool,
    values: Vec<VirtualValue>,
}

#[derive(Debug, Clone)]
struct VirtualValue {
    filter: VirtualFilter,
    ranges: Vec<Range>,
    assign: VirtualAssign,
}

#[derive(Debug, Clone)]
enum VirtualAssign {
    Name(&'static str),
    /// (name, percentage) shares adding up to 100.
    Shares(Vec<(&'static str, Decimal)>),
    /// In proportion to the month's cost of the rows the filter keeps, by their provider `team`.
    ByCost(VirtualFilter),
    /// In proportion to the month's values of the MSP's metric, by label; with `true`, by the label's part
    /// before its "/" and prefixed `t-` (label transforms: `web/1` and `web/2` share as one, `t-web`).
    ByMetric(bool),
}

/// The share name a metric's label gives, with or without the transforms.
fn metric_name(label: &str, transformed: bool) -> String {
    if transformed {
        format!("t-{}", label.split('/').next().unwrap_or(label))
    } else {
        label.to_string()
    }
}

/// A proportional split's parts per month (first day): (name, part in 10^-18) with positive parts, by name.
type Parts = BTreeMap<String, Vec<(String, i128)>>;

/// The positive sums per month and name of (day, name, amount in 10^-18).
fn parts_of(items: impl Iterator<Item = (NaiveDate, String, i128)>) -> Parts {
    let mut sums: BTreeMap<(String, String), i128> = BTreeMap::new();
    for (day, name, amount) in items {
        *sums.entry((first_of(day).to_string(), name)).or_default() += amount;
    }
    let mut parts = Parts::new();
    for ((month, name), amount) in sums {
        if amount > 0 {
            parts.entry(month).or_default().push((name, amount));
        }
    }
    parts
}

/// A random business metric of the MSP's, labelled: (day, label) → units (whole numbers).
type SplitMetric = BTreeMap<(NaiveDate, &'static str), i64>;

fn split_metric() -> impl Strategy<Value = SplitMetric> {
    prop::collection::btree_map((0i64..62, prop::sample::select(vec!["web/1", "web/2", "data"])), 0i64..1000, 0..6)
        .prop_map(|m| m.into_iter().map(|((d, l), v)| ((date(START) + chrono::Duration::days(d), l), v)).collect())
}

#[derive(Debug, Clone, Copy)]
enum VirtualFilter {
    All,
    Service(&'static str),
    Region(&'static str),
    EnvProd,
}

impl VirtualFilter {
    fn vql(&self) -> String {
        match self {
            VirtualFilter::All => String::new(),
            VirtualFilter::Service(s) => format!("costs.service = '{s}'"),
            VirtualFilter::Region(r) => format!("costs.region = '{r}'"),
            VirtualFilter::EnvProd => "tags.name = 'env' AND tags.value = 'prod'".into(),
        }
    }

    fn keeps(&self, r: &Row) -> bool {
        match self {
            VirtualFilter::All => true,
            VirtualFilter::Service(s) => r.service == *s,
            VirtualFilter::Region(g) => r.region == *g,
            VirtualFilter::EnvProd => r.tags.env.as_deref() == Some("prod"),
        }
    }
}

impl VirtualTag {
    fn body(&self, metric: &str) -> Value {
        let values: Vec<Value> = self
            .values
            .iter()
            .map(|v| {
                let mut body = json!({"filter": v.filter.vql()});
                match &v.assign {
                    VirtualAssign::Name(name) => body["name"] = json!(name),
                    VirtualAssign::Shares(shares) => {
                        body["percentages"] = shares
                            .iter()
                            .map(|(value, pct)| json!({"value": value, "pct": serde_json::Number::from_str(&pct.to_string()).unwrap()}))
                            .collect();
                    }
                    VirtualAssign::ByCost(basis) => {
                        body["cost_metric"] = json!({"filter": basis.vql(), "aggregation": {"tag": "team"}});
                    }
                    VirtualAssign::ByMetric(transformed) => {
                        body["business_metric_token"] = json!(metric);
                        if *transformed {
                            body["label_transforms"] = json!([{"type": "split", "delimiter": "/", "index": 0},
                                {"type": "format", "template": "t-{label}"}]);
                        }
                    }
                }
                body["date_ranges"] = v
                    .ranges
                    .iter()
                    .map(|r| json!({"start_date": r.start.map(|d| d.to_string()), "end_date": r.end.map(|d| d.to_string())}))
                    .collect();
                body
            })
            .collect();
        let collapsed: Vec<Value> = if self.collapse_env { vec![json!({"key": "env"})] } else { Vec::new() };
        json!({"key": self.key, "overridable": self.overridable, "collapsed_tag_keys": collapsed, "values": values})
    }

    /// Each proportional value's parts (by the value's index), from the rows the query shows and the metric.
    fn parts(&self, shown: &[Row], metric: &SplitMetric) -> BTreeMap<usize, Parts> {
        let units = |d: Decimal| {
            let mut d = d;
            d.rescale(18);
            d.mantissa()
        };
        let mut out = BTreeMap::new();
        for (k, v) in self.values.iter().enumerate() {
            let parts = match &v.assign {
                VirtualAssign::ByCost(basis) => parts_of(
                    shown
                        .iter()
                        .filter(|r| basis.keeps(r))
                        .filter_map(|r| Some((r.day, r.tags.team.clone()?, units(r.amount)))),
                ),
                VirtualAssign::ByMetric(transformed) => parts_of(metric.iter().map(|((day, label), v)| {
                    (*day, metric_name(label, *transformed), i128::from(*v) * 10i128.pow(18))
                })),
                _ => continue,
            };
            out.insert(k, parts);
        }
        out
    }

    /// A row as the tag leaves it: (its value of the key, amount) for each share.
    fn apply(&self, r: &Row, parts: &BTreeMap<usize, Parts>) -> Vec<(Option<String>, Decimal)> {
        let provider = r.tags.value(self.key).or_else(|| if self.collapse_env { r.tags.env.clone() } else { None });
        if provider.is_some() && !self.overridable {
            return vec![(provider, r.amount)];
        }
        let matched = self
            .values
            .iter()
            .position(|v| v.filter.keeps(r) && (v.ranges.is_empty() || v.ranges.iter().any(|g| g.covers(r.day))));
        match matched.map(|k| (k, &self.values[k].assign)) {
            None => vec![(provider, r.amount)],
            Some((_, VirtualAssign::Name(name))) => vec![(Some(name.to_string()), r.amount)],
            Some((k, VirtualAssign::ByCost(_) | VirtualAssign::ByMetric(_))) => {
                let month = parts[&k].get(&first_of(r.day).to_string()).cloned().unwrap_or_default();
                if month.is_empty() {
                    return vec![(Some("unallocated".to_string()), r.amount)];
                }
                let mut amount = r.amount;
                amount.rescale(18);
                let units = amount.mantissa();
                let whole: i128 = month.iter().map(|(_, p)| p).sum();
                let mut rest = units;
                let mut shares = Vec::new();
                for (i, (name, part)) in month.iter().enumerate() {
                    let share = if i + 1 == month.len() {
                        rest
                    } else {
                        let share = divide_product(units, *part, whole);
                        rest -= share;
                        share
                    };
                    shares.push((Some(name.clone()), Decimal::from_i128_with_scale(share, 18).normalize()));
                }
                shares
            }
            Some((_, VirtualAssign::Shares(shares))) => {
                // Exactly, in integers of 10^-18: share = amount × pct / 100, half away from zero.
                let mut amount = r.amount;
                amount.rescale(18);
                let units = amount.mantissa();
                let mut parts = Vec::new();
                let mut rest = units;
                for (i, (value, pct)) in shares.iter().enumerate() {
                    let part = if i + 1 == shares.len() {
                        rest
                    } else {
                        let pct = pct.normalize();
                        let divisor = 100 * 10i128.pow(pct.scale());
                        let product = units * pct.mantissa();
                        let (q, rem) = (product / divisor, product % divisor);
                        let part = if 2 * rem.abs() >= divisor { q + product.signum() } else { q };
                        rest -= part;
                        part
                    };
                    parts.push((Some(value.to_string()), Decimal::from_i128_with_scale(part, 18).normalize()));
                }
                parts
            }
        }
    }
}

fn virtual_tag() -> impl Strategy<Value = VirtualTag> {
    let filter = prop_oneof![
        Just(VirtualFilter::All),
        proptest::sample::select(SERVICES.to_vec()).prop_map(VirtualFilter::Service),
        proptest::sample::select(REGIONS.to_vec()).prop_map(VirtualFilter::Region),
        Just(VirtualFilter::EnvProd),
    ];
    let splits: Vec<Vec<(&'static str, &'static str)>> = vec![
        vec![("a", "33.333333"), ("b", "33.333333"), ("c", "33.333334")],
        vec![("a", "12.5"), ("web", "87.5")],
        vec![("b", "0.000001"), ("c", "99.999999")],
        vec![("a", "100")],
    ];
    let basis = prop_oneof![
        Just(VirtualFilter::All),
        proptest::sample::select(SERVICES.to_vec()).prop_map(VirtualFilter::Service),
        Just(VirtualFilter::EnvProd),
    ];
    let assign = prop_oneof![
        proptest::sample::select(vec!["alpha", "beta", "web"]).prop_map(VirtualAssign::Name),
        proptest::sample::select(splits)
            .prop_map(|shares| VirtualAssign::Shares(shares.into_iter().map(|(v, p)| (v, dec(p))).collect())),
        basis.prop_map(VirtualAssign::ByCost),
        any::<bool>().prop_map(VirtualAssign::ByMetric),
    ];
    let value = (filter, prop::collection::vec(range(), 0..3), assign)
        .prop_map(|(filter, ranges, assign)| VirtualValue { filter, ranges, assign });
    (proptest::sample::select(vec!["team", "owner"]), any::<bool>(), any::<bool>(), prop::collection::vec(value, 1..5))
        .prop_map(|(key, overridable, collapse_env, values)| VirtualTag { key, overridable, collapse_env, values })
}

/// The rows summed per month and value of the virtual tag (none where it leaves a row untagged).
fn reference_by_virtual_tag(
    files: &[Vec<Row>],
    rules: &[Rule],
    shown: Shown,
    rates: &Rates,
    tag: &VirtualTag,
    metric: &SplitMetric,
) -> ByTags {
    let mut grouped = ByTags::new();
    let rows = shown_rows(files, rules, shown, rates);
    let parts = tag.parts(&rows, metric);
    for r in rows {
        for (value, amount) in tag.apply(&r, &parts) {
            *grouped.entry((first_of(r.day).to_string(), vec![value])).or_default() += amount;
        }
    }
    grouped
}

/// Random exchange rates between EUR and USD (docs/currency.md) and how the workspace picks them.
#[derive(Debug, Clone)]
struct Rates {
    /// Given as EUR→USD (a cost multiplies), else as USD→EUR (a cost divides).
    direct: bool,
    /// `end_of_billing_period_rate`: the rate in effect on the last day of the cost's month.
    end_of_period: bool,
    /// (effective day, rate), ascending; the first on or before the window's start.
    rates: Vec<(NaiveDate, Decimal)>,
}

impl Rates {
    fn csv(&self) -> String {
        let (base, to) = if self.direct { ("EUR", "USD") } else { ("USD", "EUR") };
        let mut csv = String::from("base_currency_code,currency_code,rate,date\n");
        for (day, rate) in &self.rates {
            csv.push_str(&format!("{base},{to},{rate},{day}\n"));
        }
        csv
    }

    /// `amount` (EUR) of `day` in USD, exactly: × or ÷ the rate in effect, rounded half away from zero to
    /// 18 places once, in integers.
    fn convert(&self, amount: Decimal, day: NaiveDate) -> Decimal {
        let on = if self.end_of_period { (first_of(day) + chrono::Months::new(1)).pred_opt().unwrap() } else { day };
        let rate = self.rates.iter().rev().find(|(d, _)| *d <= on).expect("a rate in effect").1;
        let a = amount.mantissa() * 10i128.pow(18 - amount.scale());
        let (m, unit) = (rate.mantissa(), 10i128.pow(rate.scale()));
        let (numerator, denominator) = if self.direct { (a * m, unit) } else { (a * unit, m) };
        let (q, r) = (numerator / denominator, numerator % denominator);
        let rounded = if 2 * r.abs() >= denominator { q + numerator.signum() } else { q };
        Decimal::from_i128_with_scale(rounded, 18).normalize()
    }
}

fn rates() -> impl Strategy<Value = Rates> {
    // Rates from 0.5 to 2, with up to 6 places; one in effect from June, up to three more in the window.
    let rate = (500_000i64..2_000_000, 0u32..=6).prop_map(|(n, places)| {
        let exact = Decimal::new(n, 6);
        exact.round_dp_with_strategy(places, MidpointAwayFromZero).max(Decimal::new(5, 1)).normalize()
    });
    let later = prop::collection::btree_map(
        (0i64..62).prop_map(|n| date(START) + chrono::Duration::days(n)),
        rate.clone(),
        0..4,
    );
    (any::<bool>(), any::<bool>(), 0i64..31, rate, later).prop_map(|(direct, end_of_period, before, first, later)| {
        let since = date(START) - chrono::Duration::days(before);
        let mut rates = vec![(since, first)];
        rates.extend(later.into_iter().filter(|(d, _)| *d > since));
        Rates { direct, end_of_period, rates }
    })
}

fn csv_of(rows: &[Row]) -> String {
    let mut s = String::from(
        "ChargeCategory,ChargePeriodStart,BilledCost,EffectiveCost,ServiceName,RegionId,Tags,BillingCurrency\n",
    );
    for r in rows {
        let effective = r.effective.map(|e| e.to_string()).unwrap_or_default();
        s.push_str(&format!(
            "{},{},{},{effective},{},{},{},{}\n",
            r.charge_type,
            r.day,
            r.amount,
            r.service,
            r.region,
            r.tags.cell(),
            r.currency.unwrap_or("USD")
        ));
    }
    s
}

/// The managed account's `/v2/costs` for the window by month and `groupings`, with the settings `shown`.
/// A random business metric: a value on some days of the window (units of 10^-places), attached to a report
/// per 10^exponent as a unit cost or a gross margin.
#[derive(Debug, Clone)]
struct Metric {
    values: BTreeMap<NaiveDate, i64>,
    places: u32,
    exponent: u32,
    gross: bool,
}

fn metric() -> impl Strategy<Value = Metric> {
    (
        prop::collection::btree_map(0i64..62, prop_oneof![Just(0i64), 1i64..1_000_000], 0..6),
        0u32..3,
        prop::sample::select(vec![0u32, 2, 3]),
        any::<bool>(),
    )
        .prop_map(|(values, places, exponent, gross)| Metric {
            values: values.into_iter().map(|(d, v)| (date(START) + chrono::Duration::days(d), v)).collect(),
            places,
            exponent,
            gross,
        })
}

impl Metric {
    fn body(&self, report: &str) -> Value {
        let scale = match self.exponent {
            0 => "per_unit",
            2 => "per_hundred",
            _ => "per_thousand",
        };
        let values: Vec<Value> = self
            .values
            .iter()
            .map(|(day, units)| json!({"date": day.to_string(), "amount": Decimal::new(*units, self.places).to_string()}))
            .collect();
        json!({"title": "Units", "values": values, "cost_report_tokens_with_metadata": [{"cost_report_token": report,
            "unit_scale": scale, "calculation_type": if self.gross { "gross_margin" } else { "unit_cost" }}]})
    }
}

/// An amount's text as an integer of 10^-18.
fn unscaled(text: &str) -> i128 {
    let d = dec(text);
    d.mantissa() * 10i128.pow(18 - d.scale())
}

/// `n ÷ d` rounded half away from zero.
fn divide(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if 2 * r.abs() >= d.abs() {
        q + if (n < 0) == (d < 0) { 1 } else { -1 }
    } else {
        q
    }
}

/// `a × b ÷ d` rounded half away from zero, in 256 bits (two amounts' product passes i128).
fn divide_product(a: i128, b: i128, d: i128) -> i128 {
    use arrow::datatypes::i256;
    let n = i256::from_i128(a).wrapping_mul(i256::from_i128(b));
    let d = i256::from_i128(d);
    let (q, r) = (n.wrapping_div(d), n.wrapping_rem(d));
    let away = r.wrapping_abs().wrapping_mul(i256::from_i128(2)) >= d.wrapping_abs();
    let q = if away {
        q.wrapping_add(if n.is_negative() == d.is_negative() { i256::ONE } else { i256::MINUS_ONE })
    } else {
        q
    };
    q.to_i128().expect("a share is at most its amount")
}

/// The unit costs per month (as unscaled 18-place integers) of the reference's costs `grouped` and `metric`.
fn reference_unit_costs(grouped: &BTreeMap<(String, String, String), Decimal>, metric: &Metric) -> Vec<(String, i128)> {
    let mut cost: BTreeMap<String, i128> = BTreeMap::new();
    for ((month, _, _), amount) in grouped {
        *cost.entry(month.clone()).or_default() += unscaled(&amount.to_string());
    }
    let mut units: BTreeMap<String, i128> = BTreeMap::new();
    for (day, v) in &metric.values {
        *units.entry(first_of(*day).to_string()).or_default() += i128::from(*v);
    }
    let places = 10i128.pow(metric.places);
    units
        .into_iter()
        .filter(|(_, u)| *u != 0)
        .map(|(month, u)| {
            let c = cost.get(&month).copied().unwrap_or(0);
            let unit = if metric.gross {
                // (s − c) × 100 ÷ s, with s = u ÷ 10^places.
                divide((u * 10i128.pow(18) / places - c) * 100 * places, u)
            } else {
                // c ÷ (s ÷ 10^exponent).
                divide(c * 10i128.pow(metric.exponent) * places, u)
            };
            (month, unit)
        })
        .collect()
}

fn costs_path(groupings: &str, shown: Shown) -> String {
    format!(
        "/v2/costs?start_date={}&end_date={}&groupings={groupings}&date_bin=month&limit=5000\
         &settings[include_credits]={}&settings[include_refunds]={}&settings[amortize]={}",
        date(START),
        date(END),
        shown.credits,
        shown.refunds,
        shown.amortize
    )
}

/// One random case: the uploads, rules, settings shown, and what the MSP and its customer configure.
struct Case {
    files: Vec<Vec<Row>>,
    rules: Vec<Rule>,
    shown: Shown,
    tag: VirtualTag,
    rates: Rates,
    metric: Metric,
    split: SplitMetric,
    segments: Vec<SegmentCase>,
}

async fn compare(app: &TestApp, case: &Case) -> Result<(), TestCaseError> {
    let Case { files, rules, shown, tag, rates, metric, split, segments } = case;
    let shown = *shown;
    let integration = app.create_integration("Random").await["token"].as_str().unwrap().to_string();
    for (i, rows) in files.iter().enumerate() {
        let res = app.upload(&integration, &format!("f{i}.csv"), csv_of(rows).into_bytes()).await;
        prop_assert_eq!(res.status, 201, "{}", res.text);
    }
    let mut tokens = Vec::new();
    for rule in rules {
        let res = app.post("/v2/billing_rules", rule.body()).await;
        prop_assert_eq!(res.status, 201, "{:?}: {}", rule, res.text);
        tokens.push(res.body["token"].clone());
    }
    let managed = app
        .post(
            "/v2/managed_accounts",
            json!({"name": "R", "contact_email": "r@x.io",
            "access_credential_tokens": [integration], "billing_rule_tokens": tokens}),
        )
        .await;
    prop_assert_eq!(managed.status, 201, "{}", managed.text);
    let token = app.mint_for(managed.body["token"].as_str().unwrap(), "read").await;
    // The MSP's rates, and the customer's workspace showing every cost in USD.
    let form = reqwest::multipart::Form::new()
        .part("csv", reqwest::multipart::Part::bytes(rates.csv().into_bytes()).file_name("rates.csv"));
    let res = app.post_form("/v2/exchange_rates/csv", &app.token, form).await;
    prop_assert_eq!(res.status, 201, "{}", res.text);
    let writer = app.mint_for(managed.body["token"].as_str().unwrap(), "read,write").await;
    let res = app.send(reqwest::Method::GET, "/v2/workspaces", Some(&writer), None).await;
    let workspace = res.body["workspaces"][0]["token"].as_str().unwrap().to_string();
    let body = json!({"currency": "USD", "enable_currency_conversion": true,
        "exchange_rate_date": if rates.end_of_period { "end_of_billing_period_rate" } else { "daily_rate" }});
    let res = app
        .send(reqwest::Method::PUT, &format!("/v2/workspaces/{workspace}"), Some(&writer), Some(body.to_string()))
        .await;
    prop_assert_eq!(res.status, 200, "{}", res.text);
    let query = costs_path("service,charge_type", shown);
    let res = app.send(reqwest::Method::GET, &query, Some(&token), None).await;
    prop_assert_eq!(res.status, 200, "{}", res.text);

    let (expected, total) = reference(files, rules, shown, rates);
    let mut got: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
    for c in res.body["costs"].as_array().unwrap() {
        let key = (
            c["accrued_at"].as_str().unwrap().to_string(),
            c["service"].as_str().unwrap_or("").to_string(),
            c["charge_type"].as_str().unwrap_or("").to_string(),
        );
        got.insert(key, dec(c["amount"].as_str().unwrap()));
    }
    prop_assert_eq!(&got, &expected, "rows differ for rules {:?}", rules);
    let rounded = total.round_dp_with_strategy(2, MidpointAwayFromZero).normalize();
    let shown_total = if rounded.is_zero() {
        "0.0".to_string()
    } else if rounded.scale() == 0 {
        format!("{rounded}.0")
    } else {
        rounded.to_string()
    };
    prop_assert_eq!(res.body["total_cost"]["amount"].as_str().unwrap(), shown_total);

    // By tags: one tag grouping, and two (read from one parse of each row's tags).
    for keys in [&["team"][..], &["team", "env"][..]] {
        let groupings: Vec<String> = keys.iter().map(|k| format!("tag:{k}")).collect();
        let query = costs_path(&groupings.join(","), shown);
        let res = app.send(reqwest::Method::GET, &query, Some(&token), None).await;
        prop_assert_eq!(res.status, 200, "{}", res.text);
        let mut got = ByTags::new();
        for c in res.body["costs"].as_array().unwrap() {
            let values = groupings.iter().map(|g| c[g.as_str()].as_str().map(str::to_string)).collect();
            got.insert((c["accrued_at"].as_str().unwrap().to_string(), values), dec(c["amount"].as_str().unwrap()));
        }
        prop_assert_eq!(
            &got,
            &reference_by_tags(files, rules, shown, rates, keys),
            "by {:?}, rules {:?}",
            groupings,
            rules
        );
    }

    // By a virtual tag the MSP saved: the managed account's costs allocated, every share exact, none lost;
    // its splits by a metric read the MSP's.
    let values: Vec<Value> = split
        .iter()
        .map(|((day, label), v)| json!({"date": day.to_string(), "amount": v.to_string(), "label": label}))
        .collect();
    let res = app.post("/v2/business_metrics", json!({"title": "Split by", "values": values})).await;
    prop_assert_eq!(res.status, 201, "{}", res.text);
    let split_token = res.body["token"].as_str().unwrap().to_string();
    let res = app.post("/v2/virtual_tag_configs", tag.body(&split_token)).await;
    prop_assert_eq!(res.status, 201, "{:?}: {}", tag, res.text);
    let grouping = format!("tag:{}", tag.key);
    let query = costs_path(&grouping, shown);
    let res = app.send(reqwest::Method::GET, &query, Some(&token), None).await;
    prop_assert_eq!(res.status, 200, "{}", res.text);
    // The costs by month and the tag's value.
    let by_value = |body: &Value| -> ByTags {
        let mut out = ByTags::new();
        for c in body["costs"].as_array().unwrap() {
            let value = c[grouping.as_str()].as_str().map(str::to_string);
            out.insert(
                (c["accrued_at"].as_str().unwrap().to_string(), vec![value]),
                dec(c["amount"].as_str().unwrap()),
            );
        }
        out
    };
    let got = by_value(&res.body);
    let by_tag = reference_by_virtual_tag(files, rules, shown, rates, tag, split);
    prop_assert_eq!(by_tag.values().sum::<Decimal>(), total, "the reference's allocation lost money");
    prop_assert_eq!(&got, &by_tag, "by {:?}, rules {:?}", tag, rules);
    // A filter naming the tag reads its value row by row, share by share (the plan a split only grouped by
    // skips): the tagged rows are the same, to the digit.
    let filter = format!("tags.name = '{}'", tag.key);
    let filtered = format!("{query}&filter={}", form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>());
    let res = app.send(reqwest::Method::GET, &filtered, Some(&token), None).await;
    prop_assert_eq!(res.status, 200, "{}", res.text);
    let tagged = by_value(&res.body);
    let expected_tagged: ByTags =
        by_tag.iter().filter(|((_, v), _)| v[0].is_some()).map(|(k, v)| (k.clone(), *v)).collect();
    prop_assert_eq!(&tagged, &expected_tagged, "filtered by {:?}, rules {:?}", tag, rules);

    // The same query as a data export: its CSV holds the same rows to the last place.
    let body = json!({"start_date": date(START).to_string(), "end_date": date(END).to_string(),
        "groupings": ["service", "charge_type"], "date_bin": "month",
        "settings": {"include_credits": shown.credits, "include_refunds": shown.refunds, "amortize": shown.amortize}});
    let res = app.send(reqwest::Method::POST, "/v2/costs/data_exports", Some(&token), Some(body.to_string())).await;
    prop_assert_eq!(res.status, 202, "{}", res.text);
    let export = res.body["token"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..400 {
        let res = app.send(reqwest::Method::GET, &format!("/v2/data_exports/{export}"), Some(&token), None).await;
        if res.status == 200 {
            done = res.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    prop_assert_eq!(&done["status"], "completed", "{}", done);
    let file = app
        .client
        .get(done["manifest"]["files"][0].as_str().unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut exported: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
    for line in file.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        exported.insert((f[0].to_string(), f[1].to_string(), f[2].to_string()), dec(f[3]));
    }
    prop_assert_eq!(&exported, &expected, "the export differs for rules {:?}", rules);

    // Unit costs: the customer's report of the same costs, a random metric attached, per month.
    let body = json!({"title": "All", "start_date": date(START).to_string(), "end_date": date(END).to_string(),
        "settings": {"include_credits": shown.credits, "include_refunds": shown.refunds, "amortize": shown.amortize}});
    let res = app.send(reqwest::Method::POST, "/v2/cost_reports", Some(&writer), Some(body.to_string())).await;
    prop_assert_eq!(res.status, 201, "{}", res.text);
    let report = res.body["token"].as_str().unwrap().to_string();
    let body = metric.body(&report).to_string();
    let res = app.send(reqwest::Method::POST, "/v2/business_metrics", Some(&writer), Some(body)).await;
    prop_assert_eq!(res.status, 201, "{}", res.text);
    let path = format!("/v2/unit_costs?cost_report_token={report}&date_bin=month&order=asc");
    let res = app.send(reqwest::Method::GET, &path, Some(&token), None).await;
    prop_assert_eq!(res.status, 200, "{}", res.text);
    let got: Vec<(String, i128)> = res.body["unit_costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["date"].as_str().unwrap().to_string(), unscaled(u["unit_cost_amount"].as_str().unwrap())))
        .collect();
    prop_assert_eq!(got, reference_unit_costs(&expected, metric), "unit costs of {:?}", metric);

    // Segments: the customer's random tree, each segment's report against the reference's assignment.
    let mut tokens: Vec<String> = Vec::new();
    for (i, case) in segments.iter().enumerate() {
        let mut body = json!({"title": format!("S{i}"), "priority": case.priority, "track_unallocated": case.track});
        if let Some(filter) = case.filter.vql() {
            body["filter"] = json!(filter);
        }
        match case.parent {
            Some(p) => body["parent_segment_token"] = json!(tokens[p]),
            None => {
                body["report_settings"] = json!({"include_credits": shown.credits, "include_refunds": shown.refunds, "amortize": shown.amortize})
            }
        }
        let res = app.send(reqwest::Method::POST, "/v2/segments", Some(&writer), Some(body.to_string())).await;
        prop_assert_eq!(res.status, 201, "{:?}: {}", case, res.text);
        tokens.push(res.body["token"].as_str().unwrap().to_string());
    }
    let res = app.send(reqwest::Method::GET, "/v2/segments?limit=1000", Some(&token), None).await;
    prop_assert_eq!(res.status, 200, "{}", res.text);
    let listed = res.body["segments"].as_array().unwrap().clone();
    let report_of = |token: &str| -> Option<String> {
        listed.iter().find(|s| s["token"] == token).map(|s| s["report_token"].as_str().unwrap().to_string())
    };
    let unallocated_of = |parent: &str| -> Option<String> {
        listed
            .iter()
            .find(|s| s["parent_segment_token"] == parent && s["title"] == "Unallocated Costs")
            .map(|s| s["report_token"].as_str().unwrap().to_string())
    };
    let expected = reference_by_segment(&shown_rows(files, rules, shown, rates), segments);
    for (node, reference) in expected.iter().enumerate() {
        let report = if node < segments.len() {
            report_of(&tokens[node])
        } else {
            // The unallocated children, in the order of the segments that track them.
            let parent =
                segments.iter().enumerate().filter(|(_, c)| c.track).nth(node - segments.len()).map(|(i, _)| i);
            parent.and_then(|p| unallocated_of(&tokens[p]))
        };
        let Some(report) = report else {
            return Err(TestCaseError::fail(format!("segment {node} of {segments:?} has no report")));
        };
        let path = format!(
            "/v2/costs?cost_report_token={report}&start_date={}&end_date={}&date_bin=month&groupings=service&limit=5000",
            date(START),
            date(END)
        );
        let res = app.send(reqwest::Method::GET, &path, Some(&token), None).await;
        prop_assert_eq!(res.status, 200, "{}", res.text);
        let mut got: BTreeMap<String, Decimal> = BTreeMap::new();
        for c in res.body["costs"].as_array().unwrap() {
            *got.entry(c["accrued_at"].as_str().unwrap().to_string()).or_default() +=
                dec(c["amount"].as_str().unwrap());
        }
        got.retain(|_, v| !v.is_zero());
        prop_assert_eq!(&got, reference, "segment {} of {:?}, rules {:?}", node, segments, rules);
    }
    Ok(())
}

/// A random segment: its parent (an earlier one), priority, filter, and whether it tracks unallocated costs.
#[derive(Debug, Clone)]
struct SegmentCase {
    parent: Option<usize>,
    priority: i32,
    filter: SegmentFilter,
    track: bool,
}

#[derive(Debug, Clone, Copy)]
enum SegmentFilter {
    All,
    Service(&'static str),
    Region(&'static str),
    /// `costs.region != 'x'`: not true for a row with no region (a rule's), which goes on to the next.
    NotRegion(&'static str),
    EnvProd,
}

impl SegmentFilter {
    fn vql(&self) -> Option<String> {
        match self {
            SegmentFilter::All => None,
            SegmentFilter::Service(s) => Some(format!("costs.service = '{s}'")),
            SegmentFilter::Region(r) => Some(format!("costs.region = '{r}'")),
            SegmentFilter::NotRegion(r) => Some(format!("costs.region != '{r}'")),
            SegmentFilter::EnvProd => Some("tags.name = 'env' AND tags.value = 'prod'".into()),
        }
    }

    fn keeps(&self, r: &Row) -> bool {
        match self {
            SegmentFilter::All => true,
            SegmentFilter::Service(s) => r.service == *s,
            SegmentFilter::Region(g) => r.region == *g,
            SegmentFilter::NotRegion(g) => !r.region.is_empty() && r.region != *g,
            SegmentFilter::EnvProd => r.tags.env.as_deref() == Some("prod"),
        }
    }
}

fn segments() -> impl Strategy<Value = Vec<SegmentCase>> {
    let filter = prop_oneof![
        Just(SegmentFilter::All),
        proptest::sample::select(SERVICES.to_vec()).prop_map(SegmentFilter::Service),
        proptest::sample::select(REGIONS.to_vec()).prop_map(SegmentFilter::Region),
        proptest::sample::select(REGIONS.to_vec()).prop_map(SegmentFilter::NotRegion),
        Just(SegmentFilter::EnvProd),
    ];
    prop::collection::vec((any::<prop::sample::Index>(), any::<bool>(), 0..3i32, filter, any::<bool>()), 1..6).prop_map(
        |cases| {
            cases
                .into_iter()
                .enumerate()
                .map(|(i, (index, child, priority, filter, track))| SegmentCase {
                    parent: (i > 0 && child).then(|| index.index(i)),
                    priority,
                    filter,
                    track,
                })
                .collect()
        },
    )
}

/// Each segment's cost per month (zero months left out): the random segments in order, then the
/// unallocated child of each that tracks them. Among siblings the lowest priority number, then the
/// oldest, takes a row its filter keeps; the unallocated child comes last and keeps everything; a row goes
/// down the tree as far as a child takes it.
fn reference_by_segment(rows: &[Row], cases: &[SegmentCase]) -> Vec<BTreeMap<String, Decimal>> {
    // (parent, priority, filter, unallocated), in creation order.
    let mut nodes: Vec<(Option<usize>, i32, SegmentFilter, bool)> =
        cases.iter().map(|c| (c.parent, c.priority, c.filter, false)).collect();
    for (i, c) in cases.iter().enumerate() {
        if c.track {
            nodes.push((Some(i), i32::MAX, SegmentFilter::All, true));
        }
    }
    let mut totals = vec![BTreeMap::<String, Decimal>::new(); nodes.len()];
    for r in rows {
        let mut parent = None;
        loop {
            let mut siblings: Vec<usize> = (0..nodes.len()).filter(|&n| nodes[n].0 == parent).collect();
            siblings.sort_by_key(|&n| (nodes[n].3, nodes[n].1, n));
            let Some(taken) = siblings.into_iter().find(|&n| nodes[n].2.keeps(r)) else { break };
            *totals[taken].entry(first_of(r.day).to_string()).or_default() += r.amount;
            parent = Some(taken);
        }
    }
    // The reference's own check: a parent that tracks its unallocated costs is the sum of its children.
    for (i, c) in cases.iter().enumerate() {
        if c.track {
            let mut children = BTreeMap::<String, Decimal>::new();
            for n in (0..nodes.len()).filter(|&n| nodes[n].0 == Some(i)) {
                for (month, v) in &totals[n] {
                    *children.entry(month.clone()).or_default() += v;
                }
            }
            assert_eq!(children, totals[i], "the reference lost money under segment {i}");
        }
    }
    for t in &mut totals {
        t.retain(|_, v| !v.is_zero());
    }
    totals
}

fn differential(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy = (
        prop::collection::vec(prop::collection::vec(row(), 1..15), 1..4),
        prop::collection::vec(rule(), 0..7),
        any::<(bool, bool, bool)>(),
        (virtual_tag(), rates(), prop::collection::vec(any::<bool>(), 4), metric(), split_metric(), segments()),
    );
    let result = runner.run(
        &strategy,
        |(mut files, mut rules, (credits, refunds, amortize), (tag, rates, euros, metric, split, segments))| {
            for (rows, euro) in files.iter_mut().zip(euros) {
                for r in rows {
                    r.currency = Some(if euro { "EUR" } else { "USD" });
                }
            }
            // A managed account's rules must list their groups in order; keep each group's own order.
            rules.sort_by_key(group);
            runtime.block_on(async {
                let Some(app) = TestApp::spawn(backend).await else { return Ok(()) };
                let shown = Shown { credits, refunds, amortize };
                compare(&app, &Case { files, rules, shown, tag, rates, metric, split, segments }).await
            })
        },
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn costs_with_random_rules_agree_with_the_reference_evaluator_on_sqlite() {
    differential(Backend::Sqlite, 64);
}

#[test]
fn costs_with_random_rules_agree_with_the_reference_evaluator_on_postgres() {
    differential(Backend::Postgres, 16);
}
