//! The SQL both backends share, written once. `impl_store!` expands the [`Store`](super::Store) methods
//! for a backend struct with `read` and `write` pools of one sqlx database type; only connection set-up
//! and migrations differ between backends. Placeholders are `$N`, which sqlx's SQLite driver also binds.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Account, BillingRuleRow, Principal, Workspace};
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

/// Implements `Store` for `$store`, a struct with `read: Pool<$db>` and `write: Pool<$db>`.
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
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

            async fn close(&self) {
                self.write.close().await;
                self.read.close().await;
            }
        }
    };
}
