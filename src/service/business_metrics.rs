//! Business metrics (`/v2/business_metrics`, docs/unit-costs.md): a metric, the cost reports it is attached
//! to and its daily values, written whole or not at all (a bad value or an unknown report leaves
//! everything as it was); the values the API lists, by day or month. What a report makes of them is
//! [`super::unit_costs`].

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use crate::model::business_metric::{
    parse_csv_rows, BusinessMetric, MetricFields, MetricValue, ValueKind, MAX_METRICS,
};
use crate::model::token::{AccountToken, BusinessMetricToken};
use crate::store::{MetricWrite, PageRequest, Paged, Store, ValueRange};

use super::error::{Result, ServiceError};

fn not_found() -> ServiceError {
    ServiceError::NotFound("business metric")
}

/// What a write's outcome means to the caller.
fn written(write: MetricWrite) -> Result<BusinessMetric> {
    match write {
        MetricWrite::Done(m) => Ok(m),
        MetricWrite::NotFound => Err(not_found()),
        MetricWrite::TooMany => Err(ServiceError::Unprocessable(vec![format!(
            "an account may have at most {MAX_METRICS} business metrics"
        )])),
        MetricWrite::UnknownReport(token) => Err(ServiceError::invalid(format!(
            "cost_report_tokens_with_metadata: {token} is not a cost report of this account"
        ))),
    }
}

/// A page of the account's metrics, oldest first; with `q`, those whose title contains it (any case).
#[tracing::instrument(skip(store))]
pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    q: Option<&str>,
    page: PageRequest,
) -> Result<Paged<BusinessMetric>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
    let all = store.list_business_metrics(account).await?;
    let found = all.into_iter().filter(|m| q.as_ref().is_none_or(|q| m.title.to_lowercase().contains(q))).collect();
    Ok(Paged::of(found, page))
}

#[tracing::instrument(skip(store, fields))]
pub async fn create(
    store: &dyn Store,
    account: &AccountToken,
    created_by: &str,
    fields: MetricFields,
) -> Result<BusinessMetric> {
    let change = fields.parse(true).map_err(ServiceError::Invalid)?;
    written(store.create_business_metric(account, Some(created_by), &change).await?)
}

pub async fn get(store: &dyn Store, account: &AccountToken, token: &BusinessMetricToken) -> Result<BusinessMetric> {
    store.get_business_metric(account, token).await?.ok_or_else(not_found)
}

/// Changes the fields sent; a list sent (attachments, values, forecasted values) replaces the whole list.
#[tracing::instrument(skip(store, fields))]
pub async fn update(
    store: &dyn Store,
    account: &AccountToken,
    token: &BusinessMetricToken,
    fields: MetricFields,
) -> Result<BusinessMetric> {
    let change = fields.parse(false).map_err(ServiceError::Invalid)?;
    written(store.update_business_metric(account, token, &change).await?)
}

#[tracing::instrument(skip(store))]
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &BusinessMetricToken) -> Result<()> {
    if store.delete_business_metric(account, token).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// Reads `csv` (`date,amount,label`, the label and a header row optional) and adds its values to the
/// metric (historical, or `forecasted`), each replacing the value of its day and label. A file with any
/// bad row stores nothing and names every bad line (422).
#[tracing::instrument(skip(store, csv), fields(bytes = csv.len()))]
pub async fn upload_csv(
    store: &dyn Store,
    account: &AccountToken,
    token: &BusinessMetricToken,
    csv: &[u8],
    forecasted: bool,
) -> Result<BusinessMetric> {
    // The metric first: a file for a metric that does not exist is a 404 whatever it holds.
    get(store, account, token).await?;
    let rows = super::csv_rows(csv, crate::model::business_metric::MAX_VALUES).map_err(ServiceError::Unprocessable)?;
    let values = parse_csv_rows(rows).map_err(ServiceError::Unprocessable)?;
    let kind = if forecasted { ValueKind::Forecast } else { ValueKind::Actual };
    if !store.put_metric_values(account, token, kind, &values).await? {
        return Err(not_found());
    }
    get(store, account, token).await
}

/// How `GET …/values` sums values (`date_bin`): per day, or per month (each label apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueBin {
    Day,
    Month,
}

/// Which values `GET …/values` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValuesQuery {
    pub start: Option<NaiveDate>,
    /// Values with any of these labels (`label_values`); empty: every value.
    pub labels: Vec<String>,
    /// `None`: the values as stored.
    pub bin: Option<ValueBin>,
}

/// A page of the metric's values (historical, or forecast), newest day first.
#[tracing::instrument(skip(store))]
pub async fn values(
    store: &dyn Store,
    account: &AccountToken,
    token: &BusinessMetricToken,
    kind: ValueKind,
    query: &ValuesQuery,
    page: PageRequest,
) -> Result<Paged<MetricValue>> {
    let range = ValueRange { start: query.start, ..ValueRange::default() };
    let found = store.metric_values(account, token, kind, &range).await?.ok_or_else(not_found)?;
    let chosen = found
        .into_iter()
        .filter(|v| query.labels.is_empty() || v.label.as_ref().is_some_and(|l| query.labels.contains(l)));
    let mut listed: Vec<MetricValue> = match query.bin {
        None | Some(ValueBin::Day) => chosen.collect(),
        Some(ValueBin::Month) => {
            let mut sums: BTreeMap<(NaiveDate, Option<String>), Decimal> = BTreeMap::new();
            for v in chosen {
                let month = v.date.with_day(1).expect("every month has a first day");
                let slot = sums.entry((month, v.label)).or_default();
                *slot = slot
                    .checked_add(v.amount)
                    .ok_or_else(|| ServiceError::unprocessable("a month's sum of values does not fit a decimal"))?;
            }
            sums.into_iter()
                .map(|((date, label), amount)| MetricValue { date, amount: amount.normalize(), label })
                .collect()
        }
    };
    // Newest first, as Vantage lists them; labels in order within a day.
    listed.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.label.cmp(&b.label)));
    Ok(Paged::of(listed, page))
}

/// Deletes the metric's values in `range` (historical, or forecast); answers how many.
#[tracing::instrument(skip(store))]
pub async fn delete_values(
    store: &dyn Store,
    account: &AccountToken,
    token: &BusinessMetricToken,
    kind: ValueKind,
    range: &ValueRange,
) -> Result<u64> {
    if let (Some(start), Some(end)) = (range.start, range.end) {
        if start > end {
            return Err(ServiceError::invalid(format!("start_date {start} is after end_date {end}")));
        }
    }
    store.delete_metric_values(account, token, kind, range).await?.ok_or_else(not_found)
}

/// A page of the labels the metric's values carry, sorted.
#[tracing::instrument(skip(store))]
pub async fn labels(
    store: &dyn Store,
    account: &AccountToken,
    token: &BusinessMetricToken,
    page: PageRequest,
) -> Result<Paged<String>> {
    Ok(Paged::of(store.metric_labels(account, token).await?.ok_or_else(not_found)?, page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::business_metric::MetricChange;

    #[test]
    fn an_unknown_report_names_the_field_and_too_many_says_the_limit() {
        let ServiceError::Invalid(m) = written(MetricWrite::UnknownReport("rprt_x".into())).unwrap_err() else {
            panic!()
        };
        assert_eq!(m, vec!["cost_report_tokens_with_metadata: rprt_x is not a cost report of this account"]);
        let ServiceError::Unprocessable(m) = written(MetricWrite::TooMany).unwrap_err() else { panic!() };
        assert!(m[0].contains("at most 200"), "{m:?}");
        assert!(matches!(written(MetricWrite::NotFound), Err(ServiceError::NotFound("business metric"))));
    }

    #[test]
    fn a_change_sent_empty_changes_nothing() {
        assert_eq!(MetricFields::default().parse(false).unwrap(), MetricChange::default());
    }
}
