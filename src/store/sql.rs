//! The SQL both backends share, written once. `impl_store!` expands the [`Store`](super::Store) methods
//! for a backend struct with `read` and `write` pools of one sqlx database type; only connection set-up
//! and migrations differ between backends. Placeholders are `$N`, which sqlx's SQLite driver also binds.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Account, BillingRuleRow, Integration, ManagedAccount, Principal, Upload, Workspace};
use crate::model::billing_rule::RuleColumns;
use crate::model::workspace::WorkspaceSettings;

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    token: String,
    name: String,
    parent_account_token: Option<String>,
    owner_user_token: String,
    created_at: DateTime<Utc>,
}

impl AccountRow {
    fn token(&self) -> &str {
        &self.token
    }
}

impl ManagedRow {
    pub(crate) fn token(&self) -> &str {
        self.account.token()
    }
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            token: r.token,
            name: r.name,
            parent_account_token: r.parent_account_token,
            owner_user_token: r.owner_user_token,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PrincipalRow {
    token: String,
    account_token: String,
    user_token: String,
    scopes: String,
    description: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<PrincipalRow> for Principal {
    type Error = anyhow::Error;

    fn try_from(r: PrincipalRow) -> anyhow::Result<Self> {
        Ok(Principal {
            token_id: r.token,
            account_token: r.account_token,
            user_token: r.user_token,
            scopes: r.scopes.parse().map_err(|e: String| anyhow::anyhow!("stored token scopes are invalid: {e}"))?,
            description: r.description,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WorkspaceRow {
    token: String,
    name: String,
    enable_currency_conversion: bool,
    currency: String,
    exchange_rate_date: String,
    created_at: DateTime<Utc>,
}

impl From<WorkspaceRow> for Workspace {
    fn from(r: WorkspaceRow) -> Self {
        Workspace {
            token: r.token,
            settings: WorkspaceSettings {
                name: r.name,
                enable_currency_conversion: r.enable_currency_conversion,
                currency: r.currency,
                exchange_rate_date: r.exchange_rate_date,
            },
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    token: String,
    title: String,
    rule_type: String,
    charge_type: Option<String>,
    percentage: Option<String>,
    service: Option<String>,
    category: Option<String>,
    sub_category: Option<String>,
    amount: Option<String>,
    start_period: Option<NaiveDate>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    apply_to_all: bool,
    sql_query: Option<String>,
    created_by_token: String,
    created_at: DateTime<Utc>,
}

impl From<RuleRow> for BillingRuleRow {
    fn from(r: RuleRow) -> Self {
        BillingRuleRow {
            token: r.token,
            columns: RuleColumns {
                title: r.title,
                rule_type: r.rule_type,
                charge_type: r.charge_type,
                percentage: r.percentage,
                service: r.service,
                category: r.category,
                sub_category: r.sub_category,
                amount: r.amount,
                start_period: r.start_period,
                start_date: r.start_date,
                end_date: r.end_date,
                apply_to_all: r.apply_to_all,
                sql_query: r.sql_query,
            },
            created_by_token: r.created_by_token,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IntegrationRow {
    token: String,
    provider: String,
    name: String,
    description: Option<String>,
    status: String,
    last_updated: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl IntegrationRow {
    pub(crate) fn with_workspaces(self, workspace_tokens: Vec<String>) -> Integration {
        Integration {
            token: self.token,
            provider: self.provider,
            name: self.name,
            description: self.description,
            status: self.status,
            last_updated: self.last_updated,
            workspace_tokens,
            created_at: self.created_at,
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UploadRow {
    token: String,
    integration_token: String,
    filename: String,
    amount: String,
    currency: String,
    row_count: i64,
    start_date: NaiveDate,
    end_date: NaiveDate,
    import_status: String,
    created_by_token: String,
    created_at: DateTime<Utc>,
}

impl From<UploadRow> for Upload {
    fn from(r: UploadRow) -> Self {
        Upload {
            token: r.token,
            integration_token: r.integration_token,
            filename: r.filename,
            amount: r.amount,
            currency: r.currency,
            rows: r.row_count,
            start_date: r.start_date,
            end_date: r.end_date,
            import_status: r.import_status,
            created_by_token: r.created_by_token,
            created_at: r.created_at,
        }
    }
}

/// Groups `(integration, workspace)` pairs by integration, keeping their order.
pub(crate) fn group_workspaces(pairs: Vec<(String, String)>) -> std::collections::HashMap<String, Vec<String>> {
    let mut map: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (integration, workspace) in pairs {
        map.entry(integration).or_default().push(workspace);
    }
    map
}

#[derive(sqlx::FromRow)]
pub(crate) struct ManagedRow {
    #[sqlx(flatten)]
    account: AccountRow,
    contact_email: Option<String>,
    email_domain: Option<String>,
}

impl ManagedRow {
    pub(crate) fn into_managed(self, integration_tokens: Vec<String>, rule_tokens: Vec<String>) -> ManagedAccount {
        ManagedAccount {
            account: self.account.into(),
            contact_email: self.contact_email.unwrap_or_default(),
            email_domain: self.email_domain,
            integration_tokens,
            rule_tokens,
        }
    }
}

pub(crate) const INTEGRATION_COLUMNS: &str = "token, provider, name, description, status, last_updated, created_at";
pub(crate) const UPLOAD_COLUMNS: &str = "token, integration_token, filename, amount, currency, row_count, start_date, \
     end_date, import_status, created_by_token, created_at";

pub(crate) const ACCOUNT_COLUMNS: &str = "token, name, parent_account_token, owner_user_token, created_at";
pub(crate) const WORKSPACE_COLUMNS: &str =
    "token, name, enable_currency_conversion, currency, exchange_rate_date, created_at";
pub(crate) const RULE_COLUMNS: &str = "token, title, rule_type, charge_type, percentage, service, category, \
     sub_category, amount, start_period, start_date, end_date, apply_to_all, sql_query, created_by_token, created_at";

/// Escapes `%`, `_` and `\` so a search term matches literally inside `LIKE … ESCAPE '\'`.
pub(crate) fn like_pattern(term: &str) -> String {
    let escaped = term.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// Implements `Store` for `$store`, a struct with `read: Pool<$db>` and `write: Pool<$db>`. `$lock` is the
/// row-lock clause (`FOR UPDATE` on PostgreSQL; empty on SQLite, whose single writer serialises anyway).
macro_rules! impl_store {
    ($store:ty, $db:ty, $lock:literal) => {
        /// The integration's row id, locked until the transaction ends (`None`: not in this account).
        async fn lock_integration(
            conn: &mut <$db as sqlx::Database>::Connection,
            account: &str,
            token: &str,
        ) -> anyhow::Result<Option<i64>> {
            let sql = format!("SELECT id FROM integrations WHERE account_token = $1 AND token = $2{}", $lock);
            Ok(sqlx::query_scalar(&sql).bind(account).bind(token).fetch_optional(&mut *conn).await?)
        }

        /// Records uploads as retired (inside the caller's transaction): their files go once no query needs them.
        async fn retire_uploads(
            conn: &mut <$db as sqlx::Database>::Connection,
            tokens: &[String],
        ) -> anyhow::Result<()> {
            // Full precision: the janitor compares this with the grace period.
            let now = chrono::Utc::now();
            for token in tokens {
                sqlx::query("INSERT INTO retired_uploads (token, retired_at) VALUES ($1, $2)")
                    .bind(token)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Replaces a managed account's integration and rule lists (inside the caller's transaction).
        async fn set_managed_links(
            conn: &mut <$db as sqlx::Database>::Connection,
            account: &str,
            settings: &$crate::store::ManagedAccountSettings,
        ) -> anyhow::Result<()> {
            sqlx::query("DELETE FROM managed_account_integrations WHERE account_token = $1").bind(account).execute(&mut *conn).await?;
            sqlx::query("DELETE FROM managed_account_rules WHERE account_token = $1").bind(account).execute(&mut *conn).await?;
            for (position, token) in settings.integration_tokens.iter().enumerate() {
                sqlx::query("INSERT INTO managed_account_integrations (account_token, integration_token, position) VALUES ($1, $2, $3)")
                    .bind(account)
                    .bind(token)
                    .bind(position as i64)
                    .execute(&mut *conn)
                    .await?;
            }
            for (position, token) in settings.rule_tokens.iter().enumerate() {
                sqlx::query("INSERT INTO managed_account_rules (account_token, rule_token, position) VALUES ($1, $2, $3)")
                    .bind(account)
                    .bind(token)
                    .bind(position as i64)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// A managed account's row plus its links.
        async fn load_managed(
            pool: &sqlx::Pool<$db>,
            row: $crate::store::sql::ManagedRow,
        ) -> anyhow::Result<$crate::store::ManagedAccount> {
            let token = row.token().to_string();
            let integrations: Vec<String> = sqlx::query_scalar(
                "SELECT integration_token FROM managed_account_integrations WHERE account_token = $1 ORDER BY position",
            )
            .bind(&token)
            .fetch_all(pool)
            .await?;
            let rules: Vec<String> =
                sqlx::query_scalar("SELECT rule_token FROM managed_account_rules WHERE account_token = $1 ORDER BY position")
                    .bind(&token)
                    .fetch_all(pool)
                    .await?;
            Ok(row.into_managed(integrations, rules))
        }

        /// The workspaces of these integrations' rows (all of the account's, then picked per integration).
        async fn integration_workspaces(
            pool: &sqlx::Pool<$db>,
            account: &str,
        ) -> anyhow::Result<std::collections::HashMap<String, Vec<String>>> {
            let pairs: Vec<(String, String)> = sqlx::query_as(
                "SELECT iw.integration_token, iw.workspace_token FROM integration_workspaces iw \
                 JOIN integrations i ON i.token = iw.integration_token \
                 WHERE i.account_token = $1 ORDER BY iw.integration_token, iw.position",
            )
            .bind(account)
            .fetch_all(pool)
            .await?;
            Ok($crate::store::sql::group_workspaces(pairs))
        }

        /// Inserts a workspace on a connection that may be inside a transaction (account creation).
        async fn insert_workspace(
            conn: &mut <$db as sqlx::Database>::Connection,
            account: &str,
            settings: &$crate::model::workspace::WorkspaceSettings,
            now: chrono::DateTime<chrono::Utc>,
        ) -> anyhow::Result<$crate::store::Workspace> {
            let token = $crate::model::token::new_token($crate::model::token::prefix::WORKSPACE);
            sqlx::query(
                "INSERT INTO workspaces (token, account_token, name, enable_currency_conversion, currency, \
                 exchange_rate_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&token)
            .bind(account)
            .bind(&settings.name)
            .bind(settings.enable_currency_conversion)
            .bind(&settings.currency)
            .bind(&settings.exchange_rate_date)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok($crate::store::Workspace { token, settings: settings.clone(), created_at: now })
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            #[tracing::instrument(skip(self))]
            async fn create_account(&self, name: &str, parent: Option<&str>) -> anyhow::Result<$crate::store::Account> {
                use $crate::model::token::{new_token, prefix};
                let now = $crate::store::now();
                let account = $crate::store::Account {
                    token: new_token(prefix::ACCOUNT),
                    name: name.to_string(),
                    parent_account_token: parent.map(str::to_string),
                    owner_user_token: new_token(prefix::USER),
                    created_at: now,
                };
                let default = $crate::model::workspace::WorkspaceSettings::default_named("Default");
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO accounts (token, name, parent_account_token, owner_user_token, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&account.token)
                .bind(&account.name)
                .bind(&account.parent_account_token)
                .bind(&account.owner_user_token)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                insert_workspace(&mut *tx, &account.token, &default, now).await?;
                tx.commit().await?;
                Ok(account)
            }

            #[tracing::instrument(skip(self))]
            async fn get_account(&self, token: &str) -> anyhow::Result<Option<$crate::store::Account>> {
                let sql = format!("SELECT {} FROM accounts WHERE token = $1", $crate::store::sql::ACCOUNT_COLUMNS);
                let row: Option<$crate::store::sql::AccountRow> =
                    sqlx::query_as(&sql).bind(token).fetch_optional(&self.read).await?;
                Ok(row.map(Into::into))
            }

            async fn count_accounts(&self) -> anyhow::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(&self.read).await?)
            }

            #[tracing::instrument(skip_all, fields(account = %token.account_token))]
            async fn create_api_token(&self, token: &$crate::store::NewApiToken) -> anyhow::Result<String> {
                let id = $crate::model::token::new_token($crate::model::token::prefix::API_TOKEN_ID);
                sqlx::query(
                    "INSERT INTO api_tokens (token, account_token, user_token, secret_hash, scopes, description, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id)
                .bind(&token.account_token)
                .bind(&token.user_token)
                .bind(&token.secret_hash)
                .bind(token.scopes.as_str())
                .bind(&token.description)
                .bind($crate::store::now())
                .execute(&self.write)
                .await?;
                Ok(id)
            }

            async fn principal_for_secret_hash(&self, secret_hash: &str) -> anyhow::Result<Option<$crate::store::Principal>> {
                let row: Option<$crate::store::sql::PrincipalRow> = sqlx::query_as(
                    "SELECT token, account_token, user_token, scopes, description, created_at \
                     FROM api_tokens WHERE secret_hash = $1 AND revoked_at IS NULL",
                )
                .bind(secret_hash)
                .fetch_optional(&self.read)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            #[tracing::instrument(skip_all)]
            async fn revoke_api_token(&self, secret_hash_or_id: &str) -> anyhow::Result<bool> {
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 \
                     WHERE (secret_hash = $2 OR token = $2) AND revoked_at IS NULL",
                )
                .bind($crate::store::now())
                .bind(secret_hash_or_id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            #[tracing::instrument(skip(self, settings))]
            async fn create_workspace(
                &self,
                account: &str,
                settings: &$crate::model::workspace::WorkspaceSettings,
            ) -> anyhow::Result<$crate::store::Workspace> {
                let mut conn = self.write.acquire().await?;
                insert_workspace(&mut *conn, account, settings, $crate::store::now()).await
            }

            #[tracing::instrument(skip(self))]
            async fn list_workspaces(
                &self,
                account: &str,
                page: $crate::store::PageRequest,
                name_like: Option<&str>,
            ) -> anyhow::Result<$crate::store::Paged<$crate::store::Workspace>> {
                let pattern = name_like.map($crate::store::sql::like_pattern);
                let filter = "account_token = $1 AND ($2 IS NULL OR LOWER(name) LIKE $2 ESCAPE '\\')";
                let sql = format!(
                    "SELECT {} FROM workspaces WHERE {filter} ORDER BY id LIMIT $3 OFFSET $4",
                    $crate::store::sql::WORKSPACE_COLUMNS
                );
                let rows: Vec<$crate::store::sql::WorkspaceRow> = sqlx::query_as(&sql)
                    .bind(account)
                    .bind(&pattern)
                    .bind(i64::from(page.limit))
                    .bind(page.offset())
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM workspaces WHERE {filter}"))
                    .bind(account)
                    .bind(&pattern)
                    .fetch_one(&self.read)
                    .await?;
                Ok($crate::store::Paged { items: rows.into_iter().map(Into::into).collect(), total })
            }

            #[tracing::instrument(skip(self))]
            async fn get_workspace(&self, account: &str, token: &str) -> anyhow::Result<Option<$crate::store::Workspace>> {
                let sql = format!(
                    "SELECT {} FROM workspaces WHERE account_token = $1 AND token = $2",
                    $crate::store::sql::WORKSPACE_COLUMNS
                );
                let row: Option<$crate::store::sql::WorkspaceRow> =
                    sqlx::query_as(&sql).bind(account).bind(token).fetch_optional(&self.read).await?;
                Ok(row.map(Into::into))
            }

            #[tracing::instrument(skip(self, settings))]
            async fn update_workspace(
                &self,
                account: &str,
                token: &str,
                settings: &$crate::model::workspace::WorkspaceSettings,
            ) -> anyhow::Result<Option<$crate::store::Workspace>> {
                let sql = format!(
                    "UPDATE workspaces SET name = $3, enable_currency_conversion = $4, currency = $5, \
                     exchange_rate_date = $6 WHERE account_token = $1 AND token = $2 RETURNING {}",
                    $crate::store::sql::WORKSPACE_COLUMNS
                );
                let row: Option<$crate::store::sql::WorkspaceRow> = sqlx::query_as(&sql)
                    .bind(account)
                    .bind(token)
                    .bind(&settings.name)
                    .bind(settings.enable_currency_conversion)
                    .bind(&settings.currency)
                    .bind(&settings.exchange_rate_date)
                    .fetch_optional(&self.write)
                    .await?;
                Ok(row.map(Into::into))
            }

            #[tracing::instrument(skip(self))]
            async fn delete_workspace(&self, account: &str, token: &str) -> anyhow::Result<$crate::store::WorkspaceDeletion> {
                use $crate::store::WorkspaceDeletion;
                let mut tx = self.write.begin().await?;
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE account_token = $1")
                    .bind(account)
                    .fetch_one(&mut *tx)
                    .await?;
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM workspaces WHERE account_token = $1 AND token = $2")
                        .bind(account)
                        .bind(token)
                        .fetch_optional(&mut *tx)
                        .await?;
                let outcome = match exists {
                    None => WorkspaceDeletion::NotFound,
                    Some(_) if count <= 1 => WorkspaceDeletion::LastWorkspace,
                    Some(id) => {
                        sqlx::query("DELETE FROM workspaces WHERE id = $1").bind(id).execute(&mut *tx).await?;
                        WorkspaceDeletion::Deleted
                    }
                };
                tx.commit().await?;
                Ok(outcome)
            }

            #[tracing::instrument(skip(self, rule))]
            async fn create_billing_rule(
                &self,
                account: &str,
                created_by: &str,
                rule: &$crate::model::billing_rule::RuleColumns,
            ) -> anyhow::Result<$crate::store::BillingRuleRow> {
                let token = $crate::model::token::new_token($crate::model::token::prefix::BILLING_RULE);
                let created_at = $crate::store::now();
                sqlx::query(
                    "INSERT INTO billing_rules (token, account_token, title, rule_type, charge_type, percentage, \
                     service, category, sub_category, amount, start_period, start_date, end_date, apply_to_all, \
                     sql_query, created_by_token, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                )
                .bind(&token)
                .bind(account)
                .bind(&rule.title)
                .bind(&rule.rule_type)
                .bind(&rule.charge_type)
                .bind(&rule.percentage)
                .bind(&rule.service)
                .bind(&rule.category)
                .bind(&rule.sub_category)
                .bind(&rule.amount)
                .bind(rule.start_period)
                .bind(rule.start_date)
                .bind(rule.end_date)
                .bind(rule.apply_to_all)
                .bind(&rule.sql_query)
                .bind(created_by)
                .bind(created_at)
                .execute(&self.write)
                .await?;
                Ok($crate::store::BillingRuleRow {
                    token,
                    columns: rule.clone(),
                    created_by_token: created_by.to_string(),
                    created_at,
                })
            }

            #[tracing::instrument(skip(self))]
            async fn list_billing_rules(
                &self,
                account: &str,
                page: $crate::store::PageRequest,
            ) -> anyhow::Result<$crate::store::Paged<$crate::store::BillingRuleRow>> {
                let sql = format!(
                    "SELECT {} FROM billing_rules WHERE account_token = $1 ORDER BY id LIMIT $2 OFFSET $3",
                    $crate::store::sql::RULE_COLUMNS
                );
                let rows: Vec<$crate::store::sql::RuleRow> = sqlx::query_as(&sql)
                    .bind(account)
                    .bind(i64::from(page.limit))
                    .bind(page.offset())
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM billing_rules WHERE account_token = $1")
                    .bind(account)
                    .fetch_one(&self.read)
                    .await?;
                Ok($crate::store::Paged { items: rows.into_iter().map(Into::into).collect(), total })
            }

            #[tracing::instrument(skip(self))]
            async fn get_billing_rule(&self, account: &str, token: &str) -> anyhow::Result<Option<$crate::store::BillingRuleRow>> {
                let sql = format!(
                    "SELECT {} FROM billing_rules WHERE account_token = $1 AND token = $2",
                    $crate::store::sql::RULE_COLUMNS
                );
                let row: Option<$crate::store::sql::RuleRow> =
                    sqlx::query_as(&sql).bind(account).bind(token).fetch_optional(&self.read).await?;
                Ok(row.map(Into::into))
            }

            #[tracing::instrument(skip(self, rule))]
            async fn update_billing_rule(
                &self,
                account: &str,
                token: &str,
                rule: &$crate::model::billing_rule::RuleColumns,
            ) -> anyhow::Result<Option<$crate::store::BillingRuleRow>> {
                let sql = format!(
                    "UPDATE billing_rules SET title = $3, charge_type = $4, percentage = $5, service = $6, \
                     category = $7, sub_category = $8, amount = $9, start_period = $10, start_date = $11, \
                     end_date = $12, apply_to_all = $13, sql_query = $14 \
                     WHERE account_token = $1 AND token = $2 RETURNING {}",
                    $crate::store::sql::RULE_COLUMNS
                );
                let row: Option<$crate::store::sql::RuleRow> = sqlx::query_as(&sql)
                    .bind(account)
                    .bind(token)
                    .bind(&rule.title)
                    .bind(&rule.charge_type)
                    .bind(&rule.percentage)
                    .bind(&rule.service)
                    .bind(&rule.category)
                    .bind(&rule.sub_category)
                    .bind(&rule.amount)
                    .bind(rule.start_period)
                    .bind(rule.start_date)
                    .bind(rule.end_date)
                    .bind(rule.apply_to_all)
                    .bind(&rule.sql_query)
                    .fetch_optional(&self.write)
                    .await?;
                Ok(row.map(Into::into))
            }

            #[tracing::instrument(skip(self))]
            async fn delete_billing_rule(&self, account: &str, token: &str) -> anyhow::Result<bool> {
                let done = sqlx::query("DELETE FROM billing_rules WHERE account_token = $1 AND token = $2")
                    .bind(account)
                    .bind(token)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            #[tracing::instrument(skip(self))]
            async fn create_integration(
                &self,
                account: &str,
                name: &str,
                description: Option<&str>,
            ) -> anyhow::Result<$crate::store::Integration> {
                let token = $crate::model::token::new_token($crate::model::token::prefix::INTEGRATION);
                let now = $crate::store::now();
                sqlx::query(
                    "INSERT INTO integrations (token, account_token, provider, name, description, status, created_at) \
                     VALUES ($1, $2, 'custom_provider', $3, $4, 'imported', $5)",
                )
                .bind(&token)
                .bind(account)
                .bind(name)
                .bind(description)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok($crate::store::Integration {
                    token,
                    provider: "custom_provider".into(),
                    name: name.to_string(),
                    description: description.map(str::to_string),
                    status: "imported".into(),
                    last_updated: None,
                    workspace_tokens: Vec::new(),
                    created_at: now,
                })
            }

            #[tracing::instrument(skip(self))]
            async fn list_integrations(
                &self,
                account: &str,
                page: $crate::store::PageRequest,
                provider: Option<&str>,
                account_identifier: Option<&str>,
            ) -> anyhow::Result<$crate::store::Paged<$crate::store::Integration>> {
                let filter = "account_token = $1 AND ($2 IS NULL OR provider = $2) AND ($3 IS NULL OR name = $3)";
                let sql = format!(
                    "SELECT {} FROM integrations WHERE {filter} ORDER BY id LIMIT $4 OFFSET $5",
                    $crate::store::sql::INTEGRATION_COLUMNS
                );
                let rows: Vec<$crate::store::sql::IntegrationRow> = sqlx::query_as(&sql)
                    .bind(account)
                    .bind(provider)
                    .bind(account_identifier)
                    .bind(i64::from(page.limit))
                    .bind(page.offset())
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM integrations WHERE {filter}"))
                    .bind(account)
                    .bind(provider)
                    .bind(account_identifier)
                    .fetch_one(&self.read)
                    .await?;
                let mut workspaces = integration_workspaces(&self.read, account).await?;
                let items = rows
                    .into_iter()
                    .map(|r| {
                        let ws = workspaces.remove(r.token()).unwrap_or_default();
                        r.with_workspaces(ws)
                    })
                    .collect();
                Ok($crate::store::Paged { items, total })
            }

            #[tracing::instrument(skip(self))]
            async fn get_integration(&self, account: &str, token: &str) -> anyhow::Result<Option<$crate::store::Integration>> {
                let sql = format!(
                    "SELECT {} FROM integrations WHERE account_token = $1 AND token = $2",
                    $crate::store::sql::INTEGRATION_COLUMNS
                );
                let row: Option<$crate::store::sql::IntegrationRow> =
                    sqlx::query_as(&sql).bind(account).bind(token).fetch_optional(&self.read).await?;
                let Some(row) = row else { return Ok(None) };
                let workspaces: Vec<String> = sqlx::query_scalar(
                    "SELECT workspace_token FROM integration_workspaces WHERE integration_token = $1 ORDER BY position",
                )
                .bind(token)
                .fetch_all(&self.read)
                .await?;
                Ok(Some(row.with_workspaces(workspaces)))
            }

            #[tracing::instrument(skip(self))]
            async fn find_integration(
                &self,
                token: &str,
            ) -> anyhow::Result<Option<($crate::store::Integration, $crate::store::Account)>> {
                let account: Option<String> =
                    sqlx::query_scalar("SELECT account_token FROM integrations WHERE token = $1")
                        .bind(token)
                        .fetch_optional(&self.read)
                        .await?;
                let Some(account) = account else { return Ok(None) };
                let integration = self.get_integration(&account, token).await?;
                let account = self.get_account(&account).await?;
                Ok(integration.zip(account))
            }

            #[tracing::instrument(skip(self))]
            async fn set_integration_workspaces(
                &self,
                account: &str,
                token: &str,
                workspace_tokens: &[String],
            ) -> anyhow::Result<Option<$crate::store::Integration>> {
                let mut tx = self.write.begin().await?;
                let found = lock_integration(&mut *tx, account, token).await?;
                if found.is_none() {
                    return Ok(None);
                }
                sqlx::query("DELETE FROM integration_workspaces WHERE integration_token = $1")
                    .bind(token)
                    .execute(&mut *tx)
                    .await?;
                for (position, ws) in workspace_tokens.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO integration_workspaces (integration_token, workspace_token, position) VALUES ($1, $2, $3)",
                    )
                    .bind(token)
                    .bind(ws)
                    .bind(position as i64)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                self.get_integration(account, token).await
            }

            #[tracing::instrument(skip(self))]
            async fn delete_integration(&self, account: &str, token: &str) -> anyhow::Result<Option<Vec<String>>> {
                let mut tx = self.write.begin().await?;
                let found = lock_integration(&mut *tx, account, token).await?;
                let Some(id) = found else { return Ok(None) };
                let uploads: Vec<String> = sqlx::query_scalar("SELECT token FROM cost_uploads WHERE integration_token = $1")
                    .bind(token)
                    .fetch_all(&mut *tx)
                    .await?;
                retire_uploads(&mut *tx, &uploads).await?;
                // Uploads and workspace links go with it (ON DELETE CASCADE).
                sqlx::query("DELETE FROM integrations WHERE id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(uploads))
            }

            #[tracing::instrument(skip(self, upload), fields(upload = %upload.token))]
            async fn commit_upload(
                &self,
                account: &str,
                upload: &$crate::store::Upload,
            ) -> anyhow::Result<$crate::store::UploadCommit> {
                let mut tx = self.write.begin().await?;
                // Locking the integration serialises commits (and deletes) of one integration, so two
                // uploads of the same filename can never both stay.
                let found = lock_integration(&mut *tx, account, &upload.integration_token).await?;
                if found.is_none() {
                    return Ok($crate::store::UploadCommit::IntegrationGone);
                }
                let replaced: Vec<String> =
                    sqlx::query_scalar("SELECT token FROM cost_uploads WHERE integration_token = $1 AND filename = $2")
                        .bind(&upload.integration_token)
                        .bind(&upload.filename)
                        .fetch_all(&mut *tx)
                        .await?;
                sqlx::query("DELETE FROM cost_uploads WHERE integration_token = $1 AND filename = $2")
                    .bind(&upload.integration_token)
                    .bind(&upload.filename)
                    .execute(&mut *tx)
                    .await?;
                retire_uploads(&mut *tx, &replaced).await?;
                sqlx::query(
                    "INSERT INTO cost_uploads (token, integration_token, account_token, filename, amount, currency, \
                     row_count, start_date, end_date, import_status, created_by_token, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&upload.token)
                .bind(&upload.integration_token)
                .bind(account)
                .bind(&upload.filename)
                .bind(&upload.amount)
                .bind(&upload.currency)
                .bind(upload.rows)
                .bind(upload.start_date)
                .bind(upload.end_date)
                .bind(&upload.import_status)
                .bind(&upload.created_by_token)
                .bind(upload.created_at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE integrations SET last_updated = $1 WHERE token = $2")
                    .bind(upload.created_at)
                    .bind(&upload.integration_token)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::store::UploadCommit::Committed { replaced })
            }

            #[tracing::instrument(skip(self))]
            async fn list_uploads(
                &self,
                account: &str,
                integration: &str,
                page: $crate::store::PageRequest,
            ) -> anyhow::Result<$crate::store::Paged<$crate::store::Upload>> {
                let sql = format!(
                    "SELECT {} FROM cost_uploads WHERE account_token = $1 AND integration_token = $2 \
                     ORDER BY id LIMIT $3 OFFSET $4",
                    $crate::store::sql::UPLOAD_COLUMNS
                );
                let rows: Vec<$crate::store::sql::UploadRow> = sqlx::query_as(&sql)
                    .bind(account)
                    .bind(integration)
                    .bind(i64::from(page.limit))
                    .bind(page.offset())
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM cost_uploads WHERE account_token = $1 AND integration_token = $2",
                )
                .bind(account)
                .bind(integration)
                .fetch_one(&self.read)
                .await?;
                Ok($crate::store::Paged { items: rows.into_iter().map(Into::into).collect(), total })
            }

            #[tracing::instrument(skip(self))]
            async fn delete_upload(&self, account: &str, integration: &str, upload: &str) -> anyhow::Result<bool> {
                let mut tx = self.write.begin().await?;
                // The integration first, as every writer of its uploads locks it: taking the upload row first
                // deadlocks against a commit replacing that upload (which holds the integration).
                if lock_integration(&mut *tx, account, integration).await?.is_none() {
                    return Ok(false);
                }
                let done = sqlx::query(
                    "DELETE FROM cost_uploads WHERE account_token = $1 AND integration_token = $2 AND token = $3",
                )
                .bind(account)
                .bind(integration)
                .bind(upload)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() > 0 {
                    retire_uploads(&mut *tx, &[upload.to_string()]).await?;
                    sqlx::query("UPDATE integrations SET last_updated = $1 WHERE token = $2")
                        .bind($crate::store::now())
                        .bind(integration)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn live_uploads(&self, account: &str, integrations: &[String]) -> anyhow::Result<Vec<$crate::store::Upload>> {
                let sql = format!(
                    "SELECT {} FROM cost_uploads WHERE account_token = $1 ORDER BY id",
                    $crate::store::sql::UPLOAD_COLUMNS
                );
                // One statement, so a query sees each upload replacement or delete entirely or not at all.
                let rows: Vec<$crate::store::sql::UploadRow> = sqlx::query_as(&sql).bind(account).fetch_all(&self.read).await?;
                Ok(rows
                    .into_iter()
                    .map($crate::store::Upload::from)
                    .filter(|u| integrations.iter().any(|i| i == &u.integration_token))
                    .collect())
            }

            async fn all_upload_tokens(&self) -> anyhow::Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT token FROM cost_uploads").fetch_all(&self.read).await?)
            }

            async fn retired_uploads(&self) -> anyhow::Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
                Ok(sqlx::query_as("SELECT token, retired_at FROM retired_uploads ORDER BY retired_at")
                    .fetch_all(&self.read)
                    .await?)
            }

            async fn forget_retired_uploads(&self, tokens: &[String]) -> anyhow::Result<()> {
                let mut tx = self.write.begin().await?;
                for token in tokens {
                    sqlx::query("DELETE FROM retired_uploads WHERE token = $1").bind(token).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(skip(self, settings))]
            async fn create_managed_account(
                &self,
                parent: &str,
                settings: &$crate::store::ManagedAccountSettings,
            ) -> anyhow::Result<$crate::store::ManagedAccount> {
                use $crate::model::token::{new_token, prefix};
                let now = $crate::store::now();
                let token = new_token(prefix::ACCOUNT);
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO accounts (token, name, parent_account_token, owner_user_token, created_at, contact_email, email_domain) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&token)
                .bind(&settings.name)
                .bind(parent)
                .bind(new_token(prefix::USER))
                .bind(now)
                .bind(&settings.contact_email)
                .bind(&settings.email_domain)
                .execute(&mut *tx)
                .await?;
                let default = $crate::model::workspace::WorkspaceSettings::default_named("Default");
                insert_workspace(&mut *tx, &token, &default, now).await?;
                set_managed_links(&mut *tx, &token, settings).await?;
                tx.commit().await?;
                self.get_managed_account(parent, &token).await?.ok_or_else(|| anyhow::anyhow!("the new managed account vanished"))
            }

            #[tracing::instrument(skip(self))]
            async fn list_managed_accounts(
                &self,
                parent: &str,
                page: $crate::store::PageRequest,
            ) -> anyhow::Result<$crate::store::Paged<$crate::store::ManagedAccount>> {
                let sql = format!(
                    "SELECT {}, contact_email, email_domain FROM accounts WHERE parent_account_token = $1 ORDER BY id LIMIT $2 OFFSET $3",
                    $crate::store::sql::ACCOUNT_COLUMNS
                );
                let rows: Vec<$crate::store::sql::ManagedRow> = sqlx::query_as(&sql)
                    .bind(parent)
                    .bind(i64::from(page.limit))
                    .bind(page.offset())
                    .fetch_all(&self.read)
                    .await?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE parent_account_token = $1")
                    .bind(parent)
                    .fetch_one(&self.read)
                    .await?;
                let mut items = Vec::with_capacity(rows.len());
                for row in rows {
                    items.push(load_managed(&self.read, row).await?);
                }
                Ok($crate::store::Paged { items, total })
            }

            #[tracing::instrument(skip(self))]
            async fn get_managed_account(&self, parent: &str, token: &str) -> anyhow::Result<Option<$crate::store::ManagedAccount>> {
                let sql = format!(
                    "SELECT {}, contact_email, email_domain FROM accounts WHERE parent_account_token = $1 AND token = $2",
                    $crate::store::sql::ACCOUNT_COLUMNS
                );
                let row: Option<$crate::store::sql::ManagedRow> =
                    sqlx::query_as(&sql).bind(parent).bind(token).fetch_optional(&self.read).await?;
                match row {
                    Some(row) => Ok(Some(load_managed(&self.read, row).await?)),
                    None => Ok(None),
                }
            }

            #[tracing::instrument(skip(self, settings))]
            async fn update_managed_account(
                &self,
                parent: &str,
                token: &str,
                settings: &$crate::store::ManagedAccountSettings,
            ) -> anyhow::Result<Option<$crate::store::ManagedAccount>> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "UPDATE accounts SET name = $3, contact_email = $4, email_domain = $5 \
                     WHERE parent_account_token = $1 AND token = $2",
                )
                .bind(parent)
                .bind(token)
                .bind(&settings.name)
                .bind(&settings.contact_email)
                .bind(&settings.email_domain)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                set_managed_links(&mut *tx, token, settings).await?;
                tx.commit().await?;
                self.get_managed_account(parent, token).await
            }

            #[tracing::instrument(skip(self))]
            async fn delete_managed_account(&self, parent: &str, token: &str) -> anyhow::Result<bool> {
                let done = sqlx::query("DELETE FROM accounts WHERE parent_account_token = $1 AND token = $2")
                    .bind(parent)
                    .bind(token)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn apply_to_all_rules(&self, account: &str) -> anyhow::Result<Vec<$crate::store::BillingRuleRow>> {
                let sql = format!(
                    "SELECT {} FROM billing_rules WHERE account_token = $1 AND apply_to_all = $2 ORDER BY id",
                    $crate::store::sql::RULE_COLUMNS
                );
                let rows: Vec<$crate::store::sql::RuleRow> =
                    sqlx::query_as(&sql).bind(account).bind(true).fetch_all(&self.read).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn close(&self) {
                self.write.close().await;
                self.read.close().await;
            }
        }
    };
}
