//! Which scopes a request gets (RFC 6749 section 3.3), grant by grant: the
//! client credentials grant (application scopes), the authorization request
//! (user scopes and `offline_access`), the user's consent, and a refresh
//! that narrows what was consented. What is granted to the application now,
//! and what was removed since a decision, is the caller's to work out; these
//! rules only choose among the scopes they are given.

use std::collections::BTreeSet;

use super::Violations;
use super::catalog::{Catalog, OFFLINE_ACCESS, ScopeSet};
use super::oauth::OAuthError;

/// The scopes of a request, split: user scopes, and whether
/// `offline_access` is among them. `Err` names the first scope that is not
/// one of `allowed`.
pub fn split_scopes<'a>(
    requested: impl IntoIterator<Item = &'a str>,
    allowed: &BTreeSet<&str>,
) -> Result<(BTreeSet<String>, bool), &'a str> {
    let mut scopes = BTreeSet::new();
    let mut offline = false;
    for scope in requested {
        if scope == OFFLINE_ACCESS {
            offline = true;
        } else if allowed.contains(scope) {
            scopes.insert(scope.to_owned());
        } else {
            return Err(scope);
        }
    }
    Ok((scopes, offline))
}

/// The application scopes a client credentials request gets: those asked
/// for (separated by any white space), or every granted one if none are.
/// `Err` names the first scope asked for that is not granted.
pub fn client_credentials_scopes<'a>(
    requested: Option<&'a str>,
    granted: &BTreeSet<&str>,
) -> Result<Vec<String>, &'a str> {
    let mut chosen = BTreeSet::new();
    for scope in requested.into_iter().flat_map(str::split_whitespace) {
        if !granted.contains(scope) {
            return Err(scope);
        }
        chosen.insert(scope);
    }
    let chosen = if chosen.is_empty() { granted } else { &chosen };
    Ok(chosen.iter().map(|s| s.to_string()).collect())
}

/// The user scopes an authorization request asks for (separated by single
/// spaces), and whether it asks for `offline_access`: every granted user
/// scope if it names none. `Err` names the first scope that is not granted.
pub fn authorization_scopes<'a>(
    requested: Option<&'a str>,
    granted: &BTreeSet<&str>,
) -> Result<(BTreeSet<String>, bool), &'a str> {
    let requested = requested.unwrap_or_default().split(' ');
    let (scopes, offline_access) = split_scopes(requested.filter(|s| !s.is_empty()), granted)?;
    if scopes.is_empty() {
        return Ok((
            granted.iter().map(|s| s.to_string()).collect(),
            offline_access,
        ));
    }
    Ok((scopes, offline_access))
}

/// What the user consented to, of what the request asked for and the
/// application still holds (`requested`), and whether that includes
/// `offline_access` (only if the request asked for it). Anything else is a
/// violation of `scopes[i]` (the first hundred named); a consent that
/// leaves no scope is a violation of `scopes`, unless something else is
/// wrong already.
pub fn consented_scopes(
    consented: &[String],
    requested: &BTreeSet<String>,
    offline_requested: bool,
    violations: &mut Violations,
) -> (BTreeSet<String>, bool) {
    let mut scopes = BTreeSet::new();
    let mut offline_access = false;
    for (i, scope) in consented.iter().enumerate() {
        if scope == OFFLINE_ACCESS && offline_requested {
            offline_access = true;
        } else if requested.contains(scope) {
            scopes.insert(scope.clone());
        } else if i < 100 {
            violations.push(
                format!("scopes[{i}]"),
                "was not requested by the application (or is no longer granted to it)",
            );
        }
    }
    if scopes.is_empty() && !consented.is_empty() && violations.is_empty() {
        violations.push(
            "scopes",
            "must hold at least one scope besides `offline_access`",
        );
    }
    (scopes, offline_access)
}

/// The scopes a refresh issues: of those the grant still holds (`kept`),
/// the ones the request names (separated by single spaces), all of them if
/// it names none. A request may only name scopes the user consented to
/// (RFC 6749 section 6); `Err` names the first that is not.
pub fn refresh_scopes<'a>(
    kept: BTreeSet<String>,
    consented: &BTreeSet<String>,
    requested: Option<&'a str>,
) -> Result<BTreeSet<String>, &'a str> {
    let Some(requested) = requested else {
        return Ok(kept);
    };
    let consented: BTreeSet<&str> = consented.iter().map(String::as_str).collect();
    let (narrowed, _) = split_scopes(requested.split(' ').filter(|s| !s.is_empty()), &consented)?;
    if narrowed.is_empty() {
        return Ok(kept);
    }
    Ok(kept.into_iter().filter(|s| narrowed.contains(s)).collect())
}

/// The `invalid_scope` error for a scope not granted in `set`, naming it
/// only if the catalog knows it (client input is never echoed).
pub fn scope_refused(catalog: &Catalog, scope: &str, set: ScopeSet) -> OAuthError {
    let known = catalog.owner_of(ScopeSet::Application, scope).is_some()
        || catalog.owner_of(ScopeSet::User, scope).is_some();
    OAuthError::InvalidScope(if known {
        format!("`{scope}` is not {} granted to this client", set.a_noun())
    } else {
        format!(
            "a requested scope is not {} granted to this client",
            set.a_noun()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(scopes: &[&str]) -> BTreeSet<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    const GRANTED: [&str; 2] = ["OR.Jobs", "OR.Queues"];

    #[test]
    fn scopes_split_off_offline_access() {
        let allowed: BTreeSet<&str> = GRANTED.into();
        let (scopes, offline) =
            split_scopes(["OR.Jobs", "offline_access", "OR.Jobs"], &allowed).unwrap();
        assert_eq!(scopes, set(&["OR.Jobs"]));
        assert!(offline);
        assert_eq!(split_scopes(["OR.Assets"], &allowed), Err("OR.Assets"));
    }

    #[test]
    fn client_credentials_get_what_they_ask_for_or_everything_granted() {
        let granted: BTreeSet<&str> = GRANTED.into();
        let all = vec!["OR.Jobs".to_owned(), "OR.Queues".to_owned()];
        assert_eq!(client_credentials_scopes(None, &granted), Ok(all.clone()));
        assert_eq!(
            client_credentials_scopes(Some(""), &granted),
            Ok(all.clone())
        );
        assert_eq!(client_credentials_scopes(Some(" \t "), &granted), Ok(all));
        assert_eq!(
            client_credentials_scopes(Some("OR.Queues\tOR.Queues"), &granted),
            Ok(vec!["OR.Queues".to_owned()])
        );
        assert_eq!(
            client_credentials_scopes(Some("OR.Jobs OR.Assets"), &granted),
            Err("OR.Assets")
        );
        // Only user-context requests may ask for refresh tokens.
        assert_eq!(
            client_credentials_scopes(Some("offline_access"), &granted),
            Err("offline_access")
        );
    }

    #[test]
    fn an_authorization_request_gets_every_user_scope_unless_it_names_some() {
        let granted: BTreeSet<&str> = GRANTED.into();
        assert_eq!(
            authorization_scopes(None, &granted),
            Ok((set(&GRANTED), false))
        );
        assert_eq!(
            authorization_scopes(Some("offline_access"), &granted),
            Ok((set(&GRANTED), true))
        );
        assert_eq!(
            authorization_scopes(Some("OR.Jobs  offline_access"), &granted),
            Ok((set(&["OR.Jobs"]), true))
        );
        assert_eq!(
            authorization_scopes(Some("OR.Jobs OR.Nope"), &granted),
            Err("OR.Nope")
        );
        // Scopes are separated by spaces only (RFC 6749 section 3.3).
        assert_eq!(
            authorization_scopes(Some("OR.Jobs\tOR.Queues"), &granted),
            Err("OR.Jobs\tOR.Queues")
        );
    }

    #[test]
    fn consent_covers_only_what_was_asked_for() {
        let requested = set(&GRANTED);
        let consent = |scopes: &[&str], offline_requested| {
            let mut violations = Violations::default();
            let consented: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            let chosen =
                consented_scopes(&consented, &requested, offline_requested, &mut violations);
            let fields = violations.fields();
            (chosen, fields)
        };
        assert_eq!(
            consent(&["OR.Jobs", "offline_access"], true),
            ((set(&["OR.Jobs"]), true), vec![])
        );
        assert_eq!(
            consent(&["OR.Jobs", "offline_access"], false),
            ((set(&["OR.Jobs"]), false), vec!["scopes[1]".to_owned()])
        );
        assert_eq!(
            consent(&["offline_access"], true),
            ((set(&[]), true), vec!["scopes".to_owned()])
        );
        assert_eq!(
            consent(&["OR.Assets"], true),
            ((set(&[]), false), vec!["scopes[0]".to_owned()]),
            "one violation is enough: no second one for the empty result"
        );
        assert_eq!(consent(&[], true), ((set(&[]), false), vec![]));
        let many: Vec<&str> = vec!["OR.Nope"; 150];
        assert_eq!(consent(&many, false).1.len(), 100);
    }

    #[test]
    fn a_refresh_narrows_but_never_widens() {
        let consented = set(&GRANTED);
        let kept = set(&["OR.Jobs"]);
        assert_eq!(
            refresh_scopes(kept.clone(), &consented, None),
            Ok(kept.clone())
        );
        assert_eq!(
            refresh_scopes(set(&GRANTED), &consented, Some("OR.Queues")),
            Ok(set(&["OR.Queues"]))
        );
        // Consented once but no longer kept: asking does not bring it back.
        assert_eq!(
            refresh_scopes(kept.clone(), &consented, Some("OR.Queues")),
            Ok(set(&[]))
        );
        assert_eq!(
            refresh_scopes(kept.clone(), &consented, Some("offline_access")),
            Ok(kept.clone())
        );
        assert_eq!(
            refresh_scopes(kept, &consented, Some("OR.Assets")),
            Err("OR.Assets")
        );
    }

    #[test]
    fn a_refused_scope_is_named_only_if_the_catalog_knows_it() {
        let catalog = Catalog::from_toml(crate::domain::catalog::DEFAULT_CATALOG).unwrap();
        let named = scope_refused(&catalog, "OR.Jobs", ScopeSet::Application);
        assert!(named.description().contains("`OR.Jobs`"), "{named:?}");
        let secret_looking = scope_refused(&catalog, "extapps_cs_leaked", ScopeSet::User);
        assert_eq!(secret_looking.code(), "invalid_scope");
        assert!(!secret_looking.description().contains("leaked"));
    }

    proptest! {
        #[test]
        fn requested_scopes_split_into_the_allowed_ones_and_offline_access(
            requested in proptest::collection::vec(
                proptest::sample::select(vec!["OR.Jobs", "OR.Queues", "offline_access", "OR.Nope"]),
                0..6,
            ),
        ) {
            let allowed: BTreeSet<&str> = GRANTED.into();
            match split_scopes(requested.iter().copied(), &allowed) {
                Ok((scopes, offline)) => {
                    prop_assert!(!requested.contains(&"OR.Nope"));
                    prop_assert_eq!(offline, requested.contains(&OFFLINE_ACCESS));
                    let expected: BTreeSet<String> = requested
                        .iter()
                        .filter(|s| **s != OFFLINE_ACCESS)
                        .map(|s| s.to_string())
                        .collect();
                    prop_assert_eq!(scopes, expected);
                }
                Err(refused) => {
                    prop_assert_eq!(refused, "OR.Nope");
                }
            }
        }

        #[test]
        fn a_refresh_gets_a_subset_of_what_the_grant_keeps(
            kept in proptest::collection::btree_set(
                proptest::sample::select(vec!["OR.Jobs", "OR.Queues"]).prop_map(str::to_owned),
                0..3,
            ),
            requested in proptest::option::of(proptest::collection::vec(
                proptest::sample::select(vec!["OR.Jobs", "OR.Queues", "offline_access"]),
                0..4,
            )),
        ) {
            let requested = requested.map(|r| r.join(" "));
            let got = refresh_scopes(kept.clone(), &set(&GRANTED), requested.as_deref()).unwrap();
            prop_assert!(got.is_subset(&kept));
            let named: BTreeSet<&str> = requested
                .as_deref()
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty() && *s != OFFLINE_ACCESS)
                .collect();
            if named.is_empty() {
                prop_assert_eq!(got, kept);
            } else {
                prop_assert!(got.iter().all(|s| named.contains(s.as_str())));
            }
        }
    }
}
