//! Managed accounts: what a create or update request may say.

use serde::Deserialize;

use super::token::{IntegrationToken, RuleToken};
use super::{required_text, text};

/// The settable parts of a managed account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedAccountSettings {
    pub name: String,
    pub contact_email: String,
    pub email_domain: Option<String>,
    pub integration_tokens: Vec<IntegrationToken>,
    pub rule_tokens: Vec<RuleToken>,
}

/// Create or update fields as sent; unknown (MSP invoicing) fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ManagedAccountFields {
    pub name: Option<String>,
    pub contact_email: Option<String>,
    pub email_domain: Option<String>,
    pub access_credential_tokens: Option<Vec<String>>,
    pub billing_rule_tokens: Option<Vec<String>>,
}

impl ManagedAccountFields {
    /// These fields with every field that `update` sets replacing this one's.
    pub fn overlay(self, update: ManagedAccountFields) -> ManagedAccountFields {
        ManagedAccountFields {
            name: update.name.or(self.name),
            contact_email: update.contact_email.or(self.contact_email),
            email_domain: update.email_domain.or(self.email_domain),
            access_credential_tokens: update.access_credential_tokens.or(self.access_credential_tokens),
            billing_rule_tokens: update.billing_rule_tokens.or(self.billing_rule_tokens),
        }
    }
}

impl From<ManagedAccountSettings> for ManagedAccountFields {
    fn from(s: ManagedAccountSettings) -> Self {
        ManagedAccountFields {
            name: Some(s.name),
            contact_email: Some(s.contact_email),
            email_domain: s.email_domain,
            access_credential_tokens: Some(s.integration_tokens.into_iter().map(String::from).collect()),
            billing_rule_tokens: Some(s.rule_tokens.into_iter().map(String::from).collect()),
        }
    }
}

/// A list of tokens of one kind (`what` names it in messages): each once, each of that kind (a token of
/// another kind cannot be one of the account's, so it reads as not found).
fn token_list<T: PartialEq + std::fmt::Display>(
    field: &str,
    what: &str,
    tokens: Option<Vec<String>>,
    parse: impl Fn(&str) -> Option<T>,
    errors: &mut Vec<String>,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for t in tokens.unwrap_or_default() {
        match parse(t.trim()) {
            Some(t) if out.contains(&t) => errors.push(format!("{field}: {t} is listed twice")),
            Some(t) => out.push(t),
            None => errors.push(format!("{field}: no {what} {t} in this account")),
        }
    }
    out
}

impl TryFrom<ManagedAccountFields> for ManagedAccountSettings {
    type Error = Vec<String>;

    fn try_from(f: ManagedAccountFields) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let name = required_text("name", f.name, &mut errors);
        let contact_email = required_text("contact_email", f.contact_email, &mut errors);
        if let Some(e) = &contact_email {
            let valid = e.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'));
            if !valid {
                errors.push(format!("contact_email must be an email address, got {e:?}"));
            }
        }
        let email_domain = f.email_domain.and_then(|d| text("email_domain", d, &mut errors));
        let integration_tokens = token_list(
            "access_credential_tokens",
            "integration",
            f.access_credential_tokens,
            IntegrationToken::parse,
            &mut errors,
        );
        let rule_tokens =
            token_list("billing_rule_tokens", "billing rule", f.billing_rule_tokens, RuleToken::parse, &mut errors);
        match (name, contact_email) {
            (Some(name), Some(contact_email)) if errors.is_empty() => {
                Ok(ManagedAccountSettings { name, contact_email, email_domain, integration_tokens, rule_tokens })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managed_account_needs_a_name_and_a_real_email() {
        let e = ManagedAccountSettings::try_from(ManagedAccountFields::default()).unwrap_err();
        assert_eq!(e, vec!["name is required", "contact_email is required"]);
        let e = ManagedAccountSettings::try_from(ManagedAccountFields {
            name: Some("Acme".into()),
            contact_email: Some("nobody".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e[0].starts_with("contact_email must be an email address"));
    }

    #[test]
    fn duplicate_tokens_are_refused() {
        let e = ManagedAccountSettings::try_from(ManagedAccountFields {
            name: Some("Acme".into()),
            contact_email: Some("a@acme.com".into()),
            billing_rule_tokens: Some(vec!["bllng_rule_01".into(), "bllng_rule_01".into(), "acct_01".into()]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            e,
            vec![
                "billing_rule_tokens: bllng_rule_01 is listed twice",
                "billing_rule_tokens: no billing rule acct_01 in this account"
            ]
        );
    }
}
