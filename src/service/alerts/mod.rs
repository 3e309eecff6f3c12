//! The alerts wing's evaluation and delivery: deciding that an alert fired, and getting its message to every
//! recipient exactly as the outbox promises.
//!
//! - [`budget_alerts`], [`cost_alerts`], [`report_summaries`], [`anomalies`]: one [`Evaluator`] per kind,
//!   each judging an account's alerts of its kind on a day and writing what fired to the outbox;
//! - [`message`]: what a firing says, and how it looks on email, Slack, Teams and signed webhooks;
//! - [`delivery`]: the outbox delivered with retries, fairly across tenants.
//!
//! The CRUD of each kind is its own service (`service::budgets`, `service::cost_alerts`,
//! `service::anomalies`); nothing there imports this module, so there is no cycle.
//!
//! **The pass** ([`run_pass`]), on one node at a time (`Store::try_lock("costd-alerts")`):
//! 1. pick the accounts: those with an upload committed since the previous pass (their data changed), or
//!    every account with alerts on the first pass of a process and of each day (a window can open without
//!    new data);
//! 2. for each account, a few at a time, run every evaluator in [`EVALUATORS`], side by side: one that fails (a report
//!    whose costs are in several currencies, an unreadable definition) is logged by name and the others go on;
//! 3. each firing is written to the outbox once per recipient under its event key (a unique constraint), so
//!    evaluating again (on another node, after a restart, after every upload, a restated bill) never writes
//!    a firing twice; then its event or anomaly is recorded (unique too). A crash between the two only makes
//!    the next pass write the messages again, a no-op;
//! 4. if anything was written, delivery is woken.
//!
//! Services that commit cost data (uploads, bucket syncs) wake the pass through [`DataChanged`]; `costd
//! import` in another process is seen by the next pass of `serve` (every `--alert-interval`), which reads
//! the changed accounts from the store.
//!
//! **When an alert arrives**: within a pass of the data that fires it being committed on this node (seconds),
//! or the next interval's pass when it was committed elsewhere. Anomalies are judged on complete days only:
//! a bill for day D is judged from D+1, and again on every pass whose data changed within
//! [`anomalies::LATE_DAYS`] days after it.

pub mod anomalies;
pub mod budget_alerts;
pub mod cost_alerts;
pub mod delivery;
pub mod message;
pub mod report_summaries;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::token::AccountToken;
use crate::service::costs::CostsContext;
use crate::service::webhooks::WebhookClient;
use crate::service::ServiceError;

pub use delivery::{backoff, deliver_due, SentLog, DELIVERIES_AT_ONCE, DELIVERIES_PER_ACCOUNT, MESSAGES_PER_HOUR};
pub use message::Message;

pub use crate::service::uploads::DataChanged;

/// What evaluation and delivery need, shared by a process.
#[derive(Clone)]
pub struct AlertContext {
    pub costs: CostsContext,
    pub webhooks: WebhookClient,
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// Base of console links in messages (`--public-url`); none: messages carry no link.
    pub public_url: Option<String>,
    /// The first retry waits this long; each next one twice as long, at most an hour.
    pub retry_base: Duration,
    /// Attempts before a message is failed.
    pub max_attempts: i32,
    /// Messages one account may send an hour from this node; more stay pending until the hour allows.
    pub messages_per_hour: usize,
    /// When this node sent each account's recent messages.
    pub sent: SentLog,
    /// Wakes the worker for an evaluation pass (after an upload committed on this node).
    pub evaluate: DataChanged,
    /// Wakes the worker for delivery (after an evaluation wrote messages).
    pub deliver: Arc<tokio::sync::Notify>,
    pub today: Arc<dyn Fn() -> NaiveDate + Send + Sync>,
}

/// A page of the account's alert messages (the outbox, newest first), optionally only one alert's.
pub async fn deliveries(
    store: &dyn crate::store::Store,
    account: &AccountToken,
    alert: Option<&str>,
    page: crate::store::PageRequest,
) -> Result<crate::store::Paged<crate::store::Notification>, crate::service::ServiceError> {
    Ok(store.list_notifications(account, alert, page).await?)
}

/// The secret generic webhooks of `account` are signed with (derived from the deployment's secret, so
/// every tenant has its own and none can sign for another).
pub async fn signing_secret(store: &dyn crate::store::Store, account: &AccountToken) -> anyhow::Result<String> {
    let root = store.server_secret("webhook-signing").await?;
    let mut mac = Hmac::<Sha256>::new_from_slice(root.as_bytes()).expect("HMAC takes any key length");
    mac.update(account.as_bytes());
    Ok(format!("whsec_{}", hex::encode(mac.finalize().into_bytes())))
}

/// One kind of alert, judged for one account on one day.
#[async_trait::async_trait]
pub trait Evaluator: Send + Sync {
    /// What it judges, for logs.
    fn name(&self) -> &'static str;
    /// Writes the messages of the account's alerts of this kind that fire on `today` (and records their
    /// events); answers how many messages were new.
    async fn evaluate(&self, ctx: &AlertContext, account: &AccountToken, today: NaiveDate)
        -> Result<u64, ServiceError>;
}

/// Every kind the pass judges, in order.
pub const EVALUATORS: &[&dyn Evaluator] = &[
    &budget_alerts::BudgetAlertEvaluator,
    &cost_alerts::CostAlertEvaluator,
    &report_summaries::ReportSummaryEvaluator,
    &anomalies::AnomalyEvaluator,
];

/// Runs every evaluator for `account` on `today`; answers how many messages were new.
#[tracing::instrument(skip(ctx), fields(account = %account))]
pub async fn evaluate_account(
    ctx: &AlertContext,
    account: &AccountToken,
    today: NaiveDate,
) -> Result<u64, ServiceError> {
    // The kinds are independent (each writes its own keys), so they are judged side by side: the pass after
    // an upload waits for the slowest kind, not for the sum of them.
    let judged = futures::future::join_all(EVALUATORS.iter().map(|e| e.evaluate(ctx, account, today))).await;
    let mut written = 0;
    for (evaluator, outcome) in EVALUATORS.iter().zip(judged) {
        match outcome {
            Ok(n) => written += n,
            Err(e) => tracing::warn!(kind = evaluator.name(), error = %format!("{e:#}"), "alerts could not be judged"),
        }
    }
    if written > 0 {
        tracing::info!(written, "alerts fired");
        ctx.deliver.notify_one();
    }
    Ok(written)
}

/// Accounts a pass evaluates at once.
const PASS_CONCURRENCY: usize = 4;

/// When the alerts' pass last ran in this process, and on which day.
#[derive(Debug, Default)]
pub struct PassState {
    last: Option<(DateTime<Utc>, NaiveDate)>,
}

/// One evaluation pass (see the module doc); answers the messages written, or `None` when another node
/// holds the pass.
pub async fn run_pass(ctx: &AlertContext, state: &mut PassState) -> anyhow::Result<Option<u64>> {
    let store = ctx.costs.store.as_ref();
    let Some(lock) = store.try_lock("costd-alerts").await? else { return Ok(None) };
    let started = Utc::now();
    let today = (ctx.today)();
    let accounts = match state.last {
        // Uploads commit with their own clock; a minute's margin covers nodes whose clocks differ.
        Some((at, day)) if day == today => {
            store.alert_accounts_changed_since(at - chrono::Duration::seconds(60)).await?
        }
        _ => store.accounts_with_alerts().await?,
    };
    // Accounts are independent (each firing's outbox row is written once whoever writes it), and an
    // account's evaluation mostly waits on store reads: a few at a time keep both the store and the
    // query engine busy.
    use futures::StreamExt;
    let written = futures::stream::iter(accounts)
        .map(|account| async move {
            match evaluate_account(ctx, &account, today).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(account = %account, error = %e, "alerts could not be evaluated");
                    0
                }
            }
        })
        .buffer_unordered(PASS_CONCURRENCY)
        .fold(0u64, |sum, n| async move { sum + n })
        .await;
    state.last = Some((started, today));
    lock.release().await;
    Ok(Some(written))
}

/// The server's alert work until `stop`, in two loops that never wait on each other: evaluation (a pass
/// every `interval` and whenever an upload commits on this node) and delivery (whenever messages were
/// written, whenever one ends, and every second: due messages start while there is room, the accounts in
/// turn, so one account's receivers that never answer cannot hold another's messages back).
pub async fn run(ctx: AlertContext, interval: Duration, stop: impl std::future::Future<Output = ()>) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let evaluation = {
        let ctx = ctx.clone();
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            let mut state = PassState::default();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => return,
                    _ = tick.tick() => {}
                    _ = ctx.evaluate.notified() => {}
                }
                if let Err(e) = run_pass(&ctx, &mut state).await {
                    tracing::warn!(error = %format!("{e:#}"), "the alerts' pass failed");
                }
            }
        })
    };
    let delivery = {
        let mut stop_rx = stop_rx;
        tokio::spawn(async move {
            let mut deliveries = delivery::Deliveries::default();
            let mut poll = tokio::time::interval(Duration::from_secs(1));
            poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let busy = !deliveries.running.is_empty();
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    _ = ctx.deliver.notified() => {}
                    _ = poll.tick() => {}
                    Some(()) = deliveries.one_done(), if busy => {}
                }
                let due = ctx
                    .costs
                    .store
                    .due_notifications(Utc::now().timestamp_millis(), delivery::DUE_PER_ACCOUNT, delivery::DUE_BATCH)
                    .await;
                let started = match due {
                    Ok(due) => deliveries.start(&ctx, &mut delivery::in_turn(due)).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = started {
                    tracing::warn!(error = %format!("{e:#}"), "alert delivery failed");
                }
            }
            // Deliveries under way finish (each within its time-out) before the worker stops.
            while deliveries.one_done().await.is_some() {}
        })
    };
    stop.await;
    let _ = stop_tx.send(true);
    let _ = evaluation.await;
    let _ = delivery.await;
}
