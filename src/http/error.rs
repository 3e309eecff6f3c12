//! The API's one error type. Every variant renders as Vantage's `{"errors": [...]}`; 500s say only
//! "internal error" and carry their cause to the logging middleware, which logs it once.

use crate::service::ServiceError;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Result of a handler.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid; one sentence per problem.
    #[error("bad request: {0:?}")]
    BadRequest(Vec<String>),
    /// 401: no token, or an unknown or revoked one.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: the token lacks the scope the request needs.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: no such resource for this account (another account's resource answers the same).
    #[error("not found: {0}")]
    NotFound(String),
    /// 405: the path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: the uploaded file is larger than the configured limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 422: the request is well-formed but cannot be carried out (e.g. deleting the last workspace).
    #[error("unprocessable: {0:?}")]
    Unprocessable(Vec<String>),
    /// 429: the caller has too much of something under way (data exports); trying later works.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// 502: a server costd depends on (the SMTP server) refused or failed; nothing was changed.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// 503: the server gave up on the request (a costs query past its time limit); trying later or asking for
    /// less may work.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 500: anything unexpected; the cause is logged, never shown.
    #[error("internal error")]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    /// A store error is a 500, except a broken UNIQUE constraint: a race the caller lost, a 409.
    fn from(e: anyhow::Error) -> Self {
        match crate::store::unique_violation(&e) {
            Some(conflict) => ApiError::Conflict(conflict),
            None => ApiError::Internal(e),
        }
    }
}

/// The services' errors, each kind to its status: the one place a service error becomes HTTP.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            e @ ServiceError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ServiceError::Invalid(problems) => ApiError::BadRequest(problems),
            ServiceError::Forbidden(msg) => ApiError::Forbidden(msg),
            ServiceError::Conflict(msg) => ApiError::Conflict(msg),
            e @ ServiceError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
            ServiceError::Unprocessable(problems) => ApiError::Unprocessable(problems),
            ServiceError::TooMany(msg) => ApiError::TooManyRequests(msg),
            ServiceError::Upstream(msg) => ApiError::BadGateway(msg),
            ServiceError::Unavailable(msg) => ApiError::Unavailable(msg),
            ServiceError::Internal(e) => ApiError::from(e),
        }
    }
}

impl ApiError {
    /// A 400 with one message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(vec![msg.into()])
    }

    /// The status each variant answers with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The cause of a 500, handed from the response to the logging middleware.
#[derive(Clone)]
pub struct InternalCause(pub Arc<anyhow::Error>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let messages = match &self {
            ApiError::BadRequest(m) | ApiError::Unprocessable(m) => m.clone(),
            ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::TooManyRequests(m)
            | ApiError::BadGateway(m)
            | ApiError::Unavailable(m) => vec![m.clone()],
            ApiError::MethodNotAllowed => vec!["method not allowed for this path".to_string()],
            ApiError::Internal(_) => vec!["internal error".to_string()],
        };
        let mut response = (status, Json(json!({ "errors": messages }))).into_response();
        if let ApiError::Internal(cause) = self {
            response.extensions_mut().insert(InternalCause(Arc::new(cause)));
        }
        response
    }
}

/// Logs the cause chain of every 500, inside the request's span, once.
pub async fn log_internal_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(error = format!("{cause:#}"), "request failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// A table with a UNIQUE token, and the insert that two racing requests would both make.
    fn race(suffix: &str) -> (String, String) {
        let table = format!("races_{suffix}");
        (
            format!("CREATE TEMPORARY TABLE {table} (token TEXT NOT NULL CONSTRAINT uq_{table}_token UNIQUE)"),
            format!("INSERT INTO {table} (token) VALUES ('wrkspc_1')"),
        )
    }

    fn stored(e: sqlx::Error) -> anyhow::Error {
        Err::<(), _>(e).context("failed to store the workspace").unwrap_err()
    }

    fn assert_conflict(e: anyhow::Error) {
        let api = ApiError::from(e);
        assert_eq!(api.status_code(), StatusCode::CONFLICT, "{api:?}");
        let ApiError::Conflict(message) = api else { unreachable!() };
        assert!(message.contains("token") && message.contains("retry"), "{message}");
    }

    #[tokio::test]
    async fn a_broken_unique_constraint_is_a_conflict_on_sqlite() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let (create, insert) = race("sqlite");
        sqlx::query(&create).execute(&mut *conn).await.unwrap();
        sqlx::query(&insert).execute(&mut *conn).await.unwrap();
        assert_conflict(stored(sqlx::query(&insert).execute(&mut *conn).await.unwrap_err()));
        // Any other store error stays a 500 that says nothing.
        let other = sqlx::query("SELECT * FROM missing").execute(&mut *conn).await.unwrap_err();
        assert_eq!(ApiError::from(anyhow::Error::new(other)).status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_broken_unique_constraint_is_a_conflict_on_postgres() {
        use sqlx::Connection;
        let url = std::env::var("COSTD_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = match sqlx::PgConnection::connect(&url).await {
            Ok(c) => c,
            Err(e) if std::env::var("CI").is_err() => return eprintln!("SKIPPED: cannot reach {url}: {e}"),
            Err(e) => panic!("CI must run the PostgreSQL tests, but {url} is unreachable: {e}"),
        };
        let (create, insert) = race("postgres");
        sqlx::query(&create).execute(&mut conn).await.unwrap();
        sqlx::query(&insert).execute(&mut conn).await.unwrap();
        assert_conflict(stored(sqlx::query(&insert).execute(&mut conn).await.unwrap_err()));
    }
}
