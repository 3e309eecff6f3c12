//! Extractors whose rejections are our [`ApiError`]: malformed JSON or query strings answer in Vantage's
//! error shape, naming the offending field, never with a plain-text rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::MAX_JSON_BODY;

/// A JSON request body. Content-Type is not checked (curl's default form type works too); the body must
/// be a JSON object of at most [`MAX_JSON_BODY`] bytes.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::bad_request(format!("request body is larger than the {} KiB limit", MAX_JSON_BODY / 1024))
            } else {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            }
        })?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("request body must be a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner();
            if inner.is_data() {
                ApiError::bad_request(format!("{}: {}", e.path(), strip_position(&inner.to_string())))
            } else {
                ApiError::bad_request(format!("request body is not valid JSON: {inner}"))
            }
        })?;
        de.end().map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
        Ok(Json(value))
    }
}

/// serde_json's data errors end in " at line 1 column 13", which means nothing once the field is named.
fn strip_position(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

/// A query string parsed into `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| ApiError::bad_request(format!("query parameter {}: {}", e.path(), e.inner())))
    }
}

/// A multipart body; anything else is a 400 that says what to send.
pub struct Multipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Multipart::from_request(req, state).await.map(Multipart).map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be multipart/form-data with the cost file in the field csv ({})",
                e.body_text()
            ))
        })
    }
}
