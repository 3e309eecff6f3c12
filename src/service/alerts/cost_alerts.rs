//! Cost alerts judged: for each watched report, the costs of a complete interval (day, week, month,
//! quarter) against the one before, through the report series: for the whole report or, when the report
//! names groupings, for each of its groups (a spike in one service is not hidden by a fall in another).
//! A rise past the threshold is recorded once as an event (unique per alert and event key: alert, report,
//! window, group), after its messages are written to the outbox under the same key, so a crash between the
//! two only makes the next pass write them again (a no-op) and then record the event. Several groups firing
//! in one window are one digest per recipient.
//!
//! **Late and restated bills**: each pass judges the last complete interval, and the older intervals that
//! ended within [`LATE_DAYS`] days and after the alert was made (an alert does not fire for windows from
//! before it existed). A window whose data changes after it was judged is judged again, and fires at most
//! once (its event key).

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;

use super::message::{comparison, percent, Message, Windows};
use super::{AlertContext, Evaluator};
use crate::model::amount::Amount;
use crate::model::cost_alert::{CostAlert, EventDefinition, Interval};
use crate::model::token::AccountToken;
use crate::service::records;
use crate::service::series::{report_series, By, Series, SeriesQuery};
use crate::service::ServiceError;
use crate::store::wing::{CostAlertEvents, CostAlerts, RecordFilter};
use crate::store::Store;

type Result<T> = std::result::Result<T, ServiceError>;

/// How many days after a window ends a pass still judges it (bills arrive late and are restated).
pub const LATE_DAYS: i64 = super::anomalies::LATE_DAYS;

/// The cost alerts' evaluator.
pub struct CostAlertEvaluator;

#[async_trait::async_trait]
impl Evaluator for CostAlertEvaluator {
    fn name(&self) -> &'static str {
        "cost alerts"
    }

    async fn evaluate(&self, ctx: &AlertContext, account: &AccountToken, today: NaiveDate) -> Result<u64> {
        let mut written = 0;
        for alert in records::all::<CostAlerts>(ctx.costs.store.as_ref(), account).await? {
            match evaluate_alert(ctx, account, &alert, today).await {
                Ok(n) => written += n,
                Err(e) => {
                    tracing::warn!(alert = %alert.token, error = %format!("{e:#}"), "a cost alert could not be judged")
                }
            }
        }
        Ok(written)
    }
}

/// The windows a pass judges for an alert made on `made`: the last complete one, and the older ones that
/// ended within [`LATE_DAYS`] days before `today` and on or after `made`; newest first, each once.
pub fn windows_to_judge(interval: Interval, today: NaiveDate, made: NaiveDate) -> Vec<Windows> {
    let mut out: Vec<Windows> = vec![interval.windows(today)];
    for back in 1..=LATE_DAYS {
        let day = today - chrono::Duration::days(back);
        let w = interval.windows(day);
        let ended = w.0 .1;
        if ended < made || (today - ended).num_days() > LATE_DAYS {
            continue;
        }
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// One group's costs in an alert's two windows: the group's values by grouping name (empty: the whole report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupWindows {
    group: Vec<(String, String)>,
    pub(super) before: Amount,
    pub(super) now: Amount,
}

impl GroupWindows {
    /// `service=EC2, region=us-east-1`: how messages and event keys name the group.
    fn label(&self) -> String {
        self.group.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

/// Each group's costs in each of `windows`: one series over all of them.
pub(super) fn windows_of(
    series: &Series,
    windows: &[Windows],
    per_group: bool,
) -> Result<Vec<(Windows, Vec<GroupWindows>)>> {
    let by_day = series.sum_by("a cost alert's window", |p| Some((p.group.clone(), p.day)))?;
    let mut groups: BTreeMap<Vec<(String, String)>, ()> = by_day.keys().map(|(g, _)| (g.clone(), ())).collect();
    if !per_group {
        groups.entry(Vec::new()).or_default();
    }
    let overflow = || ServiceError::unprocessable("a cost alert's window does not fit Decimal128(38, 18)");
    let sum = |group: &Vec<(String, String)>, (from, to): (NaiveDate, NaiveDate)| -> Result<Amount> {
        let mut total = Amount::ZERO;
        for ((_, _), amount) in by_day.range((group.clone(), from)..=(group.clone(), to)) {
            total = total.checked_add(*amount).ok_or_else(overflow)?;
        }
        Ok(total)
    };
    let mut out = Vec::new();
    for w in windows {
        let mut judged = Vec::new();
        for group in groups.keys() {
            judged.push(GroupWindows { group: group.clone(), before: sum(group, w.1)?, now: sum(group, w.0)? });
        }
        out.push((*w, judged));
    }
    Ok(out)
}

/// One group's firing, before its message and event are written.
struct Fired {
    key: String,
    subject_name: String,
    percent: String,
    rise: Amount,
    description: String,
    metadata: serde_json::Map<String, serde_json::Value>,
}

/// Groups listed by name in a digest; the rest are counted.
const DIGEST_LISTED: usize = 20;

/// One message for several groups of a report firing in one window: the largest rises listed, the rest
/// counted, every group's numbers in `data.groups`. Its event key names the window and the set of groups,
/// so the same firings evaluated again (another node, a restart) write nothing, and groups that fire later
/// in the window make a digest of their own.
fn digest(
    title: &str,
    alert: &str,
    report_title: &str,
    report: &str,
    window_start: chrono::NaiveDate,
    fired: &[Fired],
    link: Option<String>,
) -> (crate::service::alerts::Message, String) {
    use sha2::Digest as _;
    let mut order: Vec<&Fired> = fired.iter().collect();
    order.sort_by(|a, b| b.rise.cmp(&a.rise).then_with(|| a.key.cmp(&b.key)));
    let mut text = format!("{} groups of {report_title} rose past the alert's threshold:\n", fired.len());
    for f in order.iter().take(DIGEST_LISTED) {
        text.push_str(&format!("- {}\n", f.description));
    }
    if fired.len() > DIGEST_LISTED {
        text.push_str(&format!("… and {} more (each is an event of the alert).\n", fired.len() - DIGEST_LISTED));
    }
    let mut keys: Vec<&str> = fired.iter().map(|f| f.key.as_str()).collect();
    keys.sort_unstable();
    let set = hex::encode(&sha2::Sha256::digest(keys.join("\n").as_bytes())[..8]);
    let mut data = serde_json::Map::new();
    data.insert("cost_alert_token".into(), alert.into());
    data.insert("report_token".into(), report.into());
    data.insert("groups_fired".into(), fired.len().to_string().into());
    data.insert("groups".into(), order.iter().map(|f| serde_json::Value::Object(f.metadata.clone())).collect());
    let message = crate::service::alerts::Message {
        event: "cost_alert".into(),
        subject: format!("{title}: {} groups of {report_title} rose", fired.len()),
        text,
        link,
        data,
    };
    (message, format!("cost_alert:{alert}:{report}:{window_start}:digest:{set}"))
}

/// The titles (event keys) of every event recorded under `alert`.
async fn recorded_keys(store: &dyn Store, account: &AccountToken, alert: &str) -> Result<HashSet<String>> {
    let filter = RecordFilter { columns: vec![("alert_token", alert.to_string())], ..Default::default() };
    Ok(store.all_records::<CostAlertEvents>(account, &filter).await?.into_iter().map(|e| e.title).collect())
}

/// Judges one alert's windows; answers the messages written.
async fn evaluate_alert(
    ctx: &AlertContext,
    account: &AccountToken,
    alert: &CostAlert,
    today: NaiveDate,
) -> Result<u64> {
    let store = ctx.costs.store.as_ref();
    let public_url = ctx.public_url.as_deref();
    let d = &alert.definition;
    let judged_windows = windows_to_judge(d.interval, today, alert.created_at.date_naive());
    let mut written = 0;
    let mut seen: Option<HashSet<String>> = None;
    for report in &d.report_tokens {
        let Some(r) = store.get_report_object(account, crate::model::report::ViewKind::CostReport, report).await?
        else {
            continue;
        };
        let start = judged_windows.iter().map(|w| w.1 .0).min().expect("one window at least");
        let end = judged_windows.iter().map(|w| w.0 .1).max().expect("one window at least");
        let per_group = crate::service::reports::report_definition(&r)?.grouping_list().is_some_and(|g| !g.is_empty());
        let query = SeriesQuery { start, end, by: By::ReportGroups, usage_only: false };
        // A report that cannot be judged (its costs in several currencies) is logged; the rest go on.
        let series = match report_series(&ctx.costs, account, report, today, &query).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(alert = %alert.token, report = %report, error = %format!("{e:#}"), "a cost alert's report could not be judged");
                continue;
            }
        };
        let currency = series.currency.clone();
        for (windows, groups) in windows_of(&series, &judged_windows, per_group)? {
            // The firings of this report's groups in this window not recorded yet: each is its own event,
            // and together they are one message per recipient (a digest when there are several).
            let mut fired: Vec<Fired> = Vec::new();
            for g in groups {
                let (before, now) = (g.before, g.now);
                if !d.fires(before, now) {
                    continue;
                }
                let mut key = format!("cost_alert:{}:{}:{}", alert.token, report, windows.0 .0);
                if !g.group.is_empty() {
                    key = format!("{key}:{}", g.label());
                }
                if seen.is_none() {
                    seen = Some(recorded_keys(store, account, &alert.token).await?);
                }
                if seen.as_ref().is_some_and(|s| s.contains(&key)) {
                    continue;
                }
                let subject_name =
                    if g.group.is_empty() { r.title.clone() } else { format!("{} ({})", r.title, g.label()) };
                let rise = now.checked_sub(before).ok_or_else(|| {
                    ServiceError::unprocessable("a cost alert's change does not fit Decimal128(38, 18)")
                })?;
                let percent =
                    if before.unscaled() > 0 { format!("{}%", percent(rise, before)) } else { "new".to_string() };
                let (cur, prev) = windows;
                let description = format!(
                    "{subject_name} rose from {} to {} {currency} ({}{}, {percent}) for the {} of {} against {} to {}.",
                    before.rounded(2),
                    now.rounded(2),
                    if rise.unscaled() >= 0 { "+" } else { "" },
                    rise.rounded(2),
                    d.interval.as_str(),
                    if cur.0 == cur.1 { cur.0.to_string() } else { format!("{} to {}", cur.0, cur.1) },
                    prev.0,
                    prev.1
                );
                let mut metadata = serde_json::Map::new();
                for (k, v) in comparison(windows, before, now, rise).into_iter().chain([
                    ("cost_alert_token", alert.token.to_string()),
                    ("report_token", report.clone()),
                    ("report_title", r.title.clone()),
                    ("interval", d.interval.as_str().to_string()),
                    ("threshold", d.threshold.to_string()),
                    ("unit_type", d.unit_type.as_str().to_string()),
                    ("currency", currency.clone()),
                ]) {
                    metadata.insert(k.into(), serde_json::Value::String(v));
                }
                if !g.group.is_empty() {
                    let group = g.group.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())));
                    metadata.insert("group".into(), serde_json::Value::Object(group.collect()));
                }
                fired.push(Fired { key, subject_name, percent, rise, description, metadata });
            }
            if fired.is_empty() {
                continue;
            }
            let link = public_url.map(|u| format!("{}/#/costs?cost_report_token={report}", u.trim_end_matches('/')));
            let (message, key) = match fired.as_slice() {
                [one] => (
                    Message {
                        event: "cost_alert".into(),
                        subject: format!("{}: {} cost up {}", alert.title, one.subject_name, one.percent),
                        text: one.description.clone(),
                        link,
                        data: one.metadata.clone(),
                    },
                    one.key.clone(),
                ),
                many => digest(&alert.title, &alert.token, &r.title, report, windows.0 .0, many, link),
            };
            let messages = message.to_each(account, &alert.token, &key, d.recipients().iter().map(|r| r.as_text()));
            if !messages.is_empty() {
                written += store.enqueue_notifications(&messages, chrono::Utc::now().timestamp_millis()).await?;
            }
            for f in fired {
                let event = EventDefinition {
                    alert_token: alert.token.to_string(),
                    report_token: report.clone(),
                    description: f.description,
                    metadata: f.metadata,
                };
                // Written once: a second pass that got here (another node) finds the key taken.
                store
                    .create_record::<CostAlertEvents>(account, alert.workspace_token.clone(), f.key.clone(), &event)
                    .await?;
                if let Some(s) = seen.as_mut() {
                    s.insert(f.key);
                }
            }
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_daily_alert_judges_the_last_fourteen_days_it_existed_for_and_always_yesterday() {
        let today = d("2026-03-20");
        let long_made = windows_to_judge(Interval::Day, today, d("2026-01-01"));
        assert_eq!(long_made.len(), 14, "yesterday and the 13 days before");
        assert_eq!(long_made[0], ((d("2026-03-19"), d("2026-03-19")), (d("2026-03-18"), d("2026-03-18"))));
        assert_eq!(long_made.last().unwrap().0 .0, d("2026-03-06"));
        // Made the day before yesterday: that day and yesterday.
        assert_eq!(windows_to_judge(Interval::Day, today, d("2026-03-18")).len(), 2);
        // Made today: yesterday only (a new alert looks at the last complete day, as it always did).
        assert_eq!(windows_to_judge(Interval::Day, today, today), vec![Interval::Day.windows(today)]);
    }

    #[test]
    fn a_monthly_alert_judges_last_month_again_while_its_bills_may_still_arrive() {
        let made = d("2026-01-15");
        // On March 10, February ended 10 days ago: February (the last complete month) only, once.
        let march = windows_to_judge(Interval::Month, d("2026-03-10"), made);
        assert_eq!(march, vec![Interval::Month.windows(d("2026-03-10"))]);
        // On March 2, February is the last complete month; January ended 32 days ago and is not judged.
        assert_eq!(windows_to_judge(Interval::Month, d("2026-03-02"), made).len(), 1);
        // On February 3, January is the last complete month (it ended after the alert was made).
        assert_eq!(windows_to_judge(Interval::Month, d("2026-02-03"), made)[0].0, (d("2026-01-01"), d("2026-01-31")));
    }

    #[test]
    fn a_weekly_alert_judges_the_week_before_last_for_a_few_days() {
        let today = d("2026-03-18"); // a Wednesday
        let windows = windows_to_judge(Interval::Week, today, d("2026-01-01"));
        // Last week (ended Sunday the 15th) and the week before (ended the 8th, 10 days ago).
        assert_eq!(windows.iter().map(|w| w.0 .1).collect::<Vec<_>>(), [d("2026-03-15"), d("2026-03-08")]);
    }
}
