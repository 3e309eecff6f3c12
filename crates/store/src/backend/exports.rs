//! Cost data exports: their state, what was asked, and how long their file is kept.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::ExportStore for This {
    #[tracing::instrument(skip(self, attributes))]
    async fn create_data_export(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &str,
        attributes: &str,
        max_pending: i64,
    ) -> anyhow::Result<Option<crate::DataExport>> {
        // One statement, so the count and the insert see the same exports.
        let done = sqlx::query(
            "INSERT INTO data_exports (token, account_token, status, attributes, created_at) \
             SELECT $1, $2, 'pending', $3, $4 WHERE \
             (SELECT COUNT(*) FROM data_exports WHERE account_token = $2 AND status = 'pending') < $5",
        )
        .bind(token)
        .bind(crate::Text(&account))
        .bind(attributes)
        .bind(crate::now())
        .bind(max_pending)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let created = self.get_data_export(account, token).await?;
        Ok(Some(created.ok_or_else(|| anyhow::anyhow!("the new export vanished"))?))
    }

    #[tracing::instrument(skip(self))]
    async fn get_data_export(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &str,
    ) -> anyhow::Result<Option<crate::DataExport>> {
        let sql =
            format!("SELECT {} FROM data_exports WHERE account_token = $1 AND token = $2", crate::sql::EXPORT_COLUMNS);
        let row: Option<crate::sql::ExportRow> =
            sqlx::query_as(&sql).bind(crate::Text(&account)).bind(token).fetch_optional(&self.read).await?;
        Ok(row.map(Into::into))
    }

    #[tracing::instrument(skip(self, outcome))]
    async fn finish_data_export(
        &self,
        token: &str,
        outcome: Result<i64, &str>,
        valid_until: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        let (status, rows, error) = match outcome {
            Ok(rows) => ("completed", Some(rows), None),
            Err(e) => ("failed", None, Some(e)),
        };
        sqlx::query(
            "UPDATE data_exports SET status = $2, row_count = $3, error = $4, completed_at = $5, \
             valid_until = $6 WHERE token = $1 AND status = 'pending'",
        )
        .bind(token)
        .bind(status)
        .bind(rows)
        .bind(error)
        .bind(crate::now())
        .bind(valid_until)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn expired_data_exports(&self, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT token FROM data_exports WHERE valid_until < $1")
            .bind(now)
            .fetch_all(&self.read)
            .await?)
    }

    async fn delete_data_export(&self, token: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM data_exports WHERE token = $1").bind(token).execute(&self.write).await?;
        Ok(())
    }

    async fn fail_stale_data_exports(
        &self,
        started_before: chrono::DateTime<chrono::Utc>,
        now_ms: i64,
        valid_until: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<u64> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE data_exports SET status = 'failed', error = 'the server stopped while the export ran; \
             ask for it again', completed_at = $2, valid_until = $3 WHERE status = 'pending' AND created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM file_intents i WHERE i.token = data_exports.token AND i.lease_until_ms >= $4)",
        )
        .bind(started_before)
        .bind(crate::now())
        .bind(valid_until)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM file_intents WHERE kind = $1 AND lease_until_ms < $2")
            .bind(crate::FileIntent::EXPORT)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
