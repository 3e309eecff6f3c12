//! Budget alerts (and, through `service::cost_alerts`, cost alerts and report notifications): deciding that one fired, and getting its message to every recipient exactly as the
//! outbox promises.
//!
//! **Evaluation** (`evaluate_account`): for each of an account's budget alerts and each budget it watches,
//! the budget's period holding today and its actual so far (`service::budgets::performance`, the costs
//! query through the result cache), plus, for a `based_on: forecast` alert, the report's forecast of the
//! period's days still to come (`service::budgets::forecast_rest`); if `BudgetAlertDefinition::fires`, one
//! message per recipient (its channels and its users' addresses, `service::users`) is written to the outbox
//! under the event key `budget_alert:<alert>:<budget>:<period start>:<threshold>[:forecast]`.
//! The store writes a key and recipient once (a unique constraint), so evaluating again — on another
//! node, after a restart, after every upload — never writes a firing twice. The pass (`run_pass`) runs on one
//! node at a time (`Store::try_lock("costd-alerts")`): the accounts with an upload committed since the
//! previous pass (their data changed), and every account with alerts once a day (a window can open without
//! new data), and the first pass of a process.
//!
//! **Delivery** (`deliver_due`): due messages are claimed one by one by a conditional update that moves
//! their due time past a lease, so two workers never send the same attempt; the outcome is recorded
//! (delivered; or the error and the next attempt after an exponential backoff; or failed after the last
//! attempt). A message is written before it is sent and marked delivered after, so a crash in between sends
//! it again once its lease ends: delivery is at least once, and each generic webhook call carries the
//! message's token (`X-Costd-Delivery`) for a receiver to drop a repeat. A refused URL (private address) is
//! failed at once: waiting will not change it.
//!
//! **Channels**: an email address gets a plain-text email through `--smtp-url`; a Slack incoming webhook
//! (`hooks.slack.com`) gets Slack's `{"text"}`; a Teams incoming webhook (`*.webhook.office.com`,
//! `*.logic.azure.com`) a MessageCard; any other URL costd's JSON, signed with the account's signing
//! secret (`X-Costd-Signature: t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>`, see `service::webhooks`).

use crate::service::ServiceError;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::amount::Amount;
use crate::model::budget::{BasedOn, Recipient};
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::service::budgets;
use crate::service::costs::CostsContext;
use crate::service::webhooks::{signature, WebhookClient, WebhookError};
use crate::store::{DeliveryOutcome, NewNotification, Notification};

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
    pub evaluate: Arc<tokio::sync::Notify>,
    /// Wakes the worker for delivery (after an evaluation wrote messages).
    pub deliver: Arc<tokio::sync::Notify>,
    pub today: Arc<dyn Fn() -> NaiveDate + Send + Sync>,
}

/// A message as the outbox keeps it, rendered per channel when it is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `budget_alert`.
    pub event: String,
    pub subject: String,
    pub text: String,
    pub link: Option<String>,
    /// The numbers behind it, as strings (amounts exact).
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Message {
    /// The message for each of `recipients` of one firing (`event_key`) of `source`, for the outbox.
    pub fn to_each(
        &self,
        account: &AccountToken,
        source: &str,
        event_key: &str,
        recipients: impl IntoIterator<Item = String>,
    ) -> Vec<NewNotification> {
        let body = serde_json::to_string(self).expect("plain data serialises");
        recipients
            .into_iter()
            .map(|recipient| NewNotification {
                account: account.clone(),
                source_token: source.to_string(),
                event_key: event_key.to_string(),
                recipient,
                message: body.clone(),
            })
            .collect()
    }
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

fn money(amount: crate::model::amount::Amount, currency: &str) -> String {
    format!("{} {currency}", amount.rounded(2))
}

/// Writes the messages of every budget alert of `account` that fires on `today`; answers how many were new.
#[tracing::instrument(skip(ctx), fields(account = %account))]
pub async fn evaluate_account(
    ctx: &AlertContext,
    account: &AccountToken,
    today: NaiveDate,
) -> Result<u64, ServiceError> {
    let costs = &ctx.costs;
    let url = ctx.public_url.as_deref();
    // Each kind is judged on its own, and each alert within it: one that cannot be judged (a report whose
    // costs are in several currencies, a stored definition that no longer parses) is logged by name, and
    // the others go on.
    let mut written = 0;
    for (kind, judged) in [
        ("budget alerts", budget_alerts(ctx, account, today).await),
        ("cost alerts", crate::service::cost_alerts::evaluate(costs, account, today, url).await),
        ("report notifications", crate::service::cost_alerts::evaluate_notifications(costs, account, today, url).await),
        ("anomaly notifications", crate::service::anomalies::evaluate(costs, account, today, url).await),
    ] {
        match judged {
            Ok(n) => written += n,
            Err(e) => tracing::warn!(kind, error = %format!("{e:#}"), "alerts could not be judged"),
        }
    }
    if written > 0 {
        tracing::info!(written, "alerts fired");
        ctx.deliver.notify_one();
    }
    Ok(written)
}

/// Writes the messages of every budget alert of `account` that fires on `today`; answers how many were new.
async fn budget_alerts(ctx: &AlertContext, account: &AccountToken, today: NaiveDate) -> Result<u64, ServiceError> {
    let store = ctx.costs.store.as_ref();
    let mut messages = Vec::new();
    for alert in budgets::all(store, account, ViewKind::BudgetAlert).await? {
        match budget_alert_messages(ctx, account, &alert, today).await {
            Ok(m) => messages.extend(m),
            Err(e) => {
                tracing::warn!(alert = %alert.token, error = %format!("{e:#}"), "a budget alert could not be judged")
            }
        }
    }
    Ok(if messages.is_empty() {
        0
    } else {
        store.enqueue_notifications(&messages, Utc::now().timestamp_millis()).await?
    })
}

/// The messages of one budget alert that fires on `today`.
async fn budget_alert_messages(
    ctx: &AlertContext,
    account: &AccountToken,
    alert: &crate::store::ReportObject,
    today: NaiveDate,
) -> Result<Vec<crate::store::NewNotification>, ServiceError> {
    let store = ctx.costs.store.as_ref();
    let mut messages = Vec::new();
    {
        let definition = budgets::alert_definition(alert)?;
        let recipients =
            crate::service::users::recipients(store, account, &definition.recipients(), &definition.user_tokens)
                .await?;
        if recipients.is_empty() {
            return Ok(messages);
        }
        for budget_token in &definition.budget_tokens {
            let Some(budget) = store.get_report_object(account, ViewKind::Budget, budget_token).await? else {
                continue;
            };
            let performance = budgets::performance(&ctx.costs, account, &budget, today, |p| p.contains(today)).await?;
            let Some(now) = performance.periods.iter().find(|p| p.period.contains(today)) else { continue };
            let forecast = definition.based_on == BasedOn::Forecast;
            let compared = if forecast {
                let rest = budgets::forecast_rest(&ctx.costs, account, &budget, &now.period, today).await?;
                now.actual.checked_add(rest).ok_or_else(|| {
                    crate::service::ServiceError::unprocessable(
                        "a budget period's forecast does not fit Decimal128(38, 18)",
                    )
                })?
            } else {
                now.actual
            };
            if !definition.fires(&now.period, compared, today) {
                continue;
            }
            let used = percent(compared, now.period.amount);
            let (subject, text) = if forecast {
                (
                    format!("Budget {} is forecast to reach {}% of its amount", budget.title, used),
                    format!(
                        "{} is forecast to spend {} of its {} budget for {} to {} ({}%, past the alert's {}% \
                         threshold): {} spent to {} and {} forecast for the rest of the period.",
                        budget.title,
                        money(compared, &performance.currency),
                        money(now.period.amount, &performance.currency),
                        now.period.start,
                        now.period.end,
                        used,
                        definition.threshold,
                        money(now.actual, &performance.currency),
                        today,
                        money(compared.checked_sub(now.actual).unwrap_or(Amount::ZERO), &performance.currency),
                    ),
                )
            } else {
                (
                    format!("Budget {} reached {}% of its amount", budget.title, used),
                    format!(
                        "{} spent {} of its {} budget for {} to {} ({}%), past the alert's {}% threshold (costs to \
                         {}).",
                        budget.title,
                        money(now.actual, &performance.currency),
                        money(now.period.amount, &performance.currency),
                        now.period.start,
                        now.period.end,
                        used,
                        definition.threshold,
                        today
                    ),
                )
            };
            let link = ctx
                .public_url
                .as_ref()
                .map(|u| format!("{}/#/budgets?budget={}", u.trim_end_matches('/'), budget.token));
            let mut data = serde_json::Map::new();
            for (k, v) in [
                ("budget_alert_token", alert.token.clone()),
                ("budget_token", budget.token.clone()),
                ("budget_name", budget.title.clone()),
                ("period_start", now.period.start.to_string()),
                ("period_end", now.period.end.to_string()),
                ("amount", now.period.amount.to_string()),
                ("actual", now.actual.to_string()),
                ("based_on", definition.based_on.as_str().to_string()),
                ("compared", compared.to_string()),
                ("currency", performance.currency.clone()),
                ("threshold", definition.threshold.to_string()),
                ("percent_used", used.clone()),
                ("as_of", today.to_string()),
            ] {
                data.insert(k.into(), serde_json::Value::String(v));
            }
            let message = Message { event: "budget_alert".into(), subject, text, link, data };
            // A forecast firing has its own key: an alert switched to actuals still warns when the money is spent.
            let key = format!(
                "budget_alert:{}:{}:{}:{}{}",
                alert.token,
                budget.token,
                now.period.start,
                definition.threshold,
                if forecast { ":forecast" } else { "" }
            );
            messages.extend(message.to_each(account, &alert.token, &key, recipients.iter().cloned()));
        }
    }
    Ok(messages)
}

/// `part` as a percentage of `whole`, to one decimal place, truncated (exact integer arithmetic).
pub(crate) fn percent(part: crate::model::amount::Amount, whole: crate::model::amount::Amount) -> String {
    if whole.unscaled() == 0 {
        return "∞".into();
    }
    let tenths = part.unscaled().checked_mul(1000).map(|p| p / whole.unscaled());
    match tenths {
        Some(t) => format!("{}.{}", t / 10, (t % 10).abs()),
        None => format!("{}", part.unscaled() / whole.unscaled() * 100),
    }
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

/// How a message looks on its channel: (body, whether it is signed).
fn render(message: &Message, notification: &Notification, url: &url::Url) -> (serde_json::Value, bool) {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let link = message.link.as_deref();
    if host == "hooks.slack.com" {
        // Titles and cost data are a tenant's text: `<!channel>` or `<https://x|y>` in them arrive as text.
        let mut text = format!("*{}*\n{}", slack_text(&message.subject), slack_text(&message.text));
        if let Some(l) = link {
            text.push_str(&format!("\n<{}|Open in costd>", escaped(l, |_, _| false)));
        }
        (serde_json::json!({ "text": text }), false)
    } else if host.ends_with(".webhook.office.com") || host.ends_with(".logic.azure.com") {
        let mut card = serde_json::json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message.subject,
            "title": teams_text(&message.subject),
            "text": teams_text(&message.text),
        });
        if let Some(l) = link {
            card["potentialAction"] = serde_json::json!([{
                "@type": "OpenUri", "name": "Open in costd", "targets": [{"os": "default", "uri": l}]
            }]);
        }
        (card, false)
    } else {
        (
            serde_json::json!({
                "id": notification.token,
                "event": message.event,
                "subject": message.subject,
                "text": message.text,
                "link": link,
                "data": message.data,
                "created_at": notification.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }),
            true,
        )
    }
}

/// `text` with HTML's three characters as entities (as Slack and Teams both read them), and every other
/// character passed through `other`, which writes it (escaped) and answers whether it did.
fn escaped(text: &str, other: impl Fn(char, &mut String) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ if other(c, &mut out) => {}
            _ => out.push(c),
        }
    }
    out
}

/// Text as Slack's mrkdwn shows it literally: its control characters escaped as Slack asks (`&`, `<`, `>`),
/// so no mention (`<!channel>`), link (`<url|text>`) or formatting in a tenant's text takes effect.
fn slack_text(text: &str) -> String {
    escaped(text, |c, out| {
        // Zero-width space after a formatting character: shown as it is, never bold, italic or code.
        let formatting = matches!(c, '*' | '_' | '~' | '`');
        if formatting {
            out.push(c);
            out.push('\u{200B}');
        }
        formatting
    })
}

/// Text as a Teams card's markdown shows it literally: HTML's characters as entities, markdown's escaped.
fn teams_text(text: &str) -> String {
    escaped(text, |c, out| {
        let markdown = matches!(c, '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '`' | '~' | '!' | '|');
        if markdown {
            out.push('\\');
            out.push(c);
        }
        markdown
    })
}

/// One attempt at one message.
async fn deliver(ctx: &AlertContext, n: &Notification) -> Result<(), WebhookError> {
    let message: Message =
        serde_json::from_str(&n.message).map_err(|e| WebhookError::Refused(format!("unreadable message: {e}")))?;
    match Recipient::parse("recipient", &n.recipient).map_err(WebhookError::Refused)? {
        Recipient::Email(to) => {
            let Some(mailer) = &ctx.mailer else {
                return Err(WebhookError::Failed("no --smtp-url is configured to email alerts".into()));
            };
            let mut body = message.text.clone();
            if let Some(l) = &message.link {
                body.push_str(&format!("\n\n{l}\n"));
            }
            mailer
                .send_text(&to, &message.subject, &body)
                .await
                .map_err(|e| WebhookError::Failed(format!("email to {to}: {e:#}")))
        }
        Recipient::Webhook(url) => {
            let (body, signed) = render(&message, n, &url);
            let body = serde_json::to_vec(&body).expect("JSON serialises");
            let mut headers = vec![("x-costd-delivery", n.token.clone()), ("x-costd-event", message.event.clone())];
            if signed {
                let secret = signing_secret(ctx.costs.store.as_ref(), &n.account)
                    .await
                    .map_err(|e| WebhookError::Failed(format!("no signing secret: {e:#}")))?;
                headers.push(("x-costd-signature", signature(&secret, Utc::now().timestamp(), &body)));
            }
            ctx.webhooks.post(&url, &headers, body).await
        }
    }
}

/// How long a claimed attempt may take before another worker may try the message again.
const LEASE: Duration = Duration::from_secs(120);

/// Alert messages one account may send an hour from one node, by default: alerts go to their owners'
/// channels, and a tenant cannot make costd a relay of thousands of mails or webhook calls an hour.
pub const MESSAGES_PER_HOUR: usize = 300;

/// When each account's recent messages were sent from this node (the last hour's).
pub type SentLog =
    Arc<std::sync::Mutex<std::collections::HashMap<AccountToken, std::collections::VecDeque<std::time::Instant>>>>;

/// Whether `account` may send one more message now under `per_hour`; if so, the send is recorded.
fn take_turn(sent: &SentLog, account: &AccountToken, per_hour: usize) -> bool {
    let now = std::time::Instant::now();
    let hour = Duration::from_secs(3600);
    let mut sent = sent.lock().unwrap_or_else(|e| e.into_inner());
    sent.retain(|_, times| {
        while times.front().is_some_and(|t| now.duration_since(*t) >= hour) {
            times.pop_front();
        }
        !times.is_empty()
    });
    let times = sent.entry(account.clone()).or_default();
    if times.len() >= per_hour {
        return false;
    }
    times.push_back(now);
    true
}

/// Messages one node delivers at once.
pub const DELIVERIES_AT_ONCE: usize = 16;
/// Of those, one account's at most: its receivers that never answer hold at most this many, for at most the
/// webhook time-out each, while every other account's messages go out beside them.
pub const DELIVERIES_PER_ACCOUNT: usize = 2;
/// Due messages read at a time, and of one account (read fairly by the store, so an account with thousands
/// due cannot fill the batch).
const DUE_BATCH: i64 = 500;
const DUE_PER_ACCOUNT: i64 = 50;

/// Due messages, the accounts taken in turn (one message of each, then the next of each, …), so the first
/// messages of a quiet account come before the hundredth of a busy one.
fn in_turn(due: Vec<Notification>) -> std::collections::VecDeque<Notification> {
    let mut queues: Vec<(AccountToken, std::collections::VecDeque<Notification>)> = Vec::new();
    for n in due {
        match queues.iter_mut().find(|(a, _)| *a == n.account) {
            Some((_, q)) => q.push_back(n),
            None => queues.push((n.account.clone(), std::collections::VecDeque::from([n]))),
        }
    }
    let mut out = std::collections::VecDeque::new();
    while queues.iter().any(|(_, q)| !q.is_empty()) {
        for (_, q) in &mut queues {
            if let Some(n) = q.pop_front() {
                out.push_back(n);
            }
        }
    }
    out
}

/// Deliveries in flight on this node, each in a task of its own.
#[derive(Default)]
struct Deliveries {
    running: tokio::task::JoinSet<AccountToken>,
    per_account: std::collections::HashMap<AccountToken, usize>,
}

impl Deliveries {
    /// Starts messages of `queue` while there is room (overall and for their account); those of an account
    /// without room stay in the queue. Answers how many were started.
    async fn start(
        &mut self,
        ctx: &AlertContext,
        queue: &mut std::collections::VecDeque<Notification>,
    ) -> anyhow::Result<usize> {
        let mut started = 0;
        let mut waiting = std::collections::VecDeque::new();
        while self.running.len() < DELIVERIES_AT_ONCE {
            let Some(n) = queue.pop_front() else { break };
            if self.per_account.get(&n.account).copied().unwrap_or(0) >= DELIVERIES_PER_ACCOUNT {
                waiting.push_back(n);
                continue;
            }
            if !take_turn(&ctx.sent, &n.account, ctx.messages_per_hour) {
                // The account's hour is full: the message stays pending, its turn comes when the hour allows.
                continue;
            }
            let lease = Utc::now().timestamp_millis() + LEASE.as_millis() as i64;
            if !ctx.costs.store.claim_notification(n.id, n.next_attempt_ms, lease).await? {
                continue; // another node took it
            }
            *self.per_account.entry(n.account.clone()).or_default() += 1;
            let ctx = ctx.clone();
            self.running.spawn(async move {
                let account = n.account.clone();
                if let Err(e) = attempt(&ctx, n).await {
                    tracing::warn!(error = %format!("{e:#}"), "an alert delivery could not be recorded");
                }
                account
            });
            started += 1;
        }
        waiting.append(queue);
        *queue = waiting;
        Ok(started)
    }

    /// Waits for one delivery to end (immediately `None` when none runs).
    async fn one_done(&mut self) -> Option<()> {
        let done = self.running.join_next().await?;
        if let Ok(account) = done {
            if let Some(n) = self.per_account.get_mut(&account) {
                *n -= 1;
                if *n == 0 {
                    self.per_account.remove(&account);
                }
            }
        } else {
            // A delivery task that panicked: its account's count is rebuilt from what still runs.
            self.per_account.clear();
        }
        Some(())
    }
}

/// One attempt at one claimed message, and its outcome recorded.
async fn attempt(ctx: &AlertContext, n: Notification) -> anyhow::Result<()> {
    let attempt = n.attempts + 1;
    let outcome = match deliver(ctx, &n).await {
        Ok(()) => {
            tracing::info!(notification = %n.token, attempt, "alert delivered");
            DeliveryOutcome::Delivered
        }
        Err(WebhookError::Refused(error)) => {
            tracing::warn!(notification = %n.token, %error, "alert refused");
            DeliveryOutcome::Failed { error }
        }
        Err(WebhookError::Failed(error)) if attempt >= ctx.max_attempts => {
            tracing::warn!(notification = %n.token, attempt, %error, "alert failed for the last time");
            DeliveryOutcome::Failed { error }
        }
        Err(WebhookError::Failed(error)) => {
            let wait = backoff(ctx.retry_base, attempt);
            tracing::info!(notification = %n.token, attempt, %error, retry_in_ms = wait.as_millis() as u64, "alert delivery failed");
            DeliveryOutcome::Retry { next_attempt_ms: Utc::now().timestamp_millis() + wait.as_millis() as i64, error }
        }
    };
    ctx.costs.store.finish_notification(n.id, &outcome).await
}

/// Delivers the messages due now, each once: the accounts in turn, [`DELIVERIES_AT_ONCE`] at a time and
/// [`DELIVERIES_PER_ACCOUNT`] of one account. Answers how many were attempted.
pub async fn deliver_due(ctx: &AlertContext) -> anyhow::Result<usize> {
    let due = ctx.costs.store.due_notifications(Utc::now().timestamp_millis(), DUE_PER_ACCOUNT, DUE_BATCH).await?;
    let mut queue = in_turn(due);
    let mut deliveries = Deliveries::default();
    let mut attempted = 0;
    loop {
        attempted += deliveries.start(ctx, &mut queue).await?;
        if deliveries.one_done().await.is_none() {
            return Ok(attempted);
        }
    }
}

/// The wait after the `attempt`th failure: base × 2^(attempt−1), at most an hour.
pub fn backoff(base: Duration, attempt: i32) -> Duration {
    let factor = 1u32 << attempt.clamp(1, 20).saturating_sub(1);
    base.saturating_mul(factor).min(Duration::from_secs(3600))
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
            let mut deliveries = Deliveries::default();
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
                let due =
                    ctx.costs.store.due_notifications(Utc::now().timestamp_millis(), DUE_PER_ACCOUNT, DUE_BATCH).await;
                let started = match due {
                    Ok(due) => deliveries.start(&ctx, &mut in_turn(due)).await,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::amount::Amount;

    #[test]
    fn retries_back_off_to_an_hour() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 5), Duration::from_secs(480));
        assert_eq!(backoff(base, 12), Duration::from_secs(3600));
        assert_eq!(backoff(base, 1000), Duration::from_secs(3600));
    }

    #[test]
    fn a_tenants_text_arrives_in_slack_and_teams_as_text() {
        let message = Message {
            event: "cost_alert".into(),
            subject: "Report <!channel> *now*".into(),
            text: "Service <https://evil.example|click> & [more](https://evil.example) rose".into(),
            link: Some("https://costs.example.com/r_1?a=1&b=2".into()),
            data: Default::default(),
        };
        let notification = Notification {
            id: 1,
            token: "ntf".into(),
            account: "acct_a".into(),
            source_token: "x".into(),
            event_key: "k".into(),
            recipient: "r".into(),
            message: String::new(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            created_at: chrono::Utc::now(),
            delivered_at: None,
        };
        let slack = url::Url::parse("https://hooks.slack.com/services/T/B/x").unwrap();
        let (body, signed) = render(&message, &notification, &slack);
        assert!(!signed);
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"), "{text}");
        assert!(text.contains("&lt;https://evil.example|click&gt;") && text.contains(" &amp; "), "{text}");
        assert!(text.ends_with("<https://costs.example.com/r_1?a=1&amp;b=2|Open in costd>"), "{text}");
        assert!(text.starts_with("*Report &lt;!channel&gt; *\u{200B}now*\u{200B}*"), "{text}");
        let teams = url::Url::parse("https://acme.webhook.office.com/webhookb2/x").unwrap();
        let (card, _) = render(&message, &notification, &teams);
        let text = card["text"].as_str().unwrap();
        assert!(text.contains("\\[more\\]\\(https://evil.example\\)") && text.contains("&lt;https"), "{text}");
        assert_eq!(card["title"], "Report &lt;\\!channel&gt; \\*now\\*");
    }

    #[test]
    fn a_percentage_is_truncated_to_a_tenth() {
        let a = |s: &str| Amount::parse("a", s).unwrap();
        assert_eq!(percent(a("800"), a("1000")), "80.0");
        assert_eq!(percent(a("999.99"), a("1000")), "99.9");
        assert_eq!(percent(a("1"), a("3")), "33.3");
        assert_eq!(percent(a("1"), a("0")), "∞");
    }
}
