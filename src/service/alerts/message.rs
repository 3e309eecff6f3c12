//! What a firing says and how it looks on each channel: the [`Message`] the outbox keeps (written once per
//! firing and recipient), and its rendering at delivery: plain text for email, Slack's `{"text"}`, a Teams
//! MessageCard, costd's signed JSON. A tenant's text (report titles, services, tags) is escaped for Slack's
//! mrkdwn and Teams' markdown, so `<!channel>` or a `<url|text>` link arrives as text.

use serde::{Deserialize, Serialize};

use crate::model::amount::Amount;
use crate::model::token::AccountToken;
use crate::store::{NewNotification, Notification};

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

/// An amount as messages state it.
pub(super) fn money(amount: Amount, currency: &str) -> String {
    format!("{} {currency}", amount.rounded(2))
}

/// `part` as a percentage of `whole`, to one decimal place, truncated (exact integer arithmetic).
pub(crate) fn percent(part: Amount, whole: Amount) -> String {
    if whole.unscaled() == 0 {
        return "∞".into();
    }
    let tenths = part.unscaled().checked_mul(1000).map(|p| p / whole.unscaled());
    match tenths {
        Some(t) => format!("{}.{}", t / 10, (t % 10).abs()),
        None => format!("{}", part.unscaled() / whole.unscaled() * 100),
    }
}

/// Two windows: the current one and the one before, each its first and last day.
pub(super) type Windows = ((chrono::NaiveDate, chrono::NaiveDate), (chrono::NaiveDate, chrono::NaiveDate));

/// The numbers both a cost alert's event and a report summary state: each window's days and amount, and the
/// change from the previous to the current.
pub(super) fn comparison(windows: Windows, before: Amount, now: Amount, change: Amount) -> [(&'static str, String); 7] {
    let ((cur_start, cur_end), (prev_start, prev_end)) = windows;
    [
        ("current_start", cur_start.to_string()),
        ("current_end", cur_end.to_string()),
        ("previous_start", prev_start.to_string()),
        ("previous_end", prev_end.to_string()),
        ("current_amount", now.to_string()),
        ("previous_amount", before.to_string()),
        ("change", change.to_string()),
    ]
}

/// How a message looks on its channel: (body, whether it is signed).
pub(super) fn render(message: &Message, notification: &Notification, url: &url::Url) -> (serde_json::Value, bool) {
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::amount::Amount;
    use crate::store::Notification;

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
