//! Custom-provider integrations, with their workspaces; deleting one retires its uploads' files.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::IntegrationStore for This {
    #[tracing::instrument(skip(self))]
    async fn create_integration(
        &self,
        account: &::costd_model::token::AccountToken,
        name: &str,
        description: Option<&str>,
    ) -> anyhow::Result<crate::Integration> {
        let token = ::costd_model::token::IntegrationToken::generate();
        let now = crate::now();
        sqlx::query(
            "INSERT INTO integrations (token, account_token, provider, name, description, status, created_at) \
             VALUES ($1, $2, 'custom_provider', $3, $4, 'imported', $5)",
        )
        .bind(crate::Text(&token))
        .bind(crate::Text(&account))
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(crate::Integration {
            token,
            provider: "custom_provider".into(),
            name: name.to_string(),
            description: description.map(str::to_string),
            status: "imported".into(),
            last_updated: None,
            workspace_tokens: Vec::new(),
            created_at: now,
            location: None,
            last_synced_at: None,
            last_error: None,
        })
    }

    #[tracing::instrument(skip_all, fields(integration = %new.token))]
    async fn create_bucket_integration(
        &self,
        new: &crate::NewBucketIntegrationRow,
    ) -> anyhow::Result<crate::Integration> {
        let now = crate::now();
        sqlx::query(
            "INSERT INTO integrations (token, account_token, provider, name, status, created_at, location, secret) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7)",
        )
        .bind(crate::Text(&new.token))
        .bind(crate::Text(&new.account))
        .bind(&new.provider)
        .bind(&new.name)
        .bind(now)
        .bind(&new.location)
        .bind(&new.secret)
        .execute(&self.write)
        .await?;
        Ok(crate::Integration {
            token: new.token.clone(),
            provider: new.provider.clone(),
            name: new.name.clone(),
            description: None,
            status: "pending".into(),
            last_updated: None,
            workspace_tokens: Vec::new(),
            created_at: now,
            location: Some(new.location.clone()),
            last_synced_at: None,
            last_error: None,
        })
    }

    #[tracing::instrument(skip(self, secret))]
    async fn set_integration_secret(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::IntegrationToken,
        secret: &str,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE integrations SET secret = $3 WHERE account_token = $1 AND token = $2 AND location IS NOT NULL",
        )
        .bind(crate::Text(&account))
        .bind(crate::Text(&token))
        .bind(secret)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip(self))]
    async fn integration_secret(
        &self,
        token: &::costd_model::token::IntegrationToken,
    ) -> anyhow::Result<Option<String>> {
        let found: Option<Option<String>> = sqlx::query_scalar("SELECT secret FROM integrations WHERE token = $1")
            .bind(crate::Text(&token))
            .fetch_optional(&self.read)
            .await?;
        Ok(found.flatten())
    }

    #[tracing::instrument(skip(self))]
    async fn bucket_integrations(
        &self,
    ) -> anyhow::Result<Vec<(::costd_model::token::AccountToken, ::costd_model::token::IntegrationToken)>> {
        let rows: Vec<(
            crate::Text<::costd_model::token::AccountToken>,
            crate::Text<::costd_model::token::IntegrationToken>,
        )> = sqlx::query_as("SELECT account_token, token FROM integrations WHERE location IS NOT NULL ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(|(a, i)| (a.0, i.0)).collect())
    }

    #[tracing::instrument(skip(self, error))]
    async fn record_sync(
        &self,
        token: &::costd_model::token::IntegrationToken,
        status: &str,
        synced_at: Option<chrono::DateTime<chrono::Utc>>,
        error: Option<&str>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE integrations SET status = $2, last_synced_at = COALESCE($3, last_synced_at), last_error = $4 \
             WHERE token = $1",
        )
        .bind(crate::Text(&token))
        .bind(status)
        .bind(synced_at)
        .bind(error)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn synced_periods(
        &self,
        token: &::costd_model::token::IntegrationToken,
    ) -> anyhow::Result<Vec<crate::SyncedPeriod>> {
        let rows: Vec<crate::sql::SyncedPeriodRow> = sqlx::query_as(
            "SELECT period, manifest_key, manifest_etag, manifest_id, upload_token, rows, synced_at \
             FROM synced_periods WHERE integration_token = $1 ORDER BY period",
        )
        .bind(crate::Text(&token))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(skip(self))]
    async fn set_synced_period(
        &self,
        token: &::costd_model::token::IntegrationToken,
        p: &crate::SyncedPeriod,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO synced_periods \
             (integration_token, period, manifest_key, manifest_etag, manifest_id, upload_token, rows, synced_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (integration_token, period) DO UPDATE SET manifest_key = excluded.manifest_key, \
             manifest_etag = excluded.manifest_etag, manifest_id = excluded.manifest_id, \
             upload_token = excluded.upload_token, rows = excluded.rows, synced_at = excluded.synced_at",
        )
        .bind(crate::Text(&token))
        .bind(&p.period)
        .bind(&p.manifest_key)
        .bind(&p.manifest_etag)
        .bind(&p.manifest_id)
        .bind(&p.upload_token)
        .bind(p.rows)
        .bind(p.synced_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn list_integrations(
        &self,
        account: &::costd_model::token::AccountToken,
        page: crate::PageRequest,
        provider: Option<&str>,
        account_identifier: Option<&str>,
    ) -> anyhow::Result<crate::Paged<crate::Integration>> {
        let filter = "account_token = $1 AND ($2 IS NULL OR provider = $2) AND ($3 IS NULL OR name = $3)";
        let sql = format!(
            "SELECT {} FROM integrations WHERE {filter} ORDER BY id LIMIT $4 OFFSET $5",
            crate::sql::INTEGRATION_COLUMNS
        );
        let rows: Vec<crate::sql::IntegrationRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(provider)
            .bind(account_identifier)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM integrations WHERE {filter}"))
            .bind(crate::Text(&account))
            .bind(provider)
            .bind(account_identifier)
            .fetch_one(&self.read)
            .await?;
        let mut workspaces = integration_workspaces(&self.read, account).await?;
        let items = rows
            .into_iter()
            .map(|r| {
                let ws = workspaces.remove(r.token()).unwrap_or_default();
                r.with_workspaces(ws)
            })
            .collect();
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_integration(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::IntegrationToken,
    ) -> anyhow::Result<Option<crate::Integration>> {
        let sql = format!(
            "SELECT {} FROM integrations WHERE account_token = $1 AND token = $2",
            crate::sql::INTEGRATION_COLUMNS
        );
        let row: Option<crate::sql::IntegrationRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let workspaces: Vec<String> = sqlx::query_scalar(
            "SELECT workspace_token FROM integration_workspaces WHERE integration_token = $1 ORDER BY position",
        )
        .bind(crate::Text(&token))
        .fetch_all(&self.read)
        .await?;
        Ok(Some(row.with_workspaces(workspaces)))
    }

    #[tracing::instrument(skip(self))]
    async fn find_integration(
        &self,
        token: &::costd_model::token::IntegrationToken,
    ) -> anyhow::Result<Option<(crate::Integration, crate::Account)>> {
        let account: Option<crate::Text<::costd_model::token::AccountToken>> =
            sqlx::query_scalar("SELECT account_token FROM integrations WHERE token = $1")
                .bind(crate::Text(&token))
                .fetch_optional(&self.read)
                .await?;
        let Some(crate::Text(account)) = account else { return Ok(None) };
        let integration = self.get_integration(&account, token).await?;
        let account = crate::AccountStore::get_account(self, &account).await?;
        Ok(integration.zip(account))
    }

    #[tracing::instrument(skip(self))]
    async fn set_integration_workspaces(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::IntegrationToken,
        workspace_tokens: &[String],
    ) -> anyhow::Result<Option<crate::Integration>> {
        let mut tx = self.write.begin().await?;
        let found = lock_integration(&mut tx, account, token).await?;
        if found.is_none() {
            return Ok(None);
        }
        sqlx::query("DELETE FROM integration_workspaces WHERE integration_token = $1")
            .bind(crate::Text(&token))
            .execute(&mut *tx)
            .await?;
        for (position, ws) in workspace_tokens.iter().enumerate() {
            sqlx::query(
                "INSERT INTO integration_workspaces (integration_token, workspace_token, position) VALUES ($1, $2, $3)",
            )
            .bind(crate::Text(&token))
            .bind(ws)
            .bind(position as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.get_integration(account, token).await
    }

    #[tracing::instrument(skip(self))]
    async fn delete_integration(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::IntegrationToken,
    ) -> anyhow::Result<Option<Vec<::costd_model::token::UploadToken>>> {
        let mut tx = self.write.begin().await?;
        let found = lock_integration(&mut tx, account, token).await?;
        let Some(id) = found else { return Ok(None) };
        let uploads: Vec<::costd_model::token::UploadToken> = crate::Text::all(
            sqlx::query_scalar("SELECT token FROM cost_uploads WHERE integration_token = $1")
                .bind(crate::Text(&token))
                .fetch_all(&mut *tx)
                .await?,
        );
        retire_uploads(&mut tx, &uploads).await?;
        // Uploads and workspace links go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM integrations WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(uploads))
    }
}
