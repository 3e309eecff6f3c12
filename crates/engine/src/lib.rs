//! The cost engine; nothing in it knows about HTTP.
//! - [`ingest`]: cost CSVs (FOCUS columns) streamed into Parquet files of the [`schema`].
//! - [`bills`]: cloud cost exports in their buckets: manifests, the files they list, their rows as one CSV of
//!   FOCUS columns for the ingest (Parquet, gzip CSV, CUR 2.0 mapped).
//! - [`uploads`]: upload files and the readers and writers that pin them; [`storage`]: where they live (a
//!   local directory or an S3-compatible bucket).
//! - [`rules`]: the billing-rule grammar (custom SQL parsed and checked when a rule is saved).
//! - [`allocation`]: virtual tags as columns of the costs plan, shared costs split exactly.
//! - [`amounts`]: exact amount × factor for rules, without the cast DataFusion would add.
//! - [`currency`]: costs converted to a workspace's currency by the rates the user supplied, row by row.
//! - [`dates`]: week, month and quarter bins of dates, as plan functions.
//! - [`discovery`]: an upload's distinct services and tags, read once before it is committed.
//! - [`rollup`]: an upload's daily sums by its low-cardinality dimensions, built during its ingest, read by
//!   queries whose rules and filters they answer exactly.
//! - [`runtime`]: the Tokio runtime queries run on, apart from the one serving requests.

pub mod allocation;
pub mod amounts;
pub mod bills;
pub mod costs;
pub mod currency;
pub mod dates;
pub mod discovery;
pub mod ingest;
pub mod rollup;
pub mod rules;
pub mod runtime;
pub mod schema;
pub mod storage;
pub mod tags;
pub mod uploads;
pub mod vql;
