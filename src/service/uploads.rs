//! Uploads: a cost CSV becomes a committed upload through one pipeline, shared by
//! `POST /v2/integrations/{t}/costs.csv` and `costd import`:
//! intent (a `file_intents` row, leased and renewed) → ingest (blocking thread, into `<token>.parquet.tmp`)
//! → persist (fsync and rename, or PUT to the bucket) → verify (each stored file is there) → commit (one
//! store transaction that ends the intent, records the upload and retires the one it replaces) → the file is
//! live. `service::files` proves that no janitor on any node takes a file this commits; the token is also
//! pinned in this process throughout, which keeps its local temporary file.

use crate::service::ServiceError;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::engine::ingest::{IngestError, PendingUpload};
use crate::engine::uploads::UploadFiles;
use crate::model::token::{AccountToken, IntegrationToken, UploadToken};
use crate::service::files::{begin_intent, with_lease};
use crate::store::{FileIntent, PageRequest, Paged, Store, Upload, UploadCommit};

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
    /// What the rows are: a file someone sends, or a billing period a sync read from a bucket.
    pub source: UploadSource,
}

/// Where an upload's rows come from. A bucket integration's costs are its export's billing periods, each
/// replaced whole by the next sync: a file uploaded into one (the API, `costd import`) would be counted
/// beside them and never replaced, so only a sync writes there, and only files go into a custom provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadSource {
    /// A CSV sent by a person or a script (`POST …/costs.csv`, `costd import`).
    File,
    /// A billing period of a bucket integration's export (`service::sync`).
    ExportPeriod,
}

/// Why a file cannot go into a bucket integration.
pub fn bucket_refusal(provider: &str) -> String {
    format!(
        "costs of an {provider} integration come from its export, synced from the bucket; upload CSVs into a \
         custom provider integration"
    )
}

/// A committed upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub record: Upload,
    /// Bytes of (decompressed) CSV read.
    pub csv_bytes: u64,
}

impl From<IngestError> for ServiceError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(problems) => ServiceError::Unprocessable(problems),
            IngestError::TooLarge(limit) => ServiceError::TooLarge(limit),
            IngestError::Io(e) => ServiceError::Internal(e),
        }
    }
}

/// A page of the integration's live uploads.
pub async fn list(
    store: &dyn Store,
    account: &AccountToken,
    integration: &IntegrationToken,
    page: PageRequest,
) -> Result<Paged<Upload>, ServiceError> {
    store.get_integration(account, integration).await?.ok_or(ServiceError::NotFound("integration"))?;
    Ok(store.list_uploads(account, integration, page).await?)
}

/// Deletes an upload; its file is retired with the row, and the janitor removes it once no query reads it.
pub async fn delete(
    store: &dyn Store,
    account: &AccountToken,
    integration: &IntegrationToken,
    upload: &UploadToken,
) -> Result<(), ServiceError> {
    if store.delete_upload(account, integration, upload).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound("costs upload"))
    }
}

/// The ingest of a CSV body (plain or gzip) that arrives as chunks on a channel (filled by the request's
/// pump), at most `max_bytes` of CSV: what [`upload`] runs on its blocking thread.
pub fn streamed_csv(
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    max_bytes: Option<u64>,
) -> impl FnOnce(PathBuf) -> Result<PendingUpload, IngestError> + Send + 'static {
    use crate::engine::ingest::{ingest_csv, maybe_gunzip, Limits};
    move |tmp: PathBuf| {
        let chunks = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let body = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(Box::pin(chunks)));
        let input = maybe_gunzip(body).map_err(|e| IngestError::Io(e.into()))?;
        ingest_csv(input, &tmp, Limits { max_bytes }, &mut ())
    }
}

/// Wakes whoever judges cost data once new data is committed (the alerts' pass waits on it): every path
/// by which cost data enters commits through [`upload`], which signals it.
pub type DataChanged = Arc<tokio::sync::Notify>;

/// Ingests with `ingest` (run on a blocking thread, given the temporary file to write) and records the
/// result. Nothing is recorded unless every row passed; a failure leaves no file behind.
#[tracing::instrument(skip_all, fields(integration = %new.integration, upload))]
pub async fn upload<F>(
    store: &dyn Store,
    files: &Arc<UploadFiles>,
    changed: &DataChanged,
    new: NewUpload,
    ingest: F,
) -> Result<Uploaded, ServiceError>
where
    F: FnOnce(PathBuf) -> Result<PendingUpload, IngestError> + Send + 'static,
{
    let integration =
        store.get_integration(&new.account, &new.integration).await?.ok_or(ServiceError::NotFound("integration"))?;
    match (new.source, integration.location.is_some()) {
        (UploadSource::File, true) => return Err(ServiceError::invalid(bucket_refusal(&integration.provider))),
        (UploadSource::ExportPeriod, false) => {
            return Err(ServiceError::invalid(crate::service::sync::NOT_A_BUCKET));
        }
        _ => {}
    }
    let token = UploadToken::generate();
    tracing::Span::current().record("upload", token.as_str());
    let _pinned = files.pin_new(&token).await;
    begin_intent(store, files, &token, FileIntent::UPLOAD).await.context("failed to record the upload's intent")?;

    let outcome = with_lease(store, files, &token, stage_and_commit(store, files, new, token.clone(), ingest)).await;
    match outcome {
        Ok(uploaded) => {
            tracing::info!(rows = uploaded.record.rows, "upload committed");
            // The account's alerts look at the new costs now, not at the next interval's pass.
            changed.notify_one();
            Ok(uploaded)
        }
        // Whether the commit happened is unknown (a connection lost around COMMIT): the intent and the files
        // stay, and once the lease runs out the janitor removes them only if the intent is still there,
        // which means the commit did not happen.
        Err(Staged::Unknown(e)) => Err(e.context("failed to record the upload").into()),
        // Never committed, and never will be: nobody else may know these files. The files go first, then
        // the intent, so a failure between the two leaves an intent whose lease ends (and the janitor
        // finishes the job), never an orphan under a live name.
        Err(Staged::Refused(e, Stored::Nothing)) => {
            if let Err(end) = store.end_file_intent(&token).await {
                tracing::warn!(error = format!("{end:#}"), "could not end the intent of a failed upload");
            }
            Err(e)
        }
        Err(Staged::Refused(e, Stored::Maybe)) => {
            if let Err(remove) = files.storage().remove(&token).await {
                tracing::warn!(error = format!("{remove:#}"), "could not remove the files of a failed upload");
            } else if let Err(end) = store.end_file_intent(&token).await {
                tracing::warn!(error = format!("{end:#}"), "could not end the intent of a failed upload");
            }
            Err(e)
        }
    }
}

/// How staging an upload ended short of a commit.
enum Staged {
    /// Nothing was recorded: the upload failed with this.
    Refused(ServiceError, Stored),
    /// The commit's outcome is unknown.
    Unknown(anyhow::Error),
}

/// What of a refused upload may be in the storage.
enum Stored {
    /// It failed before its files were sent (a bad CSV): there is nothing to remove.
    Nothing,
    Maybe,
}

impl<E: Into<ServiceError>> From<E> for Staged {
    fn from(e: E) -> Self {
        Staged::Refused(e.into(), Stored::Maybe)
    }
}

/// A failure before anything was sent to the storage.
fn before_storage(e: impl Into<ServiceError>) -> Staged {
    Staged::Refused(e.into(), Stored::Nothing)
}

/// Ingest → persist → verify → commit, under the intent [`upload`] holds.
async fn stage_and_commit<F>(
    store: &dyn Store,
    files: &Arc<UploadFiles>,
    new: NewUpload,
    token: UploadToken,
    ingest: F,
) -> Result<Uploaded, Staged>
where
    F: FnOnce(PathBuf) -> Result<PendingUpload, IngestError> + Send + 'static,
{
    let tmp = files.tmp_path(&token);
    let pending = tokio::task::spawn_blocking(move || ingest(tmp))
        .await
        .context("the ingest task failed")
        .map_err(before_storage)?
        .map_err(before_storage)?;
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
        .context("the catalog task failed")
        .map_err(before_storage)?
        .context("failed to read the new upload back")
        .map_err(before_storage)?;
    let names = files.storage().persist(pending, &record.token).await.context("failed to store the upload file")?;
    for name in &names {
        if !files.storage().exists_named(name).await? {
            let vanished = anyhow::anyhow!("{name} vanished from the storage before its commit");
            return Err(Staged::Refused(vanished.into(), Stored::Maybe));
        }
    }

    match store.commit_upload(&new.account, &record, &catalog).await {
        Ok(UploadCommit::Committed { replaced }) => {
            tracing::debug!(replaced = replaced.len(), "replaced uploads retired");
            Ok(Uploaded { record, csv_bytes: s.bytes })
        }
        Ok(UploadCommit::IntegrationGone) => Err(Staged::Refused(ServiceError::NotFound("integration"), Stored::Maybe)),
        Ok(UploadCommit::IntentLost) => {
            let lost = anyhow::anyhow!("the upload's intent was cleared (its lease ran out) before its commit");
            Err(Staged::Refused(lost.into(), Stored::Maybe))
        }
        Err(e) => Err(Staged::Unknown(e)),
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
