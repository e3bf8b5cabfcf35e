//! A user's way through `/oauth2/authorize`, as the user-access scenarios
//! take it: a server with an admin and a sign-in front end of `acme`
//! (played through the typed client with a `signin` key), the applications
//! a user authorizes, the pending request and its consented code, and the
//! token requests that redeem codes and refresh tokens.

use std::collections::HashMap;

use extapps_client::{Client as Typed, ErrorReport, GeneratedClient as Client, v1 as pb};
use extapps_server::domain::caller::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::fixtures::{grant, native_app, register};
use crate::support::harness::{Backend, SIGNIN_URL, TestServer};
use crate::support::oauth_http::{http, post_form};

/// A native application's loopback redirect URL, as registered (no port).
pub(crate) const LOOPBACK: &str = "http://127.0.0.1/callback";
/// A confidential web application's redirect URLs.
pub(crate) const WEB_CALLBACK: &str = "https://web.example/callback";
pub(crate) const WEB_OTHER: &str = "https://web.example/other";
/// The RFC 7636 example verifier and its S256 challenge.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub(crate) const USER: &str = "user-7f3a";

/// A server with an admin and a sign-in front end of `acme`.
pub(crate) struct Setup {
    pub(crate) server: TestServer,
    pub(crate) admin: Client,
    pub(crate) signin: Typed,
    pub(crate) introspect_key: String,
}

pub(crate) async fn setup(backend: Backend) -> Setup {
    let server = TestServer::start(backend).await;
    setup_on(server).await
}

pub(crate) async fn setup_on(server: TestServer) -> Setup {
    let admin = server.admin("acme").await;
    let signin = typed(&server, Some("acme"), Role::Signin).await;
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    Setup {
        server,
        admin,
        signin,
        introspect_key,
    }
}

pub(crate) async fn typed(server: &TestServer, organization: Option<&str>, role: Role) -> Typed {
    let key = server.key(organization, role, &[]).await;
    Typed::builder(&server.url, &key).connect().await.unwrap()
}

/// A registered application: its client ID and, if confidential, secret.
pub(crate) struct App {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) secret: Option<String>,
}

pub(crate) async fn native(setup: &mut Setup, display_name: &str) -> App {
    let mut app = native_app(display_name);
    app.grants = vec![grant("OR", &["OR.Jobs", "OR.Queues"], &[])];
    app.redirect_urls = vec![LOOPBACK.into(), "com.example.app:/callback".into()];
    registered(register(&mut setup.admin, "acme", app).await)
}

pub(crate) async fn web(setup: &mut Setup, display_name: &str) -> App {
    let app = pb::Application {
        display_name: display_name.into(),
        r#type: pb::ApplicationType::Confidential.into(),
        grants: vec![grant("OR", &["OR.Jobs", "OR.Queues"], &["OR.Jobs.Read"])],
        redirect_urls: vec![WEB_CALLBACK.into(), WEB_OTHER.into()],
        ..Default::default()
    };
    registered(register(&mut setup.admin, "acme", app).await)
}

pub(crate) fn registered(response: pb::RegisterApplicationResponse) -> App {
    let app = response.application.unwrap();
    App {
        name: app.name,
        id: app.client_id,
        secret: (!response.client_secret.is_empty()).then_some(response.client_secret),
    }
}

/// `GET /oauth2/authorize` with `params`, redirects not followed.
pub(crate) async fn authorize(server: &TestServer, params: &[(&str, &str)]) -> reqwest::Response {
    http()
        .get(format!("{}/oauth2/authorize", server.url))
        .query(params)
        .send()
        .await
        .unwrap()
}

/// The query parameters of a `303` answer's `Location`, which must start
/// with `target`.
pub(crate) fn redirected(response: &reqwest::Response, target: &str) -> HashMap<String, String> {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{response:?}");
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{target}?")),
        "{location} goes to {target}"
    );
    query_of(location)
}

pub(crate) fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts a request for `app` with PKCE and `state`; returns the pending
/// request's ID.
pub(crate) async fn pending(server: &TestServer, app: &App, redirect: &str, scope: &str) -> String {
    let response = authorize(
        server,
        &[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", "s-123"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    redirected(&response, SIGNIN_URL)["authorization_request"].clone()
}

/// A code for `app`, consented by [`USER`] to `scope`.
pub(crate) async fn consented_code(
    setup: &Setup,
    app: &App,
    redirect: &str,
    scope: &str,
) -> String {
    let id = pending(&setup.server, app, redirect, scope).await;
    let scopes = scope.split(' ').map(str::to_owned).collect();
    let url = setup
        .signin
        .accept_authorization_request(&id, USER, scopes)
        .await
        .unwrap();
    let answer = query_of(&url);
    assert_eq!(answer["state"], "s-123");
    assert_eq!(answer["iss"], setup.server.url);
    answer["code"].clone()
}

/// A code for the confidential `app` (redirect [`WEB_CALLBACK`], no PKCE),
/// consented by [`USER`] to `scope`.
pub(crate) async fn web_code(setup: &Setup, app: &App, scope: &str) -> String {
    let response = authorize(
        &setup.server,
        &[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", WEB_CALLBACK),
            ("scope", scope),
        ],
    )
    .await;
    let id = redirected(&response, SIGNIN_URL)["authorization_request"].clone();
    let scopes = scope.split(' ').map(str::to_owned).collect();
    let url = setup
        .signin
        .accept_authorization_request(&id, USER, scopes)
        .await
        .unwrap();
    query_of(&url)["code"].clone()
}

/// Posts to the token endpoint as `app`: with its secret (Basic) if it has
/// one, else its client ID in the body.
pub(crate) async fn token_request(
    server: &TestServer,
    app: &App,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = form.to_vec();
    let basic = match &app.secret {
        Some(secret) => Some((app.id.as_str(), secret.as_str())),
        None => {
            form.push(("client_id", &app.id));
            None
        }
    };
    post_form(&server.url, "/oauth2/token", basic, &form).await
}

pub(crate) async fn redeem(
    server: &TestServer,
    app: &App,
    code: &str,
    redirect: &str,
) -> (StatusCode, Value) {
    token_request(
        server,
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub(crate) async fn refresh(server: &TestServer, app: &App, token: &str) -> (StatusCode, Value) {
    token_request(
        server,
        app,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

pub(crate) fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no `{field}` in {body}"))
}

pub(crate) fn grpc_error<T: std::fmt::Debug>(
    result: Result<T, extapps_client::Error>,
) -> ErrorReport {
    let error = result.unwrap_err();
    error.report().cloned().unwrap_or_else(|| panic!("{error}"))
}
