//! Reading OAuth requests: `application/x-www-form-urlencoded` bodies with no
//! repeated parameter (RFC 6749 section 3.1), and client authentication by
//! HTTP Basic or by body parameters, never both (section 2.3.1); a
//! `client_id` in the body beside Basic credentials for the same client is
//! allowed (section 3.2.1).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::SecretString;

use crate::domain::client_assertion::JWT_BEARER;
use crate::domain::oauth::OAuthError;
use crate::service::{ClientCredentials, SourceKey};

/// The parameters of a form body. Empty values count as absent.
#[derive(Debug)]
pub struct Form(HashMap<String, String>);

impl Form {
    /// The parameters of a query string (`GET /oauth2/authorize`).
    pub fn from_query(query: &[u8]) -> Result<Self, OAuthError> {
        let mut params = HashMap::new();
        for (key, value) in form_urlencoded::parse(query) {
            if params.contains_key(key.as_ref()) {
                return Err(repeated(&key));
            }
            params.insert(key.into_owned(), value.into_owned());
        }
        params.retain(|_, v| !v.is_empty());
        Ok(Self(params))
    }

    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            ));
        }
        Self::from_query(body)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("parameter `{name}` is missing")))
    }

    /// Removes a parameter, so secrets do not linger in the form.
    fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }
}

/// The parameters the OAuth endpoints read.
const KNOWN_PARAMETERS: [&str; 18] = [
    "grant_type",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "token_type_hint",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
];

fn known_parameter(name: &str) -> Option<&'static str> {
    KNOWN_PARAMETERS.into_iter().find(|known| *known == name)
}

/// A repeated parameter, named only if it is one of ours: never echo client
/// input.
fn repeated(name: &str) -> OAuthError {
    OAuthError::InvalidRequest(match known_parameter(name) {
        Some(name) => format!("parameter `{name}` is repeated"),
        None => "a parameter is repeated".into(),
    })
}

/// Undoes the form-encoding RFC 6749 applies inside Basic credentials.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The client's credentials, from exactly one method (HTTP Basic, a secret
/// in the body, or a client assertion), or a client ID alone (RFC 6749
/// section 2.3: a public client sends `client_id`). `audience_paths` are
/// the endpoints an assertion may name as its audience.
pub fn client_credentials(
    headers: &HeaderMap,
    form: &mut Form,
    source: Option<SourceKey>,
    audience_paths: &'static [&'static str],
) -> Result<ClientCredentials, OAuthError> {
    let assertion = client_assertion(form)?;
    let in_body = (form.take("client_id"), form.take("client_secret"));
    if let Some(assertion) = assertion {
        if in_body.1.is_some() || headers.contains_key(header::AUTHORIZATION) {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method: a client assertion, HTTP Basic or client_secret, not several".into(),
            ));
        }
        return Ok(ClientCredentials {
            client_id: in_body.0.unwrap_or_default(),
            secret: None,
            assertion: Some(assertion),
            audience_paths,
            source,
        });
    }
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| OAuthError::InvalidClient)?;
            let (scheme, encoded) = value.split_once(' ').ok_or(OAuthError::InvalidClient)?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::InvalidClient);
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(OAuthError::InvalidClient)?;
            let (id, secret) = decoded.split_once(':').ok_or(OAuthError::InvalidClient)?;
            Some((
                form_decode(id).ok_or(OAuthError::InvalidClient)?,
                form_decode(secret).ok_or(OAuthError::InvalidClient)?,
            ))
        }
    };
    let (client_id, secret) = match (basic, in_body) {
        (Some(_), (_, Some(_))) => {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method: HTTP Basic or client_secret in the body, not both".into(),
            ));
        }
        // A `client_id` beside Basic credentials is not a second method
        // (RFC 6749 section 3.2.1), if it names the same client.
        (Some((id, _)), (Some(body_id), None)) if body_id != id => {
            return Err(OAuthError::InvalidRequest(
                "`client_id` in the body names another client than the Basic credentials".into(),
            ));
        }
        (Some((id, secret)), _) => (id, Some(secret)),
        (None, (Some(id), secret)) => (id, secret),
        (None, (None, _)) => return Err(OAuthError::InvalidClient),
    };
    Ok(ClientCredentials {
        client_id,
        // No secret (or an empty one in Basic): a non-confidential client
        // that identifies itself by its ID alone.
        secret: secret.filter(|s| !s.is_empty()).map(SecretString::from),
        assertion: None,
        audience_paths,
        source,
    })
}

/// `client_assertion` with its type (RFC 7521 section 4.2), if the client
/// sent one: the two come together, and the type is the JWT one.
fn client_assertion(form: &mut Form) -> Result<Option<SecretString>, OAuthError> {
    match (
        form.take("client_assertion"),
        form.take("client_assertion_type"),
    ) {
        (None, None) => Ok(None),
        (Some(assertion), Some(kind)) if kind == JWT_BEARER => {
            Ok(Some(SecretString::from(assertion)))
        }
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest(format!(
            "`client_assertion_type` must be `{JWT_BEARER}`"
        ))),
        (Some(_), None) => Err(OAuthError::InvalidRequest(format!(
            "`client_assertion` needs `client_assertion_type` `{JWT_BEARER}`"
        ))),
        (None, Some(_)) => Err(OAuthError::InvalidRequest(
            "`client_assertion_type` came without a `client_assertion`".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn form_headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some(value) = authorization.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%20id:s%2Bcret+x");
        let headers = form_headers(Some(&format!("Basic {encoded}")));
        let mut form = Form::parse(&headers, b"grant_type=client_credentials").unwrap();
        let credentials =
            client_credentials(&headers, &mut form, None, &["/oauth2/token"]).unwrap();
        assert_eq!(credentials.client_id, "my id");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(credentials.secret.as_ref().unwrap()),
            "s+cret x"
        );
    }

    #[test]
    fn a_body_client_id_beside_basic_must_name_the_same_client() {
        let headers = form_headers(Some(&format!("Basic {}", STANDARD.encode("app:s3cret"))));
        let mut same = Form::parse(&headers, b"client_id=app").unwrap();
        let credentials =
            client_credentials(&headers, &mut same, None, &["/oauth2/token"]).unwrap();
        assert_eq!(credentials.client_id, "app");
        let mut other = Form::parse(&headers, b"client_id=another").unwrap();
        let error = client_credentials(&headers, &mut other, None, &["/oauth2/token"]).unwrap_err();
        assert!(matches!(error, OAuthError::InvalidRequest(_)), "{error:?}");
        let mut both = Form::parse(&headers, b"client_id=app&client_secret=s3cret").unwrap();
        let error = client_credentials(&headers, &mut both, None, &["/oauth2/token"]).unwrap_err();
        assert!(
            error
                .description()
                .contains("one client authentication method")
        );
    }

    #[test]
    fn repeated_parameters_are_named_only_if_known() {
        let headers = form_headers(None);
        let known = Form::parse(&headers, b"scope=a&scope=b").unwrap_err();
        assert!(known.description().contains("`scope`"));
        let unknown = Form::parse(&headers, b"%3Cscript%3E=1&%3Cscript%3E=2").unwrap_err();
        assert!(
            !unknown.description().contains("script"),
            "{}",
            unknown.description()
        );
    }

    proptest! {
        /// Any body and any Authorization header: an answer, never a panic,
        /// and never both credential methods at once.
        #[test]
        fn any_request_parses_or_is_refused(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            authorization in proptest::option::of("[ -~]{0,120}"),
            basic in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        ) {
            let authorization = match (&authorization, &basic) {
                (_, Some(raw)) => Some(format!("Basic {}", STANDARD.encode(raw))),
                (Some(text), None) => Some(text.clone()),
                (None, None) => None,
            };
            let headers = form_headers(authorization.as_deref());
            if let Ok(mut form) = Form::parse(&headers, &body) {
                let body_id = form.get("client_id").map(str::to_owned);
                let body_secret = form.get("client_secret").is_some();
                match client_credentials(&headers, &mut form, None, &["/oauth2/token"]) {
                    Ok(credentials) => {
                        let basic = headers.contains_key(header::AUTHORIZATION);
                        prop_assert!(!(basic && body_secret), "never both methods");
                        if basic && let Some(body_id) = body_id {
                            prop_assert_eq!(body_id, credentials.client_id.clone(), "the same client");
                        }
                        prop_assert!(form.get("client_secret").is_none(), "secrets leave the form");
                        let _ = credentials;
                    }
                    Err(error) => {
                        prop_assert!(matches!(error, OAuthError::InvalidClient | OAuthError::InvalidRequest(_)));
                    }
                }
            }
        }
    }
}
