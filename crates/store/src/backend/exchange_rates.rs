//! Exchange rates: a row per (account, base, currency, effective day).
//! This file is the backend side: the SQL itself, compiled once per backend (see `backend`).

#[allow(unused_imports)]
use super::*;

use ::costd_model::exchange_rate::ExchangeRate;
use ::costd_model::token::AccountToken;

/// Rates written per statement (6 parameters each, well under SQLite's limit of 32766).
const BATCH: usize = 500;

#[async_trait::async_trait]
impl crate::ExchangeRateStore for This {
    #[tracing::instrument(skip(self, rates), fields(rates = rates.len()))]
    async fn put_exchange_rates(&self, account: &AccountToken, rates: &[ExchangeRate]) -> anyhow::Result<()> {
        let now = crate::now();
        let mut tx = self.write.begin().await?;
        for chunk in rates.chunks(BATCH) {
            let mut q: sqlx::QueryBuilder<Db> = sqlx::QueryBuilder::new(
                "INSERT INTO exchange_rates (account_token, base_currency_code, currency_code, effective_date, rate, \
                 updated_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(crate::Text(&account))
                    .push_bind(r.base.clone())
                    .push_bind(r.currency.clone())
                    .push_bind(r.effective_date.format("%Y-%m-%d").to_string())
                    .push_bind(r.rate.to_string())
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (account_token, base_currency_code, currency_code, effective_date) \
                 DO UPDATE SET rate = excluded.rate, updated_at = excluded.updated_at",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn list_exchange_rates(
        &self,
        account: &AccountToken,
        page: crate::PageRequest,
    ) -> anyhow::Result<crate::Paged<crate::StoredExchangeRate>> {
        let sql = format!(
            "SELECT {} FROM exchange_rates WHERE account_token = $1 \
             ORDER BY effective_date DESC, base_currency_code, currency_code LIMIT $2 OFFSET $3",
            crate::sql::EXCHANGE_RATE_COLUMNS
        );
        let rows: Vec<crate::sql::ExchangeRateRow> = sqlx::query_as(&sql)
            .bind(crate::Text(&account))
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.read)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exchange_rates WHERE account_token = $1")
            .bind(crate::Text(&account))
            .fetch_one(&self.read)
            .await?;
        let items = rows.into_iter().map(TryInto::try_into).collect::<anyhow::Result<_>>()?;
        Ok(crate::Paged { items, total })
    }

    #[tracing::instrument(skip(self))]
    async fn exchange_rates_with(&self, account: &AccountToken, currency: &str) -> anyhow::Result<Vec<ExchangeRate>> {
        let sql = format!(
            "SELECT {} FROM exchange_rates WHERE account_token = $1 AND (base_currency_code = $2 OR currency_code = $2) \
             ORDER BY effective_date",
            crate::sql::EXCHANGE_RATE_COLUMNS
        );
        let rows: Vec<crate::sql::ExchangeRateRow> =
            sqlx::query_as(&sql).bind(crate::Text(&account)).bind(currency).fetch_all(&self.read).await?;
        rows.into_iter().map(|r| crate::StoredExchangeRate::try_from(r).map(|s| s.rate)).collect()
    }
}
