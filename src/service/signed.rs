//! Expiring signed links to files costd serves itself (an invoice's PDF and CSV, its cost report), so a
//! browser, an email client or `curl` can fetch them without an API token, as Vantage's download URLs work.
//!
//! A link names the MSP account, the invoice, the file and an expiry time, and carries an HMAC-SHA256 of
//! all four under a key kept in the metadata store (made on first use), so every costd process sharing the
//! store signs and checks alike, and a link cannot be altered to reach another file or tenant.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::token::{AccountToken, InvoiceToken};

/// The store's name for the signing key.
pub const KEY_NAME: &str = "download-links";

/// How long a download link works unless configured otherwise.
pub const DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// A file of an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceFile {
    Pdf,
    Csv,
    /// The period's daily costs by provider, service and charge type, as they are now.
    CostReport,
}

impl InvoiceFile {
    /// The file's name in a link.
    pub fn name(self) -> &'static str {
        match self {
            InvoiceFile::Pdf => "invoice.pdf",
            InvoiceFile::Csv => "invoice.csv",
            InvoiceFile::CostReport => "cost_report.csv",
        }
    }

    pub fn from_name(name: &str) -> Option<InvoiceFile> {
        [InvoiceFile::Pdf, InvoiceFile::Csv, InvoiceFile::CostReport].into_iter().find(|f| f.name() == name)
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this download link expired; ask the API for a new one")]
    Expired,
    #[error("this download link is not valid (altered or signed by another server)")]
    BadSignature,
}

/// Signs and checks links.
pub struct UrlSigner {
    key: Vec<u8>,
}

impl UrlSigner {
    pub fn new(key: &str) -> UrlSigner {
        UrlSigner { key: key.as_bytes().to_vec() }
    }

    fn mac(&self, msp: &AccountToken, invoice: &InvoiceToken, file: InvoiceFile, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        // Fields are tokens and digits, so a separator they never contain keeps the message unambiguous.
        mac.update(format!("{msp}|{invoice}|{}|{expires}", file.name()).as_bytes());
        mac
    }

    /// The absolute link under `base` (scheme and host), valid until `expires` (Unix seconds).
    pub fn url(
        &self,
        base: &str,
        msp: &AccountToken,
        invoice: &InvoiceToken,
        file: InvoiceFile,
        expires: i64,
    ) -> String {
        let signature = hex::encode(self.mac(msp, invoice, file, expires).finalize().into_bytes());
        format!(
            "{}/v2/files/invoices/{invoice}/{}?account={msp}&expires={expires}&signature={signature}",
            base.trim_end_matches('/'),
            file.name()
        )
    }

    /// Checks a link's signature (in constant time), then its expiry against `now` (Unix seconds).
    pub fn verify(
        &self,
        msp: &AccountToken,
        invoice: &InvoiceToken,
        file: InvoiceFile,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let bytes = hex::decode(signature).map_err(|_| LinkError::BadSignature)?;
        self.mac(msp, invoice, file, expires).verify_slice(&bytes).map_err(|_| LinkError::BadSignature)?;
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (i64, String) {
        let query = url.split_once('?').unwrap().1;
        let get = |k: &str| query.split('&').find_map(|p| p.strip_prefix(&format!("{k}="))).unwrap().to_string();
        (get("expires").parse().unwrap(), get("signature"))
    }

    #[test]
    fn a_link_works_until_it_expires_and_only_for_what_it_names() {
        let signer = UrlSigner::new("secret");
        let (msp, other) = (AccountToken::from("acct_1"), AccountToken::from("acct_2"));
        let invoice = InvoiceToken::from("invc_1");
        let url = signer.url("http://h", &msp, &invoice, InvoiceFile::Pdf, 1000);
        assert!(url.starts_with("http://h/v2/files/invoices/invc_1/invoice.pdf?account=acct_1&expires=1000&signature="));
        let (expires, sig) = parts(&url);
        assert_eq!(signer.verify(&msp, &invoice, InvoiceFile::Pdf, expires, &sig, 999), Ok(()));
        assert_eq!(signer.verify(&msp, &invoice, InvoiceFile::Pdf, expires, &sig, 1001), Err(LinkError::Expired));
        assert_eq!(signer.verify(&other, &invoice, InvoiceFile::Pdf, expires, &sig, 999), Err(LinkError::BadSignature));
        assert_eq!(signer.verify(&msp, &invoice, InvoiceFile::Csv, expires, &sig, 999), Err(LinkError::BadSignature));
        assert_eq!(signer.verify(&msp, &invoice, InvoiceFile::Pdf, 5000, &sig, 999), Err(LinkError::BadSignature));
        let other_key = UrlSigner::new("another");
        assert_eq!(
            other_key.verify(&msp, &invoice, InvoiceFile::Pdf, expires, &sig, 999),
            Err(LinkError::BadSignature)
        );
        assert_eq!(signer.verify(&msp, &invoice, InvoiceFile::Pdf, expires, "zz", 999), Err(LinkError::BadSignature));
    }
}
