//! `/v2/workspaces`: list (search by name with `q`), create, get, update, delete.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{base_url, Links, ListParams, MAX_LIMIT};
use super::{timestamp, ApiError, AppState, Result};
use crate::model::workspace::{WorkspaceFields, WorkspaceSettings};
use crate::store::{Workspace, WorkspaceDeletion};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

/// A workspace as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkspaceBody {
    token: String,
    name: String,
    created_at: String,
    enable_currency_conversion: bool,
    currency: String,
    exchange_rate_date: String,
}

impl From<Workspace> for WorkspaceBody {
    fn from(w: Workspace) -> Self {
        WorkspaceBody {
            token: w.token,
            name: w.settings.name,
            created_at: timestamp(w.created_at),
            enable_currency_conversion: w.settings.enable_currency_conversion,
            currency: w.settings.currency,
            exchange_rate_date: w.settings.exchange_rate_date,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct WorkspacesBody {
    workspaces: Vec<WorkspaceBody>,
    links: Links,
}

fn not_found() -> ApiError {
    ApiError::NotFound("workspace not found".into())
}

#[utoipa::path(get, path = "/workspaces", tag = "workspaces", operation_id = "workspaces_list", responses((status = 200, description = "OK", body = WorkspacesBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<WorkspacesBody>> {
    let page = params.page_request(MAX_LIMIT)?;
    let q = params.q.as_deref().filter(|q| !q.trim().is_empty());
    let found = state.store.list_workspaces(&caller.account_token, page, q).await?;
    let links = Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, page, found.total);
    Ok(axum::Json(WorkspacesBody { workspaces: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/workspaces", tag = "workspaces", operation_id = "workspaces_create", responses((status = 201, description = "Created", body = WorkspaceBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<WorkspaceFields>,
) -> Result<(StatusCode, axum::Json<WorkspaceBody>)> {
    let settings = WorkspaceSettings::try_from(fields).map_err(ApiError::BadRequest)?;
    let created = state.store.create_workspace(&caller.account_token, &settings).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/workspaces/{workspace_token}", tag = "workspaces", operation_id = "workspaces_show", params(("workspace_token" = String, Path)), responses((status = 200, description = "OK", body = WorkspaceBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<WorkspaceBody>> {
    let found = state.store.get_workspace(&caller.account_token, &token).await?.ok_or_else(not_found)?;
    Ok(axum::Json(found.into()))
}

#[utoipa::path(put, path = "/workspaces/{workspace_token}", tag = "workspaces", operation_id = "workspaces_update", params(("workspace_token" = String, Path)), responses((status = 200, description = "OK", body = WorkspaceBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<WorkspaceFields>,
) -> Result<axum::Json<WorkspaceBody>> {
    let current = state.store.get_workspace(&caller.account_token, &token).await?.ok_or_else(not_found)?;
    let merged = WorkspaceFields::from(current.settings).overlay(fields);
    let settings = WorkspaceSettings::try_from(merged).map_err(ApiError::BadRequest)?;
    let updated =
        state.store.update_workspace(&caller.account_token, &token, &settings).await?.ok_or_else(not_found)?;
    Ok(axum::Json(updated.into()))
}

#[utoipa::path(delete, path = "/workspaces/{workspace_token}", tag = "workspaces", operation_id = "workspaces_remove", params(("workspace_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    match state.store.delete_workspace(&caller.account_token, &token).await? {
        WorkspaceDeletion::Deleted => Ok(StatusCode::NO_CONTENT),
        WorkspaceDeletion::NotFound => Err(not_found()),
        WorkspaceDeletion::LastWorkspace => Err(ApiError::Unprocessable(vec![
            "an account must keep at least one workspace; create another before deleting this one".into(),
        ])),
    }
}
