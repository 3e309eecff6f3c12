//! A user of an account's directory (Vantage's `User`): a name, an address and a role. `user_tokens` on
//! budget alerts, report notifications and anomaly notifications name users, and their messages go to the
//! user's address. costd has no sign-in of its own yet (API tokens are the callers): a user is a directory
//! entry the operator adds (`costd user add`), which Vantage's API lists and shows, and a token a user owns
//! (`costd token create --user`) may do what the user's role allows ([`Role::may_write`], docs/access.md).

use chrono::{DateTime, Utc};

/// What a user may do in Vantage's console; costd keeps it for the clients that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Editor,
    /// An Editor who also manages integrations (and the costs uploaded into them), but not users.
    IntegrationOwner,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Editor => "Editor",
            Role::IntegrationOwner => "Integration Owner",
            Role::Viewer => "Viewer",
        }
    }

    /// Whether a token its user owns may make the write to `path` (a `/v2` path, prefix or not): a Viewer
    /// changes nothing, an Editor everything but users and integrations (and the costs uploaded into
    /// them), an Integration Owner everything but users, an Admin or Owner anything its token's scopes
    /// allow. `Err` says why not.
    pub fn may_write(self, path: &str) -> Result<(), String> {
        let path = path.strip_prefix("/v2").unwrap_or(path);
        let under = |collection: &str| {
            path.strip_prefix(collection).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        match self {
            Role::Viewer => Err("this token's user is a Viewer, who can read but not change anything".into()),
            Role::Editor if under("/users") || under("/integrations") => {
                Err("this token's user is an Editor, who cannot manage users or integrations".into())
            }
            Role::IntegrationOwner if under("/users") => {
                Err("this token's user is an Integration Owner, who cannot manage users".into())
            }
            _ => Ok(()),
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "integration owner" | "integration_owner" | "integration-owner" => Ok(Role::IntegrationOwner),
            "viewer" => Ok(Role::Viewer),
            _ => Err(format!("role must be Owner, Admin, Editor, Integration Owner or Viewer, got {text:?}")),
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
    fn a_role_bounds_the_writes_of_its_users_tokens() {
        assert!(Role::Viewer.may_write("/v2/billing_rules").is_err());
        assert!(Role::Editor.may_write("/v2/billing_rules").is_ok());
        for path in ["/integrations/custom_provider", "/v2/integrations/intgr_1/costs.csv", "/users/usr_1"] {
            assert!(Role::Editor.may_write(path).unwrap_err().contains("Editor"), "{path}");
            assert!(Role::Admin.may_write(path).is_ok() && Role::Owner.may_write(path).is_ok(), "{path}");
        }
        assert!(Role::Editor.may_write("/integrations_x").is_ok(), "a collection is a whole path segment");
        assert!(Role::IntegrationOwner.may_write("/integrations/custom_provider").is_ok());
        assert!(Role::IntegrationOwner.may_write("/v2/users/usr_1").unwrap_err().contains("Integration Owner"));
        assert_eq!(Role::parse("integration owner"), Ok(Role::IntegrationOwner));
        assert_eq!(Role::parse(Role::IntegrationOwner.as_str()), Ok(Role::IntegrationOwner));
    }

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
