//! Exact amount arithmetic for plans. Every number in a rule is an amount (`Decimal128(38, 18)`), and every
//! operation on numbers runs here, never in DataFusion's decimal operators, which add and multiply with
//! *wrapping* i128 arithmetic and widen scales:
//! - `amount × factor` ([`times`]) back at 18 places, rounded half away from zero, in one pass: rules
//!   multiply every cost row by a percentage or a factor, so this is the hot path;
//! - `+ - × ÷ %` of two amounts ([`arith`]): exact, products and quotients through 256 bits, rounded half
//!   away from zero to 18 places; a division or modulo by zero is NULL;
//! - ROUND to 0–18 places ([`round`]), and a 256-bit sum back to an amount ([`narrow`]).
//!
//! A result beyond 38 digits is an `ArithmeticOverflow` error (a 422 for the query), never a wrapped number.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Decimal128Array};
use arrow::datatypes::{i256, Decimal128Type};
use arrow::error::ArrowError;
use datafusion::logical_expr::{create_udf, ColumnarValue, Expr, Volatility};
use rust_decimal::Decimal;

use super::schema::{amount_type, AMOUNT_PRECISION, AMOUNT_SCALE};

use costd_model::amount::MAX_UNSCALED;

/// `amount × factor`, as an amount (`Decimal128(38, 18)`).
pub fn times(amount: Expr, factor: Decimal) -> Expr {
    let factor = factor.normalize();
    times_mantissa(amount, factor.mantissa(), factor.scale())
}

/// `amount × factor` for a factor given unscaled at 18 places (a rule's number literal).
pub fn times_unscaled(amount: Expr, factor: i128) -> Expr {
    let (mut mantissa, mut scale) = (factor, AMOUNT_SCALE as u32);
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    times_mantissa(amount, mantissa, scale)
}

/// `amount × mantissa / 10^scale`.
fn times_mantissa(amount: Expr, mantissa: i128, scale: u32) -> Expr {
    let factor = costd_model::amount::format(mantissa * 10i128.pow(AMOUNT_SCALE as u32 - scale.min(18)));
    let udf = create_udf(
        // The factor is part of the name, so plans show it and two factors are never taken for one function.
        &format!("amount_times({factor})"),
        vec![amount_type()],
        amount_type(),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let product = multiply(arrays[0].as_primitive::<Decimal128Type>(), mantissa, scale)?;
            Ok(ColumnarValue::Array(Arc::new(product)))
        }),
    );
    udf.call(vec![amount])
}

/// Each value × `mantissa` / 10^`scale`, rounded half away from zero.
fn multiply(values: &Decimal128Array, mantissa: i128, scale: u32) -> Result<Decimal128Array, ArrowError> {
    // A divisor known at compile time lets the compiler divide by multiplying; factors from percentages
    // have at most a few decimal places.
    let product = match scale {
        0 => values.try_unary(|x| scaled::<1>(x, mantissa)),
        1 => values.try_unary(|x| scaled::<10>(x, mantissa)),
        2 => values.try_unary(|x| scaled::<100>(x, mantissa)),
        3 => values.try_unary(|x| scaled::<1_000>(x, mantissa)),
        4 => values.try_unary(|x| scaled::<10_000>(x, mantissa)),
        _ => {
            let divisor = 10u128.pow(scale);
            values.try_unary(|x| scaled_by(x, mantissa, divisor))
        }
    }?;
    product.with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)
}

/// `x × fraction` (an amount unscaled at 18 places), rounded half away from zero to 18 places: one share
/// of a split (`engine::allocation`).
pub(crate) fn scaled_by_fraction(x: i128, fraction: Decimal) -> Result<i128, ArrowError> {
    let fraction = fraction.normalize();
    scaled_by(x, fraction.mantissa(), 10u128.pow(fraction.scale()))
}

/// `x ÷ divisor` (a decimal, not zero), rounded half away from zero to 18 places: an amount converted by
/// the inverse of an exchange rate (`engine::currency`), a unit cost (the service's unit costs).
pub fn divided_by_fraction(x: i128, divisor: Decimal) -> Result<i128, ArrowError> {
    let divisor = divisor.normalize();
    // x × 10^scale / mantissa: x may use all 38 digits and the scale is at most 28.
    let numerator = i256::from_i128(x).wrapping_mul(i256::from_i128(10i128.pow(divisor.scale())));
    if divisor.mantissa() == 0 {
        return Err(ArrowError::DivideByZero);
    }
    quotient(numerator, divisor.mantissa()).ok_or_else(|| {
        ArrowError::ArithmeticOverflow(format!(
            "{} ÷ {divisor} does not fit an amount (at most 38 digits, 18 after the point)",
            super::ingest::parse::format_amount(x)
        ))
    })
}

/// `x × part ÷ whole` (`whole` not zero), rounded half away from zero to 18 places: one share of a split in
/// proportions (`engine::allocation`), exact in 256 bits for any two amounts.
pub(crate) fn scaled_by_ratio(x: i128, part: i128, whole: i128) -> Result<i128, ArrowError> {
    if whole == 0 {
        return Err(ArrowError::DivideByZero);
    }
    let overflow = || {
        ArrowError::ArithmeticOverflow(format!(
            "{} × {part} ÷ {whole} does not fit an amount",
            super::ingest::parse::format_amount(x)
        ))
    };
    // In 128 bits where the product fits (a 256-bit division costs many times more), the same rounding.
    if let Some(product) = x.checked_mul(part) {
        let divisor = whole.unsigned_abs();
        let magnitude = product.unsigned_abs();
        let q = magnitude / divisor;
        let remainder = magnitude - q * divisor;
        let rounded = q + u128::from(remainder >= divisor - remainder);
        if rounded > MAX_UNSCALED as u128 {
            return Err(overflow());
        }
        return Ok(if (product < 0) != (whole < 0) { -(rounded as i128) } else { rounded as i128 });
    }
    ratio_wide(x, part, whole).ok_or_else(overflow)
}

/// [`scaled_by_ratio`] in 256 bits, for any two amounts.
fn ratio_wide(x: i128, part: i128, whole: i128) -> Option<i128> {
    quotient(i256::from_i128(x).wrapping_mul(i256::from_i128(part)), whole)
}

/// `numerator / divisor` (not zero) rounded half away from zero, as an amount; `None` beyond 38 digits.
fn quotient(numerator: i256, divisor: i128) -> Option<i128> {
    let d = i256::from_i128(divisor).wrapping_abs();
    let magnitude = numerator.wrapping_abs();
    let q = magnitude.wrapping_div(d);
    let remainder = magnitude.wrapping_sub(q.wrapping_mul(d));
    let rounded = if remainder >= d.wrapping_sub(remainder) { q.wrapping_add(i256::ONE) } else { q };
    let signed = if numerator.is_negative() != (divisor < 0) { rounded.wrapping_neg() } else { rounded };
    signed.to_i128().filter(|v| v.unsigned_abs() <= MAX_UNSCALED as u128)
}

fn scaled<const D: u128>(x: i128, mantissa: i128) -> Result<i128, ArrowError> {
    scaled_by(x, mantissa, D)
}

/// `x × mantissa ÷ 10^scale`, rounded half away from zero: an amount times a decimal factor given as its
/// digits and places, one value at a time (a split's share). The usual places divide by a constant, which the
/// compiler turns into a multiplication (a 128-bit division is most of the cost otherwise).
#[inline]
pub(crate) fn scaled_by_places(x: i128, mantissa: i128, scale: u32) -> Result<i128, ArrowError> {
    match scale {
        0 => scaled::<1>(x, mantissa),
        1 => scaled::<10>(x, mantissa),
        2 => scaled::<100>(x, mantissa),
        3 => scaled::<1_000>(x, mantissa),
        4 => scaled::<10_000>(x, mantissa),
        5 => scaled::<100_000>(x, mantissa),
        6 => scaled::<1_000_000>(x, mantissa),
        7 => scaled::<10_000_000>(x, mantissa),
        8 => scaled::<100_000_000>(x, mantissa),
        _ => scaled_by(x, mantissa, 10u128.pow(scale)),
    }
}

#[inline(always)]
fn scaled_by(x: i128, mantissa: i128, divisor: u128) -> Result<i128, ArrowError> {
    let Some(product) = x.checked_mul(mantissa) else {
        return scaled_wide(x, mantissa, divisor);
    };
    let magnitude = product.unsigned_abs();
    let quotient = magnitude / divisor;
    let remainder = magnitude - quotient * divisor;
    // Half away from zero; the remainder is below the divisor, so doubling it cannot overflow.
    let rounded = quotient + u128::from(remainder >= divisor - remainder);
    if rounded > MAX_UNSCALED as u128 {
        return Err(overflow(x, mantissa, divisor));
    }
    Ok(if product < 0 { -(rounded as i128) } else { rounded as i128 })
}

/// The same in 256 bits, for products beyond i128.
#[cold]
fn scaled_wide(x: i128, mantissa: i128, divisor: u128) -> Result<i128, ArrowError> {
    let product = i256::from_i128(x).wrapping_mul(i256::from_i128(mantissa));
    let d = i256::from_i128(divisor as i128);
    let magnitude = product.wrapping_abs();
    let quotient = magnitude.wrapping_div(d);
    let remainder = magnitude.wrapping_sub(quotient.wrapping_mul(d));
    let rounded = if remainder >= d.wrapping_sub(remainder) { quotient.wrapping_add(i256::ONE) } else { quotient };
    let signed = if product.is_negative() { rounded.wrapping_neg() } else { rounded };
    match signed.to_i128() {
        Some(v) if v.unsigned_abs() <= MAX_UNSCALED as u128 => Ok(v),
        _ => Err(overflow(x, mantissa, divisor)),
    }
}

#[cold]
fn overflow(x: i128, mantissa: i128, divisor: u128) -> ArrowError {
    let amount = super::ingest::parse::format_amount(x);
    ArrowError::ArithmeticOverflow(format!(
        "{amount} × {mantissa}/{divisor} does not fit an amount (at most 38 digits, 18 after the point)"
    ))
}

/// An operation on two amounts.
pub use costd_model::billing_rule::custom_sql::ArithOp;

/// `left <op> right` for two amounts, exactly (see the module doc).
pub fn arith(op: ArithOp, left: Expr, right: Expr) -> Expr {
    let name = match op {
        ArithOp::Add => "amount_add",
        ArithOp::Sub => "amount_sub",
        ArithOp::Mul => "amount_mul",
        ArithOp::Div => "amount_div",
        ArithOp::Mod => "amount_mod",
    };
    let udf = create_udf(
        name,
        vec![amount_type(), amount_type()],
        amount_type(),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| elementwise(args, |xs| apply(op, xs[0], xs[1]))),
    );
    udf.call(vec![left, right])
}

/// One row of [`arith`].
fn apply(op: ArithOp, a: i128, b: i128) -> Result<Option<i128>, ArrowError> {
    match op {
        ArithOp::Add => checked(a.checked_add(b), || format!("{} + {}", fmt(a), fmt(b))).map(Some),
        ArithOp::Sub => checked(a.checked_sub(b), || format!("{} - {}", fmt(a), fmt(b))).map(Some),
        ArithOp::Mul => scaled_by(a, b, 10u128.pow(AMOUNT_SCALE as u32)).map(Some).map_err(|_| overflow_of(a, "×", b)),
        ArithOp::Div => divide(a, b),
        // Both at the same scale, so the remainder is exact; its sign follows the dividend, as in SQL.
        ArithOp::Mod => Ok((b != 0).then(|| a % b)),
    }
}

/// `a / b` at 18 places, rounded half away from zero; `None` when `b` is zero.
fn divide(a: i128, b: i128) -> Result<Option<i128>, ArrowError> {
    if b == 0 {
        return Ok(None);
    }
    // a × 10^18 / b, in 256 bits: a may use all 38 digits.
    let numerator = i256::from_i128(a).wrapping_mul(i256::from_i128(10i128.pow(AMOUNT_SCALE as u32)));
    quotient(numerator, b).map(Some).ok_or_else(|| overflow_of(a, "÷", b))
}

/// `x` rounded to `places` (0–18) decimal places, half away from zero.
pub fn round(x: Expr, places: u32) -> Expr {
    let unit = 10i128.pow(AMOUNT_SCALE as u32 - places.min(AMOUNT_SCALE as u32));
    let udf = create_udf(
        &format!("amount_round({places})"),
        vec![amount_type()],
        amount_type(),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            elementwise(args, |xs| {
                let x = xs[0];
                let (q, r) = (x / unit, x % unit);
                let up = r.unsigned_abs() >= (unit - r.abs()) as u128;
                let rounded = if up { q + x.signum() } else { q };
                checked(rounded.checked_mul(unit), || format!("ROUND({})", fmt(x))).map(Some)
            })
        }),
    );
    udf.call(vec![x])
}

/// A 256-bit decimal at 18 places (a sum) back to an amount; beyond 38 digits is an overflow.
pub fn narrow(x: Expr) -> Expr {
    let udf = create_udf(
        "amount_narrow",
        vec![arrow::datatypes::DataType::Decimal256(76, AMOUNT_SCALE)],
        amount_type(),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let wide = arrays[0].as_primitive::<arrow::datatypes::Decimal256Type>();
            let narrowed: Decimal128Array = wide.try_unary(|v| match v.to_i128() {
                Some(n) if n.unsigned_abs() <= MAX_UNSCALED as u128 => Ok(n),
                _ => Err(ArrowError::ArithmeticOverflow(
                    "a sum does not fit an amount (at most 38 digits, 18 after the point)".into(),
                )),
            })?;
            let narrowed = narrowed.with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)?;
            single_or_array(Arc::new(narrowed), scalar)
        }),
    );
    udf.call(vec![x])
}

/// Applies `f` to each row of amount arguments; a null argument gives a null row, `Ok(None)` a null result.
fn elementwise(
    args: &[ColumnarValue],
    f: impl Fn(&[i128]) -> Result<Option<i128>, ArrowError>,
) -> datafusion::error::Result<ColumnarValue> {
    let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let columns: Vec<&Decimal128Array> = arrays.iter().map(|a| a.as_primitive::<Decimal128Type>()).collect();
    let rows = columns.first().map_or(0, |c| c.len());
    let mut out = arrow::array::Decimal128Builder::with_capacity(rows);
    let mut xs = vec![0i128; columns.len()];
    for i in 0..rows {
        if columns.iter().any(|c| c.is_null(i)) {
            out.append_null();
            continue;
        }
        for (x, c) in xs.iter_mut().zip(&columns) {
            *x = c.value(i);
        }
        out.append_option(f(&xs)?);
    }
    let out = out.finish().with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)?;
    single_or_array(Arc::new(out), scalar)
}

/// DataFusion calls a function with only scalar arguments when it folds constants: answer a scalar then.
fn single_or_array(array: arrow::array::ArrayRef, scalar: bool) -> datafusion::error::Result<ColumnarValue> {
    if scalar && array.len() == 1 {
        Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&array, 0)?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

fn checked(v: Option<i128>, what: impl Fn() -> String) -> Result<i128, ArrowError> {
    match v {
        Some(v) if v.unsigned_abs() <= MAX_UNSCALED as u128 => Ok(v),
        _ => Err(ArrowError::ArithmeticOverflow(format!(
            "{} does not fit an amount (at most 38 digits, 18 after the point)",
            what()
        ))),
    }
}

fn fmt(x: i128) -> String {
    costd_model::amount::format(x)
}

#[cold]
fn overflow_of(a: i128, op: &str, b: i128) -> ArrowError {
    ArrowError::ArithmeticOverflow(format!(
        "{} {op} {} does not fit an amount (at most 38 digits, 18 after the point)",
        fmt(a),
        fmt(b)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;

    const ONE: i128 = 1_000_000_000_000_000_000;

    fn times_array(values: Vec<Option<i128>>, factor: &str) -> Result<Vec<Option<i128>>, ArrowError> {
        let factor: Decimal = factor.parse().unwrap();
        let factor = factor.normalize();
        let array = Decimal128Array::from(values).with_precision_and_scale(38, 18).unwrap();
        Ok(multiply(&array, factor.mantissa(), factor.scale())?.iter().collect())
    }

    /// What DataFusion's CAST(amount × factor AS Decimal128(38, 18)) gives, through Arrow's own kernels.
    fn reference(x: i128, factor: &str) -> i128 {
        let factor: Decimal = factor.parse().unwrap();
        let factor = factor.normalize();
        let product = x * factor.mantissa();
        let wide =
            Decimal128Array::from(vec![product]).with_precision_and_scale(38, (18 + factor.scale()) as i8).unwrap();
        let cast = arrow::compute::cast(&wide, &DataType::Decimal128(38, 18)).unwrap();
        cast.as_primitive::<Decimal128Type>().value(0)
    }

    #[test]
    fn products_round_half_away_from_zero_like_a_cast() {
        for factor in ["0.9", "1.1", "0.125", "12.5", "3", "0.00001", "1.0000001"] {
            for x in [0, 1, 5, -5, 15, -15, 123_456_789, -987_654_321_123, 50 * ONE + 7, -(3 * ONE / 7)] {
                assert_eq!(
                    times_array(vec![Some(x)], factor).unwrap(),
                    vec![Some(reference(x, factor))],
                    "{x} × {factor}"
                );
            }
        }
        assert_eq!(times_array(vec![Some(5)], "0.1").unwrap(), vec![Some(1)]);
        assert_eq!(times_array(vec![Some(-5)], "0.1").unwrap(), vec![Some(-1)]);
        assert_eq!(times_array(vec![Some(4)], "0.1").unwrap(), vec![Some(0)]);
    }

    #[test]
    fn nulls_stay_null() {
        assert_eq!(times_array(vec![None, Some(10)], "0.5").unwrap(), vec![None, Some(5)]);
    }

    #[test]
    fn products_beyond_i128_are_exact_and_results_beyond_38_digits_are_errors() {
        // 10^20 − 1 units × 9 overflows i128 as a product at 19 places but fits once rounded back to 18.
        let big = MAX_UNSCALED;
        let got = times_array(vec![Some(big)], "0.9").unwrap()[0].unwrap();
        let expected = big / 10 * 9 + (big % 10 * 9 + 5) / 10;
        assert_eq!(got, expected);
        let err = times_array(vec![Some(big)], "1.5").unwrap_err();
        assert!(err.to_string().contains("does not fit an amount"), "{err}");
        assert!(times_array(vec![Some(-big)], "-2").is_err());
    }

    fn run(op: ArithOp, a: i128, b: i128) -> Result<Option<i128>, ArrowError> {
        apply(op, a, b)
    }

    /// The exact answer, computed with rust_decimal on small operands and rounded the same way.
    fn exact(op: ArithOp, a: i128, b: i128) -> Option<i128> {
        use rust_decimal::RoundingStrategy::MidpointAwayFromZero;
        let (x, y) = (Decimal::from_i128_with_scale(a, 18), Decimal::from_i128_with_scale(b, 18));
        let r = match op {
            ArithOp::Add => x + y,
            ArithOp::Sub => x - y,
            ArithOp::Mul => x * y,
            ArithOp::Div if b == 0 => return None,
            ArithOp::Div => x / y,
            ArithOp::Mod if b == 0 => return None,
            ArithOp::Mod => x % y,
        };
        let mut r = r.round_dp_with_strategy(18, MidpointAwayFromZero);
        r.rescale(18);
        Some(r.mantissa())
    }

    proptest::proptest! {
        /// The 128-bit path of a ratio rounds as the 256-bit one does, for every sign.
        #[test]
        fn a_ratio_in_128_bits_is_the_ratio_in_256(
            x in -(10i128.pow(30))..10i128.pow(30),
            part in -(10i128.pow(8))..10i128.pow(8),
            whole in proptest::strategy::Strategy::prop_filter(-(10i128.pow(9))..10i128.pow(9), "not zero", |w| *w != 0),
        ) {
            proptest::prop_assert_eq!(scaled_by_ratio(x, part, whole).ok(), ratio_wide(x, part, whole));
        }

        // Values below 10^5 with at most 9 places: every exact result fits rust_decimal's 28 digits, so the
        // reference itself never rounds before the final rounding to 18 places.
        #[test]
        fn every_operation_agrees_with_exact_decimal_arithmetic(
            a in proptest::strategy::Strategy::prop_map(-10i128.pow(14)..10i128.pow(14), |k| k * 10i128.pow(9)),
            b in proptest::strategy::Strategy::prop_map(-10i128.pow(14)..10i128.pow(14), |k| k * 10i128.pow(9)),
            op in proptest::sample::select(vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div, ArithOp::Mod]),
        ) {
            proptest::prop_assert_eq!(run(op, a, b).unwrap(), exact(op, a, b), "{:?} {} {}", op, a, b);
        }
    }

    #[test]
    fn division_by_zero_is_null_and_overflow_is_an_error() {
        assert_eq!(run(ArithOp::Div, ONE, 0).unwrap(), None);
        assert_eq!(run(ArithOp::Mod, ONE, 0).unwrap(), None);
        assert_eq!(run(ArithOp::Div, ONE, 3 * ONE).unwrap(), Some(333_333_333_333_333_333));
        assert_eq!(run(ArithOp::Div, 2 * ONE, 3 * ONE).unwrap(), Some(666_666_666_666_666_667));
        assert_eq!(run(ArithOp::Div, -2 * ONE, 3 * ONE).unwrap(), Some(-666_666_666_666_666_667));
        assert!(run(ArithOp::Add, MAX_UNSCALED, 1).is_err());
        assert!(run(ArithOp::Mul, MAX_UNSCALED, 2 * ONE).is_err());
        assert!(run(ArithOp::Div, MAX_UNSCALED, ONE / 2).is_err());
        assert_eq!(
            run(ArithOp::Mul, MAX_UNSCALED, ONE).unwrap(),
            Some(MAX_UNSCALED),
            "products wider than i128 are exact"
        );
    }
}
