//! The metadata store: accounts, API tokens, workspaces, billing rules and every other resource's metadata.
//!
//! The entities it returns are model types (`model::upload::Upload`, `model::invoice::Invoice`, …),
//! re-exported here; what is the store's own are its inputs and outcomes (`UploadCommit`, `InvoiceChange`,
//! `Paged`, locks and file intents).
//!
//! [`Store`] is the one interface the rest of costd uses (the sum of one trait per resource). Two backends implement it, picked from the URL
//! scheme by [`connect`]: [`sqlite`] (the zero-setup default) and [`postgres`] (production). Each owns its
//! migrations, so dialect differences stay in DDL; the queries themselves are the SQL both dialects share,
//! written once as plain Rust in `backend/` (one file per resource) and compiled once per backend (each
//! declares it with its own sqlx database type), with the row types both read in `sql`. Every query that reads or changes a tenant's data takes the account token,
//! so one account can never reach another's rows: a foreign token simply finds nothing.

use std::sync::Arc;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

use costd_model::billing_profile::BillingProfileSettings;
use costd_model::billing_rule::RuleColumns;
use costd_model::invoice::{InvoiceDocument, InvoiceStatus};
pub use costd_model::managed_account::ManagedAccountSettings;
use costd_model::token::{
    AccountToken, AuditLogToken, BillingProfileToken, BusinessMetricToken, IntegrationToken, InvoiceToken, RuleToken,
    Scopes, SegmentToken, UploadToken, VirtualTagToken,
};
use costd_model::workspace::WorkspaceSettings;

pub use costd_model::account::{Account, Principal};
pub use costd_model::billing_profile::BillingProfile;
pub use costd_model::billing_rule::BillingRuleRow;
pub use costd_model::data_export::DataExport;
pub use costd_model::integration::Integration;
pub use costd_model::invoice::{Invoice, NewInvoice};
pub use costd_model::managed_account::ManagedAccount;
pub use costd_model::report::{ReportObject, ReportObjectFields, ReportObjectFilter};
pub use costd_model::upload::Upload;
pub use costd_model::user::User;
pub use costd_model::workspace::Workspace;

pub mod postgres;
mod sql;
pub mod sqlite;
pub mod wing;

/// Where the metadata and cost data live (the flags are `config::StoreArgs`).
#[derive(Clone)]
pub struct StoreSettings {
    /// Directory holding the SQLite metadata file, the Parquet cost files and the bootstrap token.
    pub data_dir: PathBuf,
    /// Metadata database: `sqlite://PATH` or `postgres://USER@HOST/DB`; none: `<data-dir>/costd.sqlite3`.
    pub database_url: Option<String>,
    /// Most connections the metadata pool opens.
    pub db_max_connections: u32,
}

impl StoreSettings {
    /// The database URL in force: the flag, or the SQLite file inside the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("costd.sqlite3").display()),
        }
    }
}

/// Database URLs can carry a password: Debug shows the scheme and host, never the credentials.
impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.database_url();
        let shown = match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => url.clone(),
            },
            None => url.clone(),
        };
        f.debug_struct("StoreSettings")
            .field("data_dir", &self.data_dir)
            .field("database_url", &shown)
            .field("db_max_connections", &self.db_max_connections)
            .finish()
    }
}

/// Domain types the store keeps as text (typed tokens, exact amounts).
pub(crate) trait StoredText: Sized {
    fn to_stored(&self) -> String;
    fn from_stored(text: String) -> Result<Self, sqlx::error::BoxDynError>;
}

/// A model value as the store binds and reads it: its text, on either backend. The model crate knows nothing
/// of sqlx (and the orphan rule forbids implementing sqlx's traits on its types here), so the SQL binds
/// `Text(&token)` and rows decode `Text<AccountToken>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Text<T>(pub T);

impl<T> Text<T> {
    /// The values of a column read as text.
    pub(crate) fn all(texts: Vec<Text<T>>) -> Vec<T> {
        texts.into_iter().map(|t| t.0).collect()
    }
}

impl<DB: sqlx::Database, T> sqlx::Type<DB> for Text<T>
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: sqlx::Database, T: Bind> sqlx::Encode<'q, DB> for Text<T>
where
    Option<String>: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <Option<String> as sqlx::Encode<'q, DB>>::encode_by_ref(&self.0.stored(), buf)
    }
}

/// What `Text` binds: a stored-text value, a reference to one, or an optional one (`None` binds NULL).
pub(crate) trait Bind {
    fn stored(&self) -> Option<String>;
}

impl<T: Bind> Bind for &T {
    fn stored(&self) -> Option<String> {
        (*self).stored()
    }
}

impl<T: Bind> Bind for Option<T> {
    fn stored(&self) -> Option<String> {
        self.as_ref().and_then(Bind::stored)
    }
}

impl<'r, DB: sqlx::Database, T: StoredText> sqlx::Decode<'r, DB> for Text<T>
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Text(T::from_stored(<String as sqlx::Decode<'r, DB>>::decode(value)?)?))
    }
}

macro_rules! token_text {
    ($($t:ty),*) => {$(
        impl StoredText for $t {
            fn to_stored(&self) -> String {
                self.as_str().to_string()
            }
            fn from_stored(text: String) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(text.into())
            }
        }
    )*};
}

macro_rules! bind_as_text {
    ($($t:ty),*) => {$(
        impl Bind for $t {
            fn stored(&self) -> Option<String> {
                Some(self.to_stored())
            }
        }
    )*};
}

bind_as_text!(
    AccountToken,
    RuleToken,
    IntegrationToken,
    UploadToken,
    BillingProfileToken,
    InvoiceToken,
    VirtualTagToken,
    BusinessMetricToken,
    SegmentToken,
    AuditLogToken,
    costd_model::amount::Amount
);

token_text!(
    AccountToken,
    RuleToken,
    IntegrationToken,
    UploadToken,
    BillingProfileToken,
    InvoiceToken,
    VirtualTagToken,
    BusinessMetricToken,
    SegmentToken,
    AuditLogToken
);

/// Amounts are stored as the exact text the API shows (`1234.56`): never summed by the database, and never
/// a float on their way there or back.
impl StoredText for costd_model::amount::Amount {
    fn to_stored(&self) -> String {
        self.to_string()
    }
    fn from_stored(text: String) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(costd_model::amount::Amount::parse("stored amount", &text)?)
    }
}

/// A shared handle on the store.
pub type DynStore = Arc<dyn Store>;

/// An API token to store; its secret never reaches the store, only the hash.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub account_token: AccountToken,
    pub user_token: String,
    pub secret_hash: String,
    pub scopes: Scopes,
    pub description: String,
}

pub use costd_model::PageRequest;

/// One page of a list and the size of the whole list.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
}

impl<T> Paged<T> {
    /// `page` of a whole list read at once (short lists, or lists made in memory).
    pub fn of(all: Vec<T>, page: PageRequest) -> Paged<T> {
        let total = all.len() as i64;
        let items = all.into_iter().skip(page.offset() as usize).take(page.limit as usize).collect();
        Paged { items, total }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportObjectDeletion {
    Deleted,
    NotFound,
    /// Refused: a folder with this many reports or folders in it.
    NotEmpty(i64),
    /// Refused by a foreign key: a cost report these (noun, token) follow.
    InUse(Vec<(String, String)>),
}

/// What committing an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadCommit {
    /// Recorded; the tokens of earlier uploads with the same filename, now replaced (and retired).
    Committed { replaced: Vec<UploadToken> },
    /// The integration no longer exists (deleted while the file was being read): nothing recorded.
    IntegrationGone,
    /// The upload's file intent is gone (the janitor cleared it after its lease ran out, and with it the
    /// files): nothing recorded.
    IntentLost,
}

/// A file being written to shared storage that no committed row names yet (see `service::files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIntent {
    /// The upload (or export) token the files are named after.
    pub token: String,
    /// What writes them: [`FileIntent::UPLOAD`] or [`FileIntent::EXPORT`].
    pub kind: String,
    /// Which process writes them (host, pid), for logs.
    pub node: String,
    /// Until when the writer vouches for itself, in milliseconds since the Unix epoch.
    pub lease_until_ms: i64,
}

impl FileIntent {
    pub const UPLOAD: &'static str = "upload";
    pub const EXPORT: &'static str = "export";
}

/// What deleting a billing profile did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileDeletion {
    Deleted,
    NotFound,
    /// Refused: this many managed accounts are linked to it.
    InUse(i64),
}

/// What creating an invoice did.
#[derive(Debug, Clone)]
pub enum InvoiceCreate {
    Created(Invoice),
    /// Refused, numbering nothing: this invoice of the same account already covers part of the period.
    Overlaps(Invoice),
}

/// What a conditional change to an invoice did.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one value per status change, moved once: a box would buy nothing
pub enum InvoiceChange {
    Done(Invoice),
    /// Refused: the invoice is in this status.
    Refused(InvoiceStatus),
    NotFound,
}

/// What deleting a workspace did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceDeletion {
    Deleted,
    NotFound,
    /// Refused: an account keeps at least one workspace.
    LastWorkspace,
}

/// The metadata store: one trait per resource, each implemented by both backends (`backend/<resource>.rs`, compiled for each).
/// Every method is tenant-scoped by `account` where data belongs to a tenant. Methods of the parts are
/// callable on `dyn Store` without importing them.
#[async_trait]
pub trait Store:
    AccountStore
    + TokenStore
    + WorkspaceStore
    + RuleStore
    + IntegrationStore
    + UploadStore
    + ManagedAccountStore
    + BillingProfileStore
    + InvoiceStore
    + ReportStore
    + NotificationStore
    + ExportStore
    + UserStore
    + VirtualTagStore
    + ExchangeRateStore
    + BusinessMetricStore
    + SegmentStore
    + TagSettingStore
    + AuditStore
    + wing::RecordStore
    + Send
    + Sync
    + 'static
{
    /// Closes every connection; later calls fail. Used at shutdown (and by tests of a broken store).
    async fn close(&self);

    /// Takes the lock `name` for work that one process of a deployment must do at a time (the janitor),
    /// unless another process holds it (`None`). Released when the returned guard drops, or when its
    /// holder dies. PostgreSQL: a transaction-scoped advisory lock; SQLite (one process): always granted.
    async fn try_lock(&self, name: &str) -> anyhow::Result<Option<StoreLock>>;
}

/// A held [`Store::try_lock`] lock; dropping it releases the lock (on PostgreSQL, once the pool rolls the
/// dropped transaction back, a moment later); [`StoreLock::release`] releases it before it returns.
pub struct StoreLock {
    held: Option<Box<dyn Releasable>>,
}

/// What holds a lock, and how to let it go at once.
pub(crate) trait Releasable: Send {
    fn release(self: Box<Self>) -> futures::future::BoxFuture<'static, ()>;
}

impl Releasable for () {
    fn release(self: Box<Self>) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

impl Releasable for std::fs::File {
    fn release(self: Box<Self>) -> futures::future::BoxFuture<'static, ()> {
        // Closing the file ends its lock.
        drop(self);
        Box::pin(async {})
    }
}

impl Releasable for sqlx::Transaction<'static, sqlx::Postgres> {
    fn release(self: Box<Self>) -> futures::future::BoxFuture<'static, ()> {
        // Ending the transaction ends its transaction-scoped advisory lock.
        Box::pin(async move {
            let _ = self.rollback().await;
        })
    }
}

impl StoreLock {
    pub(crate) fn new(held: impl Releasable + 'static) -> StoreLock {
        StoreLock { held: Some(Box::new(held)) }
    }

    /// Releases the lock now (a pass that may run again at once must not find its own lock still held).
    pub async fn release(mut self) {
        if let Some(held) = self.held.take() {
            held.release().await;
        }
    }
}

/// The account's user directory.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user; an address already in the account is a unique violation (409).
    async fn create_user(&self, account: &AccountToken, user: &costd_model::user::NewUser) -> anyhow::Result<User>;
    /// A page of the account's users, oldest first.
    async fn list_users(&self, account: &AccountToken, page: PageRequest) -> anyhow::Result<Paged<User>>;
    async fn get_user(&self, account: &AccountToken, token: &str) -> anyhow::Result<Option<User>>;
    /// The account's users among `tokens` (one read; unknown tokens are left out), in `tokens`' order.
    async fn users_by_tokens(&self, account: &AccountToken, tokens: &[String]) -> anyhow::Result<Vec<User>>;
}

/// Accounts (tenants).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account, its owner user and its "Default" workspace in one transaction.
    async fn create_account(&self, name: &str, parent: Option<&AccountToken>) -> anyhow::Result<Account>;
    async fn get_account(&self, token: &AccountToken) -> anyhow::Result<Option<Account>>;
    async fn count_accounts(&self) -> anyhow::Result<i64>;
}

/// API tokens, kept as hashes of their secrets.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a token; returns its public id (`tkn_…`).
    async fn create_api_token(&self, token: &NewApiToken) -> anyhow::Result<String>;
    /// The live (not revoked) token with this secret hash.
    async fn principal_for_secret_hash(&self, secret_hash: &str) -> anyhow::Result<Option<Principal>>;
    /// Revokes the token with this secret hash or id; `None` when no live token matched.
    async fn revoke_api_token(&self, secret_hash_or_id: &str) -> anyhow::Result<Option<RevokedToken>>;
    /// Stores a web-console session acting with the API token `token_id` (`tkn_…`) until `expires_at`
    /// (Unix seconds); expired sessions are dropped on the way.
    async fn create_console_session(&self, secret_hash: &str, token_id: &str, expires_at: i64) -> anyhow::Result<()>;
    /// The live session with this secret hash, as of `now` (Unix seconds): its token's caller (none once the
    /// token is revoked) and the managed account it looks at, if any.
    async fn console_session(&self, secret_hash: &str, now: i64) -> anyhow::Result<Option<ConsoleSession>>;
    /// Sets (or clears) the managed account a session looks at; false when no such session.
    async fn set_console_session_view(&self, secret_hash: &str, view: Option<&AccountToken>) -> anyhow::Result<bool>;
    /// Ends a session (signing out).
    async fn delete_console_session(&self, secret_hash: &str) -> anyhow::Result<()>;
}

/// A signed-in web-console session.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The API token it acts with.
    pub principal: Principal,
    /// The managed account of `principal`'s account it looks at instead, if any.
    pub view: Option<AccountToken>,
}

/// An account's workspaces.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    async fn create_workspace(&self, account: &AccountToken, settings: &WorkspaceSettings)
        -> anyhow::Result<Workspace>;
    /// A page of the account's workspaces, oldest first; `name_like` filters by name, case-insensitively.
    async fn list_workspaces(
        &self,
        account: &AccountToken,
        page: PageRequest,
        name_like: Option<&str>,
    ) -> anyhow::Result<Paged<Workspace>>;
    async fn get_workspace(&self, account: &AccountToken, token: &str) -> anyhow::Result<Option<Workspace>>;
    async fn update_workspace(
        &self,
        account: &AccountToken,
        token: &str,
        settings: &WorkspaceSettings,
    ) -> anyhow::Result<Option<Workspace>>;
    async fn delete_workspace(&self, account: &AccountToken, token: &str) -> anyhow::Result<WorkspaceDeletion>;
}

/// An account's billing rules.
#[async_trait]
pub trait RuleStore: Send + Sync {
    async fn create_billing_rule(
        &self,
        account: &AccountToken,
        created_by: &str,
        rule: &RuleColumns,
    ) -> anyhow::Result<BillingRuleRow>;
    /// A page of the account's billing rules, oldest first.
    async fn list_billing_rules(
        &self,
        account: &AccountToken,
        page: PageRequest,
    ) -> anyhow::Result<Paged<BillingRuleRow>>;
    async fn get_billing_rule(
        &self,
        account: &AccountToken,
        token: &RuleToken,
    ) -> anyhow::Result<Option<BillingRuleRow>>;
    /// The account's rules among `tokens`, in one read (unknown tokens are left out; any order).
    async fn get_billing_rules(
        &self,
        account: &AccountToken,
        tokens: &[RuleToken],
    ) -> anyhow::Result<Vec<BillingRuleRow>>;
    async fn update_billing_rule(
        &self,
        account: &AccountToken,
        token: &RuleToken,
        rule: &RuleColumns,
    ) -> anyhow::Result<Option<BillingRuleRow>>;
    /// False when the account has no such rule.
    async fn delete_billing_rule(&self, account: &AccountToken, token: &RuleToken) -> anyhow::Result<bool>;
    /// Every billing rule of the account with `apply_to_all`, oldest first.
    async fn apply_to_all_rules(&self, account: &AccountToken) -> anyhow::Result<Vec<BillingRuleRow>>;
}

/// An account's custom-provider integrations.
#[async_trait]
pub trait IntegrationStore: Send + Sync {
    async fn create_integration(
        &self,
        account: &AccountToken,
        name: &str,
        description: Option<&str>,
    ) -> anyhow::Result<Integration>;
    /// A page of the account's integrations, oldest first, optionally filtered by provider and name.
    async fn list_integrations(
        &self,
        account: &AccountToken,
        page: PageRequest,
        provider: Option<&str>,
        account_identifier: Option<&str>,
    ) -> anyhow::Result<Paged<Integration>>;
    async fn get_integration(
        &self,
        account: &AccountToken,
        token: &IntegrationToken,
    ) -> anyhow::Result<Option<Integration>>;
    /// The integration with this token in any account, with its account (for the admin CLI).
    async fn find_integration(&self, token: &IntegrationToken) -> anyhow::Result<Option<(Integration, Account)>>;
    /// Replaces the integration's workspaces (all must belong to the account: checked by the caller).
    async fn set_integration_workspaces(
        &self,
        account: &AccountToken,
        token: &IntegrationToken,
        workspace_tokens: &[String],
    ) -> anyhow::Result<Option<Integration>>;
    /// Deletes the integration and its uploads, retiring their files; returns the deleted uploads' tokens
    /// (`None`: no such integration).
    async fn delete_integration(
        &self,
        account: &AccountToken,
        token: &IntegrationToken,
    ) -> anyhow::Result<Option<Vec<UploadToken>>>;
    /// Records a bucket integration (`status` `pending` until its first sync) with its export's location (JSON)
    /// and its sealed credentials; the token is chosen by the caller, which sealed the credentials for it.
    async fn create_bucket_integration(&self, new: &NewBucketIntegrationRow) -> anyhow::Result<Integration>;
    /// Replaces a bucket integration's sealed credentials (false: no such integration in the account).
    async fn set_integration_secret(
        &self,
        account: &AccountToken,
        token: &IntegrationToken,
        secret: &str,
    ) -> anyhow::Result<bool>;
    /// The sealed credentials of a bucket integration (`None`: no such integration, or not a bucket one).
    async fn integration_secret(&self, token: &IntegrationToken) -> anyhow::Result<Option<String>>;
    /// Every bucket integration of every account, oldest first: what the sync loop visits.
    async fn bucket_integrations(&self) -> anyhow::Result<Vec<(AccountToken, IntegrationToken)>>;
    /// Records a sync's outcome on the integration: its status, when it last completed, its last error
    /// (`None` clears it). `synced_at: None` keeps the previous completion time.
    async fn record_sync(
        &self,
        token: &IntegrationToken,
        status: &str,
        synced_at: Option<DateTime<Utc>>,
        error: Option<&str>,
    ) -> anyhow::Result<()>;
    /// The manifest each of the integration's billing periods was last loaded from.
    async fn synced_periods(&self, token: &IntegrationToken) -> anyhow::Result<Vec<SyncedPeriod>>;
    /// Records (or replaces) the manifest a period was loaded from.
    async fn set_synced_period(&self, token: &IntegrationToken, period: &SyncedPeriod) -> anyhow::Result<()>;
}

/// A bucket integration as it is recorded.
#[derive(Debug, Clone)]
pub struct NewBucketIntegrationRow {
    pub token: IntegrationToken,
    pub account: AccountToken,
    /// `aws` or `azure`.
    pub provider: String,
    pub name: String,
    /// `model::bucket_export::ExportLocation` as JSON.
    pub location: String,
    /// The credentials as `service::secrets` sealed them.
    pub secret: String,
}

/// The manifest one billing period of a bucket integration was last loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedPeriod {
    /// `YYYY-MM`.
    pub period: String,
    pub manifest_key: String,
    pub manifest_etag: Option<String>,
    /// AWS's `executionId`, Azure's `runId`.
    pub manifest_id: String,
    /// The upload holding the period's rows.
    pub upload_token: String,
    pub rows: i64,
    pub synced_at: DateTime<Utc>,
}

/// One message of an alert to one recipient, as it is first written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub account: AccountToken,
    /// The alert that fired.
    pub source_token: String,
    /// Which firing: the same key is written once per recipient, however often it is evaluated.
    pub event_key: String,
    /// An email address or a webhook URL.
    pub recipient: String,
    /// The message (JSON), rendered per channel at delivery.
    pub message: String,
}

/// A message in the outbox with its delivery so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub token: String,
    pub account: AccountToken,
    pub source_token: String,
    pub event_key: String,
    pub recipient: String,
    pub message: String,
    /// `pending`, `delivered` or `failed` (given up after the last retry).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Failed; tried again at `next_attempt_ms`.
    Retry {
        next_attempt_ms: i64,
        error: String,
    },
    /// Failed for the last time.
    Failed {
        error: String,
    },
}

/// The alerts' outbox: messages written once per firing and recipient, delivered with retries.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Writes the messages not written before (by event key and recipient); answers how many were new.
    async fn enqueue_notifications(&self, messages: &[NewNotification], now_ms: i64) -> anyhow::Result<u64>;
    /// Pending messages due at `now_ms`: the oldest `per_account` of each account, the accounts' first
    /// messages before their second (oldest first within a turn), at most `limit`.
    async fn due_notifications(&self, now_ms: i64, per_account: i64, limit: i64) -> anyhow::Result<Vec<Notification>>;
    /// Takes a due message for one attempt, until `lease_until_ms` (so no other worker sends it meanwhile);
    /// false when another worker took it first.
    async fn claim_notification(&self, id: i64, due_ms: i64, lease_until_ms: i64) -> anyhow::Result<bool>;
    /// Records an attempt's outcome.
    async fn finish_notification(&self, id: i64, outcome: &DeliveryOutcome) -> anyhow::Result<()>;
    /// The accounts that have budget alerts.
    async fn accounts_with_alerts(&self) -> anyhow::Result<Vec<AccountToken>>;
    /// Of those, the ones that own or (managed accounts) see an integration with an upload committed at or
    /// after `since`: their alerts' data changed.
    async fn alert_accounts_changed_since(&self, since: DateTime<Utc>) -> anyhow::Result<Vec<AccountToken>>;
    /// A page of an account's messages, newest first, narrowed to one alert.
    async fn list_notifications(
        &self,
        account: &AccountToken,
        source_token: Option<&str>,
        page: PageRequest,
    ) -> anyhow::Result<Paged<Notification>>;
}

/// Cost uploads and the retired files the janitor removes.
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Records a finished upload in one transaction, replacing (and retiring) any upload of the same filename.
    /// Its `catalog` (what discovery lists) is recorded with it.
    async fn commit_upload(
        &self,
        account: &AccountToken,
        upload: &Upload,
        catalog: &costd_model::catalog::Catalog,
    ) -> anyhow::Result<UploadCommit>;
    /// The distinct services (`kind` "service") or tag pairs (`kind` "tag", of `name` when given) of the
    /// account's live uploads, each with the integration it came from.
    async fn upload_dimensions(
        &self,
        account: &AccountToken,
        kind: &str,
        name: Option<&str>,
    ) -> anyhow::Result<Vec<(IntegrationToken, String, String)>>;
    /// Live uploads committed before discovery existed (none of their dimensions recorded).
    async fn uploads_without_dimensions(&self) -> anyhow::Result<Vec<UploadToken>>;
    /// Records an upload's catalog after the fact (see [`UploadStore::uploads_without_dimensions`]).
    async fn add_upload_dimensions(
        &self,
        upload: &UploadToken,
        catalog: &costd_model::catalog::Catalog,
    ) -> anyhow::Result<()>;
    /// A page of an integration's uploads, oldest first.
    async fn list_uploads(
        &self,
        account: &AccountToken,
        integration: &IntegrationToken,
        page: PageRequest,
    ) -> anyhow::Result<Paged<Upload>>;
    /// Deletes an upload and retires its file; false when the account has no such upload in that integration.
    async fn delete_upload(
        &self,
        account: &AccountToken,
        integration: &IntegrationToken,
        upload: &UploadToken,
    ) -> anyhow::Result<bool>;
    /// The live uploads of these integrations of the account (what a costs query reads), in one statement.
    async fn live_uploads(
        &self,
        account: &AccountToken,
        integrations: &[IntegrationToken],
    ) -> anyhow::Result<Vec<Upload>>;
    /// Every live upload's token, in every account (for the janitor's sweep of orphan files).
    async fn all_upload_tokens(&self) -> anyhow::Result<Vec<UploadToken>>;
    /// Uploads whose files were retired (replaced or deleted), with when, oldest first.
    async fn retired_uploads(&self) -> anyhow::Result<Vec<(UploadToken, DateTime<Utc>)>>;
    /// Forgets retired uploads whose files are gone.
    async fn forget_retired_uploads(&self, tokens: &[UploadToken]) -> anyhow::Result<()>;
    /// Records that `intent`'s files are about to be written (before their first byte is).
    async fn begin_file_intent(&self, intent: &FileIntent) -> anyhow::Result<()>;
    /// Extends an intent's lease; false when the intent is gone (committed, ended or cleared).
    async fn renew_file_intent(&self, token: &str, lease_until_ms: i64) -> anyhow::Result<bool>;
    /// Ends an intent whose files were removed (or never written).
    async fn end_file_intent(&self, token: &str) -> anyhow::Result<()>;
    /// Every intent, in every account.
    async fn file_intents(&self) -> anyhow::Result<Vec<FileIntent>>;
    /// Deletes the intent `token` if its lease ended before `now_ms`: true when it did, and then nobody can
    /// commit its files any more (a commit needs the intent).
    async fn clear_expired_file_intent(&self, token: &str, now_ms: i64) -> anyhow::Result<bool>;
}

/// An MSP's managed accounts with their integration and rule links.
#[async_trait]
pub trait ManagedAccountStore: Send + Sync {
    /// Creates a managed account of `parent` (with its "Default" workspace and an owner user).
    async fn create_managed_account(
        &self,
        parent: &AccountToken,
        settings: &ManagedAccountSettings,
    ) -> anyhow::Result<ManagedAccount>;
    /// A page of `parent`'s managed accounts, oldest first, with their links (a fixed number of reads).
    async fn list_managed_accounts(
        &self,
        parent: &AccountToken,
        page: PageRequest,
    ) -> anyhow::Result<Paged<ManagedAccount>>;
    /// The managed account `token` of `parent`.
    async fn get_managed_account(
        &self,
        parent: &AccountToken,
        token: &AccountToken,
    ) -> anyhow::Result<Option<ManagedAccount>>;
    async fn update_managed_account(
        &self,
        parent: &AccountToken,
        token: &AccountToken,
        settings: &ManagedAccountSettings,
    ) -> anyhow::Result<Option<ManagedAccount>>;
    /// Deletes a managed account with its tokens and workspaces; false when `parent` has no such account.
    async fn delete_managed_account(&self, parent: &AccountToken, token: &AccountToken) -> anyhow::Result<bool>;
}

/// An MSP's billing profiles.
#[async_trait]
pub trait BillingProfileStore: Send + Sync {
    async fn create_billing_profile(
        &self,
        account: &AccountToken,
        settings: &BillingProfileSettings,
    ) -> anyhow::Result<BillingProfile>;
    /// A page of the account's profiles, oldest first.
    async fn list_billing_profiles(
        &self,
        account: &AccountToken,
        page: PageRequest,
    ) -> anyhow::Result<Paged<BillingProfile>>;
    async fn get_billing_profile(
        &self,
        account: &AccountToken,
        token: &BillingProfileToken,
    ) -> anyhow::Result<Option<BillingProfile>>;
    async fn update_billing_profile(
        &self,
        account: &AccountToken,
        token: &BillingProfileToken,
        settings: &BillingProfileSettings,
    ) -> anyhow::Result<Option<BillingProfile>>;
    /// Deletes a profile no managed account is linked to.
    async fn delete_billing_profile(
        &self,
        account: &AccountToken,
        token: &BillingProfileToken,
    ) -> anyhow::Result<ProfileDeletion>;
}

/// A virtual tag with the version its row had when read (what an update made from the read names).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVirtualTag {
    pub tag: costd_model::virtual_tag::VirtualTag,
    pub version: i64,
}

/// How a virtual tag's write ended.
#[derive(Debug, Clone, PartialEq)]
pub enum VirtualTagWrite {
    Done(StoredVirtualTag),
    /// The account has a tag of this key already.
    DuplicateKey,
    /// The account has [`costd_model::virtual_tag::MAX_TAGS`] tags already.
    TooMany,
    /// No such tag in the account.
    NotFound,
    /// The tag changed since the version the update was made from (read it again).
    Stale,
}

/// Virtual tags (`/v2/virtual_tag_configs`), per account.
#[async_trait]
pub trait VirtualTagStore: Send + Sync {
    /// Creates a tag unless the account has one of its key or has the most it may.
    async fn create_virtual_tag(
        &self,
        account: &AccountToken,
        created_by: Option<&str>,
        definition: &costd_model::virtual_tag::VirtualTagDefinition,
    ) -> anyhow::Result<VirtualTagWrite>;
    /// Every tag of these accounts, each account's oldest first, the accounts in the order given.
    async fn list_virtual_tags(&self, accounts: &[AccountToken]) -> anyhow::Result<Vec<StoredVirtualTag>>;
    async fn get_virtual_tag(
        &self,
        account: &AccountToken,
        token: &costd_model::token::VirtualTagToken,
    ) -> anyhow::Result<Option<StoredVirtualTag>>;
    /// Replaces a tag's definition if its row is still at `version`.
    async fn update_virtual_tag(
        &self,
        account: &AccountToken,
        token: &costd_model::token::VirtualTagToken,
        version: i64,
        definition: &costd_model::virtual_tag::VirtualTagDefinition,
    ) -> anyhow::Result<VirtualTagWrite>;
    /// false when the account has no such tag.
    async fn delete_virtual_tag(
        &self,
        account: &AccountToken,
        token: &costd_model::token::VirtualTagToken,
    ) -> anyhow::Result<bool>;
}

/// An exchange rate as stored, with when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredExchangeRate {
    pub rate: costd_model::exchange_rate::ExchangeRate,
    pub updated_at: DateTime<Utc>,
}

/// Exchange rates (`/v2/exchange_rates`), per account: one rate per (base, currency, effective day).
#[async_trait]
pub trait ExchangeRateStore: Send + Sync {
    /// Writes `rates` in one transaction (all or nothing); a rate of a (base, currency, day) the account
    /// has already replaces it.
    async fn put_exchange_rates(
        &self,
        account: &AccountToken,
        rates: &[costd_model::exchange_rate::ExchangeRate],
    ) -> anyhow::Result<()>;
    /// One page of the account's rates, newest effective day first, then by base and currency.
    async fn list_exchange_rates(
        &self,
        account: &AccountToken,
        page: PageRequest,
    ) -> anyhow::Result<Paged<StoredExchangeRate>>;
    /// Every rate of `account` from or to `currency` (what converting costs to it needs).
    async fn exchange_rates_with(
        &self,
        account: &AccountToken,
        currency: &str,
    ) -> anyhow::Result<Vec<costd_model::exchange_rate::ExchangeRate>>;
}

/// How a business metric's write ended.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricWrite {
    Done(costd_model::business_metric::BusinessMetric),
    /// No such metric in the account.
    NotFound,
    /// The account has [`costd_model::business_metric::MAX_METRICS`] metrics already.
    TooMany,
    /// An attachment names this token, which is no cost report of the account.
    UnknownReport(String),
}

/// Which of a metric's values a read or a delete takes: days from `start` to `end` (inclusive, either
/// open), of one label (`Some("")`: the unlabelled values) or of any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueRange {
    pub start: Option<chrono::NaiveDate>,
    pub end: Option<chrono::NaiveDate>,
    pub label: Option<String>,
}

/// Business metrics (`/v2/business_metrics`), per account: the metric, its cost-report attachments and its
/// daily values (historical and forecast). A write is one transaction: a bad attachment leaves everything
/// as it was.
#[async_trait]
pub trait BusinessMetricStore: Send + Sync {
    /// Creates a metric from a checked change whose title is set, unless the account has the most it may.
    async fn create_business_metric(
        &self,
        account: &AccountToken,
        created_by: Option<&str>,
        change: &costd_model::business_metric::MetricChange,
    ) -> anyhow::Result<MetricWrite>;
    /// Every metric of the account with its attachments, oldest first (an account has at most
    /// [`costd_model::business_metric::MAX_METRICS`]).
    async fn list_business_metrics(
        &self,
        account: &AccountToken,
    ) -> anyhow::Result<Vec<costd_model::business_metric::BusinessMetric>>;
    async fn get_business_metric(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
    ) -> anyhow::Result<Option<costd_model::business_metric::BusinessMetric>>;
    /// Applies the fields `change` sets; a list set replaces the whole list.
    async fn update_business_metric(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        change: &costd_model::business_metric::MetricChange,
    ) -> anyhow::Result<MetricWrite>;
    /// false when the account has no such metric.
    async fn delete_business_metric(&self, account: &AccountToken, token: &BusinessMetricToken)
        -> anyhow::Result<bool>;
    /// Adds values in one transaction, each replacing the value of its day and label; false when the
    /// account has no such metric.
    async fn put_metric_values(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        kind: costd_model::business_metric::ValueKind,
        values: &[costd_model::business_metric::MetricValue],
    ) -> anyhow::Result<bool>;
    /// The values in `range`, oldest day first, then by label; `None` when the account has no such metric.
    async fn metric_values(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        kind: costd_model::business_metric::ValueKind,
        range: &ValueRange,
    ) -> anyhow::Result<Option<Vec<costd_model::business_metric::MetricValue>>>;
    /// Deletes the values in `range` and answers how many; `None` when the account has no such metric.
    async fn delete_metric_values(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
        kind: costd_model::business_metric::ValueKind,
        range: &ValueRange,
    ) -> anyhow::Result<Option<u64>>;
    /// Replaces the business metrics attached to the cost report `report` (each metric token with its
    /// attachment), in one transaction; answers the first token that is no metric of the account (and then
    /// changes nothing).
    async fn set_report_metrics(
        &self,
        account: &AccountToken,
        report: &str,
        metrics: &[(BusinessMetricToken, costd_model::business_metric::Attachment)],
    ) -> anyhow::Result<Option<String>>;
    /// The labels the metric's values have (historical or forecast), sorted; `None` when no such metric.
    async fn metric_labels(
        &self,
        account: &AccountToken,
        token: &BusinessMetricToken,
    ) -> anyhow::Result<Option<Vec<String>>>;
}

/// Provider tag keys' display flags (`PUT /v2/tags`), per account; a virtual tag's are in its definition.
#[async_trait]
pub trait TagSettingStore: Send + Sync {
    /// Sets `hidden` and `preferred` of each key (`None`: unchanged; a key set first starts false), in one
    /// transaction.
    async fn put_tag_settings(
        &self,
        account: &AccountToken,
        keys: &[String],
        hidden: Option<bool>,
        preferred: Option<bool>,
    ) -> anyhow::Result<()>;
    /// The account's keys with flags: (key, hidden, preferred), by key.
    async fn tag_settings(&self, account: &AccountToken) -> anyhow::Result<Vec<(String, bool, bool)>>;
}

/// An account's segments, read whole, with the version of the tree they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentTree {
    pub version: i64,
    pub segments: Vec<costd_model::segment::Segment>,
}

/// A write of segments and their generated reports, applied whole in one transaction. Reports go first (a
/// new segment names its new report), then segments in the order given (parents before children), then
/// the deletions in the order given (children before parents), each with its report.
#[derive(Debug, Clone, Default)]
pub struct SegmentBatch {
    /// Cost reports to create (the token the service gave them) or to update in place.
    pub reports: Vec<(String, ReportObjectFields)>,
    /// Segments to create or replace, by token.
    pub put: Vec<costd_model::segment::Segment>,
    pub delete: Vec<costd_model::segment::Segment>,
}

/// How a segment write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentWrite {
    Done,
    /// The tree changed since it was read: read it again and redo the write.
    Stale,
    /// A deleted segment's report is followed by these (noun, token): budgets, alerts, notifications.
    ReportInUse(Vec<(String, String)>),
}

/// A token just revoked: whose it was, its id and what it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    pub account: AccountToken,
    pub id: String,
    pub description: String,
}

/// The audit log (`/v2/audit_logs`), per account: entries are added, never changed or removed.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Adds `entry`.
    async fn append_audit(&self, entry: &costd_model::audit::AuditEntry) -> anyhow::Result<()>;
    /// One page of the account's entries that `filter` keeps, newest first.
    async fn list_audit(
        &self,
        account: &AccountToken,
        filter: &costd_model::audit::AuditFilter,
        page: PageRequest,
    ) -> anyhow::Result<Paged<costd_model::audit::AuditEntry>>;
    /// The account's entry `token`, if it has one.
    async fn get_audit(
        &self,
        account: &AccountToken,
        token: &costd_model::token::AuditLogToken,
    ) -> anyhow::Result<Option<costd_model::audit::AuditEntry>>;
}

/// Segments (`/v2/segments`), per account: the tree read and written whole.
#[async_trait]
pub trait SegmentStore: Send + Sync {
    /// Every segment of the account, oldest first, and the tree's version.
    async fn segment_tree(&self, account: &AccountToken) -> anyhow::Result<SegmentTree>;
    /// Applies `batch` if the tree is still at `version`.
    async fn write_segments(
        &self,
        account: &AccountToken,
        version: i64,
        batch: &SegmentBatch,
    ) -> anyhow::Result<SegmentWrite>;
}

/// Cost reports, saved filters and folders, one kind at a time.
#[async_trait]
pub trait ReportStore: Send + Sync {
    async fn create_report_object(
        &self,
        account: &AccountToken,
        kind: costd_model::report::ViewKind,
        fields: &ReportObjectFields,
    ) -> anyhow::Result<ReportObject>;
    /// A page of the account's objects of `kind`, oldest first.
    async fn list_report_objects(
        &self,
        account: &AccountToken,
        kind: costd_model::report::ViewKind,
        filter: &ReportObjectFilter,
        page: PageRequest,
    ) -> anyhow::Result<Paged<ReportObject>>;
    async fn get_report_object(
        &self,
        account: &AccountToken,
        kind: costd_model::report::ViewKind,
        token: &str,
    ) -> anyhow::Result<Option<ReportObject>>;
    async fn update_report_object(
        &self,
        account: &AccountToken,
        kind: costd_model::report::ViewKind,
        token: &str,
        fields: &ReportObjectFields,
    ) -> anyhow::Result<Option<ReportObject>>;
    async fn delete_report_object(
        &self,
        account: &AccountToken,
        kind: costd_model::report::ViewKind,
        token: &str,
    ) -> anyhow::Result<ReportObjectDeletion>;
    /// The cost reports that apply each of these saved filters themselves (not through their folder), as
    /// (saved filter, report) pairs, reports oldest first: one read for a page of filters.
    async fn users_of_saved_filters(
        &self,
        account: &AccountToken,
        tokens: &[String],
    ) -> anyhow::Result<Vec<(String, String)>>;
}

/// Cost data exports.
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Records a pending export, unless the account already has `max_pending` pending (`None`).
    async fn create_data_export(
        &self,
        account: &AccountToken,
        token: &str,
        attributes: &str,
        max_pending: i64,
    ) -> anyhow::Result<Option<DataExport>>;
    async fn get_data_export(&self, account: &AccountToken, token: &str) -> anyhow::Result<Option<DataExport>>;
    /// Marks a pending export completed (with its row count) or failed (with the reason).
    async fn finish_data_export(
        &self,
        token: &str,
        outcome: Result<i64, &str>,
        valid_until: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Exports past their retention.
    async fn expired_data_exports(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<String>>;
    async fn delete_data_export(&self, token: &str) -> anyhow::Result<()>;
    /// Fails exports still pending that started before `started_before` and whose file intent is gone or
    /// its lease ended before `now_ms` (their node stopped), and clears those intents.
    async fn fail_stale_data_exports(
        &self,
        started_before: DateTime<Utc>,
        now_ms: i64,
        valid_until: DateTime<Utc>,
    ) -> anyhow::Result<u64>;
}

/// An MSP's invoices, and the server secret that signs their download links.
#[async_trait]
pub trait InvoiceStore: Send + Sync {
    /// Numbers and records an invoice in one transaction: the next number of `msp` (a counter row locked
    /// until commit, so concurrent creates queue and a refused or failed create uses no number), unless an
    /// invoice of the same account overlaps the period.
    async fn create_invoice(&self, msp: &AccountToken, invoice: &NewInvoice) -> anyhow::Result<InvoiceCreate>;
    /// A page of `msp`'s invoices, newest number first, optionally of one managed account.
    async fn list_invoices(
        &self,
        msp: &AccountToken,
        account: Option<&AccountToken>,
        page: PageRequest,
    ) -> anyhow::Result<Paged<Invoice>>;
    async fn get_invoice(&self, msp: &AccountToken, token: &InvoiceToken) -> anyhow::Result<Option<Invoice>>;
    /// Replaces a draft's document (its number and period stay); refused once it is sent.
    async fn regenerate_invoice(
        &self,
        msp: &AccountToken,
        token: &InvoiceToken,
        document: &InvoiceDocument,
    ) -> anyhow::Result<InvoiceChange>;
    /// Moves an invoice to `to` if its status is one of `from`.
    async fn set_invoice_status(
        &self,
        msp: &AccountToken,
        token: &InvoiceToken,
        from: &[InvoiceStatus],
        to: InvoiceStatus,
    ) -> anyhow::Result<InvoiceChange>;
    /// The random secret called `name`, made on first use and the same for every process on this store.
    async fn server_secret(&self, name: &str) -> anyhow::Result<String>;
    /// Replaces the secret called `name` with a new random one (what was signed with the old one no longer
    /// verifies, on any process).
    async fn rotate_server_secret(&self, name: &str) -> anyhow::Result<()>;
}

/// Opens the store the settings name, creating the data dir and applying migrations.
#[tracing::instrument(skip_all, fields(backend))]
pub async fn connect(settings: &StoreSettings) -> anyhow::Result<DynStore> {
    let url = settings.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        tracing::Span::current().record("backend", "postgres");
        let store = postgres::PgStore::connect(&url, settings.db_max_connections).await?;
        Ok(Arc::new(store))
    } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        tracing::Span::current().record("backend", "sqlite");
        private_dir(&settings.data_dir)
            .with_context(|| format!("failed to create the data dir {}", settings.data_dir.display()))?;
        private_file(Path::new(path)).with_context(|| format!("failed to create the SQLite database {path}"))?;
        let store = sqlite::SqliteStore::connect(path, settings.db_max_connections).await?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!("unsupported database URL: use sqlite://PATH or postgres://…")
    }
}

/// Creates `dir` (and its parents) readable by its owner only, or makes an existing one so: the data dir
/// holds the store (bank details, hashed tokens, the link-signing key) and every tenant's cost files.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::info!(dir = %dir.display(), "made the data dir readable by its owner only (0700)");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Creates the file `path` empty if it is missing, readable by its owner only, or makes an existing one so
/// (SQLite gives its `-wal` and `-shm` files the database file's mode).
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", path.display()));
            if side.exists() {
                std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// What a store error that broke a UNIQUE constraint was about, as a sentence for the caller; `None` for any
/// other error. Two requests that store the same unique thing at once (a race the store's own checks cannot
/// see until the commit) fail this way, and the loser is told so (409), never shown an internal error.
pub fn unique_violation(e: &anyhow::Error) -> Option<String> {
    let db = e.chain().find_map(|cause| match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) if db.is_unique_violation() => Some(db),
        _ => None,
    })?;
    // PostgreSQL names the constraint (`uq_<table>_<columns>`); SQLite says `UNIQUE constraint failed:
    // <table>.<column>, …`.
    let what = match db.constraint() {
        Some(name) => name.trim_start_matches("uq_").replace('_', " "),
        None => db.message().rsplit(": ").next().unwrap_or("a unique value").replace(['.', '_'], " "),
    };
    Some(format!("another request stored the same thing ({what}) at the same time; read it again and retry"))
}

/// Now, to the second: the API shows whole seconds, so the store keeps what it shows.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use costd_model::amount::{Amount, MAX_UNSCALED};
    use proptest::prelude::*;

    /// Binds every value through `Text` into a TEXT column of an in-memory SQLite and reads it back as
    /// `Text<_>`: the path every stored upload amount and token takes.
    async fn sqlite_round_trip(
        amounts: &[Amount],
        token: &AccountToken,
    ) -> (Vec<Amount>, AccountToken, Option<String>) {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, amount TEXT, token TEXT, missing TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        for (id, amount) in amounts.iter().enumerate() {
            sqlx::query("INSERT INTO t (id, amount, token, missing) VALUES ($1, $2, $3, $4)")
                .bind(id as i64)
                .bind(Text(amount))
                .bind(Text(token))
                .bind(Text(None::<&AccountToken>))
                .execute(&pool)
                .await
                .unwrap();
        }
        let rows: Vec<(Text<Amount>, Text<AccountToken>, Option<String>)> =
            sqlx::query_as("SELECT amount, token, missing FROM t ORDER BY id").fetch_all(&pool).await.unwrap();
        let token = rows.first().map_or_else(|| token.clone(), |r| r.1 .0.clone());
        let missing = rows.first().and_then(|r| r.2.clone());
        (rows.into_iter().map(|r| r.0 .0).collect(), token, missing)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Amounts are stored as their exact text: every amount of `Decimal128(38, 18)` reads back equal, to
        /// the last of its 18 places, and an optional value bound as `None` is NULL.
        #[test]
        fn amounts_and_tokens_read_back_exactly_as_they_were_bound(
            unscaled in prop::collection::vec(-MAX_UNSCALED..=MAX_UNSCALED, 1..20),
            small in prop::collection::vec(-10_000_000_000_000_000_000i128..10_000_000_000_000_000_000, 1..20),
        ) {
            let amounts: Vec<Amount> =
                unscaled.iter().chain(&small).map(|&u| Amount::from_unscaled(u).expect("in range")).collect();
            for amount in &amounts {
                prop_assert_eq!(Amount::from_stored(amount.to_stored()).unwrap(), *amount);
            }
            let token = AccountToken::generate();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (read, read_token, missing) = runtime.block_on(sqlite_round_trip(&amounts, &token));
            prop_assert_eq!(read, amounts);
            prop_assert_eq!(read_token, token);
            prop_assert_eq!(missing, None);
        }
    }
}
