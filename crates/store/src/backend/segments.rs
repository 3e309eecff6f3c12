//! Segments: the account's tree read whole with its version, and written in one checked transaction.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

use ::costd_model::segment::Segment;
use ::costd_model::token::AccountToken;

/// Creates or updates a generated cost report (inside the caller's transaction): one upsert, which only
/// ever updates a cost report of this account.
async fn put_report(
    conn: &mut <Db as sqlx::Database>::Connection,
    account: &AccountToken,
    token: &str,
    fields: &crate::ReportObjectFields,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO report_objects (token, kind, account_token, workspace_token, folder_token, title, definition, \
         created_at, updated_at) VALUES ($1, 'cost_report', $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (token) DO UPDATE SET workspace_token = excluded.workspace_token, \
         folder_token = excluded.folder_token, title = excluded.title, definition = excluded.definition, \
         updated_at = excluded.updated_at \
         WHERE report_objects.account_token = excluded.account_token AND report_objects.kind = 'cost_report'",
    )
    .bind(token)
    .bind(crate::Text(&account))
    .bind(&fields.workspace_token)
    .bind(&fields.folder_token)
    .bind(&fields.title)
    .bind(&fields.definition)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates or replaces a segment (inside the caller's transaction): one upsert, which keeps the segment's
/// creation time and only ever updates a segment of this account.
async fn put_segment(
    conn: &mut <Db as sqlx::Database>::Connection,
    account: &AccountToken,
    s: &Segment,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO segments (token, account_token, workspace_token, parent_token, title, description, priority, \
         track_unallocated, report_settings, filter, report_token, unallocated, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (token) DO UPDATE SET workspace_token = excluded.workspace_token, \
         parent_token = excluded.parent_token, title = excluded.title, description = excluded.description, \
         priority = excluded.priority, track_unallocated = excluded.track_unallocated, \
         report_settings = excluded.report_settings, filter = excluded.filter, \
         report_token = excluded.report_token, unallocated = excluded.unallocated, updated_at = excluded.updated_at \
         WHERE segments.account_token = excluded.account_token",
    )
    .bind(crate::Text(&s.token))
    .bind(crate::Text(&account))
    .bind(&s.workspace_token)
    .bind(s.parent.as_ref().map(crate::Text))
    .bind(&s.title)
    .bind(&s.description)
    .bind(s.priority)
    .bind(s.track_unallocated)
    .bind(crate::sql::segment_settings_json(&s.report_settings))
    .bind(&s.filter)
    .bind(&s.report_token)
    .bind(s.unallocated)
    .bind(s.created_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl crate::SegmentStore for This {
    #[tracing::instrument(skip(self))]
    async fn segment_tree(&self, account: &AccountToken) -> anyhow::Result<crate::SegmentTree> {
        // The version first: rows read after it are at least as new, so a write from this read is stale
        // rather than wrong if the tree moved in between.
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM segment_trees WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_optional(&self.read)
            .await?;
        let sql = format!("SELECT {} FROM segments WHERE account_token = $1 ORDER BY id", crate::sql::SEGMENT_COLUMNS);
        let rows: Vec<crate::sql::SegmentRow> =
            sqlx::query_as(&sql).bind(crate::Text(&account)).fetch_all(&self.read).await?;
        let segments = rows.into_iter().map(Segment::try_from).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(crate::SegmentTree { version: version.unwrap_or(0), segments })
    }

    #[tracing::instrument(skip(self, batch))]
    async fn write_segments(
        &self,
        account: &AccountToken,
        version: i64,
        batch: &crate::SegmentBatch,
    ) -> anyhow::Result<crate::SegmentWrite> {
        let mut tx = self.write.begin().await?;
        // The account's row, locked: two writes of one tree run one after the other.
        let sql = format!("SELECT id FROM accounts WHERE token = $1{}", LOCK);
        let _: Option<i64> = sqlx::query_scalar(&sql).bind(crate::Text(&account)).fetch_optional(&mut *tx).await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM segment_trees WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_optional(&mut *tx)
            .await?;
        if current.unwrap_or(0) != version {
            return Ok(crate::SegmentWrite::Stale);
        }
        sqlx::query(
            "INSERT INTO segment_trees (account_token, version) VALUES ($1, $2) \
             ON CONFLICT (account_token) DO UPDATE SET version = $2",
        )
        .bind(crate::Text(&account))
        .bind(version + 1)
        .execute(&mut *tx)
        .await?;
        let now = crate::now();
        for (token, fields) in &batch.reports {
            put_report(&mut tx, account, token, fields, now).await?;
        }
        for s in &batch.put {
            put_segment(&mut tx, account, s, now).await?;
        }
        for s in &batch.delete {
            sqlx::query("DELETE FROM segments WHERE account_token = $1 AND token = $2")
                .bind(crate::Text(&account))
                .bind(crate::Text(&s.token))
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM report_objects WHERE account_token = $1 AND token = $2")
                .bind(crate::Text(&account))
                .bind(&s.report_token)
                .execute(&mut *tx)
                .await;
            match deleted {
                Ok(_) => {}
                // A budget, alert or notification follows the report: name them (a fresh connection, as
                // PostgreSQL's transaction is aborted), and nothing is deleted.
                Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                    drop(tx);
                    let mut conn = self.read.acquire().await?;
                    let users = super::wing::in_use(&mut conn, "report_objects", &s.report_token).await?;
                    return Ok(crate::SegmentWrite::ReportInUse(users));
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(crate::SegmentWrite::Done)
    }
}
