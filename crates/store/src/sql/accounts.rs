//! Accounts (tenants): create with their owner user and "Default" workspace, read, count.

use chrono::{DateTime, Utc};

use crate::Account;
use costd_model::token::AccountToken;

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    token: crate::Text<AccountToken>,
    name: String,
    parent_account_token: Option<crate::Text<AccountToken>>,
    owner_user_token: String,
    created_at: DateTime<Utc>,
}

impl AccountRow {
    pub(crate) fn token(&self) -> &AccountToken {
        &self.token.0
    }
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            token: r.token.0,
            name: r.name,
            parent_account_token: r.parent_account_token.map(|t| t.0),
            owner_user_token: r.owner_user_token,
            created_at: r.created_at,
        }
    }
}
