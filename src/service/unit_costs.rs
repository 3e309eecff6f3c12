//! A cost report's unit costs (`GET /v2/unit_costs`, docs/unit-costs.md): for each business metric attached
//! to the report and each date bin of the window, the report's cost (its [`report_series`], so the same
//! filters, rules, settings and currency as `/v2/costs`) against the metric's sum of the values the
//! attachment counts.
//!
//! Sums are exact; the one rounding is the final division, half away from zero to 18 places
//! (`engine::amounts::divided_by_fraction`). A bin in which the metric has no values, or sums to zero, has
//! no unit cost (there is nothing to divide by) and is left out rather than shown as zero or infinity; a bin
//! with values but no costs has a unit cost of 0.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::engine::amounts::divided_by_fraction;
use crate::model::amount::Amount;
use crate::model::business_metric::{Attachment, BusinessMetric, CalculationType, ValueKind};
use crate::model::cost_query::DateBin;
use crate::model::token::AccountToken;
use crate::service::costs::CostsContext;
use crate::service::series::{report_series, By, SeriesQuery};
use crate::store::ValueRange;

use super::error::{Result, ServiceError};
use super::reports;

/// What `GET /v2/unit_costs` asks: the report, and what overrides its window and date bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCostQuery {
    pub cost_report_token: String,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub date_bin: Option<DateBin>,
    /// Newest bin first (Vantage's default).
    pub descending: bool,
}

/// One bin's unit cost of one metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCost {
    pub metric: BusinessMetric,
    pub attachment: Attachment,
    /// The bin's first day.
    pub date: NaiveDate,
    /// What `calculation_type` makes of the cost and the metric (a percentage for a gross margin).
    pub unit_cost: Amount,
    /// The metric's sum over the bin.
    pub metric_amount: Decimal,
    /// The cost the unit cost was made from, in `currency`.
    pub cost: Amount,
    pub currency: String,
}

/// What `calculation` makes of a bin's `cost` and metric `sum` at `scale` (a power of ten); `None` when the
/// sum is zero and the calculation divides by it.
pub fn calculate(calculation: CalculationType, exponent: u32, cost: Amount, sum: Decimal) -> Result<Option<Amount>> {
    let overflow =
        || ServiceError::unprocessable(format!("a unit cost of {cost} per {sum} does not fit Decimal128(38, 18)"));
    if sum.is_zero() && calculation != CalculationType::RawBusinessMetric {
        return Ok(None);
    }
    let amount = match calculation {
        CalculationType::RawBusinessMetric => Amount::from_decimal(sum).ok_or_else(overflow)?,
        CalculationType::UnitCost => {
            // cost ÷ (sum ÷ 10^exponent): the divisor is exact (a value has at most 12 places, plus 9).
            let mut divisor = sum;
            divisor.set_scale(sum.scale() + exponent).map_err(|_| overflow())?;
            let unscaled = divided_by_fraction(cost.unscaled(), divisor).map_err(|_| overflow())?;
            Amount::from_unscaled(unscaled).ok_or_else(overflow)?
        }
        CalculationType::GrossMargin => {
            // (sum − cost) × 100 ÷ sum: the percentage of the metric (a revenue) the cost leaves.
            let revenue = Amount::from_decimal(sum).ok_or_else(overflow)?;
            let margin = revenue.checked_sub(cost).and_then(|m| m.times(Decimal::ONE_HUNDRED)).ok_or_else(overflow)?;
            let unscaled = divided_by_fraction(margin.unscaled(), sum).map_err(|_| overflow())?;
            Amount::from_unscaled(unscaled).ok_or_else(overflow)?
        }
    };
    Ok(Some(amount))
}

/// Every unit cost of the report in the window, by date (newest first unless asked otherwise), then by the
/// metrics' order. A report with no metric attached has none (and runs no costs query).
#[tracing::instrument(skip(ctx), fields(account = %account))]
pub async fn unit_costs(
    ctx: &CostsContext,
    account: &AccountToken,
    query: &UnitCostQuery,
    today: NaiveDate,
) -> Result<Vec<UnitCost>> {
    let store = ctx.store.as_ref();
    let report = &query.cost_report_token;
    let defaults = reports::report_defaults(store, account, report, today).await?;
    let (start, end) = (query.start.unwrap_or(defaults.start), query.end.unwrap_or(defaults.end));
    if start > end {
        return Err(ServiceError::invalid(format!("start_date {start} is after end_date {end}")));
    }
    let bin = query.date_bin.unwrap_or(defaults.date_bin);
    let attached: Vec<(BusinessMetric, Attachment)> = store
        .list_business_metrics(account)
        .await?
        .into_iter()
        .filter_map(|m| {
            let a = m.attachments.iter().find(|a| &a.cost_report_token == report)?.clone();
            Some((m, a))
        })
        .collect();
    if attached.is_empty() {
        return Ok(Vec::new());
    }
    let series =
        report_series(ctx, account, report, today, &SeriesQuery { start, end, by: By::Whole, usage_only: false })
            .await?;
    let costs = series.sum_by("a unit cost's cost", |p| Some(bin.start_of(p.day)))?;
    let mut out = Vec::new();
    for (metric, attachment) in attached {
        let range = ValueRange { start: Some(start), end: Some(end), label: None };
        let values = store.metric_values(account, &metric.token, ValueKind::Actual, &range).await?.unwrap_or_default();
        let mut sums: BTreeMap<NaiveDate, Decimal> = BTreeMap::new();
        for v in values.iter().filter(|v| attachment.counts(v.label.as_deref())) {
            let slot = sums.entry(bin.start_of(v.date)).or_default();
            *slot = slot
                .checked_add(v.amount)
                .ok_or_else(|| ServiceError::unprocessable("a metric's sum does not fit a decimal"))?;
        }
        for (date, sum) in sums {
            let cost = costs.get(&date).copied().unwrap_or(Amount::ZERO);
            let exponent = attachment.unit_scale.exponent();
            if let Some(unit_cost) = calculate(attachment.calculation_type, exponent, cost, sum)? {
                out.push(UnitCost {
                    metric: metric.clone(),
                    attachment: attachment.clone(),
                    date,
                    unit_cost,
                    metric_amount: sum.normalize(),
                    cost,
                    currency: series.currency.clone(),
                });
            }
        }
    }
    // Stable: within a date the metrics keep their order.
    if query.descending {
        out.sort_by_key(|u| std::cmp::Reverse(u.date));
    } else {
        out.sort_by_key(|u| u.date);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn amount(s: &str) -> Amount {
        Amount::parse("a", s).unwrap()
    }

    #[test]
    fn a_unit_cost_divides_once_and_rounds_half_away_from_zero() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let unit = |cost: &str, sum: &str, e: u32| {
            calculate(CalculationType::UnitCost, e, amount(cost), d(sum)).unwrap().unwrap().to_string()
        };
        assert_eq!(unit("100", "3", 0), "33.333333333333333333");
        assert_eq!(unit("200", "3", 0), "66.666666666666666667");
        assert_eq!(unit("-200", "3", 0), "-66.666666666666666667");
        // Per thousand: 12 ÷ (4000 ÷ 1000).
        assert_eq!(unit("12", "4000", 3), "3.0");
        assert_eq!(unit("1", "0.000000001", 9), "1000000000000000000.0");
        // A unit cost past Decimal128(38, 18) is an error, never a wrapped amount.
        let huge = calculate(CalculationType::UnitCost, 9, amount("1"), d("0.000000000001"));
        assert!(matches!(huge, Err(ServiceError::Unprocessable(_))), "{huge:?}");
        assert_eq!(calculate(CalculationType::UnitCost, 0, amount("5"), Decimal::ZERO).unwrap(), None);
        let margin = calculate(CalculationType::GrossMargin, 0, amount("30"), d("120")).unwrap().unwrap();
        assert_eq!(margin.to_string(), "75.0");
        let raw = calculate(CalculationType::RawBusinessMetric, 6, amount("30"), d("0")).unwrap().unwrap();
        assert_eq!(raw, Amount::ZERO);
    }

    proptest! {
        /// A unit cost times the units it is per gives back the cost to within the rounding of one division.
        #[test]
        fn a_unit_cost_times_the_units_is_the_cost(cost in -10i128.pow(20)..10i128.pow(20), units in 1i64..1_000_000_000_000, places in 0u32..6, exponent in prop::sample::select(vec![0u32, 2, 3, 6, 9])) {
            let cost = Amount::from_unscaled(cost).unwrap();
            let sum = Decimal::new(units, places);
            let unit = calculate(CalculationType::UnitCost, exponent, cost, sum).unwrap().unwrap();
            // unit × units (= unit × sum × 10^places), against cost × 10^(places + e), both unscaled.
            let lhs = i256(unit.unscaled()).wrapping_mul(i256(units as i128));
            let rhs = i256(cost.unscaled()).wrapping_mul(i256(10i128.pow(places + exponent)));
            // |unit − exact| ≤ ½ of 10^-18, so |unit × units − cost × 10^k| ≤ units ÷ 2 (all unscaled).
            let diff = lhs.wrapping_sub(rhs).wrapping_abs();
            prop_assert!(diff.wrapping_mul(i256(2)) <= i256(units as i128), "unit {unit} sum {sum} cost {cost}");
        }
    }

    fn i256(x: i128) -> arrow::datatypes::i256 {
        arrow::datatypes::i256::from_i128(x)
    }
}
