//! Cost alerts and report notifications (scheduled summaries) as the API reads and writes them:
//! references checked, workspaces placed, an alert's events listed. The pass that judges them is
//! `service::alerts::cost_alerts` and `service::alerts::report_summaries`; an alert's events cascade with it
//! (a foreign key).

use crate::model::cost_alert::{
    CostAlert, CostAlertDefinition, CostAlertEvent, CostAlertFields, NotificationDefinition, NotificationFields,
    ReportNotification,
};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::service::{records, ServiceError};
use crate::store::wing::{CostAlertEvents, CostAlerts, RecordFilter, ReportNotifications};
use crate::store::{PageRequest, Paged, Store};

type Result<T> = std::result::Result<T, ServiceError>;

fn bad(errors: Vec<String>) -> ServiceError {
    ServiceError::Invalid(errors)
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

pub async fn create(store: &dyn Store, account: &AccountToken, fields: CostAlertFields) -> Result<CostAlert> {
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
    records::put::<CostAlerts>(store, account, None, workspace, title, &d).await
}

pub async fn update(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: CostAlertFields,
) -> Result<CostAlert> {
    let current = records::get::<CostAlerts>(store, account, token).await?;
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), Some(&current.title), &mut errors);
    if fields.workspace_token.as_deref().is_some_and(|w| w.trim() != current.workspace_token) {
        errors.push("workspace_token is set when a cost alert is created".into());
    }
    let d = match CostAlertDefinition::overlay(Some(&current.definition), &fields) {
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
    records::put::<CostAlerts>(store, account, Some(token), current.workspace_token, title, &d).await
}

/// Deletes a cost alert; its events go with it.
pub async fn delete(store: &dyn Store, account: &AccountToken, token: &str) -> Result<()> {
    records::delete::<CostAlerts>(store, account, token).await
}

/// A page of an alert's events, newest first, narrowed to one report.
pub async fn events(
    store: &dyn Store,
    account: &AccountToken,
    alert: &str,
    report: Option<&str>,
    page: PageRequest,
) -> Result<Paged<CostAlertEvent>> {
    records::get::<CostAlerts>(store, account, alert).await?;
    let mut columns = vec![("alert_token", alert.to_string())];
    columns.extend(report.map(|r| ("report_token", r.to_string())));
    let filter = RecordFilter { columns, newest_first: true, ..Default::default() };
    Ok(store.records::<CostAlertEvents>(account, &filter, page).await?)
}

/// One of an alert's events.
pub async fn event(store: &dyn Store, account: &AccountToken, alert: &str, token: &str) -> Result<CostAlertEvent> {
    records::get::<CostAlerts>(store, account, alert).await?;
    match store.record::<CostAlertEvents>(account, token).await? {
        Some(e) if e.definition.alert_token == alert => Ok(e),
        _ => Err(ServiceError::NotFound("cost alert event")),
    }
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
) -> Result<ReportNotification> {
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
    records::put::<ReportNotifications>(store, account, None, workspace, title, &d).await
}

pub async fn update_notification(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    fields: NotificationFields,
) -> Result<ReportNotification> {
    let current = records::get::<ReportNotifications>(store, account, token).await?;
    let mut errors = Vec::new();
    let title = title(fields.title.as_deref(), Some(&current.title), &mut errors);
    let d = NotificationDefinition::overlay(Some(&current.definition), &fields).map_err(|e| {
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
    records::put::<ReportNotifications>(store, account, Some(token), workspace, title, &d).await
}
