//! Where uploads' Parquet files live, the start-up sweep of orphans, and the scan of live uploads that
//! the costs query builds on.
//!
//! Layout: `<data-dir>/uploads/<upload token>.parquet`, plus `*.parquet.tmp` files while an ingest runs.
//! A file is live exactly when the store has a row for its token: the store is the source of truth, and
//! the file is written (and fsynced) before that row is committed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::store::{Store, Upload};

/// The directory of upload files.
pub fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// The Parquet file of a committed upload.
pub fn upload_path(data_dir: &Path, upload_token: &str) -> PathBuf {
    uploads_dir(data_dir).join(format!("{upload_token}.parquet"))
}

/// Removes the files of uploads that are no longer live (after a delete or a replacement). A file that is
/// already gone is fine: the sweep at start-up may have taken it.
pub fn remove_upload_files(data_dir: &Path, tokens: &[String]) {
    for token in tokens {
        let path = upload_path(data_dir, token);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an upload file");
            }
        }
    }
}

/// Deletes temporary files and files of no live upload, older than `min_age`. A single process (SQLite)
/// sweeps everything at start-up; processes sharing a store (PostgreSQL) pass an age that no ingest in
/// flight on another process can reach. Returns how many files were removed.
#[tracing::instrument(skip(live_tokens))]
pub fn sweep_orphans(data_dir: &Path, live_tokens: &[String], min_age: Duration) -> anyhow::Result<usize> {
    let dir = uploads_dir(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
    };
    let live: std::collections::HashSet<&str> = live_tokens.iter().map(String::as_str).collect();
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        let orphan = name.ends_with(".tmp") || name.strip_suffix(".parquet").is_some_and(|token| !live.contains(token));
        let old_enough = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| SystemTime::now().duration_since(t).unwrap_or_default() >= min_age)
            .unwrap_or(true);
        if orphan && old_enough {
            std::fs::remove_file(entry.path()).with_context(|| format!("failed to remove orphan {name}"))?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed orphan upload files");
    }
    Ok(removed)
}

/// Reads every row of one upload's file as Arrow batches of the cost schema.
pub fn read_upload(path: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(64 * 1024).build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// The cost rows of the live uploads of `integrations` in `account`, with the upload each came from.
/// Which uploads are live is read in one store statement, so a concurrent replace or delete is seen
/// entirely or not at all.
pub async fn scan_live_uploads(
    store: &dyn Store,
    data_dir: &Path,
    account: &str,
    integrations: &[String],
) -> anyhow::Result<Vec<(Upload, Vec<RecordBatch>)>> {
    let uploads = store.live_uploads(account, integrations).await?;
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        uploads
            .into_iter()
            .map(|u| {
                let batches = read_upload(&upload_path(&data_dir, &u.token))?;
                Ok((u, batches))
            })
            .collect()
    })
    .await
    .context("the upload scan panicked")?
}
