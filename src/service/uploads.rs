//! Uploads: a cost CSV becomes a committed upload through one pipeline, shared by
//! `POST /v2/integrations/{t}/costs.csv` and `costd import`:
//! ingest (blocking thread, into `<token>.parquet.tmp`) → persist (fsync, rename) → commit (one store
//! transaction, which retires the upload it replaces) → the file is live. The new token is pinned
//! throughout, so the janitor never takes a file that is about to be committed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::engine::ingest::{IngestError, PendingUpload};
use crate::engine::uploads::UploadFiles;
use crate::model::token::{AccountToken, IntegrationToken, UploadToken};
use crate::store::{Store, Upload, UploadCommit};

/// Who uploads what, where.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The account owning the integration.
    pub account: AccountToken,
    pub integration: IntegrationToken,
    /// The upload's filename: an earlier upload of the same name in the integration is replaced. An upload
    /// without one (a form field, a part with no filename) never replaces another: it is named after its
    /// token.
    pub filename: Option<String>,
    /// The user shown as `created_by_token`.
    pub created_by: String,
}

/// A committed upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub record: Upload,
    /// Bytes of (decompressed) CSV read.
    pub csv_bytes: u64,
}

/// Why an upload was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The integration is not the account's (or was deleted while the file was read).
    #[error("integration not found")]
    IntegrationNotFound,
    /// The file's content is wrong: one sentence per problem (`Row N: …`).
    #[error("the file has {} problem(s)", .0.len())]
    Invalid(Vec<String>),
    /// The file is larger than the configured limit, in bytes.
    #[error("the file is larger than the upload limit of {0} bytes")]
    TooLarge(u64),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<IngestError> for UploadError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(problems) => UploadError::Invalid(problems),
            IngestError::TooLarge(limit) => UploadError::TooLarge(limit),
            IngestError::Io(e) => UploadError::Internal(e),
        }
    }
}

/// Ingests with `ingest` (run on a blocking thread, given the temporary file to write) and records the
/// result. Nothing is recorded unless every row passed; a failure leaves no file behind.
#[tracing::instrument(skip_all, fields(integration = %new.integration, upload))]
pub async fn upload<F>(
    store: &dyn Store,
    files: &Arc<UploadFiles>,
    new: NewUpload,
    ingest: F,
) -> Result<Uploaded, UploadError>
where
    F: FnOnce(PathBuf) -> Result<PendingUpload, IngestError> + Send + 'static,
{
    store.get_integration(&new.account, &new.integration).await?.ok_or(UploadError::IntegrationNotFound)?;
    let token = UploadToken::generate();
    tracing::Span::current().record("upload", token.as_str());
    let _pinned = files.pin_new(&token).await;

    let tmp = files.tmp_path(&token);
    let pending = tokio::task::spawn_blocking(move || ingest(tmp)).await.context("the ingest task failed")??;
    let s = pending.summary.clone();
    let record = Upload {
        filename: new.filename.unwrap_or_else(|| format!("{token}.csv")),
        token,
        integration_token: new.integration,
        amount: s.amount,
        currency: s.currency,
        rows: i64::try_from(s.rows).unwrap_or(i64::MAX),
        start_date: s.start_date,
        end_date: s.end_date,
        import_status: "complete".into(),
        created_by_token: new.created_by,
        created_at: crate::store::now(),
        rollup_decimals: s.rollup_decimals,
    };
    // The catalog (what discovery lists) is read from the complete file, before anything is recorded; the
    // file is whole in its storage before the row naming it commits.
    let tmp = pending.path().to_path_buf();
    let catalog = tokio::task::spawn_blocking(move || crate::engine::discovery::catalog(&tmp))
        .await
        .context("the catalog task failed")?
        .context("failed to read the new upload back")?;
    files.storage().persist(pending, &record.token).await.context("failed to store the upload file")?;

    match store.commit_upload(&new.account, &record, &catalog).await {
        Ok(UploadCommit::Committed { replaced }) => {
            tracing::info!(rows = record.rows, replaced = replaced.len(), "upload committed");
            Ok(Uploaded { record, csv_bytes: s.bytes })
        }
        Ok(UploadCommit::IntegrationGone) => {
            // Never committed, and pinned by us: nobody else can know this file.
            if let Err(e) = files.storage().remove(&record.token).await {
                tracing::warn!(error = format!("{e:#}"), "could not remove an upload file");
            }
            Err(UploadError::IntegrationNotFound)
        }
        // The commit may or may not have happened (a connection lost after COMMIT): the file stays, and the
        // janitor removes it after the grace period if no upload row names it.
        Err(e) => Err(e.context("failed to record the upload").into()),
    }
}

/// The cost rows of the live uploads of `integrations` in `account`, with the upload each came from,
/// read as one snapshot (for tests and tools that look at what the engine scans).
pub async fn scan_live_uploads(
    store: &dyn Store,
    files: &Arc<UploadFiles>,
    account: &AccountToken,
    integrations: &[IntegrationToken],
) -> anyhow::Result<Vec<(Upload, Vec<arrow::record_batch::RecordBatch>)>> {
    let (uploads, pins) = files
        .list_and_pin(store.live_uploads(account, integrations), |uploads: &Vec<Upload>| {
            uploads.iter().map(|u| u.token.to_string()).collect()
        })
        .await?;
    let mut scanned = Vec::with_capacity(uploads.len());
    for u in uploads {
        let batches = files.storage().read(&u.token).await?;
        scanned.push((u, batches));
    }
    drop(pins);
    Ok(scanned)
}
