//! Virtual tags: a row per key, the definition one JSON document.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

use ::costd_model::token::{AccountToken, VirtualTagToken};
use ::costd_model::virtual_tag::{VirtualTagDefinition, MAX_TAGS};

/// Whether `account` has a tag of `key` other than `except`.
async fn key_taken(
    conn: &mut <Db as sqlx::Database>::Connection,
    account: &AccountToken,
    key: &str,
    except: Option<&VirtualTagToken>,
) -> anyhow::Result<bool> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT token FROM virtual_tags WHERE account_token = $1 AND tag_key = $2")
            .bind(crate::Text(&account))
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some_and(|t| except.is_none_or(|e| e.as_str() != t)))
}

#[async_trait::async_trait]
impl crate::VirtualTagStore for This {
    #[tracing::instrument(skip(self, definition))]
    async fn create_virtual_tag(
        &self,
        account: &AccountToken,
        created_by: Option<&str>,
        definition: &VirtualTagDefinition,
    ) -> anyhow::Result<crate::VirtualTagWrite> {
        let mut tx = self.write.begin().await?;
        // The account's row, locked: two creates at once count the tags one after the other.
        let sql = format!("SELECT id FROM accounts WHERE token = $1{}", LOCK);
        let _: Option<i64> = sqlx::query_scalar(&sql).bind(crate::Text(&account)).fetch_optional(&mut *tx).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM virtual_tags WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_TAGS as i64 {
            return Ok(crate::VirtualTagWrite::TooMany);
        }
        if key_taken(&mut tx, account, &definition.key, None).await? {
            return Ok(crate::VirtualTagWrite::DuplicateKey);
        }
        let token = VirtualTagToken::generate();
        let now = crate::now();
        sqlx::query(
            "INSERT INTO virtual_tags (token, account_token, tag_key, definition, created_by_token, version, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(crate::Text(&token))
        .bind(crate::Text(&account))
        .bind(&definition.key)
        .bind(crate::sql::definition_json(definition))
        .bind(created_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        match self.get_virtual_tag(account, &token).await? {
            Some(t) => Ok(crate::VirtualTagWrite::Done(t)),
            None => Err(anyhow::anyhow!("the new virtual tag vanished")),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn list_virtual_tags(&self, accounts: &[AccountToken]) -> anyhow::Result<Vec<crate::StoredVirtualTag>> {
        let mut tags = Vec::new();
        // Few accounts (a managed account and its parent): a query each keeps the order simple.
        for account in accounts {
            let sql = format!(
                "SELECT {} FROM virtual_tags WHERE account_token = $1 ORDER BY id",
                crate::sql::VIRTUAL_TAG_COLUMNS
            );
            let rows: Vec<crate::sql::VirtualTagRow> =
                sqlx::query_as(&sql).bind(crate::Text(&account)).fetch_all(&self.read).await?;
            for row in rows {
                tags.push(row.try_into()?);
            }
        }
        Ok(tags)
    }

    #[tracing::instrument(skip(self))]
    async fn get_virtual_tag(
        &self,
        account: &AccountToken,
        token: &VirtualTagToken,
    ) -> anyhow::Result<Option<crate::StoredVirtualTag>> {
        let sql = format!(
            "SELECT {} FROM virtual_tags WHERE account_token = $1 AND token = $2",
            crate::sql::VIRTUAL_TAG_COLUMNS
        );
        let row: Option<crate::sql::VirtualTagRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip(self, definition))]
    async fn update_virtual_tag(
        &self,
        account: &AccountToken,
        token: &VirtualTagToken,
        version: i64,
        definition: &VirtualTagDefinition,
    ) -> anyhow::Result<crate::VirtualTagWrite> {
        let mut tx = self.write.begin().await?;
        let sql = format!("SELECT version FROM virtual_tags WHERE account_token = $1 AND token = $2{}", LOCK);
        let current: Option<i64> = sqlx::query_scalar(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .fetch_optional(&mut *tx)
            .await?;
        match current {
            None => return Ok(crate::VirtualTagWrite::NotFound),
            Some(v) if v != version => return Ok(crate::VirtualTagWrite::Stale),
            Some(_) => {}
        }
        if key_taken(&mut tx, account, &definition.key, Some(token)).await? {
            return Ok(crate::VirtualTagWrite::DuplicateKey);
        }
        sqlx::query(
            "UPDATE virtual_tags SET tag_key = $3, definition = $4, version = version + 1, updated_at = $5 \
             WHERE account_token = $1 AND token = $2",
        )
        .bind(crate::Text(&account))
        .bind(crate::Text(&token))
        .bind(&definition.key)
        .bind(crate::sql::definition_json(definition))
        .bind(crate::now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        match self.get_virtual_tag(account, token).await? {
            Some(t) => Ok(crate::VirtualTagWrite::Done(t)),
            None => Ok(crate::VirtualTagWrite::NotFound),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn delete_virtual_tag(&self, account: &AccountToken, token: &VirtualTagToken) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM virtual_tags WHERE account_token = $1 AND token = $2")
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
