//! `GET /v2/ping`: a health check that also proves the token works.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/ping", get(ping))
}

#[utoipa::path(get, path = "/v2/ping", tag = "ping", operation_id = "ping_ping", responses((status = 200, description = "OK"), super::openapi::ApiErrors))]
async fn ping() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
