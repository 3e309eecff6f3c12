//! `/v2/users` (list) and `/v2/users/{user_token}` (get): the account's user directory, as Vantage shows
//! it. Users are added by the operator (`costd user add`); `user_tokens` on alerts and notifications name
//! them.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::pagination::{Links, Paging};
use super::{timestamp, AppState, Result};
use crate::service::users;
use crate::store::User;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show))
}

/// A user as Vantage's API shows one.
#[derive(Serialize, utoipa::ToSchema)]
struct UserBody {
    token: String,
    name: Option<String>,
    email: String,
    role: String,
    default_dashboard_token: Option<String>,
    last_seen_at: Option<String>,
    /// costd's: when the operator added the user.
    created_at: String,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        UserBody {
            token: u.token,
            name: u.name,
            email: u.email,
            role: u.role,
            default_dashboard_token: None,
            last_seen_at: None,
            created_at: timestamp(u.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct UsersBody {
    users: Vec<UserBody>,
    links: Links,
}

#[utoipa::path(get, path = "/users", tag = "users", operation_id = "users_list", responses((status = 200, description = "OK", body = UsersBody), super::openapi::ApiErrors))]
async fn list(State(state): State<AppState>, caller: Caller, paging: Paging) -> Result<axum::Json<UsersBody>> {
    let page = paging.page;
    let found = users::list(state.store.as_ref(), &caller.account_token, page).await?;
    let links = paging.links(found.total);
    Ok(axum::Json(UsersBody { users: found.items.into_iter().map(Into::into).collect(), links }))
}

#[utoipa::path(get, path = "/users/{user_token}", tag = "users", operation_id = "users_show", params(("user_token" = String, Path)), responses((status = 200, description = "OK", body = UserBody), super::openapi::ApiErrors))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<axum::Json<UserBody>> {
    Ok(axum::Json(users::get(state.store.as_ref(), &caller.account_token, &token).await?.into()))
}
