//! OAuth 2.0 over HTTP, on the gRPC port: the authorization endpoint (RFC
//! 6749 section 4.1, with PKCE), the token endpoint (client credentials,
//! authorization code, refresh token), introspection (RFC 7662), revocation
//! (RFC 7009) and authorization server metadata (RFC 8414).

mod authorize;
mod form;
mod observe;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::domain::{Error, Reason, caller::Role, client_key::SigningAlgorithm, oauth::OAuthError};
use crate::service::{ActiveToken, ClientCredentials, Service, SourceKey};
use form::{Form, client_credentials};

/// Largest request body the OAuth endpoints read: room for a client
/// assertion of the largest size accepted (8 KiB) and the other parameters.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const INTROSPECT_PATH: &str = "/oauth2/introspect";
pub const REVOKE_PATH: &str = "/oauth2/revoke";
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

pub fn router(service: Service) -> Router {
    let counted = |endpoint| observe::ObserveCalls::new(service.clone(), endpoint);
    Router::new()
        .route(
            AUTHORIZE_PATH,
            get(authorize::authorize).layer(counted(AUTHORIZE_PATH)),
        )
        .route(TOKEN_PATH, post(token).layer(counted(TOKEN_PATH)))
        .route(
            INTROSPECT_PATH,
            post(introspect).layer(counted(INTROSPECT_PATH)),
        )
        .route(REVOKE_PATH, post(revoke).layer(counted(REVOKE_PATH)))
        .route(METADATA_PATH, get(metadata).layer(counted(METADATA_PATH)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

/// A JSON answer that no cache may keep (RFC 6749 section 5.1).
fn no_store(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The HTTP status of an OAuth error.
fn status_of(error: &OAuthError) -> StatusCode {
    match error {
        OAuthError::InvalidClient | OAuthError::InvalidAssertion(_) => StatusCode::UNAUTHORIZED,
        OAuthError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::Unavailable | OAuthError::Busy | OAuthError::TemporarilyUnavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        OAuthError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn oauth_error(error: OAuthError) -> Response {
    let response = no_store(
        status_of(&error),
        json!({"error": error.code(), "error_description": error.description()}),
    );
    with_error_headers(response, &error)
}

/// `WWW-Authenticate` or `Retry-After`, as the error calls for.
fn with_error_headers(mut response: Response, error: &OAuthError) -> Response {
    let headers = response.headers_mut();
    match error {
        OAuthError::InvalidClient | OAuthError::InvalidAssertion(_) => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"extapps\""),
            );
        }
        OAuthError::TooManyAttempts { .. }
        | OAuthError::Busy
        | OAuthError::Unavailable
        | OAuthError::TemporarilyUnavailable(_) => {
            if let Ok(value) = HeaderValue::from_str(&error.retry_after_seconds().to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        _ => {}
    }
    response
}

/// The body, or the OAuth error for one that is too large or unreadable.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, OAuthError> {
    body.map_err(|rejection| {
        OAuthError::InvalidRequest(match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                format!("the body is larger than {MAX_BODY_BYTES} bytes")
            }
            _ => "the body could not be read".into(),
        })
    })
}

/// The form of a client request and the client's credentials from it.
fn client_request(
    headers: &HeaderMap,
    source: Source,
    raw: Result<Bytes, BytesRejection>,
    audience_paths: &'static [&'static str],
) -> Result<(Form, ClientCredentials), OAuthError> {
    let mut form = Form::parse(headers, &body(raw)?)?;
    let credentials = client_credentials(headers, &mut form, source.0, audience_paths)?;
    Ok((form, credentials))
}

/// The budget key of the request's source address, as
/// [`crate::source::attach`] found it.
struct Source(Option<SourceKey>);

impl<S: Sync> axum::extract::FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<SourceKey>().copied()))
    }
}

/// A successful token response (RFC 6749 section 5.1), its members in the
/// order they always had.
#[derive(serde::Serialize)]
struct TokenAnswer<'a> {
    access_token: &'a str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    scope: String,
    token_type: &'static str,
}

/// An active token's introspection answer (RFC 7662 section 2.2), its
/// members in the order they always had.
#[derive(serde::Serialize)]
struct ActiveAnswer<'a> {
    active: bool,
    aud: &'a [String],
    client_id: &'a str,
    exp: i64,
    iat: i64,
    iss: &'a str,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<&'a str>,
    scope: String,
    sub: &'a str,
    token_type: &'static str,
}

async fn token(
    State(service): State<Service>,
    source: Source,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (form, credentials) = client_request(&headers, source, raw, &[TOKEN_PATH])?;
        match form.require("grant_type")? {
            "client_credentials" => {
                service
                    .issue_client_credentials(&credentials, form.get("scope"))
                    .await
            }
            "authorization_code" => {
                service
                    .redeem_code(
                        &credentials,
                        form.require("code")?,
                        form.get("redirect_uri"),
                        form.get("code_verifier"),
                    )
                    .await
            }
            "refresh_token" => {
                service
                    .refresh(
                        &credentials,
                        form.require("refresh_token")?,
                        form.get("scope"),
                    )
                    .await
            }
            _ => Err(OAuthError::UnsupportedGrantType),
        }
    }
    .await;
    service.metrics().token_request(match &result {
        Ok(_) => "issued",
        Err(error) => error.code(),
    });
    match result {
        Ok(issued) => no_store(
            StatusCode::OK,
            TokenAnswer {
                access_token: issued.access_token.expose_secret(),
                expires_in: issued.expires_in,
                refresh_token: issued.refresh_token.as_ref().map(|t| t.expose_secret()),
                scope: issued.scopes.join(" "),
                token_type: "Bearer",
            },
        ),
        Err(error) => oauth_error(error),
    }
}

/// Who may introspect: a resource server with a caller key of the
/// `introspect` (or `operator`) role, as `Authorization: Bearer <key>`; or
/// a confidential client, authenticated as at the token endpoint (HTTP
/// Basic, a secret or a client assertion in the body), about its own
/// tokens.
async fn introspect(
    State(service): State<Service>,
    source: Source,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // HTTP Basic is a client's; any other scheme is a resource server's.
    let basic = authorization.is_some_and(|value| {
        value
            .split_once(' ')
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
    });
    if authorization.is_some() && !basic {
        return introspect_by_key(State(service), source, headers, raw).await;
    }
    let Ok(bytes) = body(raw) else {
        return introspect_by_key(State(service), source, headers, Ok(Bytes::new())).await;
    };
    let form = Form::parse(&headers, &bytes);
    let by_client = basic
        || form.as_ref().is_ok_and(|form| {
            form.get("client_assertion").is_some() || form.get("client_secret").is_some()
        });
    if !by_client {
        // No client credentials: the resource servers' answer (a challenge
        // when no key came either).
        return introspect_by_key(State(service), source, headers, Ok(bytes)).await;
    }
    let result = async {
        let mut form = form?;
        let credentials = client_credentials(
            &headers,
            &mut form,
            source.0,
            &[INTROSPECT_PATH, TOKEN_PATH],
        )?;
        let token = form.require("token")?;
        service.introspect_as_client(&credentials, token).await
    }
    .await;
    match result {
        Ok(answer) => introspection_answer(answer),
        Err(error) => oauth_error(error),
    }
}

/// Introspection for a resource server, by its caller key.
async fn introspect_by_key(
    State(service): State<Service>,
    source: Source,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match service.authenticate(authorization, source.0).await {
        Ok(caller) => caller,
        Err(e @ Error::Unauthenticated { .. }) => {
            // The caller key is a bearer token (RFC 6750 section 3.1): a
            // request without credentials gets the challenge alone; one with
            // a bad key, `invalid_token`.
            let missing = matches!(
                e,
                Error::Unauthenticated {
                    reason: Reason::MissingCredentials,
                    ..
                }
            );
            let (challenge, code) = match missing {
                true => ("Bearer realm=\"extapps\"", "invalid_request"),
                false => (
                    "Bearer realm=\"extapps\", error=\"invalid_token\"",
                    "invalid_token",
                ),
            };
            let mut response = no_store(
                StatusCode::UNAUTHORIZED,
                json!({"error": code, "error_description": e.to_string()}),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            return response;
        }
        Err(e) => return oauth_error(e.into()),
    };
    if let Err(e) = caller.require_role(&[Role::Introspect, Role::Operator], "introspection") {
        let mut response = no_store(
            StatusCode::FORBIDDEN,
            json!({"error": "insufficient_scope", "error_description": e.to_string()}),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"extapps\", error=\"insufficient_scope\""),
        );
        return response;
    }
    let form = match body(raw).and_then(|b| Form::parse(&headers, &b)) {
        Ok(form) => form,
        Err(e) => return oauth_error(e),
    };
    let token = match form.require("token") {
        Ok(token) => token,
        Err(e) => return oauth_error(e),
    };
    match service.introspect(token, &caller).await {
        Ok(answer) => introspection_answer(answer),
        Err(e) => oauth_error(e.into()),
    }
}

/// The RFC 7662 answer: `active` alone for an inactive token.
fn introspection_answer(answer: Option<ActiveToken>) -> Response {
    match answer {
        None => no_store(StatusCode::OK, json!({"active": false})),
        Some(active) => no_store(
            StatusCode::OK,
            ActiveAnswer {
                active: true,
                aud: &active.aud,
                client_id: &active.client_id,
                exp: active.exp,
                iat: active.iat,
                iss: &active.iss,
                jti: &active.jti,
                organization: active.organization.as_deref(),
                scope: active.scopes.join(" "),
                sub: &active.sub,
                token_type: "Bearer",
            },
        ),
    }
}

async fn revoke(
    State(service): State<Service>,
    source: Source,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let (form, credentials) =
            client_request(&headers, source, raw, &[REVOKE_PATH, TOKEN_PATH])?;
        let token = form.require("token")?.to_owned();
        service.revoke(&credentials, &token).await
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK, json!({})),
        Err(error) => oauth_error(error),
    }
}

/// How clients may authenticate at the token and revocation endpoints.
const CLIENT_AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

async fn metadata(State(service): State<Service>) -> Response {
    let issuer = service.issuer();
    let assertion_algorithms: Vec<&str> = SigningAlgorithm::ALL
        .iter()
        .map(|algorithm| algorithm.as_str())
        .collect();
    let scopes: std::collections::BTreeSet<&str> = service
        .catalog()
        .resources()
        .flat_map(|r| r.application_scopes.keys().chain(r.user_scopes.keys()))
        .map(String::as_str)
        .chain([crate::domain::catalog::OFFLINE_ACCESS])
        .collect();
    (
        StatusCode::OK,
        Json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}{AUTHORIZE_PATH}"),
            "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
            "introspection_endpoint": format!("{issuer}{INTROSPECT_PATH}"),
            "revocation_endpoint": format!("{issuer}{REVOKE_PATH}"),
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "introspection_endpoint_auth_methods_supported": ["bearer", "client_secret_basic", "client_secret_post", "private_key_jwt"],
            "introspection_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "scopes_supported": scopes,
        })),
    )
        .into_response()
}
