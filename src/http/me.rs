//! `GET /v2/me`: the calling token, its workspaces and the default workspace; `PUT /v2/me`, whose one field
//! in Vantage's API is the caller's default dashboard (costd has no dashboards: `null` is accepted, a token
//! is a 422 saying so).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::workspaces::WorkspaceBody;
use super::{timestamp, ApiError, AppState, Result};
use crate::store::PageRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me, update))
}

/// What `PUT /v2/me` may change.
#[derive(Deserialize, utoipa::ToSchema)]
struct MeFields {
    /// The caller's default dashboard; costd has none, so only `null` is accepted.
    #[serde(default)]
    default_dashboard_token: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MeBody {
    default_workspace_token: Option<String>,
    /// Always null: costd has no dashboards.
    default_dashboard_token: Option<String>,
    workspaces: Vec<WorkspaceBody>,
    bearer_token: BearerTokenBody,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BearerTokenBody {
    description: String,
    created_at: String,
    scope: Vec<&'static str>,
}

#[utoipa::path(get, path = "/me", tag = "me", operation_id = "me_me", responses((status = 200, description = "OK", body = MeBody), super::openapi::ApiErrors))]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<MeBody>> {
    me_body(&state, &caller).await
}

#[utoipa::path(put, path = "/me", tag = "me", operation_id = "me_update", request_body = MeFields, responses((status = 200, description = "OK", body = MeBody), super::openapi::ApiErrors))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::Json(fields): super::extract::Json<MeFields>,
) -> Result<Json<MeBody>> {
    if let Some(token) = fields.default_dashboard_token.filter(|t| !t.trim().is_empty()) {
        return Err(ApiError::Unprocessable(vec![format!(
            "default_dashboard_token: costd has no dashboards, so {token:?} cannot be the default; send null"
        )]));
    }
    me_body(&state, &caller).await
}

async fn me_body(state: &AppState, caller: &Caller) -> Result<Json<MeBody>> {
    let all = PageRequest { page: 1, limit: super::pagination::MAX_LIMIT };
    let workspaces = crate::service::workspaces::list(state.store.as_ref(), &caller.account_token, all, None).await?;
    Ok(Json(MeBody {
        default_workspace_token: workspaces.items.first().map(|w| w.token.clone()),
        default_dashboard_token: None,
        workspaces: workspaces.items.into_iter().map(WorkspaceBody::from).collect(),
        bearer_token: BearerTokenBody {
            description: caller.description.clone(),
            created_at: timestamp(caller.created_at),
            scope: caller.scopes.names(),
        },
    }))
}
