//! Workspaces: a named space inside an account with its display currency settings.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{required_text, text};

/// How exchange rates are picked when currency conversion is on.
pub const EXCHANGE_RATE_DATES: [&str; 2] = ["daily_rate", "end_of_billing_period_rate"];

/// A valid workspace's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceSettings {
    pub name: String,
    pub enable_currency_conversion: bool,
    /// ISO 4217 code, upper case.
    pub currency: String,
    /// One of [`EXCHANGE_RATE_DATES`].
    pub exchange_rate_date: String,
}

/// Create or update fields as sent; unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkspaceFields {
    pub name: Option<String>,
    pub enable_currency_conversion: Option<bool>,
    pub currency: Option<String>,
    pub exchange_rate_date: Option<String>,
}

impl WorkspaceFields {
    /// These fields with every field that `update` sets replacing this one's.
    pub fn overlay(self, update: WorkspaceFields) -> WorkspaceFields {
        WorkspaceFields {
            name: update.name.or(self.name),
            enable_currency_conversion: update.enable_currency_conversion.or(self.enable_currency_conversion),
            currency: update.currency.or(self.currency),
            exchange_rate_date: update.exchange_rate_date.or(self.exchange_rate_date),
        }
    }
}

impl From<WorkspaceSettings> for WorkspaceFields {
    fn from(s: WorkspaceSettings) -> Self {
        WorkspaceFields {
            name: Some(s.name),
            enable_currency_conversion: Some(s.enable_currency_conversion),
            currency: Some(s.currency),
            exchange_rate_date: Some(s.exchange_rate_date),
        }
    }
}

impl TryFrom<WorkspaceFields> for WorkspaceSettings {
    type Error = Vec<String>;

    fn try_from(f: WorkspaceFields) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let name = required_text("name", f.name, &mut errors);
        let currency = f.currency.unwrap_or_else(|| "USD".into());
        let currency = text("currency", currency, &mut errors).and_then(|c| {
            let code = crate::exchange_rate::currency_code(&c);
            if code.is_none() {
                errors.push(format!("currency must be a three-letter ISO 4217 code like USD, got {:?}", c.trim()));
            }
            code
        });
        let exchange_rate_date = f.exchange_rate_date.unwrap_or_else(|| "daily_rate".into());
        if !EXCHANGE_RATE_DATES.contains(&exchange_rate_date.as_str()) {
            errors.push(format!(
                "exchange_rate_date must be daily_rate or end_of_billing_period_rate, got {exchange_rate_date:?}"
            ));
        }
        match (name, currency) {
            (Some(name), Some(currency)) if errors.is_empty() => Ok(WorkspaceSettings {
                name,
                // Vantage's documented default for new workspaces.
                enable_currency_conversion: f.enable_currency_conversion.unwrap_or(true),
                currency,
                exchange_rate_date,
            }),
            _ => Err(errors),
        }
    }
}

impl WorkspaceSettings {
    /// The settings of a new account's first workspace.
    pub fn default_named(name: &str) -> Self {
        WorkspaceSettings {
            name: name.to_string(),
            enable_currency_conversion: false,
            currency: "USD".into(),
            exchange_rate_date: "daily_rate".into(),
        }
    }
}

/// A stored workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub token: String,
    pub settings: WorkspaceSettings,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_needs_only_a_name() {
        let s =
            WorkspaceSettings::try_from(WorkspaceFields { name: Some("Prod".into()), ..Default::default() }).unwrap();
        assert_eq!(s.currency, "USD");
        assert_eq!(s.exchange_rate_date, "daily_rate");
        assert!(s.enable_currency_conversion);
    }

    #[test]
    fn a_bad_currency_and_rate_date_are_both_reported() {
        let errors = WorkspaceSettings::try_from(WorkspaceFields {
            name: Some("Prod".into()),
            currency: Some("dollars".into()),
            exchange_rate_date: Some("weekly".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
