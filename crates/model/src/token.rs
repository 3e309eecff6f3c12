//! Resource tokens (Vantage's prefixes + 16 random hex) and API token secrets (stored only hashed).

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Token prefixes, as Vantage spells them.
pub mod prefix {
    pub const ACCOUNT: &str = "acct_";
    pub const WORKSPACE: &str = "wrkspc_";
    pub const USER: &str = "usr_";
    pub const BILLING_RULE: &str = "bllng_rule_";
    pub const INTEGRATION: &str = "accss_crdntl_";
    pub const COSTS_UPLOAD: &str = "usr_csts_upld_";
    pub const REPORT: &str = "rprt_";
    pub const BILLING_PROFILE: &str = "bllng_prfl_";
    pub const INVOICE: &str = "invc_";
    /// Public id of an API token (safe to show and log, unlike its secret).
    pub const API_TOKEN_ID: &str = "tkn_";
    /// Prefix of API token secrets, so a leaked one is recognisable in logs and secret scanners.
    pub const API_SECRET: &str = "cstd_";
}

/// A new resource token: `prefix` + 16 random lowercase hex digits.
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Declares a resource token type: a `String` that is known to be that resource's token, so a store or
/// service call cannot take an integration for an account.
macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every token of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new random token.
            pub fn generate() -> Self {
                $name(new_token($prefix))
            }

            /// Text from outside (a path, a flag) as this kind of token: `None` unless it has the prefix and
            /// nothing but letters, digits and underscores, so a wrong kind of token is "not found" at once.
            pub fn parse(text: &str) -> Option<Self> {
                let ok = text.len() > $prefix.len()
                    && text.len() <= 64
                    && text.starts_with($prefix)
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                ok.then(|| $name(text.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// A token read back from the store (which only ever holds tokens it issued).
        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(t: $name) -> String {
                t.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

token_type!(
    /// An account (a tenant, or a managed account of one): `acct_…`.
    AccountToken,
    prefix::ACCOUNT
);
token_type!(
    /// A billing rule: `bllng_rule_…`.
    RuleToken,
    prefix::BILLING_RULE
);
token_type!(
    /// A custom-provider integration (Vantage's access credential): `accss_crdntl_…`.
    IntegrationToken,
    prefix::INTEGRATION
);
token_type!(
    /// A cost upload: `usr_csts_upld_…`.
    UploadToken,
    prefix::COSTS_UPLOAD
);

token_type!(
    /// An MSP billing profile: `bllng_prfl_…`.
    BillingProfileToken,
    prefix::BILLING_PROFILE
);
token_type!(
    /// An invoice: `invc_…`.
    InvoiceToken,
    prefix::INVOICE
);
token_type!(
    /// A budget: `bdgt_…`.
    BudgetToken,
    "bdgt_"
);
token_type!(
    /// A budget alert: `bdgt_alrt_…`.
    BudgetAlertToken,
    "bdgt_alrt_"
);
token_type!(
    /// A cost alert: `cst_alrt_…`.
    CostAlertToken,
    "cst_alrt_"
);
token_type!(
    /// One firing of a cost alert: `cst_alrt_evnt_…`.
    CostAlertEventToken,
    "cst_alrt_evnt_"
);
token_type!(
    /// A scheduled report summary: `rprt_ntfctn_…`.
    ReportNotificationToken,
    "rprt_ntfctn_"
);
token_type!(
    /// Who hears of a report's anomalies: `anmly_ntfctn_…`.
    AnomalyNotificationToken,
    "anmly_ntfctn_"
);
token_type!(
    /// One anomaly found: `anmly_alrt_…`.
    AnomalyAlertToken,
    "anmly_alrt_"
);

token_type!(
    /// A virtual tag: `vtag_…`.
    VirtualTagToken,
    "vtag_"
);
token_type!(
    /// One value of a virtual tag: `vtag_val_…`.
    VirtualTagValueToken,
    "vtag_val_"
);
token_type!(
    /// A business metric (`/v2/business_metrics`): `bsnss_mtrc_…`.
    BusinessMetricToken,
    "bsnss_mtrc_"
);
token_type!(
    /// A segment (`/v2/segments`): `fltr_sgmt_…`.
    SegmentToken,
    "fltr_sgmt_"
);
token_type!(
    /// An audit log entry (`/v2/audit_logs`): `adt_lg_…`.
    AuditLogToken,
    "adt_lg_"
);

/// The token of a part of a resource (a billing profile's billing information, say): `prefix` and the
/// owner's random digits, so it is stable without being stored and unique as its owner is.
pub fn part_token(prefix: &str, owner: &str) -> String {
    let digits = owner.rsplit('_').next().unwrap_or(owner);
    format!("{prefix}{digits}")
}

/// A new API token secret: 128 random bits, so a hash lookup is as strong as a password check.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{}{}", prefix::API_SECRET, hex::encode(bytes))
}

/// The SHA-256 of a secret, hex-encoded: what the store keeps. A random 128-bit secret needs no salt or
/// slow hash, and a fast hash keeps authentication off the request's critical path.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What a token may do. GET needs `read`; POST, PUT, PATCH and DELETE need `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
}

impl Scopes {
    pub const READ_WRITE: Scopes = Scopes { read: true, write: true };

    /// Canonical text form, as stored: `read`, `write` or `read,write`.
    pub fn as_str(&self) -> &'static str {
        match (self.read, self.write) {
            (true, true) => "read,write",
            (true, false) => "read",
            (false, true) => "write",
            (false, false) => "",
        }
    }

    /// The scope names, as `GET /v2/me` lists them.
    pub fn names(&self) -> Vec<&'static str> {
        self.as_str().split(',').filter(|s| !s.is_empty()).collect()
    }
}

impl std::str::FromStr for Scopes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut scopes = Scopes { read: false, write: false };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                other => return Err(format!("unknown scope {other:?}: use read, write or read,write")),
            }
        }
        if !scopes.read && !scopes.write {
            return Err("a token needs at least one scope: read, write or read,write".into());
        }
        Ok(scopes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_prefix_and_sixteen_hex_digits() {
        let t = new_token(prefix::BILLING_RULE);
        assert!(t.starts_with("bllng_rule_"));
        let tail = &t["bllng_rule_".len()..];
        assert_eq!(tail.len(), 16);
        assert!(tail.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn secrets_hash_deterministically_and_differently() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }

    #[test]
    fn scopes_parse_in_any_order_and_case() {
        assert_eq!("Write, read".parse::<Scopes>().unwrap(), Scopes::READ_WRITE);
        assert_eq!("read".parse::<Scopes>().unwrap().as_str(), "read");
        assert!("admin".parse::<Scopes>().is_err());
        assert!("".parse::<Scopes>().is_err());
    }

    #[test]
    fn a_token_of_another_kind_does_not_parse() {
        assert!(IntegrationToken::parse("accss_crdntl_0123456789abcdef").is_some());
        assert!(IntegrationToken::parse("acct_0123456789abcdef").is_none());
        assert!(IntegrationToken::parse("accss_crdntl_").is_none());
        assert!(IntegrationToken::parse("accss_crdntl_x'; DROP TABLE").is_none());
        assert!(AccountToken::generate().starts_with("acct_"));
    }
}
