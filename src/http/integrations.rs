//! `/v2/integrations`: custom-provider integrations (create, list, get, update workspaces, delete).

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{base_url, Links, ListParams, MAX_LIMIT};
use super::{path_token, timestamp, ApiError, AppState, Result};
use crate::model::integration::{workspace_list, CustomProviderFields, IntegrationUpdateFields, NewCustomProvider};
use crate::model::token::IntegrationToken;
use crate::store::Integration;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(list))
        .route("/integrations/custom_provider", post(create_custom_provider))
        .route("/integrations/{integration_token}", get(show).put(update).delete(remove))
}

/// An integration as the API shows it.
#[derive(Serialize)]
pub(crate) struct IntegrationBody {
    token: IntegrationToken,
    provider: String,
    account_identifier: String,
    status: String,
    last_updated: Option<String>,
    workspace_tokens: Vec<String>,
    created_at: String,
    managed_account_tokens: Vec<String>,
}

impl From<Integration> for IntegrationBody {
    fn from(i: Integration) -> Self {
        IntegrationBody {
            token: i.token,
            provider: i.provider,
            account_identifier: i.name,
            status: i.status,
            last_updated: i.last_updated.map(timestamp),
            workspace_tokens: i.workspace_tokens,
            created_at: timestamp(i.created_at),
            managed_account_tokens: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct IntegrationsBody {
    integrations: Vec<IntegrationBody>,
    links: Links,
}

#[derive(Deserialize)]
struct IntegrationListParams {
    page: Option<u32>,
    limit: Option<u32>,
    provider: Option<String>,
    account_identifier: Option<String>,
}

pub(crate) fn not_found() -> ApiError {
    ApiError::NotFound("integration not found".into())
}

#[utoipa::path(get, path = "/v2/integrations", tag = "integrations", operation_id = "integrations_list", responses((status = 200, description = "OK"), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<IntegrationListParams>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<IntegrationsBody>> {
    let page = ListParams { page: params.page, limit: params.limit, ..Default::default() }.page_request(MAX_LIMIT)?;
    let found = state
        .store
        .list_integrations(
            &caller.account_token,
            page,
            params.provider.as_deref(),
            params.account_identifier.as_deref(),
        )
        .await?;
    let links = Links::new(&base_url(state.public_url.as_deref(), &headers), &uri, page, found.total);
    Ok(axum::Json(IntegrationsBody { integrations: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/v2/integrations/custom_provider", tag = "integrations", operation_id = "integrations_create_custom_provider", responses((status = 201, description = "Created"), super::openapi::ApiErrors))]
async fn create_custom_provider(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<CustomProviderFields>,
) -> Result<(StatusCode, axum::Json<IntegrationBody>)> {
    let new = NewCustomProvider::try_from(fields).map_err(ApiError::BadRequest)?;
    let created = state.store.create_integration(&caller.account_token, &new.name, new.description.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/v2/integrations/{integration_token}", tag = "integrations", operation_id = "integrations_show", params(("integration_token" = String, Path)), responses((status = 200, description = "OK"), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<IntegrationBody>> {
    let token = path_token(&text, IntegrationToken::parse, not_found)?;
    let found = state.store.get_integration(&caller.account_token, &token).await?.ok_or_else(not_found)?;
    Ok(axum::Json(found.into()))
}

#[utoipa::path(put, path = "/v2/integrations/{integration_token}", tag = "integrations", operation_id = "integrations_update", params(("integration_token" = String, Path)), responses((status = 200, description = "OK"), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<IntegrationUpdateFields>,
) -> Result<axum::Json<IntegrationBody>> {
    let token = path_token(&text, IntegrationToken::parse, not_found)?;
    let current = state.store.get_integration(&caller.account_token, &token).await?.ok_or_else(not_found)?;
    let Some(requested) = fields.workspace_tokens else {
        return Ok(axum::Json(current.into()));
    };
    let workspaces = workspace_list(requested).map_err(ApiError::BadRequest)?;
    let mut unknown = Vec::new();
    for ws in &workspaces {
        if state.store.get_workspace(&caller.account_token, ws).await?.is_none() {
            unknown.push(format!("workspace_tokens: no workspace {ws} in this account"));
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::BadRequest(unknown));
    }
    let updated = state
        .store
        .set_integration_workspaces(&caller.account_token, &token, &workspaces)
        .await?
        .ok_or_else(not_found)?;
    Ok(axum::Json(updated.into()))
}

#[utoipa::path(delete, path = "/v2/integrations/{integration_token}", tag = "integrations", operation_id = "integrations_remove", params(("integration_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<StatusCode> {
    let token = path_token(&text, IntegrationToken::parse, not_found)?;
    // The uploads' files are retired with them; the janitor removes them once no query reads them.
    state.store.delete_integration(&caller.account_token, &token).await?.ok_or_else(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}
