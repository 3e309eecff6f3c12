//! Bearer-token authentication and scope checks, as one middleware in front of every `/v2` route.
//!
//! The secret is hashed (SHA-256) and looked up; the resulting [`Principal`] goes into the request's
//! extensions. GET/HEAD need the `read` scope, every other method `write`
//! (except the POSTs Vantage documents as reads: an invoice's download link). A token a directory user owns
//! is bounded by the user's role too (a Viewer writes nothing, an Editor manages no users or integrations, an
//! Integration Owner no users).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::AppState;
use crate::model::token::secret_hash;
use crate::store::Principal;

/// POSTs that only read, which Vantage's spec gives the `read` scope: asking for an invoice's download link,
/// and for a cost or unit-cost data export.
pub(super) fn reads_by_post(path: &str) -> bool {
    // Inside the `/v2` nest the prefix is already stripped.
    let path = path.strip_prefix("/v2").unwrap_or(path);
    (path.starts_with("/invoices/") && path.ends_with("/download"))
        || path == "/costs/data_exports"
        || path == "/unit_costs/data_exports"
        || path == "/virtual_tag_configs/preview"
}

/// Authenticates the request and checks its scope; handlers then read `Extension<Principal>`.
///
/// A request without an `Authorization` header may be the web console's, signed in by its session cookie
/// (see [`super::console`]); a write that way must carry the session's CSRF header.
pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let principal = match console_secret(&req) {
        Some(secret) => {
            super::console::require_csrf(req.headers(), req.method(), &secret)?;
            super::console::cookie_principal(&state, &secret).await?
        }
        None => {
            let hash = secret_hash(bearer_secret(&req)?);
            bearer_principal(&state, hash).await?
        }
    };
    let needs_write =
        !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) && !reads_by_post(req.uri().path());
    if let (true, Some(role)) = (needs_write, principal.role) {
        role.may_write(req.uri().path()).map_err(ApiError::Forbidden)?;
    }
    if needs_write && !principal.scopes.write {
        return Err(ApiError::Forbidden("this API token has no write scope".into()));
    }
    if !needs_write && !principal.scopes.read {
        return Err(ApiError::Forbidden("this API token has no read scope".into()));
    }
    tracing::Span::current().record("account", principal.account_token.as_str());
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// The console session secret of a request that sends no `Authorization` header.
fn console_secret(req: &Request) -> Option<String> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return None;
    }
    super::console::session_secret(req.headers()).map(str::to_string)
}

async fn bearer_principal(state: &AppState, hash: String) -> Result<Principal, ApiError> {
    if let Some(p) = state.auth_cache.get(&hash) {
        return Ok(p);
    }
    let p = state
        .store
        .principal_for_secret_hash(&hash)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the API token is invalid or has been revoked".into()))?;
    state.auth_cache.put(hash, p.clone());
    Ok(p)
}

fn bearer_secret(req: &Request) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized("an Authorization: Bearer <API token> header is required".into());
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, secret) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
        return Err(missing());
    }
    Ok(secret.trim())
}

/// The caller, as the auth middleware resolved it.
pub type Caller = axum::Extension<Principal>;

/// Recently authenticated tokens, so a busy client costs one store lookup per `ttl` instead of one per
/// request. Only successes are cached (a new token works at once); a revocation reaches a running
/// server within `ttl` (1 s by default; `--auth-cache-ttl-ms 0` turns the cache off).
pub struct AuthCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, (Principal, Instant)>>,
}

/// Most cached tokens; past it the cache starts over, which bounds its memory.
const AUTH_CACHE_CAPACITY: usize = 10_000;

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        AuthCache { ttl, entries: RwLock::new(HashMap::new()) }
    }

    pub(super) fn get(&self, hash: &str) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(hash).filter(|(_, at)| at.elapsed() < self.ttl).map(|(p, _)| p.clone())
    }

    /// Drops one entry (a console session that changed or ended).
    pub fn forget(&self, key: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }

    pub(super) fn put(&self, hash: String, principal: Principal) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= AUTH_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(hash, (principal, Instant::now()));
    }
}
