//! `GET /v2/me`: the calling token, its workspaces and the default workspace.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::workspaces::WorkspaceBody;
use super::{timestamp, AppState, Result};
use crate::store::PageRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

#[derive(Serialize, utoipa::ToSchema)]
struct MeBody {
    default_workspace_token: Option<String>,
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
    let all = PageRequest { page: 1, limit: super::pagination::MAX_LIMIT };
    let workspaces = crate::service::workspaces::list(state.store.as_ref(), &caller.account_token, all, None).await?;
    Ok(Json(MeBody {
        default_workspace_token: workspaces.items.first().map(|w| w.token.clone()),
        workspaces: workspaces.items.into_iter().map(WorkspaceBody::from).collect(),
        bearer_token: BearerTokenBody {
            description: caller.description.clone(),
            created_at: timestamp(caller.created_at),
            scope: caller.scopes.names(),
        },
    }))
}
