//! What each command does. Commands print their results on stdout (secrets once); logs go to stderr.

use anyhow::{bail, Context};

use crate::app::{App, Config};
use crate::bootstrap::{bootstrap_if_empty, mint_token};
use crate::config::{
    AccountCommand, Cli, Command, InvoiceCommand, LinksCommand, ServeSettings, SyncSettings, TokenCommand, UserCommand,
};
use crate::model::token::{secret_hash, AccountToken, Scopes};
use crate::service::audit::{self, Actor, Written};
use crate::store;

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(serve_settings) => serve(&cli, serve_settings).await,
        Command::Sync(settings) => sync(&cli, settings).await,
        Command::Account(AccountCommand::Create { name }) => {
            let store = store::connect(&cli.store()).await?;
            let account = store.create_account(name, None).await?;
            let shown = serde_json::json!({"token": account.token.as_str(), "name": name});
            let written = Written::created("Account", account.token.to_string(), shown);
            audit::record(store.as_ref(), &Actor::operator(&account.token), written).await;
            println!("{}", account.token);
            Ok(())
        }
        Command::Token(TokenCommand::Create { account, scope, description, user }) => {
            let scopes: Scopes = scope.parse().map_err(anyhow::Error::msg)?;
            let store = store::connect(&cli.store()).await?;
            let token =
                AccountToken::parse(account).with_context(|| format!("{account} is not an account token (acct_…)"))?;
            let Some(account) = store.get_account(&token).await? else {
                bail!("no account {account} in this store");
            };
            let token = match user {
                None => mint_token(store.as_ref(), &account, scopes, description).await?,
                Some(user) => {
                    let Some(found) = store.get_user(&account.token, user).await? else {
                        bail!("no user {user} in {}; add one with `costd user add`", account.token);
                    };
                    crate::bootstrap::mint_token_of(store.as_ref(), &account, &found.token, scopes, description).await?
                }
            };
            // Never the secret: the token's id, what it may do and what it is for.
            let shown = serde_json::json!({"token": token.id.clone(), "scopes": scopes.as_str(), "title": description});
            let written = Written::created("ApiToken", token.id.clone(), shown);
            audit::record(store.as_ref(), &Actor::operator(&account.token), written).await;
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
            let store = store::connect(&cli.store()).await?;
            let revoked = match store.revoke_api_token(&secret_hash(secret_or_id)).await? {
                Some(revoked) => Some(revoked),
                None => store.revoke_api_token(secret_or_id).await?,
            };
            let Some(revoked) = revoked else {
                bail!("no live token matches; it may be revoked already");
            };
            let written = Written {
                object_type: "ApiToken".into(),
                object_token: Some(revoked.id.clone()),
                event: crate::model::audit::AuditEvent::Destroyed,
                before: serde_json::json!({"token": revoked.id, "title": revoked.description}),
                after: serde_json::Value::Null,
            };
            audit::record(store.as_ref(), &Actor::operator(&revoked.account), written).await;
            println!("revoked");
            Ok(())
        }
        Command::User(command) => user(&cli, command).await,
        Command::Import(settings) => crate::import::run(&cli.store(), &cli.storage, settings).await,
        Command::Query(settings) => query(&cli, settings).await,
        Command::Invoice(command) => invoice(&cli, command).await,
        Command::Links(LinksCommand::Revoke) => {
            let store = store::connect(&cli.store()).await?;
            store.rotate_server_secret(crate::service::signed::KEY_NAME).await?;
            println!("every download link issued so far is revoked; new links use a new key");
            Ok(())
        }
        Command::Migrate => {
            store::connect(&cli.store()).await?;
            println!("migrations applied");
            Ok(())
        }
    }
}

/// `costd query`: the flags become the same query string `GET /v2/costs` takes, so both check and default
/// alike; the result prints as a table, CSV or JSON.
async fn query(cli: &Cli, settings: &crate::config::QuerySettings) -> anyhow::Result<()> {
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
    let ctx = command_app(cli).await?.state.costs_context();
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
            // One total per currency: several are listed each, never one shown as if it were the whole.
            let each: Vec<serde_json::Value> = result
                .totals
                .iter()
                .map(|(c, t)| serde_json::json!({"amount": round_total(*t), "currency": c}))
                .collect();
            let total = match each.as_slice() {
                [] => serde_json::Value::Null,
                [one] => one.clone(),
                _ => serde_json::Value::Array(each),
            };
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

fn account_arg(text: &str) -> anyhow::Result<AccountToken> {
    AccountToken::parse(text).with_context(|| format!("{text} is not an account token (acct_…)"))
}

/// `costd invoice …`: the invoicing service, as the MSP account named.
async fn user(cli: &Cli, command: &UserCommand) -> anyhow::Result<()> {
    let store = store::connect(&cli.store()).await?;
    let account = match command {
        UserCommand::Add { account, .. } | UserCommand::List { account } => account,
    };
    let token = AccountToken::parse(account).with_context(|| format!("{account} is not an account token (acct_…)"))?;
    if store.get_account(&token).await?.is_none() {
        bail!("no account {account} in this store");
    }
    match command {
        UserCommand::Add { email, name, role, .. } => {
            let user = crate::model::user::NewUser::parse(email, name.as_deref(), role.as_deref())
                .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
            let created = match store.create_user(&token, &user).await {
                Err(e) if store::unique_violation(&e).is_some() => {
                    bail!("{} is already a user of {account}", user.email)
                }
                other => other?,
            };
            let shown = serde_json::json!({"token": created.token.to_string(), "email": created.email.clone(),
                "name": created.name.clone(), "role": created.role.to_string()});
            audit::record(
                store.as_ref(),
                &Actor::operator(&token),
                Written::created("User", created.token.to_string(), shown),
            )
            .await;
            eprintln!("added {} ({}) to {account}", created.email, created.role);
            println!("{}", created.token);
        }
        UserCommand::List { .. } => {
            let all = crate::store::PageRequest { page: 1, limit: u32::MAX / 2 };
            for u in store.list_users(&token, all).await?.items {
                println!("{}\t{}\t{}\t{}", u.token, u.email, u.role, u.name.unwrap_or_default());
            }
        }
    }
    Ok(())
}

async fn invoice(cli: &Cli, command: &InvoiceCommand) -> anyhow::Result<()> {
    let store_settings = &cli.store();
    use crate::model::invoice::invoice_number;
    use crate::render::invoice::money;
    use crate::service::invoices as invoicing;
    let show = |e: crate::service::ServiceError| anyhow::anyhow!("{e}");
    match command {
        InvoiceCommand::Create { account, managed_account, start, end } => {
            let ctx = command_app(cli).await?.state.costs_context();
            let msp = account_arg(account)?;
            eprintln!("computing the invoice of {managed_account} for {start}..{end}");
            let fields = invoicing::InvoiceFields {
                account_token: Some(managed_account.clone()),
                billing_period_start: Some(start.clone()),
                billing_period_end: Some(end.clone()),
            };
            let created = invoicing::create(&ctx, &msp, fields, chrono::Utc::now().date_naive()).await.map_err(show)?;
            let d = &created.document;
            let shown = serde_json::json!({"token": created.token.to_string(), "title": invoice_number(created.number),
                "account_token": managed_account, "billing_period_start": start, "billing_period_end": end,
                "total": d.total.to_string(), "currency": d.currency.clone()});
            let written = Written::created("Invoice", created.token.to_string(), shown);
            audit::record(ctx.store.as_ref(), &Actor::operator(&msp), written).await;
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
            let msp = account_arg(account)?;
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
            let msp = account_arg(account)?;
            let token = crate::model::token::InvoiceToken::parse(invoice)
                .with_context(|| format!("{invoice} is not an invoice token (invc_…)"))?;
            let found = invoicing::get(store.as_ref(), &msp, &token).await.map_err(show)?;
            let (bytes, ext) = match format.as_str() {
                "pdf" => (crate::render::invoice::pdf(&found), "pdf"),
                "csv" => (crate::render::invoice::csv(&found)?, "csv"),
                other => bail!("--format must be pdf or csv, got {other:?}"),
            };
            let path = output.clone().unwrap_or_else(|| format!("{}.{ext}", invoice_number(found.number)).into());
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

/// `costd serve`: build the app, bootstrap an empty store, listen until Ctrl-C or SIGTERM.
async fn serve(cli: &Cli, settings: &ServeSettings) -> anyhow::Result<()> {
    let app = App::build(&config(cli, settings.clone())).await?;
    if let Some(boot) = bootstrap_if_empty(app.state.store.as_ref(), &cli.store().data_dir).await? {
        println!("created account {} with a \"Default\" workspace", boot.account.token);
        println!("bootstrap API token (read,write; also in {}):", boot.token_file.display());
        println!("{}", boot.token.secret);
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("failed to listen on {}", settings.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    app.run(listener, shutdown_signal()).await
}

/// The configuration of a command: the global flags and `serve`'s (its defaults for other commands).
fn config(cli: &Cli, serve: ServeSettings) -> Config {
    Config { store: cli.store(), storage: cli.storage.clone(), integrations: cli.integrations.clone(), serve }
}

/// The app a command other than `serve` works with (no result cache worth keeping: one query per process).
async fn command_app(cli: &Cli) -> anyhow::Result<App> {
    App::build(&config(cli, ServeSettings::defaults())).await
}

/// `costd sync`: syncs one bucket integration or all of them, with progress on stderr and one line per
/// integration on stdout; fails (exit status 1) when any sync left an error.
async fn sync(cli: &Cli, settings: &SyncSettings) -> anyhow::Result<()> {
    use crate::service::sync::{sync_integration, SyncOptions, SyncProgress};
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    struct Bar(ProgressBar);
    impl SyncProgress for Bar {
        fn period(&self, period: crate::model::bucket_export::Period, what: &str) {
            self.0.set_message(format!("{period}: {what}"));
        }
    }

    let ctx = command_app(cli).await?.state.sync_context();
    let store = ctx.store.clone();
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
