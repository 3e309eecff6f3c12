//! Cloud bills in their buckets: finding an export's manifests, reading exactly the files a manifest lists,
//! and turning them into one stream of cost rows for [`super::ingest::ingest_records`] (already split into
//! fields: never written as CSV text to be parsed again).
//!
//! Invariants the sync (`service::sync`) relies on:
//! - **The manifest is the commit marker.** AWS writes `metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`
//!   after all of a refresh's data files, Azure writes `manifest.json` (with `blobs[]`) after its blobs. Only
//!   the files a manifest names are read; a folder is never globbed, because overwrite delivery leaves stale
//!   chunk names behind.
//! - **All or nothing.** Every listed file is looked up before a row is read ([`check_listed`]): a missing one
//!   is [`FetchError::Missing`], one newer than the manifest [`FetchError::InProgress`], and the period is
//!   left as it was. The files then download in the manifest's order (streamed to the local spool, bounded
//!   memory) while the rows of those already here are read; a download that fails, or fewer files arriving
//!   than listed, ends the row stream with an error ([`ExportRows::arriving`]), so the ingest refuses the whole
//!   period rather than commit part of it.
//! - **Only what the ingest keeps.** The first file's columns the ingest reads (FOCUS names, or CUR 2.0's
//!   source columns) are passed on; a Parquet file's other columns are never decoded.
//! - **Errors name the file.** A corrupt Parquet file, a column set that differs between chunks or an
//!   unsupported column type ends the stream with an I/O error whose text names the file; [`ExportRows`]
//!   also keeps it, and the row ranges of each file, so a row problem can be told as `file, row`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::DataType;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;

use costd_model::bucket_export::{Credentials, ExportLocation, Period};

/// Bytes per chunk handed from the converter thread to the ingest.
const CHUNK_BYTES: usize = 1 << 20;
/// Rows per Parquet batch converted at a time.
const PARQUET_BATCH_ROWS: usize = 8 * 1024;
/// Longest manifest read: real ones are a few KB (a schema and a list of files).
pub const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// The bucket an export lives in, with costd's credentials for it.
pub fn connect(location: &ExportLocation, credentials: &Credentials) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let options = object_store::ClientOptions::new()
        .with_timeout(std::time::Duration::from_secs(120))
        .with_connect_timeout(std::time::Duration::from_secs(10));
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    match location {
        ExportLocation::Aws { bucket, region, endpoint, .. } => {
            use object_store::aws::AmazonS3Builder;
            let mut b = match credentials {
                Credentials::AwsAmbient => AmazonS3Builder::from_env(),
                _ => AmazonS3Builder::new(),
            };
            b = b.with_bucket_name(bucket).with_region(region).with_retry(retry);
            if let Credentials::AwsKeys { access_key_id, secret_access_key, session_token } = credentials {
                b = b.with_access_key_id(access_key_id).with_secret_access_key(secret_access_key);
                if let Some(t) = session_token {
                    b = b.with_token(t);
                }
            }
            let http = endpoint.as_ref().is_some_and(|e| e.as_str().starts_with("http://"));
            if let Some(e) = endpoint {
                b = b.with_endpoint(e.as_str());
            }
            Ok(Arc::new(b.with_client_options(options.with_allow_http(http)).build()?))
        }
        ExportLocation::Azure { storage_account, container, endpoint, .. } => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let mut b = MicrosoftAzureBuilder::new()
                .with_account(storage_account)
                .with_container_name(container)
                .with_retry(retry);
            b = match credentials {
                Credentials::AzureAccountKey { key } => b.with_access_key(key),
                Credentials::AzureSas { token } => b.with_config(AzureConfigKey::SasKey, token),
                Credentials::AzureServicePrincipal { tenant, app_id, password } => {
                    b.with_tenant_id(tenant).with_client_id(app_id).with_client_secret(password)
                }
                other => anyhow::bail!("{} credentials do not sign in to Azure", other.kind()),
            };
            let http = endpoint.as_ref().is_some_and(|e| e.as_str().starts_with("http://"));
            if let Some(e) = endpoint {
                b = b.with_endpoint(e.as_str().to_string());
            }
            Ok(Arc::new(b.with_client_options(options.with_allow_http(http)).build()?))
        }
    }
}

/// The newest manifest of one export's billing period, as the listing shows it (nothing read yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRef {
    pub period: Period,
    /// Which export of the location it belongs to: for Azure, the folders between the root folder and the
    /// period's date-range folder (Azure writes every export of a scope under one root, each in its own
    /// folder); `""` for AWS, whose location names one export, and for an Azure root that is one export's.
    pub export: String,
    pub key: String,
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// Where the export's manifests are listed from.
fn manifest_root(location: &ExportLocation) -> String {
    let join = |parts: &[&str]| parts.iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join("/");
    match location {
        ExportLocation::Aws { prefix, export_name, .. } => join(&[prefix, export_name, "metadata"]),
        ExportLocation::Azure { root_folder_path, .. } => root_folder_path.clone(),
    }
}

/// Where an AWS export's files live: `<prefix>/<export name>/`, the same keys in the source bucket and in
/// a bucket S3 replication copies the export into.
fn aws_export_prefix(prefix: &str, export_name: &str) -> String {
    let mut out: String = [prefix, export_name].iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join("/");
    out.push('/');
    out
}

/// The billing period a manifest's key belongs to, if it is a manifest of this export at all.
pub fn manifest_period(location: &ExportLocation, key: &str) -> Option<Period> {
    manifest_of(location, key).map(|(_, period)| period)
}

/// The export and billing period a manifest's key belongs to, if it is a manifest of this location at all.
pub fn manifest_of(location: &ExportLocation, key: &str) -> Option<(String, Period)> {
    let parts: Vec<&str> = key.split('/').collect();
    let file = *parts.last()?;
    match location {
        ExportLocation::Aws { export_name, .. } => {
            // `<export>-Manifest.json`, or `Manifest.json` at the partition level (create-new delivery).
            if file != format!("{export_name}-Manifest.json") && file != "Manifest.json" {
                return None;
            }
            let period = parts.iter().find_map(|p| p.strip_prefix("BILLING_PERIOD=")).and_then(Period::parse)?;
            Some((String::new(), period))
        }
        ExportLocation::Azure { root_folder_path, .. } => {
            if !file.eq_ignore_ascii_case("manifest.json") {
                return None;
            }
            // `<root>/[<export>/]YYYYMMDD-YYYYMMDD/[<run id>/]manifest.json`
            let digits = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit());
            let (at, period) = parts.iter().enumerate().rev().find_map(|(i, p)| {
                let (start, end) = p.split_once('-')?;
                (digits(start) && digits(end))
                    .then(|| Period::parse(&format!("{}-{}", &start[..4], &start[4..6])))?
                    .map(|period| (i, period))
            })?;
            let root_depth = root_folder_path.split('/').filter(|p| !p.is_empty()).count();
            let export = parts.get(root_depth.min(at)..at).map(|p| p.join("/")).unwrap_or_default();
            Some((export, period))
        }
    }
}

/// Lists the export's manifests and keeps the newest of each period and export (create-new delivery keeps
/// every run's), exports in name order.
pub async fn list_manifests(
    store: &dyn ObjectStore,
    location: &ExportLocation,
) -> anyhow::Result<BTreeMap<Period, Vec<ManifestRef>>> {
    let root = manifest_root(location);
    let prefix = (!root.is_empty()).then(|| ObjectPath::from(root.as_str()));
    let mut listing = store.list(prefix.as_ref());
    let mut newest: BTreeMap<(Period, String), ManifestRef> = BTreeMap::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.with_context(|| format!("failed to list {root:?}"))?;
        let key = meta.location.to_string();
        let Some((export, period)) = manifest_of(location, &key) else { continue };
        let found = ManifestRef { period, export, key, etag: meta.e_tag, last_modified: meta.last_modified };
        match newest.get(&(period, found.export.clone())) {
            Some(kept) if (kept.last_modified, &kept.key) >= (found.last_modified, &found.key) => {}
            _ => {
                newest.insert((period, found.export.clone()), found);
            }
        }
    }
    let mut by_period: BTreeMap<Period, Vec<ManifestRef>> = BTreeMap::new();
    for ((period, _), found) in newest {
        by_period.entry(period).or_default().push(found);
    }
    Ok(by_period)
}

/// Most data files one manifest may list: real ones list a few to a few hundred.
pub const MAX_MANIFEST_FILES: usize = 10_000;
/// Most columns an export file may have: FOCUS has about 60 and CUR 2.0 about 130, with every optional one.
pub const MAX_EXPORT_COLUMNS: usize = 2_000;

/// What a manifest says: which refresh it is and exactly which files hold the period's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// AWS's `executionId`, Azure's `runInfo.runId`.
    pub id: String,
    /// Object keys, in the manifest's order.
    pub files: Vec<String>,
    /// Azure's `exportConfig.type` (`FocusCost`, `ActualCost`, `PriceSheet`, …), when the manifest says.
    pub dataset: Option<String>,
}

impl Manifest {
    /// Why this export's files are not read, when they are not cost data costd reads: Azure writes price
    /// sheets, reservation details and its other datasets beside the cost exports, under the same root.
    pub fn skipped(&self) -> Option<String> {
        let dataset = self.dataset.as_deref()?;
        (!dataset.eq_ignore_ascii_case("FocusCost")).then(|| {
            format!("a {dataset} export, not FOCUS cost data (costd reads Azure's FocusCost exports): skipped")
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AwsManifest {
    execution_id: Option<String>,
    #[serde(default)]
    data_files: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureManifest {
    run_info: Option<AzureRunInfo>,
    export_config: Option<AzureExportConfig>,
    #[serde(default)]
    blobs: Vec<AzureBlob>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureRunInfo {
    run_id: Option<String>,
}

#[derive(Deserialize)]
struct AzureExportConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureBlob {
    blob_name: String,
}

/// Parses a manifest's bytes. `key` names it in errors.
pub fn parse_manifest(location: &ExportLocation, key: &str, bytes: &[u8]) -> Result<Manifest, String> {
    let bad = |e: serde_json::Error| format!("{key}: the manifest is not valid JSON of the expected shape ({e})");
    let (id, files, dataset) = match location {
        ExportLocation::Aws { bucket, prefix, export_name, .. } => {
            let m: AwsManifest = serde_json::from_slice(bytes).map_err(bad)?;
            let id = m.execution_id.ok_or_else(|| format!("{key}: the manifest has no executionId"))?;
            let export_prefix = aws_export_prefix(prefix, export_name);
            check_count(key, m.data_files.len())?;
            let files = m
                .data_files
                .into_iter()
                .map(|f| match f.strip_prefix("s3://") {
                    Some(rest) => match rest.split_once('/') {
                        Some((b, k)) if b == bucket => Ok(k.to_string()),
                        // S3 replication copies an export with its manifest, which still names the source
                        // bucket: the same keys are read here, where they lie under this export's prefix.
                        Some((_, k)) if k.starts_with(&export_prefix) => Ok(k.to_string()),
                        _ => Err(format!(
                            "{key}: the manifest names {f}, outside the bucket {bucket} and the export's prefix \
                             {export_prefix}"
                        )),
                    },
                    None => Ok(f.trim_start_matches('/').to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            (id, files, None)
        }
        ExportLocation::Azure { .. } => {
            let m: AzureManifest = serde_json::from_slice(bytes).map_err(bad)?;
            let id =
                m.run_info.and_then(|r| r.run_id).ok_or_else(|| format!("{key}: the manifest has no runInfo.runId"))?;
            check_count(key, m.blobs.len())?;
            let files = m.blobs.into_iter().map(|b| b.blob_name.trim_start_matches('/').to_string()).collect();
            (id, files, m.export_config.and_then(|c| c.kind))
        }
    };
    if files.is_empty() {
        return Err(format!("{key}: the manifest lists no data files"));
    }
    if let Some(f) = files.iter().find(|f| f.is_empty() || f.split('/').any(|p| p == "..")) {
        return Err(format!("{key}: the manifest names an invalid file {f:?}"));
    }
    // A file listed twice would be counted twice.
    let mut seen = std::collections::HashSet::with_capacity(files.len());
    if let Some(f) = files.iter().find(|f| !seen.insert(f.as_str())) {
        return Err(format!("{key}: the manifest lists {f} more than once"));
    }
    Ok(Manifest { id, files, dataset })
}

fn check_count(key: &str, files: usize) -> Result<(), String> {
    if files > MAX_MANIFEST_FILES {
        return Err(format!("{key}: the manifest lists {files} files, more than the {MAX_MANIFEST_FILES} costd reads"));
    }
    Ok(())
}

/// Reads a manifest (at most [`MAX_MANIFEST_BYTES`]).
pub async fn read_manifest(store: &dyn ObjectStore, key: &str) -> Result<Vec<u8>, FetchError> {
    let path = ObjectPath::from(key);
    let got = store.get(&path).await.map_err(|e| FetchError::of(key, e))?;
    if got.meta.size > MAX_MANIFEST_BYTES as u64 {
        return Err(FetchError::Other(format!("{key}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes")));
    }
    Ok(got.bytes().await.map_err(|e| FetchError::of(key, e))?.to_vec())
}

/// Why a period's files could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The manifest names an object that is not there (yet, or any more): retried at the next sync.
    #[error("{0}: listed by the manifest but missing from the bucket")]
    Missing(String),
    /// A listed file is newer than the manifest: the next refresh is being written over this one.
    #[error("{0} changed after its manifest was written: a refresh is being delivered; retried at the next sync")]
    InProgress(String),
    /// Credentials refused, bucket missing, network: the store's words, with the key.
    #[error("{0}")]
    Other(String),
}

impl FetchError {
    fn of(key: &str, e: object_store::Error) -> FetchError {
        match e {
            object_store::Error::NotFound { .. } => FetchError::Missing(key.to_string()),
            other => FetchError::Other(format!("{key}: {}", crate::bills::describe(&other))),
        }
    }
}

/// An object store error in one line, without the request's headers or signed URL.
pub fn describe(e: &object_store::Error) -> String {
    match e {
        object_store::Error::NotFound { path, .. } => format!("{path} not found"),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            "access denied: check the integration's credentials and their permissions".into()
        }
        other => {
            let text = other.to_string();
            // The store's message can carry the request URL; a query string may hold a SAS signature.
            let text = match text.find('?') {
                Some(i) => format!("{}…", &text[..i]),
                None => text,
            };
            text.chars().take(400).collect()
        }
    }
}

/// One file of a period, downloaded.
#[derive(Debug)]
pub struct LocalFile {
    /// The object's key, for messages.
    pub key: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Checks that every file a manifest lists is there and older than the manifest, before anything is read;
/// answers their sizes in bytes.
///
/// A cloud writes a refresh's data files before its manifest, so a listed file modified after the manifest
/// (`manifest_modified`) belongs to a later refresh being delivered over it (overwrite delivery reuses the
/// names): [`FetchError::InProgress`], and the period is read again once that refresh's manifest is there.
pub async fn check_listed(
    store: &dyn ObjectStore,
    keys: &[String],
    manifest_modified: DateTime<Utc>,
) -> Result<Vec<u64>, FetchError> {
    let mut sizes = Vec::with_capacity(keys.len());
    for key in keys {
        let meta = store.head(&ObjectPath::from(key.as_str())).await.map_err(|e| FetchError::of(key, e))?;
        if meta.last_modified > manifest_modified {
            return Err(FetchError::InProgress(key.clone()));
        }
        sizes.push(meta.size);
    }
    Ok(sizes)
}

/// Files of a period as they finish downloading, in the manifest's order: the rows of the first are read
/// while the next ones download.
pub type Arrivals = std::sync::mpsc::Receiver<Result<LocalFile, FetchError>>;

/// Downloads `keys` into `dir` one after another, streaming each to disk (memory bounded by the store's chunk
/// size), and hands each file over once it is whole. The first failure is handed over instead and ends the
/// downloads. Runs until done or until the receiver is dropped (then the task stops at its next file).
pub fn download(
    store: Arc<dyn ObjectStore>,
    keys: Vec<String>,
    dir: PathBuf,
) -> (tokio::task::JoinHandle<()>, Arrivals) {
    // Room for every file: the task never waits on the reader, only on the network.
    let (tx, rx) = sync_channel(keys.len().max(1));
    let task = tokio::spawn(async move {
        for (i, key) in keys.iter().enumerate() {
            let path = dir.join(format!("{i:05}.part"));
            let fetched = fetch_one(store.as_ref(), key, &path).await;
            let failed = fetched.is_err();
            if tx.send(fetched.map(|bytes| LocalFile { key: key.clone(), path, bytes })).is_err() || failed {
                return;
            }
        }
    });
    (task, rx)
}

async fn fetch_one(store: &dyn ObjectStore, key: &str, path: &Path) -> Result<u64, FetchError> {
    let got = store.get(&ObjectPath::from(key)).await.map_err(|e| FetchError::of(key, e))?;
    let mut stream = got.into_stream();
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| FetchError::Other(format!("failed to create {}: {e}", path.display())))?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FetchError::of(key, e))?;
        bytes += chunk.len() as u64;
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(|e| FetchError::Other(format!("failed to write {}: {e}", path.display())))?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(|e| FetchError::Other(format!("failed to write {}: {e}", path.display())))?;
    Ok(bytes)
}

/// What [`ExportRows`] learned while it ran: the failure that ended it (naming the file), and where each
/// file's rows start in the combined stream.
#[derive(Debug, Default, Clone)]
pub struct ReadLog {
    pub failure: Option<String>,
    /// `(first data row, key)`, 1-based rows of the combined stream.
    pub starts: Vec<(u64, String)>,
}

impl ReadLog {
    /// `Row N: …` of the combined stream as `<key>, row M: …`.
    pub fn locate(&self, message: &str) -> String {
        // The header is the first file's: a missing column means the export is not in a format costd reads.
        if let Some(rest) = message.strip_prefix("Header: ") {
            let file = self.starts.first().map_or("the first file", |(_, key)| key.as_str());
            return format!("{file}: its columns are not FOCUS (1.0 to 1.2) or CUR 2.0: {rest}");
        }
        let Some(rest) = message.strip_prefix("Row ") else { return message.to_string() };
        let Some((n, tail)) = rest.split_once(':') else { return message.to_string() };
        let Ok(n) = n.trim().parse::<u64>() else { return message.to_string() };
        match self.starts.iter().rev().find(|(start, _)| *start <= n) {
            Some((start, key)) => format!("{key}, row {}:{tail}", n - start + 1),
            None => message.to_string(),
        }
    }
}

/// Rows handed from the reader thread to the ingest, already split into fields: each row's fields back to
/// back in `data`. Neither side writes or parses CSV text in between.
#[derive(Default)]
struct Fields {
    data: Vec<u8>,
    /// Where each field ends in `data`.
    field_ends: Vec<usize>,
    /// Where each row ends in `field_ends`.
    row_ends: Vec<usize>,
}

/// Longest field handed on: one byte past the ingest's own limit, so the ingest still refuses the row by
/// name, without the reader copying a field of any length first.
const HANDED_FIELD_BYTES: usize = super::ingest::MAX_FIELD_BYTES + 1;

impl Fields {
    fn push(&mut self, record: &csv::ByteRecord) {
        for field in record {
            self.data.extend_from_slice(&field[..field.len().min(HANDED_FIELD_BYTES)]);
            self.field_ends.push(self.data.len());
        }
        self.row_ends.push(self.field_ends.len());
    }

    fn rows(&self) -> usize {
        self.row_ends.len()
    }

    /// Row `row`'s fields into `record`.
    fn read(&self, row: usize, record: &mut csv::ByteRecord) {
        record.clear();
        let first = if row == 0 { 0 } else { self.row_ends[row - 1] };
        let mut start = if first == 0 { 0 } else { self.field_ends[first - 1] };
        for &end in &self.field_ends[first..self.row_ends[row]] {
            record.push_field(&self.data[start..end]);
            start = end;
        }
    }
}

/// What the reader thread hands over: rows, then `Done` once every file was read whole. A channel that
/// closes without `Done` means the reader died (a panic): an error, never the end of the period.
enum Handed {
    Rows(Fields),
    Done,
}

/// What an export's files may hold: the same bounds as an upload.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadLimits {
    /// Most bytes of cost data the period's files may hold (`--max-upload-bytes`): decompressed CSV, and the
    /// text of the Parquet values read. `None`: no limit.
    pub max_bytes: Option<u64>,
}

/// The rows of several export files (Parquet, gzip CSV or CSV, told apart by their first bytes) as one stream
/// of records with one header, read on a thread of its own: the ingest's [`RecordSource`].
///
/// [`RecordSource`]: super::ingest::RecordSource
pub struct ExportRows {
    rx: Receiver<io::Result<Handed>>,
    fields: Fields,
    at: usize,
    bytes: u64,
    done: bool,
    log: Arc<Mutex<ReadLog>>,
}

impl ExportRows {
    /// The rows of `files`, all there already.
    pub fn new(files: Vec<LocalFile>, log: Arc<Mutex<ReadLog>>) -> io::Result<ExportRows> {
        Self::with_limits(files, log, ReadLimits::default())
    }

    /// [`ExportRows::new`] under `limits`.
    pub fn with_limits(files: Vec<LocalFile>, log: Arc<Mutex<ReadLog>>, limits: ReadLimits) -> io::Result<ExportRows> {
        let expected = files.len();
        let (tx, rx) = sync_channel(expected.max(1));
        for f in files {
            tx.send(Ok(f)).expect("room for every file");
        }
        Self::arriving(expected, rx, log, limits)
    }

    /// The rows of `expected` files as they arrive. Fewer arriving (the downloads ended early), a failed
    /// download or a reader that dies ends the stream with an error, so the rows read so far are never taken
    /// for the whole.
    pub fn arriving(
        expected: usize,
        files: Arrivals,
        log: Arc<Mutex<ReadLog>>,
        limits: ReadLimits,
    ) -> io::Result<ExportRows> {
        let (tx, rx) = sync_channel(4);
        let reader_log = log.clone();
        std::thread::Builder::new().name("export-reader".into()).spawn(move || {
            let log = reader_log;
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut out = Batcher { tx: tx.clone(), fields: Fields::default() };
                let files = (0..expected).map(|i| match files.recv() {
                    Ok(Ok(file)) => Ok(file),
                    Ok(Err(e)) => Err(io::Error::other(e.to_string())),
                    Err(_) => Err(io::Error::other(format!("only {i} of the manifest's {expected} files arrived"))),
                });
                write_rows(files, &mut out, &log, limits).and_then(|()| out.send())
            }));
            let result = read.unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let file = log.lock().expect("read log").starts.last().map(|(_, key)| key.clone());
                tracing::error!(file = file.as_deref().unwrap_or(""), panic = what, "the export reader panicked");
                Err(fail(file.as_deref().unwrap_or("the export"), "could not be read (the reader failed on it)"))
            });
            let message = match result {
                Ok(()) => Ok(Handed::Done),
                Err(e) => {
                    log.lock().expect("read log").failure.get_or_insert_with(|| e.to_string());
                    Err(e)
                }
            };
            let _ = tx.send(message);
        })?;
        Ok(ExportRows { rx, fields: Fields::default(), at: 0, bytes: 0, done: false, log })
    }
}

impl super::ingest::RecordSource for ExportRows {
    fn next_record(&mut self, record: &mut csv::ByteRecord) -> Result<bool, csv::Error> {
        while self.at == self.fields.rows() {
            if self.done {
                return Ok(false);
            }
            match self.rx.recv() {
                Ok(Ok(Handed::Rows(fields))) => {
                    self.bytes += fields.data.len() as u64;
                    self.fields = fields;
                    self.at = 0;
                }
                Ok(Ok(Handed::Done)) => self.done = true,
                Ok(Err(e)) => return Err(e.into()),
                // The reader went away without saying it was done: whatever it read is not the whole period.
                Err(_) => {
                    let e = io::Error::other("the export's reader stopped before the last file's end");
                    self.log.lock().expect("read log").failure.get_or_insert_with(|| e.to_string());
                    return Err(e.into());
                }
            }
        }
        self.fields.read(self.at, record);
        self.at += 1;
        Ok(true)
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// Rows handed over this many at a time (or at [`CHUNK_BYTES`] of field data, whichever comes first).
const HANDED_ROWS: usize = 4096;

/// Gathers rows into [`Fields`] and hands them to the ingest.
struct Batcher {
    tx: SyncSender<io::Result<Handed>>,
    fields: Fields,
}

impl Batcher {
    fn push(&mut self, record: &csv::ByteRecord) -> io::Result<()> {
        self.fields.push(record);
        if self.fields.rows() >= HANDED_ROWS || self.fields.data.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        if self.fields.rows() > 0 {
            let fields = std::mem::take(&mut self.fields);
            self.tx.send(Ok(Handed::Rows(fields))).map_err(|_| io::Error::other("the ingest stopped reading"))?;
        }
        Ok(())
    }
}

fn fail(key: &str, what: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{key}: {what}"))
}

/// Bytes of cost data read so far against [`ReadLimits::max_bytes`].
struct Budget {
    limit: Option<u64>,
    used: u64,
}

impl Budget {
    fn remaining(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.used))
    }

    fn spend(&mut self, key: &str, bytes: u64) -> io::Result<()> {
        self.used += bytes;
        match self.limit {
            Some(limit) if self.used > limit => Err(self.too_large(key, limit)),
            _ => Ok(()),
        }
    }

    fn too_large(&self, key: &str, limit: u64) -> io::Error {
        fail(
            key,
            format_args!(
                "the period's files hold more than {limit} bytes of cost data, the upload limit (--max-upload-bytes)"
            ),
        )
    }
}

/// Writes every file's rows under the first file's header; later files must have the same columns (any order).
fn write_rows(
    files: impl Iterator<Item = io::Result<LocalFile>>,
    out: &mut Batcher,
    log: &Mutex<ReadLog>,
    limits: ReadLimits,
) -> io::Result<()> {
    let mut sink = Sink {
        first_names: None,
        header: None,
        cur: None,
        out,
        scratch: csv::ByteRecord::new(),
        budget: Budget { limit: limits.max_bytes, used: 0 },
    };
    let mut rows_written: u64 = 0;
    for file in files {
        let file = file?;
        log.lock().expect("read log").starts.push((rows_written + 1, file.key.clone()));
        let mut head = [0u8; 4];
        let n = File::open(&file.path)?.read(&mut head)?;
        if n == 0 {
            // An export with no rows for a chunk writes an empty file; it adds nothing.
            continue;
        }
        if &head[..n.min(4)] == b"PAR1" {
            rows_written += parquet_rows(&file, &mut sink)?;
        } else {
            rows_written += csv_rows(&file, &mut sink)?;
        }
        // Read: its disk space goes back before the next file is.
        let _ = std::fs::remove_file(&file.path);
    }
    if sink.header.is_none() {
        return Err(io::Error::other("the manifest's files hold no rows (not even a header)"));
    }
    Ok(())
}

/// Where rows go: one header (the first file's), CUR 2.0 rows mapped onto FOCUS columns on the way.
struct Sink<'a> {
    /// Every column of the first file (lower-cased, as written): later files must have the same.
    first_names: Option<Vec<(String, String)>>,
    /// The columns passed on, as the first file names them.
    header: Option<Vec<String>>,
    cur: Option<CurPlan>,
    out: &'a mut Batcher,
    scratch: csv::ByteRecord,
    budget: Budget,
}

impl Sink<'_> {
    /// Takes a file's column names: where each of the header's columns is in this file. The first file sets
    /// the header: the columns the ingest reads, in its order (an export's other columns, often the larger
    /// part, are never decoded), written as FOCUS names when it is a CUR 2.0 export. Linear in the number of
    /// columns, which is bounded ([`MAX_EXPORT_COLUMNS`]).
    fn start(&mut self, key: &str, names: Vec<String>) -> io::Result<Vec<usize>> {
        if names.len() > MAX_EXPORT_COLUMNS {
            return Err(fail(
                key,
                format_args!("has {} columns, more than the {MAX_EXPORT_COLUMNS} costd reads", names.len()),
            ));
        }
        let lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        let mut positions: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(names.len());
        for (i, name) in lower.iter().enumerate() {
            if positions.insert(name.as_str(), i).is_some() {
                return Err(fail(key, format_args!("has the column {} more than once", names[i])));
            }
        }
        let Some(first) = &self.first_names else {
            let read: std::collections::HashSet<String> =
                read_columns(&names).iter().map(|r| r.to_ascii_lowercase()).collect();
            let order: Vec<usize> = (0..names.len()).filter(|&i| read.contains(&lower[i])).collect();
            let header: Vec<String> = order.iter().map(|&i| names[i].clone()).collect();
            self.cur = CurPlan::detect(&header);
            let first_record: csv::ByteRecord = match &self.cur {
                Some(plan) => plan.header().iter().collect(),
                None => header.iter().collect(),
            };
            self.out.push(&first_record)?;
            self.header = Some(header);
            self.first_names = Some(lower.iter().cloned().zip(names.iter().cloned()).collect());
            return Ok(order);
        };
        if let Some((_, name)) = first.iter().find(|(lower, _)| !positions.contains_key(lower.as_str())) {
            return Err(fail(key, format_args!("has no column {name}, which the first file has")));
        }
        if names.len() != first.len() {
            return Err(fail(key, "has columns the first file of the manifest does not have"));
        }
        let header = self.header.as_ref().expect("set with first_names");
        Ok(header.iter().map(|h| positions[h.to_ascii_lowercase().as_str()]).collect())
    }

    /// Writes one row given in the header's column order.
    fn row(&mut self, record: &csv::ByteRecord) -> io::Result<()> {
        match &self.cur {
            None => self.out.push(record),
            Some(plan) => {
                plan.apply(record, &mut self.scratch);
                self.out.push(&self.scratch)
            }
        }
    }
}

fn csv_rows(file: &LocalFile, sink: &mut Sink) -> io::Result<u64> {
    use super::ingest::guard::{Guard, Limits, StreamProblem};
    let input = super::ingest::maybe_gunzip(File::open(&file.path)?)?;
    // The upload's guard: a quote left open or a huge row is an error before it is buffered, a file cut
    // inside quotes is an error, and the decompressed bytes count against the period's budget.
    let guarded = Guard::new(input, Limits { max_bytes: sink.budget.remaining() });
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(guarded);
    let key = file.key.as_str();
    let problem = |e: csv::Error, rows: u64, budget: &Budget| -> io::Error {
        if let csv::ErrorKind::Io(io) = e.kind() {
            match StreamProblem::of(io) {
                Some(StreamProblem::TooLarge { .. }) => {
                    return budget.too_large(key, budget.limit.unwrap_or_default());
                }
                Some(p) => return fail(key, p),
                None => {}
            }
        }
        fail(key, format_args!("row {}: {e}", rows + 1))
    };
    let mut record = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(|e| problem(e, 0, &sink.budget))? {
        return Ok(0);
    }
    let names = super::ingest::header_names(&record);
    let width = names.len();
    let order = sink.start(key, names)?;
    let identity = order.len() == width && order.iter().enumerate().all(|(i, &j)| i == j);
    let mut rows = 0;
    let mut reordered = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(problem(e, rows, &sink.budget)),
        }
        rows += 1;
        if identity {
            sink.row(&record)?;
        } else {
            // A row of another width is passed on as it is, for the ingest to name.
            if record.len() != width {
                sink.out.push(&record)?;
                continue;
            }
            reordered.clear();
            for &i in &order {
                reordered.push_field(record.get(i).unwrap_or_default());
            }
            sink.row(&reordered)?;
        }
    }
    let read = reader.get_ref().bytes_read();
    sink.budget.spend(key, read)?;
    Ok(rows)
}

/// Most bytes the columns read of one Parquet row group may hold uncompressed, as its metadata says.
pub const MAX_ROW_GROUP_BYTES: i64 = 1 << 30;
/// Most bytes one decoded Parquet batch may hold.
const MAX_BATCH_BYTES: usize = 512 << 20;
/// Rows per Parquet batch when its text columns cannot be read as dictionaries (each value may be long).
const PARQUET_FALLBACK_BATCH_ROWS: usize = 256;

fn parquet_rows(file: &LocalFile, sink: &mut Sink) -> io::Result<u64> {
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    let unreadable = |e: &dyn std::fmt::Display| fail(&file.key, format_args!("is not a readable Parquet file ({e})"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&file.path)?).map_err(|e| unreadable(&e))?;
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let order = sink.start(&file.key, names.clone())?;
    // Only the columns passed on are decoded; a batch holds them in the file's order.
    let mut decoded = order.clone();
    decoded.sort_unstable();
    check_row_groups(file, builder.metadata(), builder.parquet_schema(), &decoded)?;
    // Text is read as dictionaries where the file has them: a few long values repeated on every row (a few
    // KB of file) stay one copy each instead of one per row of the batch.
    let options = ArrowReaderOptions::new().with_schema(dictionary_schema(builder.schema()));
    let (builder, batch_rows) =
        match ParquetRecordBatchReaderBuilder::try_new_with_options(File::open(&file.path)?, options) {
            Ok(b) => (b, PARQUET_BATCH_ROWS),
            Err(e) => {
                tracing::debug!(file = file.key, error = %e, "text columns read without dictionaries");
                let b =
                    ParquetRecordBatchReaderBuilder::try_new(File::open(&file.path)?).map_err(|e| unreadable(&e))?;
                (b, PARQUET_FALLBACK_BATCH_ROWS)
            }
        };
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), decoded.iter().copied());
    let reader = builder.with_projection(mask).with_batch_size(batch_rows).build().map_err(|e| unreadable(&e))?;
    let mut rows = 0u64;
    let mut record = csv::ByteRecord::new();
    let mut scratch = String::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(&e))?;
        // Dictionaries keep a batch small; a file read without them (the fallback) is held to this too.
        if batch.get_array_memory_size() > MAX_BATCH_BYTES {
            return Err(fail(
                &file.key,
                format_args!(
                    "rows {} to {} hold {} bytes in memory, more than {MAX_BATCH_BYTES}",
                    rows + 1,
                    rows + batch.num_rows() as u64,
                    batch.get_array_memory_size()
                ),
            ));
        }
        let columns = order
            .iter()
            .map(|&i| {
                let at = decoded.binary_search(&i).expect("decoded holds every passed column");
                TextColumn::of(batch.column(at)).map_err(|e| fail(&file.key, format_args!("column {}: {e}", names[i])))
            })
            .collect::<io::Result<Vec<TextColumn>>>()?;
        let mut bytes = 0u64;
        for row in 0..batch.num_rows() {
            record.clear();
            for (col, &i) in columns.iter().zip(&order) {
                let value = col.value(row, &mut scratch).map_err(|e| {
                    fail(&file.key, format_args!("row {}: column {}: {e}", rows + row as u64 + 1, names[i]))
                })?;
                let value = value.unwrap_or_default();
                let kept = &value[..value.len().min(HANDED_FIELD_BYTES)];
                bytes += kept.len() as u64;
                record.push_field(kept);
            }
            sink.row(&record)?;
        }
        sink.budget.spend(&file.key, bytes)?;
        rows += batch.num_rows() as u64;
    }
    Ok(rows)
}

/// Refuses a file whose metadata says a row group's columns read hold more than [`MAX_ROW_GROUP_BYTES`]
/// uncompressed: a few KB of compressed pages may claim gigabytes.
fn check_row_groups(
    file: &LocalFile,
    metadata: &parquet::file::metadata::ParquetMetaData,
    schema: &parquet::schema::types::SchemaDescriptor,
    roots: &[usize],
) -> io::Result<()> {
    let leaves: Vec<usize> =
        (0..schema.num_columns()).filter(|&c| roots.contains(&schema.get_column_root_idx(c))).collect();
    for (g, group) in metadata.row_groups().iter().enumerate() {
        let bytes: i64 = leaves.iter().map(|&c| group.column(c).uncompressed_size().max(0)).sum();
        if bytes > MAX_ROW_GROUP_BYTES {
            return Err(fail(
                &file.key,
                format_args!(
                    "row group {g} holds {bytes} bytes uncompressed in the columns costd reads, more than {MAX_ROW_GROUP_BYTES}"
                ),
            ));
        }
    }
    Ok(())
}

/// `schema` with every text and binary leaf read as a dictionary of it.
fn dictionary_schema(schema: &arrow::datatypes::Schema) -> arrow::datatypes::SchemaRef {
    let fields: Vec<_> =
        schema.fields().iter().map(|f| f.as_ref().clone().with_data_type(dictionary_text(f.data_type()))).collect();
    Arc::new(arrow::datatypes::Schema::new(fields))
}

/// `data_type` with every text and binary leaf read as a dictionary of it.
fn dictionary_text(data_type: &DataType) -> DataType {
    use arrow::datatypes::Field;
    let dict = |values: DataType| DataType::Dictionary(Box::new(DataType::Int32), Box::new(values));
    let field = |f: &Arc<Field>| Arc::new(f.as_ref().clone().with_data_type(dictionary_text(f.data_type())));
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => dict(DataType::Utf8),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => dict(DataType::Binary),
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        other => other.clone(),
    }
}

/// One column of a Parquet batch as the text of each row, without one copy of a long value per row.
enum TextColumn {
    /// Short values (numbers, dates) or plain text, one per row.
    Text(StringArray),
    /// Each row's key into the distinct values (null: no value).
    Dictionary { keys: Vec<Option<usize>>, values: StringArray },
    /// Maps, structs and lists: each row's JSON, written when its row is.
    Json(ArrayRef),
}

impl TextColumn {
    fn of(column: &ArrayRef) -> Result<TextColumn, String> {
        match column.data_type() {
            DataType::Dictionary(_, _) => {
                let dict = column.as_any_dictionary();
                let values = as_text(dict.values())?;
                let nulls = column.logical_nulls();
                let keys = dict
                    .normalized_keys()
                    .into_iter()
                    .enumerate()
                    .map(|(row, k)| {
                        let null = nulls.as_ref().is_some_and(|n| n.is_null(row)) || values.is_null(k);
                        (!null).then_some(k)
                    })
                    .collect();
                Ok(TextColumn::Dictionary { keys, values })
            }
            DataType::Map(_, _) | DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) => {
                Ok(TextColumn::Json(column.clone()))
            }
            _ => Ok(TextColumn::Text(as_text(column)?)),
        }
    }

    /// Row `row`'s text (`None`: null); JSON is written into `scratch`.
    fn value<'a>(&'a self, row: usize, scratch: &'a mut String) -> Result<Option<&'a [u8]>, String> {
        Ok(match self {
            TextColumn::Text(text) => (!text.is_null(row)).then(|| text.value(row).as_bytes()),
            TextColumn::Dictionary { keys, values } => keys[row].map(|k| values.value(k).as_bytes()),
            TextColumn::Json(column) => {
                if column.is_null(row) {
                    return Ok(None);
                }
                scratch.clear();
                use std::fmt::Write as _;
                let _ = write!(scratch, "{}", json_of(column, row)?);
                Some(scratch.as_bytes())
            }
        })
    }
}

/// The columns the ingest reads out of `names`: the FOCUS columns of the cost schema, or for a CUR 2.0 export
/// the CUR columns they come from.
fn read_columns(names: &[String]) -> Vec<&'static str> {
    if CurPlan::detect(names).is_some() {
        CUR_COLUMNS
            .iter()
            .map(|(_, cur)| *cur)
            .chain(["line_item_line_item_type", "resource_tags", "product"])
            .collect()
    } else {
        super::schema::FIELDS.iter().filter_map(|f| f.focus).collect()
    }
}

/// CUR 2.0 columns costd reads, by the FOCUS column each becomes (AWS's FOCUS 1.0 correspondence).
/// `ChargeCategory` and `Tags` are mapped value by value ([`cur_charge_category`], [`cur_tags`]);
/// `ServiceName` is the product's name from the `product` map (what AWS's FOCUS export calls the service,
/// "Amazon Elastic Compute Cloud"), the product code ("AmazonEC2") where a row has no name.
pub const CUR_COLUMNS: [(&str, &str); 14] = [
    ("ChargePeriodStart", "line_item_usage_start_date"),
    ("ChargePeriodEnd", "line_item_usage_end_date"),
    ("BilledCost", "line_item_unblended_cost"),
    ("BillingCurrency", "line_item_currency_code"),
    ("ServiceName", "line_item_product_code"),
    ("SubAccountId", "line_item_usage_account_id"),
    ("BillingAccountId", "bill_payer_account_id"),
    ("RegionId", "product_region_code"),
    ("ResourceId", "line_item_resource_id"),
    ("ListCost", "pricing_public_on_demand_cost"),
    ("ChargeDescription", "line_item_line_item_description"),
    ("BillingPeriodStart", "bill_billing_period_start_date"),
    ("BillingPeriodEnd", "bill_billing_period_end_date"),
    ("InvoiceId", "bill_invoice_id"),
];

/// How a CUR 2.0 row becomes a FOCUS row.
struct CurPlan {
    header: Vec<&'static str>,
    outputs: Vec<CurOut>,
}

enum CurOut {
    Copy(usize),
    /// The `product` map's `product_name`, else the product code.
    ServiceName {
        product: Option<usize>,
        code: Option<usize>,
    },
    ChargeCategory(usize),
    Tags(usize),
}

impl CurPlan {
    /// A plan when `names` are CUR 2.0's (its cost and usage start columns are there).
    fn detect(names: &[String]) -> Option<CurPlan> {
        let find = |cur: &str| names.iter().position(|n| n.eq_ignore_ascii_case(cur));
        find("line_item_unblended_cost")?;
        find("line_item_usage_start_date")?;
        let mut plan = CurPlan { header: Vec::new(), outputs: Vec::new() };
        for (focus, cur) in CUR_COLUMNS {
            if focus == "ServiceName" {
                let (product, code) = (find("product"), find(cur));
                if product.is_some() || code.is_some() {
                    plan.header.push(focus);
                    plan.outputs.push(CurOut::ServiceName { product, code });
                }
                continue;
            }
            if let Some(i) = find(cur) {
                plan.header.push(focus);
                plan.outputs.push(CurOut::Copy(i));
            }
        }
        if let Some(i) = find("line_item_line_item_type") {
            plan.header.push("ChargeCategory");
            plan.outputs.push(CurOut::ChargeCategory(i));
        }
        if let Some(i) = find("resource_tags") {
            plan.header.push("Tags");
            plan.outputs.push(CurOut::Tags(i));
        }
        Some(plan)
    }

    fn header(&self) -> &[&'static str] {
        &self.header
    }

    fn apply(&self, record: &csv::ByteRecord, out: &mut csv::ByteRecord) {
        out.clear();
        for o in &self.outputs {
            match *o {
                CurOut::Copy(i) => out.push_field(record.get(i).unwrap_or_default()),
                CurOut::ServiceName { product, code } => {
                    match product.and_then(|i| record.get(i)).and_then(cur_product_name) {
                        Some(name) => out.push_field(name.as_bytes()),
                        None => out.push_field(code.and_then(|i| record.get(i)).unwrap_or_default()),
                    }
                }
                CurOut::ChargeCategory(i) => {
                    out.push_field(cur_charge_category(record.get(i).unwrap_or_default()).as_bytes())
                }
                CurOut::Tags(i) => out.push_field(cur_tags(record.get(i).unwrap_or_default()).as_bytes()),
            }
        }
    }
}

/// The `product_name` of a CUR 2.0 `product` map (JSON text), if it has a non-empty one. Only that value is
/// parsed, not the whole map (dozens of attributes on every row).
pub fn cur_product_name(product: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(product).ok()?;
    const KEY: &str = "\"product_name\"";
    let mut from = 0;
    while let Some(at) = text[from..].find(KEY) {
        from += at + KEY.len();
        // A key is followed by a colon; the same text as a value is not.
        let Some(rest) = text[from..].trim_start().strip_prefix(':') else { continue };
        let mut values = serde_json::Deserializer::from_str(rest.trim_start()).into_iter::<String>();
        return values.next()?.ok().filter(|name| !name.trim().is_empty());
    }
    None
}

/// CUR 2.0's `line_item_line_item_type` as a FOCUS `ChargeCategory`: covered and discounted usage is usage,
/// commitment fees are purchases, the negation of covered usage and the discount programs are discounts.
pub fn cur_charge_category(line_item_type: &[u8]) -> &'static str {
    match line_item_type {
        b"Usage" | b"DiscountedUsage" | b"SavingsPlanCoveredUsage" => "Usage",
        b"Tax" => "Tax",
        b"Credit" => "Credit",
        b"Refund" => "Refund",
        b"Fee" | b"RIFee" | b"SavingsPlanRecurringFee" | b"SavingsPlanUpfrontFee" => "Purchase",
        b"SavingsPlanNegation"
        | b"EdpDiscount"
        | b"BundledDiscount"
        | b"PrivateRateDiscount"
        | b"DistributorDiscount" => "Discount",
        _ => "Adjustment",
    }
}

/// CUR 2.0's `resource_tags` (`{"user_team": "web"}`) as FOCUS `Tags` (`{"team": "web"}`): user tags lose
/// CUR's `user_` prefix; anything that is not a JSON object is passed on for the ingest to judge.
pub fn cur_tags(text: &[u8]) -> std::borrow::Cow<'_, str> {
    let raw = String::from_utf8_lossy(text);
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&raw) else { return raw };
    let renamed: serde_json::Map<String, serde_json::Value> = map
        .into_iter()
        .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
        .map(|(k, v)| (k.strip_prefix("user_").map(str::to_string).unwrap_or(k), v))
        .collect();
    std::borrow::Cow::Owned(serde_json::Value::Object(renamed).to_string())
}

/// A column as text, as a CSV export would write it: numbers and decimals exactly, timestamps in ISO 8601,
/// maps (AWS's `tags`) and structs as JSON objects.
fn as_text(column: &ArrayRef) -> Result<StringArray, String> {
    match column.data_type() {
        DataType::Map(_, _) | DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) => {
            let mut out = arrow::array::StringBuilder::with_capacity(column.len(), column.len() * 16);
            for row in 0..column.len() {
                if column.is_null(row) {
                    out.append_null();
                } else {
                    out.append_value(json_of(column, row)?.to_string());
                }
            }
            Ok(out.finish())
        }
        // Every time column the ingest reads is a date (it keeps a timestamp's UTC day): written as the day,
        // which is cheaper to write and to read back than a timestamp's text, and means the same to it.
        DataType::Timestamp(unit, _) => {
            use arrow::datatypes::TimeUnit;
            let per_day: i64 = match unit {
                TimeUnit::Second => 86_400,
                TimeUnit::Millisecond => 86_400_000,
                TimeUnit::Microsecond => 86_400_000_000,
                TimeUnit::Nanosecond => 86_400_000_000_000,
            };
            let values = arrow::compute::cast(column, &DataType::Int64).map_err(|e| e.to_string())?;
            let values = values.as_primitive::<arrow::datatypes::Int64Type>();
            Ok(days_text(values.iter().map(|v| v.map(|v| v.div_euclid(per_day)))))
        }
        DataType::Date32 => {
            let values = column.as_primitive::<arrow::datatypes::Date32Type>();
            Ok(days_text(values.iter().map(|v| v.map(i64::from))))
        }
        // CUR 2.0 writes costs as doubles. Rust prints a double as the shortest decimal that reads back as the
        // same double, never in exponent form: the digits the exporter's CSV would have shown.
        DataType::Float64 => {
            let values = column.as_primitive::<arrow::datatypes::Float64Type>();
            Ok(floats_text(values.iter().map(|v| v.filter(|v| v.is_finite()))))
        }
        DataType::Float32 => {
            let values = column.as_primitive::<arrow::datatypes::Float32Type>();
            Ok(floats_text(values.iter().map(|v| v.filter(|v| v.is_finite()).map(f64::from))))
        }
        _ => {
            let cast = arrow::compute::cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
            Ok(cast.as_string::<i32>().clone())
        }
    }
}

/// Days since 1970-01-01 as `YYYY-MM-DD`, written straight into the column (no string per value).
fn days_text(days: impl Iterator<Item = Option<i64>>) -> StringArray {
    use chrono::Datelike;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let mut out = arrow::array::StringBuilder::new();
    let mut text = [0u8; 10];
    let mut last: Option<i64> = None;
    for day in days {
        let Some(day) = day else {
            out.append_null();
            continue;
        };
        if last != Some(day) {
            // A day past what a date can be (`-infinity` written as the smallest timestamp) is no panic.
            let date = chrono::TimeDelta::try_days(day).and_then(|days| epoch.checked_add_signed(days));
            match date.filter(|d| (0..=9999).contains(&d.year())) {
                Some(d) => {
                    let (y, m, dd) = (d.year() as u32, d.month(), d.day());
                    let digits =
                        [y / 1000, y / 100 % 10, y / 10 % 10, y % 10, 10, m / 10, m % 10, 10, dd / 10, dd % 10];
                    for (slot, v) in text.iter_mut().zip(digits) {
                        *slot = if v == 10 { b'-' } else { b'0' + v as u8 };
                    }
                    last = Some(day);
                }
                None => {
                    // Out of range: left for the ingest to refuse by name.
                    out.append_value(format!("day {day}"));
                    last = None;
                    continue;
                }
            }
        }
        out.append_value(std::str::from_utf8(&text).expect("ASCII digits"));
    }
    out.finish()
}

/// Doubles as their shortest round-trip decimal (Rust's `Display`), written straight into the column.
fn floats_text(values: impl Iterator<Item = Option<f64>>) -> StringArray {
    use std::fmt::Write as _;
    let mut out = arrow::array::StringBuilder::new();
    for v in values {
        match v {
            Some(v) => {
                let _ = write!(out, "{v}");
                out.append_value("");
            }
            None => out.append_null(),
        }
    }
    out.finish()
}

fn json_of(column: &ArrayRef, row: usize) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    if column.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match column.data_type() {
        DataType::Map(_, _) => {
            let map = column.as_map();
            let entries = map.value(row);
            let keys = as_text(entries.column(0))?;
            let values = entries.column(1);
            let mut obj = serde_json::Map::new();
            for i in 0..entries.len() {
                obj.insert(keys.value(i).to_string(), json_of(values, i)?);
            }
            Value::Object(obj)
        }
        DataType::Struct(fields) => {
            let s = column.as_struct();
            let mut obj = serde_json::Map::new();
            for (i, f) in fields.iter().enumerate() {
                obj.insert(f.name().clone(), json_of(s.column(i), row)?);
            }
            Value::Object(obj)
        }
        DataType::List(_) => {
            let l = column.as_list::<i32>();
            let items = l.value(row);
            Value::Array((0..items.len()).map(|i| json_of(&items, i)).collect::<Result<_, _>>()?)
        }
        DataType::LargeList(_) => {
            let l = column.as_list::<i64>();
            let items = l.value(row);
            Value::Array((0..items.len()).map(|i| json_of(&items, i)).collect::<Result<_, _>>()?)
        }
        _ => {
            let text = as_text(&column.slice(row, 1))?;
            Value::String(text.value(0).to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use costd_model::bucket_export::Endpoint;

    fn aws() -> ExportLocation {
        ExportLocation::Aws {
            bucket: "bills".into(),
            prefix: "cur".into(),
            export_name: "focus".into(),
            region: "us-east-1".into(),
            endpoint: None,
        }
    }

    fn azure() -> ExportLocation {
        ExportLocation::Azure {
            storage_account: "acct".into(),
            container: "exports".into(),
            root_folder_path: "costs".into(),
            endpoint: Some(Endpoint::parse("http://127.0.0.1:10000/acct").unwrap()),
        }
    }

    #[test]
    fn manifests_are_recognised_by_their_providers_names_only() {
        let p = |s| Period::parse(s);
        assert_eq!(
            manifest_period(&aws(), "cur/focus/metadata/BILLING_PERIOD=2024-09/focus-Manifest.json"),
            p("2024-09")
        );
        assert_eq!(manifest_period(&aws(), "cur/focus/metadata/BILLING_PERIOD=2024-09/other-Manifest.json"), None);
        assert_eq!(manifest_period(&aws(), "cur/focus/data/BILLING_PERIOD=2024-09/focus-00001.csv.gz"), None);
        assert_eq!(manifest_period(&azure(), "costs/daily/20240901-20240930/3f1c/manifest.json"), p("2024-09"));
        assert_eq!(manifest_period(&azure(), "costs/daily/20240901-20240930/part_0_0001.csv.gz"), None);
        // AWS's partition-level manifest of create-new delivery.
        assert_eq!(
            manifest_period(&aws(), "cur/focus/metadata/BILLING_PERIOD=2024-09/20240915T000000Z/Manifest.json"),
            p("2024-09")
        );
    }

    #[test]
    fn each_azure_export_under_the_root_is_its_own() {
        let of = |key| manifest_of(&azure(), key).map(|(e, p)| (e, p.to_string()));
        assert_eq!(of("costs/sub-a/20240901-20240930/r1/manifest.json"), Some(("sub-a".into(), "2024-09".into())));
        assert_eq!(of("costs/sub-b/20240901-20240930/manifest.json"), Some(("sub-b".into(), "2024-09".into())));
        assert_eq!(of("costs/20240901-20240930/r1/manifest.json"), Some(("".into(), "2024-09".into())));
        assert_eq!(of("costs/team/x/20241001-20241031/manifest.json"), Some(("team/x".into(), "2024-10".into())));
    }

    #[test]
    fn an_azure_export_that_is_not_cost_data_is_skipped_with_its_type() {
        let body = |kind: &str| {
            format!(
                r#"{{"runInfo":{{"runId":"r1"}},"exportConfig":{{"type":"{kind}"}},"blobs":[{{"blobName":"a.csv"}}]}}"#
            )
        };
        let prices = parse_manifest(&azure(), "m.json", body("PriceSheet").as_bytes()).unwrap();
        assert!(prices.skipped().unwrap().starts_with("a PriceSheet export, not FOCUS cost data"));
        assert_eq!(parse_manifest(&azure(), "m.json", body("FocusCost").as_bytes()).unwrap().skipped(), None);
        let untyped = br#"{"runInfo":{"runId":"r1"},"blobs":[{"blobName":"a.csv"}]}"#;
        assert_eq!(parse_manifest(&azure(), "m.json", untyped).unwrap().skipped(), None);
    }

    #[test]
    fn an_aws_manifest_names_keys_in_its_own_bucket_only() {
        let body = br#"{"executionId":"e1","dataFiles":["s3://bills/cur/focus/data/BILLING_PERIOD=2024-09/focus-00001.snappy.parquet"]}"#;
        let m = parse_manifest(&aws(), "m.json", body).unwrap();
        assert_eq!(m.id, "e1");
        assert_eq!(m.files, ["cur/focus/data/BILLING_PERIOD=2024-09/focus-00001.snappy.parquet"]);
        let elsewhere = br#"{"executionId":"e1","dataFiles":["s3://other/x.csv.gz"]}"#;
        assert!(parse_manifest(&aws(), "m.json", elsewhere).unwrap_err().contains("outside the bucket bills"));
        // A replica: the source bucket's name, the export's own keys.
        let replica = br#"{"executionId":"e1","dataFiles":["s3://source-bills/cur/focus/data/BILLING_PERIOD=2024-09/a.parquet"]}"#;
        assert_eq!(
            parse_manifest(&aws(), "m.json", replica).unwrap().files,
            ["cur/focus/data/BILLING_PERIOD=2024-09/a.parquet"]
        );
        let beside = br#"{"executionId":"e1","dataFiles":["s3://source-bills/cur/focus-other/data/a.parquet"]}"#;
        assert!(parse_manifest(&aws(), "m.json", beside).unwrap_err().contains("outside the bucket"));
        let twice = br#"{"executionId":"e1","dataFiles":["s3://bills/cur/a.csv","s3://bills/cur/a.csv"]}"#;
        assert!(parse_manifest(&aws(), "m.json", twice).unwrap_err().contains("lists cur/a.csv more than once"));
        let many: Vec<String> = (0..=MAX_MANIFEST_FILES).map(|i| format!("s3://bills/cur/{i}.csv")).collect();
        let many = serde_json::to_vec(&serde_json::json!({"executionId": "e1", "dataFiles": many})).unwrap();
        assert!(parse_manifest(&aws(), "m.json", &many).unwrap_err().contains("more than the 10000"));
        let empty = br#"{"executionId":"e1","dataFiles":[]}"#;
        assert!(parse_manifest(&aws(), "m.json", empty).unwrap_err().contains("no data files"));
        assert!(parse_manifest(&aws(), "m.json", b"{").unwrap_err().starts_with("m.json: the manifest is not valid"));
    }

    #[test]
    fn an_azure_manifest_gives_its_run_id_and_blobs() {
        let body = br#"{"manifestVersion":"2024-04-01","runInfo":{"runId":"r1","startDate":"2024-09-01T00:00:00"},
            "blobs":[{"blobName":"costs/daily/20240901-20240930/r1/part_0_0001.csv.gz","byteCount":10}]}"#;
        let m = parse_manifest(&azure(), "manifest.json", body).unwrap();
        assert_eq!((m.id.as_str(), m.files.len()), ("r1", 1));
        let traversal = br#"{"runInfo":{"runId":"r1"},"blobs":[{"blobName":"../x"}]}"#;
        assert!(parse_manifest(&azure(), "manifest.json", traversal).is_err());
    }

    #[test]
    fn row_problems_are_located_in_their_file() {
        let log = ReadLog { failure: None, starts: vec![(1, "a.csv.gz".into()), (11, "b.csv.gz".into())] };
        assert_eq!(log.locate("Row 12: BilledCost is bad"), "b.csv.gz, row 2: BilledCost is bad");
        assert_eq!(log.locate("Row 3: x"), "a.csv.gz, row 3: x");
        assert_eq!(
            log.locate("Header: missing ServiceName"),
            "a.csv.gz: its columns are not FOCUS (1.0 to 1.2) or CUR 2.0: missing ServiceName"
        );
        assert_eq!(log.locate("The file is empty"), "The file is empty");
    }

    /// The records of `rows` as CSV text (how the ingest reads them, made readable).
    fn text_of(mut rows: ExportRows, text: &mut String) -> Result<(), csv::Error> {
        use crate::ingest::RecordSource;
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        let mut record = csv::ByteRecord::new();
        while rows.next_record(&mut record)? {
            w.write_byte_record(&record)?;
        }
        text.push_str(std::str::from_utf8(&w.into_inner().expect("a Vec")).expect("UTF-8"));
        Ok(())
    }

    fn local(dir: &Path, name: &str, bytes: &[u8]) -> LocalFile {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        LocalFile { key: name.into(), path, bytes: bytes.len() as u64 }
    }

    #[test]
    fn csv_chunks_are_joined_under_one_header_of_the_columns_read_in_the_first_files_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = local(dir.path(), "a.csv", b"BilledCost,x_Discounts,ServiceName\n1.5,{},EC2\n");
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"ServiceName,BilledCost,x_Discounts\nS3,0.25,\n").unwrap();
        let b = local(dir.path(), "b.csv.gz", &gz.finish().unwrap());
        let empty = local(dir.path(), "c.csv", b"");
        let log = Arc::new(Mutex::new(ReadLog::default()));
        let mut text = String::new();
        text_of(ExportRows::new(vec![a, empty, b], log.clone()).unwrap(), &mut text).unwrap();
        assert_eq!(text, "BilledCost,ServiceName\n1.5,EC2\n0.25,S3\n");
    }

    #[test]
    fn a_chunk_with_other_columns_fails_the_stream_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = local(dir.path(), "a.csv", b"BilledCost,ServiceName\n1.5,EC2\n");
        let b = local(dir.path(), "b.csv", b"BilledCost\n2\n");
        let log = Arc::new(Mutex::new(ReadLog::default()));
        let mut text = String::new();
        let e = text_of(ExportRows::new(vec![a, b], log.clone()).unwrap(), &mut text).unwrap_err();
        assert!(e.to_string().starts_with("b.csv: has no column ServiceName"), "{e}");
        assert!(log.lock().unwrap().failure.as_deref().unwrap().starts_with("b.csv"));
    }

    #[test]
    fn parquet_rows_keep_decimals_exact_and_maps_as_json() {
        use arrow::array::{Decimal128Array, MapBuilder, StringBuilder};
        use arrow::datatypes::{Field, Schema};
        use arrow::record_batch::RecordBatch;
        let cost = Decimal128Array::from(vec![Some(123456789012345678901i128), None])
            .with_precision_and_scale(38, 18)
            .unwrap();
        let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        tags.keys().append_value("team");
        tags.values().append_value("web");
        tags.append(true).unwrap();
        tags.append(false).unwrap();
        let tags = tags.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("BilledCost", cost.data_type().clone(), true),
            Field::new("Tags", tags.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(cost), Arc::new(tags)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let file = LocalFile { key: "a.parquet".into(), path, bytes: 0 };
        let mut text = String::new();
        text_of(ExportRows::new(vec![file], Default::default()).unwrap(), &mut text).unwrap();
        assert_eq!(text, "BilledCost,Tags\n123.456789012345678901,\"{\"\"team\"\":\"\"web\"\"}\"\n,\n");
    }

    #[test]
    fn doubles_read_as_their_shortest_decimal_never_in_exponent_form() {
        let col: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![Some(0.1), Some(1e-7), Some(12.5), None]));
        let text = as_text(&col).unwrap();
        let got: Vec<Option<&str>> = text.iter().collect();
        assert_eq!(got, [Some("0.1"), Some("0.0000001"), Some("12.5"), None]);
    }

    #[test]
    fn a_cur_products_name_is_its_service_and_its_code_stands_in_for_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let cur = "line_item_usage_start_date,line_item_product_code,line_item_unblended_cost,product\n\
                   2024-09-01T00:00:00Z,AmazonEC2,1.5,\"{\"\"product_family\"\":\"\"product_name\"\",\"\"product_name\"\": \"\"Amazon Elastic Compute Cloud\"\"}\"\n\
                   2024-09-01T00:00:00Z,AmazonS3,2,\"{\"\"product_name\"\":\"\"\"\"}\"\n\
                   2024-09-01T00:00:00Z,AWSLambda,3,\n";
        let a = local(dir.path(), "cur.csv", cur.as_bytes());
        let mut text = String::new();
        text_of(ExportRows::new(vec![a], Default::default()).unwrap(), &mut text).unwrap();
        assert_eq!(
            text,
            "ChargePeriodStart,BilledCost,ServiceName\n\
             2024-09-01T00:00:00Z,1.5,Amazon Elastic Compute Cloud\n\
             2024-09-01T00:00:00Z,2,AmazonS3\n\
             2024-09-01T00:00:00Z,3,AWSLambda\n"
        );
        assert_eq!(
            cur_product_name(br#"{"product_name":"AWS \"X\" Service","region":"eu"}"#).as_deref(),
            Some("AWS \"X\" Service")
        );
        assert_eq!(cur_product_name(b"not json"), None);
    }

    #[test]
    fn a_cur_2_export_is_read_as_focus_columns() {
        let dir = tempfile::tempdir().unwrap();
        let cur = "bill_payer_account_id,line_item_usage_account_id,line_item_line_item_type,line_item_usage_start_date,\
                   line_item_product_code,line_item_unblended_cost,line_item_currency_code,resource_tags\n\
                   111,222,SavingsPlanCoveredUsage,2024-09-01T00:00:00Z,AmazonEC2,1.5,USD,\"{\"\"user_team\"\":\"\"web\"\",\"\"user_env\"\":\"\"\"\"}\"\n\
                   111,222,SavingsPlanNegation,2024-09-01T00:00:00Z,AmazonEC2,-1.5,USD,\n";
        let a = local(dir.path(), "cur.csv", cur.as_bytes());
        let mut text = String::new();
        text_of(ExportRows::new(vec![a], Default::default()).unwrap(), &mut text).unwrap();
        assert_eq!(
            text,
            "ChargePeriodStart,BilledCost,BillingCurrency,ServiceName,SubAccountId,BillingAccountId,ChargeCategory,Tags\n\
             2024-09-01T00:00:00Z,1.5,USD,AmazonEC2,222,111,Usage,\"{\"\"team\"\":\"\"web\"\"}\"\n\
             2024-09-01T00:00:00Z,-1.5,USD,AmazonEC2,222,111,Discount,\n"
        );
    }

    #[test]
    fn files_that_stop_arriving_end_the_stream_with_an_error_never_a_short_read() {
        let dir = tempfile::tempdir().unwrap();
        let a = local(dir.path(), "a.csv", b"BilledCost,ServiceName\n1.5,EC2\n");
        let (tx, rx) = sync_channel(2);
        tx.send(Ok(a)).unwrap();
        drop(tx); // the second of two never comes
        let mut text = String::new();
        let e = text_of(ExportRows::arriving(2, rx, Default::default(), ReadLimits::default()).unwrap(), &mut text)
            .unwrap_err();
        assert!(e.to_string().contains("only 1 of the manifest's 2 files arrived"), "{e}");
        let (tx, rx) = sync_channel(1);
        tx.send(Err(FetchError::Missing("b.csv".into()))).unwrap();
        let e = text_of(ExportRows::arriving(1, rx, Default::default(), ReadLimits::default()).unwrap(), &mut text)
            .unwrap_err();
        assert!(e.to_string().starts_with("b.csv: listed by the manifest but missing"), "{e}");
    }

    #[test]
    fn timestamps_are_read_as_their_utc_day() {
        use arrow::array::{TimestampMicrosecondArray, TimestampSecondArray};
        let micros: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(1_725_148_800_000_000),
                Some(1_725_235_199_999_999),
                Some(-1),
                None,
            ])
            .with_timezone("+02:00"),
        );
        let text = as_text(&micros).unwrap();
        let got: Vec<Option<&str>> = text.iter().collect();
        assert_eq!(got, [Some("2024-09-01"), Some("2024-09-01"), Some("1969-12-31"), None]);
        let secs: ArrayRef = Arc::new(TimestampSecondArray::from(vec![1_725_235_200]));
        assert_eq!(as_text(&secs).unwrap().value(0), "2024-09-02");
    }

    #[test]
    fn a_corrupt_parquet_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = local(dir.path(), "x.parquet", b"PAR1 this is not parquet");
        let mut text = String::new();
        let e = text_of(ExportRows::new(vec![bad], Default::default()).unwrap(), &mut text).unwrap_err();
        assert!(e.to_string().starts_with("x.parquet: is not a readable Parquet file"), "{e}");
    }

    #[test]
    fn a_reader_that_goes_away_without_saying_done_is_an_error_never_the_end() {
        let (tx, rx) = sync_channel(2);
        let mut fields = Fields::default();
        fields.push(&csv::ByteRecord::from(vec!["BilledCost"]));
        tx.send(Ok(Handed::Rows(fields))).unwrap();
        drop(tx); // as a panicking reader thread would
        let mut rows =
            ExportRows { rx, fields: Fields::default(), at: 0, bytes: 0, done: false, log: Default::default() };
        use crate::ingest::RecordSource;
        let mut record = csv::ByteRecord::new();
        assert!(rows.next_record(&mut record).unwrap());
        let e = rows.next_record(&mut record).unwrap_err();
        assert!(e.to_string().contains("stopped before the last file's end"), "{e}");
        assert!(rows.log.lock().unwrap().failure.is_some());
    }

    #[test]
    fn an_infinite_timestamp_is_a_day_the_ingest_refuses_not_a_panic() {
        use arrow::array::{TimestampMicrosecondArray, TimestampNanosecondArray, TimestampSecondArray};
        for col in [
            Arc::new(TimestampSecondArray::from(vec![i64::MIN, i64::MAX])) as ArrayRef,
            Arc::new(TimestampMicrosecondArray::from(vec![i64::MIN, i64::MAX])),
        ] {
            let text = as_text(&col).unwrap();
            assert!(text.value(0).starts_with("day -"), "{}", text.value(0));
            assert!(text.value(1).starts_with("day "), "{}", text.value(1));
        }
        // Nanoseconds span 1677 to 2262: every value is a date.
        let nanos: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![i64::MIN]));
        assert_eq!(as_text(&nanos).unwrap().value(0), "1677-09-21");
    }

    #[test]
    fn an_export_csv_with_a_quote_left_open_is_refused_before_it_is_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = b"BilledCost,ServiceName\n1.5,\"EC2".to_vec();
        body.extend(std::iter::repeat_n(b'x', crate::ingest::guard::MAX_RECORD_BYTES as usize + 10));
        let a = local(dir.path(), "a.csv", &body);
        let mut text = String::new();
        let e = text_of(ExportRows::new(vec![a], Default::default()).unwrap(), &mut text).unwrap_err();
        assert!(e.to_string().starts_with("a.csv: Row 1: the row is longer than"), "{e}");
        let cut = local(dir.path(), "b.csv", b"BilledCost,ServiceName\n1.5,\"EC2\n");
        let e = text_of(ExportRows::new(vec![cut], Default::default()).unwrap(), &mut text).unwrap_err();
        assert!(e.to_string().starts_with("b.csv: Row 1: the file ends inside a quoted field"), "{e}");
    }

    #[test]
    fn a_period_past_the_upload_limit_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = local(dir.path(), "a.csv", b"BilledCost,ServiceName\n1.5,EC2\n");
        let b = local(dir.path(), "b.csv", b"BilledCost,ServiceName\n2.5,S3\n");
        let limits = ReadLimits { max_bytes: Some(40) };
        let mut text = String::new();
        let e =
            text_of(ExportRows::with_limits(vec![a, b], Default::default(), limits).unwrap(), &mut text).unwrap_err();
        assert!(e.to_string().starts_with("b.csv: the period's files hold more than 40 bytes"), "{e}");
    }

    #[test]
    fn columns_are_checked_in_linear_time_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..1500).map(|i| format!("x_{i}")).collect();
        let header = format!("BilledCost,ServiceName,{}\n", names.join(","));
        let row = format!("1,EC2{}\n", ",".repeat(names.len()));
        let mut reversed = names.clone();
        reversed.reverse();
        let header2 = format!("ServiceName,BilledCost,{}\n", reversed.join(","));
        let row2 = format!("EC2,2{}\n", ",".repeat(names.len()));
        let a = local(dir.path(), "a.csv", format!("{header}{row}").as_bytes());
        let b = local(dir.path(), "b.csv", format!("{header2}{row2}").as_bytes());
        let mut text = String::new();
        text_of(ExportRows::new(vec![a, b], Default::default()).unwrap(), &mut text).unwrap();
        assert_eq!(text, "BilledCost,ServiceName\n1,EC2\n2,EC2\n");
        let wide: Vec<String> = (0..=MAX_EXPORT_COLUMNS).map(|i| format!("c{i}")).collect();
        let w = local(dir.path(), "w.csv", format!("{}\n", wide.join(",")).as_bytes());
        let e = text_of(ExportRows::new(vec![w], Default::default()).unwrap(), &mut text).unwrap_err();
        assert!(e.to_string().starts_with("w.csv: has 2001 columns, more than the 2000"), "{e}");
        let twice = local(dir.path(), "t.csv", b"BilledCost,billedcost\n1,2\n");
        let e = text_of(ExportRows::new(vec![twice], Default::default()).unwrap(), &mut text).unwrap_err();
        assert!(e.to_string().contains("has the column billedcost more than once"), "{e}");
    }

    /// A Parquet file whose text columns repeat one long value on every row through the dictionary: a few KB
    /// on disk, gigabytes if each row held its own copy.
    fn repeated_long_values(dir: &Path, rows: usize, long: usize) -> LocalFile {
        use arrow::array::{MapBuilder, StringBuilder};
        use arrow::datatypes::{Field, Schema};
        use arrow::record_batch::RecordBatch;
        let value = "v".repeat(long);
        let service = StringArray::from(vec![Some(value.as_str()); rows]);
        let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for _ in 0..rows {
            tags.keys().append_value("team");
            tags.values().append_value(&value);
            tags.append(true).unwrap();
        }
        let tags = tags.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("ServiceName", arrow::datatypes::DataType::Utf8, true),
            Field::new("Tags", tags.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(service), Arc::new(tags)]).unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let path = dir.join("long.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let bytes = std::fs::metadata(&path).unwrap().len();
        LocalFile { key: "long.parquet".into(), path, bytes }
    }

    #[test]
    fn long_parquet_values_repeated_by_the_dictionary_stay_one_copy_and_rows_are_cut_for_the_ingest() {
        use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
        let dir = tempfile::tempdir().unwrap();
        let file = repeated_long_values(dir.path(), 1000, 200_000);
        assert!(file.bytes < 1 << 20, "the file is small: {}", file.bytes);
        // The reader's hint reads both the column and the map's values as dictionaries.
        let plain = ParquetRecordBatchReaderBuilder::try_new(File::open(&file.path).unwrap()).unwrap();
        let options = ArrowReaderOptions::new().with_schema(dictionary_schema(plain.schema()));
        let mut reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(File::open(&file.path).unwrap(), options)
                .unwrap()
                .with_batch_size(PARQUET_BATCH_ROWS)
                .build()
                .unwrap();
        let batch = reader.next().unwrap().unwrap();
        assert!(matches!(batch.column(0).data_type(), DataType::Dictionary(_, _)), "{:?}", batch.schema());
        assert!(batch.get_array_memory_size() < 64 << 20, "{} bytes in memory", batch.get_array_memory_size());
        // Every row comes out, each field cut one byte past the ingest's limit.
        let (tx, rx) = sync_channel(1);
        tx.send(Ok(file)).unwrap();
        drop(tx);
        let mut rows = ExportRows::arriving(1, rx, Default::default(), ReadLimits::default()).unwrap();
        use crate::ingest::RecordSource;
        let mut record = csv::ByteRecord::new();
        assert!(rows.next_record(&mut record).unwrap());
        assert_eq!(record, csv::ByteRecord::from(vec!["ServiceName", "Tags"]));
        let mut n = 0;
        while rows.next_record(&mut record).unwrap() {
            assert_eq!(record.get(0).unwrap().len(), HANDED_FIELD_BYTES);
            assert_eq!(record.get(1).unwrap().len(), HANDED_FIELD_BYTES);
            n += 1;
        }
        assert_eq!(n, 1000);
    }
}
