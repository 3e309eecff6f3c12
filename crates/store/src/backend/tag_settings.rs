//! Provider tag keys' `hidden` and `preferred` flags, per account (`PUT /v2/tags`).
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

use ::costd_model::token::AccountToken;

#[async_trait::async_trait]
impl crate::TagSettingStore for This {
    #[tracing::instrument(skip(self, keys), fields(keys = keys.len()))]
    async fn put_tag_settings(
        &self,
        account: &AccountToken,
        keys: &[String],
        hidden: Option<bool>,
        preferred: Option<bool>,
    ) -> anyhow::Result<()> {
        let mut tx = self.write.begin().await?;
        for key in keys {
            sqlx::query(
                "INSERT INTO tag_settings (account_token, tag_key, hidden, preferred) \
                 VALUES ($1, $2, COALESCE($3, FALSE), COALESCE($4, FALSE)) \
                 ON CONFLICT (account_token, tag_key) DO UPDATE SET \
                 hidden = COALESCE($3, tag_settings.hidden), preferred = COALESCE($4, tag_settings.preferred)",
            )
            .bind(crate::Text(&account))
            .bind(key)
            .bind(hidden)
            .bind(preferred)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn tag_settings(&self, account: &AccountToken) -> anyhow::Result<Vec<(String, bool, bool)>> {
        Ok(sqlx::query_as(
            "SELECT tag_key, hidden, preferred FROM tag_settings WHERE account_token = $1 ORDER BY tag_key",
        )
        .bind(crate::Text(&account))
        .fetch_all(&self.read)
        .await?)
    }
}
