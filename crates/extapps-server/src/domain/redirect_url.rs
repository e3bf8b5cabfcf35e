//! Redirect URL rules: absolute, no fragment (RFC 6749 section 3.1.2), and
//! `https`, `http` on a loopback host, or a private-use scheme for native
//! applications (RFC 8252 sections 7.1 and 7.3); and written exactly as a
//! URL parser reads it, since it is matched byte for byte and sent back as
//! stored: a URL the parser would rewrite (white space, control characters,
//! a backslash, raw non-ASCII, an upper-case host, a default port) is
//! refused with the form to write instead, never normalized behind the
//! caller's back.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Most redirect URLs one application may register.
pub const MAX_REDIRECT_URLS: usize = 20;
const MAX_LENGTH: usize = 2048;

/// A redirect URL that passed every rule, kept exactly as registered so that
/// authorization requests can match it exactly. One stored under the looser
/// rules of earlier versions is read back as it is ([`RedirectUrl::stored`])
/// and reports what is wrong with it ([`RedirectUrl::problem`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUrl(String);

impl RedirectUrl {
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.len() > MAX_LENGTH {
            return Err(format!("must be at most {MAX_LENGTH} characters"));
        }
        if value.trim() != value || value.is_empty() {
            return Err("must be an absolute URL without surrounding white space".into());
        }
        let url = Url::parse(value).map_err(|e| format!("is not an absolute URL ({e})"))?;
        if url.as_str() != value {
            const HOW: &str = "percent-encode white space, control and non-ASCII characters; no backslashes; punycode for a host";
            let written = url.as_str();
            return Err(if written.len() <= 120 {
                format!("must be written as URL parsers read it: `{written}` ({HOW})")
            } else {
                format!("must be written as URL parsers read it ({HOW})")
            });
        }
        if url.fragment().is_some() {
            return Err("must not contain a fragment (`#...`)".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain credentials".into());
        }
        match url.scheme() {
            "https" => {
                if url.host().is_none() {
                    return Err("an `https` URL needs a host".into());
                }
            }
            "http" => {
                if !is_loopback(url.host()) {
                    return Err(
                        "`http` is allowed only on a loopback host (127.0.0.1, [::1] or localhost); use `https`"
                            .into(),
                    );
                }
            }
            scheme if scheme.contains('.') => {}
            _ => {
                return Err(
                    "must use `https`, `http` on a loopback host, or a private-use scheme in reverse domain form such as `com.example.app:/callback`"
                        .into(),
                );
            }
        }
        Ok(Self(value.to_owned()))
    }

    /// A URL as stored: valid by the rules of the day it was written,
    /// which may have been looser than today's. Never refused, so its
    /// application can still be read and corrected.
    pub fn stored(value: String) -> Self {
        Self(value)
    }

    /// What today's rules find wrong with this URL, if anything: a URL
    /// stored under earlier rules may fail them, and is then never
    /// redirected to.
    pub fn problem(&self) -> Option<String> {
        Self::parse(&self.0).err()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_allowed_shapes() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(RedirectUrl::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_the_rest() {
        for (bad, why) in [
            ("/relative", "absolute"),
            ("https://app.example.com/cb#frag", "fragment"),
            ("http://app.example.com/cb", "loopback"),
            ("javascript:alert(1)", "private-use"),
            ("ftp://example.com/", "private-use"),
            ("https://user:pw@example.com/", "credentials"),
            (" https://example.com/", "white space"),
            ("", "white space"),
            // What a parser would rewrite behind the caller's back.
            (
                "https://app.example.com/c\nb",
                "`https://app.example.com/cb`",
            ),
            (
                "https://app.example.com/c\tb",
                "`https://app.example.com/cb`",
            ),
            (
                "https://app.example.com/c b",
                "`https://app.example.com/c%20b`",
            ),
            (
                "https://app.example.com\\@evil.example/",
                "`https://app.example.com/@evil.example/`",
            ),
            (
                "https://app.example.com/caf\u{e9}",
                "`https://app.example.com/caf%C3%A9`",
            ),
            (
                "https://b\u{fc}cher.example/cb",
                "`https://xn--bcher-kva.example/cb`",
            ),
            ("https://App.Example.com/cb", "`https://app.example.com/cb`"),
            (
                "https://app.example.com:443/cb",
                "`https://app.example.com/cb`",
            ),
            ("https://app.example.com", "`https://app.example.com/`"),
            (
                "https://app.example.com/a/../cb",
                "`https://app.example.com/cb`",
            ),
        ] {
            let err = RedirectUrl::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(RedirectUrl::parse(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }

    #[test]
    fn urls_stored_under_looser_rules_read_back_and_say_what_is_wrong() {
        let old = RedirectUrl::stored("https://app.example.com/c\nb".into());
        assert_eq!(old.as_str(), "https://app.example.com/c\nb");
        assert!(old.problem().unwrap().contains("URL parsers"));
        let fine = RedirectUrl::stored("https://app.example.com/cb".into());
        assert_eq!(fine.problem(), None);
    }

    proptest! {
        /// Whatever the input, an accepted URL is exactly what the parser
        /// reads, so what is stored, matched and sent back is one string.
        #[test]
        fn accepted_urls_are_their_own_serialization(s in prop_oneof![
            ".*",
            "(https://app\\.example\\.com|http://127\\.0\\.0\\.1|com\\.example\\.app:)/[a-zA-Z0-9 \t\n\\\\\u{e9}%./?=@:~-]{0,20}",
        ]) {
            if let Ok(url) = RedirectUrl::parse(&s) {
                let reread = Url::parse(url.as_str()).unwrap();
                prop_assert_eq!(reread.as_str(), s.as_str());
                prop_assert!(url.as_str().bytes().all(|b| b.is_ascii_graphic()));
            }
        }

        #[test]
        fn https_paths_are_accepted(path in "[a-z0-9/]{0,40}") {
            let url = format!("https://example.com/{path}");
            prop_assert!(RedirectUrl::parse(&url).is_ok());
        }

        /// An accepted URL is kept exactly as given (it is compared
        /// byte for byte at the authorization endpoint), and reads back
        /// as itself.
        #[test]
        fn accepted_urls_are_kept_as_given(
            scheme in proptest::sample::select(vec!["https://app.example.com", "http://127.0.0.1:8080", "http://[::1]", "com.example.app:"]),
            path in "/([A-Za-z0-9_~-][A-Za-z0-9._~-]{0,8}/?){0,3}",
            query in proptest::option::of("[a-z]{1,5}=[a-z0-9]{0,5}"),
        ) {
            let url = match query {
                Some(query) => format!("{scheme}{path}?{query}"),
                None => format!("{scheme}{path}"),
            };
            let parsed = RedirectUrl::parse(&url).unwrap();
            prop_assert_eq!(parsed.as_str(), url.as_str());
            prop_assert_eq!(RedirectUrl::parse(parsed.as_str()).unwrap(), parsed);
        }

        /// Loopback `http` only: any other host over plain `http` is refused.
        #[test]
        fn plain_http_is_refused_off_loopback(host in "[a-z]{1,10}\\.(com|org|net)") {
            let url = format!("http://{host}/cb");
            prop_assert!(RedirectUrl::parse(&url).is_err());
        }
    }
}
