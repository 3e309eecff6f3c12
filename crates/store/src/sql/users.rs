//! The account's user directory: add, list, read, and read many by token at once (alert recipients).

use chrono::{DateTime, Utc};

use crate::User;

pub(crate) const USER_COLUMNS: &str = "token, name, email, role, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    token: String,
    name: Option<String>,
    email: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User { token: r.token, name: r.name, email: r.email, role: r.role, created_at: r.created_at }
    }
}
