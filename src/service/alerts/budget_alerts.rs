//! Budget alerts judged: for each alert and each budget it watches, the budget's period holding today and
//! its actual so far (`service::budgets::performance`, through the report series), plus, for a
//! `based_on: forecast` alert, the report's forecast of the period's days still to come
//! (`service::budgets::forecast_rest`). If `BudgetAlertDefinition::fires`, one message per recipient (its
//! channels and its users' addresses) goes to the outbox under the event key
//! `budget_alert:<alert>:<budget>:<period start>:<threshold>[:forecast]`: once per period, however often the
//! period's data is restated and judged again.

use chrono::{NaiveDate, Utc};

use super::message::{money, percent, Message};
use super::{AlertContext, Evaluator};
use crate::model::amount::Amount;
use crate::model::budget::{BasedOn, BudgetAlert, BudgetPeriod};
use crate::model::token::AccountToken;
use crate::service::records;
use crate::service::{budgets, ServiceError};
use crate::store::wing::{BudgetAlerts, Budgets};

/// How many days after a budget period ends its alerts still judge it (bills arrive late).
pub const LATE_DAYS: i64 = super::anomalies::LATE_DAYS;

/// Whether a period that is over is still judged on `today` for an alert made on `made`: it ended within
/// [`LATE_DAYS`] days, and not before the alert existed (an alert does not fire for the past it never saw).
pub fn judged_late(period: &BudgetPeriod, today: NaiveDate, made: NaiveDate) -> bool {
    period.end < today && (today - period.end).num_days() <= LATE_DAYS && period.end >= made
}

/// The budget alerts' evaluator.
pub struct BudgetAlertEvaluator;

#[async_trait::async_trait]
impl Evaluator for BudgetAlertEvaluator {
    fn name(&self) -> &'static str {
        "budget alerts"
    }

    async fn evaluate(
        &self,
        ctx: &AlertContext,
        account: &AccountToken,
        today: NaiveDate,
    ) -> Result<u64, ServiceError> {
        budget_alerts(ctx, account, today).await
    }
}

/// Writes the messages of every budget alert of `account` that fires on `today`; answers how many were new.
async fn budget_alerts(ctx: &AlertContext, account: &AccountToken, today: NaiveDate) -> Result<u64, ServiceError> {
    let store = ctx.costs.store.as_ref();
    let mut messages = Vec::new();
    for alert in records::all::<BudgetAlerts>(store, account).await? {
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
    alert: &BudgetAlert,
    today: NaiveDate,
) -> Result<Vec<crate::store::NewNotification>, ServiceError> {
    let store = ctx.costs.store.as_ref();
    let mut messages = Vec::new();
    {
        let definition = &alert.definition;
        let recipients =
            crate::service::users::recipients(store, account, &definition.recipients(), &definition.user_tokens)
                .await?;
        if recipients.is_empty() {
            return Ok(messages);
        }
        for budget_token in &definition.budget_tokens {
            let Some(budget) = store.record::<Budgets>(account, budget_token).await? else {
                continue;
            };
            // The period holding today, and those that ended within LATE_DAYS (their last bills arrive
            // late) while the alert existed.
            let made = alert.created_at.date_naive();
            // An ended period is judged only when the alert's window ran to its end (a window at a period's
            // start closed before its last bills, and the period's actual covers days after the window).
            let judged = |p: &BudgetPeriod| {
                p.contains(today) || (judged_late(p, today, made) && definition.window(p).1 == p.end)
            };
            let performance = budgets::performance(&ctx.costs, account, &budget, today, judged).await?;
            for now in performance.periods.iter().filter(|p| judged(&p.period)) {
                // An ended period is judged as on its last day.
                let day = today.min(now.period.end);
                let forecast = definition.based_on == BasedOn::Forecast;
                let rest = if forecast {
                    budgets::forecast_rest(&ctx.costs, account, &budget, &now.period, today).await?
                } else {
                    Amount::ZERO
                };
                let compared = now.actual.checked_add(rest).ok_or_else(|| {
                    ServiceError::unprocessable("a budget period's forecast does not fit Decimal128(38, 18)")
                })?;
                if !definition.fires(&now.period, compared, day) {
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
                            money(rest, &performance.currency),
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
                    ("budget_alert_token", alert.token.to_string()),
                    ("budget_token", budget.token.to_string()),
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
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(start: &str, end: &str) -> BudgetPeriod {
        BudgetPeriod { start: start.parse().unwrap(), end: end.parse().unwrap(), amount: Amount::ZERO }
    }

    #[test]
    fn an_ended_period_is_judged_for_fourteen_days_if_the_alert_saw_it_end() {
        let feb = period("2026-02-01", "2026-02-28");
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert!(judged_late(&feb, d("2026-03-02"), d("2026-01-10")), "its last bills arrive in March");
        assert!(judged_late(&feb, d("2026-03-14"), d("2026-01-10")));
        assert!(!judged_late(&feb, d("2026-03-15"), d("2026-01-10")), "15 days after");
        assert!(!judged_late(&feb, d("2026-03-02"), d("2026-03-01")), "made after it ended");
        assert!(!judged_late(&feb, d("2026-02-20"), d("2026-01-10")), "not over: judged as the current period");
    }
}
