//! Delivery: the outbox's due messages sent, each attempt claimed, fairly across tenants.
//!
//! 1. The store reads the due messages fairly (`due_notifications`: the oldest few of each account).
//! 2. They are taken in turn, one of each account, then the next of each (`in_turn`).
//! 3. Each starts while there is room: [`DELIVERIES_AT_ONCE`] on a node, [`DELIVERIES_PER_ACCOUNT`] of one
//!    account, [`MESSAGES_PER_HOUR`] an hour of one account (`take_turn`); the rest wait for the next round.
//! 4. An attempt is claimed by a conditional update that moves the message's due time past a lease, so two
//!    workers never send the same attempt; its outcome is recorded: delivered, or the error and the next
//!    attempt after an exponential [`backoff`], or failed after the last attempt. A refused URL (a private
//!    address) fails at once: waiting will not change it.
//!
//! A message is written before it is sent and marked delivered after, so a crash in between sends it again
//! once its lease ends: delivery is at least once, and each generic webhook call carries the message's token
//! (`X-Costd-Delivery`) for a receiver to drop a repeat. Every call has the webhook client's time-out, so a
//! receiver that never answers holds one slot of its own account for that long, never another's.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::message::{render, Message};
use super::{signing_secret, AlertContext};
use crate::model::budget::Recipient;
use crate::model::token::AccountToken;
use crate::service::webhooks::{signature, WebhookError};
use crate::store::{DeliveryOutcome, Notification};

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
pub(super) const DUE_BATCH: i64 = 500;
pub(super) const DUE_PER_ACCOUNT: i64 = 50;

/// Due messages, the accounts taken in turn (one message of each, then the next of each, …), so the first
/// messages of a quiet account come before the hundredth of a busy one.
pub(super) fn in_turn(due: Vec<Notification>) -> std::collections::VecDeque<Notification> {
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
pub(super) struct Deliveries {
    pub(super) running: tokio::task::JoinSet<AccountToken>,
    per_account: std::collections::HashMap<AccountToken, usize>,
}

impl Deliveries {
    /// Starts messages of `queue` while there is room (overall and for their account); those of an account
    /// without room stay in the queue. Answers how many were started.
    pub(super) async fn start(
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
    pub(super) async fn one_done(&mut self) -> Option<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 5), Duration::from_secs(480));
        assert_eq!(backoff(base, 12), Duration::from_secs(3600));
        assert_eq!(backoff(base, 1000), Duration::from_secs(3600));
    }
}
