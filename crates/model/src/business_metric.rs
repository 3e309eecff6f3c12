//! Business metrics (`/v2/business_metrics`) and what unit costs are made of (docs/unit-costs.md).
//!
//! A business metric is a daily series the user uploads (requests, active users, revenue), each value
//! optionally labelled. Attached to a cost report with a scale and a calculation, it gives the report's
//! unit costs: per date bin, the report's cost ÷ (the metric's sum ÷ scale), or the gross margin against
//! it, or the metric itself. Values are exact decimals (at most [`MAX_VALUE_PLACES`] places, below
//! [`MAX_VALUE`]), so a sum of them is exact and the only rounding in a unit cost is its final division.
//! costd imports values from CSV and from the API's `values` fields; it pulls nothing from Datadog,
//! CloudWatch or Snowflake, and says so when asked to.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::csv_table::{parse_rows, Column, Table};
use crate::token::{AccountToken, BusinessMetricToken};

/// Most metrics an account may have.
pub const MAX_METRICS: usize = 200;
/// Most cost reports one metric may be attached to.
pub const MAX_ATTACHMENTS: usize = 50;
/// Longest title and label, in characters.
pub const MAX_TEXT: usize = 255;
/// Most values one file or one request may hold (twenty years of daily values for 13 labels fit).
pub const MAX_VALUES: usize = 100_000;
/// Most decimal places a value may have.
pub const MAX_VALUE_PLACES: u32 = 12;
/// Values are below this in magnitude, so a day's sum of every label stays exact in a decimal.
pub const MAX_VALUE: i64 = 1_000_000_000_000;

/// How many units a unit cost is per (`unit_scale`): a cost per thousand requests divides the cost by the
/// requests ÷ 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitScale {
    PerUnit,
    PerHundred,
    PerThousand,
    PerMillion,
    PerBillion,
}

impl UnitScale {
    pub const ALL: [UnitScale; 5] = [
        UnitScale::PerUnit,
        UnitScale::PerHundred,
        UnitScale::PerThousand,
        UnitScale::PerMillion,
        UnitScale::PerBillion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitScale::PerUnit => "per_unit",
            UnitScale::PerHundred => "per_hundred",
            UnitScale::PerThousand => "per_thousand",
            UnitScale::PerMillion => "per_million",
            UnitScale::PerBillion => "per_billion",
        }
    }

    /// The power of ten the scale is.
    pub fn exponent(self) -> u32 {
        match self {
            UnitScale::PerUnit => 0,
            UnitScale::PerHundred => 2,
            UnitScale::PerThousand => 3,
            UnitScale::PerMillion => 6,
            UnitScale::PerBillion => 9,
        }
    }

    /// The scale as a number (1, 100, 1000, …).
    pub fn factor(self) -> u64 {
        10u64.pow(self.exponent())
    }
}

/// What a report shows of an attached metric (`calculation_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalculationType {
    /// Cost ÷ (metric ÷ scale).
    UnitCost,
    /// (metric − cost) ÷ metric × 100: the percentage of a revenue metric left after the cost.
    GrossMargin,
    /// The metric's sum, as it is.
    RawBusinessMetric,
}

impl CalculationType {
    pub fn as_str(self) -> &'static str {
        match self {
            CalculationType::UnitCost => "unit_cost",
            CalculationType::GrossMargin => "gross_margin",
            CalculationType::RawBusinessMetric => "raw_business_metric",
        }
    }

    fn parse(text: &str) -> Result<CalculationType, String> {
        match text {
            "unit_cost" => Ok(CalculationType::UnitCost),
            "gross_margin" => Ok(CalculationType::GrossMargin),
            "raw_business_metric" => Ok(CalculationType::RawBusinessMetric),
            "usage_unit_cost" => Err("usage_unit_cost is not supported by costd (its costs carry no usage \
                                      quantity to divide by); use unit_cost"
                .into()),
            other => Err(format!("must be unit_cost, gross_margin or raw_business_metric, got {other:?}")),
        }
    }
}

/// A metric attached to a cost report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attachment {
    pub cost_report_token: String,
    pub unit_scale: UnitScale,
    pub calculation_type: CalculationType,
    /// The name a report shows for it.
    pub label: Option<String>,
    /// Only values with these labels count (`""` is the unlabelled values); `None`: every value.
    pub label_filter: Option<Vec<String>>,
}

impl Attachment {
    /// Whether a value with `label` counts in this report.
    pub fn counts(&self, label: Option<&str>) -> bool {
        self.label_filter.as_ref().is_none_or(|f| f.iter().any(|l| l == label.unwrap_or_default()))
    }
}

/// One day's value of a metric, under a label or none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricValue {
    pub date: NaiveDate,
    /// Exact, normalised, at most [`MAX_VALUE_PLACES`] places, below [`MAX_VALUE`] in magnitude.
    pub amount: Decimal,
    pub label: Option<String>,
}

/// Historical values, or the values the user expects (`forecasted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Actual,
    Forecast,
}

impl ValueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Actual => "actual",
            ValueKind::Forecast => "forecast",
        }
    }
}

/// A business metric as stored (its values are read apart: there may be many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessMetric {
    pub token: BusinessMetricToken,
    pub account_token: AccountToken,
    pub title: String,
    pub created_by_token: Option<String>,
    pub attachments: Vec<Attachment>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An attachment as sent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AttachmentFields {
    pub cost_report_token: Option<String>,
    pub unit_scale: Option<String>,
    pub calculation_type: Option<String>,
    pub label: Option<String>,
    pub label_filter: Option<Vec<String>>,
    /// Multi-label filters: costd's values have one label each, so this is refused unless empty.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub label_filters: Option<serde_json::Value>,
}

/// A value as sent: `date` a day (`2024-03-01`) or midnight UTC of one, `amount` a number or decimal text.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ValueFields {
    pub date: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub amount: Option<serde_json::Value>,
    pub label: Option<String>,
}

/// A metric as sent: on create `title` is required; on update every field is optional and a list sent
/// replaces the whole list (attachments, values, forecasted values).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MetricFields {
    pub title: Option<String>,
    pub cost_report_tokens_with_metadata: Option<Vec<AttachmentFields>>,
    pub values: Option<Vec<ValueFields>>,
    pub forecasted_values: Option<Vec<ValueFields>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub datadog_metric_fields: Option<serde_json::Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub cloudwatch_fields: Option<serde_json::Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub snowflake_metric_fields: Option<serde_json::Value>,
}

/// A checked create or update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricChange {
    pub title: Option<String>,
    pub attachments: Option<Vec<Attachment>>,
    pub values: Option<Vec<MetricValue>>,
    pub forecasted_values: Option<Vec<MetricValue>>,
}

impl MetricFields {
    /// Checks every field, naming each problem; `creating` requires a title.
    pub fn parse(self, creating: bool) -> Result<MetricChange, Vec<String>> {
        let mut errors = Vec::new();
        for (field, value) in [
            ("datadog_metric_fields", &self.datadog_metric_fields),
            ("cloudwatch_fields", &self.cloudwatch_fields),
            ("snowflake_metric_fields", &self.snowflake_metric_fields),
        ] {
            if value.as_ref().is_some_and(|v| !v.is_null()) {
                errors.push(format!(
                    "{field}: costd imports business metrics from CSV (PUT …/values.csv) and the values field \
                     only; it does not pull metrics from other services"
                ));
            }
        }
        let title = match self.title.map(|t| t.trim().to_string()) {
            Some(t) if t.is_empty() => {
                errors.push("title must not be empty".into());
                None
            }
            Some(t) if t.chars().count() > MAX_TEXT => {
                errors.push(format!("title may have at most {MAX_TEXT} characters"));
                None
            }
            Some(t) => Some(t),
            None if creating => {
                errors.push("title is required".into());
                None
            }
            None => None,
        };
        let attachments = self.cost_report_tokens_with_metadata.map(|list| parse_attachments(list, &mut errors));
        let mut values_of = |field: &str, list: Option<Vec<ValueFields>>| {
            list.map(|list| {
                parse_values(field, list).unwrap_or_else(|e| {
                    errors.extend(e);
                    Vec::new()
                })
            })
        };
        let values = values_of("values", self.values);
        let forecasted_values = values_of("forecasted_values", self.forecasted_values);
        if errors.is_empty() {
            Ok(MetricChange { title, attachments, values, forecasted_values })
        } else {
            Err(errors)
        }
    }
}

fn parse_attachments(list: Vec<AttachmentFields>, errors: &mut Vec<String>) -> Vec<Attachment> {
    if list.len() > MAX_ATTACHMENTS {
        errors.push(format!("cost_report_tokens_with_metadata may hold at most {MAX_ATTACHMENTS} reports"));
        return Vec::new();
    }
    let mut out: Vec<Attachment> = Vec::new();
    for (i, a) in list.into_iter().enumerate() {
        let at = format!("cost_report_tokens_with_metadata[{i}]");
        let report = match a.cost_report_token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => {
                errors.push(format!("{at}.cost_report_token is required"));
                continue;
            }
        };
        if out.iter().any(|o| o.cost_report_token == report) {
            errors.push(format!("{at}.cost_report_token: {report} is attached twice"));
        }
        if let Some(attachment) = parse_attachment(&at, a, report, errors) {
            out.push(attachment);
        }
    }
    out
}

/// One attachment's settings (`at` names it in messages), to `report`.
fn parse_attachment(at: &str, a: AttachmentFields, report: String, errors: &mut Vec<String>) -> Option<Attachment> {
    let field = |name: &str| format!("{at}.{name}");
    let unit_scale = match a.unit_scale.as_deref() {
        None => Some(UnitScale::PerUnit),
        Some(s) => UnitScale::ALL.into_iter().find(|u| u.as_str() == s).or_else(|| {
            let names: Vec<&str> = UnitScale::ALL.iter().map(|u| u.as_str()).collect();
            errors.push(format!("{} must be one of {}, got {s:?}", field("unit_scale"), names.join(", ")));
            None
        }),
    };
    let calculation_type = match a.calculation_type.as_deref() {
        None => Some(CalculationType::UnitCost),
        Some(s) => {
            CalculationType::parse(s).map_err(|e| errors.push(format!("{}: {e}", field("calculation_type")))).ok()
        }
    };
    if a.label_filters.as_ref().is_some_and(|f| !f.is_null() && f.as_object().is_none_or(|o| !o.is_empty())) {
        errors.push(format!(
            "{}: costd's values have one label each; filter them with label_filter",
            field("label_filters")
        ));
    }
    let label = a.label.map(|l| l.trim().to_string()).filter(|l| !l.is_empty());
    if label.as_ref().is_some_and(|l| l.chars().count() > MAX_TEXT) {
        errors.push(format!("{} may have at most {MAX_TEXT} characters", field("label")));
    }
    let label_filter = a.label_filter.filter(|f| !f.is_empty());
    Some(Attachment {
        cost_report_token: report,
        unit_scale: unit_scale?,
        calculation_type: calculation_type?,
        label,
        label_filter,
    })
}

/// A cost report's `business_metric_tokens_with_metadata` (the same attachments, named from the report's
/// side): (metric token, the attachment to `report`), every problem named by its index.
pub fn parse_report_metrics(
    report: &str,
    list: Vec<serde_json::Value>,
) -> Result<Vec<(String, Attachment)>, Vec<String>> {
    let field = "business_metric_tokens_with_metadata";
    let mut errors = Vec::new();
    if list.len() > MAX_ATTACHMENTS {
        return Err(vec![format!("{field} may hold at most {MAX_ATTACHMENTS} metrics")]);
    }
    let mut out: Vec<(String, Attachment)> = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        let at = format!("{field}[{i}]");
        let token =
            item.get("business_metric_token").and_then(|t| t.as_str()).map(str::trim).unwrap_or_default().to_string();
        if crate::token::BusinessMetricToken::parse(&token).is_none() {
            errors.push(format!("{at}.business_metric_token must be a business metric token, got {token:?}"));
            continue;
        }
        if out.iter().any(|(t, _)| *t == token) {
            errors.push(format!("{at}.business_metric_token: {token} is attached twice"));
        }
        let fields: AttachmentFields = match serde_json::from_value(item) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("{at}: {e}"));
                continue;
            }
        };
        if let Some(attachment) = parse_attachment(&at, fields, report.to_string(), &mut errors) {
            out.push((token, attachment));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A day as values give it: `2024-03-01`, or midnight UTC of it as a timestamp (`2024-03-01T00:00:00Z`,
/// `2024-03-01+00:00`). Values are daily, so another time of day is refused rather than moved.
pub fn parse_day(text: &str) -> Result<NaiveDate, String> {
    let text = text.trim();
    let day = text.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let rest = text.get(10..).unwrap_or_default();
    let midnight = ["", "+00:00", "T00:00:00Z", "T00:00:00+00:00", "T00:00:00", " 00:00:00", "T00:00:00.000Z"];
    match day {
        Some(d) if midnight.contains(&rest) => Ok(d),
        Some(_) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) if t.with_timezone(&Utc).time() == chrono::NaiveTime::MIN => Ok(t.with_timezone(&Utc).date_naive()),
            _ => Err(format!("date must be a day like 2024-03-01 (values are daily), got {text:?}")),
        },
        None if text.is_empty() => Err("date is required".into()),
        None => Err(format!("date must be a day like 2024-03-01, got {text:?}")),
    }
}

/// A value's amount: exact, at most [`MAX_VALUE_PLACES`] places, below [`MAX_VALUE`].
fn parse_amount(parsed: Result<Decimal, String>, text: &str) -> Result<Decimal, String> {
    match parsed {
        Ok(a) if a.abs() >= Decimal::from(MAX_VALUE) => Err(format!("amount must be below {MAX_VALUE}, got {a}")),
        Ok(a) if a.normalize().scale() > MAX_VALUE_PLACES => {
            Err(format!("amount may have at most {MAX_VALUE_PLACES} decimal places, got {a}"))
        }
        Ok(a) => Ok(a.normalize()),
        Err(_) if text.is_empty() => Err("amount is required".into()),
        Err(_) => Err(format!("amount must be a decimal number like 1250.5, got {text:?}")),
    }
}

fn parse_label(text: Option<&str>) -> Result<Option<String>, String> {
    match text.map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) if l.chars().count() > MAX_TEXT => Err(format!("label may have at most {MAX_TEXT} characters")),
        other => Ok(other.map(str::to_string)),
    }
}

fn value(
    date: Result<NaiveDate, String>,
    amount: Result<Decimal, String>,
    label: Result<Option<String>, String>,
) -> Result<MetricValue, Vec<String>> {
    match (date, amount, label) {
        (Ok(date), Ok(amount), Ok(label)) => Ok(MetricValue { date, amount, label }),
        (d, a, l) => Err([d.err(), a.err(), l.err()].into_iter().flatten().collect()),
    }
}

fn clash(v: &MetricValue) -> String {
    match &v.label {
        Some(l) => format!("{} with label {l:?}", v.date),
        None => format!("{} without a label", v.date),
    }
}

fn key(v: &MetricValue) -> (NaiveDate, Option<String>) {
    (v.date, v.label.clone())
}

/// The values of a request's `field` (`values`, `forecasted_values`), each problem named by its index.
fn parse_values(field: &str, list: Vec<ValueFields>) -> Result<Vec<MetricValue>, Vec<String>> {
    if list.len() > MAX_VALUES {
        return Err(vec![format!("{field} may hold at most {MAX_VALUES} values; upload more with values.csv")]);
    }
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, v) in list.into_iter().enumerate() {
        let text = match &v.amount {
            Some(serde_json::Value::String(s)) => s.trim().to_string(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let parsed = match &v.amount {
            Some(a) => crate::decimal::from_json("amount", a),
            None => Err(String::new()),
        };
        match value(
            parse_day(v.date.as_deref().unwrap_or_default()),
            parse_amount(parsed, &text),
            parse_label(v.label.as_deref()),
        ) {
            Ok(value) => match seen.insert(key(&value), i) {
                Some(first) => errors.push(format!("{field}[{i}]: {} is already {field}[{first}]", clash(&value))),
                None => out.push(value),
            },
            Err(problems) => errors.extend(problems.into_iter().map(|p| format!("{field}[{i}].{p}"))),
        }
        if errors.len() >= crate::csv_table::MAX_ERRORS {
            errors.push("(more errors not shown)".into());
            break;
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The columns of a values file, in the order a file without a header gives them.
pub const CSV_COLUMNS: [&str; 3] = ["date", "amount", "label"];

/// The values of a CSV file's rows (`date,amount,label`, the label optional; a header row optional), or
/// every bad line. A file may not give one day and label twice.
pub fn parse_csv_rows(rows: impl IntoIterator<Item = (u64, Vec<String>)>) -> Result<Vec<MetricValue>, Vec<String>> {
    const COLUMNS: [Column; 3] = [
        Column { name: CSV_COLUMNS[0], aliases: &[], required: true },
        Column { name: CSV_COLUMNS[1], aliases: &["value"], required: true },
        Column { name: CSV_COLUMNS[2], aliases: &[], required: false },
    ];
    parse_rows(
        &Table { columns: &COLUMNS, max_rows: MAX_VALUES, items: "values" },
        rows,
        |c| {
            let amount = c.get(1);
            value(
                parse_day(c.get(0)),
                parse_amount(crate::decimal::parse("amount", amount), amount),
                parse_label(Some(c.get(2))),
            )
        },
        key,
        clash,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(lines: &[&str]) -> Vec<(u64, Vec<String>)> {
        lines.iter().enumerate().map(|(i, l)| (i as u64 + 1, l.split(',').map(str::to_string).collect())).collect()
    }

    #[test]
    fn a_values_file_with_or_without_labels_and_header_is_read_exactly() {
        let v = parse_csv_rows(rows(&[
            "date,amount,label",
            "2024-03-01,1250.50,web",
            "2024-03-01,7,",
            "2024-03-02T00:00:00Z,0.000000000001,web",
        ]))
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].amount.to_string(), "1250.5");
        assert_eq!(v[1].label, None);
        assert_eq!(v[2].date, NaiveDate::from_ymd_opt(2024, 3, 2).unwrap());
        assert_eq!(v[2].amount.to_string(), "0.000000000001");
        let plain = parse_csv_rows(rows(&["2024-03-01,3"])).unwrap();
        assert_eq!(plain[0].label, None);
    }

    #[test]
    fn every_bad_line_is_named() {
        let e = parse_csv_rows(rows(&[
            "date,amount,label",
            "2024-03-01T12:00:00Z,1,a",
            "2024-03-02,1e20,a",
            "2024-03-03,0.0000000000001,a",
            "2024-03-04,x,a",
            "2024-03-05,1,a",
            "2024-03-05,2,a",
        ]))
        .unwrap_err();
        assert_eq!(
            e,
            vec![
                "line 2: date must be a day like 2024-03-01 (values are daily), got \"2024-03-01T12:00:00Z\"",
                "line 3: amount must be below 1000000000000, got 100000000000000000000",
                "line 4: amount may have at most 12 decimal places, got 0.0000000000001",
                "line 5: amount must be a decimal number like 1250.5, got \"x\"",
                "line 7: 2024-03-05 with label \"a\" is already on line 6",
            ]
        );
    }

    #[test]
    fn a_request_names_each_problem_by_field_and_refuses_pulls_from_other_services() {
        let fields: MetricFields = serde_json::from_value(json!({
            "title": " ",
            "cost_report_tokens_with_metadata": [
                {"cost_report_token": "rprt_1", "unit_scale": "per_dozen"},
                {"cost_report_token": "rprt_2", "calculation_type": "usage_unit_cost"},
                {"unit_scale": "per_unit"}
            ],
            "values": [{"date": "2024-01-01", "amount": "x"}, {"date": "2024-01-02T00:00:00Z", "amount": 0.1}],
            "datadog_metric_fields": {"query": "sum:x"}
        }))
        .unwrap();
        let e = fields.parse(true).unwrap_err();
        assert!(e[0].starts_with("datadog_metric_fields: costd imports"), "{e:?}");
        assert_eq!(e[1], "title must not be empty");
        assert!(e[2].starts_with("cost_report_tokens_with_metadata[0].unit_scale must be one of per_unit"), "{e:?}");
        assert!(
            e[3].starts_with("cost_report_tokens_with_metadata[1].calculation_type: usage_unit_cost is not"),
            "{e:?}"
        );
        assert_eq!(e[4], "cost_report_tokens_with_metadata[2].cost_report_token is required");
        assert_eq!(e[5], "values[0].amount must be a decimal number like 1250.5, got \"x\"");
        assert_eq!(e.len(), 6);
    }

    #[test]
    fn defaults_are_per_unit_unit_costs_and_a_json_number_keeps_its_digits() {
        let fields: MetricFields = serde_json::from_value(json!({
            "title": "Requests",
            "cost_report_tokens_with_metadata": [{"cost_report_token": "rprt_1", "label_filter": ["web", ""]}],
            "values": [{"date": "2024-01-02", "amount": 12.000000000001, "label": "web"}]
        }))
        .unwrap();
        let change = fields.parse(true).unwrap();
        let a = &change.attachments.unwrap()[0];
        assert_eq!((a.unit_scale, a.calculation_type), (UnitScale::PerUnit, CalculationType::UnitCost));
        assert!(a.counts(Some("web")) && a.counts(None) && !a.counts(Some("api")));
        assert_eq!(change.values.unwrap()[0].amount.to_string(), "12.000000000001");
        assert_eq!(change.forecasted_values, None);
    }
}
