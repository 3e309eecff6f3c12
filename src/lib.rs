//! costd: a self-hostable cloud-cost engine whose HTTP API is the Vantage API v2.
//!
//! Where everything lives (ARCHITECTURE.md has the picture). Calls go one way:
//! `http`, `cli` → `service` → `model`, `store`, `engine`; `store` and `engine` use `model` and nothing above.
//! - [`http`]: the axum application: one module per resource (extract → service → response), errors, auth,
//!   pagination, extractors, the upload body forms Vantage's clients send, the OpenAPI document
//!   generated from the handlers, and the web console at `/` (embedded pages over the same API, signed in
//!   by a session cookie).
//! - [`app`]: the composition root: `App::build(Config)` assembles the shared state from the flags and
//!   `App::run` serves it with the background workers; `serve`, the commands and the tests start there.
//! - [`cli`] and [`import`]: the commands (`serve`, `account`, `token`, `import`, `query`, `invoice`, `sync`,
//!   `links`, `migrate`);
//!   [`config`] holds every flag with its `COSTD_*` variable.
//! - [`service`]: what a request or command does, once for both: uploads (ingest → commit → retire), the
//!   costs query over a pinned snapshot with its result cache, managed accounts, invoicing (billing profiles,
//!   invoices, signed download links), cost reports with saved filters and folders (the query a report
//!   stands for, its forecast), segments (a tree of reports that divide the costs), virtual tags (allocation), exchange rates and currency conversion, discovery, data exports, the upload-file janitor, syncing bucket integrations
//!   (AWS and Azure cost exports) with their credentials sealed at rest, and the alerts wing (budgets, cost
//!   alerts, report summaries, anomalies: `service::alerts` judges them over one report series and delivers
//!   their messages), and the audit log (`service::audit`: every write of the API, the console and the CLI,
//!   with who, the source and the values it changed; recorded by `http::audit_logs`'s layer and the commands).
//! - [`model`] (the `costd-model` crate, `crates/model`): parsed domain types, no I/O: the costs query (`model::cost_query`, parsed from a query
//!   string or a stored report alike, with VQL as a typed AST in `model::vql`), billing rules with the
//!   typed custom-SQL grammar, virtual tags (`model::virtual_tag`), segments and the scope a segment's report applies
//!   (`model::segment`), exchange rates (`model::exchange_rate`), managed
//!   accounts, workspaces, cost reports (date intervals), bucket integrations' export locations and credentials,
//!   tokens, exact amounts. Request bodies become these through `TryFrom`.
//! - [`store`] (`costd-store`, `crates/store`): the metadata store, one trait per resource, with SQLite
//!   (default) and PostgreSQL backends: the SQL written once in its `backend/`, compiled for each; the
//!   alerts wing's kinds each in a table of its own, described once (`store::wing`).
//! - [`engine`] (`costd-engine`, `crates/engine`): the cost data: CSV ingest into Parquet, cloud exports' manifests and files (`bills`), upload
//!   files and their readers, the rule compiler,
//!   exact amount kernels, VQL compiled, virtual tags and their splits as plan columns (`engine::allocation`),
//!   costs converted to a workspace's currency (`engine::currency`),
//!   the DataFusion costs query and the runtime it runs on.
//! - [`render`]: documents for people (an invoice's PDF and CSV), pure functions of stored data;
//!   [`mail`]: sending them through SMTP.
//! - [`bootstrap`]: creating accounts and API tokens, shared by `serve` and the CLI.
//!
//! The three lower layers are crates, so the arrows above are compile errors when broken; this package
//! re-exports them under their layer names.
//!
//! Nothing below `http` knows about HTTP, nothing above `store` knows which database is in use, and
//! DataFusion types never leave `engine`.

pub mod app;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod http;
pub mod import;
pub mod mail;
pub mod render;
pub mod service;
pub mod telemetry;

// The layers below this package are crates of their own (`crates/`), so a wrong import is a compile error;
// they keep their paths here (`crate::model::…`, `costd::engine::…`).
pub use costd_engine as engine;
pub use costd_model as model;
pub use costd_store as store;
