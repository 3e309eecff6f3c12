//! An MSP's invoices. Numbers come from one counter row per MSP account, locked by the creating
//! transaction: concurrent creates queue on it, and a create that is refused (an overlapping period) or
//! fails rolls the counter back with it, so numbers have no gaps and no duplicates.

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::invoice::{BillingPeriod, InvoiceDocument, InvoiceStatus};
use crate::model::token::{AccountToken, InvoiceToken};
use crate::store::Invoice;

pub(crate) const INVOICE_COLUMNS: &str = "token, number, msp_account_token, account_token, account_name, \
     period_start, period_end, status, document, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct InvoiceRow {
    token: InvoiceToken,
    number: i64,
    msp_account_token: AccountToken,
    account_token: AccountToken,
    account_name: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    status: String,
    document: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<InvoiceRow> for Invoice {
    type Error = anyhow::Error;

    fn try_from(r: InvoiceRow) -> anyhow::Result<Self> {
        let status = InvoiceStatus::parse(&r.status)
            .ok_or_else(|| anyhow::anyhow!("invoice {} has an unknown status {:?}", r.token, r.status))?;
        let document: InvoiceDocument = serde_json::from_str(&r.document)
            .map_err(|e| anyhow::anyhow!("invoice {} has an unreadable document: {e}", r.token))?;
        Ok(Invoice {
            token: r.token,
            number: r.number,
            msp_account_token: r.msp_account_token,
            account_token: r.account_token,
            account_name: r.account_name,
            period: BillingPeriod { start: r.period_start, end: r.period_end },
            status,
            document,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) fn document_json(document: &InvoiceDocument) -> String {
    serde_json::to_string(document).expect("plain data serialises")
}

/// `status IN (…)` for these statuses (their fixed names, never user text).
pub(crate) fn status_in(statuses: &[InvoiceStatus]) -> String {
    let names: Vec<String> = statuses.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("status IN ({})", if names.is_empty() { "NULL".to_string() } else { names.join(", ") })
}

/// Implements `InvoiceStore` for a backend (see [`impl_store!`](super)).
macro_rules! impl_invoices {
    ($store:ty, $db:ty, $lock:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::InvoiceStore for $store {
            #[tracing::instrument(skip(self, invoice), fields(account = %invoice.account_token))]
            async fn create_invoice(
                &self,
                msp: &$crate::model::token::AccountToken,
                invoice: &$crate::store::NewInvoice,
            ) -> anyhow::Result<$crate::store::InvoiceCreate> {
                use $crate::store::sql::INVOICE_COLUMNS;
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO invoice_counters (msp_account_token, last_number) VALUES ($1, 0) \
                     ON CONFLICT (msp_account_token) DO NOTHING",
                )
                .bind(msp)
                .execute(&mut *tx)
                .await?;
                let sql = format!("SELECT last_number FROM invoice_counters WHERE msp_account_token = $1{}", $lock);
                let last: i64 = sqlx::query_scalar(&sql).bind(msp).fetch_one(&mut *tx).await?;
                // Checked under the counter's lock, so two creates for one period cannot both pass.
                let sql = format!(
                    "SELECT {INVOICE_COLUMNS} FROM invoices WHERE msp_account_token = $1 AND account_token = $2 \
                     AND period_start <= $4 AND period_end >= $3 ORDER BY number LIMIT 1"
                );
                let overlapping: Option<$crate::store::sql::InvoiceRow> = sqlx::query_as(&sql)
                    .bind(msp)
                    .bind(&invoice.account_token)
                    .bind(invoice.period.start)
                    .bind(invoice.period.end)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = overlapping {
                    return Ok($crate::store::InvoiceCreate::Overlaps(row.try_into()?));
                }
                let number = last + 1;
                sqlx::query("UPDATE invoice_counters SET last_number = $2 WHERE msp_account_token = $1")
                    .bind(msp)
                    .bind(number)
                    .execute(&mut *tx)
                    .await?;
                let token = $crate::model::token::InvoiceToken::generate();
                let now = $crate::store::now();
                sqlx::query(
                    "INSERT INTO invoices (token, msp_account_token, account_token, account_name, number, period_start, \
                     period_end, status, total, currency, document, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
                )
                .bind(&token)
                .bind(msp)
                .bind(&invoice.account_token)
                .bind(&invoice.account_name)
                .bind(number)
                .bind(invoice.period.start)
                .bind(invoice.period.end)
                .bind($crate::model::invoice::InvoiceStatus::Draft.as_str())
                .bind(invoice.document.total)
                .bind(&invoice.document.currency)
                .bind($crate::store::sql::document_json(&invoice.document))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let created = self.get_invoice(msp, &token).await?.ok_or_else(|| anyhow::anyhow!("the new invoice vanished"))?;
                Ok($crate::store::InvoiceCreate::Created(created))
            }

            #[tracing::instrument(skip(self))]
            async fn list_invoices(
                &self,
                msp: &$crate::model::token::AccountToken,
                account: Option<&$crate::model::token::AccountToken>,
                page: $crate::store::PageRequest,
            ) -> anyhow::Result<$crate::store::Paged<$crate::store::Invoice>> {
                let filter = "msp_account_token = $1 AND ($2 IS NULL OR account_token = $2)";
                let sql = format!(
                    "SELECT {} FROM invoices WHERE {filter} ORDER BY number DESC LIMIT $3 OFFSET $4",
                    $crate::store::sql::INVOICE_COLUMNS
                );
                let rows: Vec<$crate::store::sql::InvoiceRow> = sqlx::query_as(&sql)
                    .bind(msp)
                    .bind(account)
                    .bind(i64::from(page.limit))
                    .bind(page.offset())
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM invoices WHERE {filter}"))
                    .bind(msp)
                    .bind(account)
                    .fetch_one(&self.read)
                    .await?;
                let items = rows.into_iter().map(TryInto::try_into).collect::<anyhow::Result<Vec<_>>>()?;
                Ok($crate::store::Paged { items, total })
            }

            #[tracing::instrument(skip(self))]
            async fn get_invoice(
                &self,
                msp: &$crate::model::token::AccountToken,
                token: &$crate::model::token::InvoiceToken,
            ) -> anyhow::Result<Option<$crate::store::Invoice>> {
                let sql = format!(
                    "SELECT {} FROM invoices WHERE msp_account_token = $1 AND token = $2",
                    $crate::store::sql::INVOICE_COLUMNS
                );
                let row: Option<$crate::store::sql::InvoiceRow> =
                    sqlx::query_as(&sql).bind(msp).bind(token).fetch_optional(&self.read).await?;
                row.map(TryInto::try_into).transpose()
            }

            #[tracing::instrument(skip(self, document))]
            async fn regenerate_invoice(
                &self,
                msp: &$crate::model::token::AccountToken,
                token: &$crate::model::token::InvoiceToken,
                document: &$crate::model::invoice::InvoiceDocument,
            ) -> anyhow::Result<$crate::store::InvoiceChange> {
                let done = sqlx::query(
                    "UPDATE invoices SET document = $3, total = $4, currency = $5, updated_at = $6 \
                     WHERE msp_account_token = $1 AND token = $2 AND status = 'draft'",
                )
                .bind(msp)
                .bind(token)
                .bind($crate::store::sql::document_json(document))
                .bind(document.total)
                .bind(&document.currency)
                .bind($crate::store::now())
                .execute(&self.write)
                .await?;
                Ok(match self.get_invoice(msp, token).await? {
                    None => $crate::store::InvoiceChange::NotFound,
                    Some(i) if done.rows_affected() == 0 => $crate::store::InvoiceChange::Refused(i.status),
                    Some(i) => $crate::store::InvoiceChange::Done(i),
                })
            }

            #[tracing::instrument(skip(self))]
            async fn set_invoice_status(
                &self,
                msp: &$crate::model::token::AccountToken,
                token: &$crate::model::token::InvoiceToken,
                from: &[$crate::model::invoice::InvoiceStatus],
                to: $crate::model::invoice::InvoiceStatus,
            ) -> anyhow::Result<$crate::store::InvoiceChange> {
                let sql = format!(
                    "UPDATE invoices SET status = $3, updated_at = $4 WHERE msp_account_token = $1 AND token = $2 AND {}",
                    $crate::store::sql::status_in(from)
                );
                let done = sqlx::query(&sql)
                    .bind(msp)
                    .bind(token)
                    .bind(to.as_str())
                    .bind($crate::store::now())
                    .execute(&self.write)
                    .await?;
                Ok(match self.get_invoice(msp, token).await? {
                    None => $crate::store::InvoiceChange::NotFound,
                    Some(i) if done.rows_affected() == 0 => $crate::store::InvoiceChange::Refused(i.status),
                    Some(i) => $crate::store::InvoiceChange::Done(i),
                })
            }

            async fn server_secret(&self, name: &str) -> anyhow::Result<String> {
                sqlx::query("INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind($crate::model::token::new_secret())
                    .execute(&self.write)
                    .await?;
                Ok(sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1").bind(name).fetch_one(&self.write).await?)
            }

            async fn rotate_server_secret(&self, name: &str) -> anyhow::Result<()> {
                sqlx::query(
                    "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET secret = excluded.secret",
                )
                .bind(name)
                .bind($crate::model::token::new_secret())
                .execute(&self.write)
                .await?;
                Ok(())
            }
        }
    };
}
