//! Data exports: `POST /v2/costs/data_exports` queues the costs query (and `POST /v2/unit_costs/data_exports`
//! a report's unit costs, [`ExportJob`]) and answers at once; the query runs in the background on the query
//! runtime and streams its result into `<data dir>/exports/<token>.csv.tmp`, which then becomes `<token>.csv`
//! in the exports storage (beside the uploads: the data dir's `exports`, or `<prefix>/exports` in the
//! bucket) before the export is marked completed. The file is served with the
//! caller's token until `valid_until` (the retention after completion), when the sweep removes the file and
//! the record.
//!
//! An export runs on the node that queued it; with a shared bucket, any node serves its file. Its file intent
//! (`service::files`) is recorded before its row and renewed while it runs, so a pending export whose
//! intent's lease ran out belongs to a node that stopped: the sweep fails it, and its file (if the node got
//! that far) goes with the failed export at the end of its retention. Nothing but that expiry removes an
//! export's file, so a file is never taken from an export that is still running or completed.

use crate::service::ServiceError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tracing::Instrument;

use crate::engine::storage::Storage;

use crate::model::cost_query::CostQuery;
use crate::model::token::{new_token, AccountToken};
use crate::service::costs::{export, CostsContext};
use crate::service::files::{begin_intent, now_ms, with_lease};
use crate::service::unit_costs::UnitCostQuery;
use crate::store::{DataExport, FileIntent, Store};

/// Vantage's data export token prefix.
pub const PREFIX: &str = "dta_xprt_";
/// Exports one account may have pending at once (on every node together): each is a full costs query
/// running in the background, so a read token cannot queue an unbounded number of them.
pub const MAX_PENDING_PER_ACCOUNT: i64 = 3;

/// How long a completed (or failed) export is kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Where exports are written.
#[derive(Debug, Clone)]
pub struct ExportFiles {
    /// Where finished exports live.
    storage: Storage,
    /// The local directory an export is written in before it moves to `storage`.
    spool: PathBuf,
    pub retention: Duration,
}

impl ExportFiles {
    /// Exports in the data dir's `exports` directory.
    pub fn new(data_dir: &Path, retention: Duration) -> ExportFiles {
        let dir = data_dir.join("exports");
        ExportFiles { storage: Storage::Local { dir: dir.clone() }, spool: dir, retention }
    }

    /// Exports beside the upload files of `uploads` (in the same bucket when they are in one).
    pub fn beside(uploads: &Storage, data_dir: &Path, retention: Duration) -> ExportFiles {
        ExportFiles { storage: uploads.sibling("exports"), spool: data_dir.join("exports"), retention }
    }

    /// The local directory exports are written in before they are stored.
    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// The finished CSV of export `token` (a checked token: no path separators), streamed; `None` when it
    /// is gone.
    pub async fn open(&self, token: &str) -> anyhow::Result<Option<crate::engine::storage::ByteStream>> {
        self.storage.read_named(&file_name(token)).await
    }

    fn valid_until(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::days(1))
    }
}

fn file_name(token: &str) -> String {
    format!("{token}.csv")
}

/// Whether `text` can be an export token (so it is safe in a file name).
pub fn is_token(text: &str) -> bool {
    text.strip_prefix(PREFIX).is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The account's export `token` (any text: what is not an export token is not found).
pub async fn get(store: &dyn Store, account: &AccountToken, token: &str) -> Result<DataExport, ServiceError> {
    if !is_token(token) {
        return Err(ServiceError::NotFound("data export"));
    }
    store.get_data_export(account, token).await?.ok_or(ServiceError::NotFound("data export"))
}

/// What an export writes.
#[derive(Debug, Clone)]
pub enum ExportJob {
    /// The costs query as `GET /v2/costs` groups it (`costs.csv`).
    Costs { workspace: Option<String>, query: CostQuery },
    /// A report's unit costs as `GET /v2/unit_costs` lists them, oldest first (`unit_costs.csv`).
    UnitCosts { query: UnitCostQuery, today: chrono::NaiveDate },
}

impl ExportJob {
    /// Vantage's `export_type` of an export: `attributes.export_type` as [`start`] records it.
    pub fn export_type(&self) -> &'static str {
        match self {
            ExportJob::Costs { .. } => "cost_report",
            ExportJob::UnitCosts { .. } => "unit_costs",
        }
    }
}

/// The `export_type` an export recorded (exports from before unit costs recorded none: costs).
pub fn export_type(export: &DataExport) -> String {
    serde_json::from_str::<serde_json::Value>(&export.attributes)
        .ok()
        .and_then(|a| a.get("export_type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "cost_report".to_string())
}

/// The name of an export's one file, as its links name it.
pub fn file_of(export_type: &str) -> &'static str {
    match export_type {
        "unit_costs" => "unit_costs.csv",
        _ => "costs.csv",
    }
}

/// Queues `job` as `account` sees it and starts it in the background; `attributes` are recorded with the
/// job's `export_type`.
pub async fn start(
    ctx: CostsContext,
    files: ExportFiles,
    account: AccountToken,
    job: ExportJob,
    mut attributes: serde_json::Value,
) -> Result<DataExport, ServiceError> {
    if let Some(map) = attributes.as_object_mut() {
        map.insert("export_type".into(), job.export_type().into());
    }
    let token = new_token(PREFIX);
    // The intent first: a pending export without a live intent is one whose node stopped.
    begin_intent(ctx.store.as_ref(), &ctx.files, &token, FileIntent::EXPORT).await?;
    let created =
        ctx.store.create_data_export(&account, &token, &attributes.to_string(), MAX_PENDING_PER_ACCOUNT).await;
    let created = match created {
        Ok(Some(created)) => created,
        refused => {
            let _ = ctx.store.end_file_intent(&token).await;
            return Err(match refused {
                Ok(_) => ServiceError::TooMany(format!(
                    "the account already has {MAX_PENDING_PER_ACCOUNT} data exports running; wait for one to finish"
                )),
                Err(e) => ServiceError::Internal(e),
            });
        }
    };
    let span = tracing::info_span!("data export", export = %token, account = %account);
    tokio::spawn(
        async move {
            let store = ctx.store.clone();
            let uploads = ctx.files.clone();
            let work = run(&ctx, &files, &token, &account, &job);
            with_lease(store.as_ref(), &uploads, &token, work).await;
            if let Err(e) = store.end_file_intent(&token).await {
                // Its lease ends on its own; the export is already finished.
                tracing::warn!(error = format!("{e:#}"), "could not end a data export's intent");
            }
        }
        .instrument(span),
    );
    Ok(created)
}

async fn run(ctx: &CostsContext, files: &ExportFiles, token: &str, account: &AccountToken, job: &ExportJob) {
    let tmp = files.spool.join(format!("{token}.csv.tmp"));
    let outcome = async {
        tokio::fs::create_dir_all(&files.spool).await.map_err(|e| ServiceError::Internal(e.into()))?;
        let rows = match job {
            ExportJob::Costs { workspace, query } => {
                export(ctx, account, workspace.as_deref(), query, tmp.clone()).await?
            }
            ExportJob::UnitCosts { query, today } => {
                let all = crate::service::unit_costs::unit_costs(ctx, account, query, *today).await?;
                write_unit_costs(&all, &tmp)?
            }
        };
        files.storage.put_file(&tmp, &file_name(token)).await?;
        Ok::<u64, ServiceError>(rows)
    }
    .await;
    let result = match outcome {
        Ok(rows) => {
            tracing::info!(export = token, rows, "data export completed");
            ctx.store.finish_data_export(token, Ok(i64::try_from(rows).unwrap_or(i64::MAX)), files.valid_until()).await
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            let reason = match &e {
                ServiceError::Internal(cause) => {
                    tracing::error!(export = token, error = format!("{cause:#}"), "data export failed");
                    "internal error; the export was not written".to_string()
                }
                other => other.to_string(),
            };
            ctx.store.finish_data_export(token, Err(&reason), files.valid_until()).await
        }
    };
    if let Err(e) = result {
        tracing::error!(export = token, error = format!("{e:#}"), "could not record the end of a data export");
    }
}

/// Writes unit costs as CSV to `path` (the fields of `GET /v2/unit_costs`; titles made safe as spreadsheet
/// cells); answers the rows written.
fn write_unit_costs(all: &[crate::service::unit_costs::UnitCost], path: &Path) -> Result<u64, ServiceError> {
    use crate::model::spreadsheet::text_cell;
    let failed = |e: csv::Error| ServiceError::Internal(anyhow::Error::new(e).context("failed to write the export"));
    let mut w = csv::Writer::from_path(path).map_err(failed)?;
    w.write_record([
        "date",
        "business_metric_token",
        "business_metric_title",
        "calculation_type",
        "unit_cost_amount",
        "business_metric_amount",
        "scale",
        "currency",
    ])
    .map_err(failed)?;
    for u in all {
        w.write_record([
            u.date.to_string().as_str(),
            u.metric.token.as_str(),
            &text_cell(&u.metric.title),
            u.attachment.calculation_type.as_str(),
            &u.unit_cost.to_string(),
            &crate::model::decimal::to_wire(u.metric_amount),
            &u.attachment.unit_scale.factor().to_string(),
            &u.currency,
        ])
        .map_err(failed)?;
    }
    let file =
        w.into_inner().map_err(|e| ServiceError::Internal(anyhow::anyhow!("failed to write the export: {e}")))?;
    file.sync_all().map_err(|e| ServiceError::Internal(anyhow::Error::new(e).context("failed to sync the export")))?;
    Ok(all.len() as u64)
}

/// Removes exports past their retention, file first. Answers how many went.
pub async fn sweep(store: &dyn Store, files: &ExportFiles) -> anyhow::Result<usize> {
    let expired = store.expired_data_exports(chrono::Utc::now()).await?;
    for token in &expired {
        if is_token(token) {
            files.storage.remove_named(&file_name(token)).await.context("failed to remove an expired export")?;
        }
        store.delete_data_export(token).await?;
    }
    Ok(expired.len())
}

/// Every minute until `stop`: exports left pending by a node that stopped (their intent's lease ran out)
/// are failed, so nobody polls them forever, and exports past their retention are removed.
pub async fn run_sweeper(
    store: crate::store::DynStore,
    files: ExportFiles,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        // A minute's margin for the clocks of other nodes.
        let started_before = chrono::Utc::now() - chrono::Duration::minutes(1);
        match store.fail_stale_data_exports(started_before, now_ms(), files.valid_until()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(exports = n, "failed data exports a stopped node left pending"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not fail stale data exports"),
        }
        if let Err(e) = sweep(store.as_ref(), &files).await {
            tracing::warn!(error = format!("{e:#}"), "the data export sweep failed; it runs again in a minute");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = &mut stop => return,
        }
    }
}
