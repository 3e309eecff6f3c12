//! `costd import`: the upload endpoint's work from the command line, for files of any size, with a
//! progress bar (rows, MB/s) on stderr and a one-line summary on stdout.

use crate::service::ServiceError;
use std::io::Read;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{ImportSettings, StorageSettings, StoreSettings};
use crate::engine::ingest::{ingest_csv, maybe_gunzip, IngestError, Limits, Progress};
use crate::model::token::IntegrationToken;
use crate::service::uploads::{upload, NewUpload};
use crate::store;

/// Shows rows and input throughput while an ingest runs.
struct Bar {
    bar: ProgressBar,
    started: Instant,
}

impl Progress for Bar {
    fn update(&mut self, rows: u64, bytes: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_position(bytes);
        self.bar.set_message(format!("{rows} rows, {:.1} MB/s", bytes as f64 / 1e6 / secs));
    }
}

/// Runs `costd import`.
pub async fn run(
    store_settings: &StoreSettings,
    storage: &StorageSettings,
    settings: &ImportSettings,
) -> anyhow::Result<()> {
    let store = store::connect(store_settings).await?;
    let found = match IntegrationToken::parse(&settings.integration) {
        Some(token) => store.find_integration(&token).await?,
        None => None,
    };
    let Some((integration, account)) = found else {
        bail!("no integration {} in this store", settings.integration);
    };
    let from_stdin = settings.file.as_os_str() == "-";
    let filename = match &settings.filename {
        Some(f) => f.clone(),
        None if from_stdin => "stdin.csv".to_string(),
        None => {
            settings.file.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_else(|| "costs.csv".into())
        }
    };
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if from_stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(&settings.file)
            .with_context(|| format!("failed to open {}", settings.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let compressed = settings.file.extension().is_some_and(|e| e == "gz");

    let bar = if settings.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {msg}")
            .expect("valid progress template"),
    );
    let started = Instant::now();
    let mut progress = Bar { bar: bar.clone(), started };
    let files = storage.open(&store_settings.data_dir)?;
    let new = NewUpload {
        account: account.token.clone(),
        integration: integration.token.clone(),
        filename: Some(filename),
        created_by: account.owner_user_token.clone(),
        source: crate::service::uploads::UploadSource::File,
    };
    let ingest = move |tmp: std::path::PathBuf| {
        let input = maybe_gunzip(input).map_err(|e| IngestError::Io(e.into()))?;
        // The command line is the operator's own: no size limit.
        ingest_csv(input, &tmp, Limits::default(), &mut progress)
    };
    // Nothing in this process judges alerts: `serve`'s next pass finds the account's new data in the store.
    let result = upload(store.as_ref(), &files, &Default::default(), new, ingest).await;
    bar.finish_and_clear();
    let (record, csv_bytes) = match result {
        Ok(done) => (done.record, done.csv_bytes),
        Err(ServiceError::Unprocessable(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            bail!("{} rejected: nothing was imported", settings.file.display());
        }
        Err(ServiceError::NotFound("integration")) => {
            bail!("the integration was deleted during the import: nothing was imported")
        }
        Err(ServiceError::Internal(e)) => return Err(e),
        Err(e) => bail!("{e}"),
    };
    // The operator's import, in the account's audit log as an API upload would be.
    let actor = crate::service::audit::Actor::operator(&account.token);
    let imported = serde_json::json!({
        "token": integration.token.as_str(), "name": integration.name.clone(), "imported_upload_token": record.token.to_string(),
        "imported_rows": record.rows, "imported_amount": record.amount.to_string(),
    });
    let written = crate::service::audit::Written {
        object_type: crate::service::audit::object_type("integrations"),
        object_token: Some(integration.token.to_string()),
        event: crate::model::audit::AuditEvent::Updated,
        before: serde_json::json!({"token": integration.token.as_str(), "name": integration.name.clone()}),
        after: imported,
    };
    crate::service::audit::record(store.as_ref(), &actor, written).await;
    let secs = started.elapsed().as_secs_f64();
    let shown = if compressed { "decompressed " } else { "" };
    let mb = csv_bytes as f64 / 1e6;
    println!(
        "imported {} rows ({mb:.1} MB {shown}CSV) in {secs:.1} s ({:.1} MB/s): {} {}, {} to {}, upload {}",
        record.rows,
        mb / secs.max(1e-3),
        record.amount,
        record.currency,
        record.start_date,
        record.end_date,
        record.token
    );
    Ok(())
}
