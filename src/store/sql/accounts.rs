//! Accounts (tenants): create with their owner user and "Default" workspace, read, count.

use chrono::{DateTime, Utc};

use crate::model::token::AccountToken;
use crate::store::Account;

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    token: AccountToken,
    name: String,
    parent_account_token: Option<AccountToken>,
    owner_user_token: String,
    created_at: DateTime<Utc>,
}

impl AccountRow {
    pub(crate) fn token(&self) -> &AccountToken {
        &self.token
    }
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            token: r.token,
            name: r.name,
            parent_account_token: r.parent_account_token,
            owner_user_token: r.owner_user_token,
            created_at: r.created_at,
        }
    }
}

/// Implements `AccountStore` for a backend (see [`impl_store!`](super)).
macro_rules! impl_accounts {
    ($store:ty, $db:ty, $lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::AccountStore for $store {
            #[tracing::instrument(skip(self))]
            async fn create_account(
                &self,
                name: &str,
                parent: Option<&$crate::model::token::AccountToken>,
            ) -> anyhow::Result<$crate::store::Account> {
                use $crate::model::token::{new_token, prefix};
                let now = $crate::store::now();
                let account = $crate::store::Account {
                    token: $crate::model::token::AccountToken::generate(),
                    name: name.to_string(),
                    parent_account_token: parent.cloned(),
                    owner_user_token: new_token(prefix::USER),
                    created_at: now,
                };
                let default = $crate::model::workspace::WorkspaceSettings::default_named("Default");
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO accounts (token, name, parent_account_token, owner_user_token, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&account.token)
                .bind(&account.name)
                .bind(&account.parent_account_token)
                .bind(&account.owner_user_token)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                insert_workspace(&mut *tx, &account.token, &default, now).await?;
                tx.commit().await?;
                Ok(account)
            }

            #[tracing::instrument(skip(self))]
            async fn get_account(
                &self,
                token: &$crate::model::token::AccountToken,
            ) -> anyhow::Result<Option<$crate::store::Account>> {
                let sql = format!("SELECT {} FROM accounts WHERE token = $1", $crate::store::sql::ACCOUNT_COLUMNS);
                let row: Option<$crate::store::sql::AccountRow> =
                    sqlx::query_as(&sql).bind(token).fetch_optional(&self.read).await?;
                Ok(row.map(Into::into))
            }

            async fn count_accounts(&self) -> anyhow::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(&self.read).await?)
            }
        }
    };
}
