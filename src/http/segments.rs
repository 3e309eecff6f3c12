//! `/v2/segments`: the account's segments (docs/segments.md), each with the cost report costd generates
//! for it, in Vantage's shapes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, ListParams, Paging};
use super::{AppState, Result};
use crate::model::segment::{SegmentFields, SegmentView};
use crate::service::segments;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

#[derive(Serialize, utoipa::ToSchema)]
struct SegmentsBody {
    segments: Vec<SegmentView>,
    links: Links,
}

#[utoipa::path(get, path = "/segments", tag = "segments", operation_id = "segments_list", params(("q" = Option<String>, Query, description = "Segments whose title contains this"), ("workspace_token" = Option<String>, Query)), responses((status = 200, description = "OK", body = SegmentsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<SegmentsBody>> {
    let all = segments::list(
        state.store.as_ref(),
        &caller.account_token,
        params.workspace_token.as_deref(),
        params.q.as_deref(),
    )
    .await?;
    let (page, links) = paging.slice(all);
    Ok(axum::Json(SegmentsBody { segments: page.iter().map(SegmentView::from).collect(), links }))
}

#[utoipa::path(post, path = "/segments", tag = "segments", operation_id = "segments_create", request_body = SegmentFields, responses((status = 201, description = "Created", body = SegmentView), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<SegmentFields>,
) -> Result<(StatusCode, axum::Json<SegmentView>)> {
    let created = segments::create(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(SegmentView::from(&created))))
}

#[utoipa::path(get, path = "/segments/{segment_token}", tag = "segments", operation_id = "segments_show", params(("segment_token" = String, Path)), responses((status = 200, description = "OK", body = SegmentView), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<SegmentView>> {
    let found = segments::get(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(axum::Json(SegmentView::from(&found)))
}

#[utoipa::path(put, path = "/segments/{segment_token}", tag = "segments", operation_id = "segments_update", request_body = SegmentFields, params(("segment_token" = String, Path)), responses((status = 200, description = "OK", body = SegmentView), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<SegmentFields>,
) -> Result<axum::Json<SegmentView>> {
    let updated = segments::update(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(SegmentView::from(&updated)))
}

#[utoipa::path(delete, path = "/segments/{segment_token}", tag = "segments", operation_id = "segments_remove", params(("segment_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    segments::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
