//! Virtual tags (`/v2/virtual_tag_configs`, docs/allocation.md): a tag key whose value on a cost is given by
//! ordered rules instead of the provider. The first value whose VQL filter matches a cost (and whose date
//! ranges hold its day) names it, or splits it between several names: by fixed percentages, or in each
//! month by the proportions of another cost (by a provider tag) or of a business metric (by label). Where no
//! value matches, the cost keeps the provider's own tag of that key (or of a collapsed key), if it has one.
//!
//! Request bodies and the stored JSON are one form ([`TagFields`], [`ValueFields`]); [`VirtualTagDefinition`]
//! is what they mean, checked: filters parsed, dates read, percentages exact (JSON numbers keep their
//! written digits) and adding up to 100.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::token::{AccountToken, VirtualTagToken, VirtualTagValueToken};
use super::vql::Filter;
use super::{decimal, text};

/// Most virtual tags an account may define (Vantage's limit).
pub const MAX_TAGS: usize = 50;
/// Most values one virtual tag may have (Vantage's limit).
pub const MAX_VALUES: usize = 100;
/// Most shares one percentage split may have.
pub const MAX_SHARES: usize = 100;
/// Most decimal places of a share's percentage: `33.333333` is fine, a double's noise is refused.
pub const MAX_PCT_PLACES: u32 = 6;
/// Most collapsed keys per tag.
pub const MAX_COLLAPSED_KEYS: usize = 20;

/// A virtual tag as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualTag {
    pub token: VirtualTagToken,
    pub account_token: AccountToken,
    pub created_by_token: Option<String>,
    pub definition: VirtualTagDefinition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a virtual tag means, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualTagDefinition {
    pub key: String,
    /// A matching value replaces a provider tag of the same key (else the provider's value stays).
    pub overridable: bool,
    pub hidden: bool,
    pub preferred: bool,
    /// Kept and shown; costd computes tags when a query runs, so every month is "backfilled".
    pub backfill_until: Option<NaiveDate>,
    pub collapsed_tag_keys: Vec<CollapsedKey>,
    pub values: Vec<TagValue>,
}

/// A provider tag key whose values count as the virtual key's (`team` collapsing `Team` and `TEAM`),
/// everywhere or only for some providers or only on costs a filter keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollapsedKey {
    pub key: String,
    pub providers: Vec<String>,
    pub filter: Option<Filter>,
}

/// One ordered rule of a virtual tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagValue {
    pub token: VirtualTagValueToken,
    /// `None`: every cost (a catch-all, usually last).
    pub filter: Option<Filter>,
    /// The days the value applies (any of the ranges); empty: always.
    pub date_ranges: Vec<DateRange>,
    pub assign: Assign,
}

impl TagValue {
    /// Whether the value applies on `day` (its date ranges; none: always).
    pub fn applies_on(&self, day: NaiveDate) -> bool {
        self.date_ranges.is_empty() || self.date_ranges.iter().any(|r| r.covers(day))
    }
}

/// What a matching cost gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Assign {
    /// The whole cost, under this name.
    Name(String),
    /// The cost split by fixed percentages (adding up to exactly 100), each share under its own name.
    Percentages { display_name: Option<String>, shares: Vec<Share> },
    /// The cost split, in each month, in the proportions `basis` has that month; each share under the
    /// name of its part of the basis (a tag value, a label).
    Proportional { display_name: Option<String>, basis: Basis },
}

/// What a proportional split divides a cost by, per calendar month.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Basis {
    /// `cost_metric`: the costs `filter` keeps (the same query's costs, provider columns and tags only),
    /// summed by their provider tag `tag`; each value of the tag a share.
    Costs { filter: Option<Filter>, tag: String },
    /// `business_metric_token`: the metric's values summed by label (only `labels`, when any); each label
    /// a share, named by the label after `transforms` (labels that become one name share as one).
    /// `label_key` is kept as sent: costd's values have one label each.
    Metric { token: String, label_key: Option<String>, labels: Vec<String>, transforms: Vec<LabelTransform> },
}

/// How a metric's label becomes a value's name (Vantage's `label_transforms`), applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelTransform {
    /// The `index`-th part (from 0) of the label split at `delimiter`; a label with fewer parts stays whole.
    Split { delimiter: String, index: usize },
    /// `template` with `{label}` (or `{value}`) replaced by the label.
    Format { template: String },
}

impl LabelTransform {
    pub fn apply(&self, label: &str) -> String {
        match self {
            LabelTransform::Split { delimiter, index } => {
                label.split(delimiter.as_str()).nth(*index).map_or_else(|| label.to_string(), str::to_string)
            }
            LabelTransform::Format { template } => template.replace("{label}", label).replace("{value}", label),
        }
    }

    /// As the API shows it.
    pub fn to_json(&self) -> Value {
        match self {
            LabelTransform::Split { delimiter, index } => {
                serde_json::json!({"type": "split", "delimiter": delimiter, "index": index})
            }
            LabelTransform::Format { template } => serde_json::json!({"type": "format", "template": template}),
        }
    }
}

/// The name a label gives after `transforms`.
pub fn transformed(transforms: &[LabelTransform], label: &str) -> String {
    transforms.iter().fold(label.to_string(), |name, t| t.apply(&name))
}

/// `label_transforms`: each `{"type": "split", "delimiter": "/", "index": 1}` or `{"type": "format",
/// "template": "team-{label}"}`; every problem named by its place.
fn parse_transforms(at: &str, list: Vec<Value>, errors: &mut Vec<String>) -> Vec<LabelTransform> {
    let mut out = Vec::new();
    for (i, t) in list.into_iter().enumerate() {
        let at = format!("{at}.label_transforms[{i}]");
        let text_of = |key: &str| t.get(key).and_then(Value::as_str).map(str::to_string);
        match t.get("type").and_then(Value::as_str) {
            Some("split") => {
                let delimiter = text_of("delimiter").filter(|d| !d.is_empty());
                let index = match t.get("index") {
                    None | Some(Value::Null) => Some(0),
                    Some(v) => v.as_u64().and_then(|i| usize::try_from(i).ok()).filter(|i| *i < 1000),
                };
                match (delimiter, index) {
                    (Some(delimiter), Some(index)) => out.push(LabelTransform::Split { delimiter, index }),
                    (None, _) => errors.push(format!("{at}.delimiter is required for a split (as in \"/\")")),
                    (_, None) => errors.push(format!("{at}.index must be a whole number from 0 to 999")),
                }
            }
            Some("format") => match text_of("template") {
                Some(template) if template.contains("{label}") || template.contains("{value}") => {
                    if template.chars().count() > 255 {
                        errors.push(format!("{at}.template must be at most 255 characters"));
                    } else {
                        out.push(LabelTransform::Format { template });
                    }
                }
                _ => {
                    errors.push(format!("{at}.template is required and must hold {{label}} (as in \"team-{{label}}\")"))
                }
            },
            other => errors.push(format!("{at}.type must be split or format, got {other:?}")),
        }
    }
    out
}

impl Assign {
    /// The name a row of a proportional split gets in a month the basis is zero (or has no part): the
    /// cost stays whole and says it was not allocated.
    pub fn unallocated(&self) -> String {
        match self {
            Assign::Proportional { display_name: Some(d), .. } => format!("{d} (unallocated)"),
            _ => "unallocated".to_string(),
        }
    }
}

impl Assign {
    /// The tag values a matching cost may get.
    pub fn names(&self) -> Vec<String> {
        match self {
            Assign::Name(n) => vec![n.clone()],
            Assign::Percentages { shares, .. } => shares.iter().map(|s| s.value.clone()).collect(),
            // Known only from the basis each month: `unallocated` is the one name known in advance.
            Assign::Proportional { .. } => vec![self.unallocated()],
        }
    }
}

/// One share of a percentage split.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Share {
    pub value: String,
    /// In percent, exact, more than 0 and at most 100, at most [`MAX_PCT_PLACES`] places.
    pub pct: Decimal,
}

/// Inclusive dates; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

impl DateRange {
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.start.is_none_or(|s| day >= s) && self.end.is_none_or(|e| day <= e)
    }
}

impl VirtualTagDefinition {
    /// The largest number of decimal places a share's fraction (`pct / 100`) has: multiplying an amount
    /// with `p` places by every share is exact while `p` plus this fits 18 places.
    pub fn split_places(&self) -> u32 {
        self.values
            .iter()
            .filter_map(|v| match &v.assign {
                Assign::Percentages { shares, .. } => {
                    shares.iter().map(|s| (s.pct / Decimal::ONE_HUNDRED).normalize().scale()).max()
                }
                Assign::Name(_) | Assign::Proportional { .. } => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether any value splits costs.
    pub fn splits(&self) -> bool {
        self.values.iter().any(|v| !matches!(v.assign, Assign::Name(_)))
    }

    /// Whether any value splits by proportions: its shares divide by a basis, which rounds, so a sum split
    /// differs from the sum of its rows' splits (such a tag is computed on rows, never on rollups).
    pub fn splits_by_proportion(&self) -> bool {
        self.values.iter().any(|v| matches!(v.assign, Assign::Proportional { .. }))
    }

    /// The business metrics the tag's splits read.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.values.iter().filter_map(|v| match &v.assign {
            Assign::Proportional { basis: Basis::Metric { token, .. }, .. } => Some(token.as_str()),
            _ => None,
        })
    }
}

// ---- the wire and stored form ----

/// A collapsed key as sent and stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollapsedKeyFields {
    pub key: Option<String>,
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    #[serde(default)]
    pub filter: Option<String>,
}

/// A share as sent and stored (`pct` a JSON number or decimal string).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShareFields {
    pub value: Option<String>,
    /// A JSON number (or its text), read digit for digit.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub pct: Option<Value>,
}

/// A date range as sent and stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DateRangeFields {
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
}

/// A value as sent (create, or a whole list in a tag's create or update) and stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueFields {
    /// Ignored in requests (a new value gets a new token); kept in the stored form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentages: Option<Vec<ShareFields>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_ranges: Option<Vec<DateRangeFields>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_metric_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub cost_metric: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub label_transforms: Option<Vec<Value>>,
}

/// A virtual tag as sent (create; in an update every field is optional and `values` replaces the list
/// whole) and stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagFields {
    pub key: Option<String>,
    #[serde(default)]
    pub overridable: Option<bool>,
    #[serde(default)]
    pub hidden: Option<bool>,
    #[serde(default)]
    pub preferred: Option<bool>,
    #[serde(default)]
    pub backfill_until: Option<String>,
    #[serde(default)]
    pub collapsed_tag_keys: Option<Vec<CollapsedKeyFields>>,
    #[serde(default)]
    pub values: Option<Vec<ValueFields>>,
}

impl TagFields {
    /// `self` (an update) over `current`: fields sent replace, fields left out stay.
    pub fn over(self, current: TagFields) -> TagFields {
        TagFields {
            key: self.key.or(current.key),
            overridable: self.overridable.or(current.overridable),
            hidden: self.hidden.or(current.hidden),
            preferred: self.preferred.or(current.preferred),
            backfill_until: self.backfill_until.or(current.backfill_until),
            collapsed_tag_keys: self.collapsed_tag_keys.or(current.collapsed_tag_keys),
            values: self.values.or(current.values),
        }
    }
}

impl ValueFields {
    /// `self` (a PATCH) over `current`. A PATCH that says how a value assigns (a name, percentages, a
    /// cost metric or a business metric) replaces how it did, so a PATCH can turn one into another.
    pub fn over(self, current: ValueFields) -> ValueFields {
        let assigns = |f: &ValueFields| {
            f.name.is_some()
                || f.percentages.as_ref().is_some_and(|p| !p.is_empty())
                || f.cost_metric.as_ref().is_some_and(|c| !c.is_null())
                || f.business_metric_token.is_some()
        };
        let kept = if assigns(&self) {
            ValueFields {
                display_name: if self.name.is_some() { None } else { self.display_name.clone() },
                ..self.clone()
            }
        } else {
            ValueFields { display_name: self.display_name.clone().or(current.display_name.clone()), ..current.clone() }
        };
        ValueFields {
            token: current.token,
            filter: self.filter.or(current.filter),
            date_ranges: self.date_ranges.or(current.date_ranges),
            label_transforms: self.label_transforms.or(current.label_transforms),
            name: kept.name,
            display_name: kept.display_name,
            percentages: kept.percentages,
            business_metric_token: kept.business_metric_token,
            cost_metric: kept.cost_metric,
            label_key: kept.label_key,
            label_values: kept.label_values,
        }
    }
}

fn date(field: &str, text: &str, errors: &mut Vec<String>) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(format!("{field} must be a date (YYYY-MM-DD), got {text:?}"));
            None
        }
    }
}

fn filter(field: &str, text: &str, errors: &mut Vec<String>) -> Option<Filter> {
    match Filter::parse(text) {
        Ok(f) => Some(f),
        Err(e) => {
            errors.push(format!("{field} is not valid VQL: {e}"));
            None
        }
    }
}

/// Parses one value; `at` names it in messages (`values[2]`). A value without a token gets a new one.
pub fn parse_value(at: &str, f: ValueFields, errors: &mut Vec<String>) -> Option<TagValue> {
    let before = errors.len();
    let transforms = f.label_transforms.clone().unwrap_or_default();
    if f.business_metric_token.is_none()
        && (f.label_key.is_some() || f.label_values.is_some() || !transforms.is_empty())
    {
        errors.push(format!("{at}: label_key, label_values and label_transforms go with business_metric_token"));
    }
    let parsed_filter = match f.filter.as_deref() {
        None => {
            errors.push(format!("{at}.filter is required"));
            None
        }
        Some(t) if t.trim().is_empty() => None,
        Some(t) => filter(&format!("{at}.filter"), t, errors),
    };
    let mut ranges = Vec::new();
    for (i, r) in f.date_ranges.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{at}.date_ranges[{i}]");
        let start = r.start_date.as_deref().and_then(|t| date(&format!("{field}.start_date"), t, errors));
        let end = r.end_date.as_deref().and_then(|t| date(&format!("{field}.end_date"), t, errors));
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                errors.push(format!("{field}: start_date {s} is after end_date {e}"));
            }
        }
        ranges.push(DateRange { start, end });
    }
    // An empty list is no split: what a GET shows a named value with, sent back as it was read.
    let percentages = f.percentages.filter(|p| !p.is_empty());
    let given: Vec<&str> = [
        (f.name.is_some(), "name"),
        (percentages.is_some(), "percentages"),
        (f.cost_metric.as_ref().is_some_and(|c| !c.is_null()), "cost_metric"),
        (f.business_metric_token.is_some(), "business_metric_token"),
    ]
    .into_iter()
    .filter_map(|(given, field)| given.then_some(field))
    .collect();
    let assign = match given.as_slice() {
        [] => {
            errors.push(format!("{at} needs a name, percentages, cost_metric or business_metric_token"));
            None
        }
        [_, _, ..] => {
            errors.push(format!("{at}: give one of {}, not several", given.join(", ")));
            None
        }
        ["name"] if f.display_name.is_some() => {
            errors.push(format!("{at}.display_name is for splits; a named value's name is its display"));
            None
        }
        ["name"] => f.name.and_then(|name| text(&format!("{at}.name"), name, errors)).map(Assign::Name),
        ["percentages"] => parse_shares(at, percentages.unwrap_or_default(), f.display_name, errors),
        [_] => {
            let display_name = f.display_name.and_then(|d| text(&format!("{at}.display_name"), d, errors));
            let basis = match f.cost_metric.filter(|c| !c.is_null()) {
                Some(metric) => parse_cost_metric(at, &metric, errors),
                None => {
                    let transforms = parse_transforms(at, transforms, errors);
                    parse_metric_basis(at, f.business_metric_token, f.label_key, f.label_values, errors).map(
                        |b| match b {
                            Basis::Metric { token, label_key, labels, .. } => {
                                Basis::Metric { token, label_key, labels, transforms }
                            }
                            other => other,
                        },
                    )
                }
            };
            basis.map(|basis| Assign::Proportional { display_name, basis })
        }
    };
    let token = match f.token {
        Some(t) => VirtualTagValueToken::parse(&t).or_else(|| {
            errors.push(format!("{at}.token {t:?} is not a value token"));
            None
        }),
        None => Some(VirtualTagValueToken::generate()),
    };
    if errors.len() > before {
        return None;
    }
    Some(TagValue { token: token?, filter: parsed_filter, date_ranges: ranges, assign: assign? })
}

/// `cost_metric`: `{"filter": "<VQL>", "aggregation": {"tag": "<provider tag key>"}}`.
fn parse_cost_metric(at: &str, metric: &Value, errors: &mut Vec<String>) -> Option<Basis> {
    let at = format!("{at}.cost_metric");
    let Some(object) = metric.as_object() else {
        errors.push(format!("{at} must be an object with filter and aggregation"));
        return None;
    };
    let before = errors.len();
    let basis_filter = match object.get("filter") {
        None | Some(Value::Null) => {
            errors.push(format!("{at}.filter is required (\"\" for every cost)"));
            None
        }
        Some(Value::String(t)) if t.trim().is_empty() => None,
        Some(Value::String(t)) => filter(&format!("{at}.filter"), t, errors),
        Some(_) => {
            errors.push(format!("{at}.filter must be a VQL string"));
            None
        }
    };
    let tag = match object.get("aggregation").and_then(|a| a.get("tag")) {
        Some(Value::String(t)) => text(&format!("{at}.aggregation.tag"), t.clone(), errors),
        _ => {
            errors.push(format!("{at}.aggregation.tag is required: the provider tag key whose values share the cost"));
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(Basis::Costs { filter: basis_filter, tag: tag? })
}

/// `business_metric_token` (with `label_key`, `label_values`).
fn parse_metric_basis(
    at: &str,
    token: Option<String>,
    label_key: Option<String>,
    labels: Option<Vec<String>>,
    errors: &mut Vec<String>,
) -> Option<Basis> {
    let token = token.unwrap_or_default();
    if crate::token::BusinessMetricToken::parse(token.trim()).is_none() {
        errors.push(format!("{at}.business_metric_token {token:?} is not a business metric token"));
        return None;
    }
    let mut kept = Vec::new();
    for (i, l) in labels.unwrap_or_default().into_iter().enumerate() {
        if let Some(l) = text(&format!("{at}.label_values[{i}]"), l, errors) {
            kept.push(l);
        }
    }
    let label_key = label_key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    Some(Basis::Metric { token: token.trim().to_string(), label_key, labels: kept, transforms: Vec::new() })
}

fn parse_shares(
    at: &str,
    shares: Vec<ShareFields>,
    display_name: Option<String>,
    errors: &mut Vec<String>,
) -> Option<Assign> {
    let before = errors.len();
    if shares.is_empty() {
        errors.push(format!("{at}.percentages must not be empty"));
    }
    if shares.len() > MAX_SHARES {
        errors.push(format!("{at}.percentages has {} shares; at most {MAX_SHARES}", shares.len()));
        return None;
    }
    let display_name = display_name.and_then(|d| text(&format!("{at}.display_name"), d, errors));
    let mut parsed: Vec<Share> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut sum = Decimal::ZERO;
    for (i, s) in shares.into_iter().enumerate() {
        let field = format!("{at}.percentages[{i}]");
        let value = match s.value {
            None => {
                errors.push(format!("{field}.value is required"));
                None
            }
            Some(v) => text(&format!("{field}.value"), v, errors),
        };
        let pct = match s.pct.as_ref().map(|p| decimal::from_json(&format!("{field}.pct"), p)) {
            None => {
                errors.push(format!("{field}.pct is required"));
                None
            }
            Some(Err(e)) => {
                errors.push(e);
                None
            }
            Some(Ok(p)) if p <= Decimal::ZERO || p > Decimal::ONE_HUNDRED => {
                errors.push(format!("{field}.pct must be more than 0 and at most 100 (got {p})"));
                None
            }
            Some(Ok(p)) if p.normalize().scale() > MAX_PCT_PLACES => {
                errors.push(format!("{field}.pct has more than {MAX_PCT_PLACES} decimal places (got {p})"));
                None
            }
            Some(Ok(p)) => Some(p.normalize()),
        };
        if let Some(v) = &value {
            if seen.contains(v) {
                errors.push(format!("{field}.value {v:?} appears twice"));
            }
            seen.push(v.clone());
        }
        if let (Some(value), Some(pct)) = (value, pct) {
            sum += pct;
            parsed.push(Share { value, pct });
        }
    }
    if errors.len() > before {
        return None;
    }
    // Splits conserve money: shares that do not cover the cost whole are refused rather than leaving a
    // remainder nobody sees (docs/allocation.md "Splits").
    if sum != Decimal::ONE_HUNDRED {
        errors.push(format!("{at}.percentages must add up to exactly 100 (they add up to {})", sum.normalize()));
        return None;
    }
    Some(Assign::Percentages { display_name, shares: parsed })
}

impl TryFrom<TagFields> for VirtualTagDefinition {
    type Error = Vec<String>;

    fn try_from(f: TagFields) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let key = match f.key {
            None => {
                errors.push("key is required".to_string());
                None
            }
            Some(k) => text("key", k, &mut errors),
        };
        let backfill_until = f.backfill_until.as_deref().and_then(|t| date("backfill_until", t, &mut errors));
        let collapsed = f.collapsed_tag_keys.unwrap_or_default();
        if collapsed.len() > MAX_COLLAPSED_KEYS {
            errors.push(format!("collapsed_tag_keys has {} keys; at most {MAX_COLLAPSED_KEYS}", collapsed.len()));
        }
        let mut collapsed_tag_keys = Vec::new();
        for (i, c) in collapsed.into_iter().enumerate() {
            let at = format!("collapsed_tag_keys[{i}]");
            let key = match c.key {
                None => {
                    errors.push(format!("{at}.key is required"));
                    None
                }
                Some(k) => text(&format!("{at}.key"), k, &mut errors),
            };
            let providers = c.providers.unwrap_or_default();
            let filter = c.filter.as_deref().filter(|t| !t.trim().is_empty()).and_then(|t| {
                if !providers.is_empty() {
                    errors.push(format!("{at}: give providers or filter, not both"));
                }
                filter(&format!("{at}.filter"), t, &mut errors)
            });
            if let Some(key) = key {
                collapsed_tag_keys.push(CollapsedKey { key, providers, filter });
            }
        }
        let values = f.values.unwrap_or_default();
        if values.len() > MAX_VALUES {
            errors.push(format!("values has {} entries; at most {MAX_VALUES}", values.len()));
            return Err(errors);
        }
        let mut parsed = Vec::new();
        for (i, v) in values.into_iter().enumerate() {
            if let Some(v) = parse_value(&format!("values[{i}]"), v, &mut errors) {
                parsed.push(v);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(VirtualTagDefinition {
            key: key.expect("checked above"),
            overridable: f.overridable.unwrap_or(false),
            hidden: f.hidden.unwrap_or(false),
            preferred: f.preferred.unwrap_or(false),
            backfill_until,
            collapsed_tag_keys,
            values: parsed,
        })
    }
}

impl From<&TagValue> for ValueFields {
    fn from(v: &TagValue) -> Self {
        let mut fields = ValueFields::default();
        let (name, display_name, percentages) = match &v.assign {
            Assign::Name(n) => (Some(n.clone()), None, None),
            Assign::Proportional { display_name, basis } => {
                match basis {
                    Basis::Costs { filter, tag } => {
                        let filter = filter.as_ref().map(|f| f.text().to_string()).unwrap_or_default();
                        fields.cost_metric = Some(serde_json::json!({"filter": filter, "aggregation": {"tag": tag}}));
                    }
                    Basis::Metric { token, label_key, labels, transforms } => {
                        fields.business_metric_token = Some(token.clone());
                        fields.label_key = label_key.clone();
                        fields.label_values = (!labels.is_empty()).then(|| labels.clone());
                        fields.label_transforms =
                            (!transforms.is_empty()).then(|| transforms.iter().map(LabelTransform::to_json).collect());
                    }
                }
                (None, display_name.clone(), None)
            }
            Assign::Percentages { display_name, shares } => (
                None,
                display_name.clone(),
                Some(
                    shares
                        .iter()
                        .map(|s| ShareFields {
                            value: Some(s.value.clone()),
                            pct: Some(Value::String(decimal::to_wire(s.pct))),
                        })
                        .collect(),
                ),
            ),
        };
        ValueFields {
            token: Some(v.token.to_string()),
            filter: Some(v.filter.as_ref().map(|f| f.text().to_string()).unwrap_or_default()),
            name,
            display_name,
            percentages,
            date_ranges: Some(
                v.date_ranges
                    .iter()
                    .map(|r| DateRangeFields {
                        start_date: r.start.map(|d| d.to_string()),
                        end_date: r.end.map(|d| d.to_string()),
                    })
                    .collect(),
            ),
            ..fields
        }
    }
}

impl From<&VirtualTagDefinition> for TagFields {
    fn from(d: &VirtualTagDefinition) -> Self {
        TagFields {
            key: Some(d.key.clone()),
            overridable: Some(d.overridable),
            hidden: Some(d.hidden),
            preferred: Some(d.preferred),
            backfill_until: d.backfill_until.map(|d| d.to_string()),
            collapsed_tag_keys: Some(
                d.collapsed_tag_keys
                    .iter()
                    .map(|c| CollapsedKeyFields {
                        key: Some(c.key.clone()),
                        providers: Some(c.providers.clone()),
                        filter: c.filter.as_ref().map(|f| f.text().to_string()),
                    })
                    .collect(),
            ),
            values: Some(d.values.iter().map(ValueFields::from).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<VirtualTagDefinition, Vec<String>> {
        VirtualTagDefinition::try_from(serde_json::from_value::<TagFields>(body).unwrap())
    }

    #[test]
    fn a_tag_with_named_and_split_values_parses_exactly() {
        let d = parse(json!({"key": "team", "overridable": true, "values": [
            {"filter": "costs.service = 'EC2'", "name": "web",
             "date_ranges": [{"start_date": "2024-01-01", "end_date": null}]},
            {"filter": "costs.service = 'Support'", "percentages": [
                {"value": "web", "pct": 33.333333}, {"value": "data", "pct": 66.666667}]}
        ]}))
        .unwrap();
        assert_eq!(d.key, "team");
        assert!(d.overridable && d.splits());
        let Assign::Percentages { shares, .. } = &d.values[1].assign else { panic!() };
        assert_eq!(shares[0].pct.to_string(), "33.333333", "the written digits, not a double's");
        assert_eq!(d.split_places(), 8);
        assert!(d.values[0].applies_on(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()));
        assert!(!d.values[0].applies_on(NaiveDate::from_ymd_opt(2023, 12, 31).unwrap()));
    }

    #[test]
    fn what_it_stores_reads_back_the_same() {
        let d = parse(json!({"key": "team", "overridable": false, "backfill_until": "2024-01-01",
            "collapsed_tag_keys": [{"key": "Team"}, {"key": "TEAM", "filter": "costs.provider = 'aws'"}],
            "values": [{"filter": "", "percentages": [{"value": "a", "pct": "12.5"}, {"value": "b", "pct": 87.5}],
                        "display_name": "shared"}]}))
        .unwrap();
        let stored = serde_json::to_string(&TagFields::from(&d)).unwrap();
        let back = VirtualTagDefinition::try_from(serde_json::from_str::<TagFields>(&stored).unwrap()).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.values[0].token, d.values[0].token, "tokens are kept");
    }

    #[test]
    fn percentages_must_add_up_to_100_and_each_be_in_range() {
        let e = parse(json!({"key": "k", "values": [{"filter": "", "percentages": [
            {"value": "a", "pct": 50}, {"value": "b", "pct": 40}]}]}))
        .unwrap_err();
        assert_eq!(e, vec!["values[0].percentages must add up to exactly 100 (they add up to 90)"]);
        let e = parse(json!({"key": "k", "values": [{"filter": "", "percentages": [
            {"value": "a", "pct": 0}, {"value": "b", "pct": 100.5}, {"value": "a", "pct": 0.1234567}]}]}))
        .unwrap_err();
        assert!(e[0].contains("values[0].percentages[0].pct must be more than 0"), "{e:?}");
        assert!(e[1].contains("percentages[1].pct must be more than 0 and at most 100"), "{e:?}");
        assert!(e.iter().any(|m| m.contains("more than 6 decimal places")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("\"a\" appears twice")), "{e:?}");
    }

    #[test]
    fn bad_values_are_named_by_their_position() {
        let e = parse(json!({"values": [
            {"filter": "costs.nope = 'x'", "name": "a"},
            {"name": "b"},
            {"filter": "", "name": "c", "percentages": [{"value": "x", "pct": 100}]},
            {"filter": "", "business_metric_token": "mtrc_1", "label_transforms": [{"type": "split"}]},
            {"filter": "", "name": "d", "date_ranges": [{"start_date": "2024-02-01", "end_date": "2024-01-01"}]}
        ]}))
        .unwrap_err();
        assert_eq!(e[0], "key is required");
        assert!(e[1].starts_with("values[0].filter is not valid VQL"), "{e:?}");
        assert_eq!(e[2], "values[1].filter is required");
        assert_eq!(e[3], "values[2]: give one of name, percentages, not several");
        assert_eq!(e[4], "values[3].label_transforms[0].delimiter is required for a split (as in \"/\")");
        assert_eq!(e[5], "values[3].business_metric_token \"mtrc_1\" is not a business metric token");
        assert!(e.iter().any(|m| m.contains("values[4].date_ranges[0]: start_date 2024-02-01 is after")), "{e:?}");
    }

    #[test]
    fn splits_by_a_cost_or_a_metric_parse_and_read_back_the_same() {
        let d = parse(json!({"key": "team", "values": [
            {"filter": "costs.service = 'Support'", "display_name": "Support",
             "cost_metric": {"filter": "costs.service = 'EC2'", "aggregation": {"tag": "team"}}},
            {"filter": "", "business_metric_token": "bsnss_mtrc_1", "label_key": "product", "label_values": ["a", "b"],
             "label_transforms": [{"type": "split", "delimiter": "/", "index": 1}, {"type": "format", "template": "team-{label}"}]}
        ]}))
        .unwrap();
        let Assign::Proportional { display_name, basis: Basis::Costs { filter, tag } } = &d.values[0].assign else {
            panic!("{:?}", d.values[0])
        };
        assert_eq!(
            (display_name.as_deref(), filter.as_ref().map(|f| f.text()), tag.as_str()),
            (Some("Support"), Some("costs.service = 'EC2'"), "team")
        );
        assert_eq!(d.values[0].assign.unallocated(), "Support (unallocated)");
        assert_eq!(
            d.values[1].assign,
            Assign::Proportional {
                display_name: None,
                basis: Basis::Metric {
                    token: "bsnss_mtrc_1".into(),
                    label_key: Some("product".into()),
                    labels: vec!["a".into(), "b".into()],
                    transforms: vec![
                        LabelTransform::Split { delimiter: "/".into(), index: 1 },
                        LabelTransform::Format { template: "team-{label}".into() }
                    ]
                }
            }
        );
        assert!(d.splits() && d.splits_by_proportion());
        assert_eq!(d.metrics().collect::<Vec<_>>(), vec!["bsnss_mtrc_1"]);
        assert_eq!(VirtualTagDefinition::try_from(TagFields::from(&d)).unwrap(), d);
        let e = parse(json!({"key": "k", "values": [
            {"filter": "", "cost_metric": {"filter": "costs.nope = 1"}},
            {"filter": "", "label_values": ["a"]}]}))
        .unwrap_err();
        assert!(e[0].starts_with("values[0].cost_metric.filter is not valid VQL"), "{e:?}");
        assert!(e[1].starts_with("values[0].cost_metric.aggregation.tag is required"), "{e:?}");
        assert_eq!(e[2], "values[1]: label_key, label_values and label_transforms go with business_metric_token");
    }

    #[test]
    fn more_than_the_limits_is_refused() {
        let values: Vec<Value> = (0..=MAX_VALUES).map(|i| json!({"filter": "", "name": format!("v{i}")})).collect();
        let e = parse(json!({"key": "k", "values": values})).unwrap_err();
        assert_eq!(e, vec![format!("values has {} entries; at most {MAX_VALUES}", MAX_VALUES + 1)]);
    }

    #[test]
    fn a_patch_naming_a_split_value_turns_it_into_a_named_one() {
        let current = ValueFields {
            filter: Some("costs.service = 'S'".into()),
            percentages: Some(vec![ShareFields { value: Some("a".into()), pct: Some(json!(100)) }]),
            display_name: Some("shared".into()),
            ..ValueFields::default()
        };
        let patched = ValueFields { name: Some("x".into()), ..ValueFields::default() }.over(current);
        assert_eq!((patched.name.as_deref(), patched.percentages, patched.display_name), (Some("x"), None, None));
        assert_eq!(patched.filter.as_deref(), Some("costs.service = 'S'"));
    }

    #[test]
    fn label_transforms_split_then_format_and_refuse_what_they_cannot_do() {
        let t = [
            LabelTransform::Split { delimiter: "/".into(), index: 1 },
            LabelTransform::Format { template: "team-{label}".into() },
        ];
        assert_eq!(transformed(&t, "prod/web/eu"), "team-web");
        assert_eq!(transformed(&t, "single"), "team-single", "too few parts: the label stays whole");
        assert_eq!(transformed(&[], "x"), "x");
        let e = parse(json!({"key": "k", "values": [
            {"filter": "", "business_metric_token": "bsnss_mtrc_1", "label_transforms": [
                {"type": "format", "template": "no placeholder"}, {"type": "upper"}, {"type": "split", "delimiter": "/", "index": -1}]},
            {"filter": "", "name": "n", "label_transforms": [{"type": "format", "template": "{label}"}]}]}))
        .unwrap_err();
        assert!(e[0].contains("values[0].label_transforms[0].template is required and must hold {label}"), "{e:?}");
        assert!(e[1].contains("values[0].label_transforms[1].type must be split or format"), "{e:?}");
        assert!(e[2].contains("values[0].label_transforms[2].index must be a whole number"), "{e:?}");
        assert!(
            e.iter().any(|m| m.contains("values[1]: label_key, label_values and label_transforms go with")),
            "{e:?}"
        );
    }
}
