//! The SQL both backends share, written once. `impl_store!` expands the [`Store`](super::Store) methods
//! for a backend struct with `read` and `write` pools of one sqlx database type; only connection set-up
//! and migrations differ between backends. Placeholders are `$N`, which sqlx's SQLite driver also binds.
//!
//! One file per resource, each with its row types and a macro implementing its part of the store
//! ([`crate::AccountStore`], …); [`impl_store!`] puts them together, with the helpers several share.

#[macro_use]
mod accounts;
#[macro_use]
mod billing_profiles;
#[macro_use]
mod exports;
#[macro_use]
mod integrations;
#[macro_use]
mod invoices;
#[macro_use]
mod managed_accounts;
#[macro_use]
mod notifications;
#[macro_use]
mod reports;
#[macro_use]
mod rules;
#[macro_use]
mod tokens;
#[macro_use]
mod uploads;
#[macro_use]
mod users;
#[macro_use]
mod workspaces;

pub(crate) use accounts::AccountRow;
pub(crate) use billing_profiles::{settings_json, ProfileRow, PROFILE_COLUMNS};
pub(crate) use exports::{ExportRow, EXPORT_COLUMNS};
pub(crate) use integrations::{group_workspaces, IntegrationRow, SyncedPeriodRow};
pub(crate) use invoices::{document_json, status_in, InvoiceRow, INVOICE_COLUMNS};
pub(crate) use managed_accounts::{InvoicingDetails, ManagedRow, MANAGED_COLUMNS};
pub(crate) use notifications::{NotificationRow, NOTIFICATION_COLUMNS};
pub(crate) use reports::{ReportObjectRow, REPORT_OBJECT_COLUMNS};
pub(crate) use rules::RuleRow;
pub(crate) use tokens::{PrincipalRow, SessionRow};
pub(crate) use uploads::UploadRow;
pub(crate) use users::{UserRow, USER_COLUMNS};
pub(crate) use workspaces::WorkspaceRow;

pub(crate) const INTEGRATION_COLUMNS: &str =
    "token, provider, name, description, status, last_updated, created_at, location, \
     last_synced_at, last_error";
pub(crate) const UPLOAD_COLUMNS: &str = "token, integration_token, filename, amount, currency, row_count, start_date, \
     end_date, import_status, created_by_token, created_at, rollup_decimals";

pub(crate) const ACCOUNT_COLUMNS: &str = "token, name, parent_account_token, owner_user_token, created_at";
pub(crate) const WORKSPACE_COLUMNS: &str =
    "token, name, enable_currency_conversion, currency, exchange_rate_date, created_at";
pub(crate) const RULE_COLUMNS: &str =
    "token, title, rule_type, rule_group, charge_type, percentage, service, category, \
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
            account: &::costd_model::token::AccountToken,
            token: &str,
        ) -> anyhow::Result<Option<i64>> {
            let sql = format!("SELECT id FROM integrations WHERE account_token = $1 AND token = $2{}", $lock);
            Ok(sqlx::query_scalar(&sql).bind(crate::Text(&account)).bind(token).fetch_optional(&mut *conn).await?)
        }

        /// Records uploads as retired (inside the caller's transaction): their files go once no query needs them.
        async fn retire_uploads(
            conn: &mut <$db as sqlx::Database>::Connection,
            tokens: &[::costd_model::token::UploadToken],
        ) -> anyhow::Result<()> {
            // Full precision: the janitor compares this with the grace period.
            let now = chrono::Utc::now();
            for token in tokens {
                sqlx::query("INSERT INTO retired_uploads (token, retired_at) VALUES ($1, $2)")
                    .bind(crate::Text(&token))
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Replaces a managed account's integration and rule lists (inside the caller's transaction).
        async fn set_managed_links(
            conn: &mut <$db as sqlx::Database>::Connection,
            account: &::costd_model::token::AccountToken,
            settings: &$crate::ManagedAccountSettings,
        ) -> anyhow::Result<()> {
            sqlx::query("DELETE FROM managed_account_integrations WHERE account_token = $1").bind(crate::Text(&account)).execute(&mut *conn).await?;
            sqlx::query("DELETE FROM managed_account_rules WHERE account_token = $1").bind(crate::Text(&account)).execute(&mut *conn).await?;
            for (position, token) in settings.integration_tokens.iter().enumerate() {
                sqlx::query("INSERT INTO managed_account_integrations (account_token, integration_token, position) VALUES ($1, $2, $3)")
                    .bind(crate::Text(&account))
                    .bind(crate::Text(&token))
                    .bind(position as i64)
                    .execute(&mut *conn)
                    .await?;
            }
            for (position, token) in settings.rule_tokens.iter().enumerate() {
                sqlx::query("INSERT INTO managed_account_rules (account_token, rule_token, position) VALUES ($1, $2, $3)")
                    .bind(crate::Text(&account))
                    .bind(crate::Text(&token))
                    .bind(position as i64)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// A managed account's row plus its links.
        async fn load_managed(
            pool: &sqlx::Pool<$db>,
            row: $crate::sql::ManagedRow,
        ) -> anyhow::Result<$crate::ManagedAccount> {
            let token = row.token().clone();
            let integrations: Vec<::costd_model::token::IntegrationToken> = crate::Text::all(sqlx::query_scalar(
                "SELECT integration_token FROM managed_account_integrations WHERE account_token = $1 ORDER BY position",
            )
            .bind(crate::Text(&token))
            .fetch_all(pool)
            .await?);
            let rules: Vec<::costd_model::token::RuleToken> =
                crate::Text::all(sqlx::query_scalar("SELECT rule_token FROM managed_account_rules WHERE account_token = $1 ORDER BY position")
                    .bind(crate::Text(&token))
                    .fetch_all(pool)
                    .await?);
            Ok(row.into_managed(integrations, rules))
        }

        /// `column` of `table` (a managed account's link table) for each of `accounts`, in position order.
        async fn links_of<T>(
            pool: &sqlx::Pool<$db>,
            table: &str,
            column: &str,
            accounts: &[::costd_model::token::AccountToken],
        ) -> anyhow::Result<std::collections::HashMap<::costd_model::token::AccountToken, Vec<T>>>
        where
            T: crate::StoredText + Send + Unpin,
        {
            let mut links: std::collections::HashMap<::costd_model::token::AccountToken, Vec<T>> =
                std::collections::HashMap::new();
            for chunk in accounts.chunks(500) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT account_token, {column} FROM {table} WHERE account_token IN ("
                ));
                let mut list = q.separated(", ");
                for a in chunk {
                    list.push_bind(crate::Text(a));
                }
                list.push_unseparated(") ORDER BY account_token, position");
                let pairs: Vec<(crate::Text<::costd_model::token::AccountToken>, crate::Text<T>)> = q.build_query_as().fetch_all(pool).await?;
                for (account, linked) in pairs {
                    links.entry(account.0).or_default().push(linked.0);
                }
            }
            Ok(links)
        }

        /// The workspaces of these integrations' rows (all of the account's, then picked per integration).
        async fn integration_workspaces(
            pool: &sqlx::Pool<$db>,
            account: &::costd_model::token::AccountToken,
        ) -> anyhow::Result<std::collections::HashMap<String, Vec<String>>> {
            let pairs: Vec<(String, String)> = sqlx::query_as(
                "SELECT iw.integration_token, iw.workspace_token FROM integration_workspaces iw \
                 JOIN integrations i ON i.token = iw.integration_token \
                 WHERE i.account_token = $1 ORDER BY iw.integration_token, iw.position",
            )
            .bind(crate::Text(&account))
            .fetch_all(pool)
            .await?;
            Ok($crate::sql::group_workspaces(pairs))
        }

        /// Inserts a workspace on a connection that may be inside a transaction (account creation).
        async fn insert_workspace(
            conn: &mut <$db as sqlx::Database>::Connection,
            account: &::costd_model::token::AccountToken,
            settings: &::costd_model::workspace::WorkspaceSettings,
            now: chrono::DateTime<chrono::Utc>,
        ) -> anyhow::Result<$crate::Workspace> {
            let token = ::costd_model::token::new_token(::costd_model::token::prefix::WORKSPACE);
            sqlx::query(
                "INSERT INTO workspaces (token, account_token, name, enable_currency_conversion, currency, \
                 exchange_rate_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&token)
            .bind(crate::Text(&account))
            .bind(&settings.name)
            .bind(settings.enable_currency_conversion)
            .bind(&settings.currency)
            .bind(&settings.exchange_rate_date)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok($crate::Workspace { token, settings: settings.clone(), created_at: now })
        }

        impl_accounts!($store, $db, $lock);
        impl_tokens!($store, $db, $lock);
        impl_workspaces!($store, $db, $lock);
        impl_rules!($store, $db, $lock);
        impl_integrations!($store, $db, $lock);
        impl_uploads!($store, $db, $lock);
        impl_managed_accounts!($store, $db, $lock);
        impl_billing_profiles!($store, $db, $lock);
        impl_invoices!($store, $db, $lock);
        impl_reports!($store, $db, $lock);
        impl_notifications!($store, $db, $lock);
        impl_exports!($store, $db, $lock);
        impl_users!($store, $db, $lock);

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn close(&self) {
                self.write.close().await;
                self.read.close().await;
            }

            async fn try_lock(&self, name: &str) -> anyhow::Result<Option<$crate::StoreLock>> {
                self.try_lock_named(name).await
            }
        }
    };
}
