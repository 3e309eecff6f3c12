//! A user of an account's directory (Vantage's `User`): a name, an address and a role. `user_tokens` on
//! budget alerts, report notifications and anomaly notifications name users, and their messages go to the
//! user's address. costd has no sign-in of its own (API tokens are the callers), so a user is an address
//! book entry the operator adds (`costd user add`); Vantage's API lists and shows them.

use chrono::{DateTime, Utc};

/// What a user may do in Vantage's console; costd keeps it for the clients that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Editor,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Editor => "Editor",
            Role::Viewer => "Viewer",
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            _ => Err(format!("role must be Owner, Admin, Editor or Viewer, got {text:?}")),
        }
    }
}

/// A user to add, checked: a real address (lower-cased, so one person is one entry), a name if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
}

impl NewUser {
    /// Every problem listed, by field.
    pub fn parse(email: &str, name: Option<&str>, role: Option<&str>) -> Result<NewUser, Vec<String>> {
        let mut errors = Vec::new();
        let email = email.trim().to_lowercase();
        if !crate::billing_profile::is_email(&email) {
            errors.push(format!("email must be an email address, got {email:?}"));
        }
        let name = name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
        if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            errors.push("name must be at most 200 characters".into());
        }
        let role = match role.map(Role::parse).unwrap_or(Ok(Role::Admin)) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                Role::Admin
            }
        };
        if errors.is_empty() {
            Ok(NewUser { email, name, role })
        } else {
            Err(errors)
        }
    }
}

/// A user of an account's directory (see `model::user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub token: String,
    pub name: Option<String>,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_a_lower_cased_address_with_a_role() {
        let u = NewUser::parse(" Ana@Example.COM ", Some(" Ana "), Some("viewer")).unwrap();
        assert_eq!(u, NewUser { email: "ana@example.com".into(), name: Some("Ana".into()), role: Role::Viewer });
        assert_eq!(NewUser::parse("b@example.com", None, None).unwrap().role, Role::Admin);
        let e = NewUser::parse("not an address", Some(&"x".repeat(201)), Some("boss")).unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("email must be") && e[1].starts_with("name must") && e[2].starts_with("role must"));
    }
}
