//! Every setting costd reads: one clap flag per setting, each with its `COSTD_*` environment variable.
//! The `///` docs double as `--help`. Every command reaches the same store through [`StoreSettings`].

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

pub use crate::store::StoreSettings;

/// Every command's flags (and `COSTD_*` variables) for the store: [`StoreSettings`] as clap reads them.
#[derive(Clone, Args)]
pub struct StoreArgs {
    /// Directory holding the SQLite metadata file, the Parquet cost files and the bootstrap token.
    #[arg(long, env = "COSTD_DATA_DIR", default_value = "./costd-data", global = true)]
    pub data_dir: std::path::PathBuf,
    /// Metadata database: `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: `<data-dir>/costd.sqlite3`.
    #[arg(long, env = "COSTD_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most connections the metadata pool opens (PostgreSQL; SQLite uses one writer and this many readers).
    /// A small number suits a 2-core machine: more connections only queue inside the database.
    #[arg(long, env = "COSTD_DB_MAX_CONNECTIONS", default_value_t = 8, global = true)]
    pub db_max_connections: u32,
}

impl StoreArgs {
    pub fn settings(&self) -> StoreSettings {
        StoreSettings {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            db_max_connections: self.db_max_connections,
        }
    }
}

/// As [`StoreSettings`] shows itself: never a database password.
impl std::fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.settings(), f)
    }
}

/// costd: a self-hostable cloud-cost engine with a Vantage API v2 compatible HTTP API.
#[derive(Debug, Parser)]
#[command(name = "costd", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub store_args: StoreArgs,
    #[command(flatten)]
    pub storage: StorageSettings,
    #[command(flatten)]
    pub integrations: IntegrationSettings,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The store every command reaches.
    pub fn store(&self) -> StoreSettings {
        self.store_args.settings()
    }
}

/// What bucket integrations (AWS and Azure cost exports) may reach, and the key their credentials are sealed
/// with (every command that syncs must be given the same).
#[derive(Clone, Default, Args)]
pub struct IntegrationSettings {
    /// The key integration credentials are sealed with at rest: 64 hex digits. Default: the data dir's
    /// `secrets.key`, generated on first use. Nodes sharing a PostgreSQL store need the same key.
    #[arg(long, env = "COSTD_SECRETS_KEY", global = true, hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// A storage endpoint integrations may use besides AWS's and Azure's own (an S3-compatible store,
    /// Azurite), as `http(s)://host:port`; repeat the flag or separate with commas. Without it, an
    /// integration with a custom endpoint is refused, so no tenant can make costd call inside your network.
    #[arg(long = "allow-endpoint", env = "COSTD_ALLOW_ENDPOINTS", global = true, value_delimiter = ',')]
    pub allow_endpoints: Vec<String>,
    /// Let AWS integrations without keys use this machine's own AWS credentials (instance role,
    /// environment). Off by default: any tenant could then read what the machine's role can.
    #[arg(long, env = "COSTD_ALLOW_AMBIENT_CREDENTIALS", global = true)]
    pub allow_ambient_credentials: bool,
}

/// The sealing key never shows in logs.
impl std::fmt::Debug for IntegrationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationSettings")
            .field("allow_endpoints", &self.allow_endpoints)
            .field("allow_ambient_credentials", &self.allow_ambient_credentials)
            .finish_non_exhaustive()
    }
}

impl IntegrationSettings {
    /// The endpoints integrations may name.
    pub fn allowed(&self) -> anyhow::Result<crate::model::bucket_export::AllowedEndpoints> {
        crate::model::bucket_export::AllowedEndpoints::parse(&self.allow_endpoints, self.allow_ambient_credentials)
            .map_err(|e| anyhow::anyhow!("--allow-endpoint: {e}"))
    }

    /// The key integration credentials are sealed with.
    pub fn secrets(&self, data_dir: &std::path::Path) -> anyhow::Result<crate::service::secrets::SecretBox> {
        crate::service::secrets::SecretBox::open_or_create(self.secrets_key.as_deref(), data_dir)
    }
}

/// Where upload files live (every command that reads or writes costs must name the same place).
#[derive(Clone, Args)]
pub struct StorageSettings {
    /// Where upload files live: `s3://BUCKET/PREFIX` for an S3-compatible object store (what several
    /// `costd serve` nodes on one PostgreSQL share). Default: the `uploads` directory of the data dir.
    #[arg(long, env = "COSTD_STORAGE", global = true)]
    pub storage: Option<String>,
    /// The S3 endpoint of a store other than AWS (MinIO, Ceph, R2, a test server), e.g.
    /// `http://127.0.0.1:9000`. Default: `AWS_ENDPOINT_URL`, else AWS itself.
    #[arg(long, env = "COSTD_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    /// The bucket's region. Default: `AWS_REGION` or `AWS_DEFAULT_REGION`, else us-east-1.
    #[arg(long, env = "COSTD_S3_REGION", global = true)]
    pub s3_region: Option<String>,
    /// The access key id. Default: `AWS_ACCESS_KEY_ID` (or the instance's role on AWS).
    #[arg(long, env = "COSTD_S3_ACCESS_KEY_ID", global = true, hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    /// The secret access key. Default: `AWS_SECRET_ACCESS_KEY`.
    #[arg(long, env = "COSTD_S3_SECRET_ACCESS_KEY", global = true, hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// How long (s) an upload or export in flight vouches for its files without renewing (renewed every
    /// quarter of this). Files of a writer that died are removed this long after its last renewal; until
    /// then every node keeps them.
    #[arg(long, env = "COSTD_INTENT_LEASE_SECS", global = true, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(2..))]
    pub intent_lease_secs: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            storage: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            intent_lease_secs: crate::engine::uploads::DEFAULT_INTENT_LEASE.as_secs(),
        }
    }
}

/// The secret key never shows in logs.
impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("storage", &self.storage)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("intent_lease_secs", &self.intent_lease_secs)
            .finish_non_exhaustive()
    }
}

impl StorageSettings {
    /// The upload files these settings name, with their in-process readers; local ones under `data_dir`.
    pub fn open(
        &self,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<std::sync::Arc<crate::engine::uploads::UploadFiles>> {
        let options = crate::engine::storage::S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
        };
        let spool = data_dir.join("uploads");
        let storage = crate::engine::storage::Storage::open(self.storage.as_deref(), &options, &spool)?;
        let lease = std::time::Duration::from_secs(self.intent_lease_secs);
        Ok(crate::engine::uploads::UploadFiles::with_lease(spool, storage, lease))
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API. On an empty store, creates an account, a "Default" workspace and a read/write token.
    Serve(ServeSettings),
    /// Manage accounts (tenants).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// An account's user directory: who `user_tokens` on alerts and notifications reach.
    #[command(subcommand)]
    User(UserCommand),
    /// Import a cost CSV (FOCUS columns; `.csv.gz` and `-` for stdin work) into a custom-provider integration.
    Import(ImportSettings),
    /// Print an account's costs, as `GET /v2/costs` computes them for its tokens.
    Query(QuerySettings),
    /// MSP invoices: create one for a managed account and period, list them, write one's PDF or CSV.
    #[command(subcommand)]
    Invoice(InvoiceCommand),
    /// Signed download links (invoice PDFs and CSVs).
    #[command(subcommand)]
    Links(LinksCommand),
    /// Sync bucket integrations (AWS and Azure cost exports) now: every one, or the one named.
    Sync(SyncSettings),
    /// Apply the metadata store's migrations and exit.
    Migrate,
}

/// Settings of `costd sync`.
#[derive(Debug, Clone, Args)]
pub struct SyncSettings {
    /// The integration to sync (`intgr_…`); default: every bucket integration of every account.
    #[arg(long)]
    pub integration: Option<String>,
    /// Load every billing period the export lists again, not only the current and previous month.
    #[arg(long)]
    pub backfill: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// `costd links …`.
#[derive(Debug, Subcommand)]
pub enum LinksCommand {
    /// Revoke every download link issued so far, on every node: the signing key is replaced (links made
    /// afterwards work as before). For a leaked link, or as a routine key rotation.
    Revoke,
}

/// Settings of `costd serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address to listen on; port 0 picks a free port (printed at start-up).
    #[arg(long, env = "COSTD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL used in pagination links (e.g. `https://costs.example.com`).
    /// Default: `http://` plus the request's Host header.
    #[arg(long, env = "COSTD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long (ms) an authenticated API token is trusted before the store is asked again; a revoked
    /// token stops working within this time. 0 asks the store on every request.
    #[arg(long, env = "COSTD_AUTH_CACHE_TTL_MS", default_value_t = 1000)]
    pub auth_cache_ttl_ms: u64,
    /// Largest upload accepted, in bytes of (decompressed) CSV; a larger one is refused with 413 and leaves
    /// nothing behind. 0 means no limit. `costd import` has no limit.
    #[arg(long, env = "COSTD_MAX_UPLOAD_BYTES", default_value_t = 8 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// A costs query still running after this many seconds is stopped (503).
    #[arg(long, env = "COSTD_QUERY_TIMEOUT_SECS", default_value_t = 300)]
    pub query_timeout_secs: u64,
    /// How long (s) the file of a replaced or deleted upload is kept for queries of other processes
    /// (PostgreSQL nodes, `costd query`) that may still read it. Queries of this process are tracked
    /// exactly; this must exceed the query timeout.
    #[arg(long, env = "COSTD_FILE_GRACE_SECS", default_value_t = 900)]
    pub file_grace_secs: u64,
    /// SMTP server invoices are sent through: `smtp://host:25` (add `?tls=required` for STARTTLS) or
    /// `smtps://user:password@host:465`. Without it, sending an invoice answers 400.
    #[arg(long, env = "COSTD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender address of invoice emails (replies go to the billing profile's first billing email).
    #[arg(long, env = "COSTD_SMTP_FROM", default_value = "costd <invoices@localhost>")]
    pub smtp_from: String,
    /// How long (s) an invoice download link works.
    #[arg(long, env = "COSTD_DOWNLOAD_URL_TTL_SECS", default_value_t = 3600)]
    pub download_url_ttl_secs: u64,
    /// How long (s) a finished cost data export and its file are kept.
    #[arg(long, env = "COSTD_DATA_EXPORT_RETENTION_SECS", default_value_t = 86400)]
    pub data_export_retention_secs: u64,
    /// How often (s) bucket integrations are synced from their exports; 0 turns the loop off (`costd sync`
    /// and "Sync now" still work). With several nodes, one syncs at a time.
    #[arg(long, env = "COSTD_SYNC_INTERVAL_SECS", default_value_t = 3600)]
    pub sync_interval_secs: u64,
    /// How often (s) budget alerts are evaluated for accounts whose costs changed (and all of them once a
    /// day); an upload on this node triggers an evaluation at once. 0 turns alerts off on this node.
    #[arg(long, env = "COSTD_ALERT_INTERVAL_SECS", default_value_t = 60)]
    pub alert_interval_secs: u64,
    /// A webhook host alerts may call although it resolves to a private, loopback or link-local address
    /// (an internal chat server): `host` or `host:port`; repeat or separate with commas.
    #[arg(long = "allow-webhook-host", env = "COSTD_ALLOW_WEBHOOK_HOSTS", value_delimiter = ',')]
    pub allow_webhook_hosts: Vec<String>,
    /// The first retry of a failed alert delivery waits this long (s); each next one twice as long, at most
    /// an hour, 12 attempts in all.
    #[arg(long, env = "COSTD_ALERT_RETRY_SECS", default_value_t = 30)]
    pub alert_retry_secs: u64,
}

/// Settings of `costd import`.
#[derive(Debug, Clone, Args)]
pub struct ImportSettings {
    /// The custom-provider integration (`accss_crdntl_…`) the costs belong to.
    #[arg(long)]
    pub integration: String,
    /// The CSV file, gzip-compressed or not; `-` reads standard input.
    pub file: std::path::PathBuf,
    /// The upload's filename (an earlier upload of the same name is replaced). Default: the file's name.
    #[arg(long)]
    pub filename: Option<String>,
    /// Hide the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Settings of `costd query`: the flags of `GET /v2/costs`, with the same defaults and checks.
#[derive(Debug, Clone, Args)]
pub struct QuerySettings {
    /// The account (`acct_…`) whose view to compute: a managed account sees its rules applied.
    #[arg(long)]
    pub account: String,
    /// A VQL filter, e.g. `costs.service = 'EC2'`.
    #[arg(long)]
    pub filter: Option<String>,
    /// Comma-separated groupings (default provider,service,account_id).
    #[arg(long)]
    pub groupings: Option<String>,
    /// day, week, month or quarter (default day).
    #[arg(long)]
    pub date_bin: Option<String>,
    /// First day, e.g. 2024-07-01 (default: the 1st of this month).
    #[arg(long)]
    pub start_date: Option<String>,
    /// Last day (default: the end of this month).
    #[arg(long)]
    pub end_date: Option<String>,
    /// asc or desc by date (default desc).
    #[arg(long)]
    pub order: Option<String>,
    /// Only the integrations of this workspace.
    #[arg(long)]
    pub workspace: Option<String>,
    /// Show credits (hidden by default, as in the API).
    #[arg(long)]
    pub include_credits: bool,
    /// Sum what was billed (FOCUS BilledCost) instead of the amortized EffectiveCost (the API's default).
    #[arg(long)]
    pub billed: bool,
    /// table, csv or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// `costd account …`
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create a top-level account with a "Default" workspace; prints its `acct_` token.
    Create {
        /// The account's name.
        #[arg(long)]
        name: String,
    },
}

/// `costd user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to an account's directory; prints its `usr_` token.
    Add {
        /// The account (`acct_…`).
        #[arg(long)]
        account: String,
        /// The user's email address: where alerts that name the user go.
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Owner, Admin (the default), Editor, "Integration Owner" or Viewer: what tokens the user owns may do.
        #[arg(long)]
        role: Option<String>,
    },
    /// List an account's users: token, email, role, name.
    List {
        /// The account (`acct_…`).
        #[arg(long)]
        account: String,
    },
}

/// `costd invoice …`: the same service as `/v2/invoices`, acting as the MSP account given.
#[derive(Debug, Subcommand)]
pub enum InvoiceCommand {
    /// Create a draft invoice of a managed account for a period; prints its number, token and total.
    Create {
        /// The MSP account (`acct_…`) that invoices.
        #[arg(long)]
        account: String,
        /// The managed account (`acct_…`) invoiced.
        #[arg(long)]
        managed_account: String,
        /// First day of the billing period (YYYY-MM-DD).
        #[arg(long)]
        start: String,
        /// Last day of the billing period (YYYY-MM-DD), included.
        #[arg(long)]
        end: String,
    },
    /// List the MSP account's invoices, newest first.
    List {
        #[arg(long)]
        account: String,
        /// Only this managed account's invoices.
        #[arg(long)]
        managed_account: Option<String>,
    },
    /// Write an invoice's PDF or CSV to a file (default: its number, e.g. INV-000001.pdf).
    Download {
        #[arg(long)]
        account: String,
        /// The invoice (`invc_…`).
        #[arg(long)]
        invoice: String,
        /// pdf or csv.
        #[arg(long, default_value = "pdf")]
        format: String,
        /// Where to write it (`-`: stdout).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// `costd token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an API token for an account; the secret is printed once and stored only as a SHA-256 hash.
    Create {
        /// The account (`acct_…`) the token acts for.
        #[arg(long)]
        account: String,
        /// Comma-separated scopes: `read`, `write` or `read,write`.
        #[arg(long, default_value = "read,write")]
        scope: String,
        /// A description shown by `GET /v2/me`.
        #[arg(long, default_value = "API token")]
        description: String,
        /// The directory user (`usr_…`, `costd user add`) who owns the token: their role bounds what it may
        /// do (a Viewer reads only; an Editor cannot manage users or integrations). Default: the account's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token, given its secret or its id (`tkn_…`).
    Revoke {
        /// The token's secret or id.
        secret_or_id: String,
    },
}
