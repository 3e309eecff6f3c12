//! An MSP's invoices. Numbers come from one counter row per MSP account, locked by the creating
//! transaction: concurrent creates queue on it, and a create that is refused (an overlapping period) or
//! fails rolls the counter back with it, so numbers have no gaps and no duplicates.
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

#[async_trait::async_trait]
impl crate::InvoiceStore for This {
    #[tracing::instrument(skip(self, invoice), fields(account = %invoice.account_token))]
    async fn create_invoice(
        &self,
        msp: &::costd_model::token::AccountToken,
        invoice: &crate::NewInvoice,
    ) -> anyhow::Result<crate::InvoiceCreate> {
        use crate::sql::INVOICE_COLUMNS;
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO invoice_counters (msp_account_token, last_number) VALUES ($1, 0) \
             ON CONFLICT (msp_account_token) DO NOTHING",
        )
        .bind(crate::Text(&msp))
        .execute(&mut *tx)
        .await?;
        let sql = format!("SELECT last_number FROM invoice_counters WHERE msp_account_token = $1{}", LOCK);
        let last: i64 = sqlx::query_scalar(&sql).bind(crate::Text(&msp)).fetch_one(&mut *tx).await?;
        // Checked under the counter's lock, so two creates for one period cannot both pass.
        let sql = format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE msp_account_token = $1 AND account_token = $2 \
             AND period_start <= $4 AND period_end >= $3 ORDER BY number LIMIT 1"
        );
        let overlapping: Option<crate::sql::InvoiceRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&msp))
            .bind(crate::Text(&invoice.account_token))
            .bind(invoice.period.start)
            .bind(invoice.period.end)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = overlapping {
            return Ok(crate::InvoiceCreate::Overlaps(row.try_into()?));
        }
        let number = last + 1;
        sqlx::query("UPDATE invoice_counters SET last_number = $2 WHERE msp_account_token = $1")
            .bind(crate::Text(&msp))
            .bind(number)
            .execute(&mut *tx)
            .await?;
        let token = ::costd_model::token::InvoiceToken::generate();
        let now = crate::now();
        sqlx::query(
            "INSERT INTO invoices (token, msp_account_token, account_token, account_name, number, period_start, \
             period_end, status, total, currency, document, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        )
        .bind(crate::Text(&token))
        .bind(crate::Text(&msp))
        .bind(crate::Text(&invoice.account_token))
        .bind(&invoice.account_name)
        .bind(number)
        .bind(invoice.period.start)
        .bind(invoice.period.end)
        .bind(::costd_model::invoice::InvoiceStatus::Draft.as_str())
        .bind(crate::Text(&invoice.document.total))
        .bind(&invoice.document.currency)
        .bind(crate::sql::document_json(&invoice.document))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let created =
            self.get_invoice(msp, &token).await?.ok_or_else(|| anyhow::anyhow!("the new invoice vanished"))?;
        Ok(crate::InvoiceCreate::Created(created))
    }

    #[tracing::instrument(skip(self))]
    async fn list_invoices(
        &self,
        msp: &::costd_model::token::AccountToken,
        account: Option<&::costd_model::token::AccountToken>,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::Invoice>> {
        let filter = "msp_account_token = $1 AND ($2 IS NULL OR account_token = $2)";
        let sql = format!(
            "SELECT {} FROM invoices WHERE {filter} ORDER BY number DESC LIMIT $3 OFFSET $4",
            crate::sql::INVOICE_COLUMNS
        );
        let rows: Vec<crate::sql::InvoiceRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&msp))
            .bind(crate::Text(&account))
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM invoices WHERE {filter}"))
            .bind(crate::Text(&msp))
            .bind(crate::Text(&account))
            .fetch_one(&self.read)
            .await?;
        let items = rows.into_iter().map(TryInto::try_into).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn get_invoice(
        &self,
        msp: &::costd_model::token::AccountToken,
        token: &::costd_model::token::InvoiceToken,
    ) -> anyhow::Result<Option<crate::Invoice>> {
        let sql =
            format!("SELECT {} FROM invoices WHERE msp_account_token = $1 AND token = $2", crate::sql::INVOICE_COLUMNS);
        let row: Option<crate::sql::InvoiceRow> =
            sqlx::query_as(&sql).bind(crate::Text(&msp)).bind(crate::Text(&token)).fetch_optional(&self.read).await?;
        row.map(TryInto::try_into).transpose()
    }

    #[tracing::instrument(skip(self, document))]
    async fn regenerate_invoice(
        &self,
        msp: &::costd_model::token::AccountToken,
        token: &::costd_model::token::InvoiceToken,
        document: &::costd_model::invoice::InvoiceDocument,
    ) -> anyhow::Result<crate::InvoiceChange> {
        let done = sqlx::query(
            "UPDATE invoices SET document = $3, total = $4, currency = $5, updated_at = $6 \
             WHERE msp_account_token = $1 AND token = $2 AND status = 'draft'",
        )
        .bind(crate::Text(&msp))
        .bind(crate::Text(&token))
        .bind(crate::sql::document_json(document))
        .bind(crate::Text(&document.total))
        .bind(&document.currency)
        .bind(crate::now())
        .execute(&self.write)
        .await?;
        Ok(match self.get_invoice(msp, token).await? {
            None => crate::InvoiceChange::NotFound,
            Some(i) if done.rows_affected() == 0 => crate::InvoiceChange::Refused(i.status),
            Some(i) => crate::InvoiceChange::Done(i),
        })
    }

    #[tracing::instrument(skip(self))]
    async fn set_invoice_status(
        &self,
        msp: &::costd_model::token::AccountToken,
        token: &::costd_model::token::InvoiceToken,
        from: &[::costd_model::invoice::InvoiceStatus],
        to: ::costd_model::invoice::InvoiceStatus,
    ) -> anyhow::Result<crate::InvoiceChange> {
        let sql = format!(
            "UPDATE invoices SET status = $3, updated_at = $4 WHERE msp_account_token = $1 AND token = $2 AND {}",
            crate::sql::status_in(from)
        );
        let done = sqlx::query(&sql)
            .bind(crate::Text(&msp))
            .bind(crate::Text(&token))
            .bind(to.as_str())
            .bind(crate::now())
            .execute(&self.write)
            .await?;
        Ok(match self.get_invoice(msp, token).await? {
            None => crate::InvoiceChange::NotFound,
            Some(i) if done.rows_affected() == 0 => crate::InvoiceChange::Refused(i.status),
            Some(i) => crate::InvoiceChange::Done(i),
        })
    }

    async fn server_secret(&self, name: &str) -> anyhow::Result<String> {
        sqlx::query("INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(::costd_model::token::new_secret())
            .execute(&self.write)
            .await?;
        Ok(sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?)
    }

    async fn rotate_server_secret(&self, name: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET secret = excluded.secret",
        )
        .bind(name)
        .bind(::costd_model::token::new_secret())
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
