//! Workspaces of an account.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::WorkspaceStore for This {
    #[tracing::instrument(skip(self, settings))]
    async fn create_workspace(
        &self,
        account: &::costd_model::token::AccountToken,
        settings: &::costd_model::workspace::WorkspaceSettings,
    ) -> anyhow::Result<crate::Workspace> {
        let mut conn = self.write.acquire().await?;
        insert_workspace(&mut conn, account, settings, crate::now()).await
    }

    #[tracing::instrument(skip(self))]
    async fn list_workspaces(
        &self,
        account: &::costd_model::token::AccountToken,
        page: crate::PageRequest,
        name_like: Option<&str>,
    ) -> anyhow::Result<crate::Paged<crate::Workspace>> {
        let pattern = name_like.map(crate::sql::like_pattern);
        let filter = "account_token = $1 AND ($2 IS NULL OR LOWER(name) LIKE $2 ESCAPE '\\')";
        let sql = format!(
            "SELECT {} FROM workspaces WHERE {filter} ORDER BY id LIMIT $3 OFFSET $4",
            crate::sql::WORKSPACE_COLUMNS
        );
        let rows: Vec<crate::sql::WorkspaceRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(&pattern)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM workspaces WHERE {filter}"))
            .bind(crate::Text(&account))
            .bind(&pattern)
            .fetch_one(&self.read)
            .await?;
        Ok(crate::Paged { items: rows.into_iter().map(Into::into).collect(), total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_workspace(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &str,
    ) -> anyhow::Result<Option<crate::Workspace>> {
        let sql =
            format!("SELECT {} FROM workspaces WHERE account_token = $1 AND token = $2", crate::sql::WORKSPACE_COLUMNS);
        let row: Option<crate::sql::WorkspaceRow> =
            sqlx::query_as(&sql).bind(crate::Text(&account)).bind(token).fetch_optional(&self.read).await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip(self, settings))]
    async fn update_workspace(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &str,
        settings: &::costd_model::workspace::WorkspaceSettings,
    ) -> anyhow::Result<Option<crate::Workspace>> {
        let sql = format!(
            "UPDATE workspaces SET name = $3, enable_currency_conversion = $4, currency = $5, \
             exchange_rate_date = $6 WHERE account_token = $1 AND token = $2 RETURNING {}",
            crate::sql::WORKSPACE_COLUMNS
        );
        let row: Option<crate::sql::WorkspaceRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(token)
            .bind(&settings.name)
            .bind(settings.enable_currency_conversion)
            .bind(&settings.currency)
            .bind(&settings.exchange_rate_date)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip(self))]
    async fn delete_workspace(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &str,
    ) -> anyhow::Result<crate::WorkspaceDeletion> {
        use crate::WorkspaceDeletion;
        let mut tx = self.write.begin().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_one(&mut *tx)
            .await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM workspaces WHERE account_token = $1 AND token = $2")
                .bind(crate::Text(&account))
                .bind(token)
                .fetch_optional(&mut *tx)
                .await?;
        let outcome = match exists {
            None => WorkspaceDeletion::NotFound,
            Some(_) if count <= 1 => WorkspaceDeletion::LastWorkspace,
            Some(id) => {
                sqlx::query("DELETE FROM workspaces WHERE id = $1").bind(id).execute(&mut *tx).await?;
                WorkspaceDeletion::Deleted
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}
