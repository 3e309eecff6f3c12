//! The alerts wing's tables (`crate::wing`): one SQL for every kind, its identifiers taken from the kind's
//! static [`crate::wing::Table`] (never from input), its values bound.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;
use crate::wing::{RawRecord, RawRow, RecordDeletion, RecordFilter, Table, Written};

const COLUMNS: &str = "token, workspace_token, title, definition, created_at, updated_at";

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_foreign_key_violation())
}

/// Replaces a record's link lists (inside the caller's transaction), each target once, in order.
async fn set_links(
    conn: &mut <Db as sqlx::Database>::Connection,
    table: &'static Table,
    token: &str,
    row: &RawRecord,
) -> Result<(), sqlx::Error> {
    for (link, targets) in table.links.iter().zip(&row.keys.links) {
        sqlx::query(&format!("DELETE FROM {} WHERE {} = $1", link.table, link.owner))
            .bind(token)
            .execute(&mut *conn)
            .await?;
        let insert =
            format!("INSERT INTO {} ({}, {}, position) VALUES ($1, $2, $3)", link.table, link.owner, link.target);
        let mut seen = std::collections::HashSet::new();
        for (position, target) in targets.iter().enumerate() {
            if seen.insert(target) {
                sqlx::query(&insert).bind(token).bind(target).bind(position as i64).execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}

/// Runs an insert or update of a record (`sql` binds $1 account, $2 token, $3 workspace, $4 title,
/// $5 definition, $6 now, then the table's key columns) and writes its links, in one transaction. `none`:
/// what it means when the statement touched no row.
async fn write_row(
    pool: &sqlx::Pool<Db>,
    sql: &str,
    account: &::costd_model::token::AccountToken,
    table: &'static Table,
    token: &str,
    row: &RawRecord,
    none: Written<()>,
) -> anyhow::Result<Written<()>> {
    let mut tx = pool.begin().await?;
    let written: Result<bool, sqlx::Error> = async {
        let mut q = sqlx::query(sql)
            .bind(crate::Text(&account))
            .bind(token)
            .bind(&row.workspace_token)
            .bind(&row.title)
            .bind(&row.definition)
            .bind(crate::now());
        for value in &row.keys.columns {
            q = q.bind(value);
        }
        if q.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        set_links(&mut tx, table, token, row).await?;
        Ok(true)
    }
    .await;
    match written {
        Ok(true) => {
            tx.commit().await?;
            Ok(Written::Done(()))
        }
        Ok(false) => Ok(none),
        Err(e) if is_foreign_key_violation(&e) => Ok(Written::BrokenReference),
        Err(e) => Err(e.into()),
    }
}

/// Who references `token` of `target` (a wing table or `report_objects`), as (noun, owner token).
pub(super) async fn in_use(
    conn: &mut <Db as sqlx::Database>::Connection,
    target: &str,
    token: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut users = Vec::new();
    for r in crate::wing::REFERENCES.iter().filter(|r| r.target == target) {
        let sql = format!("SELECT {} FROM {} WHERE {} = $1 ORDER BY {}", r.owner, r.table, r.column, r.owner);
        let owners: Vec<String> = sqlx::query_scalar(&sql).bind(token).fetch_all(&mut *conn).await?;
        users.extend(owners.into_iter().map(|o| (r.noun.to_string(), o)));
    }
    Ok(users)
}

#[async_trait::async_trait]
impl crate::wing::RecordStore for This {
    #[tracing::instrument(skip(self, row), fields(table = table.name))]
    async fn insert_record(
        &self,
        account: &::costd_model::token::AccountToken,
        table: &'static Table,
        token: &str,
        row: &RawRecord,
    ) -> anyhow::Result<Written<()>> {
        let mut names =
            String::from("account_token, token, workspace_token, title, definition, created_at, updated_at");
        let mut values = String::from("$1, $2, $3, $4, $5, $6, $6");
        for (i, c) in table.columns.iter().enumerate() {
            names.push_str(", ");
            names.push_str(c);
            values.push_str(&format!(", ${}", i + 7));
        }
        let sql = format!("INSERT INTO {} ({names}) VALUES ({values}) ON CONFLICT DO NOTHING", table.name);
        // Nothing inserted: the unique key (or, never in practice, the random token) was taken.
        write_row(&self.write, &sql, account, table, token, row, Written::Duplicate).await
    }

    #[tracing::instrument(skip(self, row), fields(table = table.name))]
    async fn update_record(
        &self,
        account: &::costd_model::token::AccountToken,
        table: &'static Table,
        token: &str,
        row: &RawRecord,
    ) -> anyhow::Result<Written<()>> {
        let mut sets = String::from("workspace_token = $3, title = $4, definition = $5, updated_at = $6");
        for (i, c) in table.columns.iter().enumerate() {
            sets.push_str(&format!(", {c} = ${}", i + 7));
        }
        let sql = format!("UPDATE {} SET {sets} WHERE account_token = $1 AND token = $2", table.name);
        write_row(&self.write, &sql, account, table, token, row, Written::NotFound).await
    }

    #[tracing::instrument(skip(self), fields(table = table.name))]
    async fn get_record(
        &self,
        account: &::costd_model::token::AccountToken,
        table: &'static Table,
        token: &str,
    ) -> anyhow::Result<Option<RawRow>> {
        let sql = format!("SELECT {COLUMNS} FROM {} WHERE account_token = $1 AND token = $2", table.name);
        Ok(sqlx::query_as(&sql).bind(crate::Text(&account)).bind(token).fetch_optional(&self.read).await?)
    }

    #[tracing::instrument(skip(self), fields(table = table.name))]
    async fn list_records(
        &self,
        account: &::costd_model::token::AccountToken,
        table: &'static Table,
        filter: &RecordFilter,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<RawRow>> {
        // Identifiers come from the kind's table, checked against it here; values are bound in order.
        let mut condition = String::from("account_token = $1");
        let mut values: Vec<&str> = Vec::new();
        let next = |values: &Vec<&str>| format!("${}", values.len() + 2);
        if let Some(w) = &filter.workspace_token {
            condition.push_str(&format!(" AND workspace_token = {}", next(&values)));
            values.push(w);
        }
        for (c, v) in &filter.columns {
            anyhow::ensure!(table.columns.contains(c), "{} has no key column {c}", table.name);
            condition.push_str(&format!(" AND {c} = {}", next(&values)));
            values.push(v);
        }
        if let Some((l, v)) = &filter.linked {
            let Some(link) = table.links.iter().find(|k| k.table == *l) else {
                anyhow::bail!("{} has no link table {l}", table.name)
            };
            condition.push_str(&format!(
                " AND token IN (SELECT {} FROM {} WHERE {} = {})",
                link.owner,
                link.table,
                link.target,
                next(&values)
            ));
            values.push(v);
        }
        let order = if filter.newest_first { "id DESC" } else { "id" };
        let n = values.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE {condition} ORDER BY {order} LIMIT ${} OFFSET ${}",
            table.name,
            n + 2,
            n + 3
        );
        let mut q = sqlx::query_as::<_, RawRow>(&sql).bind(crate::Text(&account));
        for v in &values {
            q = q.bind(*v);
        }
        let items = q.bind(i64::from(page.limit)).bind(page.offset()).fetch_all(&self.read).await?;
        let count = format!("SELECT COUNT(*) FROM {} WHERE {condition}", table.name);
        let mut q = sqlx::query_scalar::<_, i64>(&count).bind(crate::Text(&account));
        for v in &values {
            q = q.bind(*v);
        }
        let total = q.fetch_one(&self.read).await?;
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self), fields(table = table.name))]
    async fn delete_record(
        &self,
        account: &::costd_model::token::AccountToken,
        table: &'static Table,
        token: &str,
    ) -> anyhow::Result<RecordDeletion> {
        let mut tx = self.write.begin().await?;
        let sql = format!("DELETE FROM {} WHERE account_token = $1 AND token = $2", table.name);
        match sqlx::query(&sql).bind(crate::Text(&account)).bind(token).execute(&mut *tx).await {
            Ok(done) if done.rows_affected() == 0 => Ok(RecordDeletion::NotFound),
            Ok(_) => {
                tx.commit().await?;
                Ok(RecordDeletion::Deleted)
            }
            Err(e) if is_foreign_key_violation(&e) => {
                // The constraint refused it; name who holds it (a fresh transaction: PostgreSQL's is aborted).
                drop(tx);
                let mut conn = self.read.acquire().await?;
                Ok(RecordDeletion::InUse(in_use(&mut conn, table.name, token).await?))
            }
            Err(e) => Err(e.into()),
        }
    }
}
