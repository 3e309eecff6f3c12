//! Accounts (tenants): create with their owner user and "Default" workspace, read, count.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::AccountStore for This {
    #[tracing::instrument(skip(self))]
    async fn create_account(
        &self,
        name: &str,
        parent: Option<&::costd_model::token::AccountToken>,
    ) -> anyhow::Result<crate::Account> {
        use ::costd_model::token::{new_token, prefix};
        let now = crate::now();
        let account = crate::Account {
            token: ::costd_model::token::AccountToken::generate(),
            name: name.to_string(),
            parent_account_token: parent.cloned(),
            owner_user_token: new_token(prefix::USER),
            created_at: now,
        };
        let default = ::costd_model::workspace::WorkspaceSettings::default_named("Default");
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (token, name, parent_account_token, owner_user_token, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(crate::Text(&account.token))
        .bind(&account.name)
        .bind(crate::Text(&account.parent_account_token))
        .bind(&account.owner_user_token)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_workspace(&mut tx, &account.token, &default, now).await?;
        tx.commit().await?;
        Ok(account)
    }

    #[tracing::instrument(skip(self))]
    async fn get_account(&self, token: &::costd_model::token::AccountToken) -> anyhow::Result<Option<crate::Account>> {
        let sql = format!("SELECT {} FROM accounts WHERE token = $1", crate::sql::ACCOUNT_COLUMNS);
        let row: Option<crate::sql::AccountRow> =
            sqlx::query_as(&sql).bind(crate::Text(&token)).fetch_optional(&self.read).await?;
        Ok(row.map(Into::into))
    }

    async fn count_accounts(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(&self.read).await?)
    }
}
