//! API tokens: stored as a hash of the secret, resolved to a caller, revoked.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::TokenStore for This {
    #[tracing::instrument(skip_all, fields(account = %token.account_token))]
    async fn create_api_token(&self, token: &crate::NewApiToken) -> anyhow::Result<String> {
        let id = ::costd_model::token::new_token(::costd_model::token::prefix::API_TOKEN_ID);
        sqlx::query(
            "INSERT INTO api_tokens (token, account_token, user_token, secret_hash, scopes, description, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(crate::Text(&token.account_token))
        .bind(&token.user_token)
        .bind(&token.secret_hash)
        .bind(token.scopes.as_str())
        .bind(&token.description)
        .bind(crate::now())
        .execute(&self.write)
        .await?;
        Ok(id)
    }

    async fn principal_for_secret_hash(&self, secret_hash: &str) -> anyhow::Result<Option<crate::Principal>> {
        let sql = format!(
            "SELECT {} FROM api_tokens t {} WHERE t.secret_hash = $1 AND t.revoked_at IS NULL",
            crate::sql::PRINCIPAL_COLUMNS,
            crate::sql::OWNER_JOIN
        );
        let row: Option<crate::sql::PrincipalRow> =
            sqlx::query_as(&sql).bind(secret_hash).fetch_optional(&self.read).await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_api_token(&self, secret_hash_or_id: &str) -> anyhow::Result<Option<crate::RevokedToken>> {
        let revoked: Option<(crate::Text<::costd_model::token::AccountToken>, String, String)> = sqlx::query_as(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE (secret_hash = $2 OR token = $2) AND revoked_at IS NULL \
             RETURNING account_token, token, description",
        )
        .bind(crate::now())
        .bind(secret_hash_or_id)
        .fetch_optional(&self.write)
        .await?;
        Ok(revoked.map(|(account, id, description)| crate::RevokedToken { account: account.0, id, description }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_console_session(&self, secret_hash: &str, token_id: &str, expires_at: i64) -> anyhow::Result<()> {
        let now = chrono::Utc::now();
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now.timestamp())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (secret_hash, api_token, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_hash)
        .bind(token_id)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn console_session(&self, secret_hash: &str, now: i64) -> anyhow::Result<Option<crate::ConsoleSession>> {
        let sql = format!(
            "SELECT {}, s.view_account_token FROM console_sessions s JOIN api_tokens t ON t.token = s.api_token {} \
             WHERE s.secret_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL",
            crate::sql::PRINCIPAL_COLUMNS,
            crate::sql::OWNER_JOIN
        );
        let row: Option<crate::sql::SessionRow> =
            sqlx::query_as(&sql).bind(secret_hash).bind(now).fetch_optional(&self.read).await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn set_console_session_view(
        &self,
        secret_hash: &str,
        view: Option<&::costd_model::token::AccountToken>,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query("UPDATE console_sessions SET view_account_token = $1 WHERE secret_hash = $2")
            .bind(crate::Text(&view))
            .bind(secret_hash)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn delete_console_session(&self, secret_hash: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE secret_hash = $1")
            .bind(secret_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
