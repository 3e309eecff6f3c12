//! Field parsers for cost CSVs: exact amounts, FOCUS dates and charge categories. Each returns a
//! sentence fit for a `Row N: …` error.

use chrono::{DateTime, NaiveDate};

use crate::engine::schema::AMOUNT_SCALE;

/// FOCUS ChargeCategory values (1.0 plus 1.x Purchase and Adjustment), case-sensitive as the spec says.
pub const CHARGE_CATEGORIES: [&str; 8] =
    ["Usage", "Credit", "Refund", "Discount", "Tax", "Fee", "Purchase", "Adjustment"];

const SCALE: u32 = AMOUNT_SCALE as u32;
/// Largest magnitude a `Decimal128(38, _)` holds: 10^38 − 1.
const MAX_UNSCALED: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// True for the spellings of "no value" in real exports: empty, or the literal `NULL`.
pub fn is_null(s: &str) -> bool {
    s.is_empty() || s == "NULL" || s == "null"
}

/// Parses an amount into its unscaled `Decimal128(38, 18)` value, exactly.
///
/// Accepts `1245`, `-456`, `+1.5`, `$1.23`, `-$1.23`, `$-1.23`, `1.5E-7`. Refuses thousands separators
/// (`1,245`: in many locales the comma is the decimal point, so guessing would corrupt amounts), more than
/// 18 significant decimal places, and magnitudes beyond 10^20.
pub fn amount(field: &str, s: &str) -> Result<i128, String> {
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
pub fn format_amount(unscaled: i128) -> String {
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

/// Days from 1970-01-01 to the UTC date of a FOCUS timestamp or date.
///
/// Accepts `2024-09-01`, `2024-09-01T00:00:00Z`, `2024-09-01 22:00:00` (as real exports write it, read as
/// UTC), fractional seconds, and explicit offsets (`2024-09-01T01:00:00+02:00` is 2024-08-31 in UTC).
pub fn date(field: &str, s: &str) -> Result<i32, String> {
    let bad = || format!("{field} {s:?} is not a date or timestamp like 2024-09-01T00:00:00Z");
    let t = s.trim();
    let b = t.as_bytes();
    // Bytes, not characters: the first ten must be ASCII before `t` is sliced anywhere.
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[r];
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (y, m, d) = (num(0..4).ok_or_else(bad)?, num(5..7).ok_or_else(bad)?, num(8..10).ok_or_else(bad)?);
    let date = NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(bad)?;
    let rest = &t[10..];
    if !rest.is_empty() {
        let sep = rest.as_bytes()[0];
        if sep != b'T' && sep != b' ' {
            return Err(bad());
        }
        let time = &rest[1..];
        let (clock, zone) = match time.find(['Z', 'z', '+', '-']) {
            Some(i) => (&time[..i], &time[i..]),
            None => (time, ""),
        };
        if !valid_clock(clock) {
            return Err(bad());
        }
        if !(zone.is_empty() || zone.eq_ignore_ascii_case("z")) {
            // An explicit offset can move the UTC date: let chrono do the arithmetic.
            let iso = format!("{}T{time}", &t[..10]);
            let dt = DateTime::parse_from_rfc3339(&iso)
                .or_else(|_| DateTime::parse_from_str(&iso, "%Y-%m-%dT%H:%M:%S%.f%z"))
                .map_err(|_| bad())?;
            return Ok(days_since_epoch(dt.naive_utc().date()));
        }
    }
    Ok(days_since_epoch(date))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff`, in range.
fn valid_clock(clock: &str) -> bool {
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|c| c.is_ascii_digit())) {
        return false;
    }
    let n = |i: usize| parts.get(i).map_or(0, |p| p.parse::<u32>().unwrap_or(99));
    n(0) < 24 && n(1) < 60 && n(2) < 61
}

/// Arrow's Date32: days since the Unix epoch.
pub fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")).num_days() as i32
}

/// The calendar date of an Arrow Date32.
pub fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date") + chrono::Duration::days(i64::from(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: i128 = 1_000_000_000_000_000_000;

    #[test]
    fn plain_and_dollar_amounts_parse_exactly() {
        assert_eq!(amount("BilledCost", "1245").unwrap(), 1245 * ONE);
        assert_eq!(amount("BilledCost", "-456").unwrap(), -456 * ONE);
        assert_eq!(amount("BilledCost", "$1.23").unwrap(), 123 * ONE / 100);
        assert_eq!(amount("BilledCost", "-$1.23").unwrap(), -123 * ONE / 100);
        assert_eq!(amount("BilledCost", "$-1.23").unwrap(), -123 * ONE / 100);
        assert_eq!(amount("BilledCost", "0.00000000603").unwrap(), 6_030_000_000);
        assert_eq!(amount("BilledCost", ".5").unwrap(), ONE / 2);
    }

    #[test]
    fn scientific_notation_is_accepted() {
        assert_eq!(amount("BilledCost", "1.5E-7").unwrap(), 150_000_000_000);
        assert_eq!(amount("BilledCost", "2e3").unwrap(), 2000 * ONE);
    }

    #[test]
    fn eighteen_places_are_kept_and_more_are_refused() {
        assert_eq!(amount("BilledCost", "0.123456789012345678").unwrap(), 123_456_789_012_345_678);
        assert_eq!(amount("BilledCost", "0.1000000000000000000000").unwrap(), ONE / 10);
        assert!(amount("BilledCost", "0.1234567890123456789").unwrap_err().contains("more than 18 decimal places"));
    }

    #[test]
    fn commas_garbage_and_huge_values_are_refused() {
        assert!(amount("BilledCost", "1,245").unwrap_err().contains("thousands separator"));
        assert!(amount("BilledCost", "abc").unwrap_err().contains("is not a number"));
        assert!(amount("BilledCost", "1.2.3").unwrap_err().contains("is not a number"));
        assert!(amount("BilledCost", "-").unwrap_err().contains("is not a number"));
        assert!(amount("BilledCost", "1e400").unwrap_err().contains("too large"));
        assert!(amount("BilledCost", "100000000000000000000000").unwrap_err().contains("too large"));
        assert_eq!(amount("BilledCost", "99999999999999999999.999999999999999999").unwrap(), MAX_UNSCALED);
    }

    #[test]
    fn amounts_format_like_the_api() {
        assert_eq!(format_amount(1000 * ONE), "1000.0");
        assert_eq!(format_amount(-123 * ONE / 100), "-1.23");
        assert_eq!(format_amount(20_520_226_728_990_000_000), "20.52022672899");
        assert_eq!(format_amount(0), "0.0");
    }

    #[test]
    fn focus_timestamps_become_utc_dates() {
        let d = |s: &str| date_from_days(date("ChargePeriodStart", s).unwrap()).to_string();
        assert_eq!(d("2024-09-01"), "2024-09-01");
        assert_eq!(d("2024-09-18 22:00:00"), "2024-09-18");
        assert_eq!(d("2024-09-18T22:00:00Z"), "2024-09-18");
        assert_eq!(d("2024-09-18T22:00:00.123Z"), "2024-09-18");
        assert_eq!(d("2024-09-01T01:00:00+02:00"), "2024-08-31");
    }

    #[test]
    fn bad_dates_are_refused() {
        for s in [
            "2024-13-01",
            "2024-02-30",
            "yesterday",
            "2024/09/01",
            "2024-09-01X",
            "2024-09-01 25:00:00",
            "",
            "2024-09-0\u{e9}",
            "\u{e9}024-09-01",
            "2024-09-01T10:0\u{e9}:00Z",
            "2024-09-01T10:00:00+0\u{e9}",
        ] {
            assert!(date("ChargePeriodStart", s).is_err(), "{s}");
        }
    }
}
