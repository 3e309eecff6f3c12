//! `/v2/integrations`: custom-provider integrations (create, list, get, update workspaces, delete).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::extract::{Json, Query};
use super::pagination::{Links, Paging};
use super::{path_token, timestamp, ApiError, AppState, Result};
use crate::model::bucket_export::{AwsIntegrationFields, AzureIntegrationFields, NewBucketIntegration};
use crate::model::integration::{CustomProviderFields, IntegrationUpdateFields};
use crate::model::token::IntegrationToken;
use crate::service::integrations::{self, SyncNow};
use crate::service::sync::SyncOptions;
use crate::store::Integration;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(create_custom_provider))
        .routes(routes!(create_aws))
        .routes(routes!(create_azure))
        .routes(routes!(create_gcp))
        .routes(routes!(show, update, remove))
        .routes(routes!(sync_now))
}

/// An integration as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct IntegrationBody {
    #[schema(value_type = String)]
    token: IntegrationToken,
    provider: String,
    account_identifier: String,
    status: String,
    last_updated: Option<String>,
    workspace_tokens: Vec<String>,
    created_at: String,
    managed_account_tokens: Vec<String>,
    /// A bucket integration's export location (no credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    export: Option<serde_json::Value>,
    /// When a bucket integration's sync last completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_synced_at: Option<String>,
    /// Why its last sync failed: each file and cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
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
            export: i.location.as_deref().and_then(|l| serde_json::from_str(l).ok()),
            last_synced_at: i.last_synced_at.map(timestamp),
            last_error: i.last_error,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct IntegrationsBody {
    integrations: Vec<IntegrationBody>,
    links: Links,
}

#[derive(Deserialize)]
struct IntegrationListParams {
    provider: Option<String>,
    account_identifier: Option<String>,
}

pub(crate) fn not_found() -> ApiError {
    ApiError::NotFound("integration not found".into())
}

#[utoipa::path(get, path = "/integrations", tag = "integrations", operation_id = "integrations_list", responses((status = 200, description = "OK", body = IntegrationsBody), super::openapi::ApiErrors))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<IntegrationListParams>,
    paging: Paging,
) -> Result<axum::Json<IntegrationsBody>> {
    let page = paging.page;
    let found = integrations::list(
        state.store.as_ref(),
        &caller.account_token,
        page,
        params.provider.as_deref(),
        params.account_identifier.as_deref(),
    )
    .await?;
    let links = paging.links(found.total);
    Ok(axum::Json(IntegrationsBody { integrations: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(post, path = "/integrations/custom_provider", tag = "integrations", operation_id = "integrations_create_custom_provider", request_body = CustomProviderFields, responses((status = 201, description = "Created", body = IntegrationBody), super::openapi::ApiErrors))]
async fn create_custom_provider(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<CustomProviderFields>,
) -> Result<(StatusCode, axum::Json<IntegrationBody>)> {
    let created = integrations::create_custom_provider(state.store.as_ref(), &caller.account_token, fields).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[utoipa::path(get, path = "/integrations/{integration_token}", tag = "integrations", operation_id = "integrations_show", params(("integration_token" = String, Path)), responses((status = 200, description = "OK", body = IntegrationBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
) -> Result<axum::Json<IntegrationBody>> {
    let token = path_token(&text, IntegrationToken::parse, not_found)?;
    Ok(axum::Json(integrations::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}

#[utoipa::path(put, path = "/integrations/{integration_token}", tag = "integrations", operation_id = "integrations_update", request_body = IntegrationUpdateFields, params(("integration_token" = String, Path)), responses((status = 200, description = "OK", body = IntegrationBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Json(fields): Json<IntegrationUpdateFields>,
) -> Result<axum::Json<IntegrationBody>> {
    let token = path_token(&text, IntegrationToken::parse, not_found)?;
    let options = SyncOptions { backfill: false, today: (state.today)() };
    let updated = integrations::update(&state.sync_context(), &caller.account_token, &token, fields, options).await?;
    Ok(axum::Json(updated.into()))
}

#[utoipa::path(delete, path = "/integrations/{integration_token}", tag = "integrations", operation_id = "integrations_remove", params(("integration_token" = String, Path)), responses((status = 204, description = "Deleted"), super::openapi::ApiErrors))]
async fn remove(State(state): State<AppState>, caller: Caller, Path(text): Path<String>) -> Result<StatusCode> {
    let token = path_token(&text, IntegrationToken::parse, not_found)?;
    integrations::delete(state.store.as_ref(), &caller.account_token, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/integrations/aws", tag = "integrations", operation_id = "integrations_create_aws", request_body = AwsIntegrationFields, responses((status = 201, description = "Created; its first sync starts at once", body = IntegrationBody), super::openapi::ApiErrors))]
async fn create_aws(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<AwsIntegrationFields>,
) -> Result<(StatusCode, axum::Json<IntegrationBody>)> {
    let new = NewBucketIntegration::aws(fields, &state.allowed_endpoints).map_err(ApiError::BadRequest)?;
    create_bucket(state, caller, new).await
}

#[utoipa::path(post, path = "/integrations/azure", tag = "integrations", operation_id = "integrations_create_azure", request_body = AzureIntegrationFields, responses((status = 201, description = "Created; its first sync starts at once", body = IntegrationBody), super::openapi::ApiErrors))]
async fn create_azure(
    State(state): State<AppState>,
    caller: Caller,
    Json(fields): Json<AzureIntegrationFields>,
) -> Result<(StatusCode, axum::Json<IntegrationBody>)> {
    let new = NewBucketIntegration::azure(fields, &state.allowed_endpoints).map_err(ApiError::BadRequest)?;
    create_bucket(state, caller, new).await
}

#[utoipa::path(post, path = "/integrations/gcp", tag = "integrations", operation_id = "integrations_create_gcp", responses((status = 400, description = "GCP's export is BigQuery tables, which costd cannot read"), super::openapi::ApiErrors))]
async fn create_gcp(_caller: Caller) -> Result<StatusCode> {
    Err(ApiError::bad_request(
        "GCP exports its billing data to BigQuery tables, which costd cannot read; export them as FOCUS CSV and \
         upload them into a custom provider (POST /v2/integrations/custom_provider)",
    ))
}

/// Records the integration and starts its first sync in the background.
async fn create_bucket(
    state: AppState,
    caller: Caller,
    new: NewBucketIntegration,
) -> Result<(StatusCode, axum::Json<IntegrationBody>)> {
    let created =
        crate::service::sync::create(state.store.as_ref(), &state.secrets, &caller.account_token, new).await?;
    let options = SyncOptions { backfill: false, today: (state.today)() };
    integrations::start_sync(&state.sync_context(), &caller.account_token, &created.token, None, options)
        .await
        .map_err(crate::service::ServiceError::from)?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[derive(Deserialize)]
struct SyncParams {
    #[serde(default)]
    backfill: bool,
    #[serde(default)]
    wait: bool,
}

/// `POST /v2/integrations/{token}/sync` (costd's): syncs now ("Sync now"). Answers 202 with the integration
/// (`status` `importing`) while the sync runs in the background; with `?wait=true`, 200 once it has run.
/// `?backfill=true` loads every billing period the export lists again. The integration's `status`,
/// `last_synced_at` and `last_error` tell the outcome.
#[utoipa::path(post, path = "/integrations/{integration_token}/sync", tag = "integrations", operation_id = "integrations_sync", params(("integration_token" = String, Path), ("backfill" = Option<bool>, Query), ("wait" = Option<bool>, Query)), responses((status = 202, description = "Sync started", body = IntegrationBody), (status = 200, description = "Synced (wait=true)"), super::openapi::ApiErrors))]
async fn sync_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(text): Path<String>,
    Query(params): Query<SyncParams>,
) -> Result<(StatusCode, axum::Json<IntegrationBody>)> {
    let token = path_token(&text, IntegrationToken::parse, not_found)?;
    let options = SyncOptions { backfill: params.backfill, today: (state.today)() };
    Ok(
        match integrations::sync_now(&state.sync_context(), &caller.account_token, &token, options, params.wait).await?
        {
            SyncNow::Started(found) => (StatusCode::ACCEPTED, axum::Json(found.into())),
            SyncNow::Synced(found) => (StatusCode::OK, axum::Json(found.into())),
        },
    )
}
