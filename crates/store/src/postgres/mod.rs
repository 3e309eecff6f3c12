//! The PostgreSQL backend: the production metadata store, shared by several costd processes.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The PostgreSQL-backed store. PostgreSQL handles concurrent writers itself, so reads and writes share
/// one pool (`read` and `write` are clones of it).
pub struct PgStore {
    read: PgPool,
    write: PgPool,
}

impl PgStore {
    /// Connects (a `?options=-c search_path=…` in the URL picks a schema) and applies the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            // Fail a request fast rather than queue it behind a dead database for the default 30 s.
            .acquire_timeout(Duration::from_secs(5))
            // No ping per acquire (a network round trip per query); a dead connection fails its query,
            // and idle connections are recycled before servers or proxies drop them.
            .test_before_acquire(false)
            .idle_timeout(Duration::from_secs(60))
            .connect(url)
            .await
            .context("failed to connect to PostgreSQL")?;
        sqlx::migrate!("src/postgres/migrations")
            .run(&pool)
            .await
            .context("failed to apply the PostgreSQL migrations")?;
        Ok(PgStore { read: pool.clone(), write: pool })
    }
}

impl PgStore {
    /// A transaction-scoped advisory lock: it ends with the transaction the guard holds (rolled back when
    /// dropped), or with the connection if this process dies.
    async fn try_lock_named(&self, name: &str) -> anyhow::Result<Option<crate::StoreLock>> {
        let mut tx = self.write.begin().await?;
        // Keyed by schema too: deployments sharing one database in separate schemas never wait on each other.
        let taken: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema() || ':' || $1, 0))")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        Ok(taken.then(|| crate::StoreLock::new(tx)))
    }
}

// The SQL of every store method (`backend`), compiled for PostgreSQL.
type Db = sqlx::Postgres;
type This = PgStore;
/// Row locks: `SELECT … FOR UPDATE` holds the row until the transaction ends.
const LOCK: &str = " FOR UPDATE";
// Compiled twice on purpose (once per backend, with that backend's `Db`): not an accidental duplicate.
#[allow(clippy::duplicate_mod)]
#[path = "../backend/mod.rs"]
mod backend;
