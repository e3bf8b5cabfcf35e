//! The resource catalog: the platform's APIs and the user and application
//! scopes each offers. Loaded once at startup from TOML; a broken catalog stops
//! the server with a message that names the problem.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

/// The catalog shipped with the server, used unless `--catalog` names another.
pub const DEFAULT_CATALOG: &str = include_str!("../../catalog.toml");

/// Reserved for refresh-token requests in the authorization code flow; no
/// resource may define it.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Whether a scope is used on behalf of a user or by the application alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeSet {
    User,
    Application,
}

impl ScopeSet {
    pub fn noun(self) -> &'static str {
        match self {
            ScopeSet::User => "user scope",
            ScopeSet::Application => "application scope",
        }
    }

    /// The noun with its indefinite article, for sentences.
    pub fn a_noun(self) -> &'static str {
        match self {
            ScopeSet::User => "a user scope",
            ScopeSet::Application => "an application scope",
        }
    }
}

/// One API of the platform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(skip)]
    pub id: String,
    pub display_name: String,
    pub description: String,
    /// Scope name -> description.
    #[serde(default)]
    pub user_scopes: BTreeMap<String, String>,
    /// Scope name -> description.
    #[serde(default)]
    pub application_scopes: BTreeMap<String, String>,
}

impl Resource {
    pub fn scopes(&self, set: ScopeSet) -> &BTreeMap<String, String> {
        match set {
            ScopeSet::User => &self.user_scopes,
            ScopeSet::Application => &self.application_scopes,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    resources: BTreeMap<String, Resource>,
}

/// The validated catalog, with resources in ascending order of ID.
#[derive(Debug, Clone)]
pub struct Catalog {
    resources: BTreeMap<String, Resource>,
    /// Per set, scope name -> resource ID, for finding a token's audience.
    owners: HashMap<ScopeSet, HashMap<String, String>>,
}

impl Catalog {
    /// Parses and validates a catalog. The error names the first problem found.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.resources.is_empty() {
            return Err("the catalog defines no resource".into());
        }
        let mut owners: HashMap<ScopeSet, HashMap<String, String>> = HashMap::new();
        let mut resources = BTreeMap::new();
        for (id, mut resource) in file.resources {
            check_identifier(&id).map_err(|why| format!("resource ID `{id}` {why}"))?;
            if resource.display_name.trim().is_empty() {
                return Err(format!("resource `{id}` has an empty display_name"));
            }
            if resource.user_scopes.is_empty() && resource.application_scopes.is_empty() {
                return Err(format!("resource `{id}` defines no scope"));
            }
            for set in [ScopeSet::User, ScopeSet::Application] {
                for scope in resource.scopes(set).keys() {
                    check_scope_name(scope).map_err(|why| {
                        format!("resource `{id}`: {} `{scope}` {why}", set.noun())
                    })?;
                    if let Some(other) = owners
                        .entry(set)
                        .or_default()
                        .insert(scope.clone(), id.clone())
                    {
                        return Err(format!(
                            "{} `{scope}` is defined by both resource `{other}` and resource `{id}`",
                            set.noun()
                        ));
                    }
                }
            }
            resource.id = id.clone();
            resources.insert(id, resource);
        }
        Ok(Self { resources, owners })
    }

    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.get(id)
    }

    /// The resource that defines `scope` in `set`, if any.
    pub fn owner_of(&self, set: ScopeSet, scope: &str) -> Option<&str> {
        self.owners
            .get(&set)
            .and_then(|scopes| scopes.get(scope))
            .map(String::as_str)
    }
}

fn check_identifier(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter
        || id.len() > 64
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(
            "must start with a letter and hold at most 64 letters, digits, `.`, `_` or `-`".into(),
        );
    }
    Ok(())
}

/// A scope is an RFC 6749 `scope-token` (printable ASCII, no space, `"` or `\`);
/// we narrow it to the identifier shape every real catalog uses.
fn check_scope_name(scope: &str) -> Result<(), String> {
    if scope == OFFLINE_ACCESS {
        return Err(format!(
            "is reserved: `{OFFLINE_ACCESS}` asks for a refresh token"
        ));
    }
    check_identifier(scope).map_err(|_| {
        "must start with a letter and hold at most 64 letters, digits, `.`, `_` or `-`".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_is_valid() {
        let catalog = Catalog::from_toml(DEFAULT_CATALOG).unwrap();
        let or = catalog.resource("OR").unwrap();
        assert!(or.user_scopes.contains_key("OR.Jobs"));
        assert!(or.application_scopes.contains_key("OR.Jobs.Read"));
        let data = catalog.resource("DataService").unwrap();
        assert!(data.application_scopes.is_empty());
        assert_eq!(catalog.owner_of(ScopeSet::User, "PM.Users"), Some("PM"));
    }

    #[test]
    fn names_the_problem() {
        let dup = r#"
            [resources.A]
            display_name = "A"
            description = ""
            user_scopes = { "X.Read" = "" }
            [resources.B]
            display_name = "B"
            description = ""
            user_scopes = { "X.Read" = "" }
        "#;
        let err = Catalog::from_toml(dup).unwrap_err();
        assert!(
            err.contains("`X.Read` is defined by both resource `A` and resource `B`"),
            "{err}"
        );

        let empty = "[resources.A]\ndisplay_name = \"A\"\ndescription = \"\"\n";
        assert_eq!(
            Catalog::from_toml(empty).unwrap_err(),
            "resource `A` defines no scope"
        );

        let spaced = "[resources.A]\ndisplay_name = \"A\"\ndescription = \"\"\napplication_scopes = { \"a b\" = \"\" }\n";
        assert!(
            Catalog::from_toml(spaced)
                .unwrap_err()
                .contains("application scope `a b`")
        );

        let unknown = "[resources.A]\ndisplay_name = \"A\"\ndescription = \"\"\nscopes = []\n";
        assert!(
            Catalog::from_toml(unknown)
                .unwrap_err()
                .contains("unknown field `scopes`")
        );
    }
}
