//! The audit log: entries inserted, listed and read, never changed.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

use ::costd_model::audit::{AuditEntry, AuditFilter};
use ::costd_model::token::{AccountToken, AuditLogToken};

/// `WHERE …` of a list: the account and every condition of `filter`, binding from `$2`.
fn conditions(filter: &AuditFilter) -> (String, Vec<String>) {
    let mut sql = String::from("account_token = $1");
    let mut binds = Vec::new();
    let mut add = |clause: &str, value: String| {
        binds.push(value);
        sql.push_str(&format!(" AND {clause} ${}", binds.len() + 1));
    };
    if let Some(e) = filter.event {
        add("event =", e.as_str().to_string());
    }
    if let Some(s) = filter.source {
        add("source =", s.as_str().to_string());
    }
    if let Some(t) = &filter.object_type {
        add("object_type =", t.clone());
    }
    if let Some(t) = &filter.object_token {
        add("object_token =", t.clone());
    }
    if let Some(t) = &filter.token {
        add("token =", t.clone());
    }
    if let Some(t) = &filter.workspace_token {
        add("workspace_token =", t.clone());
    }
    if let Some(name) = &filter.object_name {
        let escaped = name.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        add("LOWER(object_title) LIKE", format!("%{escaped}%"));
        sql.push_str(" ESCAPE '\\'");
    }
    (sql, binds)
}

#[async_trait::async_trait]
impl crate::AuditStore for This {
    #[tracing::instrument(skip(self, entry), fields(object_type = %entry.object_type))]
    async fn append_audit(&self, entry: &AuditEntry) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO audit_logs (token, account_token, object_type, object_token, object_title, event, source, \
             user_name, user_token, workspace_token, changed_values, unchanged_values, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(crate::Text(&entry.token))
        .bind(crate::Text(&entry.account_token))
        .bind(&entry.object_type)
        .bind(&entry.object_token)
        .bind(&entry.object_title)
        .bind(entry.event.as_str())
        .bind(entry.source.as_str())
        .bind(&entry.user)
        .bind(&entry.user_token)
        .bind(&entry.workspace_token)
        .bind(serde_json::Value::Object(entry.changed_values.clone()).to_string())
        .bind(serde_json::Value::Object(entry.unchanged_values.clone()).to_string())
        .bind(entry.created_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn list_audit(
        &self,
        account: &AccountToken,
        filter: &AuditFilter,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<AuditEntry>> {
        let (mut wheres, binds) = conditions(filter);
        // Days are whole UTC days: from the first instant of `start` to before the day after `end`.
        let day = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        let mut times = Vec::new();
        if let Some(start) = filter.start {
            times.push(day(start));
            wheres.push_str(&format!(" AND created_at >= ${}", binds.len() + times.len() + 1));
        }
        if let Some(end) = filter.end.and_then(|e| e.succ_opt()) {
            times.push(day(end));
            wheres.push_str(&format!(" AND created_at < ${}", binds.len() + times.len() + 1));
        }
        let n = binds.len() + times.len();
        let sql = format!(
            "SELECT {} FROM audit_logs WHERE {wheres} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            crate::sql::AUDIT_COLUMNS,
            n + 2,
            n + 3
        );
        let mut q = sqlx::query_as::<_, crate::sql::AuditRow>(&sql).bind(crate::Text(&account));
        for b in &binds {
            q = q.bind(b);
        }
        for t in &times {
            q = q.bind(*t);
        }
        let rows = q.bind(i64::from(page.limit)).bind(page.offset()).fetch_all(&self.read).await?;
        let count = format!("SELECT COUNT(*) FROM audit_logs WHERE {wheres}");
        let mut q = sqlx::query_scalar::<_, i64>(&count).bind(crate::Text(&account));
        for b in &binds {
            q = q.bind(b);
        }
        for t in &times {
            q = q.bind(*t);
        }
        let total = q.fetch_one(&self.read).await?;
        let items = rows.into_iter().map(AuditEntry::try_from).collect::<anyhow::Result<_>>()?;
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_audit(&self, account: &AccountToken, token: &AuditLogToken) -> anyhow::Result<Option<AuditEntry>> {
        let sql =
            format!("SELECT {} FROM audit_logs WHERE account_token = $1 AND token = $2", crate::sql::AUDIT_COLUMNS);
        let row: Option<crate::sql::AuditRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .fetch_optional(&self.read)
            .await?;
        row.map(AuditEntry::try_from).transpose()
    }
}
