//! Report summaries (Vantage's report notifications) judged: once per day, week or month, the report's
//! last complete one against the one before (through the report series), to the outbox under
//! `report_notification:<token>:<start>`: once per period, whatever pass or node writes it.

use chrono::NaiveDate;

use super::cost_alerts::windows_of;
use super::message::{comparison, percent, Message};
use super::{AlertContext, Evaluator};
use crate::model::amount::Amount;
use crate::model::cost_alert::Change;
use crate::model::report::ViewKind;
use crate::model::token::AccountToken;
use crate::service::records;
use crate::service::series::{report_series, By, SeriesQuery};
use crate::service::ServiceError;
use crate::store::wing::ReportNotifications;

type Result<T> = std::result::Result<T, ServiceError>;

/// The report summaries' evaluator.
pub struct ReportSummaryEvaluator;

#[async_trait::async_trait]
impl Evaluator for ReportSummaryEvaluator {
    fn name(&self) -> &'static str {
        "report notifications"
    }

    async fn evaluate(&self, ctx: &AlertContext, account: &AccountToken, today: NaiveDate) -> Result<u64> {
        summaries(ctx, account, today).await
    }
}

/// Writes the summary of every report notification of `account` whose period ended before `today` and was
/// not sent yet; answers the messages written.
async fn summaries(ctx: &AlertContext, account: &AccountToken, today: chrono::NaiveDate) -> Result<u64> {
    let store = ctx.costs.store.as_ref();
    let public_url = ctx.public_url.as_deref();
    let mut written = 0;
    for n in records::all::<ReportNotifications>(store, account).await? {
        let d = &n.definition;
        let recipients = crate::service::users::recipients(store, account, &d.recipients(), &d.user_tokens).await?;
        if recipients.is_empty() {
            continue;
        }
        let Some(r) = store.get_report_object(account, ViewKind::CostReport, &d.cost_report_token).await? else {
            continue;
        };
        let windows = d.frequency.windows(today);
        let query = SeriesQuery { start: windows.1 .0, end: windows.0 .1, by: By::Whole, usage_only: false };
        let judged = report_series(&ctx.costs, account, &d.cost_report_token, today, &query)
            .await
            .and_then(|series| Ok((windows_of(&series, &[windows], false)?, series.currency)));
        let (whole, currency) = match judged {
            Ok((mut judged, currency)) => (judged.pop().map(|(_, groups)| groups).unwrap_or_default(), currency),
            Err(e) => {
                tracing::warn!(notification = %n.token, error = %format!("{e:#}"), "a report notification could not be judged");
                continue;
            }
        };
        let (before, now) = whole.first().map(|w| (w.before, w.now)).unwrap_or((Amount::ZERO, Amount::ZERO));
        let change = now
            .checked_sub(before)
            .ok_or_else(|| ServiceError::unprocessable("a report summary's change does not fit Decimal128(38, 18)"))?;
        let sign = if change.unscaled() >= 0 { "+" } else { "" };
        let stated = match (d.change, before.unscaled() > 0) {
            (Change::Percentage, true) => format!("{sign}{}%", percent(change, before)),
            (Change::Percentage, false) => "no cost before".to_string(),
            (Change::Dollars, _) => format!("{sign}{} {currency}", change.rounded(2)),
        };
        let (cur, prev) = windows;
        let span = |w: (chrono::NaiveDate, chrono::NaiveDate)| {
            if w.0 == w.1 {
                w.0.to_string()
            } else {
                format!("{} to {}", w.0, w.1)
            }
        };
        let text = format!(
            "{}: {} {currency} for {} ({stated} against {} {currency} for {}).",
            r.title,
            now.rounded(2),
            span(cur),
            before.rounded(2),
            span(prev)
        );
        let mut data = serde_json::Map::new();
        for (k, v) in comparison(windows, before, now, change).into_iter().chain([
            ("report_notification_token", n.token.to_string()),
            ("cost_report_token", r.token.clone()),
            ("frequency", d.frequency_name().to_string()),
            ("currency", currency.clone()),
        ]) {
            data.insert(k.into(), serde_json::Value::String(v));
        }
        let message = Message {
            event: "report_notification".into(),
            subject: format!("{} ({} summary): {stated}", n.title, d.frequency_name()),
            text,
            link: public_url.map(|u| format!("{}/#/costs?cost_report_token={}", u.trim_end_matches('/'), r.token)),
            data,
        };
        let key = format!("report_notification:{}:{}", n.token, cur.0);
        let messages = message.to_each(account, &n.token, &key, recipients);
        written += store.enqueue_notifications(&messages, chrono::Utc::now().timestamp_millis()).await?;
    }
    Ok(written)
}
