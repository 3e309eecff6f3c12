//! Email through an SMTP server (lettre): the invoice with its PDF and CSV attached, and alerts' messages.
//!
//! `--smtp-url` takes lettre's URL forms: `smtp://host:25` (plain; add `?tls=required` for STARTTLS),
//! `smtps://user:password@host:465` (TLS from the start). `--smtp-from` is the sender address.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::model::invoice::invoice_number;
use crate::render::invoice::{money, Files};
use crate::store::Invoice;

/// How long one delivery may take before it counts as failed.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A configured SMTP connection.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    limits: SendLimits,
}

/// Most addresses one invoice email goes to.
pub const MAX_RECIPIENTS: usize = 10;
/// Most invoice emails one account (an MSP) sends in an hour, from this node.
pub const SENDS_PER_ACCOUNT_PER_HOUR: usize = 100;
/// Most times one invoice is emailed in an hour.
pub const SENDS_PER_INVOICE_PER_HOUR: usize = 3;

/// How often invoices are emailed: costd relays under the operator's From address, so one tenant (or a
/// stolen token) must not turn it into a mail cannon. Counted per node, in a sliding hour.
#[derive(Debug, Default)]
pub struct SendLimits {
    sent: std::sync::Mutex<std::collections::HashMap<String, std::collections::VecDeque<std::time::Instant>>>,
}

impl SendLimits {
    /// Counts one send of `invoice` by `account`, or says why it may not go now.
    pub fn check(&self, account: &str, invoice: &str) -> Result<(), String> {
        self.check_at(account, invoice, std::time::Instant::now())
    }

    fn check_at(&self, account: &str, invoice: &str, now: std::time::Instant) -> Result<(), String> {
        let hour = std::time::Duration::from_secs(3600);
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.retain(|_, times| {
            while times.front().is_some_and(|t| now.duration_since(*t) >= hour) {
                times.pop_front();
            }
            !times.is_empty()
        });
        let (by_account, by_invoice) = (format!("account:{account}"), format!("invoice:{invoice}"));
        let count = |key: &str| sent.get(key).map_or(0, |t| t.len());
        if count(&by_invoice) >= SENDS_PER_INVOICE_PER_HOUR {
            return Err(format!(
                "this invoice was emailed {SENDS_PER_INVOICE_PER_HOUR} times in the last hour; try again later"
            ));
        }
        if count(&by_account) >= SENDS_PER_ACCOUNT_PER_HOUR {
            return Err(format!(
                "this account emailed {SENDS_PER_ACCOUNT_PER_HOUR} invoices in the last hour; try again later"
            ));
        }
        for key in [by_account, by_invoice] {
            sent.entry(key).or_default().push_back(now);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL can hold a password: show only the sender.
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// A mailer for `url`, sending as `from`. Fails on a malformed URL or address, not on an unreachable
    /// server (that shows when sending).
    pub fn new(url: &str, from: &str) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("--smtp-url is not a usable SMTP URL: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from: Mailbox =
            from.parse().map_err(|e| anyhow::anyhow!("--smtp-from {from:?} is not an email address: {e}"))?;
        Ok(Mailer { transport, from, limits: SendLimits::default() })
    }

    /// How often invoices may be emailed through this mailer.
    pub fn limits(&self) -> &SendLimits {
        &self.limits
    }

    /// Sends a plain-text message (an alert) to one address.
    pub async fn send_text(&self, to: &str, subject: &str, body: &str) -> anyhow::Result<()> {
        let mailbox: Mailbox = to.parse().map_err(|e| anyhow::anyhow!("recipient {to:?}: {e}"))?;
        let message = Message::builder().from(self.from.clone()).to(mailbox).subject(subject).body(body.to_string())?;
        self.transport.send(message).await?;
        Ok(())
    }

    /// Sends `invoice` to `to` with its files attached.
    pub async fn send_invoice(&self, to: &[String], invoice: &Invoice, files: &Files) -> anyhow::Result<()> {
        let d = &invoice.document;
        let number = invoice_number(invoice.number);
        let mut builder = Message::builder().from(self.from.clone()).subject(format!(
            "Invoice {number} from {} ({} to {})",
            d.seller.name, invoice.period.start, invoice.period.end
        ));
        for address in to {
            let mailbox: Mailbox = address.parse().map_err(|e| anyhow::anyhow!("recipient {address:?}: {e}"))?;
            builder = builder.to(mailbox);
        }
        if let Some(reply_to) = d.seller.billing.billing_email.as_ref().and_then(|e| e.first()) {
            if let Ok(mailbox) = reply_to.parse::<Mailbox>() {
                builder = builder.reply_to(mailbox);
            }
        }
        let body = format!(
            "Hello {},\n\nplease find attached invoice {number} for {} to {}.\n\nTotal due: {} {}\nDue date: {}\n\n{}\n",
            d.buyer.name,
            invoice.period.start,
            invoice.period.end,
            d.currency,
            money(d.total),
            d.due_on,
            d.seller.name
        );
        let pdf = ContentType::parse("application/pdf").expect("a valid MIME type");
        let csv = ContentType::parse("text/csv; charset=utf-8").expect("a valid MIME type");
        let message = builder.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(Attachment::new(format!("{}.pdf", files.stem)).body(files.pdf.clone(), pdf))
                .singlepart(Attachment::new(format!("{}.csv", files.stem)).body(files.csv.clone(), csv)),
        )?;
        self.transport.send(message).await?;
        tracing::info!(invoice = %invoice.token, recipients = to.len(), "invoice emailed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_is_emailed_a_few_times_an_hour_and_an_account_a_bounded_number() {
        let limits = SendLimits::default();
        let t0 = std::time::Instant::now();
        for _ in 0..SENDS_PER_INVOICE_PER_HOUR {
            limits.check_at("acct_msp", "invc_1", t0).unwrap();
        }
        let e = limits.check_at("acct_msp", "invc_1", t0).unwrap_err();
        assert!(e.contains("emailed 3 times"), "{e}");
        // An hour later it may go again.
        limits.check_at("acct_msp", "invc_1", t0 + std::time::Duration::from_secs(3601)).unwrap();
        // Many invoices of one account: bounded too, and another account is not.
        let t1 = t0 + std::time::Duration::from_secs(3601);
        for i in 0..SENDS_PER_ACCOUNT_PER_HOUR - 1 {
            limits.check_at("acct_msp", &format!("invc_n{i}"), t1).unwrap();
        }
        assert!(limits.check_at("acct_msp", "invc_last", t1).unwrap_err().contains("100 invoices"));
        limits.check_at("acct_other", "invc_x", t1).unwrap();
    }
}
