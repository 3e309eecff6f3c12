//! Syncing bucket integrations: each billing period of a cloud's cost export becomes one upload, replaced whole
//! whenever the cloud writes a new manifest for it.
//!
//! One sync of one integration:
//! 0. claim it ([`claim`]): one sync per integration in the process, one across the deployment (a named store
//!    lock: advisory on PostgreSQL, a locked file on SQLite), and a slot of the account's and of the node's
//!    ([`SyncSlots`]); a request
//!    that cannot have all of them is refused at once (409, 429, 503). The claim moves into the task that
//!    syncs, so a request that waits and is dropped leaves a sync that still holds its claim: no second load
//!    of the integration starts beside it;
//! 1. list the export's manifests (`engine::bills::list_manifests`: the newest per period and export, from
//!    the listing alone; an Azure root may hold several exports, each in its own folder, and a month is every
//!    cost export's newest run together);
//! 2. choose the periods: the current and the previous month (AWS restates a closed month up to two weeks
//!    later), every period never loaded, and with `backfill` every period listed;
//! 3. skip a period whose manifest has the key and etag it was last loaded from (no read at all), or whose
//!    manifest, read, has the same execution/run id (one small read);
//! 4. otherwise download exactly the files its manifests list (all of them, or the period is left as it was;
//!    an export that is not cost data, an Azure price sheet, is skipped with a note), and hand their rows to
//!    [`super::uploads::upload`] under the period's upload name, read under the upload's limits (field and
//!    row bounds, `--max-upload-bytes`, byte bounds per Parquet row group and batch;
//!    `engine::bills::ReadLimits`). That is the upload path every CSV takes (file intent, ingest, persist,
//!    verify, one commit that retires the upload of the same name), so a refresh replaces its period atomically: a query sees the old rows or the new, never
//!    both, never neither, and an acknowledged period is never lost;
//! 5. record the manifest the period was loaded from, then the integration's status and last error.
//!
//! A crash between the commit (4) and the record (5) only makes the next sync load the same manifest again,
//! which replaces the period with the same rows: a period is never counted twice. Every failure (credentials,
//! a missing bucket, a malformed manifest, a file that is missing or corrupt, a bad row) is written on the
//! integration as `last_error`, naming the file; the period keeps its last good data and the next sync
//! retries it.

use crate::service::ServiceError;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use super::secrets::SecretBox;
use super::uploads::{upload, NewUpload, UploadSource};
use crate::engine::bills::{self, ExportRows, FetchError, ManifestRef, ReadLimits, ReadLog};
use crate::engine::ingest::{ingest_records, IngestError};
use crate::engine::uploads::UploadFiles;
use crate::model::bucket_export::{ExportLocation, Period};
use crate::model::token::{AccountToken, IntegrationToken};
use crate::store::{DynStore, SyncedPeriod};

/// The lock one node of a deployment holds while its loop syncs every integration.
pub const SYNC_LOCK: &str = "costd-sync";
/// How often the server syncs by default (`--sync-interval-secs`).
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(3600);
/// Most row problems written into `last_error`.
const LISTED_PROBLEMS: usize = 5;

/// What a sync needs.
#[derive(Clone)]
pub struct SyncContext {
    pub store: DynStore,
    pub files: Arc<UploadFiles>,
    pub secrets: SecretBox,
    /// Endpoints the operator allows now: an integration whose endpoint was allowed when it was created but is
    /// no longer is not synced.
    pub allowed: crate::model::bucket_export::AllowedEndpoints,
    /// Integrations this process is syncing now: a second request for one of them is refused at once.
    pub running: RunningSyncs,
    /// Woken when a period was replaced, so alerts look at it now (`service::uploads::upload` signals it).
    pub loaded: crate::service::uploads::DataChanged,
    /// Syncs an account, and this node, may run at once.
    pub slots: Arc<SyncSlots>,
    /// Most bytes of cost data one period may hold (`--max-upload-bytes`); `None`: no limit.
    pub max_bytes: Option<u64>,
}

/// Syncs in flight: each holds a blocking thread for its ingest and a download directory, as an upload does.
pub type SyncSlots = super::slots::UploadSlots;
/// Syncs one account may run at once on a node.
pub const SYNCS_PER_ACCOUNT: usize = 2;
/// Syncs one node runs at once.
pub const SYNCS_OVERALL: usize = 4;

/// The default sync slots.
pub fn default_sync_slots() -> Arc<SyncSlots> {
    Arc::new(SyncSlots::new(SYNCS_PER_ACCOUNT, SYNCS_OVERALL))
}

/// The integrations a process is syncing.
pub type RunningSyncs = Arc<Mutex<HashSet<IntegrationToken>>>;

impl SyncContext {
    pub fn new(
        store: DynStore,
        files: Arc<UploadFiles>,
        secrets: SecretBox,
        allowed: crate::model::bucket_export::AllowedEndpoints,
    ) -> SyncContext {
        SyncContext {
            store,
            files,
            secrets,
            allowed,
            running: Default::default(),
            loaded: Default::default(),
            slots: default_sync_slots(),
            max_bytes: None,
        }
    }
}

/// How much to sync.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Every period the export lists, not only the current and previous month and new ones.
    pub backfill: bool,
    /// The date whose month is "current".
    pub today: NaiveDate,
}

impl SyncOptions {
    pub fn now(backfill: bool) -> SyncOptions {
        SyncOptions { backfill, today: Utc::now().date_naive() }
    }
}

/// What happened to one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodOutcome {
    /// Its manifest was loaded: the period's upload was replaced.
    Loaded { rows: i64, files: usize, bytes: u64, upload: String },
    /// Its manifest is the one last loaded.
    Unchanged,
    /// Left as it was; the reason names the file.
    Failed(String),
}

/// What one sync of one integration did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub periods: BTreeMap<Period, PeriodOutcome>,
    /// A failure before any period (credentials, listing).
    pub error: Option<String>,
    /// What was passed over and why (an export that is not cost data), one sentence each.
    pub notes: Vec<String>,
}

impl SyncReport {
    /// Every failure, one sentence each.
    pub fn errors(&self) -> Vec<String> {
        let mut out: Vec<String> = self.error.iter().cloned().collect();
        for (period, outcome) in &self.periods {
            if let PeriodOutcome::Failed(why) = outcome {
                out.push(format!("{period}: {why}"));
            }
        }
        out
    }

    /// One line: loaded, unchanged, failed.
    pub fn summary(&self) -> String {
        let count = |f: fn(&PeriodOutcome) -> bool| self.periods.values().filter(|o| f(o)).count();
        let loaded = count(|o| matches!(o, PeriodOutcome::Loaded { .. }));
        let unchanged = count(|o| matches!(o, PeriodOutcome::Unchanged));
        let failed = count(|o| matches!(o, PeriodOutcome::Failed(_)));
        format!("{loaded} period(s) replaced, {unchanged} unchanged, {failed} failed")
    }
}

/// Told about a sync's progress (the CLI draws a bar).
pub trait SyncProgress: Send + Sync {
    fn period(&self, _period: Period, _what: &str) {}
}

/// No progress shown.
pub struct Quiet;
impl SyncProgress for Quiet {}

/// Removes a sync's download directory however the sync ends.
struct Downloads(PathBuf);

impl Drop for Downloads {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The right to sync one integration now (step 0 of the module doc); released when dropped.
pub struct SyncClaim {
    account: AccountToken,
    token: IntegrationToken,
    running: RunningSyncs,
    _slots: (tokio::sync::OwnedSemaphorePermit, tokio::sync::OwnedSemaphorePermit),
    _lock: crate::store::StoreLock,
}

impl Drop for SyncClaim {
    fn drop(&mut self) {
        self.running.lock().expect("running syncs").remove(&self.token);
    }
}

impl SyncClaim {
    /// The integration the claim is for.
    pub fn token(&self) -> &IntegrationToken {
        &self.token
    }
}

/// The name of the store lock one integration's sync holds across the deployment.
fn sync_lock(token: &IntegrationToken) -> String {
    format!("costd-sync:{token}")
}

/// Claims a sync of `account`'s bucket integration `token`, or says at once why it cannot run now.
pub async fn claim(
    ctx: &SyncContext,
    account: &AccountToken,
    token: &IntegrationToken,
) -> Result<SyncClaim, ServiceError> {
    let found = ctx.store.get_integration(account, token).await?.ok_or(ServiceError::NotFound("integration"))?;
    if found.location.is_none() {
        return Err(ServiceError::invalid(NOT_A_BUCKET));
    }
    if !ctx.running.lock().expect("running syncs").insert(token.clone()) {
        return Err(ServiceError::Conflict(ALREADY_RUNNING.into()));
    }
    // From here the token is in `running`: a failure below must take it out again.
    struct Undo<'a>(Option<(&'a RunningSyncs, &'a IntegrationToken)>);
    impl Drop for Undo<'_> {
        fn drop(&mut self) {
            if let Some((running, token)) = self.0.take() {
                running.lock().expect("running syncs").remove(token);
            }
        }
    }
    let mut undo = Undo(Some((&ctx.running, token)));
    let slots = ctx.slots.try_acquire(account).map_err(|busy| match busy {
        super::slots::Busy::Account(n) => {
            ServiceError::TooMany(format!("this account already has {n} syncs running; wait for one to finish"))
        }
        super::slots::Busy::Node => {
            ServiceError::Unavailable("the server is busy with other syncs; try again shortly".into())
        }
    })?;
    let Some(lock) = ctx.store.try_lock(&sync_lock(token)).await? else {
        return Err(ServiceError::Conflict(format!("{ALREADY_RUNNING} on another node")));
    };
    undo.0 = None;
    Ok(SyncClaim {
        account: account.clone(),
        token: token.clone(),
        running: ctx.running.clone(),
        _slots: slots,
        _lock: lock,
    })
}

/// Syncs one integration of `account` (see the module doc): claims it, then [`sync_claimed`].
pub async fn sync_integration(
    ctx: &SyncContext,
    account: &AccountToken,
    token: &IntegrationToken,
    options: SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, ServiceError> {
    let claim = claim(ctx, account, token).await?;
    sync_claimed(ctx, claim, options, progress).await
}

/// Syncs the integration `claim` holds; the claim is released when this returns (or is dropped).
#[tracing::instrument(skip_all, fields(integration = %claim.token))]
pub async fn sync_claimed(
    ctx: &SyncContext,
    claim: SyncClaim,
    options: SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, ServiceError> {
    let (account, token) = (&claim.account, &claim.token);
    let (integration, owner) = match ctx.store.find_integration(token).await? {
        Some((i, a)) if &a.token == account => (i, a),
        _ => return Err(ServiceError::NotFound("integration")),
    };
    let Some(location) = integration.location.as_deref() else { return Err(ServiceError::invalid(NOT_A_BUCKET)) };
    let location: ExportLocation =
        serde_json::from_str(location).context("the integration's stored export location is not readable")?;

    ctx.store.record_sync(token, "importing", None, integration.last_error.as_deref()).await?;
    let report = run(ctx, &location, account, token, &owner.owner_user_token, options, progress).await;
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            ctx.store
                .record_sync(token, "error", None, Some("the sync failed inside costd; see the server log"))
                .await?;
            return Err(e.into());
        }
    };
    let errors = report.errors();
    let (status, synced_at) = match (&report.error, errors.is_empty()) {
        (Some(_), _) => ("error", None),
        (None, true) => ("imported", Some(crate::store::now())),
        (None, false) => ("error", Some(crate::store::now())),
    };
    let error_text = (!errors.is_empty()).then(|| errors.join("\n"));
    ctx.store.record_sync(token, status, synced_at, error_text.as_deref()).await?;
    tracing::info!(
        summary = report.summary(),
        replaced = ?report.periods.iter().filter(|(_, o)| matches!(o, PeriodOutcome::Loaded { .. })).map(|(p, _)| p.to_string()).collect::<Vec<_>>(),
        errors = errors.len(),
        notes = ?report.notes,
        "synced"
    );
    drop(claim);
    Ok(report)
}

async fn run(
    ctx: &SyncContext,
    location: &ExportLocation,
    account: &AccountToken,
    token: &IntegrationToken,
    created_by: &str,
    options: SyncOptions,
    progress: &dyn SyncProgress,
) -> anyhow::Result<SyncReport> {
    let mut report = SyncReport::default();
    let secret = ctx.store.integration_secret(token).await?.context("the integration has no stored credentials")?;
    let credentials = match ctx.secrets.open(token, &secret) {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(format!("{e}"));
            return Ok(report);
        }
    };
    if let Some(endpoint) = location.endpoint().filter(|e| !ctx.allowed.allows(e)) {
        report.error = Some(format!(
            "the endpoint {} is not allowed on this server any more (--allow-endpoint)",
            endpoint.as_str()
        ));
        return Ok(report);
    }
    let bucket = match bills::connect(location, &credentials) {
        Ok(b) => b,
        Err(e) => {
            report.error = Some(format!("the bucket's settings are not usable: {e}"));
            return Ok(report);
        }
    };
    let manifests = match bills::list_manifests(bucket.as_ref(), location).await {
        Ok(m) => m,
        Err(e) => {
            let cause = e.chain().find_map(|c| c.downcast_ref::<object_store::Error>()).map(bills::describe);
            report.error =
                Some(format!("could not list the export's manifests: {}", cause.unwrap_or_else(|| format!("{e:#}"))));
            return Ok(report);
        }
    };
    if manifests.is_empty() {
        report.error = Some(format!(
            "no manifest found under {:?}: check the bucket, prefix and export name (or wait for the export's first \
             delivery)",
            location.identifier()
        ));
        return Ok(report);
    }
    let loaded: BTreeMap<String, SyncedPeriod> =
        ctx.store.synced_periods(token).await?.into_iter().map(|p| (p.period.clone(), p)).collect();
    let current = Period::of(options.today);
    let recent = [current, current.previous()];

    for (period, found) in &manifests {
        let before = loaded.get(&period.to_string());
        if !(options.backfill || before.is_none() || recent.contains(period)) {
            continue;
        }
        let listed = Listed::of(found);
        // A backfill loads every period again, changed or not (after a fix to the files, or to costd).
        if let Some(b) = before.filter(|_| !options.backfill) {
            if b.manifest_key == listed.key && b.manifest_etag.is_some() && b.manifest_etag == listed.etag {
                report.periods.insert(*period, PeriodOutcome::Unchanged);
                continue;
            }
        }
        progress.period(*period, "reading its manifest");
        let outcome = sync_period(
            ctx,
            &bucket,
            location,
            PeriodLoad {
                account,
                token,
                created_by,
                period: *period,
                found,
                listed,
                before,
                backfill: options.backfill,
            },
            progress,
            &mut report.notes,
        )
        .await?;
        report.periods.insert(*period, outcome);
    }
    Ok(report)
}

/// A period's manifests (one per export) as one identity: the keys, etags and run ids of every export's
/// newest manifest, in export order. With one export, exactly that manifest's, as before exports were told
/// apart, so an upgrade reads nothing again.
struct Listed {
    key: String,
    etag: Option<String>,
}

impl Listed {
    fn of(found: &[ManifestRef]) -> Listed {
        let key = found.iter().map(|m| m.key.as_str()).collect::<Vec<_>>().join("\n");
        let etag = found.iter().map(|m| m.etag.clone()).collect::<Option<Vec<_>>>().map(|e| e.join("\n"));
        Listed { key, etag }
    }
}

/// Which period of which integration is loaded, from which manifests.
struct PeriodLoad<'a> {
    account: &'a AccountToken,
    token: &'a IntegrationToken,
    created_by: &'a str,
    period: Period,
    found: &'a [ManifestRef],
    listed: Listed,
    before: Option<&'a SyncedPeriod>,
    backfill: bool,
}

/// Loads one period from its manifests, unless they are the ones loaded last.
async fn sync_period(
    ctx: &SyncContext,
    bucket: &Arc<dyn object_store::ObjectStore>,
    location: &ExportLocation,
    load: PeriodLoad<'_>,
    progress: &dyn SyncProgress,
    notes: &mut Vec<String>,
) -> anyhow::Result<PeriodOutcome> {
    let PeriodLoad { account, token, created_by, period, found, listed, before, backfill } = load;
    // Every export's manifest, read and parsed; exports that are not cost data are noted and passed over.
    let mut ids = Vec::with_capacity(found.len());
    let mut read: Vec<(&ManifestRef, bills::Manifest)> = Vec::with_capacity(found.len());
    for m in found {
        let bytes = match bills::read_manifest(bucket.as_ref(), &m.key).await {
            Ok(b) => b,
            Err(e) => return Ok(PeriodOutcome::Failed(e.to_string())),
        };
        let manifest = match bills::parse_manifest(location, &m.key, &bytes) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(PeriodOutcome::Failed(e)),
        };
        ids.push(manifest.id.clone());
        match manifest.skipped() {
            Some(why) => notes.push(format!("{period}: {}: {why}", m.key)),
            None => read.push((m, manifest)),
        }
    }
    let manifest_id = ids.join("\n");
    if let Some(b) = before.filter(|b| b.manifest_id == manifest_id && !backfill) {
        // The same refresh under a new etag (copied, touched): remember the etag, read nothing more.
        let same = SyncedPeriod { manifest_key: listed.key.clone(), manifest_etag: listed.etag.clone(), ..b.clone() };
        ctx.store.set_synced_period(token, &same).await?;
        return Ok(PeriodOutcome::Unchanged);
    }
    if read.is_empty() {
        // Nothing of this month is cost data: its last load (if any) stays as it is.
        return Ok(PeriodOutcome::Unchanged);
    }

    let dir = ctx.files.spool().join(format!("sync-{}", hex::encode(rand::random::<[u8; 8]>())));
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let downloads = Downloads(dir);
    let files: Vec<String> = read.iter().flat_map(|(_, m)| m.files.iter().cloned()).collect();
    progress.period(period, &format!("downloading {} file(s)", files.len()));
    let started = std::time::Instant::now();
    let mut sizes = Vec::with_capacity(files.len());
    for (m, manifest) in &read {
        match bills::check_listed(bucket.as_ref(), &manifest.files, m.last_modified).await {
            Ok(s) => sizes.extend(s),
            Err(e @ FetchError::Missing(_)) => {
                return Ok(PeriodOutcome::Failed(format!(
                    "{e}; the period keeps its last data and is retried at the next sync"
                )))
            }
            Err(e @ FetchError::InProgress(_)) => {
                return Ok(PeriodOutcome::Failed(format!("{e}; the period keeps its last data")))
            }
            Err(e) => return Ok(PeriodOutcome::Failed(e.to_string())),
        }
    }
    let (count, total_bytes) = (sizes.len(), sizes.iter().sum::<u64>());
    progress.period(period, &format!("loading {count} file(s), {:.1} MB", total_bytes as f64 / 1e6));
    // The files download one after another while the rows of those already here are read.
    let (downloading, arrivals) = bills::download(bucket.clone(), files, downloads.0.clone());
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _downloading = Abort(downloading);

    let log = Arc::new(Mutex::new(ReadLog::default()));
    let new = NewUpload {
        account: account.clone(),
        integration: token.clone(),
        filename: Some(period_upload_name(period)),
        created_by: created_by.to_string(),
        source: UploadSource::ExportPeriod,
    };
    let ingest_log = log.clone();
    let limits = ReadLimits { max_bytes: ctx.max_bytes };
    let ingest = move |tmp: PathBuf| {
        let mut rows =
            ExportRows::arriving(count, arrivals, ingest_log, limits).map_err(|e| IngestError::Io(e.into()))?;
        ingest_records(&mut rows, &tmp, &mut ())
    };
    let result = upload(ctx.store.as_ref(), &ctx.files, &ctx.loaded, new, ingest).await;
    tracing::info!(%period, ok = result.is_ok(), secs = started.elapsed().as_secs_f64(), "loaded");
    drop(downloads);
    let read_log = log.lock().expect("read log").clone();
    match result {
        Ok(done) => {
            let rows = done.record.rows;
            ctx.store
                .set_synced_period(
                    token,
                    &SyncedPeriod {
                        period: period.to_string(),
                        manifest_key: listed.key,
                        manifest_etag: listed.etag,
                        manifest_id,
                        upload_token: done.record.token.to_string(),
                        rows,
                        synced_at: crate::store::now(),
                    },
                )
                .await?;
            Ok(PeriodOutcome::Loaded { rows, files: count, bytes: total_bytes, upload: done.record.token.to_string() })
        }
        Err(ServiceError::Unprocessable(problems)) => {
            let mut listed: Vec<String> = problems.iter().take(LISTED_PROBLEMS).map(|p| read_log.locate(p)).collect();
            if problems.len() > LISTED_PROBLEMS {
                listed.push(format!("and {} more", problems.len() - LISTED_PROBLEMS));
            }
            Ok(PeriodOutcome::Failed(listed.join("; ")))
        }
        Err(ServiceError::NotFound("integration")) => Ok(PeriodOutcome::Failed("the integration was deleted".into())),
        Err(ServiceError::Internal(e)) => match read_log.failure {
            // The files were wrong (the reader's own failure, naming the file), not costd.
            Some(why) => Ok(PeriodOutcome::Failed(why)),
            None => Err(e),
        },
        // Anything else the upload refuses (a file past the size limit) is the export's, not costd's.
        Err(e) => Ok(PeriodOutcome::Failed(e.to_string())),
    }
}

/// Why a sync of an integration is refused: it has no bucket to read (a custom provider's costs are uploaded),
/// or one is already under way.
pub const NOT_A_BUCKET: &str =
    "only aws and azure integrations sync from a bucket; a custom provider's costs are uploaded";
pub const ALREADY_RUNNING: &str = "a sync of this integration is already running";

/// Records a new bucket integration: its credentials sealed for its token, its location as JSON.
pub async fn create(
    store: &dyn crate::store::Store,
    secrets: &SecretBox,
    account: &AccountToken,
    new: crate::model::bucket_export::NewBucketIntegration,
) -> anyhow::Result<crate::store::Integration> {
    let token = IntegrationToken::generate();
    let row = crate::store::NewBucketIntegrationRow {
        secret: secrets.seal(&token, &new.credentials)?,
        location: serde_json::to_string(&new.location)?,
        provider: new.location.provider().as_str().to_string(),
        name: crate::model::bucket_export::default_name(&new.location),
        account: account.clone(),
        token,
    };
    store.create_bucket_integration(&row).await
}

/// The upload a billing period's rows live in: replaced by the next load of the same period.
pub fn period_upload_name(period: Period) -> String {
    format!("billing-period-{period}")
}

/// Syncs every bucket integration of every account, one after another; one node of a deployment at a time.
pub async fn sync_all(ctx: &SyncContext, options: SyncOptions) -> anyhow::Result<Vec<(IntegrationToken, String)>> {
    let Some(_lock) = ctx.store.try_lock(SYNC_LOCK).await? else {
        tracing::debug!("another node is syncing");
        return Ok(Vec::new());
    };
    clear_stale_downloads(ctx.files.spool());
    let mut done = Vec::new();
    for (account, token) in ctx.store.bucket_integrations().await? {
        let line = match sync_integration(ctx, &account, &token, options, &Quiet).await {
            Ok(report) => report.summary(),
            // A sync of it is under way ("Sync now", another node's `costd sync`): that one loads it.
            Err(ServiceError::Conflict(why)) => format!("skipped: {why}"),
            Err(ServiceError::NotFound("integration")) => continue,
            Err(e) => {
                tracing::warn!(integration = %token, error = format!("{e:#}"), "sync failed");
                format!("failed: {e}")
            }
        };
        done.push((token, line));
    }
    Ok(done)
}

/// Download directories of syncs that died with their process (older than a day: a live sync's are newer).
fn clear_stale_downloads(spool: &Path) {
    let Ok(entries) = std::fs::read_dir(spool) else { return };
    for entry in entries.flatten() {
        let stale = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if entry.file_name().to_string_lossy().starts_with("sync-") && stale.is_some_and(|age| age.as_secs() > 86_400) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The server's sync loop: every `every`, until `stop` resolves.
pub async fn run_loop(ctx: SyncContext, every: Duration, stop: impl std::future::Future<Output = ()>) {
    super::every(every, stop, || async {
        if let Err(e) = sync_all(&ctx, SyncOptions::now(false)).await {
            tracing::warn!(error = format!("{e:#}"), "the sync loop failed; it will try again");
        }
    })
    .await
}
