//! Exchange rates (`/v2/exchange_rates`, docs/currency.md): a CSV the user uploads, checked whole and
//! written in one transaction, and the conversion a costs query applies for its workspace.
//!
//! Rates belong to an account. A managed account converts with its own rates and its MSP's (its own win for
//! the same pair and day), so an MSP uploads rates once for every customer it invoices.

use crate::model::exchange_rate::{parse_csv_rows, Conversion, ExchangeRate, RateDate};
use crate::model::token::AccountToken;
use crate::model::workspace::WorkspaceSettings;
use crate::store::{PageRequest, Paged, Store, StoredExchangeRate};

use super::error::{Result, ServiceError};

/// Reads `csv` (`base_currency_code,currency_code,rate,date`, a header row optional) and stores its rates
/// for `account`; answers how many. A file with any bad row stores nothing and names every bad line.
#[tracing::instrument(skip(store, csv), fields(bytes = csv.len()))]
pub async fn upload_csv(store: &dyn Store, account: &AccountToken, csv: &[u8]) -> Result<usize> {
    let rates = parse_csv(csv)?;
    store.put_exchange_rates(account, &rates).await?;
    Ok(rates.len())
}

/// The rates of a CSV file, or every problem with it (by line).
fn parse_csv(csv: &[u8]) -> Result<Vec<ExchangeRate>> {
    let rows = super::csv_rows(csv, crate::model::exchange_rate::MAX_CSV_ROWS).map_err(ServiceError::Invalid)?;
    parse_csv_rows(rows).map_err(ServiceError::Invalid)
}

/// One page of the account's rates, newest effective day first.
#[tracing::instrument(skip(store))]
pub async fn list(store: &dyn Store, account: &AccountToken, page: PageRequest) -> Result<Paged<StoredExchangeRate>> {
    Ok(store.list_exchange_rates(account, page).await?)
}

/// What a query of `account` (a managed account when `parent` is its MSP) in a workspace with `settings`
/// does to costs in `currencies`: `None` when nothing needs converting (conversion off, or every cost
/// already in the workspace's currency and no rule writes a currency).
pub async fn conversion(
    store: &dyn Store,
    account: &AccountToken,
    parent: Option<&AccountToken>,
    settings: &WorkspaceSettings,
    currencies: impl Iterator<Item = &str>,
    rules_write_currency: bool,
) -> Result<Option<Conversion>> {
    let to = settings.currency.as_str();
    let mut currencies = currencies;
    if !settings.enable_currency_conversion || (!rules_write_currency && currencies.all(|c| c == to)) {
        return Ok(None);
    }
    // The MSP's first, so that the account's own rate of a pair and day replaces it.
    let mut rates = Vec::new();
    for owner in parent.into_iter().chain(std::iter::once(account)) {
        rates.extend(store.exchange_rates_with(owner, to).await?);
    }
    Ok(Some(Conversion::new(to, RateDate::from_setting(&settings.exchange_rate_date), &rates)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_with_quotes_and_a_header_is_read_and_a_broken_one_names_its_line() {
        let rates =
            parse_csv(b"base_currency_code,currency_code,rate,date\r\n\"EUR\",USD,\"1.08\",2026-03-01\r\n").unwrap();
        assert_eq!(rates.len(), 1);
        assert_eq!(rates[0].rate.to_string(), "1.08");
        let ServiceError::Invalid(problems) =
            parse_csv(b"EUR,USD,1.08,2026-03-01\nEUR,USD,x,2026-03-02\n").unwrap_err()
        else {
            panic!("not invalid")
        };
        assert_eq!(problems, vec!["line 2: rate must be a decimal number like 0.92, got \"x\"".to_string()]);
    }
}
