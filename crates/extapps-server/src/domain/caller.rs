//! Who is calling: the caller key behind `authorization: Bearer`, and what its
//! role allows (SPEC section 6).

use std::fmt;

use super::error::Error;
use super::names::OrganizationId;

/// The role of a caller key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Manages the applications of one organization.
    Admin,
    /// A resource server: introspects tokens.
    Introspect,
    /// The platform's sign-in front end: answers authorization requests and
    /// manages what users authorized.
    Signin,
    /// Manages every organization.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Introspect => "introspect",
            Role::Signin => "signin",
            Role::Operator => "operator",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "admin" => Some(Role::Admin),
            "introspect" => Some(Role::Introspect),
            "signin" => Some(Role::Signin),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub role: Role,
    /// `None` for operator keys and platform-wide `introspect` and `signin`
    /// keys, which see every organization.
    pub organization: Option<OrganizationId>,
    /// Resources an `introspect` key is bound to; empty means all.
    pub resources: Vec<String>,
}

impl Caller {
    /// The caller may administer applications (of some organization).
    pub fn require_admin(&self, call: &str) -> Result<(), Error> {
        match self.role {
            Role::Admin | Role::Operator => Ok(()),
            role => Err(Error::role_not_allowed(role.as_str(), call)),
        }
    }

    /// The caller has one of `roles`.
    pub fn require_role(&self, roles: &[Role], call: &str) -> Result<(), Error> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::role_not_allowed(self.role.as_str(), call))
        }
    }

    /// Whether the caller may see data of `organization`. Callers that may not
    /// get `NOT_FOUND`, as if the data did not exist.
    pub fn sees(&self, organization: &OrganizationId) -> bool {
        match &self.organization {
            Some(own) => own == organization,
            None => self.spans_organizations(),
        }
    }

    /// Whether the key serves every organization: an operator key, or an
    /// `introspect` or `signin` key created platform-wide.
    pub fn spans_organizations(&self) -> bool {
        self.organization.is_none()
            && matches!(self.role, Role::Operator | Role::Introspect | Role::Signin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, org: Option<&str>) -> Caller {
        Caller {
            key_id: "k".into(),
            role,
            organization: org.map(|o| OrganizationId::parse(o).unwrap()),
            resources: vec![],
        }
    }

    #[test]
    fn admins_see_only_their_organization() {
        let acme = OrganizationId::parse("acme").unwrap();
        let other = OrganizationId::parse("other").unwrap();
        assert!(caller(Role::Admin, Some("acme")).sees(&acme));
        assert!(!caller(Role::Admin, Some("acme")).sees(&other));
        assert!(caller(Role::Operator, None).sees(&other));
    }

    #[test]
    fn introspect_keys_see_their_organization_unless_platform_wide() {
        let acme = OrganizationId::parse("acme").unwrap();
        let other = OrganizationId::parse("other").unwrap();
        let bound = caller(Role::Introspect, Some("acme"));
        assert!(bound.sees(&acme) && !bound.sees(&other));
        assert!(!bound.spans_organizations());
        let wide = caller(Role::Introspect, None);
        assert!(wide.sees(&acme) && wide.sees(&other));
        assert!(wide.spans_organizations());
        // An admin key without an organization (never created) sees nothing.
        assert!(!caller(Role::Admin, None).sees(&acme));
    }

    #[test]
    fn only_admins_and_operators_administer() {
        assert!(caller(Role::Admin, Some("a")).require_admin("X").is_ok());
        assert!(caller(Role::Operator, None).require_admin("X").is_ok());
        for role in [Role::Introspect, Role::Signin] {
            assert!(matches!(
                caller(role, Some("a")).require_admin("X"),
                Err(Error::PermissionDenied { .. })
            ));
        }
    }
}
