//! What each command does. Commands print their results on stdout (secrets once); logs go to stderr.

use anyhow::{bail, Context};

use crate::bootstrap::{bootstrap_if_empty, mint_token};
use crate::config::{
    AccountCommand, Cli, Command, IntegrationSettings, InvoiceCommand, LinksCommand, ServeSettings, StorageSettings,
    StoreSettings, SyncSettings, TokenCommand,
};
use crate::http::{self, AppState};
use crate::model::token::{secret_hash, AccountToken, Scopes};
use crate::store;

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(serve_settings) => serve(&cli.store, &cli.storage, &cli.integrations, &serve_settings).await,
        Command::Sync(settings) => sync(&cli.store, &cli.storage, &cli.integrations, &settings).await,
        Command::Account(AccountCommand::Create { name }) => {
            let store = store::connect(&cli.store).await?;
            let account = store.create_account(&name, None).await?;
            println!("{}", account.token);
            Ok(())
        }
        Command::Token(TokenCommand::Create { account, scope, description }) => {
            let scopes: Scopes = scope.parse().map_err(anyhow::Error::msg)?;
            let store = store::connect(&cli.store).await?;
            let token =
                AccountToken::parse(&account).with_context(|| format!("{account} is not an account token (acct_…)"))?;
            let Some(account) = store.get_account(&token).await? else {
                bail!("no account {account} in this store");
            };
            let token = mint_token(store.as_ref(), &account, scopes, &description).await?;
            eprintln!(
                "created token {} ({}) for {}; the secret is shown only once:",
                token.id,
                scopes.as_str(),
                account.token
            );
            println!("{}", token.secret);
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { secret_or_id }) => {
            let store = store::connect(&cli.store).await?;
            let revoked = store.revoke_api_token(&secret_hash(&secret_or_id)).await?
                || store.revoke_api_token(&secret_or_id).await?;
            if !revoked {
                bail!("no live token matches; it may be revoked already");
            }
            println!("revoked");
            Ok(())
        }
        Command::Import(settings) => crate::import::run(&cli.store, &cli.storage, &settings).await,
        Command::Query(settings) => query(&cli.store, &cli.storage, &settings).await,
        Command::Invoice(command) => invoice(&cli.store, &cli.storage, command).await,
        Command::Links(LinksCommand::Revoke) => {
            let store = store::connect(&cli.store).await?;
            store.rotate_server_secret(crate::service::signed::KEY_NAME).await?;
            println!("every download link issued so far is revoked; new links use a new key");
            Ok(())
        }
        Command::Migrate => {
            store::connect(&cli.store).await?;
            println!("migrations applied");
            Ok(())
        }
    }
}

/// `costd query`: the flags become the same query string `GET /v2/costs` takes, so both check and default
/// alike; the result prints as a table, CSV or JSON.
async fn query(
    store_settings: &StoreSettings,
    storage: &StorageSettings,
    settings: &crate::config::QuerySettings,
) -> anyhow::Result<()> {
    use crate::model::cost_query::round_total;

    let format = settings.format.as_str();
    if !["table", "csv", "json"].contains(&format) {
        bail!("--format must be table, csv or json");
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("filter", &settings.filter),
        ("groupings", &settings.groupings),
        ("date_bin", &settings.date_bin),
        ("start_date", &settings.start_date),
        ("end_date", &settings.end_date),
        ("order", &settings.order),
    ] {
        if let Some(v) = value {
            q.append_pair(key, v);
        }
    }
    if settings.include_credits {
        q.append_pair("settings[include_credits]", "true");
    }
    if settings.billed {
        q.append_pair("settings[amortize]", "false");
    }
    let params = crate::model::cost_query::parse_params(&q.finish()).map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let ctx = costs_context(store_settings, storage).await?;
    let account = AccountToken::parse(&settings.account)
        .with_context(|| format!("{} is not an account token (acct_…)", settings.account))?;
    let answer = crate::service::costs::costs(&ctx, &account, settings.workspace.as_deref(), &params.query)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let result = answer.result;

    let groupings = &params.query.groupings;
    let mut header: Vec<String> = vec!["accrued_at".into()];
    header.extend(groupings.iter().map(|g| g.to_string()));
    header.extend(["amount".to_string(), "currency".to_string()]);
    let rows: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|r| {
            let mut row = vec![r.accrued_at.to_string()];
            row.extend(r.dimensions.iter().map(|(_, v)| v.clone().unwrap_or_default()));
            row.extend([r.amount.to_string(), r.currency.clone()]);
            row
        })
        .collect();
    let totals: Vec<String> = result.totals.iter().map(|(c, t)| format!("{} {c}", round_total(*t))).collect();
    match format {
        "csv" => {
            let mut w = crate::engine::costs::CostRowsCsv::new(std::io::stdout().lock(), &params.query, "accrued_at")?;
            for row in result.rows.iter().cloned() {
                w.write(row)?;
            }
            drop(w.finish()?);
        }
        "json" => {
            let costs: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        header.iter().cloned().zip(row.iter().cloned().map(serde_json::Value::String)).collect(),
                    )
                })
                .collect();
            let total =
                result.totals.first().map(|(c, t)| serde_json::json!({"amount": round_total(*t), "currency": c}));
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"total_cost": total, "costs": costs}))?);
        }
        _ => {
            let widths: Vec<usize> = (0..header.len())
                .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
                .collect();
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            println!("{}", line(&header));
            for row in &rows {
                println!("{}", line(row));
            }
            println!("total: {}", if totals.is_empty() { "0.0".to_string() } else { totals.join(", ") });
        }
    }
    Ok(())
}

/// The costs service for a command (no result cache: one query per process).
async fn costs_context(
    store_settings: &StoreSettings,
    storage: &StorageSettings,
) -> anyhow::Result<crate::service::costs::CostsContext> {
    Ok(crate::service::costs::CostsContext {
        store: store::connect(store_settings).await?,
        files: storage.open(&store_settings.data_dir)?,
        cache: Default::default(),
        timeout: crate::http::DEFAULT_QUERY_TIMEOUT,
        slots: Default::default(),
    })
}

fn account_arg(text: &str) -> anyhow::Result<AccountToken> {
    AccountToken::parse(text).with_context(|| format!("{text} is not an account token (acct_…)"))
}

/// `costd invoice …`: the invoicing service, as the MSP account named.
async fn invoice(
    store_settings: &StoreSettings,
    storage: &StorageSettings,
    command: InvoiceCommand,
) -> anyhow::Result<()> {
    use crate::model::invoice::invoice_number;
    use crate::render::invoice::money;
    use crate::service::invoices as invoicing;
    let show = |e: invoicing::InvoiceError| anyhow::anyhow!("{e}");
    match command {
        InvoiceCommand::Create { account, managed_account, start, end } => {
            let ctx = costs_context(store_settings, storage).await?;
            let msp = account_arg(&account)?;
            eprintln!("computing the invoice of {managed_account} for {start}..{end}");
            let fields = invoicing::InvoiceFields {
                account_token: Some(managed_account),
                billing_period_start: Some(start),
                billing_period_end: Some(end),
            };
            let created = invoicing::create(&ctx, &msp, fields, chrono::Utc::now().date_naive()).await.map_err(show)?;
            let d = &created.document;
            println!(
                "{} {} {} {} ({} lines, due {})",
                invoice_number(created.number),
                created.token,
                d.currency,
                money(d.total),
                d.lines.len(),
                d.due_on
            );
        }
        InvoiceCommand::List { account, managed_account } => {
            let store = store::connect(store_settings).await?;
            let msp = account_arg(&account)?;
            let mut page = 1;
            println!("number\ttoken\taccount\tperiod\tstatus\ttotal");
            loop {
                let request = store::PageRequest { page, limit: 1000 };
                let found =
                    invoicing::list(store.as_ref(), &msp, managed_account.as_deref(), request).await.map_err(show)?;
                for i in &found.items {
                    println!(
                        "{}\t{}\t{}\t{}..{}\t{}\t{} {}",
                        invoice_number(i.number),
                        i.token,
                        i.account_token,
                        i.period.start,
                        i.period.end,
                        i.status.as_str(),
                        i.document.currency,
                        money(i.document.total)
                    );
                }
                if found.items.len() < 1000 {
                    break;
                }
                page += 1;
            }
        }
        InvoiceCommand::Download { account, invoice, format, output } => {
            let store = store::connect(store_settings).await?;
            let msp = account_arg(&account)?;
            let token = crate::model::token::InvoiceToken::parse(&invoice)
                .with_context(|| format!("{invoice} is not an invoice token (invc_…)"))?;
            let found = invoicing::get(store.as_ref(), &msp, &token).await.map_err(show)?;
            let (bytes, ext) = match format.as_str() {
                "pdf" => (crate::render::invoice::pdf(&found), "pdf"),
                "csv" => (crate::render::invoice::csv(&found)?, "csv"),
                other => bail!("--format must be pdf or csv, got {other:?}"),
            };
            let path = output.unwrap_or_else(|| format!("{}.{ext}", invoice_number(found.number)).into());
            if path.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout().write_all(&bytes)?;
            } else {
                std::fs::write(&path, &bytes).with_context(|| format!("failed to write {}", path.display()))?;
                eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
        }
    }
    Ok(())
}

/// `costd serve`: open the store, bootstrap an empty one, listen until Ctrl-C or SIGTERM.
async fn serve(
    store_settings: &StoreSettings,
    storage: &StorageSettings,
    integrations: &IntegrationSettings,
    settings: &ServeSettings,
) -> anyhow::Result<()> {
    use std::time::Duration;
    let query_timeout = Duration::from_secs(settings.query_timeout_secs.max(1));
    let grace = Duration::from_secs(settings.file_grace_secs);
    if grace <= query_timeout {
        bail!(
            "--file-grace-secs ({}) must exceed --query-timeout-secs ({}): a file must outlive every query that may \
             read it",
            settings.file_grace_secs,
            settings.query_timeout_secs
        );
    }
    let mailer = match &settings.smtp_url {
        Some(url) => Some(std::sync::Arc::new(crate::mail::Mailer::new(url, &settings.smtp_from)?)),
        None => None,
    };
    let allowed_endpoints = integrations.allowed()?;
    let secrets = integrations.secrets(&store_settings.data_dir)?;
    let files = storage.open(&store_settings.data_dir)?;
    let store = store::connect(store_settings).await?;
    if let Some(boot) = bootstrap_if_empty(store.as_ref(), &store_settings.data_dir).await? {
        println!("created account {} with a \"Default\" workspace", boot.account.token);
        println!("bootstrap API token (read,write; also in {}):", boot.token_file.display());
        println!("{}", boot.token.secret);
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("failed to listen on {}", settings.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut state = AppState::new(store.clone(), &store_settings.data_dir);
    tracing::info!(storage = files.storage().describe(), "upload files");
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
        &store_settings.data_dir,
        Duration::from_secs(settings.data_export_retention_secs.max(1)),
    );

    // Uploads committed before discovery existed get their catalog recorded, in the background.
    tokio::spawn({
        let (store, files) = (store.clone(), state.files.clone());
        async move {
            if let Err(e) = crate::service::discovery::backfill(store.as_ref(), &files).await {
                tracing::warn!(error = format!("{e:#}"), "could not record the discovery catalog of earlier uploads");
            }
        }
    });

    // The janitor removes files of replaced and deleted uploads (and of crashed ingests) once no query can
    // read them: at start-up, then every minute or so.
    let (stop_janitor, janitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let janitor = tokio::spawn(crate::service::files::run(
        store.clone(),
        state.files.clone(),
        grace,
        (grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)),
        async {
            let _ = janitor_stopped.await;
        },
    ));
    // Expired data exports go, file and record; exports a stopped node left pending are failed.
    let (stop_sweeper, sweeper_stopped) = tokio::sync::oneshot::channel::<()>();
    let sweeper =
        tokio::spawn(crate::service::exports::run_sweeper(store.clone(), state.exports.clone(), sweeper_stopped));
    // Bucket integrations are synced from their exports, by one node of a deployment at a time.
    let (stop_sync, sync_stopped) = tokio::sync::oneshot::channel::<()>();
    let syncer = (settings.sync_interval_secs > 0).then(|| {
        tokio::spawn(crate::service::sync::run_loop(
            state.sync_context(),
            Duration::from_secs(settings.sync_interval_secs),
            async {
                let _ = sync_stopped.await;
            },
        ))
    });
    // Budget alerts: evaluated after uploads and every interval (one node at a time), delivered from the outbox.
    let (stop_alerts, alerts_stopped) = tokio::sync::oneshot::channel::<()>();
    let alerts = (settings.alert_interval_secs > 0).then(|| {
        tokio::spawn(crate::service::alerts::run(
            state.alert_context(),
            Duration::from_secs(settings.alert_interval_secs),
            async {
                let _ = alerts_stopped.await;
            },
        ))
    });
    http::serve(listener, http::app(state), shutdown_signal()).await.context("the HTTP server failed")?;
    let _ = stop_alerts.send(());
    if let Some(alerts) = alerts {
        let _ = alerts.await;
    }
    let _ = stop_janitor.send(());
    let _ = stop_sweeper.send(());
    let _ = stop_sync.send(());
    let _ = janitor.await;
    let _ = sweeper.await;
    if let Some(syncer) = syncer {
        let _ = syncer.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `costd sync`: syncs one bucket integration or all of them, with progress on stderr and one line per
/// integration on stdout; fails (exit status 1) when any sync left an error.
async fn sync(
    store_settings: &StoreSettings,
    storage: &StorageSettings,
    integrations: &IntegrationSettings,
    settings: &SyncSettings,
) -> anyhow::Result<()> {
    use crate::service::sync::{sync_integration, SyncContext, SyncOptions, SyncProgress};
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    struct Bar(ProgressBar);
    impl SyncProgress for Bar {
        fn period(&self, period: crate::model::bucket_export::Period, what: &str) {
            self.0.set_message(format!("{period}: {what}"));
        }
    }

    let store = store::connect(store_settings).await?;
    let ctx = SyncContext::new(
        store.clone(),
        storage.open(&store_settings.data_dir)?,
        integrations.secrets(&store_settings.data_dir)?,
        integrations.allowed()?,
    );
    let targets = match &settings.integration {
        Some(text) => {
            let token = crate::model::token::IntegrationToken::parse(text)
                .with_context(|| format!("{text} is not an integration token (intgr_…)"))?;
            let Some((_, account)) = store.find_integration(&token).await? else {
                bail!("no integration {text} in this store");
            };
            vec![(account.token, token)]
        }
        None => store.bucket_integrations().await?,
    };
    if targets.is_empty() {
        println!("no bucket integrations to sync");
        return Ok(());
    }
    let mut failed = 0;
    for (account, token) in targets {
        let bar = if settings.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix} {msg}")
                .expect("valid progress template"),
        );
        bar.set_prefix(token.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        let progress = Bar(bar.clone());
        let result = sync_integration(&ctx, &account, &token, SyncOptions::now(settings.backfill), &progress).await;
        bar.finish_and_clear();
        match result {
            Ok(report) => {
                println!("{token}: {}", report.summary());
                for (period, outcome) in &report.periods {
                    if let crate::service::sync::PeriodOutcome::Loaded { rows, files, bytes, .. } = outcome {
                        println!(
                            "  {period}: replaced with {rows} rows from {files} file(s), {:.1} MB",
                            *bytes as f64 / 1e6
                        );
                    }
                }
                for e in report.errors() {
                    failed += 1;
                    eprintln!("  error: {e}");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{token}: {e:#}");
            }
        }
    }
    store.close().await;
    if failed > 0 {
        bail!("{failed} sync error(s); each period that failed keeps its last good data");
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
