//! `/v2/workspaces`: list (search by name with `q`), create, get, update, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, ListParams, Paging};
use super::{timestamp, AppState, Result};
use crate::model::workspace::WorkspaceFields;
use crate::service::workspaces;
use crate::store::Workspace;

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

#[utoipa::path(get, path = "/workspaces", tag = "workspaces", operation_id = "workspaces_list", responses((status = 200, description = "OK", body = WorkspacesBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    paging: Paging,
) -> Result<axum::Json<WorkspacesBody>> {
    let page = paging.page;
    let found = workspaces::list(state.store.as_ref(), &caller.account_token, page, params.q.as_deref()).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(WorkspacesBody { workspaces: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/workspaces", tag = "workspaces", operation_id = "workspaces_create", request_body = WorkspaceFields, responses((status = 201, description = "Created", body = WorkspaceBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<WorkspaceFields>,
) -> Result<(StatusCode, axum::Json<WorkspaceBody>)> {
    let created = workspaces::create(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/workspaces/{workspace_token}", tag = "workspaces", operation_id = "workspaces_show", params(("workspace_token" = String, Path)), responses((status = 200, description = "OK", body = WorkspaceBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<WorkspaceBody>> {
    Ok(axum::Json(workspaces::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

#[utoipa::path(put, path = "/workspaces/{workspace_token}", tag = "workspaces", operation_id = "workspaces_update", request_body = WorkspaceFields, params(("workspace_token" = String, Path)), responses((status = 200, description = "OK", body = WorkspaceBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<WorkspaceFields>,
) -> Result<axum::Json<WorkspaceBody>> {
    Ok(axum::Json(workspaces::update(state.store.as_ref(), &caller.account_token, &token, fields).await?.into()))
}

#[utoipa::path(delete, path = "/workspaces/{workspace_token}", tag = "workspaces", operation_id = "workspaces_remove", params(("workspace_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    workspaces::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
