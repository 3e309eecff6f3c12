//! Exact amount arithmetic for plans: `amount × factor` back at 18 places, rounded half away from zero, in
//! one pass. Rules multiply every cost row by a percentage or a custom SQL factor; DataFusion would multiply
//! into a wider scale (wrapping on i128 overflow) and then cast back with a division and a remainder per
//! row, which was a quarter of a costs query. Here a product that overflows i128 is redone in 256 bits, and a
//! result beyond 38 digits is an error, never a wrapped number.

use std::sync::Arc;

use arrow::array::{AsArray, Decimal128Array};
use arrow::datatypes::{i256, Decimal128Type};
use arrow::error::ArrowError;
use datafusion::logical_expr::{create_udf, ColumnarValue, Expr, Volatility};
use rust_decimal::Decimal;

use super::schema::{amount_type, AMOUNT_PRECISION, AMOUNT_SCALE};

/// Largest magnitude a `Decimal128(38, _)` holds: 10^38 − 1.
const MAX_UNSCALED: i128 = 10i128.pow(AMOUNT_PRECISION as u32) - 1;

/// `amount × factor`, as an amount (`Decimal128(38, 18)`).
pub fn times(amount: Expr, factor: Decimal) -> Expr {
    let factor = factor.normalize();
    let (mantissa, scale) = (factor.mantissa(), factor.scale());
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

fn scaled<const D: u128>(x: i128, mantissa: i128) -> Result<i128, ArrowError> {
    scaled_by(x, mantissa, D)
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
}
