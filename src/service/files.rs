//! The janitor: removes upload files that no query can still read.
//!
//! Three kinds of file go:
//! - retired files (of replaced or deleted uploads, listed in the store) once no query of this process
//!   has them pinned and they were retired longer ago than the grace period (queries of other processes);
//! - orphans: `<token>.parquet` with no upload row (a crash between persist and commit, or a commit whose
//!   answer was lost), older than the grace period and not pinned;
//! - temporaries: `<token>.parquet.tmp` of an ingest that died, older than the grace period and not pinned
//!   (always on this node's local disk, whatever the storage).
//!
//! Why this is safe: see `engine::uploads`. The janitor takes the gate's exclusive side, copies the set of
//! pinned tokens, and only then reads the store: a token pinned before the copy is kept, and a token
//! unpinned before it was committed (or retired) before the store read, so the read sees it as it is.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::storage::{list_local, remove_local};
use crate::engine::uploads::{file_kind, FileKind, UploadFiles};
use crate::store::Store;

/// What one janitor pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Files of retired uploads removed.
    pub retired: usize,
    /// Orphan and temporary files removed.
    pub orphans: usize,
    /// Retired files kept for now (pinned or still in their grace period).
    pub kept: usize,
}

/// One pass: removes what can go, forgets retired uploads whose files are gone.
///
/// With several nodes on one store, the part that touches shared files (retired files and orphans in the
/// storage) runs on one node at a time, under the store's janitor lock; a node that finds it taken only
/// clears its own temporary files.
#[tracing::instrument(skip_all)]
pub async fn collect(store: &dyn Store, files: &Arc<UploadFiles>, grace: Duration) -> anyhow::Result<Collected> {
    let lock = store.try_lock(JANITOR_LOCK).await?;
    let exclusive = files.exclusive().await;
    let pinned: HashSet<String> = files.pinned_tokens();
    let mut collected = Collected::default();

    // Temporaries of ingests that died: always on local disk, this node's own.
    for file in list_local(files.spool()).await? {
        if let FileKind::Temporary(t) = file_kind(&file.name) {
            if !pinned.contains(&t) && file.age >= grace {
                remove_local(&files.spool().join(&file.name)).await?;
                collected.orphans += 1;
            }
        }
    }
    let Some(_lock) = lock else {
        drop(exclusive);
        return Ok(collected);
    };

    let live: HashSet<String> = store.all_upload_tokens().await?.into_iter().map(String::from).collect();
    let retired = store.retired_uploads().await?;
    let now = chrono::Utc::now();
    let grace_chrono = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut forget = Vec::new();
    for (token, retired_at) in &retired {
        if pinned.contains(token.as_str()) || now.signed_duration_since(*retired_at) < grace_chrono {
            collected.kept += 1;
        } else {
            files.storage().remove(token).await?;
            forget.push(token.clone());
        }
    }
    let retired_tokens: HashSet<String> = retired.iter().map(|(t, _)| t.to_string()).collect();
    // Orphans: a crash between persist and commit, or a commit whose answer was lost.
    for file in files.storage().list().await? {
        if let FileKind::Upload(t) = file_kind(&file.name) {
            if !live.contains(&t) && !retired_tokens.contains(&t) && !pinned.contains(&t) && file.age >= grace {
                files.storage().remove(&t).await?;
                collected.orphans += 1;
            }
        }
    }
    drop(exclusive);

    collected.retired = forget.len();
    store.forget_retired_uploads(&forget).await?;
    if collected.retired + collected.orphans > 0 {
        tracing::info!(
            retired = collected.retired,
            orphans = collected.orphans,
            kept = collected.kept,
            "removed upload files"
        );
    }
    Ok(collected)
}

/// The name of the store lock one janitor at a time holds.
pub const JANITOR_LOCK: &str = "costd-upload-janitor";

/// Runs [`collect`] now and then every `every` until `stop` resolves; a failed pass is logged and retried
/// at the next tick.
pub async fn run(
    store: crate::store::DynStore,
    files: Arc<UploadFiles>,
    grace: Duration,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {
                if let Err(e) = collect(store.as_ref(), &files, grace).await {
                    tracing::warn!(error = format!("{e:#}"), "the upload janitor failed; it will try again");
                }
            }
        }
    }
}
