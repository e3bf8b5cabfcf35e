//! The rules of user authorization (RFC 6749 section 4.1, RFC 7636 PKCE,
//! RFC 8252 for native applications, RFC 9207 `iss`, RFC 9700): which
//! redirect URL a request names, what a PKCE challenge and verifier look
//! like, how the answer is put on the redirect URL, and the pending request
//! itself.
//!
//! A pending request is never stored: it is sealed into its own ID under the
//! key ring, so that `GET /oauth2/authorize`, which anyone can call, writes
//! nothing. Only its answer is recorded, to make it single-use.

use std::collections::BTreeSet;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use super::catalog::OFFLINE_ACCESS;
use super::error::Error;
use super::key_ring::PurposeKeys;
use super::names::ClientId;
use super::redirect_url::RedirectUrl;
use super::sealing::Sealer;

/// Prefix of authorization request IDs.
pub const REQUEST_PREFIX: &str = "extapps_ar_";
/// Longest `state` accepted; a longer one is refused, not cut.
pub const MAX_STATE_BYTES: usize = 1024;
/// Longest subject (the user's ID) accepted.
pub const MAX_SUBJECT_CHARS: usize = 255;
/// Longest request ID: a request with the longest redirect URL, state and
/// scopes fits.
const MAX_REQUEST_CHARS: usize = 12 * 1024;

/// An authorization request waiting for the user's answer. Field names are
/// short: the whole value travels in a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// Makes the request single-use.
    #[serde(rename = "i")]
    pub id: Uuid,
    #[serde(rename = "c")]
    pub client_id: ClientId,
    /// The redirect URL the answer goes to.
    #[serde(rename = "r")]
    pub redirect_uri: String,
    /// The application named `redirect_uri` (rather than relying on its
    /// only registered one): the token request must name it too.
    #[serde(rename = "g")]
    pub redirect_uri_given: bool,
    /// The user scopes asked for, without `offline_access`.
    #[serde(rename = "s")]
    pub scopes: BTreeSet<String>,
    #[serde(rename = "o")]
    pub offline_access: bool,
    #[serde(rename = "t")]
    pub state: Option<String>,
    /// PKCE S256 challenge.
    #[serde(rename = "p")]
    pub code_challenge: Option<String>,
    /// Microseconds since the epoch.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Seals pending requests into their IDs and opens them again.
#[derive(Debug, Clone)]
pub struct AuthorizationRequests(Sealer);

impl AuthorizationRequests {
    pub fn new(keys: &PurposeKeys) -> Self {
        Self(Sealer::new(REQUEST_PREFIX, MAX_REQUEST_CHARS, keys))
    }

    /// The opaque ID carrying `request`.
    pub fn seal(&self, request: &PendingAuthorization) -> Result<String, Error> {
        let plain = serde_json::to_vec(request).map_err(|_| Error::Internal)?;
        self.0.seal(&plain)
    }

    /// The request an ID this server sealed carries; `None` for anything
    /// else. Expiry is not checked here.
    pub fn open(&self, id: &str) -> Option<PendingAuthorization> {
        serde_json::from_slice(&self.0.open(id)?).ok()
    }
}

/// The redirect URL a request may use, and whether it named one: exactly a
/// registered URL; for a native application, also a registered loopback URL
/// on another port (RFC 8252 section 7.3: the port is picked when the
/// application starts). Without `redirect_uri`, the only registered URL, if
/// there is exactly one.
pub fn choose_redirect(
    registered: &[RedirectUrl],
    given: Option<&str>,
    native: bool,
) -> Option<(String, bool)> {
    let Some(given) = given else {
        return match registered {
            [only] => Some((only.as_str().to_owned(), false)),
            _ => None,
        };
    };
    if registered.iter().any(|r| r.as_str() == given) {
        return Some((given.to_owned(), true));
    }
    if !native {
        return None;
    }
    let given_bare = loopback_without_port(given)?;
    registered
        .iter()
        .any(|r| loopback_without_port(r.as_str()).is_some_and(|bare| bare == given_bare))
        .then(|| (given.to_owned(), true))
}

/// An `http` URL on a loopback IP literal, as text without its port; `None`
/// for any other URL. Text, not a parsed URL, so that nothing but the port
/// may differ (parsing would also fold `/a/../cb` into `/cb`).
fn loopback_without_port(text: &str) -> Option<String> {
    let rest = text.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once(':') {
        Some(_) if authority.ends_with(']') => authority,
        // A port is 1 to 5 digits naming 1 to 65535; anything else is not
        // a URL this server would send a browser to.
        Some((host, port)) => {
            let valid = (1..=5).contains(&port.len())
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok_and(|p| p > 0);
            if !valid {
                return None;
            }
            host
        }
        None => authority,
    };
    let ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
        .then(|| format!("http://{host}{tail}"))
}

/// What a redirect URL shows a user: its host, or its scheme for a native
/// application's private-use scheme.
pub fn redirect_host(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(url) => match url.host_str() {
            Some(host) => host.to_owned(),
            None => url.scheme().to_owned(),
        },
        Err(_) => String::new(),
    }
}

/// `redirect_uri` with `params` added to its query, the registered URL left
/// exactly as registered otherwise.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let separator = match redirect_uri.split_once('?') {
        None => '?',
        Some((_, "")) => '\0',
        Some(_) => '&',
    };
    let mut out = String::from(redirect_uri);
    if separator != '\0' {
        out.push(separator);
    }
    out.push_str(&query.finish());
    out
}

/// Whether `challenge` can be an S256 challenge: the unpadded base64url of
/// a SHA-256 digest.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// Whether `verifier` has the shape RFC 7636 section 4.1 requires.
pub fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` is the one `challenge` was made from (S256), compared
/// in constant time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    is_verifier(verifier) && super::credential::digests_match(&computed, challenge)
}

/// The user's stable ID as the sign-in front end gives it: 1 to 255
/// characters, printable, without surrounding white space.
pub fn check_subject(subject: &str) -> Result<(), String> {
    if subject.is_empty() {
        return Err("is required".into());
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(format!("must be at most {MAX_SUBJECT_CHARS} characters"));
    }
    if subject.trim() != subject || subject.chars().any(char::is_control) {
        return Err("must be printable, without surrounding white space".into());
    }
    Ok(())
}

/// The scopes of a request, split: user scopes, and whether
/// `offline_access` is among them. `None` if a scope is not one of
/// `allowed`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn urls(list: &[&str]) -> Vec<RedirectUrl> {
        list.iter()
            .map(|u| RedirectUrl::parse(u).unwrap())
            .collect()
    }

    #[test]
    fn redirects_match_exactly_or_by_loopback_port_for_native_apps() {
        let registered = urls(&["https://app.example/cb", "http://127.0.0.1:8080/cb"]);
        let pick = |given, native| choose_redirect(&registered, given, native);
        assert_eq!(
            pick(Some("https://app.example/cb"), false),
            Some(("https://app.example/cb".into(), true))
        );
        for wrong in [
            "https://app.example/cb/",
            "https://APP.example/cb",
            "https://app.example/cb?x=1",
            "https://app.example:443/cb",
            "https://evil.example/cb",
        ] {
            assert_eq!(pick(Some(wrong), true), None, "{wrong}");
        }
        assert_eq!(pick(None, false), None, "two registered: must be named");
        assert_eq!(
            pick(Some("http://127.0.0.1:51234/cb"), true),
            Some(("http://127.0.0.1:51234/cb".into(), true))
        );
        assert_eq!(
            pick(Some("http://127.0.0.1/cb"), true).map(|r| r.1),
            Some(true)
        );
        assert_eq!(
            pick(Some("http://127.0.0.1:51234/cb"), false),
            None,
            "confidential"
        );
        assert_eq!(pick(Some("http://127.0.0.1:51234/other"), true), None);
        assert_eq!(pick(Some("http://localhost:51234/cb"), true), None);
        assert_eq!(pick(Some("http://127.0.0.1:5/x/../cb"), true), None);
        for port in ["", "0", "65536", "000001", "8o"] {
            let given = format!("http://127.0.0.1:{port}/cb");
            assert_eq!(
                choose_redirect(&registered, Some(&given), true),
                None,
                "{port}"
            );
        }
        let v6 = urls(&["http://[::1]/cb"]);
        assert!(choose_redirect(&v6, Some("http://[::1]:4000/cb"), true).is_some());
        assert!(choose_redirect(&v6, Some("http://[::2]:4000/cb"), true).is_none());
        let only = urls(&["com.example.app:/cb"]);
        assert_eq!(
            choose_redirect(&only, None, true),
            Some(("com.example.app:/cb".into(), false))
        );
    }

    #[test]
    fn answers_are_added_to_the_query() {
        assert_eq!(
            redirect_with("https://a.example/cb", &[("code", "x y"), ("state", "&")]),
            "https://a.example/cb?code=x+y&state=%26"
        );
        assert_eq!(
            redirect_with("https://a.example/cb?v=1", &[("code", "c")]),
            "https://a.example/cb?v=1&code=c"
        );
        assert_eq!(
            redirect_with("https://a.example/cb?", &[("code", "c")]),
            "https://a.example/cb?code=c"
        );
        assert_eq!(redirect_host("com.example.app:/cb"), "com.example.app");
        assert_eq!(redirect_host("https://a.example:8443/cb"), "a.example");
    }

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(&verifier.replace('d', "e"), challenge));
        assert!(!is_s256_challenge("plain-challenge"));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}!", "a".repeat(43))));
    }

    #[test]
    fn subjects_are_printable_and_bounded() {
        assert!(check_subject("user-42").is_ok());
        assert!(check_subject("").is_err());
        assert!(check_subject(" x").is_err());
        assert!(check_subject("a\nb").is_err());
        assert!(check_subject(&"é".repeat(255)).is_ok());
        assert!(check_subject(&"é".repeat(256)).is_err());
    }

    #[test]
    fn scopes_split_off_offline_access() {
        let allowed: BTreeSet<&str> = ["OR.Jobs", "OR.Queues"].into();
        let (scopes, offline) =
            split_scopes(["OR.Jobs", "offline_access", "OR.Jobs"], &allowed).unwrap();
        assert_eq!(scopes, BTreeSet::from(["OR.Jobs".to_owned()]));
        assert!(offline);
        assert_eq!(split_scopes(["OR.Assets"], &allowed), Err("OR.Assets"));
    }

    fn requests() -> AuthorizationRequests {
        AuthorizationRequests::new(&PurposeKeys::fixed([9; 32]))
    }

    proptest! {
        #[test]
        fn pending_requests_round_trip_through_their_ids(
            state in proptest::option::of(".{0,200}"),
            challenge in proptest::option::of("[A-Za-z0-9_-]{43}"),
            scopes in proptest::collection::btree_set("[A-Za-z.]{1,20}", 0..8),
            offline in any::<bool>(),
            expires_at in any::<i64>(),
        ) {
            let request = PendingAuthorization {
                id: Uuid::new_v4(),
                client_id: ClientId::generate(),
                redirect_uri: "https://app.example/cb".into(),
                redirect_uri_given: true,
                scopes,
                offline_access: offline,
                state,
                code_challenge: challenge,
                expires_at,
            };
            let id = requests().seal(&request).unwrap();
            prop_assert!(id.starts_with(REQUEST_PREFIX));
            prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            prop_assert_eq!(requests().open(&id), Some(request));
            let other = AuthorizationRequests::new(&PurposeKeys::fixed([8; 32]));
            prop_assert_eq!(other.open(&id), None);
        }

        #[test]
        fn redirects_carry_any_parameters_back_unchanged(
            registered_query in proptest::option::of("[a-z]{1,5}=[a-z0-9]{1,5}"),
            state in ".{0,40}",
            code in "[A-Za-z0-9_-]{0,60}",
        ) {
            let registered = match &registered_query {
                Some(query) => format!("https://app.example.com/cb?{query}"),
                None => "https://app.example.com/cb".to_owned(),
            };
            let redirect = redirect_with(&registered, &[("code", &code), ("state", &state)]);
            let url = Url::parse(&redirect).unwrap();
            let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let mut expected = Vec::new();
            if let Some((name, value)) = registered_query.as_deref().and_then(|q| q.split_once('=')) {
                expected.push((name.to_owned(), value.to_owned()));
            }
            expected.push(("code".to_owned(), code.clone()));
            expected.push(("state".to_owned(), state.clone()));
            prop_assert_eq!(pairs, expected);
            prop_assert!(redirect.starts_with(&registered));
        }

        #[test]
        fn requested_scopes_split_into_the_allowed_ones_and_offline_access(
            requested in proptest::collection::vec(
                proptest::sample::select(vec!["OR.Jobs", "OR.Queues", "offline_access", "OR.Nope"]),
                0..6,
            ),
        ) {
            let allowed: BTreeSet<&str> = ["OR.Jobs", "OR.Queues"].into();
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
        fn verifiers_match_only_their_own_challenge(verifier in "[A-Za-z0-9._~-]{43,128}") {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            prop_assert!(is_s256_challenge(&challenge));
            prop_assert!(verifier_matches(&verifier, &challenge));
            let other = format!("{}x", &verifier[..verifier.len() - 1]);
            prop_assert_eq!(verifier_matches(&other, &challenge), other == verifier);
        }
    }
}
