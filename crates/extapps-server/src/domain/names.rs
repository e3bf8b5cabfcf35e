//! Identifiers and resource names (AIP-122):
//! `organizations/{organization}` and
//! `organizations/{organization}/applications/{client_id}`.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::FieldViolation;

/// An organization identifier: 1 to 63 lowercase letters, digits and hyphens,
/// starting with a letter or digit and not ending with a hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrganizationId(String);

impl OrganizationId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let valid_chars = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if value.is_empty() || value.len() > 63 || !valid_chars {
            return Err("must be 1 to 63 lowercase letters, digits or hyphens".into());
        }
        if value.starts_with('-') || value.ends_with('-') {
            return Err("must not start or end with a hyphen".into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `organizations/{organization}`.
    pub fn resource_name(&self) -> String {
        format!("organizations/{}", self.0)
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The OAuth client ID of an application: a server-assigned UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(Uuid);

impl ClientId {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Accepts only the canonical lowercase hyphenated form, so that every
    /// client ID has one spelling.
    pub fn parse(value: &str) -> Option<Self> {
        canonical_uuid(value).map(Self)
    }
}

/// A UUID in its canonical lowercase hyphenated form only, so that every
/// ID has one spelling.
fn canonical_uuid(value: &str) -> Option<Uuid> {
    let uuid = Uuid::parse_str(value).ok()?;
    (uuid.hyphenated().to_string() == value).then_some(uuid)
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A parsed `organizations/{organization}/applications/{client_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationName {
    pub organization: OrganizationId,
    pub client_id: ClientId,
}

impl ApplicationName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let shape = || {
            FieldViolation::new(
                field,
                "must be `organizations/{organization}/applications/{client_id}`",
            )
        };
        let rest = value.strip_prefix("organizations/").ok_or_else(shape)?;
        let (organization, client_id) = rest.split_once("/applications/").ok_or_else(shape)?;
        let organization = OrganizationId::parse(organization)
            .map_err(|why| FieldViolation::new(field, format!("organization {why}")))?;
        let client_id = ClientId::parse(client_id).ok_or_else(|| {
            FieldViolation::new(field, "client ID must be a lowercase hyphenated UUID")
        })?;
        Ok(Self {
            organization,
            client_id,
        })
    }
}

impl fmt::Display for ApplicationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "organizations/{}/applications/{}",
            self.organization, self.client_id
        )
    }
}

/// A parsed
/// `organizations/{organization}/applications/{client_id}/secrets/{secret_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretName {
    pub application: ApplicationName,
    pub secret_id: Uuid,
}

impl SecretName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let (application, secret_id) = parse_child(field, value, "secrets", "secret_id", "secret")?;
        Ok(Self {
            application,
            secret_id,
        })
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/secrets/{}", self.application, self.secret_id)
    }
}

/// A parsed
/// `organizations/{organization}/applications/{client_id}/keys/{key_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName {
    pub application: ApplicationName,
    pub key_id: Uuid,
}

impl KeyName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let (application, key_id) = parse_child(field, value, "keys", "key_id", "key")?;
        Ok(Self {
            application,
            key_id,
        })
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/keys/{}", self.application, self.key_id)
    }
}

/// A parsed `organizations/{organization}/applications/{client_id}/federatedCredentials/{credential_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredentialName {
    pub application: ApplicationName,
    pub credential_id: Uuid,
}

impl FederatedCredentialName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldViolation> {
        let (application, credential_id) = parse_child(
            field,
            value,
            "federatedCredentials",
            "credential_id",
            "federated credential",
        )?;
        Ok(Self {
            application,
            credential_id,
        })
    }
}

impl fmt::Display for FederatedCredentialName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/federatedCredentials/{}",
            self.application, self.credential_id
        )
    }
}

/// `{application}/{collection}/{id}`: an application's name, then a UUID in
/// its canonical spelling.
fn parse_child(
    field: &str,
    value: &str,
    collection: &str,
    id: &str,
    noun: &str,
) -> Result<(ApplicationName, Uuid), FieldViolation> {
    let shape = || {
        FieldViolation::new(
            field,
            format!(
                "must be `organizations/{{organization}}/applications/{{client_id}}/{collection}/{{{id}}}`"
            ),
        )
    };
    let (application, child) = value
        .rsplit_once(&format!("/{collection}/"))
        .ok_or_else(shape)?;
    let application = ApplicationName::parse(field, application)?;
    let child = canonical_uuid(child).ok_or_else(|| {
        FieldViolation::new(
            field,
            format!("{noun} ID must be a lowercase hyphenated UUID"),
        )
    })?;
    Ok((application, child))
}

/// Parses `organizations/{organization}`.
pub fn parse_organization_name(field: &str, value: &str) -> Result<OrganizationId, FieldViolation> {
    let id = value
        .strip_prefix("organizations/")
        .ok_or_else(|| FieldViolation::new(field, "must be `organizations/{organization}`"))?;
    OrganizationId::parse(id)
        .map_err(|why| FieldViolation::new(field, format!("organization {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_secret_name_parses_only_in_its_canonical_spelling() {
        let name = "organizations/acme/applications/6f1c1a36-4b1e-4c1e-9a0e-2b7d3c4d5e6f\
                    /secrets/0b9d7c2e-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
        let parsed = SecretName::parse("name", name).unwrap();
        assert_eq!(parsed.to_string(), name);
        assert_eq!(parsed.application.organization.to_string(), "acme");
        for bad in [
            name.replace("/secrets/", "/secret/"),
            name.to_uppercase(),
            name.replace("0b9d7c2e-", "0b9d7c2e"),
            format!("{name}/"),
            name.replace("applications", "apps"),
        ] {
            assert!(SecretName::parse("name", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_key_name_parses_only_as_a_key_of_an_application() {
        let name = "organizations/acme/applications/6f1c1a36-4b1e-4c1e-9a0e-2b7d3c4d5e6f\
                    /keys/0b9d7c2e-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
        let parsed = KeyName::parse("name", name).unwrap();
        assert_eq!(parsed.to_string(), name);
        let secret = name.replace("/keys/", "/secrets/");
        assert!(KeyName::parse("name", &secret).is_err());
        assert!(SecretName::parse("name", name).is_err());
        let refused = KeyName::parse("name", &name.replace("0b9d7c2e-", "0B9D7C2E-")).unwrap_err();
        assert_eq!(
            refused.description,
            "key ID must be a lowercase hyphenated UUID"
        );
    }

    #[test]
    fn application_name_round_trips() {
        let name = ApplicationName {
            organization: OrganizationId::parse("acme-1").unwrap(),
            client_id: ClientId::generate(),
        };
        assert_eq!(
            ApplicationName::parse("name", &name.to_string()).unwrap(),
            name
        );
    }

    #[test]
    fn rejects_non_canonical_client_ids() {
        let id = ClientId::generate().to_string();
        assert!(ClientId::parse(&id.to_uppercase()).is_none());
        assert!(ClientId::parse(&id.replace('-', "")).is_none());
        assert!(ClientId::parse(&id).is_some());
    }

    #[test]
    fn rejects_bad_organizations() {
        for bad in ["", "-a", "a-", "A", "a_b", "a/b", &"a".repeat(64)] {
            assert!(OrganizationId::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        /// A name parses exactly when it is the one spelling of what it
        /// names: what parses prints back as the same text, and what does
        /// not is refused on the field it came in.
        #[test]
        fn names_parse_exactly_when_they_are_canonical(s in prop_oneof![
            ".*",
            "organizations/[a-z0-9-]{0,5}(/applications/[0-9a-fA-F-]{0,40})?",
        ]) {
            match ApplicationName::parse("name", &s) {
                Ok(name) => prop_assert_eq!(name.to_string(), s.clone()),
                Err(violation) => prop_assert_eq!(violation.field, "name"),
            }
            match parse_organization_name("parent", &s) {
                Ok(organization) => prop_assert_eq!(organization.resource_name(), s.clone()),
                Err(violation) => prop_assert_eq!(violation.field, "parent"),
            }
        }

        #[test]
        fn any_application_name_round_trips(
            organization in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            id in any::<u128>(),
        ) {
            let name = ApplicationName {
                organization: OrganizationId::parse(&organization).unwrap(),
                client_id: ClientId::from_uuid(Uuid::from_u128(id)),
            };
            prop_assert_eq!(ApplicationName::parse("name", &name.to_string()), Ok(name));
        }

        #[test]
        fn valid_organizations_parse(s in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?") {
            let parsed = OrganizationId::parse(&s).unwrap();
            prop_assert_eq!(parsed.as_str(), s.as_str());
        }
    }
}
