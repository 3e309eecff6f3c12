//! Cost uploads: committed (replacing and retiring the upload of the same filename), listed, deleted (retired), read as one snapshot; retired files for the janitor.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

/// Records an upload's catalog (inside the caller's transaction), a few hundred rows per statement.
async fn insert_dimensions(
    conn: &mut <Db as sqlx::Database>::Connection,
    upload: &::costd_model::token::UploadToken,
    catalog: &::costd_model::catalog::Catalog,
) -> anyhow::Result<()> {
    let rows: Vec<(&str, &str, &str)> = catalog
        .services
        .iter()
        .map(|s| ("service", s.as_str(), ""))
        .chain(catalog.tags.iter().flat_map(|(k, vs)| vs.iter().map(move |v| ("tag", k.as_str(), v.as_str()))))
        .collect();
    for chunk in rows.chunks(250) {
        let mut q: sqlx::QueryBuilder<Db> =
            sqlx::QueryBuilder::new("INSERT INTO upload_dimensions (upload_token, kind, name, value) ");
        q.push_values(chunk, |mut b, (kind, name, value)| {
            b.push_bind(crate::Text(&upload)).push_bind(*kind).push_bind(*name).push_bind(*value);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl crate::UploadStore for This {
    #[tracing::instrument(skip(self, upload), fields(upload = %upload.token))]
    async fn commit_upload(
        &self,
        account: &::costd_model::token::AccountToken,
        upload: &crate::Upload,
        catalog: &::costd_model::catalog::Catalog,
    ) -> anyhow::Result<crate::UploadCommit> {
        let mut tx = self.write.begin().await?;
        // Locking the integration serialises commits (and deletes) of one integration, so two
        // uploads of the same filename can never both stay.
        let found = lock_integration(&mut tx, account, &upload.integration_token).await?;
        if found.is_none() {
            return Ok(crate::UploadCommit::IntegrationGone);
        }
        // The intent is the fence against the janitor: deleting it here and the janitor's
        // `clear_expired_file_intent` exclude each other, so either this commit names files the janitor
        // will keep, or the janitor took them and this commit records nothing.
        let intent = sqlx::query("DELETE FROM file_intents WHERE token = $1 AND kind = $2")
            .bind(upload.token.as_str())
            .bind(crate::FileIntent::UPLOAD)
            .execute(&mut *tx)
            .await?;
        if intent.rows_affected() == 0 {
            return Ok(crate::UploadCommit::IntentLost);
        }
        let replaced: Vec<::costd_model::token::UploadToken> = crate::Text::all(
            sqlx::query_scalar("SELECT token FROM cost_uploads WHERE integration_token = $1 AND filename = $2")
                .bind(crate::Text(&upload.integration_token))
                .bind(&upload.filename)
                .fetch_all(&mut *tx)
                .await?,
        );
        sqlx::query("DELETE FROM cost_uploads WHERE integration_token = $1 AND filename = $2")
            .bind(crate::Text(&upload.integration_token))
            .bind(&upload.filename)
            .execute(&mut *tx)
            .await?;
        retire_uploads(&mut tx, &replaced).await?;
        sqlx::query(
            "INSERT INTO cost_uploads (token, integration_token, account_token, filename, amount, currency, \
             row_count, start_date, end_date, import_status, created_by_token, created_at, rollup_decimals) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(crate::Text(&upload.token))
        .bind(crate::Text(&upload.integration_token))
        .bind(crate::Text(&account))
        .bind(&upload.filename)
        .bind(crate::Text(&upload.amount))
        .bind(&upload.currency)
        .bind(upload.rows)
        .bind(upload.start_date)
        .bind(upload.end_date)
        .bind(&upload.import_status)
        .bind(&upload.created_by_token)
        .bind(upload.created_at)
        .bind(upload.rollup_decimals.map(i32::from))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE integrations SET last_updated = $1 WHERE token = $2")
            .bind(upload.created_at)
            .bind(crate::Text(&upload.integration_token))
            .execute(&mut *tx)
            .await?;
        insert_dimensions(&mut tx, &upload.token, catalog).await?;
        tx.commit().await?;
        Ok(crate::UploadCommit::Committed { replaced })
    }

    #[tracing::instrument(skip(self))]
    async fn list_uploads(
        &self,
        account: &::costd_model::token::AccountToken,
        integration: &::costd_model::token::IntegrationToken,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::Upload>> {
        let sql = format!(
            "SELECT {} FROM cost_uploads WHERE account_token = $1 AND integration_token = $2 \
             ORDER BY id LIMIT $3 OFFSET $4",
            crate::sql::UPLOAD_COLUMNS
        );
        let rows: Vec<crate::sql::UploadRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&integration))
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM cost_uploads WHERE account_token = $1 AND integration_token = $2")
                .bind(crate::Text(&account))
                .bind(crate::Text(&integration))
                .fetch_one(&self.read)
                .await?;
        Ok(crate::Paged { items: rows.into_iter().map(Into::into).collect(), total })
    }

    #[tracing::instrument(skip(self))]
    async fn delete_upload(
        &self,
        account: &::costd_model::token::AccountToken,
        integration: &::costd_model::token::IntegrationToken,
        upload: &::costd_model::token::UploadToken,
    ) -> anyhow::Result<bool> {
        let mut tx = self.write.begin().await?;
        // The integration first, as every writer of its uploads locks it: taking the upload row first
        // deadlocks against a commit replacing that upload (which holds the integration).
        if lock_integration(&mut tx, account, integration).await?.is_none() {
            return Ok(false);
        }
        let done =
            sqlx::query("DELETE FROM cost_uploads WHERE account_token = $1 AND integration_token = $2 AND token = $3")
                .bind(crate::Text(&account))
                .bind(crate::Text(&integration))
                .bind(crate::Text(&upload))
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() > 0 {
            retire_uploads(&mut tx, std::slice::from_ref(upload)).await?;
            sqlx::query("UPDATE integrations SET last_updated = $1 WHERE token = $2")
                .bind(crate::now())
                .bind(crate::Text(&integration))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn live_uploads(
        &self,
        account: &::costd_model::token::AccountToken,
        integrations: &[::costd_model::token::IntegrationToken],
    ) -> anyhow::Result<Vec<crate::Upload>> {
        if integrations.is_empty() {
            return Ok(Vec::new());
        }
        // One statement, so a query sees each upload replacement or delete entirely or not at all. It names
        // the integrations (a managed account sees a few of its MSP's hundreds, whose uploads it must not
        // read and decode on every query) while they stay far below SQLite's limit of bound parameters.
        let mut q = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT {} FROM cost_uploads WHERE account_token = ",
            crate::sql::UPLOAD_COLUMNS
        ));
        q.push_bind(crate::Text(&account));
        if integrations.len() <= 500 {
            q.push(" AND integration_token IN (");
            let mut list = q.separated(", ");
            for i in integrations {
                list.push_bind(crate::Text(i));
            }
            list.push_unseparated(")");
        }
        q.push(" ORDER BY id");
        let rows: Vec<crate::sql::UploadRow> = q.build_query_as().fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(crate::Upload::from)
            .filter(|u| integrations.iter().any(|i| i == &u.integration_token))
            .collect())
    }

    async fn upload_dimensions(
        &self,
        account: &::costd_model::token::AccountToken,
        kind: &str,
        name: Option<&str>,
    ) -> anyhow::Result<Vec<(::costd_model::token::IntegrationToken, String, String)>> {
        // One statement over the live uploads, so a replace or delete shows entirely or not at all.
        let rows: Vec<(crate::Text<::costd_model::token::IntegrationToken>, String, String)> = sqlx::query_as(
            "SELECT DISTINCT u.integration_token, d.name, d.value FROM upload_dimensions d \
             JOIN cost_uploads u ON u.token = d.upload_token \
             WHERE u.account_token = $1 AND d.kind = $2 AND ($3 IS NULL OR d.name = $3)",
        )
        .bind(crate::Text(&account))
        .bind(kind)
        .bind(name)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(integration, name, value)| (integration.0, name, value)).collect())
    }

    async fn uploads_without_dimensions(&self) -> anyhow::Result<Vec<::costd_model::token::UploadToken>> {
        // Every row has a service, so an upload with none recorded predates discovery.
        Ok(crate::Text::all(
            sqlx::query_scalar(
                "SELECT token FROM cost_uploads u WHERE NOT EXISTS \
             (SELECT 1 FROM upload_dimensions d WHERE d.upload_token = u.token AND d.kind = 'service') \
             ORDER BY id",
            )
            .fetch_all(&self.read)
            .await?,
        ))
    }

    async fn add_upload_dimensions(
        &self,
        upload: &::costd_model::token::UploadToken,
        catalog: &::costd_model::catalog::Catalog,
    ) -> anyhow::Result<()> {
        let mut tx = self.write.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM cost_uploads WHERE token = $1")
            .bind(crate::Text(&upload))
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            sqlx::query("DELETE FROM upload_dimensions WHERE upload_token = $1")
                .bind(crate::Text(&upload))
                .execute(&mut *tx)
                .await?;
            insert_dimensions(&mut tx, upload, catalog).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn all_upload_tokens(&self) -> anyhow::Result<Vec<::costd_model::token::UploadToken>> {
        Ok(crate::Text::all(sqlx::query_scalar("SELECT token FROM cost_uploads").fetch_all(&self.read).await?))
    }

    async fn retired_uploads(
        &self,
    ) -> anyhow::Result<Vec<(::costd_model::token::UploadToken, chrono::DateTime<chrono::Utc>)>> {
        let rows: Vec<(crate::Text<::costd_model::token::UploadToken>, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as("SELECT token, retired_at FROM retired_uploads ORDER BY retired_at")
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|(token, at)| (token.0, at)).collect())
    }

    async fn forget_retired_uploads(&self, tokens: &[::costd_model::token::UploadToken]) -> anyhow::Result<()> {
        let mut tx = self.write.begin().await?;
        for token in tokens {
            sqlx::query("DELETE FROM retired_uploads WHERE token = $1")
                .bind(crate::Text(&token))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn begin_file_intent(&self, intent: &crate::FileIntent) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO file_intents (token, kind, node, created_at, lease_until_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&intent.token)
        .bind(&intent.kind)
        .bind(&intent.node)
        .bind(chrono::Utc::now())
        .bind(intent.lease_until_ms)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn renew_file_intent(&self, token: &str, lease_until_ms: i64) -> anyhow::Result<bool> {
        let done = sqlx::query("UPDATE file_intents SET lease_until_ms = $1 WHERE token = $2")
            .bind(lease_until_ms)
            .bind(token)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn end_file_intent(&self, token: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM file_intents WHERE token = $1").bind(token).execute(&self.write).await?;
        Ok(())
    }

    async fn file_intents(&self) -> anyhow::Result<Vec<crate::FileIntent>> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT token, kind, node, lease_until_ms FROM file_intents ORDER BY token")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(token, kind, node, lease_until_ms)| crate::FileIntent { token, kind, node, lease_until_ms })
            .collect())
    }

    async fn clear_expired_file_intent(&self, token: &str, now_ms: i64) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM file_intents WHERE token = $1 AND lease_until_ms < $2")
            .bind(token)
            .bind(now_ms)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
