//! The alerts' outbox (`notifications`): written once per firing and recipient, claimed by lease for each
//! delivery attempt, finished with its outcome.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

/// The accounts with anything the alerts pass judges (a query of one column).
fn judged_accounts() -> String {
    crate::wing::JUDGED_TABLES.map(|t| format!("SELECT account_token FROM {t}")).join(" UNION ")
}

#[async_trait::async_trait]
impl crate::NotificationStore for This {
    #[tracing::instrument(skip_all, fields(messages = messages.len()))]
    async fn enqueue_notifications(&self, messages: &[crate::NewNotification], now_ms: i64) -> anyhow::Result<u64> {
        let mut tx = self.write.begin().await?;
        let mut written = 0;
        for m in messages {
            // The unique event key and recipient make a second write of the same firing a no-op.
            let done = sqlx::query(
                "INSERT INTO notifications (token, account_token, source_token, event_key, recipient, message, \
                 status, attempts, next_attempt_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8) \
                 ON CONFLICT (event_key, recipient) DO NOTHING",
            )
            .bind(::costd_model::token::new_token("ntfctn_"))
            .bind(crate::Text(&m.account))
            .bind(&m.source_token)
            .bind(&m.event_key)
            .bind(&m.recipient)
            .bind(&m.message)
            .bind(now_ms)
            .bind(crate::now())
            .execute(&mut *tx)
            .await?;
            written += done.rows_affected();
        }
        tx.commit().await?;
        Ok(written)
    }

    #[tracing::instrument(skip(self))]
    async fn due_notifications(
        &self,
        now_ms: i64,
        per_account: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<crate::Notification>> {
        // The oldest `per_account` of each account, first of each before second of any: an account with
        // thousands due cannot fill the batch, so every account's first message is read.
        let sql = format!(
            "SELECT {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY account_token ORDER BY id) \
             AS turn FROM notifications WHERE status = 'pending' AND next_attempt_ms <= $1) due \
             WHERE turn <= $2 ORDER BY turn, id LIMIT $3",
            columns = crate::sql::NOTIFICATION_COLUMNS
        );
        let rows: Vec<crate::sql::NotificationRow> =
            sqlx::query_as(&sql).bind(now_ms).bind(per_account).bind(limit).fetch_all(&self.write).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(skip(self))]
    async fn claim_notification(&self, id: i64, due_ms: i64, lease_until_ms: i64) -> anyhow::Result<bool> {
        // Conditional on the due time read, so of two workers that read it, one claims it.
        let done = sqlx::query(
            "UPDATE notifications SET next_attempt_ms = $3, attempts = attempts + 1 \
             WHERE id = $1 AND status = 'pending' AND next_attempt_ms = $2",
        )
        .bind(id)
        .bind(due_ms)
        .bind(lease_until_ms)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip(self))]
    async fn finish_notification(&self, id: i64, outcome: &crate::DeliveryOutcome) -> anyhow::Result<()> {
        use crate::DeliveryOutcome;
        let query = match outcome {
            DeliveryOutcome::Delivered => sqlx::query(
                "UPDATE notifications SET status = 'delivered', last_error = NULL, delivered_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(crate::now()),
            DeliveryOutcome::Retry { next_attempt_ms, error } => {
                sqlx::query("UPDATE notifications SET next_attempt_ms = $2, last_error = $3 WHERE id = $1")
                    .bind(id)
                    .bind(*next_attempt_ms)
                    .bind(error.as_str())
            }
            DeliveryOutcome::Failed { error } => {
                sqlx::query("UPDATE notifications SET status = 'failed', last_error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(error.as_str())
            }
        };
        query.execute(&self.write).await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn accounts_with_alerts(&self) -> anyhow::Result<Vec<::costd_model::token::AccountToken>> {
        let sql = format!("SELECT DISTINCT account_token FROM ({}) judged ORDER BY account_token", judged_accounts());
        Ok(crate::Text::all(sqlx::query_scalar(&sql).fetch_all(&self.read).await?))
    }

    #[tracing::instrument(skip(self))]
    async fn alert_accounts_changed_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<Vec<::costd_model::token::AccountToken>> {
        let sql = format!(
            "SELECT DISTINCT changed.account_token FROM ( \
                 SELECT account_token FROM cost_uploads WHERE created_at >= $1 \
                 UNION SELECT m.account_token FROM managed_account_integrations m \
                 JOIN cost_uploads u ON u.integration_token = m.integration_token WHERE u.created_at >= $1 \
             ) changed WHERE changed.account_token IN ({}) ORDER BY changed.account_token",
            judged_accounts()
        );
        Ok(crate::Text::all(sqlx::query_scalar(&sql).bind(since).fetch_all(&self.read).await?))
    }

    #[tracing::instrument(skip(self))]
    async fn list_notifications(
        &self,
        account: &::costd_model::token::AccountToken,
        source_token: Option<&str>,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::Notification>> {
        let condition = "account_token = $1 AND ($2 IS NULL OR source_token = $2)";
        let sql = format!(
            "SELECT {} FROM notifications WHERE {condition} ORDER BY id DESC LIMIT $3 OFFSET $4",
            crate::sql::NOTIFICATION_COLUMNS
        );
        let rows: Vec<crate::sql::NotificationRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(source_token)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM notifications WHERE {condition}"))
            .bind(crate::Text(&account))
            .bind(source_token)
            .fetch_one(&self.read)
            .await?;
        Ok(crate::Paged { items: rows.into_iter().map(Into::into).collect(), total })
    }
}
