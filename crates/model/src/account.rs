//! Accounts (tenants: top-level accounts and an MSP's managed accounts) and the caller an API token resolves to.

use chrono::{DateTime, Utc};

use super::token::{AccountToken, Scopes};

/// A tenant: a top-level account, or a managed account of an MSP (with a parent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub token: AccountToken,
    pub name: String,
    pub parent_account_token: Option<AccountToken>,
    /// The user (`usr_…`) that tokens minted from the CLI act as; shown as `created_by_token`.
    pub owner_user_token: String,
    pub created_at: DateTime<Utc>,
}

/// Who is calling: resolved from an API token's secret on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Public id of the token (`tkn_…`).
    pub token_id: String,
    pub account_token: AccountToken,
    pub user_token: String,
    pub scopes: Scopes,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// The role of the directory user who owns the token (`costd token create --user`), which bounds what
    /// it may do (docs/access.md); `None` for an account's own token, bounded by its scopes alone.
    pub role: Option<crate::user::Role>,
}
