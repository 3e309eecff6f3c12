//! Anomaly notifications and the anomaly alerts they raise (`model::anomaly` holds the detector).
//!
//! For each report with an anomaly notification, the pass reads the report's **usage** costs (its filters
//! and `costs.charge_type = 'Usage'`: purchases, tax and credits are not anomalies) by day, provider and
//! service over the detector's weeks before the judged days, and judges each of the last [`LATE_DAYS`]
//! complete days per series: bills arrive a day or two late and are restated, so a spike three days back in
//! a bill synced today is found today. A day's anomaly is keyed by report, provider, service and day, so it
//! is found once, whatever restatement or pass judges it again. An anomaly whose rise also reaches the notification's `threshold` is recorded once as an
//! anomaly alert (titled by its key, so a second pass finds it) after its messages are written to the
//! outbox (a crash between the two only rewrites them, a no-op).

use crate::service::ServiceError;
use std::collections::BTreeMap;

use crate::model::amount::Amount;
use crate::model::anomaly::{
    AlertDefinition, AlertUpdate, Detector, NotificationDefinition, NotificationFields, Verdict,
};
use crate::model::cost_query::{Aggregate, CostQuery, DateBin};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::model::vql::Filter;
use crate::service::budgets::{self, put};
use crate::service::costs::{costs, CostsContext};
use crate::service::reports;
use crate::store::{PageRequest, ReportObject, ReportObjectFields, ReportObjectFilter, Store};

type Result<T> = std::result::Result<T, ServiceError>;

fn bad(errors: Vec<String>) -> ServiceError {
    ServiceError::Invalid(errors)
}

pub fn notification_definition(n: &ReportObject) -> Result<NotificationDefinition> {
    budgets::stored(n)
}

pub fn alert_definition(a: &ReportObject) -> Result<AlertDefinition> {
    budgets::stored(a)
}

async fn save(
    store: &dyn Store,
    account: &AccountToken,
    token: Option<&str>,
    fields: NotificationFields,
) -> Result<ReportObject> {
    let current = match token {
        Some(t) => Some(reports::get(store, account, ViewKind::AnomalyNotification, t).await?),
        None => None,
    };
    let current_definition = current.as_ref().map(notification_definition).transpose()?;
    let d = NotificationDefinition::overlay(current_definition.as_ref(), &fields).map_err(bad)?;
    let mut errors = Vec::new();
    crate::service::users::check_tokens(store, account, &d.user_tokens, &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    let Some(report) = store.get_report_object(account, ViewKind::CostReport, &d.cost_report_token).await? else {
        return Err(bad(vec![format!("cost_report_token: no cost report {} in this account", d.cost_report_token)]));
    };
    put(
        store,
        account,
        ViewKind::AnomalyNotification,
        token,
        report.workspace_token,
        format!("anomalies of {}", report.title),
        &d,
    )
    .await
}

pub async fn create_notification(
    store: &dyn Store,
    account: &AccountToken,
    f: NotificationFields,
) -> Result<ReportObject> {
    save(store, account, None, f).await
}

pub async fn update_notification(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    f: NotificationFields,
) -> Result<ReportObject> {
    save(store, account, Some(token), f).await
}

/// Sets an anomaly alert's status (and feedback).
pub async fn update_alert(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    u: AlertUpdate,
) -> Result<ReportObject> {
    let current = reports::get(store, account, ViewKind::AnomalyAlert, token).await?;
    let next = alert_definition(&current)?.update(&u).map_err(bad)?;
    put(
        store,
        account,
        ViewKind::AnomalyAlert,
        Some(token),
        current.workspace_token.clone(),
        current.title.clone(),
        &next,
    )
    .await
}

/// How many complete days, up to yesterday, each pass judges (late and restated bills).
pub const LATE_DAYS: i64 = 14;

/// Finds the anomalies of the last [`LATE_DAYS`] complete days of every report with an anomaly notification;
/// answers the messages written.
pub async fn evaluate(
    ctx: &CostsContext,
    account: &AccountToken,
    today: chrono::NaiveDate,
    public_url: Option<&str>,
) -> Result<u64> {
    let store = ctx.store.as_ref();
    let notifications = budgets::all(store, account, ViewKind::AnomalyNotification).await?;
    if notifications.is_empty() {
        return Ok(0);
    }
    let detector = Detector::default();
    let yesterday = today.pred_opt().expect("a date");
    let first_judged = yesterday - chrono::Duration::days(LATE_DAYS - 1);
    // Each notification with where its messages go (its channels and its users' addresses).
    let mut by_report: BTreeMap<String, Vec<(NotificationDefinition, Vec<String>)>> = BTreeMap::new();
    for n in &notifications {
        let d = notification_definition(n)?;
        let to = crate::service::users::recipients(store, account, &d.recipients(), &d.user_tokens).await?;
        by_report.entry(d.cost_report_token.clone()).or_default().push((d, to));
    }
    let mut written = 0;
    for (report, notes) in by_report {
        let Some(r) = store.get_report_object(account, ViewKind::CostReport, &report).await? else { continue };
        let defaults = reports::report_defaults(store, account, &report, today).await?;
        let mut filters = defaults.filters;
        filters.push(
            Filter::parse("costs.charge_type = 'Usage'").map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?,
        );
        let query = CostQuery {
            start: first_judged - chrono::Duration::days(7 * i64::from(detector.weeks)),
            end: yesterday,
            groupings: vec![
                crate::model::cost_query::ColumnGrouping::Provider.into(),
                crate::model::cost_query::ColumnGrouping::Service.into(),
            ],
            date_bin: DateBin::Day,
            descending: false,
            settings: defaults.settings.engine(),
            aggregate: Aggregate::Cost,
            filter: Filter::all(filters),
        };
        let answer = costs(ctx, account, defaults.workspace.as_deref(), &query).await?;
        let currency = match answer.single_currency() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(report = %report, error = %e, "a report's anomalies could not be judged");
                continue;
            }
        };
        let mut series: BTreeMap<(String, String), BTreeMap<chrono::NaiveDate, i128>> = BTreeMap::new();
        for row in &answer.result.rows {
            *series.entry((row.dimension(0), row.dimension(1))).or_default().entry(row.accrued_at).or_default() +=
                row.amount.unscaled();
        }
        let judged = first_judged.iter_days().take_while(|d| *d <= yesterday);
        for (((provider, service), days), day) in
            series.iter().flat_map(|(s, days)| judged.clone().map(move |day| ((s.clone(), days), day)))
        {
            let Verdict::Anomaly { expected, upper } = detector.judge(days, day) else { continue };
            let actual = days.get(&day).copied().unwrap_or(0);
            let rise = actual - expected;
            let week: i128 = (0..7).map(|i| days.get(&(day - chrono::Duration::days(i))).copied().unwrap_or(0)).sum();
            let to_amount = |v: i128| Amount::from_unscaled(v).unwrap_or(Amount::ZERO);
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
            let filter = ReportObjectFilter { title_like: Some(key.clone()), ..Default::default() };
            if store
                .list_report_objects(account, ViewKind::AnomalyAlert, &filter, PageRequest { page: 1, limit: 1 })
                .await?
                .total
                > 0
            {
                continue;
            }
            let alert = AlertDefinition {
                cost_report_token: report.clone(),
                provider: provider.clone(),
                service: service.clone(),
                category: "Usage".into(),
                day,
                amount: to_amount(actual),
                previous_amount: to_amount(expected),
                expected_upper: Some(to_amount(upper)),
                seven_day_average: to_amount(week / 7),
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
            let message = crate::service::alerts::Message {
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
            store
                .create_report_object(
                    account,
                    ViewKind::AnomalyAlert,
                    &ReportObjectFields {
                        workspace_token: r.workspace_token.clone(),
                        folder_token: None,
                        title: key,
                        definition: serde_json::to_string(&alert).expect("plain data serialises"),
                        saved_filter_tokens: Vec::new(),
                    },
                )
                .await?;
        }
    }
    Ok(written)
}
