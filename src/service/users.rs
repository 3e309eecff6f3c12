//! The user directory: read by `/v2/users`, and as alerts use it: `user_tokens` checked to be the caller's
//! users when an alert or a notification is saved, and turned into addresses when its messages are written (a
//! user added to the directory later, or whose address changes, is reached as they are then).

use crate::model::budget::Recipient;
use crate::model::token::AccountToken;
use crate::service::ServiceError;
use crate::store::{PageRequest, Paged, Store, User};

/// A page of the account's users.
pub async fn list(store: &dyn Store, account: &AccountToken, page: PageRequest) -> Result<Paged<User>, ServiceError> {
    Ok(store.list_users(account, page).await?)
}

pub async fn get(store: &dyn Store, account: &AccountToken, token: &str) -> Result<User, ServiceError> {
    store.get_user(account, token).await?.ok_or(ServiceError::NotFound("user"))
}

/// Lists, by index, each of `tokens` that is not a user of `account` (one store read).
pub async fn check_tokens(
    store: &dyn Store,
    account: &AccountToken,
    tokens: &[String],
    errors: &mut Vec<String>,
) -> anyhow::Result<()> {
    if tokens.is_empty() {
        return Ok(());
    }
    let known: std::collections::HashSet<String> =
        store.users_by_tokens(account, tokens).await?.into_iter().map(|u| u.token).collect();
    for (i, t) in tokens.iter().enumerate() {
        if !known.contains(t) {
            errors.push(format!("user_tokens[{i}]: no user {t} in this account (costd user add adds one)"));
        }
    }
    Ok(())
}

/// Where a message goes: each channel, then each user's address, every address once.
pub async fn recipients(
    store: &dyn Store,
    account: &AccountToken,
    channels: &[Recipient],
    user_tokens: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let users = if user_tokens.is_empty() { Vec::new() } else { store.users_by_tokens(account, user_tokens).await? };
    for text in channels.iter().map(Recipient::as_text).chain(users.into_iter().map(|u| u.email)) {
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}
