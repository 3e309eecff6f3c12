//! API tokens: stored as a hash of the secret, resolved to a caller (with the role of the directory user
//! who owns it, if one does), revoked.

/// The columns of a caller: the token (`t`) and its owner's role (`u`, a LEFT JOIN of `users`).
pub(crate) const PRINCIPAL_COLUMNS: &str =
    "t.token, t.account_token, t.user_token, t.scopes, t.description, t.created_at, u.role";

/// The join of a token (`t`) with the user who owns it (`u`), when a directory user does.
pub(crate) const OWNER_JOIN: &str = "LEFT JOIN users u ON u.token = t.user_token AND u.account_token = t.account_token";

use chrono::{DateTime, Utc};

use crate::Principal;
use costd_model::token::AccountToken;

#[derive(sqlx::FromRow)]
pub(crate) struct PrincipalRow {
    token: String,
    account_token: crate::Text<AccountToken>,
    user_token: String,
    scopes: String,
    description: String,
    created_at: DateTime<Utc>,
    /// The owning directory user's role, when a user owns the token.
    role: Option<String>,
}

/// A console session's token, with the managed account it looks at.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    #[sqlx(flatten)]
    principal: PrincipalRow,
    view_account_token: Option<crate::Text<AccountToken>>,
}

impl TryFrom<SessionRow> for crate::ConsoleSession {
    type Error = anyhow::Error;

    fn try_from(r: SessionRow) -> anyhow::Result<Self> {
        Ok(crate::ConsoleSession { principal: r.principal.try_into()?, view: r.view_account_token.map(|t| t.0) })
    }
}

impl TryFrom<PrincipalRow> for Principal {
    type Error = anyhow::Error;

    fn try_from(r: PrincipalRow) -> anyhow::Result<Self> {
        let role = r.role.map(|t| costd_model::user::Role::parse(&t).map_err(anyhow::Error::msg)).transpose()?;
        let mut scopes: costd_model::token::Scopes =
            r.scopes.parse().map_err(|e: String| anyhow::anyhow!("stored token scopes are invalid: {e}"))?;
        // A Viewer's token reads only, whatever scopes it was made with (the console shows no forms for it).
        if role == Some(costd_model::user::Role::Viewer) {
            scopes.write = false;
        }
        Ok(Principal {
            token_id: r.token,
            account_token: r.account_token.0,
            user_token: r.user_token,
            scopes,
            description: r.description,
            created_at: r.created_at,
            role,
        })
    }
}
