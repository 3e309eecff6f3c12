//! The service layer: what a request or a command does, once, for both the HTTP API and the CLI.
//! Handlers and commands turn their input into these calls and their results into output; below this
//! layer, `store` keeps metadata and `engine` computes.
//!
//! - [`audit`]: the audit log: every write recorded with who, through what, and the values it changed.
//! - [`error`]: the one error every service returns, by kind ([`ServiceError`]), mapped to HTTP once.
//! - [`uploads`]: ingest → persist → commit → retire, the one path by which cost files enter.
//! - [`files`]: file intents (what is being written to shared storage) and the janitor, which removes
//!   upload files no query can still read and no commit can still name.
//! - [`costs`]: the costs query: which uploads and rules a caller sees, read as one snapshot, cached.
//! - [`discovery`]: the providers, services and tags of a caller's costs, as recorded at each commit.
//! - [`exports`]: cost data exports, run in the background into CSV files kept for a retention.
//! - [`forecast`]: a cost report's forecast: run rate with weekday seasonality over four weeks.
//! - [`workspaces`] and [`billing_rules`]: created and changed from a request's fields, each update checked
//!   whole as a create would be.
//! - [`managed_accounts`]: an MSP's customers, checked, with the rules each one runs.
//! - [`exchange_rates`]: exchange rates (docs/currency.md), a CSV stored whole; the conversion a query's workspace applies.
//! - [`business_metrics`] and [`unit_costs`]: business metrics (docs/unit-costs.md), their values from CSV or
//!   the API, and a cost report's cost per unit of them.
//! - [`virtual_tags`]: virtual tags (allocation, docs/allocation.md), saved whole; the tags a query applies.
//! - [`invoices`]: billing profiles and invoices: computed from the costs query, numbered, frozen, sent.
//! - [`reports`]: cost reports, saved filters and folders, and the costs query a report stands for.
//! - [`signed`]: expiring signed links to files costd serves (invoice PDFs and CSVs).
//! - [`slots`]: how many queries and uploads one account may run at once.
//! - [`sync`]: bucket integrations: each billing period of a cloud's export becomes one upload, replaced whole
//!   by each new manifest; the server's loop, `costd sync` and "Sync now".
//! - [`secrets`]: integration credentials sealed at rest.
//! - The alerts wing: [`budgets`], [`cost_alerts`], [`anomalies`] (what the API reads and writes, on the
//!   wing's own tables through [`records`]); [`series`] (a report's costs by day and group, one currency,
//!   checked sums: what every alert and the forecast read); [`alerts`] (the evaluators, one per kind, the
//!   pass that runs them, messages and fair delivery). Nothing the wing's evaluators use imports [`alerts`].

pub mod alerts;
pub mod anomalies;
pub mod audit;
pub mod billing_rules;
pub mod budgets;
pub mod business_metrics;
pub mod cost_alerts;
pub mod costs;
pub mod discovery;
pub mod error;
pub mod exchange_rates;
pub mod exports;
pub mod files;
pub mod forecast;
pub mod integrations;
pub mod invoices;
pub mod managed_accounts;
pub mod records;
pub mod reports;
pub mod secrets;
pub mod segments;
pub mod series;
pub mod signed;
pub mod slots;
pub mod sync;
pub mod unit_costs;
pub mod uploads;
pub mod users;
pub mod virtual_tags;
pub mod webhooks;
pub mod workspaces;

pub use error::ServiceError;

/// The rows of a small CSV file the user uploads whole (rates, metric values) as (1-based line, cells), for
/// `model::csv_table`; reading stops a row past `max_rows` (the parser names that line). A file the CSV
/// reader cannot read is one problem naming its line.
pub fn csv_rows(csv: &[u8], max_rows: usize) -> Result<Vec<(u64, Vec<String>)>, Vec<String>> {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(csv);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            vec![format!("line {line}: the CSV cannot be read: {e}")]
        })?;
        let line = record.position().map_or(rows.len() as u64 + 1, |p| p.line());
        rows.push((line, record.iter().map(str::to_string).collect()));
        if rows.len() > max_rows + 1 {
            break;
        }
    }
    Ok(rows)
}

/// Runs `pass` now and then every `period` (a pass that overruns delays the next, never stacks), until `stop`
/// resolves: the background work of `costd serve` (the janitor, the sync loop).
pub async fn every<F, Fut>(period: std::time::Duration, stop: impl std::future::Future<Output = ()>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => pass().await,
        }
    }
}
