//! Email through an SMTP server (lettre): the invoice with its PDF and CSV attached.
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
        Ok(Mailer { transport, from })
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
