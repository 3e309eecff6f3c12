//! Exchange rates the user supplies (`POST /v2/exchange_rates/csv`) and how a workspace with currency
//! conversion turns a cost in one currency into its own (docs/currency.md).
//!
//! A rate row `base_currency_code, currency_code, rate, date` says one unit of `base` is worth `rate` units
//! of `currency` from `date` on. A cost in `X` shown in a workspace's `W` takes, for its day, the newest rate
//! effective on or before that day (or before the last day of its month, with
//! `end_of_billing_period_rate`): `amount × rate` when a rate from `X` to `W` was supplied, else
//! `amount ÷ rate` of the rates from `W` to `X`. No rate through a third currency, and no rate is ever
//! assumed: a cost with none is an error naming the currencies and the day.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

/// Most decimal places a rate may have: an amount (18 places) times a rate stays exact in 256 bits, and
/// published rates have at most 10.
pub const MAX_RATE_PLACES: u32 = 12;

/// Largest rate accepted (one unit of a currency worth a trillion of another is a typo).
pub const MAX_RATE: i64 = 1_000_000_000_000;

/// Most rows one CSV may hold (ten years of daily rates for 25 currencies fit).
pub const MAX_CSV_ROWS: usize = 100_000;

/// The CSV's columns, in the order a file without a header row gives them.
pub const CSV_COLUMNS: [&str; 4] = ["base_currency_code", "currency_code", "rate", "date"];

/// One unit of `base` is worth `rate` units of `currency` from `effective_date` on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExchangeRate {
    pub base: String,
    pub currency: String,
    /// Positive, at most [`MAX_RATE_PLACES`] places, normalised (no trailing zeros).
    pub rate: Decimal,
    pub effective_date: NaiveDate,
}

/// An ISO 4217-shaped code (three ASCII letters), upper-cased; `None` when `text` is not one.
pub fn currency_code(text: &str) -> Option<String> {
    let code = text.trim().to_ascii_uppercase();
    (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

/// The rates of a CSV file's rows, each row its 1-based line number and cells. A first row naming the
/// columns is a header (columns in any order; `effective_date` may name `date`); otherwise the columns are
/// [`CSV_COLUMNS`] in that order. Every bad row is reported (`line 4: rate must be …`), and any makes the
/// whole file refused.
pub fn parse_csv_rows(rows: impl IntoIterator<Item = (u64, Vec<String>)>) -> Result<Vec<ExchangeRate>, Vec<String>> {
    use crate::csv_table::{parse_rows, Column, Table};
    const COLUMNS: [Column; 4] = [
        Column { name: CSV_COLUMNS[0], aliases: &[], required: true },
        Column { name: CSV_COLUMNS[1], aliases: &[], required: true },
        Column { name: CSV_COLUMNS[2], aliases: &[], required: true },
        Column { name: CSV_COLUMNS[3], aliases: &["effective_date"], required: true },
    ];
    parse_rows(
        &Table { columns: &COLUMNS, max_rows: MAX_CSV_ROWS, items: "rates" },
        rows,
        |c| parse_row(c.get(0), c.get(1), c.get(2), c.get(3)),
        |r| (r.base.clone(), r.currency.clone(), r.effective_date),
        |r| format!("{} to {} on {}", r.base, r.currency, r.effective_date),
    )
}

/// One row's cells as a rate.
fn parse_row(base: &str, currency: &str, rate: &str, date: &str) -> Result<ExchangeRate, Vec<String>> {
    let mut errors = Vec::new();
    let mut code = |field: &str, text: &str| {
        let code = currency_code(text);
        if code.is_none() {
            errors.push(format!("{field} must be a three-letter currency code like USD, got {text:?}"));
        }
        code
    };
    let (base, currency) = (code("base_currency_code", base), code("currency_code", currency));
    let rate = match crate::decimal::parse("rate", rate) {
        Ok(r) if r <= Decimal::ZERO => Err(format!("rate must be above 0, got {r}")),
        Ok(r) if r > Decimal::from(MAX_RATE) => Err(format!("rate must be at most {MAX_RATE}, got {r}")),
        Ok(r) if r.normalize().scale() > MAX_RATE_PLACES => {
            Err(format!("rate may have at most {MAX_RATE_PLACES} decimal places, got {r}"))
        }
        Ok(r) => Ok(r.normalize()),
        Err(_) if rate.is_empty() => Err("rate is required".to_string()),
        Err(_) => Err(format!("rate must be a decimal number like 0.92, got {rate:?}")),
    };
    let rate = rate.map_err(|e| errors.push(e)).ok();
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| errors.push(format!("date must be a day like 2026-03-01, got {date:?}")))
        .ok();
    if let (Some(b), Some(c)) = (&base, &currency) {
        if b == c {
            errors.push(format!("base_currency_code and currency_code are both {b}"));
        }
    }
    match (base, currency, rate, date) {
        (Some(base), Some(currency), Some(rate), Some(effective_date)) if errors.is_empty() => {
            Ok(ExchangeRate { base, currency, rate, effective_date })
        }
        _ => Err(errors),
    }
}

/// Which day's rate a cost takes (a workspace's `exchange_rate_date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateDate {
    /// The rate in effect on the cost's own day.
    Daily,
    /// The rate in effect on the last day of the cost's month (its billing period).
    EndOfBillingPeriod,
}

impl RateDate {
    /// A workspace's `exchange_rate_date` (already checked to be one of the two).
    pub fn from_setting(setting: &str) -> RateDate {
        match setting {
            "end_of_billing_period_rate" => RateDate::EndOfBillingPeriod,
            _ => RateDate::Daily,
        }
    }

    /// The day whose rate a cost of `day` takes.
    pub fn rate_day(self, day: NaiveDate) -> NaiveDate {
        match self {
            RateDate::Daily => day,
            RateDate::EndOfBillingPeriod => {
                let next = if day.month() == 12 {
                    NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
                };
                next.and_then(|d| d.pred_opt()).unwrap_or(day)
            }
        }
    }
}

/// How an amount of one currency becomes the target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The rates are from the cost's currency to the target: `amount × rate`.
    Multiply,
    /// The rates are from the target to the cost's currency: `amount ÷ rate`.
    Divide,
}

/// The rates that turn one currency into the target, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PairRates {
    pub from: String,
    pub direction: Direction,
    /// (effective date, rate), ascending by date, one per date.
    pub rates: Vec<(NaiveDate, Decimal)>,
}

impl PairRates {
    /// The rate in effect on `day`: the newest effective on or before it.
    pub fn on(&self, day: NaiveDate) -> Option<Decimal> {
        let after = self.rates.partition_point(|(d, _)| *d <= day);
        after.checked_sub(1).map(|i| self.rates[i].1)
    }
}

/// What a workspace with currency conversion does to a query's costs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conversion {
    /// The workspace's currency: every cost is shown in it.
    pub to: String,
    pub date: RateDate,
    /// One entry per currency some rate links to `to`.
    pub pairs: Vec<PairRates>,
}

impl Conversion {
    /// The conversion to `to` with `rates` (any rates; those not involving `to` are ignored). A currency with
    /// rates from it to `to` uses those (multiplying); one with only rates from `to` to it divides by them.
    pub fn new(to: &str, date: RateDate, rates: &[ExchangeRate]) -> Conversion {
        use std::collections::BTreeMap;
        let mut direct: BTreeMap<&str, BTreeMap<NaiveDate, Decimal>> = BTreeMap::new();
        let mut inverse: BTreeMap<&str, BTreeMap<NaiveDate, Decimal>> = BTreeMap::new();
        for r in rates {
            if r.currency == to && r.base != to {
                direct.entry(&r.base).or_default().insert(r.effective_date, r.rate);
            } else if r.base == to && r.currency != to {
                inverse.entry(&r.currency).or_default().insert(r.effective_date, r.rate);
            }
        }
        let mut pairs: Vec<PairRates> = direct
            .iter()
            .map(|(from, rates)| PairRates {
                from: from.to_string(),
                direction: Direction::Multiply,
                rates: rates.iter().map(|(d, r)| (*d, *r)).collect(),
            })
            .collect();
        for (from, rates) in inverse {
            if !direct.contains_key(from) {
                pairs.push(PairRates {
                    from: from.to_string(),
                    direction: Direction::Divide,
                    rates: rates.into_iter().collect(),
                });
            }
        }
        pairs.sort_by(|a, b| a.from.cmp(&b.from));
        Conversion { to: to.to_string(), date, pairs }
    }

    /// The rates for costs in `currency`, if any were supplied.
    pub fn pair(&self, currency: &str) -> Option<&PairRates> {
        self.pairs.iter().find(|p| p.from == currency)
    }

    /// The decimal places converting adds to an amount when every rate multiplies (so a sum converted is
    /// the sum of the rows converted while no product rounds); `None` when a rate divides.
    pub fn added_places(&self) -> Option<u32> {
        let mut places = 0;
        for pair in &self.pairs {
            if pair.direction == Direction::Divide {
                return None;
            }
            places = pair.rates.iter().map(|(_, r)| r.normalize().scale()).fold(places, u32::max);
        }
        Some(places)
    }

    /// Every rate costs in `currency` from `start` to `end` were converted by, oldest first: with daily rates,
    /// the rate in effect on `start` and each one taking effect later in the period; with the billing
    /// period's end, the rate in effect on the last day of each month the period touches. Each is
    /// (the day the rate took effect, the rate, its direction), once.
    pub fn used(&self, currency: &str, start: NaiveDate, end: NaiveDate) -> Vec<(NaiveDate, Decimal, Direction)> {
        let Some(pair) = self.pair(currency) else { return Vec::new() };
        let in_effect = |day: NaiveDate| pair.rates.iter().rev().find(|(d, _)| *d <= day).copied();
        let mut days = vec![self.date.rate_day(start)];
        match self.date {
            RateDate::Daily => days.extend(pair.rates.iter().map(|(d, _)| *d).filter(|d| *d > start && *d <= end)),
            RateDate::EndOfBillingPeriod => {
                let mut month_end = self.date.rate_day(start);
                while month_end < self.date.rate_day(end) {
                    month_end = self.date.rate_day(month_end + chrono::Days::new(1));
                    days.push(month_end);
                }
            }
        }
        let mut used: Vec<(NaiveDate, Decimal, Direction)> = Vec::new();
        for day in days {
            if let Some((effective, rate)) = in_effect(day) {
                if !used.iter().any(|(d, _, _)| *d == effective) {
                    used.push((effective, rate, pair.direction));
                }
            }
        }
        used
    }

    /// Why a cost in `currency` on `day` cannot be converted (no rate in effect), in the user's words.
    pub fn missing(&self, currency: &str, day: NaiveDate) -> String {
        let rate_day = self.date.rate_day(day);
        let when = match self.date {
            RateDate::Daily => format!("on or before {rate_day}"),
            RateDate::EndOfBillingPeriod => format!("on or before {rate_day} (the end of the billing period of {day})"),
        };
        format!(
            "no exchange rate from {currency} to {to} in effect {when}: this workspace shows costs in {to}; upload a \
             rate ({currency},{to},<rate>,<date>) with POST /v2/exchange_rates/csv or turn enable_currency_conversion off",
            to = self.to
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<(u64, Vec<String>)> {
        text.lines().enumerate().map(|(i, l)| (i as u64 + 1, l.split(',').map(str::to_string).collect())).collect()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_rates_a_period_used_are_the_one_in_effect_at_its_start_and_those_after_or_each_months_end() {
        let rate = |base: &str, r: &str, d: &str| ExchangeRate {
            base: base.into(),
            currency: "EUR".into(),
            rate: r.parse().unwrap(),
            effective_date: day(d),
        };
        let rates =
            [rate("USD", "0.5", "2024-01-01"), rate("USD", "0.8", "2024-09-15"), rate("USD", "0.9", "2024-10-20")];
        let daily = Conversion::new("EUR", RateDate::Daily, &rates);
        let used: Vec<(NaiveDate, String)> = daily
            .used("USD", day("2024-09-01"), day("2024-10-31"))
            .into_iter()
            .map(|(d, r, _)| (d, r.to_string()))
            .collect();
        assert_eq!(
            used,
            [(day("2024-01-01"), "0.5".into()), (day("2024-09-15"), "0.8".into()), (day("2024-10-20"), "0.9".into())]
        );
        let monthly = Conversion::new("EUR", RateDate::EndOfBillingPeriod, &rates);
        let used: Vec<NaiveDate> =
            monthly.used("USD", day("2024-08-10"), day("2024-10-31")).into_iter().map(|(d, _, _)| d).collect();
        assert_eq!(
            used,
            [day("2024-01-01"), day("2024-09-15"), day("2024-10-20")],
            "August's, September's, October's ends"
        );
        assert!(monthly.used("GBP", day("2024-08-10"), day("2024-10-31")).is_empty());
    }

    #[test]
    fn a_file_with_or_without_a_header_gives_its_rates() {
        let with = parse_csv_rows(rows("date,rate,currency_code,base_currency_code\n2026-03-01,0.92,eur,USD")).unwrap();
        let without = parse_csv_rows(rows("USD,EUR,0.920,2026-03-01")).unwrap();
        assert_eq!(with, without);
        assert_eq!(with[0].rate.to_string(), "0.92");
        assert_eq!(with[0].currency, "EUR");
    }

    #[test]
    fn every_bad_row_is_named_by_its_line_and_nothing_is_kept() {
        let errors = parse_csv_rows(rows(
            "base_currency_code,currency_code,rate,date\nUSD,EUR,0,2026-03-01\nUS,EUR,1,2026-03-01\nUSD,EUR,1,03/01/2026\n\
             USD,USD,1,2026-03-01\nUSD,EUR,0.1234567890123,2026-03-02\nUSD,EUR,1,2026-03-05\nUSD,EUR,2,2026-03-05",
        ))
        .unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "line 2: rate must be above 0",
            "line 3: base_currency_code must be a three-letter",
            "line 4: date must be a day",
            "line 5: base_currency_code and currency_code are both USD",
            "line 6: rate may have at most 12 decimal places",
            "line 8: USD to EUR on 2026-03-05 is already on line 7",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        assert!(
            parse_csv_rows(rows("base_currency_code,currency_code,rate")).unwrap_err()[0].contains("no column date")
        );
        assert!(parse_csv_rows(rows("")).unwrap_err()[0].contains("no rates"));
    }

    #[test]
    fn a_cost_takes_the_newest_rate_in_effect_on_its_day_or_its_months_end() {
        let rates =
            parse_csv_rows(rows("EUR,USD,1.1,2026-03-01\nEUR,USD,1.2,2026-03-15\nUSD,JPY,150,2026-01-01")).unwrap();
        let daily = Conversion::new("USD", RateDate::Daily, &rates);
        let eur = daily.pair("EUR").unwrap();
        assert_eq!(eur.direction, Direction::Multiply);
        assert_eq!(eur.on(day("2026-02-28")), None);
        assert_eq!(eur.on(day("2026-03-14")).unwrap().to_string(), "1.1");
        assert_eq!(eur.on(day("2026-03-15")).unwrap().to_string(), "1.2");
        assert_eq!(daily.pair("JPY").unwrap().direction, Direction::Divide);
        assert_eq!(daily.added_places(), None);
        let monthly = RateDate::EndOfBillingPeriod;
        assert_eq!(monthly.rate_day(day("2026-03-02")), day("2026-03-31"));
        assert_eq!(monthly.rate_day(day("2026-12-02")), day("2026-12-31"));
        assert_eq!(monthly.rate_day(day("2028-02-02")), day("2028-02-29"));
        let only_eur = Conversion::new("USD", RateDate::Daily, &rates[..2]);
        assert_eq!(only_eur.added_places(), Some(1));
        assert!(daily
            .missing("GBP", day("2026-03-02"))
            .contains("no exchange rate from GBP to USD in effect on or before 2026-03-02"));
    }

    #[test]
    fn a_direct_rate_wins_over_the_inverse_one() {
        let rates = parse_csv_rows(rows("EUR,USD,1.1,2026-03-01\nUSD,EUR,0.8,2026-03-01")).unwrap();
        let c = Conversion::new("USD", RateDate::Daily, &rates);
        assert_eq!(c.pairs.len(), 1);
        assert_eq!(c.pairs[0].direction, Direction::Multiply);
    }
}
