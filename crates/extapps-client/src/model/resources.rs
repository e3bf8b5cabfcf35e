//! Resources: the platform's APIs and the scopes each offers.

use crate::v1;

/// One of the platform's APIs, and the scopes it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub display_name: String,
    pub description: String,
    /// `(name, description)` of the scopes that need a signed-in user.
    pub user_scopes: Vec<(String, String)>,
    /// `(name, description)` of the scopes an application holds by itself.
    pub application_scopes: Vec<(String, String)>,
}

impl From<v1::Resource> for Resource {
    fn from(resource: v1::Resource) -> Self {
        let scopes = |scopes: Vec<v1::Scope>| {
            scopes
                .into_iter()
                .map(|scope| (scope.name, scope.description))
                .collect()
        };
        Self {
            id: resource.id,
            display_name: resource.display_name,
            description: resource.description,
            user_scopes: scopes(resource.user_scopes),
            application_scopes: scopes(resource.application_scopes),
        }
    }
}
