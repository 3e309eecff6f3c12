//! Amounts: exact decimals held as unscaled `i128` at 18 places, the representation Arrow's
//! `Decimal128(38, 18)` uses inside the engine. Parsed from text (CSV fields, SQL literals) and formatted the
//! way the API shows them, without ever passing through a float.

/// Decimal places every amount keeps: `Decimal128(38, 18)` (docs/design.md "Money").
pub const SCALE: u32 = 18;
/// Largest unscaled magnitude a `Decimal128(38, _)` holds: 10^38 − 1 (just under 10^20 at 18 places).
pub const MAX_UNSCALED: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// `a × b` as (high, low) 128-bit halves, which compare in the order the products do: exact for every pair
/// (comparisons of amounts times percentages never overflow).
pub fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const LOW: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & LOW);
    let (b1, b0) = (b >> 64, b & LOW);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let middle = (p00 >> 64) + (p01 & LOW) + (p10 & LOW);
    let low = (p00 & LOW) | ((middle & LOW) << 64);
    let high = p11 + (p01 >> 64) + (p10 >> 64) + (middle >> 64);
    (high, low)
}

/// An exact amount: unscaled `i128` at [`SCALE`] places, never beyond ±[`MAX_UNSCALED`] (what Arrow's
/// `Decimal128(38, 18)` holds). Shown as the API shows amounts (`1000.0`, `20.52022672899`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i128);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// The amount with this unscaled value, if it is within range.
    pub fn from_unscaled(unscaled: i128) -> Option<Amount> {
        (unscaled.unsigned_abs() <= MAX_UNSCALED as u128).then_some(Amount(unscaled))
    }

    /// The unscaled value at [`SCALE`] places (what Arrow stores).
    pub fn unscaled(self) -> i128 {
        self.0
    }

    /// Parses text as [`parse`] does.
    pub fn parse(field: &str, s: &str) -> Result<Amount, String> {
        parse(field, s).map(Amount)
    }

    /// The sum, if it is within range.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).and_then(Amount::from_unscaled)
    }

    /// The difference, if it is within range.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).and_then(Amount::from_unscaled)
    }

    /// The amount with the opposite sign.
    pub fn negated(self) -> Amount {
        Amount(-self.0)
    }

    /// `self × factor`, back at [`SCALE`] places rounded half away from zero (through 256 bits, so any
    /// factor with at most 28 places is exact until that one rounding); `None` beyond the range.
    pub fn times(self, factor: rust_decimal::Decimal) -> Option<Amount> {
        // |amount| < 10^38 and |mantissa| < 2^96: the product fits 256 bits (four 64-bit limbs, low first).
        let (high, low) = mul_wide(self.0.unsigned_abs(), factor.mantissa().unsigned_abs());
        let mut limbs = [low as u64, (low >> 64) as u64, high as u64, (high >> 64) as u64];
        // Divided by 10, `scale` times: the last remainder is the first digit dropped, so the rest is at least
        // half of 10^scale exactly when that digit is 5 or more.
        let mut first_dropped = 0u64;
        for _ in 0..factor.scale() {
            let mut rem = 0u128;
            for limb in limbs.iter_mut().rev() {
                let current = (rem << 64) | u128::from(*limb);
                *limb = (current / 10) as u64;
                rem = current % 10;
            }
            first_dropped = rem as u64;
        }
        if limbs[2] != 0 || limbs[3] != 0 {
            return None;
        }
        let magnitude = (u128::from(limbs[1]) << 64) | u128::from(limbs[0]);
        let rounded = magnitude.checked_add(u128::from(first_dropped >= 5))?;
        let magnitude = i128::try_from(rounded).ok()?;
        let negative = (self.0 < 0) != factor.is_sign_negative() && rounded != 0;
        Amount::from_unscaled(if negative { -magnitude } else { magnitude })
    }

    /// `percentage` percent of the amount (`8.25` gives 8.25 %), rounded as [`Amount::times`] rounds.
    pub fn percent(self, percentage: rust_decimal::Decimal) -> Option<Amount> {
        self.times(percentage.checked_div(rust_decimal::Decimal::ONE_HUNDRED)?)
    }

    /// An exact decimal as an amount, if it fits (at most [`SCALE`] places kept exactly: more is refused).
    pub fn from_decimal(value: rust_decimal::Decimal) -> Option<Amount> {
        let value = value.normalize();
        if value.scale() > SCALE {
            return None;
        }
        let unscaled = value.mantissa().checked_mul(10i128.checked_pow(SCALE - value.scale())?)?;
        Amount::from_unscaled(unscaled)
    }

    /// Rounded to `places` (at most [`SCALE`]) decimal places, half away from zero.
    pub fn rounded(self, places: u32) -> Amount {
        let step = 10i128.pow(SCALE - places.min(SCALE));
        let half = step / 2;
        let units = if self.0 >= 0 { (self.0 + half) / step } else { (self.0 - half) / step };
        // Rounding 10^38 − 1 up would leave the range; it stays at the largest multiple of `step` inside it.
        Amount::from_unscaled(units * step).unwrap_or(Amount(self.0 / step * step))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format(self.0))
    }
}

/// Amounts go out as decimal strings (docs/design.md "Wire format").
impl serde::Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(self.0))
    }
}

/// Amounts come back from stored documents (an invoice's lines) as the strings they were written as.
impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Amount::parse("amount", &text).map_err(serde::de::Error::custom)
    }
}

/// Parses an amount into its unscaled `Decimal128(38, 18)` value, exactly.
///
/// Accepts `1245`, `-456`, `+1.5`, `$1.23`, `-$1.23`, `$-1.23`, `1.5E-7`. Refuses thousands separators
/// (`1,245`: in many locales the comma is the decimal point, so guessing would corrupt amounts), more than
/// 18 significant decimal places, and magnitudes beyond 10^20.
pub fn parse(field: &str, s: &str) -> Result<i128, String> {
    let t = s.trim();
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let rest = rest.strip_prefix('$').unwrap_or(rest);
    let (negative, rest) = match (negative, rest.as_bytes().first()) {
        (false, Some(b'-')) if t.starts_with('$') => (true, &rest[1..]),
        _ => (negative, rest),
    };
    if rest.contains(',') {
        return Err(format!("{field} {s:?} has a thousands separator; write it without commas (1245.50)"));
    }
    let bad = || format!("{field} {s:?} is not a number");
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    let mut unscaled: i128 = 0;
    let mut digits = 0u32;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        if unscaled == 0 && b == b'0' {
            continue; // leading zeros carry no precision
        }
        digits += 1;
        if digits > 38 {
            return Err(format!("{field} {s:?} has more digits than an amount can hold"));
        }
        unscaled = unscaled * 10 + i128::from(b - b'0');
    }
    let shift = SCALE as i64 - frac_part.len() as i64 + i64::from(exponent);
    let too_large = || format!("{field} {s:?} is too large (amounts stay below 10^20)");
    let value = if shift >= 0 {
        let factor = 10i128.checked_pow(u32::try_from(shift).map_err(|_| too_large())?).ok_or_else(too_large)?;
        unscaled.checked_mul(factor).ok_or_else(too_large)?
    } else {
        let divisor = 10i128.checked_pow(u32::try_from(-shift).unwrap_or(u32::MAX));
        match divisor {
            Some(d) if unscaled % d == 0 => unscaled / d,
            None if unscaled == 0 => 0,
            _ => return Err(format!("{field} {s:?} has more than {SCALE} decimal places")),
        }
    };
    if value > MAX_UNSCALED {
        return Err(too_large());
    }
    Ok(if negative { -value } else { value })
}

/// Formats an unscaled 18-place value the way the API shows amounts: `1000.0`, `20.52022672899`.
pub fn format(unscaled: i128) -> String {
    let scale = 10i128.pow(SCALE);
    let sign = if unscaled < 0 { "-" } else { "" };
    let abs = unscaled.unsigned_abs();
    let int = abs / scale as u128;
    let frac = abs % scale as u128;
    if frac == 0 {
        return format!("{sign}{int}.0");
    }
    let frac = format!("{frac:018}");
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: i128 = 1_000_000_000_000_000_000;

    #[test]
    fn plain_and_dollar_amounts_parse_exactly() {
        assert_eq!(parse("BilledCost", "1245").unwrap(), 1245 * ONE);
        assert_eq!(parse("BilledCost", "-456").unwrap(), -456 * ONE);
        assert_eq!(parse("BilledCost", "$1.23").unwrap(), 123 * ONE / 100);
        assert_eq!(parse("BilledCost", "-$1.23").unwrap(), -123 * ONE / 100);
        assert_eq!(parse("BilledCost", "$-1.23").unwrap(), -123 * ONE / 100);
        assert_eq!(parse("BilledCost", "0.00000000603").unwrap(), 6_030_000_000);
        assert_eq!(parse("BilledCost", ".5").unwrap(), ONE / 2);
    }

    #[test]
    fn scientific_notation_is_accepted() {
        assert_eq!(parse("BilledCost", "1.5E-7").unwrap(), 150_000_000_000);
        assert_eq!(parse("BilledCost", "2e3").unwrap(), 2000 * ONE);
    }

    #[test]
    fn eighteen_places_are_kept_and_more_are_refused() {
        assert_eq!(parse("BilledCost", "0.123456789012345678").unwrap(), 123_456_789_012_345_678);
        assert_eq!(parse("BilledCost", "0.1000000000000000000000").unwrap(), ONE / 10);
        assert!(parse("BilledCost", "0.1234567890123456789").unwrap_err().contains("more than 18 decimal places"));
    }

    #[test]
    fn commas_garbage_and_huge_values_are_refused() {
        assert!(parse("BilledCost", "1,245").unwrap_err().contains("thousands separator"));
        assert!(parse("BilledCost", "abc").unwrap_err().contains("is not a number"));
        assert!(parse("BilledCost", "1.2.3").unwrap_err().contains("is not a number"));
        assert!(parse("BilledCost", "-").unwrap_err().contains("is not a number"));
        assert!(parse("BilledCost", "1e400").unwrap_err().contains("too large"));
        assert!(parse("BilledCost", "100000000000000000000000").unwrap_err().contains("too large"));
        assert_eq!(parse("BilledCost", "99999999999999999999.999999999999999999").unwrap(), MAX_UNSCALED);
    }

    #[test]
    fn percentages_of_amounts_are_exact_until_one_rounding_half_away_from_zero() {
        let a = Amount::parse("a", "1000.005").unwrap();
        let p = rust_decimal::Decimal::new(825, 2);
        assert_eq!(a.percent(p).unwrap().to_string(), "82.5004125");
        let tiny = Amount::parse("a", "0.000000000000000005").unwrap();
        assert_eq!(tiny.percent(rust_decimal::Decimal::new(10, 0)).unwrap().to_string(), "0.000000000000000001");
        assert_eq!(
            tiny.negated().percent(rust_decimal::Decimal::new(10, 0)).unwrap().to_string(),
            "-0.000000000000000001"
        );
        let big = Amount::from_unscaled(MAX_UNSCALED).unwrap();
        assert!(big.percent(rust_decimal::Decimal::new(200, 0)).is_none());
        assert_eq!(big.percent(rust_decimal::Decimal::ONE_HUNDRED), Some(big));
    }

    #[test]
    fn amounts_format_like_the_api() {
        assert_eq!(format(1000 * ONE), "1000.0");
        assert_eq!(format(-123 * ONE / 100), "-1.23");
        assert_eq!(format(20_520_226_728_990_000_000), "20.52022672899");
        assert_eq!(format(0), "0.0");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(s in ".{0,40}") {
            let _ = parse("BilledCost", &s);
        }

        #[test]
        fn every_amount_formats_and_parses_back_to_itself(v in -MAX_UNSCALED..=MAX_UNSCALED) {
            proptest::prop_assert_eq!(parse("BilledCost", &format(v)).unwrap(), v);
        }

        #[test]
        fn scientific_and_dollar_spellings_read_the_same(mantissa in -10i64.pow(12)..10i64.pow(12), places in 0u32..10) {
            let plain = rust_decimal::Decimal::new(mantissa, places);
            let expected = parse("BilledCost", &plain.to_string()).unwrap();
            let sci = format!("{mantissa}E-{places}");
            proptest::prop_assert_eq!(parse("BilledCost", &sci).unwrap(), expected);
            let dollars = if mantissa < 0 { format!("-${}", plain.abs()) } else { format!("${plain}") };
            proptest::prop_assert_eq!(parse("BilledCost", &dollars).unwrap(), expected);
        }
    }

    #[test]
    fn amounts_round_half_away_from_zero_and_stay_in_range() {
        let a = |s: &str| Amount::parse("x", s).unwrap();
        assert_eq!(a("1.005").rounded(2).to_string(), "1.01");
        assert_eq!(a("-1.005").rounded(2).to_string(), "-1.01");
        assert_eq!(a("1.004").rounded(2).to_string(), "1.0");
        assert_eq!(a("0").rounded(2).to_string(), "0.0");
        assert_eq!(Amount::from_unscaled(MAX_UNSCALED).unwrap().rounded(2).unscaled() % 10i128.pow(16), 0);
        assert!(a("99999999999999999999").checked_add(a("1")).is_none());
        assert!(Amount::from_unscaled(MAX_UNSCALED + 1).is_none());
    }

    /// `times` as it was written with Arrow's `i256` (the reference the limb arithmetic must equal).
    fn times_through_i256(amount: i128, factor: rust_decimal::Decimal) -> Option<i128> {
        use arrow::datatypes::i256;
        let divisor = i256::from_i128(10i128.checked_pow(factor.scale())?);
        let product = i256::from_i128(amount).checked_mul(i256::from_i128(factor.mantissa()))?;
        let magnitude = product.checked_abs()?;
        let (quotient, remainder) = (magnitude.checked_div(divisor)?, magnitude.checked_rem(divisor)?);
        let rounded =
            if remainder >= divisor.checked_sub(remainder)? { quotient.checked_add(i256::ONE)? } else { quotient };
        let signed = if product.is_negative() { rounded.checked_neg()? } else { rounded };
        signed.to_i128().filter(|v| v.unsigned_abs() <= MAX_UNSCALED as u128)
    }

    proptest::proptest! {
        #[test]
        fn products_with_a_factor_equal_the_256_bit_reference(
            amount in -MAX_UNSCALED..=MAX_UNSCALED,
            small in -MAX_UNSCALED / 1_000_000_000_000..=MAX_UNSCALED / 1_000_000_000_000,
            mantissa in proptest::num::i128::ANY,
            scale in 0u32..=28,
        ) {
            let mantissa = mantissa % (1i128 << 95);
            let factor = rust_decimal::Decimal::from_i128_with_scale(mantissa, scale);
            for a in [amount, small, 0, 1, -1] {
                proptest::prop_assert_eq!(Amount(a).times(factor).map(Amount::unscaled), times_through_i256(a, factor), "{} × {}", a, factor);
            }
        }
    }

    proptest::proptest! {
        /// Where the product fits 128 bits, the wide one is it; wide products order as the products do.
        #[test]
        fn wide_products_are_exact(a in 0u128..(1u128 << 64), b in 0u128..(1u128 << 64), c in proptest::num::u128::ANY, d in 1u128..1000) {
            proptest::prop_assert_eq!(mul_wide(a, b), (0, a * b));
            // (c × d) against (c × (d − 1)) + c: the same number computed two ways.
            let (h1, l1) = mul_wide(c, d);
            let (h0, l0) = mul_wide(c, d - 1);
            let (sum, carry) = l0.overflowing_add(c);
            proptest::prop_assert_eq!((h1, l1), (h0 + u128::from(carry), sum));
            proptest::prop_assert!(mul_wide(c, d) >= mul_wide(c, d - 1));
        }
    }
}
