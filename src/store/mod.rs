//! The metadata store: accounts, API tokens, workspaces and billing rules.
//!
//! [`Store`] is the one interface the rest of costd uses. Two backends implement it, picked from the URL
//! scheme by [`connect`]: [`sqlite`] (the zero-setup default) and [`postgres`] (production). Each owns its
//! migrations, so dialect differences stay in DDL; the queries themselves are the SQL both dialects share,
//! written once in [`sql`]. Every query that reads or changes a tenant's data takes the account token,
//! so one account can never reach another's rows: a foreign token simply finds nothing.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

use crate::config::StoreSettings;
use crate::model::billing_rule::RuleColumns;
use crate::model::token::Scopes;
use crate::model::workspace::WorkspaceSettings;

#[macro_use]
mod sql;
pub mod postgres;
pub mod sqlite;

/// A shared handle on the store.
pub type DynStore = Arc<dyn Store>;

/// A tenant: a top-level account, or a managed account of an MSP (with a parent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub token: String,
    pub name: String,
    pub parent_account_token: Option<String>,
    /// The user (`usr_…`) that tokens minted from the CLI act as; shown as `created_by_token`.
    pub owner_user_token: String,
    pub created_at: DateTime<Utc>,
}

/// Who is calling: resolved from an API token's secret on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Public id of the token (`tkn_…`).
    pub token_id: String,
    pub account_token: String,
    pub user_token: String,
    pub scopes: Scopes,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

/// An API token to store; its secret never reaches the store, only the hash.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub account_token: String,
    pub user_token: String,
    pub secret_hash: String,
    pub scopes: Scopes,
    pub description: String,
}

/// A stored workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub token: String,
    pub settings: WorkspaceSettings,
    pub created_at: DateTime<Utc>,
}

/// A stored billing rule.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingRuleRow {
    pub token: String,
    pub columns: RuleColumns,
    pub created_by_token: String,
    pub created_at: DateTime<Utc>,
}

/// Which slice of a list to read. `page` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    fn offset(&self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.limit)
    }
}

/// One page of a list and the size of the whole list.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// A custom-provider integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub token: String,
    /// Always `custom_provider` today.
    pub provider: String,
    /// The name given at creation; Vantage shows it as `account_identifier`.
    pub name: String,
    pub description: Option<String>,
    /// `imported` once created (Vantage's value for custom providers).
    pub status: String,
    /// When an upload was last added or removed.
    pub last_updated: Option<DateTime<Utc>>,
    pub workspace_tokens: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A committed cost upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub token: String,
    pub integration_token: String,
    pub filename: String,
    /// Sum of BilledCost, as the API shows it (`1234.56`).
    pub amount: String,
    pub currency: String,
    pub rows: i64,
    pub start_date: chrono::NaiveDate,
    pub end_date: chrono::NaiveDate,
    pub import_status: String,
    pub created_by_token: String,
    pub created_at: DateTime<Utc>,
}

/// What committing an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadCommit {
    /// Recorded; the tokens of earlier uploads with the same filename, now replaced (and retired).
    Committed { replaced: Vec<String> },
    /// The integration no longer exists (deleted while the file was being read): nothing recorded.
    IntegrationGone,
}

/// A managed account as its parent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedAccount {
    pub account: Account,
    pub contact_email: String,
    pub email_domain: Option<String>,
    /// The parent's integrations whose costs it sees.
    pub integration_tokens: Vec<String>,
    /// The parent's billing rules it runs, in the order they were given (apply_to_all rules not included).
    pub rule_tokens: Vec<String>,
}

/// The settable parts of a managed account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedAccountSettings {
    pub name: String,
    pub contact_email: String,
    pub email_domain: Option<String>,
    pub integration_tokens: Vec<String>,
    pub rule_tokens: Vec<String>,
}

/// What deleting a workspace did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceDeletion {
    Deleted,
    NotFound,
    /// Refused: an account keeps at least one workspace.
    LastWorkspace,
}

/// The metadata store. Every method is tenant-scoped by `account` where data belongs to a tenant.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an account, its owner user and its "Default" workspace in one transaction.
    async fn create_account(&self, name: &str, parent: Option<&str>) -> anyhow::Result<Account>;
    async fn get_account(&self, token: &str) -> anyhow::Result<Option<Account>>;
    async fn count_accounts(&self) -> anyhow::Result<i64>;

    /// Stores a token; returns its public id (`tkn_…`).
    async fn create_api_token(&self, token: &NewApiToken) -> anyhow::Result<String>;
    /// The live (not revoked) token with this secret hash.
    async fn principal_for_secret_hash(&self, secret_hash: &str) -> anyhow::Result<Option<Principal>>;
    /// Revokes the token with this secret hash or id; false when no live token matched.
    async fn revoke_api_token(&self, secret_hash_or_id: &str) -> anyhow::Result<bool>;

    async fn create_workspace(&self, account: &str, settings: &WorkspaceSettings) -> anyhow::Result<Workspace>;
    /// A page of the account's workspaces, oldest first; `name_like` filters by name, case-insensitively.
    async fn list_workspaces(
        &self,
        account: &str,
        page: PageRequest,
        name_like: Option<&str>,
    ) -> anyhow::Result<Paged<Workspace>>;
    async fn get_workspace(&self, account: &str, token: &str) -> anyhow::Result<Option<Workspace>>;
    async fn update_workspace(
        &self,
        account: &str,
        token: &str,
        settings: &WorkspaceSettings,
    ) -> anyhow::Result<Option<Workspace>>;
    async fn delete_workspace(&self, account: &str, token: &str) -> anyhow::Result<WorkspaceDeletion>;

    async fn create_billing_rule(
        &self,
        account: &str,
        created_by: &str,
        rule: &RuleColumns,
    ) -> anyhow::Result<BillingRuleRow>;
    /// A page of the account's billing rules, oldest first.
    async fn list_billing_rules(&self, account: &str, page: PageRequest) -> anyhow::Result<Paged<BillingRuleRow>>;
    async fn get_billing_rule(&self, account: &str, token: &str) -> anyhow::Result<Option<BillingRuleRow>>;
    async fn update_billing_rule(
        &self,
        account: &str,
        token: &str,
        rule: &RuleColumns,
    ) -> anyhow::Result<Option<BillingRuleRow>>;
    /// False when the account has no such rule.
    async fn delete_billing_rule(&self, account: &str, token: &str) -> anyhow::Result<bool>;

    async fn create_integration(
        &self,
        account: &str,
        name: &str,
        description: Option<&str>,
    ) -> anyhow::Result<Integration>;
    /// A page of the account's integrations, oldest first, optionally filtered by provider and name.
    async fn list_integrations(
        &self,
        account: &str,
        page: PageRequest,
        provider: Option<&str>,
        account_identifier: Option<&str>,
    ) -> anyhow::Result<Paged<Integration>>;
    async fn get_integration(&self, account: &str, token: &str) -> anyhow::Result<Option<Integration>>;
    /// The integration with this token in any account, with its account (for the admin CLI).
    async fn find_integration(&self, token: &str) -> anyhow::Result<Option<(Integration, Account)>>;
    /// Replaces the integration's workspaces (all must belong to the account: checked by the caller).
    async fn set_integration_workspaces(
        &self,
        account: &str,
        token: &str,
        workspace_tokens: &[String],
    ) -> anyhow::Result<Option<Integration>>;
    /// Deletes the integration and its uploads, retiring their files; returns the deleted uploads' tokens
    /// (`None`: no such integration).
    async fn delete_integration(&self, account: &str, token: &str) -> anyhow::Result<Option<Vec<String>>>;

    /// Records a finished upload in one transaction, replacing (and retiring) any upload of the same filename.
    async fn commit_upload(&self, account: &str, upload: &Upload) -> anyhow::Result<UploadCommit>;
    /// A page of an integration's uploads, oldest first.
    async fn list_uploads(&self, account: &str, integration: &str, page: PageRequest) -> anyhow::Result<Paged<Upload>>;
    /// Deletes an upload and retires its file; false when the account has no such upload in that integration.
    async fn delete_upload(&self, account: &str, integration: &str, upload: &str) -> anyhow::Result<bool>;
    /// The live uploads of these integrations of the account (what a costs query reads), in one statement.
    async fn live_uploads(&self, account: &str, integrations: &[String]) -> anyhow::Result<Vec<Upload>>;
    /// Every live upload's token, in every account (for the janitor's sweep of orphan files).
    async fn all_upload_tokens(&self) -> anyhow::Result<Vec<String>>;
    /// Uploads whose files were retired (replaced or deleted), with when, oldest first.
    async fn retired_uploads(&self) -> anyhow::Result<Vec<(String, DateTime<Utc>)>>;
    /// Forgets retired uploads whose files are gone.
    async fn forget_retired_uploads(&self, tokens: &[String]) -> anyhow::Result<()>;

    /// Creates a managed account of `parent` (with its "Default" workspace and an owner user).
    async fn create_managed_account(
        &self,
        parent: &str,
        settings: &ManagedAccountSettings,
    ) -> anyhow::Result<ManagedAccount>;
    /// A page of `parent`'s managed accounts, oldest first.
    async fn list_managed_accounts(&self, parent: &str, page: PageRequest) -> anyhow::Result<Paged<ManagedAccount>>;
    /// The managed account `token` of `parent`.
    async fn get_managed_account(&self, parent: &str, token: &str) -> anyhow::Result<Option<ManagedAccount>>;
    async fn update_managed_account(
        &self,
        parent: &str,
        token: &str,
        settings: &ManagedAccountSettings,
    ) -> anyhow::Result<Option<ManagedAccount>>;
    /// Deletes a managed account with its tokens and workspaces; false when `parent` has no such account.
    async fn delete_managed_account(&self, parent: &str, token: &str) -> anyhow::Result<bool>;
    /// Every billing rule of the account with `apply_to_all`, oldest first.
    async fn apply_to_all_rules(&self, account: &str) -> anyhow::Result<Vec<BillingRuleRow>>;

    /// Closes every connection; later calls fail. Used at shutdown (and by tests of a broken store).
    async fn close(&self);
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
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("failed to create the data dir {}", settings.data_dir.display()))?;
        let store = sqlite::SqliteStore::connect(path, settings.db_max_connections).await?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!("unsupported database URL: use sqlite://PATH or postgres://…")
    }
}

/// Now, to the second: the API shows whole seconds, so the store keeps what it shows.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}
