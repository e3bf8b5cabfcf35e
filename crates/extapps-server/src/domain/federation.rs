//! Federated credentials: an application trusts the tokens an outside
//! OpenID Connect provider issues for one exact issuer, subject and
//! audience, and presents such a token as its client assertion. The rules
//! of what may be registered, and of which issuers the server may ever
//! fetch keys from (an operator's allowlist of URL prefixes).

use super::error::{Error, FieldViolation, Reason};

/// Federated credentials per application, as in the platform the seeds
/// describe.
pub const MAX_FEDERATED_CREDENTIALS: usize = 20;
/// Characters of an issuer, a subject or an audience.
pub const MAX_CLAIM_CHARS: usize = 256;

/// One federated credential as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    /// Also the credential its tokens record.
    pub id: uuid::Uuid,
    pub issuer: String,
    pub subject: String,
    pub audience: String,
}

/// Whether `host` is a loopback host, where plain `http` may serve an
/// issuer (development, and the tests' own provider).
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Checks an issuer URL: absolute, `https` (or `http` on a loopback host),
/// without credentials, query or fragment, and printable ASCII. It is kept
/// as written: tokens are matched against it character for character.
pub fn issuer_url(field: &str, value: &str) -> Result<String, FieldViolation> {
    let refuse = |why: &str| FieldViolation::new(field, why);
    if value.is_empty() {
        return Err(refuse("is required"));
    }
    if value.chars().count() > MAX_CLAIM_CHARS {
        return Err(refuse("must be at most 256 characters"));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse(
            "must be printable ASCII, without spaces: write it exactly as the provider's tokens say it",
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|_| refuse("must be an absolute URL, such as https://token.example.com"))?;
    let host = url
        .host()
        .ok_or_else(|| refuse("must be an absolute URL with a host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        _ => return Err(refuse("must be https (http only on a loopback host)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not hold a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("must not have a query or a fragment"));
    }
    if !is_canonical(value) {
        return Err(refuse(
            "must be written as URL parsers write it: a lower-case scheme and host, no default \
             port, no `.` or `..` segments, no `%` escapes",
        ));
    }
    Ok(value.to_owned())
}

/// Whether `value` is the URL a parser makes of it (at most missing the
/// `/` of an empty path): what the allowlist compares is then what is
/// fetched, with no `..` or escape to step out of an allowed prefix.
fn is_canonical(value: &str) -> bool {
    // No escapes at all: a server may decode `%2F` or `%2e` before it
    // resolves the path, and step out of an allowed prefix.
    !value.contains('%')
        && url::Url::parse(value).is_ok_and(|url| {
            let parsed = url.as_str();
            parsed == value || (url.path() == "/" && parsed.strip_suffix('/') == Some(value))
        })
}

/// Checks a subject or audience: 1 to 256 characters, no control
/// characters; kept as written.
pub fn claim_value(field: &str, value: &str) -> Result<String, FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > MAX_CLAIM_CHARS {
        return Err(FieldViolation::new(field, "must be at most 256 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// The issuers an operator allows, as URL prefixes: an issuer, and the
/// place its keys are published, must start with one of them at a path
/// boundary (`https://a.example` allows `https://a.example/x`, never
/// `https://a.example.evil`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedIssuers(Vec<String>);

impl AllowedIssuers {
    /// Reads the operator's list; each entry must be an issuer URL by the
    /// rules of [`issuer_url`] (so plain `http` only on loopback, and only
    /// when named here).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut prefixes = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            issuer_url("prefix", entry)
                .map_err(|v| format!("allowed issuer `{entry}`: {}", v.description))?;
            prefixes.push(entry.to_owned());
        }
        Ok(Self(prefixes))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `url` starts with an allowed prefix at a path boundary and
    /// is canonical (see [`issuer_url`]): the cheap test first, so a
    /// stranger's made-up issuer costs no URL parse.
    pub fn allows(&self, url: &str) -> bool {
        self.0.iter().any(|prefix| {
            url.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/')
            })
        }) && is_canonical(url)
    }
}

/// The refusal of one federated credential too many.
pub fn check_count(credentials: usize) -> Result<(), Error> {
    if credentials > MAX_FEDERATED_CREDENTIALS {
        return Err(Error::FailedPrecondition {
            reason: Reason::TooManyFederatedCredentials,
            message: format!(
                "an application holds at most {MAX_FEDERATED_CREDENTIALS} federated credentials: \
                 delete one before adding another"
            ),
        });
    }
    Ok(())
}

/// A federated credential the application does not hold.
pub fn not_found() -> Error {
    Error::NotFound {
        reason: Reason::FederatedCredentialNotFound,
        message: "the application has no such federated credential".into(),
    }
}

/// The same issuer, subject and audience twice.
pub fn already_exists() -> Error {
    Error::AlreadyExists {
        reason: Reason::FederatedCredentialAlreadyExists,
        message: "the application already trusts this issuer, subject and audience".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_or_loopback_http_and_kept_as_written() {
        for good in [
            "https://token.actions.githubusercontent.com",
            "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123",
            "https://accounts.example.com/",
            "http://127.0.0.1:8080",
            "http://localhost:9000/issuer",
            "http://[::1]:1234",
        ] {
            assert_eq!(issuer_url("issuer", good).unwrap(), good);
        }
        for (bad, why) in [
            ("", "required"),
            ("token.example.com", "absolute URL"),
            ("http://token.example.com", "https"),
            ("ftp://token.example.com", "https"),
            ("https://user:pw@token.example.com", "user name"),
            ("https://token.example.com/?x=1", "query"),
            ("https://token.example.com/#x", "fragment"),
            ("https://token.example.com/ a", "printable ASCII"),
            ("https://tøken.example.com", "printable ASCII"),
            ("https://token.example.com/a/../b", "`..`"),
            ("https://token.example.com/a/%2e%2e/b", "`%` escapes"),
            ("https://token.example.com/a/..%2Fb", "`%` escapes"),
            ("https://Token.example.com", "lower-case"),
            ("https://token.example.com:443/x", "default"),
            ("https://token.example.com/a\\b", "URL parsers"),
        ] {
            let refused = issuer_url("issuer", bad).unwrap_err();
            assert!(
                refused.description.contains(why),
                "{bad}: {}",
                refused.description
            );
        }
        let long = format!("https://a.example/{}", "x".repeat(250));
        assert!(issuer_url("issuer", &long).is_err());
    }

    #[test]
    fn subjects_and_audiences_are_exact_short_and_without_controls() {
        assert_eq!(
            claim_value("subject", "repo:acme/billing:ref:refs/heads/main").unwrap(),
            "repo:acme/billing:ref:refs/heads/main"
        );
        assert!(claim_value("subject", "").is_err());
        assert!(claim_value("subject", "a\nb").is_err());
        assert!(claim_value("audience", &"a".repeat(257)).is_err());
    }

    #[test]
    fn allowed_prefixes_match_at_path_boundaries_only() {
        let allowed = AllowedIssuers::parse(&[
            "https://token.actions.githubusercontent.com".into(),
            "https://oidc.example.com/tenants/".into(),
            " ".into(),
        ])
        .unwrap();
        assert!(allowed.allows("https://token.actions.githubusercontent.com"));
        assert!(allowed.allows("https://token.actions.githubusercontent.com/.well-known/jwks"));
        assert!(!allowed.allows("https://token.actions.githubusercontent.com.evil.example"));
        assert!(!allowed.allows("https://token.actions.githubusercontent.comx/"));
        assert!(allowed.allows("https://oidc.example.com/tenants/42"));
        assert!(!allowed.allows("https://oidc.example.com/tenants"));
        assert!(!allowed.allows("https://oidc.example.com/other"));
        assert!(!allowed.allows("https://oidc.example.com/tenants/../other"));
        assert!(!allowed.allows("https://oidc.example.com/tenants/%2e%2e/other"));
        assert!(!allowed.allows("https://oidc.example.com/tenants/..%2Fother"));
        assert!(AllowedIssuers::default().is_empty());
        assert!(!AllowedIssuers::default().allows("https://token.actions.githubusercontent.com"));
        let refused = AllowedIssuers::parse(&["http://ci.example.com".into()]).unwrap_err();
        assert!(refused.contains("https"), "{refused}");
        assert!(AllowedIssuers::parse(&["http://127.0.0.1:4000".into()]).is_ok());
    }
}
