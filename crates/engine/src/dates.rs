//! Date bins of `Date32` values: the first day of a row's week (Monday), month or quarter, as scalar
//! functions for plans. They work on days since the epoch with integer arithmetic (H. Hinnant's
//! civil-calendar algorithms) because DataFusion's `date_trunc` converts every row to a timestamp and through
//! chrono and back, which was a fifth of a whole costs query over millions of rows.

use std::sync::{Arc, OnceLock};

use arrow::array::{AsArray, Date32Array};
use arrow::datatypes::{DataType, Date32Type};
use datafusion::logical_expr::{create_udf, ColumnarValue, Expr, ScalarUDF, Volatility};

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i32) -> (i64, i64, i64) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i32 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // Date32 covers about ±5.8 million years; every bin of a Date32 stays within it.
    (era * 146_097 + doe - 719_468) as i32
}

/// The Monday on or before `days` (1970-01-01 was a Thursday).
pub fn week_start(days: i32) -> i32 {
    days - (days + 3).rem_euclid(7)
}

/// The first day of the month of `days`.
pub fn month_start(days: i32) -> i32 {
    let (_, _, day) = civil_from_days(days);
    days - (day as i32 - 1)
}

/// The first day of the calendar quarter of `days`.
pub fn quarter_start(days: i32) -> i32 {
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, (month - 1) / 3 * 3 + 1, 1)
}

/// Widest range of days (about 11 years) binned through a table rather than one date at a time.
const TABLE_DAYS: i64 = 4096;

/// The bins of a batch of dates. A batch's dates usually span a few days or months, so the bins of its
/// range are worked out once into a table and each row is a lookup.
fn bin_all(dates: &Date32Array, bin: fn(i32) -> i32) -> Date32Array {
    let (Some(lo), Some(hi)) = (arrow::compute::min(dates), arrow::compute::max(dates)) else {
        return dates.unary(bin);
    };
    if i64::from(hi) - i64::from(lo) >= TABLE_DAYS {
        return dates.unary(bin);
    }
    let table: Vec<i32> = (lo..=hi).map(bin).collect();
    // Null slots hold arbitrary values, so an index outside the table is binned directly.
    dates.unary(|d| table.get(d.wrapping_sub(lo) as u32 as usize).copied().unwrap_or_else(|| bin(d)))
}

fn date_udf(name: &str, bin: fn(i32) -> i32) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Date32],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            Ok(ColumnarValue::Array(Arc::new(bin_all(arrays[0].as_primitive::<Date32Type>(), bin))))
        }),
    )
}

/// `week_start(date)`, `month_start(date)` or `quarter_start(date)` over a `Date32` expression.
pub fn bin(unit: Unit, date: Expr) -> Expr {
    static UDFS: OnceLock<[ScalarUDF; 3]> = OnceLock::new();
    let udfs = UDFS.get_or_init(|| {
        [
            date_udf("week_start", week_start),
            date_udf("month_start", month_start),
            date_udf("quarter_start", quarter_start),
        ]
    });
    let udf = match unit {
        Unit::Week => &udfs[0],
        Unit::Month => &udfs[1],
        Unit::Quarter => &udfs[2],
    };
    udf.call(vec![date])
}

/// A bin wider than a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Week,
    Month,
    Quarter,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    fn date(days: i32) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap()
    }

    fn days(d: NaiveDate) -> i32 {
        d.num_days_from_ce() - 719_163
    }

    #[test]
    fn bins_agree_with_chrono_on_every_day_of_four_centuries() {
        // 400 Gregorian years are one full cycle of leap rules; a few far dates check the eras either side.
        let every_day =
            days(NaiveDate::from_ymd_opt(1800, 1, 1).unwrap())..days(NaiveDate::from_ymd_opt(2200, 1, 1).unwrap());
        let far = [-1_000_000, -719_163, -1, 0, 1, 2_000_000];
        for n in every_day.chain(far) {
            let probe = date(n);
            let month = NaiveDate::from_ymd_opt(probe.year(), probe.month(), 1).unwrap();
            assert_eq!(date(month_start(n)), month, "month of {probe}");
            let quarter = NaiveDate::from_ymd_opt(probe.year(), (probe.month() - 1) / 3 * 3 + 1, 1).unwrap();
            assert_eq!(date(quarter_start(n)), quarter, "quarter of {probe}");
            let monday = probe - chrono::Duration::days(i64::from(probe.weekday().num_days_from_monday()));
            assert_eq!(date(week_start(n)), monday, "week of {probe}");
        }
    }

    #[test]
    fn a_batch_is_binned_through_its_table_and_keeps_its_nulls() {
        let d = |s: &str| days(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let batch = Date32Array::from(vec![Some(d("2024-07-31")), None, Some(d("2024-09-01")), Some(d("2024-08-15"))]);
        let binned = bin_all(&batch, month_start);
        let expected =
            Date32Array::from(vec![Some(d("2024-07-01")), None, Some(d("2024-09-01")), Some(d("2024-08-01"))]);
        assert_eq!(binned, expected);
        // A range too wide for a table is binned one date at a time.
        let wide = Date32Array::from(vec![d("1900-03-05"), d("2100-12-31")]);
        assert_eq!(bin_all(&wide, month_start), Date32Array::from(vec![d("1900-03-01"), d("2100-12-01")]));
    }

    #[test]
    fn bins_of_known_dates() {
        let d = |s: &str| days(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert_eq!(month_start(d("2024-02-29")), d("2024-02-01"));
        assert_eq!(quarter_start(d("2024-12-31")), d("2024-10-01"));
        assert_eq!(quarter_start(d("1969-03-31")), d("1969-01-01"));
        assert_eq!(week_start(d("1970-01-01")), d("1969-12-29"));
        assert_eq!(week_start(d("2024-09-01")), d("2024-08-26"));
        assert_eq!(week_start(d("2024-09-02")), d("2024-09-02"));
    }
}
