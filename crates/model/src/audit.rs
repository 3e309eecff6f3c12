//! The audit log (`/v2/audit_logs`, docs/access.md): one entry per write that changed something, with who
//! made it, through what, on which object, and each field's value before and after. Entries are only ever
//! added; nothing in costd changes or removes one (an account's entries go with the account).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::token::{AccountToken, AuditLogToken};

/// What a write did to its object (Vantage's `event`; its list filter says `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    Created,
    Updated,
    Destroyed,
}

impl AuditEvent {
    /// As Vantage writes it in an entry.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Created => "record_created",
            AuditEvent::Updated => "record_updated",
            AuditEvent::Destroyed => "record_destroyed",
        }
    }

    /// An entry's text back (as [`AuditEvent::as_str`] wrote it).
    pub fn parse(text: &str) -> Option<AuditEvent> {
        [AuditEvent::Created, AuditEvent::Updated, AuditEvent::Destroyed].into_iter().find(|e| e.as_str() == text)
    }

    /// The list filter's `action` (`create`, `update`, `delete`).
    pub fn from_action(action: &str) -> Option<AuditEvent> {
        match action {
            "create" => Some(AuditEvent::Created),
            "update" => Some(AuditEvent::Updated),
            "delete" => Some(AuditEvent::Destroyed),
            _ => None,
        }
    }
}

/// Through what the write came: the API with a token, the web console with a session, or the operator's
/// command line on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditSource {
    Api,
    Console,
    Cli,
}

impl AuditSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditSource::Api => "api",
            AuditSource::Console => "console",
            AuditSource::Cli => "cli",
        }
    }

    pub fn parse(text: &str) -> Option<AuditSource> {
        [AuditSource::Api, AuditSource::Console, AuditSource::Cli].into_iter().find(|s| s.as_str() == text)
    }
}

/// One write, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub token: AuditLogToken,
    /// The account whose object was written (a managed account's own log holds what its MSP's staff did
    /// there, attributed to them).
    pub account_token: AccountToken,
    /// What kind of object (`BillingRule`, `VirtualTag`, …).
    pub object_type: String,
    pub object_token: Option<String>,
    /// Its title, name or key, as it read after the write (before it, for a delete).
    pub object_title: Option<String>,
    pub event: AuditEvent,
    pub source: AuditSource,
    /// Who: the API token's description and id, or `operator` for the command line.
    pub user: String,
    /// The API token (`tkn_…`) that wrote, when one did.
    pub user_token: Option<String>,
    pub workspace_token: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Each field that changed: `[before, after]` (`null` for a field that was not there).
    pub changed_values: Map<String, Value>,
    /// Each field the write left as it was, with its value.
    pub unchanged_values: Map<String, Value>,
}

/// Which entries a list asks for (every condition given must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub event: Option<AuditEvent>,
    pub source: Option<AuditSource>,
    pub object_type: Option<String>,
    pub object_token: Option<String>,
    /// Entries whose object title contains this (any case).
    pub object_name: Option<String>,
    pub token: Option<String>,
    pub workspace_token: Option<String>,
    /// On or after this day (UTC).
    pub start: Option<NaiveDate>,
    /// On or before this day (UTC).
    pub end: Option<NaiveDate>,
}

/// Fields whose values an audit entry never shows: credentials and secrets, whatever resource has them.
fn secret(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    ["secret", "password", "private_key", "access_key", "credential", "sas_token", "api_key", "authorization"]
        .iter()
        .any(|s| f.contains(s))
}

const MASKED: &str = "[masked]";

fn masked(field: &str, value: &Value) -> Value {
    if secret(field) && !value.is_null() {
        Value::String(MASKED.into())
    } else {
        value.clone()
    }
}

/// The fields of an object before and after a write (`null`: there was none, or is none) as an entry's
/// changed and unchanged values, secrets masked. `links` (paging) and `updated_at`-like bookkeeping that
/// changes on every write are kept as they are: they say when.
pub fn changes(before: &Value, after: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut changed = Map::new();
    let mut unchanged = Map::new();
    for (field, old) in before {
        match after.get(field) {
            Some(new) if new == old => {
                unchanged.insert(field.clone(), masked(field, new));
            }
            Some(new) => {
                changed.insert(field.clone(), Value::Array(vec![masked(field, old), masked(field, new)]));
            }
            None => {
                changed.insert(field.clone(), Value::Array(vec![masked(field, old), Value::Null]));
            }
        }
    }
    for (field, new) in after {
        if !before.contains_key(field) {
            changed.insert(field.clone(), Value::Array(vec![Value::Null, masked(field, new)]));
        }
    }
    (changed, unchanged)
}

/// The title an object's body shows: its `title`, `name`, `key` or `email`, the first that is text.
pub fn title_of(body: &Value) -> Option<String> {
    ["title", "name", "key", "email"].iter().find_map(|f| body.get(*f).and_then(Value::as_str)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_write_is_told_field_by_field_with_secrets_masked() {
        let before = json!({"token": "r_1", "title": "Old", "percentage": 90, "secret_access_key": "abc"});
        let after = json!({"token": "r_1", "title": "New", "percentage": 90, "secret_access_key": "xyz", "extra": 1});
        let (changed, unchanged) = changes(&before, &after);
        assert_eq!(
            Value::Object(changed),
            json!({"title": ["Old", "New"], "secret_access_key": ["[masked]", "[masked]"], "extra": [null, 1]})
        );
        assert_eq!(Value::Object(unchanged), json!({"token": "r_1", "percentage": 90}));
    }

    #[test]
    fn a_create_and_a_delete_have_only_one_side() {
        let object = json!({"token": "r_1", "title": "T", "password": null});
        let (created, same) = changes(&Value::Null, &object);
        assert_eq!(
            Value::Object(created),
            json!({"token": [null, "r_1"], "title": [null, "T"], "password": [null, null]})
        );
        assert!(same.is_empty());
        let (deleted, _) = changes(&object, &Value::Null);
        assert_eq!(deleted["title"], json!(["T", null]));
    }

    #[test]
    fn events_sources_and_titles_read_back() {
        for e in [AuditEvent::Created, AuditEvent::Updated, AuditEvent::Destroyed] {
            assert_eq!(AuditEvent::parse(e.as_str()), Some(e));
        }
        assert_eq!(AuditEvent::from_action("delete"), Some(AuditEvent::Destroyed));
        assert_eq!(AuditEvent::from_action("remove"), None);
        for s in [AuditSource::Api, AuditSource::Console, AuditSource::Cli] {
            assert_eq!(AuditSource::parse(s.as_str()), Some(s));
        }
        assert_eq!(title_of(&json!({"key": "team", "name": 3})), Some("team".into()));
        assert_eq!(title_of(&json!({"amount": "1"})), None);
    }
}
