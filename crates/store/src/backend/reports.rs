//! Cost reports, saved filters and folders: one table (`report_objects`) keyed by kind, and the ordered
//! saved filters each report or folder applies.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

/// The saved filters an object applies, in order.
async fn saved_filters_of<'c, E>(executor: E, token: &str) -> anyhow::Result<Vec<String>>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    Ok(sqlx::query_scalar(
        "SELECT saved_filter_token FROM report_object_filters WHERE object_token = $1 ORDER BY position",
    )
    .bind(token)
    .fetch_all(executor)
    .await?)
}

/// Replaces an object's saved filters (inside the caller's transaction).
async fn set_saved_filters(
    conn: &mut <Db as sqlx::Database>::Connection,
    token: &str,
    filters: &[String],
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM report_object_filters WHERE object_token = $1").bind(token).execute(&mut *conn).await?;
    for (position, filter) in filters.iter().enumerate() {
        sqlx::query(
            "INSERT INTO report_object_filters (object_token, saved_filter_token, position) VALUES ($1, $2, $3)",
        )
        .bind(token)
        .bind(filter)
        .bind(position as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl crate::ReportStore for This {
    #[tracing::instrument(skip(self, fields))]
    async fn create_report_object(
        &self,
        account: &::costd_model::token::AccountToken,
        kind: ::costd_model::report::ViewKind,
        fields: &crate::ReportObjectFields,
    ) -> anyhow::Result<crate::ReportObject> {
        let token = ::costd_model::token::new_token(kind.prefix());
        let now = crate::now();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO report_objects (token, kind, account_token, workspace_token, folder_token, title, \
             definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&token)
        .bind(kind.as_str())
        .bind(crate::Text(&account))
        .bind(&fields.workspace_token)
        .bind(&fields.folder_token)
        .bind(&fields.title)
        .bind(&fields.definition)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        set_saved_filters(&mut tx, &token, &fields.saved_filter_tokens).await?;
        tx.commit().await?;
        self.get_report_object(account, kind, &token)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the new {} vanished", kind.noun()))
    }

    #[tracing::instrument(skip(self))]
    async fn list_report_objects(
        &self,
        account: &::costd_model::token::AccountToken,
        kind: ::costd_model::report::ViewKind,
        filter: &crate::ReportObjectFilter,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::ReportObject>> {
        let pattern = filter.title_like.as_deref().map(crate::sql::like_pattern);
        let condition = "account_token = $1 AND kind = $2 AND ($3 IS NULL OR workspace_token = $3) \
             AND ($4 IS NULL OR folder_token = $4) AND ($5 IS NULL OR LOWER(title) LIKE $5 ESCAPE '\\')";
        let sql = format!(
            "SELECT {} FROM report_objects WHERE {condition} ORDER BY id LIMIT $6 OFFSET $7",
            crate::sql::REPORT_OBJECT_COLUMNS
        );
        let rows: Vec<crate::sql::ReportObjectRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(kind.as_str())
            .bind(&filter.workspace_token)
            .bind(&filter.folder_token)
            .bind(&pattern)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM report_objects WHERE {condition}"))
            .bind(crate::Text(&account))
            .bind(kind.as_str())
            .bind(&filter.workspace_token)
            .bind(&filter.folder_token)
            .bind(&pattern)
            .fetch_one(&self.read)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let filters = saved_filters_of(&self.read, &row.token).await?;
            items.push(row.into_object(filters)?);
        }
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_report_object(
        &self,
        account: &::costd_model::token::AccountToken,
        kind: ::costd_model::report::ViewKind,
        token: &str,
    ) -> anyhow::Result<Option<crate::ReportObject>> {
        let sql = format!(
            "SELECT {} FROM report_objects WHERE account_token = $1 AND kind = $2 AND token = $3",
            crate::sql::REPORT_OBJECT_COLUMNS
        );
        let row: Option<crate::sql::ReportObjectRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(kind.as_str())
            .bind(token)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(row) => Ok(Some(row.into_object(saved_filters_of(&self.read, token).await?)?)),
            None => Ok(None),
        }
    }

    #[tracing::instrument(skip(self, fields))]
    async fn update_report_object(
        &self,
        account: &::costd_model::token::AccountToken,
        kind: ::costd_model::report::ViewKind,
        token: &str,
        fields: &crate::ReportObjectFields,
    ) -> anyhow::Result<Option<crate::ReportObject>> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE report_objects SET workspace_token = $4, folder_token = $5, title = $6, definition = $7, \
             updated_at = $8 WHERE account_token = $1 AND kind = $2 AND token = $3",
        )
        .bind(crate::Text(&account))
        .bind(kind.as_str())
        .bind(token)
        .bind(&fields.workspace_token)
        .bind(&fields.folder_token)
        .bind(&fields.title)
        .bind(&fields.definition)
        .bind(crate::now())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        set_saved_filters(&mut tx, token, &fields.saved_filter_tokens).await?;
        tx.commit().await?;
        self.get_report_object(account, kind, token).await
    }

    #[tracing::instrument(skip(self))]
    async fn delete_report_object(
        &self,
        account: &::costd_model::token::AccountToken,
        kind: ::costd_model::report::ViewKind,
        token: &str,
    ) -> anyhow::Result<crate::ReportObjectDeletion> {
        use crate::ReportObjectDeletion;
        let mut tx = self.write.begin().await?;
        let sql =
            format!("SELECT id FROM report_objects WHERE account_token = $1 AND kind = $2 AND token = $3{}", LOCK);
        let found: Option<i64> = sqlx::query_scalar(&sql)
            .bind(crate::Text(&account))
            .bind(kind.as_str())
            .bind(token)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(ReportObjectDeletion::NotFound);
        }
        let inside: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM report_objects WHERE folder_token = $1")
            .bind(token)
            .fetch_one(&mut *tx)
            .await?;
        if inside > 0 {
            return Ok(ReportObjectDeletion::NotEmpty(inside));
        }
        match sqlx::query("DELETE FROM report_objects WHERE token = $1").bind(token).execute(&mut *tx).await {
            Ok(_) => {
                tx.commit().await?;
                Ok(ReportObjectDeletion::Deleted)
            }
            // A budget, alert or notification follows the report: the constraint refused it; name them (a
            // fresh connection: PostgreSQL's transaction is aborted).
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                drop(tx);
                let mut conn = self.read.acquire().await?;
                Ok(ReportObjectDeletion::InUse(super::wing::in_use(&mut conn, "report_objects", token).await?))
            }
            Err(e) => Err(e.into()),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn users_of_saved_filters(
        &self,
        account: &::costd_model::token::AccountToken,
        tokens: &[String],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        // Chunks keep each statement far below SQLite's limit of bound parameters.
        for chunk in tokens.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "SELECT f.saved_filter_token, o.token FROM report_object_filters f \
                 JOIN report_objects o ON o.token = f.object_token WHERE o.account_token = ",
            );
            q.push_bind(crate::Text(&account)).push(" AND o.kind = 'cost_report' AND f.saved_filter_token IN (");
            let mut list = q.separated(", ");
            for t in chunk {
                list.push_bind(t);
            }
            list.push_unseparated(") ORDER BY o.id");
            let rows: Vec<(String, String)> = q.build_query_as().fetch_all(&self.read).await?;
            found.extend(rows);
        }
        Ok(found)
    }
}
