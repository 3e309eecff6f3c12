//! API tokens: stored as a hash of the secret, resolved to a caller, revoked.

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
        Ok(Principal {
            token_id: r.token,
            account_token: r.account_token.0,
            user_token: r.user_token,
            scopes: r.scopes.parse().map_err(|e: String| anyhow::anyhow!("stored token scopes are invalid: {e}"))?,
            description: r.description,
            created_at: r.created_at,
        })
    }
}
