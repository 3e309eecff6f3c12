//! The janitor: removes upload files that no query can still read.
//!
//! Three kinds of file go:
//! - retired files (of replaced or deleted uploads, listed in the store) once no query of this process
//!   has them pinned and they were retired longer ago than the grace period (queries of other processes);
//! - orphans: `<token>.parquet` with no upload row (a crash between persist and commit, or a commit whose
//!   answer was lost), older than the grace period and not pinned;
//! - temporaries: `<token>.parquet.tmp` of an ingest that died, older than the grace period and not pinned.
//!
//! Why this is safe: see `engine::uploads`. The janitor takes the gate's exclusive side, copies the set of
//! pinned tokens, and only then reads the store: a token pinned before the copy is kept, and a token
//! unpinned before it was committed (or retired) before the store read, so the read sees it as it is.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;

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
#[tracing::instrument(skip_all)]
pub async fn collect(store: &dyn Store, files: &Arc<UploadFiles>, grace: Duration) -> anyhow::Result<Collected> {
    let exclusive = files.exclusive().await;
    let pinned: HashSet<String> = files.pinned_tokens();
    let live: HashSet<String> = store.all_upload_tokens().await?.into_iter().map(String::from).collect();
    let retired = store.retired_uploads().await?;
    let now = chrono::Utc::now();
    let grace_chrono = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);

    let mut collected = Collected::default();
    let mut forget = Vec::new();
    let mut remove = Vec::new();
    for (token, retired_at) in &retired {
        if pinned.contains(token.as_str()) || now.signed_duration_since(*retired_at) < grace_chrono {
            collected.kept += 1;
        } else {
            remove.push(files.path(token));
            forget.push(token.clone());
        }
    }
    let retired_tokens: HashSet<String> = retired.iter().map(|(t, _)| t.to_string()).collect();
    let dir = files.dir().to_path_buf();
    let removable = move |name: &str, age: Duration| match file_kind(name) {
        FileKind::Upload(t) => {
            !live.contains(&t) && !retired_tokens.contains(&t) && !pinned.contains(&t) && age >= grace
        }
        FileKind::Temporary(t) => !pinned.contains(&t) && age >= grace,
        FileKind::Other => false,
    };
    let orphans = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut removed = 0;
        for path in &remove {
            remove_if_there(path)?;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| SystemTime::now().duration_since(t).unwrap_or_default())
                .unwrap_or(Duration::MAX);
            if removable(&name, age) {
                remove_if_there(&entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    })
    .await
    .context("the janitor's file pass panicked")??;
    drop(exclusive);

    collected.retired = forget.len();
    collected.orphans = orphans;
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

fn remove_if_there(path: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("failed to remove {}", path.display())),
    }
}

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
