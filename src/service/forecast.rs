//! A cost report's forecast (`GET /v2/cost_reports/{token}/forecasted_costs`): run rate with weekday
//! seasonality. Each forecast day is the average cost of the same weekday over the four weeks (28 days)
//! before the forecast starts, for the report's costs as a whole (provider and service `all`) and for each
//! service. Weekly patterns (quiet weekends) carry over; a monthly charge is spread over the weekdays.
//! Amounts stay exact decimals (the average of 18-place amounts, truncated at the 18th place).

use crate::service::ServiceError;
use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use crate::model::amount::Amount;
use crate::model::token::AccountToken;
use crate::service::costs::CostsContext;
use crate::service::series::{report_series, By, SeriesQuery};

/// Days of history a forecast reads: four of each weekday.
pub const HISTORY_DAYS: i64 = 28;

/// One forecast day of one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastDay {
    pub date: NaiveDate,
    pub provider: String,
    pub service: String,
    pub amount: Amount,
}

/// Each weekday's forecast (Monday first) of a series whose daily history (`history`, days missing count
/// 0) covers the 28 days before `from`: the weekday's average over those four weeks.
pub fn weekday_means(history: &BTreeMap<NaiveDate, i128>, from: NaiveDate) -> [Amount; 7] {
    let mut by_weekday = [0i128; 7];
    let window_start = from - chrono::Duration::days(HISTORY_DAYS);
    for (day, unscaled) in history.range(window_start..from) {
        by_weekday[day.weekday().num_days_from_monday() as usize] += unscaled;
    }
    let weeks = (HISTORY_DAYS / 7) as i128;
    by_weekday.map(|sum| Amount::from_unscaled(sum / weeks).unwrap_or(Amount::ZERO))
}

/// The days `from..=to` of a series (see [`weekday_means`]).
pub fn project(history: &BTreeMap<NaiveDate, i128>, from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, Amount)> {
    let means = weekday_means(history, from);
    from.iter_days().take_while(|d| *d <= to).map(|d| (d, means[d.weekday().num_days_from_monday() as usize])).collect()
}

/// A report's forecast: every series (the whole first, then each provider and service) over `from..=to`.
/// It is seven numbers a series, whatever the length of the period; the days of a page are made when
/// asked for, so three years of thousands of services cost a page's worth of memory, not millions of rows.
#[derive(Debug, Clone)]
pub struct Forecast {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// (provider, service, the forecast of each weekday, Monday first), in the order they are listed.
    series: Vec<(String, String, [Amount; 7])>,
    pub currency: String,
}

impl Forecast {
    /// How many days of all series there are: what a page counts through.
    pub fn len(&self) -> usize {
        let days = usize::try_from((self.to - self.from).num_days() + 1).unwrap_or(0);
        days.saturating_mul(self.series.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `limit` days from the `skip`th: by date, and on each date the whole first, then each service.
    pub fn page(&self, skip: usize, limit: usize) -> Vec<ForecastDay> {
        let n = self.series.len();
        (skip..self.len().min(skip.saturating_add(limit)))
            .map(|k| {
                let date = self.from + chrono::Duration::days((k / n) as i64);
                let (provider, service, means) = &self.series[k % n];
                let amount = means[date.weekday().num_days_from_monday() as usize];
                ForecastDay { date, provider: provider.clone(), service: service.clone(), amount }
            })
            .collect()
    }

    /// Every day of every series (tests, small periods).
    pub fn days(&self) -> Vec<ForecastDay> {
        self.page(0, self.len())
    }
}

/// The forecast of a report from `from` to `to` (defaults: today, and the last day of next month),
/// narrowed to one `provider` and `service` (`all` for the whole), with its currency.
#[allow(clippy::too_many_arguments)]
pub async fn forecast(
    ctx: &CostsContext,
    account: &AccountToken,
    report: &str,
    today: NaiveDate,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    provider: Option<&str>,
    service: Option<&str>,
) -> Result<Forecast, ServiceError> {
    let from = from.unwrap_or(today);
    let next_month = crate::model::cost_query::month_of(today).1.succ_opt().expect("a date");
    let to = to.unwrap_or(crate::model::cost_query::month_of(next_month).1);
    if to < from {
        return Err(ServiceError::invalid(format!("end_date ({to}) must not be before start_date ({from})")));
    }
    if (to - from).num_days() > 366 * 3 {
        return Err(ServiceError::invalid("a forecast covers at most three years"));
    }
    let query = SeriesQuery {
        start: from - chrono::Duration::days(HISTORY_DAYS),
        end: from.pred_opt().expect("a date"),
        by: By::ProviderService,
        usage_only: false,
    };
    let history = report_series(ctx, account, report, today, &query).await?;
    let currency = history.currency.clone();
    let group =
        |p: &crate::service::series::Point, i: usize| p.group.get(i).map(|(_, v)| v.clone()).unwrap_or_default();
    let what = "a forecast's history";
    let mut series: BTreeMap<(String, String), BTreeMap<NaiveDate, i128>> =
        history.daily(what, |p| Some((group(p, 0), group(p, 1))))?;
    series.insert(("all".into(), "all".into()), history.daily(what, |_| Some(()))?.remove(&()).unwrap_or_default());
    series.entry(("all".into(), "all".into())).or_default();
    let wanted = |v: &str, filter: Option<&str>| filter.is_none_or(|f| f == v);
    let mut kept = Vec::new();
    for ((p, s), history) in &series {
        let is_all = p == "all" && s == "all";
        // `provider=all` or `service=all` asks for the whole; a name asks for that series.
        let keep = match (provider, service) {
            (None, None) => true,
            _ => {
                let (pf, sf) = (provider.unwrap_or("all"), service.unwrap_or("all"));
                if pf == "all" && sf == "all" {
                    is_all
                } else {
                    !is_all && (pf == "all" || wanted(p, Some(pf))) && (sf == "all" || wanted(s, Some(sf)))
                }
            }
        };
        if keep {
            kept.push((p.clone(), s.clone(), weekday_means(history, from)));
        }
    }
    // The whole first, then each service.
    kept.sort_by(|a, b| (a.1 != "all" || a.0 != "all", &a.0, &a.1).cmp(&(b.1 != "all" || b.0 != "all", &b.0, &b.1)));
    Ok(Forecast { from, to, series: kept, currency })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn each_day_is_the_average_of_its_weekday_over_the_last_four_weeks() {
        let one = 10i128.pow(18);
        // Four weeks before Monday 2024-09-02: weekdays cost 10, weekends 1; one Monday cost 14.
        let mut history = BTreeMap::new();
        for day in d("2024-08-05").iter_days().take(28) {
            let weekend = day.weekday().num_days_from_monday() >= 5;
            history.insert(day, if weekend { one } else { 10 * one });
        }
        history.insert(d("2024-08-12"), 14 * one);
        // Older history does not count.
        history.insert(d("2024-07-01"), 1000 * one);
        let f = project(&history, d("2024-09-02"), d("2024-09-08"));
        let amounts: Vec<String> = f.iter().map(|(_, a)| a.to_string()).collect();
        assert_eq!(amounts, ["11.0", "10.0", "10.0", "10.0", "10.0", "1.0", "1.0"]);
        assert_eq!(f[0].0, d("2024-09-02"));
        // One Monday of 1 in four weeks is 0.25 a Monday; 1e-18 over four truncates to 0 (never a float).
        let mut once = BTreeMap::new();
        once.insert(d("2024-08-26"), one);
        assert_eq!(project(&once, d("2024-09-02"), d("2024-09-02"))[0].1.to_string(), "0.25");
        once.insert(d("2024-08-26"), 1);
        assert_eq!(project(&once, d("2024-09-02"), d("2024-09-02"))[0].1, Amount::ZERO);
        let none = project(&BTreeMap::new(), d("2024-09-02"), d("2024-09-03"));
        assert_eq!(none.len(), 2);
        assert_eq!(none[0].1, Amount::ZERO);
    }

    #[test]
    fn a_page_of_a_long_forecast_of_many_services_is_made_alone() {
        let one = Amount::from_unscaled(10i128.pow(18)).unwrap();
        let mut series = vec![("all".to_string(), "all".to_string(), [one; 7])];
        series.extend((0..3000).map(|i| ("aws".to_string(), format!("service {i:04}"), [Amount::ZERO; 7])));
        let f = Forecast { from: d("2024-01-01"), to: d("2026-12-31"), series, currency: "USD".into() };
        assert_eq!(f.len(), 1096 * 3001);
        // The last page of 3.3 million days: made without the others.
        let last = f.page(f.len() - 2, 100);
        assert_eq!(last.len(), 2);
        assert_eq!((last[1].date, last[1].service.as_str()), (d("2026-12-31"), "service 2999"));
        // Pages tile the whole in order: by date, the whole first.
        let small = Forecast { to: d("2024-01-03"), series: f.series[..3].to_vec(), ..f.clone() };
        let all = small.days();
        assert_eq!(all.len(), 9);
        assert_eq!((all[3].date, all[3].service.as_str(), all[3].amount), (d("2024-01-02"), "all", one));
        let paged: Vec<ForecastDay> = (0..5).flat_map(|p| small.page(p * 2, 2)).collect();
        assert_eq!(paged, all);
        assert!(small.page(9, 5).is_empty());
    }
}
