//! The anomaly detector: is a day's cost of one series (a report's provider and service, usage only) out
//! of line with its own past?
//!
//! **Method.** The expected cost of a day is the median of the same weekday over the previous
//! [`Detector::weeks`] weeks (days before the series began do not count; a day without cost counts as 0).
//! The band around it is `k × MAD` (the median absolute deviation from that median, scaled by 1.4826 so
//! that it estimates a standard deviation), and at least 5% of the median, so a perfectly flat series
//! still tolerates small moves. A day is an anomaly when its cost is above the band **and** it exceeds the
//! expected cost by at least `min_amount` **and** by at least `min_percent` percent, so that cents never
//! alert and a tiny service doubling from 0.10 to 0.20 does not either. Fewer than `min_history` same-weekday
//! samples: no verdict ("insufficient history"). Medians and MADs are robust: one earlier spike among the
//! samples moves neither, so a spike does not hide the next one, and a slow drift moves the median with it.
//! Only rises alert (a fall in cost is not money going wrong); purchases, tax and credits are left out by the
//! service (usage costs only). All arithmetic is on exact integers (unscaled amounts).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::amount::{Amount, SCALE};

/// The detector's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detector {
    /// How many earlier same weekdays are looked at.
    pub weeks: u32,
    /// Fewest same-weekday samples (inside the series' life) for a verdict.
    pub min_history: u32,
    /// Band half-width in (scaled) MADs, in thousandths: 3 × 1.4826 = 4.448.
    pub k_milli: i128,
    /// Smallest rise over the expected cost that alerts.
    pub min_amount: Amount,
    /// Smallest rise, in percent of the expected cost, that alerts.
    pub min_percent: i128,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            weeks: 8,
            min_history: 4,
            k_milli: 4448,
            min_amount: Amount::from_unscaled(10 * 10i128.pow(SCALE)).expect("10 is an amount"),
            min_percent: 20,
        }
    }
}

/// What the detector says of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    InsufficientHistory { samples: u32, needed: u32 },
    Normal { expected: i128, upper: i128 },
    Anomaly { expected: i128, upper: i128 },
}

fn median(values: &mut [i128]) -> i128 {
    values.sort_unstable();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        // The mean of the two middle values, truncated toward zero (exact to 1e-18).
        values[n / 2 - 1] / 2 + values[n / 2] / 2 + (values[n / 2 - 1] % 2 + values[n / 2] % 2) / 2
    }
}

impl Detector {
    /// The verdict on `day`'s cost in `series` (unscaled amounts by day; missing days cost 0).
    pub fn judge(&self, series: &BTreeMap<NaiveDate, i128>, day: NaiveDate) -> Verdict {
        let Some(first) = series.keys().next().copied() else {
            return Verdict::InsufficientHistory { samples: 0, needed: self.min_history };
        };
        let mut samples: Vec<i128> = (1..=self.weeks)
            .map(|w| day - chrono::Duration::days(7 * i64::from(w)))
            .filter(|d| *d >= first)
            .map(|d| series.get(&d).copied().unwrap_or(0))
            .collect();
        if (samples.len() as u32) < self.min_history {
            return Verdict::InsufficientHistory { samples: samples.len() as u32, needed: self.min_history };
        }
        let expected = median(&mut samples);
        let mut deviations: Vec<i128> = samples.iter().map(|s| (s - expected).abs()).collect();
        let mad = median(&mut deviations);
        let band = (mad / 1000).saturating_mul(self.k_milli).max(expected.abs() / 20);
        let upper = expected.saturating_add(band);
        let actual = series.get(&day).copied().unwrap_or(0);
        let rise = actual.saturating_sub(expected);
        let anomalous = actual > upper
            && rise >= self.min_amount.unscaled()
            && rise.checked_mul(100).is_some_and(|r| expected.checked_mul(self.min_percent).is_some_and(|e| r >= e));
        if anomalous {
            Verdict::Anomaly { expected, upper }
        } else {
            Verdict::Normal { expected, upper }
        }
    }
}

/// How well the detector does on a labelled series set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scores {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    /// Days judged that hold no planted anomaly.
    pub quiet_days: u64,
}

impl Scores {
    pub fn precision(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_positives).max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_negatives).max(1) as f64
    }
    /// False alerts per 1,000 quiet days.
    pub fn false_alerts_per_1000(&self) -> f64 {
        self.false_positives as f64 * 1000.0 / self.quiet_days.max(1) as f64
    }
}

/// A seeded synthetic year of daily costs: `series` services, each with its own level (5 to 5,000 a day),
/// weekends at 60%, ±8% noise, a slow drift (up to ±0.3% a day) in every third one, a rise of +25%
/// over two months in every fifth (a drift, not an anomaly), and planted spikes (×1.6 to ×4, about one day in 80) — the labelled
/// anomalies. Answers each series with its labelled days.
pub fn synthetic_year(seed: u64, series: usize) -> Vec<(BTreeMap<NaiveDate, i128>, Vec<NaiveDate>)> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date");
    let cent = 10i128.pow(SCALE - 2);
    let mut out = Vec::new();
    for s in 0..series {
        let level_cents = 500 + (next() % 500_000) as i128;
        let drift_per_mille = if s % 3 == 0 { (next() % 7) as i128 - 3 } else { 0 };
        let mut days = BTreeMap::new();
        let mut planted = Vec::new();
        for i in 0..365i64 {
            let day = start + chrono::Duration::days(i);
            let weekend = chrono::Datelike::weekday(&day).num_days_from_monday() >= 5;
            // level × (1 + drift)^i, in per-mille steps, kept integer.
            let mut cents = level_cents * (1000 + drift_per_mille * i as i128).max(200) / 1000;
            if s % 5 == 0 && i >= 180 {
                // +25% over two months, then held.
                cents = cents * (1000 + 250 * (i as i128 - 180).min(60) / 60) / 1000;
            }
            if weekend {
                cents = cents * 60 / 100;
            }
            let noise = (next() % 161) as i128 - 80; // ±8.0%
            cents = cents * (1000 + noise) / 1000;
            if i >= 35 && next() % 80 == 0 {
                let factor = 160 + (next() % 241) as i128; // ×1.6 to ×4.0
                cents = cents * factor / 100;
                planted.push(day);
            }
            days.insert(day, cents * cent);
        }
        out.push((days, planted));
    }
    out
}

/// Runs the detector over every day with enough history of a synthetic year.
pub fn score(detector: &Detector, year: &[(BTreeMap<NaiveDate, i128>, Vec<NaiveDate>)]) -> Scores {
    let mut scores = Scores::default();
    for (series, planted) in year {
        for day in series.keys() {
            let verdict = detector.judge(series, *day);
            let labelled = planted.contains(day);
            match (verdict, labelled) {
                (Verdict::InsufficientHistory { .. }, _) => {}
                (Verdict::Anomaly { .. }, true) => scores.true_positives += 1,
                (Verdict::Anomaly { .. }, false) => scores.false_positives += 1,
                (Verdict::Normal { .. }, true) => scores.false_negatives += 1,
                (Verdict::Normal { .. }, false) => {}
            }
            if !labelled && !matches!(verdict, Verdict::InsufficientHistory { .. }) {
                scores.quiet_days += 1;
            }
        }
    }
    scores
}

/// How a day's bill arrives, in percent of its final cost, on each day after it (day 1 = the next day):
/// 40% the day after, 70% the day after that, whole from the third day (clouds deliver a day's costs one to
/// three days late and restate them).
pub const LATE_ARRIVAL: [(i64, i128); 3] = [(1, 40), (2, 70), (3, 100)];

/// [`score`] as costd's pass meets a synthetic year: each day's bill arrives late ([`LATE_ARRIVAL`]), every
/// pass judges each of the last `judged_days` complete days with what has arrived by then, and a day
/// found on any pass counts once (an anomaly is unique per day).
pub fn score_late(
    detector: &Detector,
    year: &[(BTreeMap<NaiveDate, i128>, Vec<NaiveDate>)],
    judged_days: i64,
) -> Scores {
    let mut scores = Scores::default();
    for (series, planted) in year {
        let mut seen = series.clone();
        for (day, full) in series {
            // The passes that judge `day`: from the day after it, for `judged_days` days; on each, the day
            // holds what has arrived (its earlier weeks, judged against, arrived long before).
            let mut verdicts = Vec::new();
            for after in 1..=judged_days {
                let share = LATE_ARRIVAL.iter().rev().find(|(d, _)| *d <= after).map_or(0, |(_, p)| *p);
                seen.insert(*day, full * share / 100);
                verdicts.push(detector.judge(&seen, *day));
            }
            seen.insert(*day, *full);
            if verdicts.iter().all(|v| matches!(v, Verdict::InsufficientHistory { .. })) {
                continue;
            }
            let found = verdicts.iter().any(|v| matches!(v, Verdict::Anomaly { .. }));
            let labelled = planted.contains(day);
            match (found, labelled) {
                (true, true) => scores.true_positives += 1,
                (true, false) => scores.false_positives += 1,
                (false, true) => scores.false_negatives += 1,
                (false, false) => {}
            }
            if !labelled {
                scores.quiet_days += 1;
            }
        }
    }
    scores
}

/// An anomaly notification as the store returns it.
pub type AnomalyNotification = crate::record::Record<crate::token::AnomalyNotificationToken, NotificationDefinition>;
/// One anomaly found, as the store returns it.
pub type AnomalyAlert = crate::record::Record<crate::token::AnomalyAlertToken, AlertDefinition>;

/// Who hears of a report's anomalies, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NotificationDefinition {
    pub cost_report_token: String,
    /// The smallest rise over the expected cost (whole currency units) that is sent; never below the
    /// detector's own minimum.
    pub threshold: u32,
    pub user_tokens: Vec<String>,
    pub recipient_channels: Vec<String>,
}

/// An anomaly notification's create or update body.
#[derive(Debug, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = AnomalyNotificationFields))]
pub struct NotificationFields {
    pub cost_report_token: Option<String>,
    pub threshold: Option<serde_json::Value>,
    pub user_tokens: Option<Vec<String>>,
    pub recipient_channels: Option<Vec<String>>,
}

impl NotificationDefinition {
    pub fn recipients(&self) -> Vec<crate::budget::Recipient> {
        self.recipient_channels.iter().filter_map(|r| crate::budget::Recipient::parse("recipient", r).ok()).collect()
    }

    /// `current` (none on create) with `f` laid over it, every problem listed.
    pub fn overlay(
        current: Option<&NotificationDefinition>,
        f: &NotificationFields,
    ) -> Result<NotificationDefinition, Vec<String>> {
        let mut errors = Vec::new();
        let report = match (f.cost_report_token.as_deref().map(str::trim), current) {
            (Some(r), _) if r.starts_with(crate::token::prefix::REPORT) && !r.starts_with("rprt_ntfctn_") => {
                r.to_string()
            }
            (Some(r), _) => {
                errors.push(format!("cost_report_token must be a cost report token, got {r:?}"));
                String::new()
            }
            (None, Some(c)) => c.cost_report_token.clone(),
            (None, None) => {
                errors.push("cost_report_token is required".into());
                String::new()
            }
        };
        let threshold = match &f.threshold {
            None | Some(serde_json::Value::Null) => current.map(|c| c.threshold).unwrap_or(10),
            Some(v) => match v.as_u64() {
                Some(t) if t <= 1_000_000_000 => t as u32,
                _ => {
                    errors.push(format!("threshold must be a whole amount from 0, got {v}"));
                    0
                }
            },
        };
        let user_tokens = match &f.user_tokens {
            Some(u) => u.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            None => current.map(|c| c.user_tokens.clone()).unwrap_or_default(),
        };
        let recipient_channels = match &f.recipient_channels {
            Some(r) => crate::budget::recipient_channels(r, &mut errors),
            None => current.map(|c| c.recipient_channels.clone()).unwrap_or_default(),
        };
        crate::budget::check_recipient_count(recipient_channels.len() + user_tokens.len(), &mut errors);
        if errors.is_empty() {
            Ok(NotificationDefinition { cost_report_token: report, threshold, user_tokens, recipient_channels })
        } else {
            Err(errors)
        }
    }
}

/// One anomaly found, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AlertDefinition {
    pub cost_report_token: String,
    pub provider: String,
    pub service: String,
    pub category: String,
    pub day: NaiveDate,
    pub amount: Amount,
    /// The expected cost (the weekday median).
    pub previous_amount: Amount,
    /// The top of the expected band (the median plus the band); a cost above it (and over the minimums)
    /// was the anomaly. `None` for anomalies stored before costd kept it.
    #[serde(default)]
    pub expected_upper: Option<Amount>,
    pub seven_day_average: Amount,
    /// `active` or `archived`.
    pub status: String,
    pub feedback: Option<String>,
}

/// An anomaly alert's update body (Vantage's `updateAnomalyAlert`).
#[derive(Debug, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertUpdate {
    pub status: Option<String>,
    pub feedback: Option<String>,
}

impl AlertDefinition {
    pub fn update(&self, u: &AlertUpdate) -> Result<AlertDefinition, Vec<String>> {
        let mut next = self.clone();
        match u.status.as_deref().map(str::trim) {
            Some(s @ ("active" | "archived")) => next.status = s.to_string(),
            Some(other) => return Err(vec![format!("status must be active or archived, got {other:?}")]),
            None => return Err(vec!["status is required (active or archived)".into()]),
        }
        if let Some(f) = &u.feedback {
            if f.chars().count() > 1000 {
                return Err(vec!["feedback is longer than 1000 characters".into()]);
            }
            next.feedback = Some(f.trim().to_string()).filter(|f| !f.is_empty());
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn units(n: i128) -> i128 {
        n * 10i128.pow(SCALE)
    }

    #[test]
    fn a_spike_on_a_weekday_is_judged_against_that_weekday() {
        let mut series = BTreeMap::new();
        // Eight weeks of Mondays at 100 (±2), other days at 20.
        for i in 0..56 {
            let day = d("2024-01-01") + chrono::Duration::days(i);
            let monday = chrono::Datelike::weekday(&day).num_days_from_monday() == 0;
            series.insert(day, if monday { units(100 + i128::from(i % 3 == 0) * 2) } else { units(20) });
        }
        let monday = d("2024-02-26");
        series.insert(monday, units(104));
        assert!(matches!(Detector::default().judge(&series, monday), Verdict::Normal { .. }), "a usual Monday");
        series.insert(monday, units(180));
        assert!(matches!(Detector::default().judge(&series, monday), Verdict::Anomaly { .. }), "80% over");
        // A Tuesday at 100 is a spike for a Tuesday.
        series.insert(d("2024-02-27"), units(100));
        assert!(matches!(Detector::default().judge(&series, d("2024-02-27")), Verdict::Anomaly { .. }));
    }

    #[test]
    fn cents_never_alert_and_history_is_required() {
        let mut series = BTreeMap::new();
        for i in 0..56 {
            series.insert(d("2024-01-01") + chrono::Duration::days(i), units(1) / 10);
        }
        series.insert(d("2024-02-26"), units(5)); // 0.10 → 5: 50× but under the 10 minimum
        assert!(matches!(Detector::default().judge(&series, d("2024-02-26")), Verdict::Normal { .. }));
        let young: BTreeMap<_, _> = series.range(d("2024-02-05")..).map(|(k, v)| (*k, *v)).collect();
        assert_eq!(
            Detector::default().judge(&young, d("2024-02-26")),
            Verdict::InsufficientHistory { samples: 3, needed: 4 }
        );
    }

    #[test]
    fn the_detector_finds_planted_spikes_in_a_synthetic_year_and_stays_quiet_otherwise() {
        let year = synthetic_year(2026, 60);
        let scores = score(&Detector::default(), &year);
        println!(
            "synthetic year (60 series): precision {:.3}, recall {:.3}, {:.2} false alerts per 1,000 quiet days ({scores:?})",
            scores.precision(),
            scores.recall(),
            scores.false_alerts_per_1000()
        );
        assert!(scores.true_positives > 150, "{scores:?}");
        assert!(scores.precision() >= 0.9, "{scores:?}");
        assert!(scores.recall() >= 0.95, "{scores:?}");
        assert!(scores.false_alerts_per_1000() <= 2.0, "{scores:?}");
    }

    #[test]
    fn late_bills_judged_for_fourteen_days_score_as_if_they_had_arrived_whole() {
        let year = synthetic_year(2026, 60);
        let whole = score(&Detector::default(), &year);
        let late = score_late(&Detector::default(), &year, 14);
        println!(
            "synthetic year, late bills, 14 days judged: precision {:.3}, recall {:.3}, {:.2} false alerts per 1,000 quiet days ({late:?})",
            late.precision(),
            late.recall(),
            late.false_alerts_per_1000()
        );
        assert_eq!(late, whole, "a bill judged again once whole finds what the whole bill shows, and nothing more");
        // Judging yesterday only (the detector before): the 40% of a day's bill hides most spikes.
        let yesterday_only = score_late(&Detector::default(), &year, 1);
        println!("yesterday only: recall {:.3} ({yesterday_only:?})", yesterday_only.recall());
        assert!(yesterday_only.recall() < 0.5, "{yesterday_only:?}");
    }
}
