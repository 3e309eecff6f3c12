//! Custom-provider integrations: what a create or update request may say.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::token::IntegrationToken;
use super::{required_text, text};

/// Longest integration description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// `POST /v2/integrations/custom_provider` as sent.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomProviderFields {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// A valid new custom provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomProvider {
    pub name: String,
    pub description: Option<String>,
}

impl TryFrom<CustomProviderFields> for NewCustomProvider {
    type Error = Vec<String>;

    fn try_from(f: CustomProviderFields) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let name = required_text("name", f.name, &mut errors);
        let description = match f.description {
            Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => {
                errors.push(format!("description must be at most {MAX_DESCRIPTION_LEN} characters"));
                None
            }
            Some(d) if d.trim().is_empty() => None,
            other => other,
        };
        match name {
            Some(name) if errors.is_empty() => Ok(NewCustomProvider { name, description }),
            _ => Err(errors),
        }
    }
}

/// `PUT /v2/integrations/{token}` as sent: its workspaces (Vantage's one attribute) and, for a bucket
/// integration, new credentials (costd's: keys are rotated).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntegrationUpdateFields {
    pub workspace_tokens: Option<Vec<String>>,
    #[serde(flatten)]
    pub credentials: super::bucket_export::CredentialFields,
}

/// A valid workspace list: no blanks, no duplicates (order kept).
pub fn workspace_list(tokens: Vec<String>) -> Result<Vec<String>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if let Some(t) = text("workspace_tokens[]", t, &mut errors) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// An integration: a custom provider (costs uploaded) or a bucket export (costs synced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub token: IntegrationToken,
    /// `custom_provider`, `aws` or `azure`.
    pub provider: String,
    /// The name given at creation; Vantage shows it as `account_identifier`.
    pub name: String,
    pub description: Option<String>,
    /// `imported` once created (Vantage's value for custom providers).
    pub status: String,
    /// When an upload was last added or removed.
    pub last_updated: Option<DateTime<Utc>>,
    pub workspace_tokens: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// A bucket integration's export location (`model::bucket_export::ExportLocation` as JSON).
    pub location: Option<String>,
    /// When a sync of a bucket integration last completed.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Why its last sync failed, naming the file and the cause (`None` after a clean sync).
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_provider_needs_a_name() {
        let e = NewCustomProvider::try_from(CustomProviderFields::default()).unwrap_err();
        assert_eq!(e, vec!["name is required"]);
        let ok = NewCustomProvider::try_from(CustomProviderFields { name: Some("Datadog".into()), description: None });
        assert_eq!(ok.unwrap().name, "Datadog");
    }

    #[test]
    fn workspace_lists_drop_duplicates_and_refuse_blanks() {
        assert_eq!(workspace_list(vec!["a".into(), "a".into(), "b".into()]).unwrap(), vec!["a", "b"]);
        assert!(workspace_list(vec![" ".into()]).is_err());
    }
}
