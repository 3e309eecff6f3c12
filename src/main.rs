//! The `costd` binary: parse the command line, set up logging, hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = costd::config::Cli::parse();
    costd::telemetry::init();
    costd::cli::run(cli).await
}
