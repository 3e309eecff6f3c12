//! The janitor, and the file intents that keep it from taking a file someone is about to commit.
//!
//! Three kinds of file go:
//! - retired files (of replaced or deleted uploads, listed in the store) once no query of this process
//!   has them pinned and they were retired longer ago than the grace period (queries of other processes);
//! - abandoned files: those of a file intent whose lease ran out (its writer died or lost the store),
//!   cleared together with the intent;
//! - orphans: `<token>.parquet` with no upload row and no intent (a writer that failed to remove its files,
//!   or one of a costd older than intents), older than the grace period and not pinned; and temporaries,
//!   `<token>.parquet.tmp` of an ingest that died, older than the grace period and not pinned (always on this
//!   node's local disk, whatever the storage).
//!
//! # Nothing acknowledged is lost: the argument
//!
//! Every writer of upload files (`service::uploads::upload`, behind both the HTTP upload and `costd import`,
//! on any node) follows one protocol:
//! 1. **intent** — [`begin_intent`] commits a `file_intents` row (token, node, lease) *before* the first byte
//!    of its files reaches the storage, and renews the lease every quarter of it while it works;
//! 2. **write** — the files go to the storage (rollups, then the upload file);
//! 3. **verify** — each file it wrote is looked up (HEAD) in the storage;
//! 4. **commit** — one transaction deletes the intent *and* inserts the upload row; without the intent row
//!    (`DELETE … affected 0 rows`) it records nothing ([`crate::store::UploadCommit::IntentLost`]).
//!
//! The janitor, one node at a time, (a) lists the storage, *then* (b) reads the intents, *then* (c) reads the
//! upload rows (live and retired). Take any file `F` of token `t` that a commit names.
//! - `F` can only be taken as an **orphan** if it was listed in (a), so `t`'s intent had committed before (a)
//!   (step 1 precedes step 2). If (b) does not see the intent, it was deleted before (b): by the commit,
//!   which inserted `t`'s row in the same transaction, so (c), later still, sees the row (a retired row is
//!   forgotten only by the janitor, which runs once at a time) and `F` is kept. The other deleters of an
//!   intent never commit `t` (below).
//! - `F` can only be taken as **abandoned** after [`crate::store::UploadStore::clear_expired_file_intent`]
//!   deleted `t`'s intent. That delete and the commit's delete of the same row exclude each other (row lock
//!   on PostgreSQL, the single writer on SQLite): if the janitor's came first, the commit finds no intent
//!   and records nothing, so nothing acknowledged names `F`; if the commit's came first, the janitor deletes
//!   nothing and keeps `F`.
//! - `F` is taken as **retired** only after its row was retired, which is the point of retiring.
//!
//! So whatever the timing — a slow bucket, a multi-GB multipart upload, a janitor whose pass started before
//! another node's commit — a committed upload's files stay until it is retired. Step 3 adds that they were
//! whole at commit: a file removed behind costd's back before the commit fails the upload instead of
//! acknowledging it. Nothing depends on clocks except *when* abandoned files go (a lease, renewed far more
//! often than it lasts) and when retired and orphan files go (the grace period, for queries of other
//! processes, which `engine::uploads` explains).
//!
//! Nothing stays behind either: a writer that fails before its commit removes its files and then ends its
//! intent; one whose commit's outcome it cannot know (a connection lost around COMMIT) leaves both, and the
//! lease decides (its intent gone: committed; still there: cleared with its files); a writer that dies
//! leaves an intent whose lease runs out; a file written after the janitor cleared its intent (a writer cut
//! off from the store) has neither intent nor row, and goes as an orphan after the grace period.
//!
//! Data exports (`service::exports`) are the other writer of shared files. Their row is created before
//! their file is written and only the expiry of that row removes the file, so an export's file is never
//! taken early; an export whose node died is failed once its intent's lease has run out.
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::storage::{list_local, remove_local};
/// The upload files and their readers, as the server's state holds them (the engine's type: HTTP names it
/// through this service, not the engine).
pub use crate::engine::uploads::UploadFiles;
use crate::engine::uploads::{file_kind, FileKind};
use crate::store::{FileIntent, Store};

/// What one janitor pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Files of retired uploads removed.
    pub retired: usize,
    /// Orphan and temporary files removed.
    pub orphans: usize,
    /// Intents whose lease ran out, cleared with their files.
    pub abandoned: usize,
    /// Retired files kept for now (pinned or still in their grace period).
    pub kept: usize,
    /// Whether the pass did the shared part (it held the janitor lock): one that found the lock taken only
    /// cleared this node's temporary files.
    pub shared: bool,
}

/// Milliseconds since the Unix epoch, as file intents count time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_until(files: &UploadFiles) -> i64 {
    now_ms().saturating_add(i64::try_from(files.lease().as_millis()).unwrap_or(i64::MAX))
}

/// Step 1 of the protocol in the module doc: records that `kind`'s files named after `token` are about to be
/// written. Call before the first byte reaches the storage, then run the work under [`with_lease`].
pub async fn begin_intent(store: &dyn Store, files: &UploadFiles, token: &str, kind: &str) -> anyhow::Result<()> {
    let intent = FileIntent {
        token: token.to_string(),
        kind: kind.to_string(),
        node: files.node().to_string(),
        lease_until_ms: lease_until(files),
    };
    store.begin_file_intent(&intent).await
}

/// Runs `work` while renewing `token`'s intent every quarter of the lease. A renewal that fails is logged
/// and tried again at the next tick; one that finds the intent gone is logged (the commit will refuse).
pub async fn with_lease<T>(store: &dyn Store, files: &UploadFiles, token: &str, work: impl Future<Output = T>) -> T {
    let renew = async {
        let every = (files.lease() / 4).max(Duration::from_millis(100));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.renew_file_intent(token, lease_until(files)).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(token, "a file intent was cleared while its writer still ran");
                    std::future::pending::<()>().await;
                }
                Err(e) => tracing::warn!(token, error = format!("{e:#}"), "could not renew a file intent"),
            }
        }
    };
    tokio::select! {
        done = work => done,
        () = renew => unreachable!("the renewal loop never ends"),
    }
}

/// One pass: removes what can go, forgets retired uploads whose files are gone.
///
/// With several nodes on one store, the part that touches shared files (retired, abandoned and orphan
/// files in the storage) runs on one node at a time, under the store's janitor lock; a node that finds it
/// taken only clears its own temporary files. The order of the reads is what the module doc's argument
/// rests on: the storage's listing, then the intents, then the upload rows.
///
/// The files gate is held exclusively only while the pins are copied and the store is read (no file
/// system or object store call, nothing on the blocking pool), so queries wait for it no longer than two
/// small store reads. That is exact: a query lists and pins under the gate's shared side, so a token it
/// listed is pinned before the copy, or it was listed after the store reads (and then it was live at
/// those reads: not retired, not an orphan).
#[tracing::instrument(skip_all)]
pub async fn collect(store: &dyn Store, files: &Arc<UploadFiles>, grace: Duration) -> anyhow::Result<Collected> {
    let lock = store.try_lock(JANITOR_LOCK).await?;
    let mut collected = Collected::default();

    // Listed before the pins are copied: an ingest that pins after the copy writes its temporary file after
    // this listing, so it is not in it.
    let spool = list_local(files.spool()).await?;
    // (a) the storage, before the intents and the rows (see the module doc).
    let stored = match &lock {
        Some(_) => files.storage().list().await?,
        None => Vec::new(),
    };
    let exclusive = files.exclusive().await;
    let pinned: HashSet<String> = files.pinned_tokens();
    let rows = match &lock {
        // (b) the intents, then (c) the rows.
        Some(_) => Some((store.file_intents().await, store.all_upload_tokens().await, store.retired_uploads().await)),
        None => None,
    };
    drop(exclusive);

    // Temporaries of ingests that died: always on local disk, this node's own.
    for file in spool {
        if let FileKind::Temporary(t) = file_kind(&file.name) {
            if !pinned.contains(&t) && file.age >= grace {
                remove_local(&files.spool().join(&file.name)).await?;
                collected.orphans += 1;
            }
        }
    }
    let (Some((intents, live, retired)), Some(lock)) = (rows, lock) else {
        return Ok(collected);
    };
    collected.shared = true;
    let (intents, retired) = (intents?, retired?);
    let live: HashSet<String> = live?.into_iter().map(String::from).collect();

    let now = chrono::Utc::now();
    let grace_chrono = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut forget = Vec::new();
    for (token, retired_at) in &retired {
        if pinned.contains(token.as_str()) || now.signed_duration_since(*retired_at) < grace_chrono {
            collected.kept += 1;
        } else {
            forget.push(token.clone());
        }
    }
    let mut remove: Vec<String> = forget.iter().map(|t| t.to_string()).collect();

    // Intents whose writer stopped renewing: the conditional delete is the fence against a late commit, so
    // it comes before the files go.
    let now_ms = now_ms();
    let intended: HashSet<&str> = intents.iter().map(|i| i.token.as_str()).collect();
    for intent in intents.iter().filter(|i| i.kind == FileIntent::UPLOAD && i.lease_until_ms < now_ms) {
        if store.clear_expired_file_intent(&intent.token, now_ms).await? {
            tracing::warn!(
                upload = intent.token,
                node = intent.node,
                "removed the files of an upload whose writer stopped"
            );
            remove.push(intent.token.clone());
            collected.abandoned += 1;
        }
    }

    let retired_tokens: HashSet<String> = retired.iter().map(|(t, _)| t.to_string()).collect();
    for file in stored {
        if let FileKind::Upload(t) = file_kind(&file.name) {
            let known = live.contains(&t) || retired_tokens.contains(&t) || intended.contains(t.as_str());
            if !known && !pinned.contains(&t) && file.age >= grace {
                remove.push(t);
                collected.orphans += 1;
            }
        }
    }
    remove.sort();
    remove.dedup();
    // All at once (in bulk in a bucket); a retired upload is forgotten only once its files are gone.
    files.storage().remove_all(&remove).await?;

    collected.retired = forget.len();
    store.forget_retired_uploads(&forget).await?;
    // Now, not when the guard drops: on PostgreSQL a dropped lock is held until the pool rolls its
    // transaction back, and a pass right after this one (another node's, or the next tick) would skip.
    lock.release().await;
    if collected.retired + collected.orphans + collected.abandoned > 0 {
        tracing::info!(
            retired = collected.retired,
            orphans = collected.orphans,
            abandoned = collected.abandoned,
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
    super::every(every, stop, || async {
        if let Err(e) = collect(store.as_ref(), &files, grace).await {
            tracing::warn!(error = format!("{e:#}"), "the upload janitor failed; it will try again");
        }
    })
    .await
}
