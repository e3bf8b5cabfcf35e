//! The scopes granted to an application, per resource (SPEC rules 3 and 4).
//!
//! "Grant" has three meanings in extapps, each with its own name: an
//! administrator's grant of scopes to an application (here, `ScopeGrants`;
//! the API's `grants` and `ResourceGrant`), a user's authorization of an
//! application (a user grant, [`super::user_grant`]), and the kind of a
//! token request (the OAuth `grant_type`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::application_type::ApplicationType;
use super::catalog::{Catalog, ScopeSet};
use super::error::Violations;

/// The scopes granted on one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceGrant {
    pub user_scopes: BTreeSet<String>,
    pub application_scopes: BTreeSet<String>,
}

/// A validated grant set: at least one scope, every resource and scope from
/// the catalog and in the right set. Keyed and ordered by resource ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeGrants(BTreeMap<String, ResourceGrant>);

/// A grant as it arrives in a request, before validation.
#[derive(Debug, Clone, Default)]
pub struct ResourceGrantInput {
    pub resource: String,
    pub user_scopes: Vec<String>,
    pub application_scopes: Vec<String>,
}

impl ScopeGrants {
    /// Validates requested grants for an application of type `app_type`.
    /// Violations are recorded under `field` (`application.grants`, `grants`).
    pub fn validate(
        field: &str,
        input: &[ResourceGrantInput],
        app_type: Option<ApplicationType>,
        catalog: &Catalog,
        violations: &mut Violations,
    ) -> Option<Self> {
        if input.is_empty() {
            violations.push(field, "grant at least one scope on one resource");
            return None;
        }
        let before = violations.len();
        let mut grants = BTreeMap::new();
        for (i, grant) in input.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let Some(resource) = catalog.resource(&grant.resource) else {
                let why = if grant.resource.is_empty() {
                    "is required".to_owned()
                } else {
                    format!(
                        "`{}` is not in the resource catalog (see ListResources)",
                        grant.resource
                    )
                };
                violations.push(format!("{at}.resource"), why);
                continue;
            };
            if grants.contains_key(&resource.id) {
                violations.push(
                    format!("{at}.resource"),
                    format!(
                        "`{}` is granted more than once; merge its scopes into one entry",
                        resource.id
                    ),
                );
                continue;
            }
            if grant.user_scopes.is_empty() && grant.application_scopes.is_empty() {
                violations.push(at.clone(), format!("grants no scope on `{}`", resource.id));
            }
            if app_type == Some(ApplicationType::NonConfidential)
                && !grant.application_scopes.is_empty()
            {
                violations.push(
                    format!("{at}.application_scopes"),
                    "a non-confidential application cannot have application scopes",
                );
            }
            let user = check_scopes(
                &at,
                ScopeSet::User,
                &grant.user_scopes,
                resource,
                violations,
            );
            let application = check_scopes(
                &at,
                ScopeSet::Application,
                &grant.application_scopes,
                resource,
                violations,
            );
            grants.insert(
                resource.id.clone(),
                ResourceGrant {
                    user_scopes: user,
                    application_scopes: application,
                },
            );
        }
        (violations.len() == before).then_some(Self(grants))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &ResourceGrant)> {
        self.0.iter()
    }

    /// The scopes of `set` granted on any resource.
    pub fn scopes(&self, set: ScopeSet) -> impl Iterator<Item = &str> {
        self.0
            .values()
            .flat_map(move |g| match set {
                ScopeSet::User => g.user_scopes.iter(),
                ScopeSet::Application => g.application_scopes.iter(),
            })
            .map(String::as_str)
    }

    /// Whether `scope` is granted in `set` on any resource.
    pub fn grants(&self, set: ScopeSet, scope: &str) -> bool {
        self.0.values().any(|g| match set {
            ScopeSet::User => g.user_scopes.contains(scope),
            ScopeSet::Application => g.application_scopes.contains(scope),
        })
    }

    pub fn has_user_scopes(&self) -> bool {
        self.0.values().any(|g| !g.user_scopes.is_empty())
    }

    pub fn has_application_scopes(&self) -> bool {
        self.0.values().any(|g| !g.application_scopes.is_empty())
    }
}

fn check_scopes(
    at: &str,
    set: ScopeSet,
    scopes: &[String],
    resource: &super::catalog::Resource,
    violations: &mut Violations,
) -> BTreeSet<String> {
    let list = match set {
        ScopeSet::User => "user_scopes",
        ScopeSet::Application => "application_scopes",
    };
    let other = match set {
        ScopeSet::User => ScopeSet::Application,
        ScopeSet::Application => ScopeSet::User,
    };
    let mut seen = HashSet::new();
    let mut valid = BTreeSet::new();
    for (j, scope) in scopes.iter().enumerate() {
        let field = format!("{at}.{list}[{j}]");
        if !seen.insert(scope.as_str()) {
            violations.push(field, format!("`{scope}` is listed twice"));
        } else if resource.scopes(set).contains_key(scope) {
            valid.insert(scope.clone());
        } else if resource.scopes(other).contains_key(scope) {
            violations.push(
                field,
                format!(
                    "`{scope}` is {} of `{}`, not {}",
                    other.a_noun(),
                    resource.id,
                    set.a_noun()
                ),
            );
        } else {
            violations.push(
                field,
                format!("`{scope}` is not {} of `{}`", set.a_noun(), resource.id),
            );
        }
    }
    valid
}

/// Grants on the default catalog's `OR` resource, for tests of the rules
/// that read them.
#[cfg(test)]
pub(crate) fn orchestrator_grants(application: &[&str], user: &[&str]) -> ScopeGrants {
    let catalog = Catalog::from_toml(super::catalog::DEFAULT_CATALOG).unwrap();
    let input = [ResourceGrantInput {
        resource: "OR".into(),
        user_scopes: user.iter().map(|s| s.to_string()).collect(),
        application_scopes: application.iter().map(|s| s.to_string()).collect(),
    }];
    ScopeGrants::validate(
        "grants",
        &input,
        Some(ApplicationType::Confidential),
        &catalog,
        &mut Default::default(),
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::DEFAULT_CATALOG;

    fn grant(resource: &str, user: &[&str], app: &[&str]) -> ResourceGrantInput {
        ResourceGrantInput {
            resource: resource.into(),
            user_scopes: user.iter().map(|s| s.to_string()).collect(),
            application_scopes: app.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn check(input: &[ResourceGrantInput], t: ApplicationType) -> Result<ScopeGrants, Vec<String>> {
        let catalog = Catalog::from_toml(DEFAULT_CATALOG).unwrap();
        let mut v = Violations::default();
        match ScopeGrants::validate("grants", input, Some(t), &catalog, &mut v) {
            Some(g) if v.is_empty() => Ok(g),
            _ => Err(v.fields()),
        }
    }

    #[test]
    fn same_name_in_both_sets_is_two_grants() {
        let g = check(
            &[grant("OR", &["OR.Jobs"], &["OR.Jobs"])],
            ApplicationType::Confidential,
        )
        .unwrap();
        let (_, or) = g.iter().next().unwrap();
        assert!(or.user_scopes.contains("OR.Jobs") && or.application_scopes.contains("OR.Jobs"));
    }

    #[test]
    fn reports_every_problem_with_its_field() {
        let err = check(
            &[
                grant("OR", &["OR.Jobs", "OR.Jobs", "OR.Nope"], &[]),
                grant("OR", &["OR.Jobs"], &[]),
                grant("XX", &["a"], &[]),
                grant("DataService", &[], &["DataService.Data.Read"]),
                grant("PM", &[], &[]),
            ],
            ApplicationType::Confidential,
        )
        .unwrap_err();
        assert_eq!(
            err,
            [
                "grants[0].user_scopes[1]",
                "grants[0].user_scopes[2]",
                "grants[1].resource",
                "grants[2].resource",
                "grants[3].application_scopes[0]",
                "grants[4]",
            ]
        );
    }

    #[test]
    fn non_confidential_cannot_hold_application_scopes() {
        let err = check(
            &[grant("OR", &[], &["OR.Jobs"])],
            ApplicationType::NonConfidential,
        )
        .unwrap_err();
        assert_eq!(err, ["grants[0].application_scopes"]);
    }

    #[test]
    fn empty_grant_set_is_invalid() {
        assert_eq!(
            check(&[], ApplicationType::Confidential).unwrap_err(),
            ["grants"]
        );
    }

    proptest::proptest! {
        /// Any grants, of any scope strings (catalog names mixed with
        /// garbage): accepted only if every scope is the catalog's, in the
        /// right set, and never a panic.
        #[test]
        fn any_grants_validate_or_are_refused(
            input in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["OR", "PM", "", "NOPE"]),
                    proptest::collection::vec(
                        proptest::prop_oneof!["OR\\.[A-Za-z.]{0,12}", "PM\\.[A-Za-z.]{0,12}", ".{0,20}"],
                        0..4,
                    ),
                    proptest::collection::vec(
                        proptest::prop_oneof!["OR\\.[A-Za-z.]{0,12}", "PM\\.[A-Za-z.]{0,12}", ".{0,20}"],
                        0..4,
                    ),
                ),
                0..4,
            ),
            confidential in proptest::bool::ANY,
        ) {
            let input: Vec<ResourceGrantInput> = input
                .into_iter()
                .map(|(resource, user_scopes, application_scopes)| ResourceGrantInput {
                    resource: resource.to_owned(),
                    user_scopes,
                    application_scopes,
                })
                .collect();
            let t = if confidential { ApplicationType::Confidential } else { ApplicationType::NonConfidential };
            let catalog = Catalog::from_toml(DEFAULT_CATALOG).unwrap();
            if let Ok(grants) = check(&input, t) {
                for (resource, grant) in grants.iter() {
                    let known = catalog.resource(resource).unwrap();
                    proptest::prop_assert!(grant.user_scopes.iter().all(|s| known.user_scopes.contains_key(s)));
                    proptest::prop_assert!(grant.application_scopes.iter().all(|s| known.application_scopes.contains_key(s)));
                    proptest::prop_assert!(confidential || grant.application_scopes.is_empty());
                }
            }
        }
    }
}
