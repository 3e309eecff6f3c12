//! Upload files: where they live, and who may still read them.
//!
//! Layout: `<upload token>.parquet` in the [`Storage`] (`<data-dir>/uploads/` by default, or a bucket), plus
//! `<data-dir>/uploads/<upload token>.parquet.tmp` on local disk while its ingest runs. A file is written
//! once and never changed: replacing or deleting an upload only retires its file
//! in the store, and the janitor (`service::files`) removes a retired file when no query can still read it.
//!
//! "No query can still read it" has two halves:
//! - in this process, [`UploadFiles`] counts readers per file ([`Pins`]). A query lists its uploads and pins
//!   them under the *gate*'s shared side; the janitor takes the gate's exclusive side while it copies the
//!   pins and reads the store (and only then: no file or object store call waits under it), so a file
//!   listed by a query is always pinned before the janitor can see it unpinned;
//! - other processes sharing the store (PostgreSQL nodes, a `costd query` beside `costd serve`) are covered
//!   by age: a retired file is kept for a grace period longer than any query may run.
//!
//! Files being *written* are another matter, with its own guarantee: a file intent in the store, which every
//! node's janitor honours (`service::files` has the argument).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use super::storage::Storage;

/// The upload files of one deployment, with this process's readers.
#[derive(Debug)]
pub struct UploadFiles {
    /// Where committed files live.
    storage: Storage,
    /// The local directory ingests write their temporary files in.
    spool: PathBuf,
    /// Readers (queries) and writers (uploads in flight) per upload token.
    pins: Mutex<HashMap<String, usize>>,
    /// Shared while a query lists and pins its files (and an upload pins its token); exclusive while the
    /// janitor decides what to remove.
    gate: tokio::sync::RwLock<()>,
    /// This process, as its file intents name it (host, pid and a random suffix).
    node: String,
    /// How long this process's file intents stay valid without a renewal (`service::files`).
    lease: std::time::Duration,
}

/// How long a file intent stays valid without a renewal, by default: a writer that died leaves its files in
/// the storage this long before the janitor may take them.
pub const DEFAULT_INTENT_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Files held open for reading or writing; dropping this releases them.
#[derive(Debug)]
pub struct Pins {
    files: Arc<UploadFiles>,
    tokens: Vec<String>,
}

impl Drop for Pins {
    fn drop(&mut self) {
        let mut pins = self.files.pins.lock().unwrap_or_else(|e| e.into_inner());
        for token in &self.tokens {
            if let Some(n) = pins.get_mut(token) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(token);
                }
            }
        }
    }
}

impl UploadFiles {
    /// The upload files under `data_dir` (the default local storage).
    pub fn new(data_dir: &Path) -> Arc<UploadFiles> {
        let dir = data_dir.join("uploads");
        Self::with_storage(dir.clone(), Storage::Local { dir })
    }

    /// Upload files in `storage`, ingested through temporary files in the local directory `spool`.
    pub fn with_storage(spool: PathBuf, storage: Storage) -> Arc<UploadFiles> {
        Self::with_lease(spool, storage, DEFAULT_INTENT_LEASE)
    }

    /// Like [`Self::with_storage`], with file intents leased for `lease` at a time.
    pub fn with_lease(spool: PathBuf, storage: Storage, lease: std::time::Duration) -> Arc<UploadFiles> {
        Arc::new(UploadFiles {
            storage,
            spool,
            pins: Mutex::new(HashMap::new()),
            gate: tokio::sync::RwLock::new(()),
            node: node_name(),
            lease,
        })
    }

    /// This process, as its file intents name it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How long this process's file intents stay valid without a renewal.
    pub fn lease(&self) -> std::time::Duration {
        self.lease
    }

    /// Where committed files live.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The local directory of temporary files (the storage itself, when it is local).
    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// Where the ingest of upload `token` writes before the file is made permanent.
    pub fn tmp_path(&self, token: &str) -> PathBuf {
        self.spool.join(format!("{token}.parquet.tmp"))
    }

    fn pin_now(self: &Arc<Self>, tokens: Vec<String>) -> Pins {
        let mut pins = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        for token in &tokens {
            *pins.entry(token.clone()).or_default() += 1;
        }
        Pins { files: self.clone(), tokens }
    }

    /// Runs `list` (a store read of live uploads) and pins what it returns, as one step the janitor cannot
    /// come between. The pins last as long as the returned [`Pins`].
    pub async fn list_and_pin<T, F>(
        self: &Arc<Self>,
        list: F,
        tokens: impl Fn(&T) -> Vec<String>,
    ) -> anyhow::Result<(T, Pins)>
    where
        F: std::future::Future<Output = anyhow::Result<T>>,
    {
        let _shared = self.gate.read().await;
        let listed = list.await?;
        let pins = self.pin_now(tokens(&listed));
        Ok((listed, pins))
    }

    /// Pins a new upload's token for its ingest, persist and commit.
    pub async fn pin_new(self: &Arc<Self>, token: &str) -> Pins {
        let _shared = self.gate.read().await;
        self.pin_now(vec![token.to_string()])
    }

    /// Holds the janitor's side of the gate: no query lists or pins files until it is dropped.
    pub async fn exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().await
    }

    /// Whether any reader or writer in this process holds `token` (call with [`Self::exclusive`] held).
    pub fn is_pinned(&self, token: &str) -> bool {
        self.pins.lock().unwrap_or_else(|e| e.into_inner()).contains_key(token)
    }

    /// Every token pinned now (the janitor copies this under [`Self::exclusive`]).
    pub fn pinned_tokens(&self) -> std::collections::HashSet<String> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// How many tokens are pinned now (for tests and logs).
    pub fn pinned_count(&self) -> usize {
        self.pins.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// `host:pid:random`: tells the processes of a deployment apart in the store (and a restarted one from its
/// earlier self).
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{}", std::process::id(), &costd_model::token::new_token("")[..6])
}

/// What a file in the uploads directory is, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// `<token>.parquet`: a committed (or about to be committed) upload.
    Upload(String),
    /// `<token>.parquet.tmp`: an ingest in flight, or one that died.
    Temporary(String),
    /// Anything else: never touched.
    Other,
}

/// Classifies a file name of the uploads directory.
pub fn file_kind(name: &str) -> FileKind {
    // An upload's rollups live and die with it.
    for level in super::rollup::Level::ALL {
        let suffix = level.suffix();
        if let Some(token) = name.strip_suffix(".parquet.tmp").and_then(|n| n.strip_suffix(suffix)) {
            return FileKind::Temporary(token.to_string());
        }
        if let Some(token) = name.strip_suffix(".parquet").and_then(|n| n.strip_suffix(suffix)) {
            return FileKind::Upload(token.to_string());
        }
    }
    if let Some(token) = name.strip_suffix(".parquet.tmp") {
        FileKind::Temporary(token.to_string())
    } else if let Some(token) = name.strip_suffix(".parquet") {
        FileKind::Upload(token.to_string())
    } else {
        FileKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pins_count_readers_and_release_on_drop() {
        let files = UploadFiles::new(Path::new("/nonexistent"));
        let (_, first) = files
            .list_and_pin(async { Ok(vec!["u1".to_string(), "u2".to_string()]) }, |v: &Vec<String>| v.clone())
            .await
            .unwrap();
        let second = files.pin_new("u1").await;
        assert!(files.is_pinned("u1") && files.is_pinned("u2"));
        drop(first);
        assert!(files.is_pinned("u1") && !files.is_pinned("u2"));
        drop(second);
        assert_eq!(files.pinned_count(), 0);
    }

    #[tokio::test]
    async fn the_janitor_side_of_the_gate_holds_back_new_pins() {
        let files = UploadFiles::new(Path::new("/nonexistent"));
        let exclusive = files.exclusive().await;
        let pin = tokio::spawn({
            let files = files.clone();
            async move { files.pin_new("u1").await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!files.is_pinned("u1"), "no pin while the janitor decides");
        drop(exclusive);
        let _pin = pin.await.unwrap();
        assert!(files.is_pinned("u1"));
    }

    #[test]
    fn file_names_tell_uploads_from_temporaries() {
        assert_eq!(file_kind("usr_csts_upld_1.parquet"), FileKind::Upload("usr_csts_upld_1".into()));
        assert_eq!(file_kind("usr_csts_upld_1.parquet.tmp"), FileKind::Temporary("usr_csts_upld_1".into()));
        assert_eq!(file_kind("usr_csts_upld_1.rollup.parquet"), FileKind::Upload("usr_csts_upld_1".into()));
        assert_eq!(file_kind("usr_csts_upld_1.rollup.parquet.tmp"), FileKind::Temporary("usr_csts_upld_1".into()));
        assert_eq!(file_kind("usr_csts_upld_1.rollup.coarse.parquet"), FileKind::Upload("usr_csts_upld_1".into()));
        let coarse_tmp = "usr_csts_upld_1.rollup.coarse.parquet.tmp";
        assert_eq!(file_kind(coarse_tmp), FileKind::Temporary("usr_csts_upld_1".into()));
        assert_eq!(file_kind("notes.txt"), FileKind::Other);
    }
}
