//! The SQL of every store method, written once and compiled once per backend: `postgres` and `sqlite`
//! each declare this module (`#[path]`) beside their own `Db` (the sqlx database type), `This` (their store
//! struct, with `read` and `write` pools of `Db`) and `LOCK` (the row-lock clause: ` FOR UPDATE` on
//! PostgreSQL, empty on SQLite, whose single writer serialises anyway). So the code is plain Rust (formatted,
//! followed by an IDE, no macro), each backend's is type-checked on its own, and only connection set-up and
//! migrations differ between them. Placeholders are `$N`, which sqlx's SQLite driver also binds. The row
//! types and column lists both share are in `crate::sql`.
//!
//! One file per resource, each implementing its part of the store ([`crate::AccountStore`], …); the helpers
//! several share are here.

mod accounts;
mod audit_logs;
mod billing_profiles;
mod business_metrics;
mod exchange_rates;
mod exports;
mod integrations;
mod invoices;
mod managed_accounts;
mod notifications;
mod reports;
mod rules;
mod segments;
mod tag_settings;
mod tokens;
mod uploads;
mod users;
mod virtual_tags;
mod wing;
mod workspaces;

#[allow(unused_imports)]
pub(super) use super::{Db, This, LOCK};

/// The integration's row id, locked until the transaction ends (`None`: not in this account).
async fn lock_integration(
    conn: &mut <Db as sqlx::Database>::Connection,
    account: &::costd_model::token::AccountToken,
    token: &str,
) -> anyhow::Result<Option<i64>> {
    let sql = format!("SELECT id FROM integrations WHERE account_token = $1 AND token = $2{}", LOCK);
    Ok(sqlx::query_scalar(&sql).bind(crate::Text(&account)).bind(token).fetch_optional(&mut *conn).await?)
}

/// Records uploads as retired (inside the caller's transaction): their files go once no query needs them.
async fn retire_uploads(
    conn: &mut <Db as sqlx::Database>::Connection,
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
    conn: &mut <Db as sqlx::Database>::Connection,
    account: &::costd_model::token::AccountToken,
    settings: &crate::ManagedAccountSettings,
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM managed_account_integrations WHERE account_token = $1")
        .bind(crate::Text(&account))
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM managed_account_rules WHERE account_token = $1")
        .bind(crate::Text(&account))
        .execute(&mut *conn)
        .await?;
    for (position, token) in settings.integration_tokens.iter().enumerate() {
        sqlx::query(
            "INSERT INTO managed_account_integrations (account_token, integration_token, position) VALUES ($1, $2, $3)",
        )
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
async fn load_managed(pool: &sqlx::Pool<Db>, row: crate::sql::ManagedRow) -> anyhow::Result<crate::ManagedAccount> {
    let token = row.token().clone();
    let integrations: Vec<::costd_model::token::IntegrationToken> = crate::Text::all(
        sqlx::query_scalar(
            "SELECT integration_token FROM managed_account_integrations WHERE account_token = $1 ORDER BY position",
        )
        .bind(crate::Text(&token))
        .fetch_all(pool)
        .await?,
    );
    let rules: Vec<::costd_model::token::RuleToken> = crate::Text::all(
        sqlx::query_scalar("SELECT rule_token FROM managed_account_rules WHERE account_token = $1 ORDER BY position")
            .bind(crate::Text(&token))
            .fetch_all(pool)
            .await?,
    );
    Ok(row.into_managed(integrations, rules))
}

/// `column` of `table` (a managed account's link table) for each of `accounts`, in position order.
async fn links_of<T>(
    pool: &sqlx::Pool<Db>,
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
        let mut q = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT account_token, {column} FROM {table} WHERE account_token IN ("
        ));
        let mut list = q.separated(", ");
        for a in chunk {
            list.push_bind(crate::Text(a));
        }
        list.push_unseparated(") ORDER BY account_token, position");
        let pairs: Vec<(crate::Text<::costd_model::token::AccountToken>, crate::Text<T>)> =
            q.build_query_as().fetch_all(pool).await?;
        for (account, linked) in pairs {
            links.entry(account.0).or_default().push(linked.0);
        }
    }
    Ok(links)
}

/// The workspaces of these integrations' rows (all of the account's, then picked per integration).
async fn integration_workspaces(
    pool: &sqlx::Pool<Db>,
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
    Ok(crate::sql::group_workspaces(pairs))
}

/// Inserts a workspace on a connection that may be inside a transaction (account creation).
async fn insert_workspace(
    conn: &mut <Db as sqlx::Database>::Connection,
    account: &::costd_model::token::AccountToken,
    settings: &::costd_model::workspace::WorkspaceSettings,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<crate::Workspace> {
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
    Ok(crate::Workspace { token, settings: settings.clone(), created_at: now })
}

#[async_trait::async_trait]
impl crate::Store for This {
    async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn try_lock(&self, name: &str) -> anyhow::Result<Option<crate::StoreLock>> {
        self.try_lock_named(name).await
    }
}
