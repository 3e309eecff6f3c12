//! The composition root: [`App::build`] turns the configuration (`costd`'s flags, or a test's) into the one
//! [`AppState`] every handler, command and background worker shares, and [`App::run`] serves it with the
//! background workers running beside the HTTP server and stopped after it. `costd serve`, every CLI command
//! that reads costs, and the integration tests all start here, so what runs in a test is what runs in
//! production; tests change configuration only (and inject a clock or a storage where they need one).

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;

use crate::config::{IntegrationSettings, ServeSettings, StorageSettings};
use crate::http::{self, AppState};
use crate::store::{self, StoreSettings};

/// Everything costd is configured with.
#[derive(Clone)]
pub struct Config {
    pub store: StoreSettings,
    pub storage: StorageSettings,
    pub integrations: IntegrationSettings,
    pub serve: ServeSettings,
}

impl ServeSettings {
    /// The flags' defaults (and any `COSTD_*` variable set): what a command other than `serve` runs with.
    pub fn defaults() -> ServeSettings {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeSettings,
        }
        Defaults::parse_from(["costd"]).serve
    }
}

/// The shared state and the background workers' settings.
pub struct App {
    pub state: AppState,
    file_grace: Duration,
    /// `None`: the worker does not run (its interval flag is 0).
    sync_interval: Option<Duration>,
    alert_interval: Option<Duration>,
}

impl App {
    /// Checks the configuration, opens the store (migrating it) and the upload storage, and assembles the
    /// state. Nothing runs yet.
    pub async fn build(config: &Config) -> anyhow::Result<App> {
        let settings = &config.serve;
        let query_timeout = Duration::from_secs(settings.query_timeout_secs.max(1));
        let file_grace = Duration::from_secs(settings.file_grace_secs);
        if file_grace <= query_timeout {
            bail!(
                "--file-grace-secs ({}) must exceed --query-timeout-secs ({}): a file must outlive every query that \
                 may read it",
                settings.file_grace_secs,
                settings.query_timeout_secs
            );
        }
        let mailer = match &settings.smtp_url {
            Some(url) => Some(std::sync::Arc::new(crate::mail::Mailer::new(url, &settings.smtp_from)?)),
            None => None,
        };
        let data_dir = &config.store.data_dir;
        let allowed_endpoints = config.integrations.allowed()?;
        let secrets = config.integrations.secrets(data_dir)?;
        let files = config.storage.open(data_dir)?;
        let store = store::connect(&config.store).await?;

        let mut state = AppState::new(store, data_dir);
        state.files = files;
        state.auth_cache =
            std::sync::Arc::new(crate::http::auth::AuthCache::new(Duration::from_millis(settings.auth_cache_ttl_ms)));
        state.public_url = settings.public_url.clone();
        state.max_upload_bytes = (settings.max_upload_bytes > 0).then_some(settings.max_upload_bytes);
        state.query_timeout = query_timeout;
        state.mailer = mailer;
        state.download_ttl = Duration::from_secs(settings.download_url_ttl_secs.max(1));
        state.allowed_endpoints = allowed_endpoints;
        state.secrets = secrets;
        state.webhooks = crate::service::webhooks::WebhookClient::new(
            settings.allow_webhook_hosts.clone(),
            crate::http::DEFAULT_WEBHOOK_TIMEOUT,
        );
        state.alert_retry_base = Duration::from_secs(settings.alert_retry_secs.max(1));
        state.exports = crate::service::exports::ExportFiles::beside(
            state.files.storage(),
            data_dir,
            Duration::from_secs(settings.data_export_retention_secs.max(1)),
        );
        let every = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        Ok(App {
            state,
            file_grace,
            sync_interval: every(settings.sync_interval_secs),
            alert_interval: every(settings.alert_interval_secs),
        })
    }

    /// Serves the API on `listener` with the background workers running, until `shutdown` resolves; then
    /// stops the workers and closes the store.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App { state, file_grace, sync_interval, alert_interval } = self;
        let store = state.store.clone();
        tracing::info!(storage = state.files.storage().describe(), "upload files");

        // Uploads committed before discovery existed get their catalog recorded, in the background.
        tokio::spawn({
            let (store, files) = (store.clone(), state.files.clone());
            async move {
                if let Err(e) = crate::service::discovery::backfill(store.as_ref(), &files).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not record the discovery catalog of earlier uploads"
                    );
                }
            }
        });

        // Each worker stops when its channel's sender is dropped or sent to.
        let stopped = |rx: tokio::sync::oneshot::Receiver<()>| async move {
            let _ = rx.await;
        };
        let mut workers = Vec::new();
        let mut stops = Vec::new();
        let mut stop = || {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            stops.push(tx);
            rx
        };
        // The alerts' worker first, so it stops (and finishes its deliveries) before the rest.
        // Budget and cost alerts, anomalies and report notifications: evaluated after uploads and every
        // interval (one node at a time), delivered from the outbox.
        if let Some(interval) = alert_interval {
            workers.push(tokio::spawn(crate::service::alerts::run(state.alert_context(), interval, stopped(stop()))));
        }
        // The janitor removes files of replaced and deleted uploads (and of crashed ingests) once no query
        // can read them: at start-up, then every minute or so.
        workers.push(tokio::spawn(crate::service::files::run(
            store.clone(),
            state.files.clone(),
            file_grace,
            (file_grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)),
            stopped(stop()),
        )));
        // Expired data exports go, file and record; exports a stopped node left pending are failed.
        workers.push(tokio::spawn(crate::service::exports::run_sweeper(store.clone(), state.exports.clone(), stop())));
        // Bucket integrations are synced from their exports, by one node of a deployment at a time.
        if let Some(interval) = sync_interval {
            workers.push(tokio::spawn(crate::service::sync::run_loop(state.sync_context(), interval, stopped(stop()))));
        }

        let served = http::serve(listener, http::app(state), shutdown).await.context("the HTTP server failed");
        for (tx, worker) in stops.into_iter().zip(workers) {
            let _ = tx.send(());
            let _ = worker.await;
        }
        store.close().await;
        tracing::info!("stopped");
        served
    }
}
