//! Logging set-up: `tracing` to stderr, filtered by `RUST_LOG` (default: info for costd and requests).

use tracing_subscriber::EnvFilter;

/// costd's own crates (their events' targets are their crate names), requests, and sqlx's warnings only.
pub const DEFAULT_FILTER: &str =
    "costd=info,costd_model=info,costd_engine=info,costd_store=info,tower_http=info,sqlx=warn";

/// Installs the global subscriber. Logs go to stderr so that stdout stays for what commands print.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
