//! Field parsers for cost CSVs: exact amounts, FOCUS dates and charge categories. Each returns a
//! sentence fit for a `Row N: …` error.

use chrono::{DateTime, NaiveDate};

/// FOCUS ChargeCategory values (1.0 plus 1.x Purchase and Adjustment), case-sensitive as the spec says.
pub const CHARGE_CATEGORIES: [&str; 8] =
    ["Usage", "Credit", "Refund", "Discount", "Tax", "Fee", "Purchase", "Adjustment"];

pub use costd_model::amount::{format as format_amount, parse as amount};

/// True for the spellings of "no value" in real exports: empty, or the literal `NULL`.
pub fn is_null(s: &str) -> bool {
    s.is_empty() || s == "NULL" || s == "null"
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
