//! costd: a self-hostable cloud-cost engine whose HTTP API is the Vantage API v2.
//!
//! Where everything lives (data flows one way: `http` → `model` → `store`/`engine`):
//! - [`config`]: every setting, as a clap flag with a `COSTD_*` environment variable, and the CLI commands.
//! - [`cli`]: what each command (`serve`, `account`, `token`, `migrate`) does; [`import`] is `costd import`.
//! - [`http`]: the axum application: one module per resource, errors, auth, pagination, extractors.
//! - [`model`]: parsed domain types (billing rules, workspaces, tokens, money); request bodies become
//!   these through `TryFrom`, so handlers only ever see valid values.
//! - [`service`]: what a request or command does, once for both: uploads (ingest → commit → retire), the
//!   janitor of upload files, the costs query over a pinned snapshot with its result cache.
//! - [`query`]: the costs query's parameters, shared by `GET /v2/costs` and `costd query`.
//! - [`store`]: the metadata store trait and its SQLite (default) and PostgreSQL backends.
//! - [`engine`]: the cost engine: CSV ingest into Parquet, upload files, the custom-SQL rule grammar.
//! - [`bootstrap`]: creating accounts and API tokens, shared by `serve` and the CLI.
//!
//! Nothing below `http` knows about HTTP, and nothing above `store` knows which database is in use.

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
pub mod import;
pub mod model;
pub mod query;
pub mod service;
pub mod store;
pub mod telemetry;
