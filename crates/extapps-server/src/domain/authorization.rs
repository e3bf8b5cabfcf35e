//! The rules of user authorization (RFC 6749 section 4.1, RFC 8252 for
//! native applications, RFC 9207 `iss`, RFC 9700): which redirect URL a
//! request names and whether it may still be used, how the answer is put on
//! the redirect URL, and the pending request itself. PKCE is in
//! [`super::pkce`], the choice of scopes in [`super::scope_rules`].
//!
//! A pending request is never stored: it is sealed into its own ID under the
//! key ring, so that `GET /oauth2/authorize`, which anyone can call, writes
//! nothing. Only its answer is recorded, to make it single-use.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use super::error::Error;
use super::key_ring::PurposeKeys;
use super::names::ClientId;
use super::oauth::OAuthError;
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

/// The redirect URL of an authorization request, and whether it named one,
/// or why none can be trusted (shown on the error page, never redirected
/// to): see [`choose_redirect`]. A registered URL that a URL parser would
/// read differently (registered under the looser rules of earlier versions,
/// or a loopback port written oddly) is never sent a browser to.
pub fn resolve_redirect(
    registered: &[RedirectUrl],
    given: Option<&str>,
    native: bool,
) -> Result<(String, bool), OAuthError> {
    let Some((redirect_uri, named)) = choose_redirect(registered, given, native) else {
        return Err(OAuthError::InvalidRequest(match given {
            None => "parameter `redirect_uri` is missing: the application has several redirect URLs (or none)".into(),
            Some(_) => "`redirect_uri` is not one of the application's registered redirect URLs".into(),
        }));
    };
    if RedirectUrl::parse(&redirect_uri).is_err() {
        return Err(OAuthError::InvalidRequest(
            "the redirect URL is not written as URL parsers read it: a loopback port must be plain digits, not the default one; a URL registered under earlier, looser rules must be registered again by an administrator".into(),
        ));
    }
    Ok((redirect_uri, named))
}

/// Whether a pending request's redirect URL may still be answered: an
/// administrator may have removed it since the request was made, and a
/// request made by an earlier version may carry one that today's rules
/// refuse.
pub fn pending_redirect_usable(
    registered: &[RedirectUrl],
    redirect_uri: &str,
    native: bool,
) -> bool {
    choose_redirect(registered, Some(redirect_uri), native).is_some()
        && RedirectUrl::parse(redirect_uri).is_ok()
}

/// Whether the token request's `redirect_uri` is the authorization
/// request's (RFC 6749 section 4.1.3): required if that request named one,
/// and then identical.
pub fn check_token_redirect(
    named_in_request: bool,
    bound: &str,
    presented: Option<&str>,
) -> Result<(), OAuthError> {
    match (named_in_request, presented) {
        (_, Some(presented)) if presented == bound => Ok(()),
        (false, None) => Ok(()),
        (true, None) => Err(OAuthError::InvalidRequest(
            "parameter `redirect_uri` is missing: the authorization request named one".into(),
        )),
        (_, Some(_)) => Err(OAuthError::InvalidGrant(
            "`redirect_uri` differs from the authorization request's".into(),
        )),
    }
}

/// The redirect URL an answer goes back on: `params`, then the request's
/// `state` if it had one, then `iss` (RFC 9207).
pub fn answer(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> String {
    let mut pairs = params.to_vec();
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    redirect_with(redirect_uri, &pairs)
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
    fn an_untrusted_redirect_is_refused_before_anything_is_sent_to_it() {
        let two = urls(&["https://app.example/cb", "https://app.example/other"]);
        let one = urls(&["https://app.example/cb"]);
        let resolve = |registered, given| resolve_redirect(registered, given, false);
        assert_eq!(
            resolve(&one, None),
            Ok(("https://app.example/cb".into(), false))
        );
        assert_eq!(
            resolve(&two, Some("https://app.example/other")),
            Ok(("https://app.example/other".into(), true))
        );
        for (registered, given) in [
            (&two, None),
            (&two, Some("https://evil.example/cb")),
            (&urls(&[]), None),
        ] {
            let refused = resolve(registered, given).unwrap_err();
            assert_eq!(refused.code(), "invalid_request", "{given:?}");
        }
    }

    #[test]
    fn a_pending_redirect_is_usable_while_registered_and_parseable() {
        let registered = urls(&["https://app.example/cb", "http://127.0.0.1/cb"]);
        assert!(pending_redirect_usable(
            &registered,
            "https://app.example/cb",
            false
        ));
        assert!(!pending_redirect_usable(
            &registered,
            "https://app.example/gone",
            false
        ));
        assert!(pending_redirect_usable(
            &registered,
            "http://127.0.0.1:4000/cb",
            true
        ));
        assert!(!pending_redirect_usable(
            &registered,
            "http://127.0.0.1:4000/cb",
            false
        ));
    }

    #[test]
    fn a_token_request_repeats_the_redirect_its_authorization_named() {
        let bound = "https://app.example/cb";
        let table = [
            (true, Some(bound), "ok"),
            (false, Some(bound), "ok"),
            (false, None, "ok"),
            (true, None, "invalid_request"),
            (true, Some("https://app.example/cb/"), "invalid_grant"),
            (false, Some("https://app.example/other"), "invalid_grant"),
        ];
        for (named, presented, expected) in table {
            let got = match check_token_redirect(named, bound, presented) {
                Ok(()) => "ok",
                Err(e) => e.code(),
            };
            assert_eq!(got, expected, "named={named} {presented:?}");
        }
    }

    #[test]
    fn an_answer_carries_state_then_iss() {
        assert_eq!(
            answer(
                "https://a.example/cb",
                &[("code", "c")],
                Some("s"),
                "https://as.example"
            ),
            "https://a.example/cb?code=c&state=s&iss=https%3A%2F%2Fas.example"
        );
        assert_eq!(
            answer(
                "https://a.example/cb",
                &[("error", "access_denied")],
                None,
                "i"
            ),
            "https://a.example/cb?error=access_denied&iss=i"
        );
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

    }
}
