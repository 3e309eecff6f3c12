//! Anomaly notifications (who hears of a report's anomalies) and the anomaly alerts they raise, as the API
//! reads and writes them. The detector is `model::anomaly`; the pass that judges reports and records
//! anomalies is `service::alerts::anomalies`.

use crate::model::anomaly::{
    AlertUpdate, AnomalyAlert, AnomalyNotification, NotificationDefinition, NotificationFields,
};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::service::{records, ServiceError};
use crate::store::wing::{AnomalyAlerts, AnomalyNotifications};
use crate::store::Store;

type Result<T> = std::result::Result<T, ServiceError>;

fn bad(errors: Vec<String>) -> ServiceError {
    ServiceError::Invalid(errors)
}

async fn save(
    store: &dyn Store,
    account: &AccountToken,
    token: Option<&str>,
    fields: NotificationFields,
) -> Result<AnomalyNotification> {
    let current = match token {
        Some(t) => Some(records::get::<AnomalyNotifications>(store, account, t).await?),
        None => None,
    };
    let d = NotificationDefinition::overlay(current.as_ref().map(|c| &c.definition), &fields).map_err(bad)?;
    let mut errors = Vec::new();
    crate::service::users::check_tokens(store, account, &d.user_tokens, &mut errors).await?;
    if !errors.is_empty() {
        return Err(bad(errors));
    }
    let Some(report) = store.get_report_object(account, ViewKind::CostReport, &d.cost_report_token).await? else {
        return Err(bad(vec![format!("cost_report_token: no cost report {} in this account", d.cost_report_token)]));
    };
    let title = format!("anomalies of {}", report.title);
    records::put::<AnomalyNotifications>(store, account, token, report.workspace_token, title, &d).await
}

pub async fn create_notification(
    store: &dyn Store,
    account: &AccountToken,
    f: NotificationFields,
) -> Result<AnomalyNotification> {
    save(store, account, None, f).await
}

pub async fn update_notification(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    f: NotificationFields,
) -> Result<AnomalyNotification> {
    save(store, account, Some(token), f).await
}

/// Sets an anomaly alert's status (and feedback).
pub async fn update_alert(
    store: &dyn Store,
    account: &AccountToken,
    token: &str,
    u: AlertUpdate,
) -> Result<AnomalyAlert> {
    let current = records::get::<AnomalyAlerts>(store, account, token).await?;
    let next = current.definition.update(&u).map_err(bad)?;
    records::put::<AnomalyAlerts>(store, account, Some(token), current.workspace_token, current.title, &next).await
}
