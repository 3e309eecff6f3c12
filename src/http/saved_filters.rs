//! `/v2/saved_filters`: named VQL filters that cost reports (and folders) apply.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, ListParams, Paging};
use super::{timestamp, AppState, Result};
use crate::model::report::{SavedFilterFields, ViewKind};
use crate::service::reports;
use crate::store::ReportObject;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

/// A saved filter as Vantage shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct SavedFilterBody {
    token: String,
    title: String,
    cost_report_tokens: Vec<String>,
    filter: Option<String>,
    created_at: String,
    created_by: Option<String>,
    workspace_token: String,
}

async fn body(state: &AppState, caller: &Caller, f: ReportObject) -> Result<SavedFilterBody> {
    let mut users =
        reports::saved_filter_users(state.store.as_ref(), &caller.account_token, std::slice::from_ref(&f)).await?;
    with_users(f, users.pop().unwrap_or_default())
}

/// A saved filter as the API shows it, with the reports that apply it.
fn with_users(f: ReportObject, cost_report_tokens: Vec<String>) -> Result<SavedFilterBody> {
    let definition = reports::saved_filter_definition(&f)?;
    Ok(SavedFilterBody {
        cost_report_tokens,
        token: f.token,
        title: f.title,
        filter: definition.filter,
        created_at: timestamp(f.created_at),
        created_by: definition.created_by,
        workspace_token: f.workspace_token,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct SavedFiltersBody {
    saved_filters: Vec<SavedFilterBody>,
    links: Links,
}

#[utoipa::path(get, path = "/saved_filters", tag = "saved_filters", operation_id = "saved_filters_list", responses((status = 200, description = "OK", body = SavedFiltersBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<SavedFiltersBody>> {
    let (items, links) =
        super::cost_reports::list_objects(&state, &caller, ViewKind::SavedFilter, &params, &paging).await?;
    let users = reports::saved_filter_users(state.store.as_ref(), &caller.account_token, &items).await?;
    let saved_filters = items.into_iter().zip(users).map(|(f, users)| with_users(f, users)).collect::<Result<_>>()?;
    Ok(axum::Json(SavedFiltersBody { saved_filters, links }))
}

#[utoipa::path(post, path = "/saved_filters", tag = "saved_filters", operation_id = "saved_filters_create", request_body = SavedFilterFields, responses((status = 201, description = "Created", body = SavedFilterBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<SavedFilterFields>,
) -> Result<(StatusCode, axum::Json<SavedFilterBody>)> {
    let created = reports::create_saved_filter(
        state.store.as_ref(),
        &caller.account_token,
        Some(caller.user_token.clone()),
        fields,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(body(&state, &caller, created).await?)))
}

#[utoipa::path(get, path = "/saved_filters/{saved_filter_token}", tag = "saved_filters", operation_id = "saved_filters_show", params(("saved_filter_token" = String, Path)), responses((status = 200, description = "OK", body = SavedFilterBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<SavedFilterBody>> {
    let found = reports::get(state.store.as_ref(), &caller.account_token, ViewKind::SavedFilter, &token).await?;
    Ok(axum::Json(body(&state, &caller, found).await?))
}

#[utoipa::path(put, path = "/saved_filters/{saved_filter_token}", tag = "saved_filters", operation_id = "saved_filters_update", request_body = SavedFilterFields, params(("saved_filter_token" = String, Path)), responses((status = 200, description = "OK", body = SavedFilterBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<SavedFilterFields>,
) -> Result<axum::Json<SavedFilterBody>> {
    let updated = reports::update_saved_filter(state.store.as_ref(), &caller.account_token, &token, fields).await?;
    Ok(axum::Json(body(&state, &caller, updated).await?))
}

#[utoipa::path(delete, path = "/saved_filters/{saved_filter_token}", tag = "saved_filters", operation_id = "saved_filters_remove", params(("saved_filter_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    reports::delete(state.store.as_ref(), &caller.account_token, ViewKind::SavedFilter, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
