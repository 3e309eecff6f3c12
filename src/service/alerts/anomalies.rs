//! Anomalies judged: for each report with an anomaly notification, the report's **usage** costs (its
//! filters and `costs.charge_type = 'Usage'`: purchases, tax and credits are not anomalies) by day, provider
//! and service through the report series, over the detector's weeks before the judged days; each of the last
//! [`LATE_DAYS`] complete days is judged per series (`model::anomaly::Detector`). Bills arrive a day or two
//! late and are restated, so a spike three days back in a bill synced today is found today. An anomaly is
//! unique by report, provider, service and day (a constraint), so it is found once, whatever restatement or
//! pass judges its day again. One whose rise also reaches a notification's `threshold` is recorded after
//! its messages are written to the outbox (a crash between the two only rewrites them, a no-op).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::message::Message;
use super::{AlertContext, Evaluator};
use crate::model::amount::Amount;
use crate::model::anomaly::{AlertDefinition, Detector, NotificationDefinition, Verdict};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::service::records;
use crate::service::series::{report_series, By, Point, SeriesQuery};
use crate::service::ServiceError;
use crate::store::wing::{AnomalyAlerts, AnomalyNotifications, RecordFilter};
use crate::store::PageRequest;

type Result<T> = std::result::Result<T, ServiceError>;

/// The anomaly detector's evaluator.
pub struct AnomalyEvaluator;

#[async_trait::async_trait]
impl Evaluator for AnomalyEvaluator {
    fn name(&self) -> &'static str {
        "anomaly notifications"
    }

    async fn evaluate(&self, ctx: &AlertContext, account: &AccountToken, today: NaiveDate) -> Result<u64> {
        evaluate(ctx, account, today).await
    }
}

/// A point's `i`th group value.
fn group(p: &Point, i: usize) -> String {
    p.group.get(i).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// How many complete days, up to yesterday, each pass judges (late and restated bills).
pub const LATE_DAYS: i64 = 14;

/// Finds the anomalies of the last [`LATE_DAYS`] complete days of every report with an anomaly notification;
/// answers the messages written.
async fn evaluate(ctx: &AlertContext, account: &AccountToken, today: NaiveDate) -> Result<u64> {
    let store = ctx.costs.store.as_ref();
    let public_url = ctx.public_url.as_deref();
    let notifications = records::all::<AnomalyNotifications>(store, account).await?;
    if notifications.is_empty() {
        return Ok(0);
    }
    let detector = Detector::default();
    let yesterday = today.pred_opt().expect("a date");
    let first_judged = yesterday - chrono::Duration::days(LATE_DAYS - 1);
    // Each notification with where its messages go (its channels and its users' addresses).
    let mut by_report: BTreeMap<String, Vec<(NotificationDefinition, Vec<String>)>> = BTreeMap::new();
    for n in notifications {
        let d = n.definition;
        let to = crate::service::users::recipients(store, account, &d.recipients(), &d.user_tokens).await?;
        by_report.entry(d.cost_report_token.clone()).or_default().push((d, to));
    }
    let mut written = 0;
    for (report, notes) in by_report {
        let Some(r) = store.get_report_object(account, ViewKind::CostReport, &report).await? else { continue };
        let query = SeriesQuery {
            start: first_judged - chrono::Duration::days(7 * i64::from(detector.weeks)),
            end: yesterday,
            by: By::ProviderService,
            usage_only: true,
        };
        let (series, currency) = match report_series(&ctx.costs, account, &report, today, &query)
            .await
            .and_then(|s| Ok((s.daily("a service's daily cost", |p| Some((group(p, 0), group(p, 1))))?, s.currency)))
        {
            Ok(judged) => judged,
            Err(e) => {
                tracing::warn!(report = %report, error = %format!("{e:#}"), "a report's anomalies could not be judged");
                continue;
            }
        };
        let judged = first_judged.iter_days().take_while(|d| *d <= yesterday);
        for (((provider, service), days), day) in
            series.iter().flat_map(|(s, days)| judged.clone().map(move |day| ((s.clone(), days), day)))
        {
            let Verdict::Anomaly { expected, upper } = detector.judge(days, day) else { continue };
            let actual = days.get(&day).copied().unwrap_or(0);
            let overflow = || ServiceError::unprocessable("an anomaly's amounts do not fit Decimal128(38, 18)");
            let rise = actual.checked_sub(expected).ok_or_else(overflow)?;
            let mut week: i128 = 0;
            for i in 0..7 {
                let cost = days.get(&(day - chrono::Duration::days(i))).copied().unwrap_or(0);
                week = week.checked_add(cost).ok_or_else(overflow)?;
            }
            let to_amount = |v: i128| Amount::from_unscaled(v).ok_or_else(overflow);
            let key = format!("anomaly:{report}:{provider}:{service}:{day}");
            let unit = 10i128.pow(crate::model::amount::SCALE);
            let recipients: Vec<_> = notes
                .iter()
                .filter(|(n, _)| rise >= i128::from(n.threshold) * unit)
                .flat_map(|(_, to)| to.iter().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if recipients.is_empty() && notes.iter().all(|(n, _)| rise < i128::from(n.threshold) * unit) {
                continue;
            }
            // Found before (its report, provider, service and day are unique): not again.
            let filter = RecordFilter {
                columns: vec![
                    ("cost_report_token", report.clone()),
                    ("provider", provider.clone()),
                    ("service", service.clone()),
                    ("day", day.to_string()),
                ],
                ..Default::default()
            };
            if store.records::<AnomalyAlerts>(account, &filter, PageRequest { page: 1, limit: 1 }).await?.total > 0 {
                continue;
            }
            let alert = AlertDefinition {
                cost_report_token: report.clone(),
                provider: provider.clone(),
                service: service.clone(),
                category: "Usage".into(),
                day,
                amount: to_amount(actual)?,
                previous_amount: to_amount(expected)?,
                expected_upper: Some(to_amount(upper)?),
                seven_day_average: to_amount(week / 7)?,
                status: "active".into(),
                feedback: None,
            };
            let text = format!(
                "{service} ({provider}) cost {} {currency} on {day} in {}, against an expected {} {currency} (the median of \
                 the same weekday over the previous weeks).",
                alert.amount.rounded(2),
                r.title,
                alert.previous_amount.rounded(2)
            );
            let mut data = serde_json::Map::new();
            for (k, v) in [
                ("cost_report_token", report.clone()),
                ("provider", provider.clone()),
                ("service", service.clone()),
                ("day", day.to_string()),
                ("amount", alert.amount.to_string()),
                ("expected", alert.previous_amount.to_string()),
                ("currency", currency.clone()),
            ] {
                data.insert(k.into(), serde_json::Value::String(v));
            }
            let message = Message {
                event: "anomaly_alert".into(),
                subject: format!("Cost anomaly: {service} in {}", r.title),
                text,
                link: public_url.map(|u| format!("{}/#/costs?cost_report_token={report}", u.trim_end_matches('/'))),
                data,
            };
            let messages = message.to_each(account, &report, &key, recipients);
            if !messages.is_empty() {
                written += store.enqueue_notifications(&messages, chrono::Utc::now().timestamp_millis()).await?;
            }
            // Written once: a pass on another node that got here first took the key.
            store.create_record::<AnomalyAlerts>(account, r.workspace_token.clone(), key, &alert).await?;
        }
    }
    Ok(written)
}
