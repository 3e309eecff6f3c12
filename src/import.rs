//! `costd import`: the upload endpoint's work from the command line, for files of any size, with a
//! progress bar (rows, MB/s) on stderr and a one-line summary on stdout.

use std::io::Read;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{ImportSettings, StoreSettings};
use crate::engine::ingest::{ingest_csv, maybe_gunzip, parse::format_amount, IngestError, Progress};
use crate::engine::uploads::{remove_upload_files, upload_path, uploads_dir};
use crate::model::token::{new_token, prefix};
use crate::store::{self, Upload, UploadCommit};

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
pub async fn run(store_settings: &StoreSettings, settings: &ImportSettings) -> anyhow::Result<()> {
    let store = store::connect(store_settings).await?;
    let Some((integration, account)) = store.find_integration(&settings.integration).await? else {
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
    let dir = uploads_dir(&store_settings.data_dir);
    let started = Instant::now();
    let mut progress = Bar { bar: bar.clone(), started };
    let result = tokio::task::spawn_blocking(move || {
        let input = maybe_gunzip(input).map_err(|e| IngestError::Io(e.into()))?;
        ingest_csv(input, &dir, &mut progress)
    })
    .await
    .context("the import task failed")?;
    bar.finish_and_clear();
    let pending = match result {
        Ok(p) => p,
        Err(IngestError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            bail!("{} rejected: nothing was imported", settings.file.display());
        }
        Err(IngestError::Io(e)) => return Err(e),
    };

    let s = pending.summary.clone();
    let record = Upload {
        token: new_token(prefix::COSTS_UPLOAD),
        integration_token: integration.token.clone(),
        filename,
        amount: format_amount(s.amount),
        currency: s.currency.clone(),
        rows: i64::try_from(s.rows).unwrap_or(i64::MAX),
        start_date: s.start_date,
        end_date: s.end_date,
        import_status: "complete".into(),
        created_by_token: account.owner_user_token.clone(),
        created_at: store::now(),
    };
    pending.persist(&upload_path(&store_settings.data_dir, &record.token))?;
    match store.commit_upload(&account.token, &record).await {
        Ok(UploadCommit::Committed { replaced }) => remove_upload_files(&store_settings.data_dir, &replaced),
        Ok(UploadCommit::IntegrationGone) => {
            remove_upload_files(&store_settings.data_dir, &[record.token]);
            bail!("the integration was deleted during the import: nothing was imported");
        }
        Err(e) => {
            remove_upload_files(&store_settings.data_dir, &[record.token]);
            return Err(e);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let shown = if compressed { "decompressed " } else { "" };
    println!(
        "imported {} rows ({:.1} MB {shown}CSV) in {secs:.1} s ({:.1} MB/s): {} {}, {} to {}, upload {}",
        s.rows,
        s.bytes as f64 / 1e6,
        s.bytes as f64 / 1e6 / secs.max(1e-3),
        record.amount,
        record.currency,
        record.start_date,
        record.end_date,
        record.token
    );
    Ok(())
}
