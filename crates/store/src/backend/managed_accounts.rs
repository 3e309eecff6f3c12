//! Managed accounts of an MSP, with their ordered integration and rule links (a page's links in two reads).
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::ManagedAccountStore for This {
    #[tracing::instrument(skip(self, settings))]
    async fn create_managed_account(
        &self,
        parent: &::costd_model::token::AccountToken,
        settings: &crate::ManagedAccountSettings,
    ) -> anyhow::Result<crate::ManagedAccount> {
        use ::costd_model::token::{new_token, prefix};
        let now = crate::now();
        let token = ::costd_model::token::AccountToken::generate();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO accounts (token, name, parent_account_token, owner_user_token, created_at, contact_email, email_domain, \
             msp_billing_profile_token, payment_terms_days, invoicing_details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(crate::Text(&token))
        .bind(&settings.name)
        .bind(crate::Text(&parent))
        .bind(new_token(prefix::USER))
        .bind(now)
        .bind(&settings.contact_email)
        .bind(&settings.email_domain)
        .bind(crate::Text(&settings.invoicing.billing_profile))
        .bind(settings.invoicing.payment_terms_days as i32)
        .bind(crate::sql::InvoicingDetails::json(&settings.invoicing))
        .execute(&mut *tx)
        .await?;
        let default = ::costd_model::workspace::WorkspaceSettings::default_named("Default");
        insert_workspace(&mut tx, &token, &default, now).await?;
        set_managed_links(&mut tx, &token, settings).await?;
        tx.commit().await?;
        self.get_managed_account(parent, &token)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the new managed account vanished"))
    }

    #[tracing::instrument(skip(self))]
    async fn list_managed_accounts(
        &self,
        parent: &::costd_model::token::AccountToken,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::ManagedAccount>> {
        let sql = format!(
            "SELECT {}, {} FROM accounts WHERE parent_account_token = $1 ORDER BY id LIMIT $2 OFFSET $3",
            crate::sql::ACCOUNT_COLUMNS,
            crate::sql::MANAGED_COLUMNS
        );
        let rows: Vec<crate::sql::ManagedRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&parent))
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE parent_account_token = $1")
            .bind(crate::Text(&parent))
            .fetch_one(&self.read)
            .await?;
        // Two reads for the whole page's links, not two per account.
        let tokens: Vec<::costd_model::token::AccountToken> = rows.iter().map(|r| r.token().clone()).collect();
        let mut integrations =
            links_of(&self.read, "managed_account_integrations", "integration_token", &tokens).await?;
        let mut rules = links_of(&self.read, "managed_account_rules", "rule_token", &tokens).await?;
        let items = rows
            .into_iter()
            .map(|row| {
                let token = row.token().clone();
                row.into_managed(
                    integrations.remove(&token).unwrap_or_default(),
                    rules.remove(&token).unwrap_or_default(),
                )
            })
            .collect();
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_managed_account(
        &self,
        parent: &::costd_model::token::AccountToken,
        token: &::costd_model::token::AccountToken,
    ) -> anyhow::Result<Option<crate::ManagedAccount>> {
        let sql = format!(
            "SELECT {}, {} FROM accounts WHERE parent_account_token = $1 AND token = $2",
            crate::sql::ACCOUNT_COLUMNS,
            crate::sql::MANAGED_COLUMNS
        );
        let row: Option<crate::sql::ManagedRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&parent))
            .bind(crate::Text(&token))
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(row) => Ok(Some(load_managed(&self.read, row).await?)),
            None => Ok(None),
        }
    }

    #[tracing::instrument(skip(self, settings))]
    async fn update_managed_account(
        &self,
        parent: &::costd_model::token::AccountToken,
        token: &::costd_model::token::AccountToken,
        settings: &crate::ManagedAccountSettings,
    ) -> anyhow::Result<Option<crate::ManagedAccount>> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE accounts SET name = $3, contact_email = $4, email_domain = $5, msp_billing_profile_token = $6, \
             payment_terms_days = $7, invoicing_details = $8 WHERE parent_account_token = $1 AND token = $2",
        )
        .bind(crate::Text(&parent))
        .bind(crate::Text(&token))
        .bind(&settings.name)
        .bind(&settings.contact_email)
        .bind(&settings.email_domain)
        .bind(crate::Text(&settings.invoicing.billing_profile))
        .bind(settings.invoicing.payment_terms_days as i32)
        .bind(crate::sql::InvoicingDetails::json(&settings.invoicing))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        set_managed_links(&mut tx, token, settings).await?;
        tx.commit().await?;
        self.get_managed_account(parent, token).await
    }

    #[tracing::instrument(skip(self))]
    async fn delete_managed_account(
        &self,
        parent: &::costd_model::token::AccountToken,
        token: &::costd_model::token::AccountToken,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM accounts WHERE parent_account_token = $1 AND token = $2")
            .bind(crate::Text(&parent))
            .bind(crate::Text(&token))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
