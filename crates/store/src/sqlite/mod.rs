//! The SQLite backend: the zero-setup default, one file in the data dir.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one connection (no
//! `SQLITE_BUSY` retries, no lost writes) while reads use their own pool and run in parallel under WAL.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// The SQLite-backed store.
pub struct SqliteStore {
    /// Readers: as many as the settings allow; WAL lets them run beside the writer.
    read: SqlitePool,
    /// The single writer.
    write: SqlitePool,
    /// Where named locks live: one file per name, beside the database.
    locks: std::path::PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies the migrations.
    pub async fn connect(path: &str, max_readers: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .with_context(|| format!("invalid SQLite path {path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL under WAL is durable across application crashes; only an OS crash may lose the
            // last commits, which is the usual trade for a metadata store of this size.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // A ping before every acquire would double the round trips to SQLite's worker thread; a broken
        // connection to a local file is not a thing that heals by testing it.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("failed to open the SQLite database {path}"))?;
        sqlx::migrate!("src/sqlite/migrations").run(&write).await.context("failed to apply the SQLite migrations")?;
        let read = SqlitePoolOptions::new()
            .max_connections(max_readers.max(1))
            .test_before_acquire(false)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await
            .with_context(|| format!("failed to open the SQLite database {path} for reading"))?;
        Ok(SqliteStore { read, write, locks: std::path::PathBuf::from(format!("{path}.locks")) })
    }
}

impl SqliteStore {
    /// A named lock is an exclusive `flock` on a file of its own beside the database: held by one holder at a
    /// time, whether the others are in this process (`costd serve`) or another on the same data dir
    /// (`costd sync`), and let go by the kernel when its holder dies.
    async fn try_lock_named(&self, name: &str) -> anyhow::Result<Option<crate::StoreLock>> {
        let file_name: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let path = self.locks.join(file_name);
        // A local open and a non-blocking flock: microseconds, so done on the calling thread.
        std::fs::create_dir_all(&self.locks).with_context(|| format!("failed to create {}", self.locks.display()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(crate::StoreLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(anyhow::Error::new(e).context(format!("failed to lock {}", path.display())))
            }
        }
    }
}

// The SQL of every store method (`backend`), compiled for SQLite.
type Db = sqlx::Sqlite;
type This = SqliteStore;
/// No row locks: SQLite's single writer serialises write transactions anyway.
const LOCK: &str = "";
// Compiled twice on purpose (once per backend, with that backend's `Db`): not an accidental duplicate.
#[allow(clippy::duplicate_mod)]
#[path = "../backend/mod.rs"]
mod backend;
