//! The web console: a browser UI at `/`, on the same port as the API, and its sign-in sessions.
//!
//! The pages are static files embedded in the binary (`assets/`: one HTML shell, plain ES modules and a
//! stylesheet; nothing is built or fetched at run time, see docs/console.md). They call the same `/v2` API
//! as every other client, so every page sees exactly what the signed-in token's account sees and every
//! validation message is the API's own.
//!
//! Signing in trades an API token for a session: a random secret in an `HttpOnly; SameSite=Strict`
//! cookie, kept in the store only as its SHA-256 (so it works on every node sharing the store and a copy of
//! the store cannot be replayed). [`super::auth::require_token`] accepts that cookie where no
//! `Authorization` header is sent; a write by cookie must also carry `X-CSRF-Token`, a value derived from
//! the session secret that only a page of this origin can read (from `GET /console/session`).
//!
//! An MSP's session can look at one of its managed accounts instead (`PUT /console/session/view`): the API
//! then answers as that managed account, read-only, which shows its costs with its billing rules applied.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::extract::Json;
use super::{ApiError, AppState, Result};
use crate::model::token::{secret_hash, AccountToken, Scopes};
use crate::store::{ConsoleSession, Principal};

/// The session cookie's name.
pub const COOKIE: &str = "costd_session";
/// The header a cookie-authenticated write must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a sign-in lasts: a working day, after which the console asks for the token again.
pub const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// The embedded files: name, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("assets/api.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("assets/chart.js")),
    ("pages.js", "text/javascript; charset=utf-8", include_str!("assets/pages.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("assets/style.css")),
];
const INDEX: &str = include_str!("assets/index.html");

/// Scripts and styles only from this origin, no framing, nothing sent elsewhere.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/console/assets/{file}", get(asset))
        .route("/console/session", get(whoami).post(sign_in).delete(sign_out))
        .route("/console/session/view", axum::routing::put(set_view))
}

fn hardened(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    res
}

async fn index() -> Response {
    hardened(
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX)
            .into_response(),
    )
}

async fn asset(Path(file): Path<String>) -> Result<Response> {
    let (_, kind, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound("no such console file".into()))?;
    // `no-cache` revalidates on every load, so a new binary's assets are never mixed with an old page.
    Ok(hardened(([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *body).into_response()))
}

/// The CSRF value of a session: only this origin's pages can read it, and it cannot be derived without the
/// cookie's secret.
pub fn csrf_token(session_secret: &str) -> String {
    hex::encode(Sha256::digest(format!("costd-console-csrf|{session_secret}").as_bytes()))
}

/// The session secret of a request's cookie, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The caller a live session acts as: its token's, or, looking at a managed account, that account's, read-only.
fn session_principal(session: ConsoleSession) -> Principal {
    let mut principal = session.principal;
    if let Some(view) = session.view {
        principal.account_token = view;
        principal.scopes = Scopes { read: principal.scopes.read, write: false };
    }
    principal
}

/// The live session of `secret`: a 401 once it has ended (signed out, expired, its token revoked).
async fn live_session(state: &AppState, secret: &str) -> Result<ConsoleSession> {
    state
        .store
        .console_session(&secret_hash(secret), chrono::Utc::now().timestamp())
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the console session has ended; sign in again".into()))
}

/// Resolves a request's session cookie: `Ok(None)` when there is none.
async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<(String, ConsoleSession)>> {
    let Some(secret) = session_secret(headers) else { return Ok(None) };
    Ok(Some((secret.to_string(), live_session(state, secret).await?)))
}

/// The caller a session cookie stands for, through the auth cache like a bearer token.
pub async fn cookie_principal(state: &AppState, secret: &str) -> Result<Principal> {
    let key = session_cache_key(secret);
    if let Some(p) = state.auth_cache.get(&key) {
        return Ok(p);
    }
    let p = session_principal(live_session(state, secret).await?);
    state.auth_cache.put(key, p.clone());
    Ok(p)
}

fn check_csrf(headers: &HeaderMap, secret: &str) -> Result<()> {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    // Both sides are hex digests of fixed length: comparing them leaks nothing about a secret.
    if sent != csrf_token(secret) {
        return Err(ApiError::Forbidden("a write from the console needs its X-CSRF-Token header".into()));
    }
    Ok(())
}

/// Checks the CSRF header of a cookie-authenticated request that changes something.
pub fn require_csrf(headers: &HeaderMap, method: &axum::http::Method, secret: &str) -> Result<()> {
    use axum::http::Method;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    check_csrf(headers, secret)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// What the console knows of its session.
#[derive(Serialize)]
struct SessionBody {
    /// The signed-in token's account.
    account_token: AccountToken,
    /// The managed account the session looks at, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    view_account_token: Option<AccountToken>,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    view_account_name: Option<String>,
    /// The signed-in token's scopes (a managed-account view is read-only whatever they are).
    scope: Vec<&'static str>,
    description: String,
    csrf_token: String,
}

async fn session_body(state: &AppState, secret: &str, session: &ConsoleSession) -> Result<SessionBody> {
    let view_account_name = match &session.view {
        Some(view) => {
            state.store.get_managed_account(&session.principal.account_token, view).await?.map(|m| m.account.name)
        }
        None => None,
    };
    Ok(SessionBody {
        account_token: session.principal.account_token.clone(),
        view_account_token: session.view.clone(),
        view_account_name,
        scope: session.principal.scopes.names(),
        description: session.principal.description.clone(),
        csrf_token: csrf_token(secret),
    })
}

fn cookie(state: &AppState, headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    // `Secure` where the server is reached over TLS: its public URL says so, or the TLS-terminating proxy in
    // front of it does (`X-Forwarded-Proto: https`; a forged one only makes the cookie stricter). Plain HTTP
    // on localhost would otherwise never get the cookie back.
    let forwarded_tls = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    let tls = forwarded_tls || state.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .expect("a cookie of hex digits is a valid header")
}

/// `POST /console/session {"token": "…"}`: signs in with an API token. A JSON body (which a cross-site form
/// cannot send without asking first) keeps other sites from signing a browser in.
async fn sign_in(State(state): State<AppState>, headers: HeaderMap, Json(body): Json<SignIn>) -> Result<Response> {
    let token = body.token.trim();
    if token.is_empty() {
        return Err(ApiError::bad_request("token is required: paste an API token"));
    }
    let principal = state
        .store
        .principal_for_secret_hash(&secret_hash(token))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the API token is invalid or has been revoked".into()))?;
    if !principal.scopes.read {
        return Err(ApiError::Forbidden("this API token has no read scope, which the console needs".into()));
    }
    let secret = crate::model::token::new_secret();
    let expires = chrono::Utc::now().timestamp() + SESSION_TTL.as_secs() as i64;
    state.store.create_console_session(&secret_hash(&secret), &principal.token_id, expires).await?;
    let session = ConsoleSession { principal, view: None };
    let mut res = (StatusCode::CREATED, axum::Json(session_body(&state, &secret, &session).await?)).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie(&state, &headers, &secret, SESSION_TTL.as_secs()));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `GET /console/session`: the signed-in session (401 when there is none).
async fn whoami(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let (secret, session) =
        resolve(&state, &headers).await?.ok_or_else(|| ApiError::Unauthorized("not signed in".into()))?;
    let mut res = axum::Json(session_body(&state, &secret, &session).await?).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `DELETE /console/session`: signs out (the session ends on every node; the API token stays valid).
async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Some(secret) = session_secret(&headers) {
        check_csrf(&headers, secret)?;
        state.store.delete_console_session(&secret_hash(secret)).await?;
        state.auth_cache.forget(&session_cache_key(secret));
    }
    res.headers_mut().insert(header::SET_COOKIE, cookie(&state, &headers, "", 0));
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct View {
    /// A managed account of the signed-in account, or null for the account itself.
    account_token: Option<String>,
}

/// `PUT /console/session/view {"account_token": "acct_…" | null}`: look at a managed account (read-only) or
/// back at the signed-in account.
async fn set_view(State(state): State<AppState>, headers: HeaderMap, Json(body): Json<View>) -> Result<Response> {
    let (secret, mut session) =
        resolve(&state, &headers).await?.ok_or_else(|| ApiError::Unauthorized("not signed in".into()))?;
    check_csrf(&headers, &secret)?;
    let view = match body.account_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => {
            let not_found = || ApiError::NotFound(format!("{text} is not a managed account of this account"));
            let token = AccountToken::parse(text).ok_or_else(not_found)?;
            state.store.get_managed_account(&session.principal.account_token, &token).await?.ok_or_else(not_found)?;
            Some(token)
        }
    };
    state.store.set_console_session_view(&secret_hash(&secret), view.as_ref()).await?;
    state.auth_cache.forget(&session_cache_key(&secret));
    session.view = view;
    Ok(axum::Json(session_body(&state, &secret, &session).await?).into_response())
}

/// The auth cache's key for a session (distinct from any API token's hash).
fn session_cache_key(secret: &str) -> String {
    format!("console:{}", secret_hash(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; costd_session=abc ; b=2"));
        assert_eq!(session_secret(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("costd_session="));
        assert_eq!(session_secret(&h), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_are_checked_on_writes_only() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        let mut h = HeaderMap::new();
        assert!(require_csrf(&h, &axum::http::Method::GET, "s").is_ok());
        assert!(require_csrf(&h, &axum::http::Method::POST, "s").is_err());
        h.insert(CSRF_HEADER, HeaderValue::from_str(&csrf_token("s")).unwrap());
        assert!(require_csrf(&h, &axum::http::Method::DELETE, "s").is_ok());
        assert!(require_csrf(&h, &axum::http::Method::DELETE, "t").is_err());
    }
}
