//! Exchange rates: a row per (account, base, currency, effective day), the rate exact decimal text decoded
//! here, so the store hands out checked rates.

use chrono::{DateTime, NaiveDate, Utc};

use costd_model::exchange_rate::ExchangeRate;

pub(crate) const EXCHANGE_RATE_COLUMNS: &str = "base_currency_code, currency_code, rate, effective_date, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ExchangeRateRow {
    base_currency_code: String,
    currency_code: String,
    rate: String,
    effective_date: String,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ExchangeRateRow> for crate::StoredExchangeRate {
    type Error = anyhow::Error;

    fn try_from(r: ExchangeRateRow) -> anyhow::Result<Self> {
        let rate = r.rate.parse().map_err(|e| {
            anyhow::anyhow!(
                "the exchange rate {} → {} has an unreadable rate {:?}: {e}",
                r.base_currency_code,
                r.currency_code,
                r.rate
            )
        })?;
        let effective_date = NaiveDate::parse_from_str(&r.effective_date, "%Y-%m-%d")
            .map_err(|e| anyhow::anyhow!("an exchange rate has an unreadable day {:?}: {e}", r.effective_date))?;
        Ok(crate::StoredExchangeRate {
            rate: ExchangeRate { base: r.base_currency_code, currency: r.currency_code, rate, effective_date },
            updated_at: r.updated_at,
        })
    }
}
