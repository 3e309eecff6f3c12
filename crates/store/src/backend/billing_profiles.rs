//! An MSP's billing profiles; the parts (billing, business, banking, adjustments) are one JSON document, as
//! they are only ever read and written whole.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::BillingProfileStore for This {
    #[tracing::instrument(skip(self, settings))]
    async fn create_billing_profile(
        &self,
        account: &::costd_model::token::AccountToken,
        settings: &::costd_model::billing_profile::BillingProfileSettings,
    ) -> anyhow::Result<crate::BillingProfile> {
        let token = ::costd_model::token::BillingProfileToken::generate();
        let now = crate::now();
        sqlx::query(
            "INSERT INTO billing_profiles (token, account_token, nickname, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(crate::Text(&token))
        .bind(crate::Text(&account))
        .bind(&settings.nickname)
        .bind(crate::sql::settings_json(settings))
        .bind(now)
        .execute(&self.write)
        .await?;
        self.get_billing_profile(account, &token)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the new billing profile vanished"))
    }

    #[tracing::instrument(skip(self))]
    async fn list_billing_profiles(
        &self,
        account: &::costd_model::token::AccountToken,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::BillingProfile>> {
        let sql = format!(
            "SELECT {} FROM billing_profiles bp WHERE bp.account_token = $1 ORDER BY bp.id LIMIT $2 OFFSET $3",
            crate::sql::PROFILE_COLUMNS
        );
        let rows: Vec<crate::sql::ProfileRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_profiles WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_one(&self.read)
            .await?;
        let items = rows.into_iter().map(TryInto::try_into).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_billing_profile(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::BillingProfileToken,
    ) -> anyhow::Result<Option<crate::BillingProfile>> {
        let sql = format!(
            "SELECT {} FROM billing_profiles bp WHERE bp.account_token = $1 AND bp.token = $2",
            crate::sql::PROFILE_COLUMNS
        );
        let row: Option<crate::sql::ProfileRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .fetch_optional(&self.read)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip(self, settings))]
    async fn update_billing_profile(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::BillingProfileToken,
        settings: &::costd_model::billing_profile::BillingProfileSettings,
    ) -> anyhow::Result<Option<crate::BillingProfile>> {
        let done = sqlx::query(
            "UPDATE billing_profiles SET nickname = $3, settings = $4, updated_at = $5 \
             WHERE account_token = $1 AND token = $2",
        )
        .bind(crate::Text(&account))
        .bind(crate::Text(&token))
        .bind(&settings.nickname)
        .bind(crate::sql::settings_json(settings))
        .bind(crate::now())
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_billing_profile(account, token).await
    }

    #[tracing::instrument(skip(self))]
    async fn delete_billing_profile(
        &self,
        account: &::costd_model::token::AccountToken,
        token: &::costd_model::token::BillingProfileToken,
    ) -> anyhow::Result<crate::ProfileDeletion> {
        let mut tx = self.write.begin().await?;
        let sql = format!("SELECT id FROM billing_profiles WHERE account_token = $1 AND token = $2{}", LOCK);
        let found: Option<i64> = sqlx::query_scalar(&sql)
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(crate::ProfileDeletion::NotFound);
        }
        let linked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE msp_billing_profile_token = $1")
            .bind(crate::Text(&token))
            .fetch_one(&mut *tx)
            .await?;
        if linked > 0 {
            return Ok(crate::ProfileDeletion::InUse(linked));
        }
        sqlx::query("DELETE FROM billing_profiles WHERE account_token = $1 AND token = $2")
            .bind(crate::Text(&account))
            .bind(crate::Text(&token))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(crate::ProfileDeletion::Deleted)
    }
}
