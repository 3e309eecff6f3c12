//! `GET /v2/ping`: a health check that also proves the token works.

use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ping))
}

#[utoipa::path(get, path = "/ping", tag = "ping", operation_id = "ping_ping", responses((status = 200, description = "OK", body = Value), super::openapi::ApiErrors))]
async fn ping() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
