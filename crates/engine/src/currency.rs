//! Currency conversion in the costs plan (docs/currency.md): after the rules, each cost not in the
//! workspace's currency becomes it, row by row, by the rate in effect on its day
//! ([`costd_model::exchange_rate::Conversion`]): `amount × rate` (or `÷ rate` for a rate given the other way),
//! rounded half away from zero to 18 places once. Sums, splits and filters then see converted amounts only,
//! so a total is the sum of its rows converted, whatever the grouping.
//!
//! A cost whose currency has no rate in effect fails the query with [`NO_RATE`]'s sentence naming the
//! currencies and the day (a 422): never a rate of 1.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Decimal128Array};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{cast, col, create_udf, lit, ColumnarValue, Expr, Volatility};
use rust_decimal::Decimal;

use costd_model::exchange_rate::{Conversion, Direction, PairRates, RateDate};

use super::ingest::parse::date_from_days;
use super::schema::{amount_type, col as c, AMOUNT_PRECISION, AMOUNT_SCALE};

/// How the error of a cost without a rate starts (what `costs::CostError` recognises).
pub const NO_RATE: &str = "no exchange rate";

/// `costs` (of the days `window`) with every amount in `conversion.to` and the currency column saying so.
pub fn convert(costs: DataFrame, conversion: &Conversion, window: (Expr, Expr)) -> Result<DataFrame, DataFusionError> {
    let currency = cast(col(c::CURRENCY), DataType::Utf8);
    // The plan may compute this column for rows its window filter then drops (the functions are pure, so
    // DataFusion is free to): a day outside the window is left as it is, so it can never fail the query.
    let outside = col(c::ACCRUED_AT).not_between(window.0, window.1);
    let mut branches =
        vec![(outside, col(c::AMOUNT)), (currency.clone().eq(lit(conversion.to.clone())), col(c::AMOUNT))];
    for pair in &conversion.pairs {
        let converted =
            pair_udf(pair.clone(), &conversion.to, conversion.date).call(vec![col(c::AMOUNT), col(c::ACCRUED_AT)]);
        branches.push((currency.clone().eq(lit(pair.from.clone())), converted));
    }
    let missing = missing_udf(conversion.clone()).call(vec![col(c::AMOUNT), currency, col(c::ACCRUED_AT)]);
    let amount = super::allocation::case(branches, missing);
    costs.with_column(c::AMOUNT, amount)?.with_column(c::CURRENCY, lit(conversion.to.clone()))
}

/// (amount, day) → the amount converted from `pair.from` by the rate in effect on the day.
fn pair_udf(pair: PairRates, to: &str, date: RateDate) -> datafusion::logical_expr::ScalarUDF {
    // What a day without a rate says.
    let unconverted = Conversion { to: to.to_string(), date, pairs: Vec::new() };
    create_udf(
        // The name says which conversion: two of them are never taken for one function.
        &format!("convert_{}", pair.from),
        vec![amount_type(), DataType::Date32],
        amount_type(),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (amounts, days) = (arrays[0].as_primitive::<Decimal128Type>(), arrays[1].as_primitive::<Date32Type>());
            let mut out = Vec::with_capacity(amounts.len());
            // Rows come in runs of one day: the rate of the last day looked up is kept.
            let mut last: Option<(i32, Decimal)> = None;
            for i in 0..amounts.len() {
                if amounts.is_null(i) || days.is_null(i) {
                    out.push(None);
                    continue;
                }
                let day = days.value(i);
                let rate = match last {
                    Some((d, rate)) if d == day => rate,
                    _ => {
                        let on = date_from_days(day);
                        let rate = pair
                            .on(date.rate_day(on))
                            .ok_or_else(|| DataFusionError::Execution(unconverted.missing(&pair.from, on)))?;
                        last = Some((day, rate));
                        rate
                    }
                };
                let amount = amounts.value(i);
                out.push(Some(match pair.direction {
                    Direction::Multiply => super::amounts::scaled_by_fraction(amount, rate)?,
                    Direction::Divide => super::amounts::divided_by_fraction(amount, rate)?,
                }));
            }
            let array = Decimal128Array::from(out).with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)?;
            Ok(ColumnarValue::Array(Arc::new(array)))
        }),
    )
}

/// (amount, currency, day) for costs in a currency no rate links to the target: an error at the first row.
fn missing_udf(conversion: Conversion) -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        "convert_without_rate",
        vec![amount_type(), DataType::Utf8, DataType::Date32],
        amount_type(),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let amounts = arrays[0].as_primitive::<Decimal128Type>();
            let (currencies, days) = (arrays[1].as_string::<i32>(), arrays[2].as_primitive::<Date32Type>());
            if let Some(i) = (0..amounts.len()).find(|&i| !amounts.is_null(i)) {
                let currency = if currencies.is_null(i) { "(no currency)" } else { currencies.value(i) };
                let day = date_from_days(if days.is_null(i) { 0 } else { days.value(i) });
                return Err(DataFusionError::Execution(conversion.missing(currency, day)));
            }
            Ok(ColumnarValue::Array(Arc::new(
                Decimal128Array::new_null(amounts.len()).with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)?,
            )))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::super::costs::{run, CostError, CostSource, SourceFile};
    use costd_model::cost_query::{Aggregate, CostQuery, DateBin, Settings};
    use costd_model::exchange_rate::{parse_csv_rows, Conversion, RateDate};

    /// Two uploads in `dir`: one in EUR, one in USD, each with a rollup.
    fn source(dir: &std::path::Path, rates: &str, date: RateDate) -> CostSource {
        let mut files = Vec::new();
        for (n, currency) in [(1, "EUR"), (2, "USD")] {
            let mut csv = String::from("ChargeCategory,ChargePeriodStart,BilledCost,BillingCurrency,ServiceName\n");
            for i in 0..60i64 {
                let service = ["Compute", "Storage"][(i % 2) as usize];
                csv.push_str(&format!(
                    "Usage,2024-07-{:02},{}.{:03},{currency},{service}\n",
                    i % 30 + 1,
                    i * 3 - 40,
                    (i * 7) % 1000
                ));
            }
            let name = format!("usr_csts_upld_{n}");
            let tmp = dir.join(format!("{name}.parquet.tmp"));
            let pending = super::super::ingest::ingest_csv(csv.as_bytes(), &tmp, Default::default(), &mut ()).unwrap();
            let rollup_decimals = pending.summary.rollup_decimals;
            pending.persist(&dir.join(format!("{name}.parquet"))).unwrap();
            files.push(SourceFile { integration: "accss_crdntl_1".into(), upload: name, rollup_decimals });
        }
        let rows: Vec<(u64, Vec<String>)> = rates
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.split(',').map(str::to_string).collect()))
            .collect();
        CostSource {
            files,
            storage: Some(super::super::storage::Storage::Local { dir: dir.to_path_buf() }),
            currency: "EUR".into(),
            one_currency: false,
            conversion: Some(Conversion::new("USD", date, &parse_csv_rows(rows).unwrap())),
            ..CostSource::default()
        }
    }

    fn query(bin: DateBin, groupings: &[&str]) -> CostQuery {
        CostQuery {
            start: chrono::NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2024, 7, 31).unwrap(),
            groupings: groupings.iter().map(|g| g.parse().unwrap()).collect(),
            date_bin: bin,
            descending: false,
            settings: Settings::default(),
            aggregate: Aggregate::Cost,
            filter: None,
            segment: None,
        }
    }

    /// The reference: each EUR row × the rate of its day, rounded once; the USD rows as they are.
    fn expected(rate_of_day: impl Fn(u32) -> rust_decimal::Decimal) -> rust_decimal::Decimal {
        let mut total = rust_decimal::Decimal::ZERO;
        for i in 0..60i64 {
            let amount: rust_decimal::Decimal = format!("{}.{:03}", i * 3 - 40, (i * 7) % 1000).parse().unwrap();
            let eur = (amount * rate_of_day((i % 30 + 1) as u32))
                .round_dp_with_strategy(18, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
            total += eur + amount;
        }
        total
    }

    #[tokio::test]
    async fn costs_in_another_currency_take_the_rate_of_their_day_and_the_rollup_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let source = source(dir.path(), "EUR,USD,1.1,2024-06-01\nEUR,USD,1.0837,2024-07-15", RateDate::Daily);
        let rows_only = CostSource {
            files: source.files.iter().map(|f| SourceFile { rollup_decimals: None, ..f.clone() }).collect(),
            ..source.clone()
        };
        assert!(super::super::costs::with_rollups(&source, &query(DateBin::Month, &["service"]))
            .await
            .unwrap()
            .is_some());
        let want = expected(|d| if d >= 15 { "1.0837".parse().unwrap() } else { "1.1".parse().unwrap() });
        for groupings in [&[][..], &["service"][..]] {
            let rolled = run(&source, &query(DateBin::Month, groupings)).await.unwrap();
            let rows = run(&rows_only, &query(DateBin::Day, groupings)).await.unwrap();
            assert_eq!(rolled.totals, rows.totals);
            assert_eq!(rolled.totals.len(), 1, "one currency: {:?}", rolled.totals);
            assert_eq!(rolled.totals[0].0, "USD");
            assert_eq!(rolled.totals[0].1.to_string().parse::<rust_decimal::Decimal>().unwrap(), want);
        }
    }

    #[tokio::test]
    async fn a_rate_given_the_other_way_divides_and_the_end_of_the_month_decides() {
        let dir = tempfile::tempdir().unwrap();
        let source =
            source(dir.path(), "USD,EUR,0.9,2024-07-01\nUSD,EUR,0.95,2024-07-31", RateDate::EndOfBillingPeriod);
        assert!(super::super::costs::with_rollups(&source, &query(DateBin::Month, &[])).await.unwrap().is_none());
        let result = run(&source, &query(DateBin::Month, &[])).await.unwrap();
        let mut want = rust_decimal::Decimal::ZERO;
        for i in 0..60i64 {
            let amount: rust_decimal::Decimal = format!("{}.{:03}", i * 3 - 40, (i * 7) % 1000).parse().unwrap();
            let eur = (amount / "0.95".parse::<rust_decimal::Decimal>().unwrap())
                .round_dp_with_strategy(18, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
            want += eur + amount;
        }
        assert_eq!(result.totals[0].1.to_string().parse::<rust_decimal::Decimal>().unwrap(), want);
    }

    #[tokio::test]
    async fn a_cost_without_a_rate_fails_the_query_naming_the_currency_and_day() {
        let dir = tempfile::tempdir().unwrap();
        let late = source(dir.path(), "EUR,USD,1.1,2024-07-10", RateDate::Daily);
        match run(&late, &query(DateBin::Month, &[])).await {
            Err(CostError::NoRate(msg)) => {
                assert!(msg.contains("no exchange rate from EUR to USD in effect on or before 2024-07-01"), "{msg}")
            }
            other => panic!("expected no rate, got {other:?}"),
        }
        let unrelated = source(dir.path(), "GBP,USD,1.3,2024-06-01", RateDate::Daily);
        match run(&unrelated, &query(DateBin::Month, &[])).await {
            Err(CostError::NoRate(msg)) => assert!(msg.contains("from EUR to USD"), "{msg}"),
            other => panic!("expected no rate, got {other:?}"),
        }
    }
}
