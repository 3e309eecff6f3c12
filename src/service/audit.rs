//! The audit log (docs/access.md): every write that changed an object, with who made it, through what, and
//! each field's value before and after (secrets masked, `model::audit`). The HTTP layer records the API's
//! and the console's writes (`http::audit_logs`), the CLI its own; entries are only ever added.
//!
//! An entry is written after its write succeeded, never before (a refused write changes nothing and is not
//! an entry). A process that stops between the two loses that one entry; a failure to write it is logged as
//! an error and does not undo or fail the write, which has already happened.

use chrono::Utc;
use serde_json::Value;

use crate::model::audit::{changes, title_of, AuditEntry, AuditEvent, AuditFilter, AuditSource};
use crate::model::token::{AccountToken, AuditLogToken};
use crate::model::PageRequest;
use crate::store::{Paged, Store};

use super::error::{Result, ServiceError};

/// Who wrote, and through what.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account: AccountToken,
    /// As the entry names them: the API token's description, or `operator`.
    pub user: String,
    /// The API token's id (`tkn_…`), when one wrote.
    pub user_token: Option<String>,
    pub source: AuditSource,
}

impl Actor {
    /// The operator at the server's command line, writing in `account`.
    pub fn operator(account: &AccountToken) -> Actor {
        Actor { account: account.clone(), user: "operator".into(), user_token: None, source: AuditSource::Cli }
    }
}

/// One object's write: what kind, which, and its API body before and after (`Null`: none).
#[derive(Debug, Clone)]
pub struct Written {
    pub object_type: String,
    pub object_token: Option<String>,
    pub event: AuditEvent,
    pub before: Value,
    pub after: Value,
}

impl Written {
    /// A new object of `object_type`, as `after` shows it.
    pub fn created(object_type: &str, object_token: impl Into<String>, after: Value) -> Written {
        Written {
            object_type: object_type.into(),
            object_token: Some(object_token.into()),
            event: AuditEvent::Created,
            before: Value::Null,
            after,
        }
    }
}

/// Adds the entry for `written` by `actor`; a write that changed nothing is not recorded.
#[tracing::instrument(skip_all, fields(object_type = %written.object_type, event = written.event.as_str()))]
pub async fn record(store: &dyn Store, actor: &Actor, written: Written) {
    let (changed_values, unchanged_values) = changes(&written.before, &written.after);
    if changed_values.is_empty() {
        return;
    }
    let shown = if written.after.is_null() { &written.before } else { &written.after };
    let entry = AuditEntry {
        token: AuditLogToken::generate(),
        account_token: actor.account.clone(),
        object_token: written.object_token.or_else(|| shown.get("token").and_then(Value::as_str).map(str::to_string)),
        object_title: title_of(shown),
        object_type: written.object_type,
        event: written.event,
        source: actor.source,
        user: actor.user.clone(),
        user_token: actor.user_token.clone(),
        workspace_token: shown.get("workspace_token").and_then(Value::as_str).map(str::to_string),
        created_at: Utc::now(),
        changed_values,
        unchanged_values,
    };
    if let Err(e) = store.append_audit(&entry).await {
        tracing::error!(error = ?e, "an audit entry could not be written; the write it records stands");
    }
}

/// One page of the account's entries `filter` keeps, newest first.
pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    filter: &AuditFilter,
    page: PageRequest,
) -> Result<Paged<AuditEntry>> {
    Ok(store.list_audit(account, filter, page).await?)
}

pub async fn get(store: &dyn Store, account: &AccountToken, token: &AuditLogToken) -> Result<AuditEntry> {
    store.get_audit(account, token).await?.ok_or(ServiceError::NotFound("audit log"))
}

/// The object type an entry names for a resource collection of the API (`billing_rules` → `BillingRule`,
/// `virtual_tag_configs` → `VirtualTag`); the list filter's snake-case names (`virtual_tag`) read the same.
pub fn object_type(collection: &str) -> String {
    let singular = match collection {
        "virtual_tag_configs" => "virtual_tag".to_string(),
        "me" => "user".to_string(),
        "tags" => "tag_setting".to_string(),
        other => match other.strip_suffix("ies") {
            Some(stem) => format!("{stem}y"),
            None => other.strip_suffix('s').unwrap_or(other).to_string(),
        },
    };
    camel(&singular)
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The list filter's `object_type` as stored: `virtual_tag` and `VirtualTag` alike.
pub fn filter_type(text: &str) -> String {
    if text.contains('_') || text.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
        camel(text)
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_name_their_object_types() {
        assert_eq!(object_type("billing_rules"), "BillingRule");
        assert_eq!(object_type("virtual_tag_configs"), "VirtualTag");
        assert_eq!(object_type("business_metrics"), "BusinessMetric");
        assert_eq!(object_type("anomaly_notifications"), "AnomalyNotification");
        assert_eq!(object_type("policies"), "Policy");
        assert_eq!(object_type("me"), "User");
        assert_eq!(filter_type("virtual_tag"), "VirtualTag");
        assert_eq!(filter_type("cost_report"), "CostReport");
        assert_eq!(filter_type("CostReport"), "CostReport");
    }
}
