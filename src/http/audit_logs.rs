//! `/v2/audit_logs` (docs/access.md): the account's audit log, listed with Vantage's filters and read one
//! entry at a time; and [`record_writes`], the layer that writes it for every write through the API or the
//! console.
//!
//! The layer sits inside the auth layer, so it knows the caller. For a write to `/<collection>/<token>…` it
//! reads the object as the API shows it (`GET /<collection>/<token>`) before the write and after it; a
//! create's object is what the create answered. The entry holds the fields that differ, so secrets are only
//! ever what the API itself shows of them (nothing), masked again by name. A write that failed, changed
//! nothing, or is a read sent by POST (an export, a preview, a download) is not an entry. Writes that name no
//! object (`PUT /v2/tags`, a rates file) are entries of their collection with what they answered.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::Query;
use super::pagination::{Links, Paging};
use super::{path_token, timestamp, ApiError, AppState, Result};
use crate::model::audit::{AuditEntry, AuditEvent, AuditFilter, AuditSource};
use crate::model::token::AuditLogToken;
use crate::service::audit::{self, Actor, Written};
use crate::store::Principal;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show))
}

/// An entry as Vantage shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct AuditLogBody {
    token: String,
    object_token: Option<String>,
    object_type: String,
    object_title: Option<String>,
    /// `record_created`, `record_updated` or `record_destroyed`.
    event: &'static str,
    /// `api`, `console` or `cli`.
    source: &'static str,
    /// The API token's description (its id in `user_token`), or `operator`.
    user: String,
    user_token: Option<String>,
    workspace_title: Option<String>,
    workspace_token: Option<String>,
    created_at: String,
    /// Each changed field: `[before, after]`.
    #[schema(value_type = Object)]
    changed_values: Map<String, Value>,
    #[schema(value_type = Object)]
    unchanged_values: Map<String, Value>,
}

impl From<AuditEntry> for AuditLogBody {
    fn from(e: AuditEntry) -> Self {
        AuditLogBody {
            token: e.token.as_str().to_string(),
            object_token: e.object_token,
            object_type: e.object_type,
            object_title: e.object_title,
            event: e.event.as_str(),
            source: e.source.as_str(),
            user: e.user,
            user_token: e.user_token,
            workspace_title: None,
            workspace_token: e.workspace_token,
            created_at: timestamp(e.created_at),
            changed_values: e.changed_values,
            unchanged_values: e.unchanged_values,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuditLogsBody {
    audit_logs: Vec<AuditLogBody>,
    links: Links,
}

/// Vantage's list filters.
#[derive(Deserialize, utoipa::IntoParams, Default)]
#[serde(default)]
struct ListParams {
    /// `create`, `update` or `delete`.
    action: Option<String>,
    /// `api`, `console` or `cli`.
    source: Option<String>,
    /// `virtual_tag`, `cost_report`, `BillingRule`, …
    object_type: Option<String>,
    object_token: Option<String>,
    /// Entries whose object title contains this (any case).
    object_name: Option<String>,
    token: Option<String>,
    workspace_token: Option<String>,
    /// On or after this day (YYYY-MM-DD, UTC).
    start_date: Option<String>,
    /// On or before this day.
    end_date: Option<String>,
    #[allow(dead_code)]
    page: Option<u32>,
    #[allow(dead_code)]
    limit: Option<u32>,
}

impl TryFrom<ListParams> for AuditFilter {
    type Error = Vec<String>;

    fn try_from(p: ListParams) -> std::result::Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let event = p.action.as_deref().and_then(|a| {
            let e = AuditEvent::from_action(a);
            if e.is_none() {
                problems.push(format!("action must be create, update or delete, got {a:?}"));
            }
            e
        });
        let source = p.source.as_deref().and_then(|s| {
            let parsed = AuditSource::parse(s);
            if parsed.is_none() {
                problems.push(format!("source must be api, console or cli, got {s:?}"));
            }
            parsed
        });
        let mut day = |name: &str, text: Option<String>| {
            text.and_then(|t| match chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    problems.push(format!("{name} must be a date (YYYY-MM-DD), got {t:?}"));
                    None
                }
            })
        };
        let start = day("start_date", p.start_date);
        let end = day("end_date", p.end_date);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(AuditFilter {
            event,
            source,
            object_type: p.object_type.as_deref().map(audit::filter_type),
            object_token: p.object_token,
            object_name: p.object_name,
            token: p.token,
            workspace_token: p.workspace_token,
            start,
            end,
        })
    }
}

#[utoipa::path(get, path = "/audit_logs", tag = "audit_logs", operation_id = "audit_logs_list", params(ListParams), responses((status = 200, description = "OK", body = AuditLogsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<AuditLogsBody>> {
    let filter = AuditFilter::try_from(params).map_err(ApiError::BadRequest)?;
    let found = audit::list(state.store.as_ref(), &caller.account_token, &filter, paging.page).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(AuditLogsBody { audit_logs: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(get, path = "/audit_logs/{audit_log_token}", tag = "audit_logs", operation_id = "audit_logs_show", params(("audit_log_token" = String, Path)), responses((status = 200, description = "OK", body = AuditLogBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<AuditLogBody>> {
    let not_found = || ApiError::NotFound("audit log not found".into());
    let token = path_token(&text, AuditLogToken::parse, not_found)?;
    Ok(axum::Json(audit::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

/// What [`record_writes`] needs: the store, and the API's handlers (without this layer) to read an object
/// before and after a write as the caller would.
#[derive(Clone)]
pub struct AuditLayer {
    pub state: AppState,
    pub reader: axum::Router,
}

/// Largest response body read back for the entry (bodies of writes are an object or a short list).
const MAX_BODY: usize = 1 << 20;

/// The object a write path names: its collection and, when the path has one, its token (its path).
fn target(path: &str) -> Option<(String, Option<String>)> {
    let mut parts = path.trim_start_matches('/').split('/').filter(|p| !p.is_empty());
    let collection = parts.next()?.to_string();
    // A token is a prefix and hex digits (`bllng_rule_9d50…`); `custom_provider` or `csv` is a name.
    let token = parts.next().filter(|t| {
        t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && t.rsplit_once('_')
                .is_some_and(|(_, digits)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    Some((collection, token.map(str::to_string)))
}

/// The object at `path` as the caller reads it (`Null` when it cannot be read).
async fn read(layer: &AuditLayer, path: &str, principal: &Principal) -> Value {
    let Ok(req) = Request::builder().method(Method::GET).uri(path).extension(principal.clone()).body(Body::empty())
    else {
        return Value::Null;
    };
    match layer.reader.clone().oneshot(req).await {
        Ok(res) if res.status() == StatusCode::OK => body_json(res.into_body()).await,
        _ => Value::Null,
    }
}

async fn body_json(body: Body) -> Value {
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Records each successful write of the API and the console in the audit log (see the module doc).
pub async fn record_writes(State(layer): State<AuditLayer>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // Reads pass at once: the layer costs them one comparison.
    if !matches!(method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let principal = req.extensions().get::<Principal>().cloned();
    let (Some(principal), Some((collection, token))) = (principal, target(&path)) else {
        return next.run(req).await;
    };
    if super::auth::reads_by_post(&path) || collection == "audit_logs" {
        return next.run(req).await;
    }
    let source =
        if req.headers().contains_key(header::AUTHORIZATION) { AuditSource::Api } else { AuditSource::Console };
    let object_path = token.as_ref().map(|t| format!("/{collection}/{t}"));
    let before = match &object_path {
        Some(p) => read(&layer, p, &principal).await,
        None => Value::Null,
    };
    let response = next.run(req).await;
    if !response.status().is_success() {
        return response;
    }
    // The object itself deleted: nothing after. A create answers its object; any other write is read again.
    let deletes_object = method == Method::DELETE && object_path.as_deref() == Some(path.trim_end_matches('/'));
    let (response, after) = if deletes_object {
        (response, Value::Null)
    } else if let Some(p) = &object_path {
        (response, read(&layer, p, &principal).await)
    } else {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
        let after = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (Response::from_parts(parts, Body::from(bytes)), after)
    };
    let event = match (&object_path, deletes_object) {
        (_, true) => AuditEvent::Destroyed,
        (None, _) if method == Method::POST => AuditEvent::Created,
        _ => AuditEvent::Updated,
    };
    let actor = Actor {
        account: principal.account_token.clone(),
        user: if principal.description.is_empty() { principal.token_id.clone() } else { principal.description.clone() },
        user_token: Some(principal.token_id.clone()),
        source,
    };
    let written = Written { object_type: audit::object_type(&collection), object_token: token, event, before, after };
    audit::record(layer.state.store.as_ref(), &actor, written).await;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_path_names_its_collection_and_object() {
        assert_eq!(target("/billing_rules"), Some(("billing_rules".into(), None)));
        assert_eq!(
            target("/virtual_tag_configs/vtag_1a/values/vtag_val_2"),
            Some(("virtual_tag_configs".into(), Some("vtag_1a".into())))
        );
        assert_eq!(target("/exchange_rates/csv"), Some(("exchange_rates".into(), None)));
        assert_eq!(target("/integrations/custom_provider"), Some(("integrations".into(), None)));
        assert_eq!(target("/"), None);
    }

    #[test]
    fn list_filters_are_parsed_and_bad_ones_named() {
        let ok = AuditFilter::try_from(ListParams {
            action: Some("update".into()),
            object_type: Some("virtual_tag".into()),
            start_date: Some("2026-01-01".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.event, Some(AuditEvent::Updated));
        assert_eq!(ok.object_type.as_deref(), Some("VirtualTag"));
        let bad = AuditFilter::try_from(ListParams {
            action: Some("rename".into()),
            source: Some("fax".into()),
            end_date: Some("soon".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].starts_with("action") && bad[1].starts_with("source") && bad[2].starts_with("end_date"));
    }
}
