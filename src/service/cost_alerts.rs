//! Cost alerts (`model::cost_alert`): references checked, and their evaluation: for each watched report,
//! the costs of the last complete interval and the one before (one costs query over both, through the result
//! cache), for the whole report or, when the report names groupings, for each of its groups; a rise past the threshold is recorded once as an event (a `cost_alert_event` object under the
//! alert, titled by its event key) and its messages go to the outbox like budget alerts' (`service::alerts`).
//!
//! Report notifications (scheduled summaries) live here too: once per day, week or month, the report's
//! last complete one against the one before, to the outbox under `report_notification:<token>:<start>`.

use crate::service::ServiceError;
use serde::{Deserialize, Serialize};

use crate::model::amount::Amount;
use crate::model::cost_alert::{
    Change, CostAlertDefinition, CostAlertFields, NotificationDefinition, NotificationFields,
};
use crate::model::cost_query::{Aggregate, CostQuery, DateBin};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::model::vql::Filter;
use crate::service::budgets::{self, put};
use crate::service::costs::{costs, CostsContext};
use crate::service::reports;
use crate::store::{PageRequest, Paged, ReportObject, ReportObjectFields, ReportObjectFilter, Store};

type Result<T> = std::result::Result<T, ServiceError>;

fn bad(errors: Vec<String>) -> ServiceError {
    ServiceError::Invalid(errors)
}

pub fn definition(alert: &ReportObject) -> Result<CostAlertDefinition> {
    budgets::stored(alert)
}

/// One firing of a cost alert, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDefinition {
    pub report_token: String,
    pub description: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

pub fn event_definition(event: &ReportObject) -> Result<EventDefinition> {
    budgets::stored(event)
}

/// The alert's workspace: the one given, checked, and every report's.
async fn place(
    store: &dyn Store,
    account: &AccountToken,
    d: &CostAlertDefinition,
    given: Option<&str>,
    current: Option<&str>,
    errors: &mut Vec<String>,
) -> Result<String> {
    let mut workspace = given.map(str::trim).filter(|w| !w.is_empty()).map(str::to_string);
    if let Some(w) = &workspace {
        if store.get_workspace(account, w).await?.is_none() {
            errors.push(format!("workspace_token: no workspace {w} in this account"));
        }
    }
    for report in &d.report_tokens {
        match store.get_report_object(account, ViewKind::CostReport, report).await? {
            None => errors.push(format!("report_tokens: no cost report {report} in this account")),
            Some(r) => match workspace.as_deref().or(current) {
                Some(w) if w != r.workspace_token => errors.push(format!(
                    "report_tokens: {report} is in workspace {}, not the alert's {w}",
                    r.workspace_token
                )),
                Some(_) => {}
                None => workspace = Some(r.workspace_token),
            },
        }
    }
    Ok(workspace.or(current.map(str::to_string)).unwrap_or_default())
}

fn title(value: Option<&str>, current: Option<&str>, errors: &mut Vec<String>) -> String {
    crate::model::report::title(value, current, errors)
}

pub async fn create(store: &dyn Store, account: &AccountToken, fields: CostAlertFields) -> Result<ReportObject> {
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), None, &mut errors);
    let d = match CostAlertDefinition::overlay(None, &fields) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let workspace = match &d {
        Some(d) => place(store, account, d, fields.workspace_token.as_deref(), None, &mut errors).await?,
        None => String::new(),
    };
    let Some(d) = d.filter(|_| errors.is_empty()) else { return Err(bad(errors)) };
    put(store, account, ViewKind::CostAlert, None, workspace, title, &d).await
}

pub async fn update(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: CostAlertFields,
) -> Result<ReportObject> {
    let current = reports::get(store, account, ViewKind::CostAlert, token).await?;
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), Some(&current.title), &mut errors);
    if fields.workspace_token.as_deref().is_some_and(|w| w.trim() != current.workspace_token) {
        errors.push("workspace_token is set when a cost alert is created".into());
    }
    let d = match CostAlertDefinition::overlay(Some(&definition(&current)?), &fields) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    if let Some(d) = &d {
        place(store, account, d, None, Some(&current.workspace_token), &mut errors).await?;
    }
    let Some(d) = d.filter(|_| errors.is_empty()) else { return Err(bad(errors)) };
    put(store, account, ViewKind::CostAlert, Some(token), current.workspace_token, title, &d).await
}

/// Deletes a cost alert with its events.
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &str) -> Result<()> {
    reports::get(store, account, ViewKind::CostAlert, token).await?;
    loop {
        let filter = ReportObjectFilter { folder_token: Some(token.to_string()), ..Default::default() };
        let events = store
            .list_report_objects(account, ViewKind::CostAlertEvent, &filter, PageRequest { page: 1, limit: 1000 })
            .await?;
        if events.items.is_empty() {
            break;
        }
        for e in events.items {
            store.delete_report_object(account, ViewKind::CostAlertEvent, &e.token).await?;
        }
    }
    reports::delete(store, account, ViewKind::CostAlert, token).await
}

/// A page of an alert's events, newest first, narrowed to one report.
pub async fn events(
    store: &dyn Store,
    account: &AccountToken,
    alert: &str,
    report: Option<&str>,
    page: PageRequest,
) -> Result<Paged<ReportObject>> {
    reports::get(store, account, ViewKind::CostAlert, alert).await?;
    let filter = ReportObjectFilter { folder_token: Some(alert.to_string()), ..Default::default() };
    let mut all = Vec::new();
    for p in 1.. {
        let found = store
            .list_report_objects(account, ViewKind::CostAlertEvent, &filter, PageRequest { page: p, limit: 1000 })
            .await?;
        let done = found.items.len() < 1000;
        all.extend(found.items);
        if done {
            break;
        }
    }
    all.retain(|e| report.is_none_or(|r| event_definition(e).is_ok_and(|d| d.report_token == r)));
    all.reverse();
    let total = all.len() as i64;
    let skip = (page.page as usize - 1).saturating_mul(page.limit as usize);
    Ok(Paged { items: all.into_iter().skip(skip).take(page.limit as usize).collect(), total })
}

/// One group's costs in an alert's two windows: the group's values by grouping name (empty: the whole report).
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupWindows {
    group: Vec<(String, String)>,
    before: Amount,
    now: Amount,
}

impl GroupWindows {
    /// `service=EC2, region=us-east-1`: how messages and event keys name the group.
    fn label(&self) -> String {
        self.group.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
    }
}

/// A report's costs in the current and previous `windows`, and its currency: one query over both windows.
/// `per_group`: one entry per group of the report's own groupings (a report that names none: the whole);
/// otherwise the whole report only.
async fn report_windows(
    ctx: &CostsContext,
    account: &AccountToken,
    report: &ReportObject,
    today: chrono::NaiveDate,
    windows: Windows,
    per_group: bool,
) -> Result<(Vec<GroupWindows>, String)> {
    let defaults = reports::report_defaults(ctx.store.as_ref(), account, &report.token, today).await?;
    let groupings =
        if per_group { reports::report_definition(report)?.grouping_list().unwrap_or_default() } else { Vec::new() };
    let (current, previous) = windows;
    let query = CostQuery {
        start: previous.0,
        end: current.1,
        groupings,
        date_bin: DateBin::Day,
        descending: false,
        settings: defaults.settings.engine(),
        aggregate: Aggregate::Cost,
        filter: Filter::all(defaults.filters),
    };
    let answer = costs(ctx, account, defaults.workspace.as_deref(), &query).await?;
    let overflow = || ServiceError::unprocessable("a cost alert's window does not fit Decimal128(38, 18)");
    let mut by_group: std::collections::BTreeMap<Vec<(String, String)>, (Amount, Amount)> = Default::default();
    if query.groupings.is_empty() {
        by_group.insert(Vec::new(), (Amount::ZERO, Amount::ZERO));
    }
    for row in &answer.result.rows {
        let group = row.dimensions.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
        let slot = by_group.entry(group).or_insert((Amount::ZERO, Amount::ZERO));
        if row.accrued_at >= current.0 {
            slot.1 = slot.1.checked_add(row.amount).ok_or_else(overflow)?;
        } else {
            slot.0 = slot.0.checked_add(row.amount).ok_or_else(overflow)?;
        }
    }
    let currency = answer.single_currency()?;
    Ok((by_group.into_iter().map(|(group, (before, now))| GroupWindows { group, before, now }).collect(), currency))
}

type Windows = ((chrono::NaiveDate, chrono::NaiveDate), (chrono::NaiveDate, chrono::NaiveDate));

/// The numbers both a cost alert's event and a report summary state: each window's days and amount, and the
/// change from the previous to the current.
fn comparison(windows: Windows, before: Amount, now: Amount, change: Amount) -> [(&'static str, String); 7] {
    let ((cur_start, cur_end), (prev_start, prev_end)) = windows;
    [
        ("current_start", cur_start.to_string()),
        ("current_end", cur_end.to_string()),
        ("previous_start", prev_start.to_string()),
        ("previous_end", prev_end.to_string()),
        ("current_amount", now.to_string()),
        ("previous_amount", before.to_string()),
        ("change", change.to_string()),
    ]
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
async fn recorded_keys(
    store: &dyn Store,
    account: &AccountToken,
    alert: &str,
) -> Result<std::collections::HashSet<String>> {
    let filter = ReportObjectFilter { folder_token: Some(alert.to_string()), ..Default::default() };
    let mut keys = std::collections::HashSet::new();
    for page in 1.. {
        let found = store
            .list_report_objects(account, ViewKind::CostAlertEvent, &filter, PageRequest { page, limit: 1000 })
            .await?;
        let done = found.items.len() < 1000;
        keys.extend(found.items.into_iter().map(|e| e.title));
        if done {
            break;
        }
    }
    Ok(keys)
}

/// Evaluates every cost alert of `account` on `today`; answers the messages written. A report that names
/// groupings is judged group by group (each service of a report grouped by service rises on its own, so a
/// spike in one is not hidden by a fall in another); each group's firing is its own event. A firing's
/// messages are written to the outbox before its event is recorded, so a crash between the two only makes
/// the next pass write them again (a no-op: same event key) and then record the event.
pub async fn evaluate(
    ctx: &CostsContext,
    account: &AccountToken,
    today: chrono::NaiveDate,
    public_url: Option<&str>,
) -> Result<u64> {
    let store = ctx.store.as_ref();
    let mut written = 0;
    for alert in budgets::all(store, account, ViewKind::CostAlert).await? {
        let d = definition(&alert)?;
        let windows = d.interval.windows(today);
        let mut seen: Option<std::collections::HashSet<String>> = None;
        for report in &d.report_tokens {
            let Some(r) = store.get_report_object(account, ViewKind::CostReport, report).await? else { continue };
            // A report that cannot be judged (its costs in several currencies) is logged; the rest go on.
            let (groups, currency) = match report_windows(ctx, account, &r, today, windows, true).await {
                Ok(judged) => judged,
                Err(e) => {
                    tracing::warn!(alert = %alert.token, report = %report, error = %format!("{e:#}"), "a cost alert's report could not be judged");
                    continue;
                }
            };
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
                let rise = now.checked_sub(before).unwrap_or(now);
                let percent = if before.unscaled() > 0 {
                    format!("{}%", crate::service::alerts::percent(rise, before))
                } else {
                    "new".to_string()
                };
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
                    ("cost_alert_token", alert.token.clone()),
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
                    crate::service::alerts::Message {
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
                let event =
                    EventDefinition { report_token: report.clone(), description: f.description, metadata: f.metadata };
                store
                    .create_report_object(
                        account,
                        ViewKind::CostAlertEvent,
                        &ReportObjectFields {
                            workspace_token: alert.workspace_token.clone(),
                            folder_token: Some(alert.token.clone()),
                            title: f.key.clone(),
                            definition: serde_json::to_string(&event).expect("plain data serialises"),
                            saved_filter_tokens: Vec::new(),
                        },
                    )
                    .await?;
                if let Some(s) = seen.as_mut() {
                    s.insert(f.key);
                }
            }
        }
    }
    Ok(written)
}

pub fn notification_definition(n: &ReportObject) -> Result<NotificationDefinition> {
    budgets::stored(n)
}

/// The notification's workspace: its report's (a `workspace_token` given must name it).
async fn notification_workspace(
    store: &dyn Store,
    account: &AccountToken,
    d: &NotificationDefinition,
    given: Option<&str>,
    errors: &mut Vec<String>,
) -> Result<String> {
    match store.get_report_object(account, ViewKind::CostReport, &d.cost_report_token).await? {
        None => {
            errors.push(format!("cost_report_token: no cost report {} in this account", d.cost_report_token));
            Ok(String::new())
        }
        Some(r) => {
            if let Some(g) = given.map(str::trim).filter(|g| !g.is_empty() && *g != r.workspace_token) {
                errors.push(format!("workspace_token: the report is in workspace {}, not {g}", r.workspace_token));
            }
            Ok(r.workspace_token)
        }
    }
}

pub async fn create_notification(
    store: &dyn Store,
    account: &AccountToken,
    fields: NotificationFields,
) -> Result<ReportObject> {
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), None, &mut errors);
    let d = NotificationDefinition::overlay(None, &fields).map_err(|e| {
        errors.extend(e);
    });
    let workspace = match &d {
        Ok(d) => {
            crate::service::users::check_tokens(store, account, &d.user_tokens, &mut errors).await?;
            notification_workspace(store, account, d, fields.workspace_token.as_deref(), &mut errors).await?
        }
        Err(()) => String::new(),
    };
    let Ok(d) = d else { return Err(bad(errors)) };
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    put(store, account, ViewKind::ReportNotification, None, workspace, title, &d).await
}

pub async fn update_notification(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: NotificationFields,
) -> Result<ReportObject> {
    let current = reports::get(store, account, ViewKind::ReportNotification, token).await?;
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), Some(&current.title), &mut errors);
    let d = NotificationDefinition::overlay(Some(&notification_definition(&current)?), &fields).map_err(|e| {
        errors.extend(e);
    });
    let workspace = match &d {
        Ok(d) => {
            crate::service::users::check_tokens(store, account, &d.user_tokens, &mut errors).await?;
            notification_workspace(store, account, d, None, &mut errors).await?
        }
        Err(()) => String::new(),
    };
    let Ok(d) = d else { return Err(bad(errors)) };
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    put(store, account, ViewKind::ReportNotification, Some(token), workspace, title, &d).await
}

/// Writes the summary of every report notification of `account` whose period ended before `today` and was
/// not sent yet; answers the messages written.
pub async fn evaluate_notifications(
    ctx: &CostsContext,
    account: &AccountToken,
    today: chrono::NaiveDate,
    public_url: Option<&str>,
) -> Result<u64> {
    let store = ctx.store.as_ref();
    let mut written = 0;
    for n in budgets::all(store, account, ViewKind::ReportNotification).await? {
        let d = notification_definition(&n)?;
        let recipients = crate::service::users::recipients(store, account, &d.recipients(), &d.user_tokens).await?;
        if recipients.is_empty() {
            continue;
        }
        let Some(r) = store.get_report_object(account, ViewKind::CostReport, &d.cost_report_token).await? else {
            continue;
        };
        let windows = d.frequency.windows(today);
        let (whole, currency) = match report_windows(ctx, account, &r, today, windows, false).await {
            Ok(judged) => judged,
            Err(e) => {
                tracing::warn!(notification = %n.token, error = %format!("{e:#}"), "a report notification could not be judged");
                continue;
            }
        };
        let (before, now) = whole.first().map(|w| (w.before, w.now)).unwrap_or((Amount::ZERO, Amount::ZERO));
        let change = now.checked_sub(before).unwrap_or(now);
        let sign = if change.unscaled() >= 0 { "+" } else { "" };
        let stated = match (d.change, before.unscaled() > 0) {
            (Change::Percentage, true) => format!("{sign}{}%", crate::service::alerts::percent(change, before)),
            (Change::Percentage, false) => "no cost before".to_string(),
            (Change::Dollars, _) => format!("{sign}{} {currency}", change.rounded(2)),
        };
        let (cur, prev) = windows;
        let span = |w: (chrono::NaiveDate, chrono::NaiveDate)| {
            if w.0 == w.1 {
                w.0.to_string()
            } else {
                format!("{} to {}", w.0, w.1)
            }
        };
        let text = format!(
            "{}: {} {currency} for {} ({stated} against {} {currency} for {}).",
            r.title,
            now.rounded(2),
            span(cur),
            before.rounded(2),
            span(prev)
        );
        let mut data = serde_json::Map::new();
        for (k, v) in comparison(windows, before, now, change).into_iter().chain([
            ("report_notification_token", n.token.clone()),
            ("cost_report_token", r.token.clone()),
            ("frequency", d.frequency_name().to_string()),
            ("currency", currency.clone()),
        ]) {
            data.insert(k.into(), serde_json::Value::String(v));
        }
        let message = crate::service::alerts::Message {
            event: "report_notification".into(),
            subject: format!("{} ({} summary): {stated}", n.title, d.frequency_name()),
            text,
            link: public_url.map(|u| format!("{}/#/costs?cost_report_token={}", u.trim_end_matches('/'), r.token)),
            data,
        };
        let key = format!("report_notification:{}:{}", n.token, cur.0);
        let messages = message.to_each(account, &n.token, &key, recipients);
        written += store.enqueue_notifications(&messages, chrono::Utc::now().timestamp_millis()).await?;
    }
    Ok(written)
}
