//! `/v2/folders`: folders of cost reports (list by workspace or title, create, get, update, delete).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, ListParams, Paging};
use super::{timestamp, ApiError, AppState, Result};
use crate::model::report::{folder_type, FolderFields, ViewKind};
use crate::service::reports;
use crate::store::ReportObject;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

/// A folder as Vantage shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct FolderBody {
    token: String,
    title: String,
    #[serde(rename = "type")]
    kind: &'static str,
    parent_folder_token: Option<String>,
    saved_filter_tokens: Vec<String>,
    created_at: String,
    updated_at: String,
    workspace_token: String,
}

impl From<ReportObject> for FolderBody {
    fn from(f: ReportObject) -> Self {
        FolderBody {
            token: f.token,
            title: f.title,
            kind: "CostFolder",
            parent_folder_token: f.folder_token,
            saved_filter_tokens: f.saved_filter_tokens,
            created_at: timestamp(f.created_at),
            updated_at: timestamp(f.updated_at),
            workspace_token: f.workspace_token,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct FoldersBody {
    folders: Vec<FolderBody>,
    links: Links,
}

#[utoipa::path(get, path = "/folders", tag = "folders", operation_id = "folders_list", responses((status = 200, description = "OK", body = FoldersBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<FoldersBody>> {
    let mut errors = Vec::new();
    folder_type(params.kind.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors));
    }
    let (items, links) = super::cost_reports::list_objects(&state, &caller, ViewKind::Folder, &params, &paging).await?;
    Ok(axum::Json(FoldersBody { folders: items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/folders", tag = "folders", operation_id = "folders_create", request_body = FolderFields, responses((status = 201, description = "Created", body = FolderBody), super::openapi::ApiErrors))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<FolderFields>,
) -> Result<(StatusCode, axum::Json<FolderBody>)> {
    let created = reports::create_folder(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/folders/{folder_token}", tag = "folders", operation_id = "folders_show", params(("folder_token" = String, Path)), responses((status = 200, description = "OK", body = FolderBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<FolderBody>> {
    Ok(axum::Json(reports::get(state.store.as_ref(), &caller.account_token, ViewKind::Folder, &token).await?.into()))
}

#[utoipa::path(put, path = "/folders/{folder_token}", tag = "folders", operation_id = "folders_update", request_body = FolderFields, params(("folder_token" = String, Path)), responses((status = 200, description = "OK", body = FolderBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
    Json(fields): Json<FolderFields>,
) -> Result<axum::Json<FolderBody>> {
    Ok(axum::Json(reports::update_folder(state.store.as_ref(), &caller.account_token, &token, fields).await?.into()))
}

#[utoipa::path(delete, path = "/folders/{folder_token}", tag = "folders", operation_id = "folders_remove", params(("folder_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(token): Path<String>) -> Result<StatusCode> {
    reports::delete(state.store.as_ref(), &caller.account_token, ViewKind::Folder, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
