//! One report series: a cost report's costs over a window of days, by day and by the groups asked for, read
//! through the costs query (the report's filters, saved filters, settings and workspace; the result cache),
//! with one currency policy and checked sums. Budgets, cost alerts, report summaries, anomalies and the
//! forecast all read a report's costs through [`report_series`], so they agree with `/v2/costs` to the digit
//! and refuse what it refuses: costs in several currencies are a 422 in `/v2/costs`' words
//! ([`CostsAnswer::single_currency`](crate::service::costs::CostsAnswer::single_currency)), and a sum that does
//! not fit Decimal128(38, 18) is an error, never a wrapped or dropped amount.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::amount::Amount;
use crate::model::cost_query::{Aggregate, ColumnGrouping, CostQuery, DateBin, Grouping};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::model::vql::Filter;
use crate::service::costs::{costs, CostsContext};
use crate::service::{reports, ServiceError};

/// How a series is split besides by day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum By {
    /// The whole report.
    Whole,
    /// The report's own groupings (none named: the whole).
    ReportGroups,
    /// Provider and service (anomalies, forecasts).
    ProviderService,
}

/// Which of a report's costs a series reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesQuery {
    /// First and last day, inclusive.
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub by: By,
    /// Only `Usage` charges (anomalies: purchases, tax and credits are not anomalies).
    pub usage_only: bool,
}

/// One day's cost of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub day: NaiveDate,
    /// (grouping name, value), in the grouping's order; empty for [`By::Whole`].
    pub group: Vec<(String, String)>,
    pub amount: Amount,
}

/// A report's costs by day (and group), in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub currency: String,
    pub points: Vec<Point>,
}

impl Series {
    /// The points summed by `key` (points it maps to `None` are left out), exactly: a sum past
    /// Decimal128(38, 18) is a 422 naming `what`.
    pub fn sum_by<K: Ord>(
        &self,
        what: &str,
        key: impl Fn(&Point) -> Option<K>,
    ) -> Result<BTreeMap<K, Amount>, ServiceError> {
        let mut out: BTreeMap<K, Amount> = BTreeMap::new();
        for p in &self.points {
            let Some(k) = key(p) else { continue };
            let slot = out.entry(k).or_insert(Amount::ZERO);
            *slot = slot
                .checked_add(p.amount)
                .ok_or_else(|| ServiceError::unprocessable(format!("{what} does not fit Decimal128(38, 18)")))?;
        }
        Ok(out)
    }

    /// Sums by `key` into day series of unscaled amounts (what the detector and the forecast read).
    pub fn daily<K: Ord>(
        &self,
        what: &str,
        key: impl Fn(&Point) -> Option<K>,
    ) -> Result<BTreeMap<K, BTreeMap<NaiveDate, i128>>, ServiceError> {
        let mut out: BTreeMap<K, BTreeMap<NaiveDate, i128>> = BTreeMap::new();
        for ((k, day), amount) in self.sum_by(what, |p| key(p).map(|k| (k, p.day)))? {
            out.entry(k).or_default().insert(day, amount.unscaled());
        }
        Ok(out)
    }
}

/// The costs of `report` (a cost report token of `account`) as `query` asks, on `today` (which decides
/// nothing but the report's saved filters' relative dates).
#[tracing::instrument(skip(ctx), fields(account = %account))]
pub async fn report_series(
    ctx: &CostsContext,
    account: &AccountToken,
    report: &str,
    today: NaiveDate,
    query: &SeriesQuery,
) -> Result<Series, ServiceError> {
    let store = ctx.store.as_ref();
    let defaults = reports::report_defaults(store, account, report, today).await?;
    let groupings: Vec<Grouping> = match query.by {
        By::Whole => Vec::new(),
        By::ReportGroups => {
            let r = reports::get(store, account, ViewKind::CostReport, report).await?;
            reports::report_definition(&r)?.grouping_list().unwrap_or_default()
        }
        By::ProviderService => vec![ColumnGrouping::Provider.into(), ColumnGrouping::Service.into()],
    };
    let mut filters = defaults.filters;
    if query.usage_only {
        filters.push(
            Filter::parse("costs.charge_type = 'Usage'").map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?,
        );
    }
    let cost_query = CostQuery {
        start: query.start,
        end: query.end,
        groupings,
        date_bin: DateBin::Day,
        descending: false,
        settings: defaults.settings.engine(),
        aggregate: Aggregate::Cost,
        filter: Filter::all(filters),
        segment: defaults.segment,
    };
    let answer = costs(ctx, account, defaults.workspace.as_deref(), &cost_query).await?;
    let currency = answer.single_currency()?;
    let points = answer
        .result
        .rows
        .iter()
        .map(|row| Point {
            day: row.accrued_at,
            group: row.dimensions.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect(),
            amount: row.amount,
        })
        .collect();
    Ok(Series { currency, points })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(day: &str, group: &str, amount: &str) -> Point {
        Point {
            day: day.parse().unwrap(),
            group: vec![("service".into(), group.into())],
            amount: Amount::parse("a", amount).unwrap(),
        }
    }

    #[test]
    fn sums_are_exact_and_an_overflow_is_an_error_not_a_wrapped_amount() {
        let big = "90000000000000000000";
        let series = Series {
            currency: "USD".into(),
            points: vec![
                point("2026-01-01", "EC2", "0.1"),
                point("2026-01-02", "EC2", "0.2"),
                point("2026-01-01", "S3", big),
            ],
        };
        let by_service = series.sum_by("x", |p| Some(p.group[0].1.clone())).unwrap();
        assert_eq!(by_service["EC2"], Amount::parse("a", "0.3").unwrap());
        let daily = series.daily("x", |p| Some(p.group[0].1.clone())).unwrap();
        assert_eq!(daily["EC2"].len(), 2);
        let twice = Series { points: [series.points.clone(), series.points.clone()].concat(), ..series };
        match twice.sum_by("a budget's actual", |_| Some(())) {
            Err(ServiceError::Unprocessable(m)) => assert!(m[0].contains("a budget's actual"), "{m:?}"),
            other => panic!("{other:?}"),
        }
    }
}
