//! User-context access: an application sends the browser to
//! `/oauth2/authorize`, the sign-in front end (played here through the typed
//! client with a `signin` key) answers the pending request, and the
//! application redeems the code and rotates refresh tokens. Every rule of
//! SPEC section 4, positive and negative, on both databases.

use std::collections::HashMap;

use extapps_client::{
    Client as Typed, ErrorReport, GeneratedClient as Client, model::ApplicationName, v1 as pb,
};
use extapps_server::domain::caller::Role;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, RefreshToken,
    Scope, TokenResponse, TokenUrl, basic::BasicClient,
};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use tonic::Code;

use crate::fixtures::*;
use crate::harness::{Backend, SIGNIN_URL, TestServer, error_of};
use crate::tokens::{http, introspect_grpc, is_active, post_form};

crate::on_both_backends!(
    an_oauth_library_runs_the_code_flow_with_pkce_and_refresh_tokens,
    authorize_refuses_untrusted_redirects_with_a_page_and_the_rest_by_redirect,
    the_sign_in_handoff_answers_each_request_once,
    codes_are_single_use_and_bound_to_client_redirect_and_verifier,
    refresh_tokens_rotate_and_reuse_revokes_the_whole_grant,
    application_changes_end_or_narrow_user_tokens,
    removed_user_scopes_never_come_back,
    refresh_tokens_end_with_the_secret_they_were_issued_under,
    users_list_and_revoke_what_they_authorized,
    simultaneous_redemptions_have_one_winner,
    every_replica_sees_user_revocations_at_once,
);

/// A native application's loopback redirect URL, as registered (no port).
const LOOPBACK: &str = "http://127.0.0.1/callback";
/// A confidential web application's redirect URLs.
const WEB_CALLBACK: &str = "https://web.example/callback";
const WEB_OTHER: &str = "https://web.example/other";
/// The RFC 7636 example verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const USER: &str = "user-7f3a";

/// A server with an admin and a sign-in front end of `acme`.
struct Setup {
    server: TestServer,
    admin: Client,
    signin: Typed,
    introspect_key: String,
}

async fn setup(backend: Backend) -> Setup {
    let server = TestServer::start(backend).await;
    setup_on(server).await
}

async fn setup_on(server: TestServer) -> Setup {
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

async fn typed(server: &TestServer, organization: Option<&str>, role: Role) -> Typed {
    let key = server.key(organization, role, &[]).await;
    Typed::builder(&server.url, &key).connect().await.unwrap()
}

/// A registered application: its client ID and, if confidential, secret.
struct App {
    name: String,
    id: String,
    secret: Option<String>,
}

async fn native(setup: &mut Setup, display_name: &str) -> App {
    let mut app = native_app(display_name);
    app.grants = vec![grant("OR", &["OR.Jobs", "OR.Queues"], &[])];
    app.redirect_urls = vec![LOOPBACK.into(), "com.example.app:/callback".into()];
    registered(register(&mut setup.admin, "acme", app).await)
}

async fn web(setup: &mut Setup, display_name: &str) -> App {
    let app = pb::Application {
        display_name: display_name.into(),
        r#type: pb::ApplicationType::Confidential.into(),
        grants: vec![grant("OR", &["OR.Jobs", "OR.Queues"], &["OR.Jobs.Read"])],
        redirect_urls: vec![WEB_CALLBACK.into(), WEB_OTHER.into()],
        ..Default::default()
    };
    registered(register(&mut setup.admin, "acme", app).await)
}

fn registered(response: pb::RegisterApplicationResponse) -> App {
    let app = response.application.unwrap();
    App {
        name: app.name,
        id: app.client_id,
        secret: (!response.client_secret.is_empty()).then_some(response.client_secret),
    }
}

/// `GET /oauth2/authorize` with `params`, redirects not followed.
async fn authorize(server: &TestServer, params: &[(&str, &str)]) -> reqwest::Response {
    http()
        .get(format!("{}/oauth2/authorize", server.url))
        .query(params)
        .send()
        .await
        .unwrap()
}

/// The query parameters of a `303` answer's `Location`, which must start
/// with `target`.
fn redirected(response: &reqwest::Response, target: &str) -> HashMap<String, String> {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{response:?}");
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{target}?")),
        "{location} goes to {target}"
    );
    query_of(location)
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts a request for `app` with PKCE and `state`; returns the pending
/// request's ID.
async fn pending(server: &TestServer, app: &App, redirect: &str, scope: &str) -> String {
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
async fn consented_code(setup: &Setup, app: &App, redirect: &str, scope: &str) -> String {
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
async fn web_code(setup: &Setup, app: &App, scope: &str) -> String {
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
async fn token_request(
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

async fn redeem(server: &TestServer, app: &App, code: &str, redirect: &str) -> (StatusCode, Value) {
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

async fn refresh(server: &TestServer, app: &App, token: &str) -> (StatusCode, Value) {
    token_request(
        server,
        app,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no `{field}` in {body}"))
}

fn grpc_error<T: std::fmt::Debug>(result: Result<T, extapps_client::Error>) -> ErrorReport {
    let error = result.unwrap_err();
    error.report().cloned().unwrap_or_else(|| panic!("{error}"))
}

async fn an_oauth_library_runs_the_code_flow_with_pkce_and_refresh_tokens(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Desktop Robot").await;
    let server = &setup.server;
    // A native application picks its loopback port at start (RFC 8252).
    let redirect = "http://127.0.0.1:49152/callback";
    let oauth = BasicClient::new(ClientId::new(app.id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth2/authorize", server.url)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/oauth2/token", server.url)).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("OR.Jobs".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let id = redirected(&response, SIGNIN_URL)["authorization_request"].clone();

    // The front end shows the consent screen...
    let request = setup.signin.authorization_request(&id).await.unwrap();
    assert_eq!(request.id(), id);
    assert_eq!(request.application.to_string(), app.name);
    assert_eq!(request.application_display_name, "Desktop Robot");
    assert_eq!(
        request.application_kind,
        extapps_client::model::ApplicationType::NonConfidential
    );
    assert!(request.offline_access);
    assert_eq!(request.redirect_host, "127.0.0.1");
    let scopes: Vec<_> = request
        .scopes
        .iter()
        .map(|s| {
            (
                s.scope.as_str(),
                s.resource.as_str(),
                s.description.as_str(),
            )
        })
        .collect();
    assert_eq!(scopes, [("OR.Jobs", "OR", "Start, stop and read jobs")]);
    assert_eq!(
        request.scopes[0].resource_display_name,
        "Orchestrator API Access"
    );
    // ... and the user consents.
    let back = setup
        .signin
        .accept_authorization_request(&id, USER, vec!["OR.Jobs".into(), "offline_access".into()])
        .await
        .unwrap();
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    let answer = query_of(&back);
    assert_eq!(&answer["state"], csrf.secret());
    assert_eq!(answer["iss"], server.url, "RFC 9207");
    let code = answer["code"].clone();
    assert!(code.starts_with("extapps_ac_"));

    let client = http();
    let tokens = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&client)
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let first_refresh = tokens.refresh_token().unwrap().secret().clone();
    assert!(first_refresh.starts_with("extapps_rt_"));
    let introspected = introspect_grpc(&server.url, &setup.introspect_key, &access).await;
    assert!(introspected.active);
    assert_eq!(introspected.sub, USER);
    assert_eq!(introspected.scope, "OR.Jobs");
    assert_eq!(introspected.client_id, app.id);
    assert_eq!(introspected.aud, ["OR"]);
    let http_view =
        crate::tokens::introspect_http(&server.url, &setup.introspect_key, &access).await;
    assert_eq!(http_view["sub"], USER);

    // The refresh token rotates; both access tokens stay valid.
    let refreshed = oauth
        .exchange_refresh_token(&RefreshToken::new(first_refresh.clone()))
        .request_async(&client)
        .await
        .unwrap();
    let second_refresh = refreshed.refresh_token().unwrap().secret().clone();
    assert_ne!(second_refresh, first_refresh);
    assert!(
        is_active(
            &server.url,
            &setup.introspect_key,
            refreshed.access_token().secret()
        )
        .await
    );
    assert!(is_active(&server.url, &setup.introspect_key, &access).await);
    let again = oauth
        .exchange_refresh_token(&RefreshToken::new(second_refresh))
        .request_async(&client)
        .await
        .unwrap();
    assert_eq!(
        again
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ["OR.Jobs", "offline_access"]
    );

    // Nothing usable is stored: codes and refresh tokens as digests only.
    let dump = stored_grants(server).await;
    assert!(
        !dump.contains(&first_refresh[11..]),
        "no refresh token in the database"
    );
    assert!(!dump.contains("extapps_rt_") && !dump.contains("extapps_ac_"));
}

/// Every grant row, as text, for checking what is stored.
async fn stored_grants(server: &TestServer) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let db = server.store().connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT * FROM user_grants",
        ))
        .await
        .unwrap();
    format!("{rows:?}")
}

async fn count(server: &TestServer, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = server.store().connection();
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT COUNT(*) FROM {table}"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

async fn authorize_refuses_untrusted_redirects_with_a_page_and_the_rest_by_redirect(
    backend: Backend,
) {
    let mut setup = setup(backend).await;
    let native_app = native(&mut setup, "Native").await;
    let web_app = web(&mut setup, "Web").await;
    let server = &setup.server;
    let good = |app: &App, redirect: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", app.id.clone().leak() as &str),
            ("redirect_uri", redirect),
            ("state", "xyz"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
    };

    // Before the redirect URL is trusted: a page, never a redirect.
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no client", vec![("response_type", "code")]),
        (
            "unknown client",
            vec![("response_type", "code"), ("client_id", &unknown)],
        ),
        ("unregistered redirect", {
            let mut p = good(&web_app, "https://evil.example/callback");
            p.retain(|(k, _)| *k != "code_challenge" && *k != "code_challenge_method");
            p
        }),
        (
            "redirect differing in a slash",
            good(&web_app, "https://web.example/callback/"),
        ),
        (
            "loopback port for a confidential app",
            good(&web_app, "http://127.0.0.1:5000/callback"),
        ),
        ("no redirect with two registered", {
            let mut p = good(&native_app, LOOPBACK);
            p.retain(|(k, _)| *k != "redirect_uri");
            p
        }),
        ("repeated parameter", {
            let mut p = good(&native_app, LOOPBACK);
            p.push(("client_id", "again"));
            p
        }),
    ];
    for (case, params) in cases {
        let response = authorize(server, &params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(response.headers().get("location").is_none(), "{case}");
        assert_eq!(
            response.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("invalid_request"), "{case}: {page}");
        assert!(
            !page.contains("evil.example") && !page.contains("again"),
            "no echo"
        );
    }
    // The same as JSON for a client that asks for JSON.
    let json: Value = http()
        .get(format!("{}/oauth2/authorize", server.url))
        .header("accept", "application/json")
        .query(&[("client_id", unknown.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["error"], "invalid_request");

    // Once it is trusted: back to the application with `error`, `state`
    // and `iss`.
    let refused = |params: Vec<(&'static str, &'static str)>, redirect: &'static str| {
        let server = &setup.server;
        async move {
            let response = authorize(server, &params).await;
            let answer = redirected(&response, redirect);
            assert_eq!(answer["state"], "xyz");
            assert_eq!(answer["iss"], server.url);
            answer
        }
    };
    let with =
        |mut params: Vec<(&'static str, &'static str)>, name: &'static str, value: &'static str| {
            params.retain(|(k, _)| *k != name);
            if !value.is_empty() {
                params.push((name, value));
            }
            params
        };
    let base = good(&native_app, LOOPBACK);
    for (params, error) in [
        (
            with(base.clone(), "response_type", "token"),
            "unsupported_response_type",
        ),
        (with(base.clone(), "response_type", ""), "invalid_request"),
        (
            with(
                with(base.clone(), "code_challenge", ""),
                "code_challenge_method",
                "",
            ),
            "invalid_request",
        ),
        (
            with(base.clone(), "code_challenge_method", "plain"),
            "invalid_request",
        ),
        (
            with(base.clone(), "code_challenge_method", ""),
            "invalid_request",
        ),
        (
            with(base.clone(), "code_challenge", "too-short"),
            "invalid_request",
        ),
        (
            with(base.clone(), "scope", "OR.Jobs OR.Assets"),
            "invalid_scope",
        ),
        (with(base.clone(), "scope", "PM.Groups"), "invalid_scope"),
    ] {
        let answer = refused(params, LOOPBACK).await;
        assert_eq!(answer["error"], error);
        assert!(!answer["error_description"].is_empty());
    }
    // PKCE is optional for a confidential application, `plain` never.
    let web_base = good(&web_app, WEB_OTHER);
    let no_pkce = with(
        with(web_base.clone(), "code_challenge", ""),
        "code_challenge_method",
        "",
    );
    redirected(&authorize(server, &no_pkce).await, SIGNIN_URL);
    let answer = refused(with(web_base, "code_challenge_method", "plain"), WEB_OTHER).await;
    assert_eq!(answer["error"], "invalid_request");
    // An application without user scopes may not ask users, and its
    // registered URL is no reason to send a browser anywhere: a page.
    let mut service = service_app("Service");
    service.redirect_urls = vec![WEB_CALLBACK.into()];
    let service = registered(register(&mut setup.admin, "acme", service).await);
    for params in [
        good(&service, WEB_CALLBACK),
        vec![
            ("response_type", "code"),
            ("client_id", service.id.as_str()),
            ("state", "x"),
        ],
    ] {
        let response = authorize(server, &params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get("location").is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("unauthorized_client"), "{page}");
    }
    // The one registered URL is used when none is named.
    let mut single = native_app_with_one_url();
    single.display_name = "Single".into();
    let single = registered(register(&mut setup.admin, "acme", single).await);
    let params = with(good(&single, LOOPBACK), "redirect_uri", "");
    let id =
        redirected(&authorize(&setup.server, &params).await, SIGNIN_URL)["authorization_request"]
            .clone();
    let request = setup.signin.authorization_request(&id).await.unwrap();
    assert_eq!(request.redirect_host, "com.example.app");

    // A flood of requests writes nothing: pending requests live in their IDs.
    for _ in 0..200 {
        pending(&setup.server, &native_app, LOOPBACK, "OR.Jobs").await;
    }
    assert_eq!(count(&setup.server, "user_grants").await, 0);
    assert_eq!(
        count(&setup.server, "answered_authorization_requests").await,
        0
    );

    // RFC 8414 metadata names the endpoint and what it supports.
    let metadata: Value = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            setup.server.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["authorization_endpoint"],
        format!("{}/oauth2/authorize", setup.server.url)
    );
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    for grant in ["client_credentials", "authorization_code", "refresh_token"] {
        assert!(
            metadata["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&Value::from(grant)),
            "{grant}"
        );
    }
}

fn native_app_with_one_url() -> pb::Application {
    let mut app = native_app("One URL");
    app.grants = vec![grant("OR", &["OR.Jobs"], &[])];
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sign_in_url_authorize_says_what_to_set() {
    let server = TestServer::start_with_user_access(Backend::Sqlite, Default::default()).await;
    let mut setup = setup_on(server).await;
    let app = native(&mut setup, "Native").await;
    let response = authorize(
        &setup.server,
        &[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", LOOPBACK),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.unwrap();
    assert!(page.contains("temporarily_unavailable"), "{page}");
    assert!(
        page.contains("--signin-url") && page.contains("EXTAPPS_SIGNIN_URL"),
        "{page}"
    );
}

async fn the_sign_in_handoff_answers_each_request_once(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Handoff").await;
    let server = &setup.server;
    let signin = &setup.signin;
    let id = pending(server, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;

    // Bad answers change nothing.
    let bad = grpc_error(
        signin
            .accept_authorization_request(
                &id,
                " spaced",
                vec!["OR.Jobs".into(), "OR.Assets".into()],
            )
            .await,
    );
    assert_eq!(bad.code, Code::InvalidArgument);
    let fields: Vec<_> = bad.violations.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(fields, ["subject", "scopes[1]"]);
    let only_offline = grpc_error(
        signin
            .accept_authorization_request(&id, USER, vec!["offline_access".into()])
            .await,
    );
    assert_eq!(only_offline.code, Code::InvalidArgument);
    let none = grpc_error(signin.accept_authorization_request(&id, USER, vec![]).await);
    assert_eq!(none.violations[0].0, "scopes");
    let bad_error = grpc_error(signin.reject_authorization_request(&id, "nope", "").await);
    assert_eq!(bad_error.violations[0].0, "error");

    // Other callers: another organization's key, an altered ID, an admin.
    let other_org = typed(server, Some("globex"), Role::Signin).await;
    let hidden = grpc_error(other_org.authorization_request(&id).await);
    assert_eq!(hidden.code, Code::NotFound);
    assert_eq!(
        hidden.reason.as_deref(),
        Some("AUTHORIZATION_REQUEST_NOT_FOUND")
    );
    let altered = format!("{}A{}", &id[..40], &id[41..]);
    let altered = if altered == id {
        format!("{}B{}", &id[..40], &id[41..])
    } else {
        altered
    };
    let unknown = grpc_error(signin.authorization_request(&altered).await);
    assert_eq!(unknown.code, Code::NotFound);
    let admin = typed(server, Some("acme"), Role::Admin).await;
    let denied = grpc_error(admin.authorization_request(&id).await);
    assert_eq!(denied.code, Code::PermissionDenied);
    let platform = typed(server, None, Role::Signin).await;
    assert!(
        platform.authorization_request(&id).await.is_ok(),
        "platform-wide"
    );

    // One answer.
    let url = signin
        .accept_authorization_request(&id, USER, vec!["OR.Queues".into()])
        .await
        .unwrap();
    assert!(query_of(&url).contains_key("code"));
    for again in [
        grpc_error(signin.authorization_request(&id).await),
        grpc_error(
            signin
                .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
                .await,
        ),
        grpc_error(signin.reject_authorization_request(&id, "", "").await),
    ] {
        assert_eq!(again.code, Code::FailedPrecondition);
        assert_eq!(
            again.reason.as_deref(),
            Some("AUTHORIZATION_REQUEST_ANSWERED")
        );
    }

    // A rejection goes back with `access_denied` (or the error chosen).
    let id = pending(server, &app, LOOPBACK, "OR.Jobs").await;
    let url = signin
        .reject_authorization_request(&id, "", "the user declined")
        .await
        .unwrap();
    assert!(url.starts_with(&format!("{LOOPBACK}?")));
    let answer = query_of(&url);
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["error_description"], "the user declined");
    assert_eq!(answer["state"], "s-123");
    assert_eq!(answer["iss"], server.url);
    let late = grpc_error(
        signin
            .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
            .await,
    );
    assert_eq!(
        late.reason.as_deref(),
        Some("AUTHORIZATION_REQUEST_ANSWERED")
    );

    // A redirect URL removed since the request was made ends the request.
    let id = pending(server, &app, LOOPBACK, "OR.Jobs").await;
    setup
        .admin
        .update_application(pb::UpdateApplicationRequest {
            application: Some(pb::Application {
                name: app.name.clone(),
                redirect_urls: vec!["com.example.app:/callback".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["redirect_urls".into()],
            }),
        })
        .await
        .unwrap();
    for gone in [
        grpc_error(signin.authorization_request(&id).await),
        grpc_error(
            signin
                .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
                .await,
        ),
    ] {
        assert_eq!(gone.code, Code::NotFound);
    }

    // Requests expire (10 minutes by default).
    let id = pending(server, &app, "com.example.app:/callback", "OR.Jobs").await;
    server.clock.advance(time::Duration::minutes(10));
    for expired in [
        grpc_error(signin.authorization_request(&id).await),
        grpc_error(
            signin
                .accept_authorization_request(&id, USER, vec!["OR.Jobs".into()])
                .await,
        ),
    ] {
        assert_eq!(expired.code, Code::FailedPrecondition);
        assert_eq!(
            expired.reason.as_deref(),
            Some("AUTHORIZATION_REQUEST_EXPIRED")
        );
    }

    // Each answer is audited.
    let actions: Vec<_> = audit(&mut setup.admin, "acme")
        .await
        .iter()
        .map(|e| (e.action(), e.details.get("subject").cloned()))
        .collect();
    assert_eq!(
        actions[..3],
        [
            (pb::AuditAction::ApplicationUpdated, None),
            (pb::AuditAction::AuthorizationRejected, None),
            (
                pb::AuditAction::AuthorizationAccepted,
                Some(USER.to_owned())
            ),
        ]
    );
}

async fn codes_are_single_use_and_bound_to_client_redirect_and_verifier(backend: Backend) {
    let mut setup = setup(backend).await;
    let native_app = native(&mut setup, "Native").await;
    let web_app = web(&mut setup, "Web").await;
    let server = &setup.server;

    // A confidential application authenticates with its secret; PKCE is
    // optional for it.
    let web_code = web_code(&setup, &web_app, "OR.Jobs").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", web_code.as_str()),
        ("redirect_uri", WEB_CALLBACK),
    ];
    let (status, body) = post_form(
        &server.url,
        "/oauth2/token",
        None,
        &[&form[..], &[("client_id", &web_app.id)]].concat(),
    )
    .await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::UNAUTHORIZED, "invalid_client"),
        "no secret"
    );
    let with_verifier = [&form[..], &[("code_verifier", VERIFIER)]].concat();
    let (status, body) = token_request(server, &web_app, &with_verifier).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "PKCE downgrade"
    );
    let (status, body) = token_request(server, &web_app, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    assert_eq!(text(&body, "scope"), "OR.Jobs");

    // The native application's code, tried every wrong way first.
    let code = consented_code(&setup, &native_app, LOOPBACK, "OR.Jobs offline_access").await;
    let wrong_verifier = VERIFIER.replace('d', "e");
    type Attempt<'a> = (&'a str, &'a App, Vec<(&'a str, &'a str)>, &'a str);
    let attempts: [Attempt; 6] = [
        (
            "another client",
            &web_app,
            vec![
                ("code", &code),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
        (
            "another redirect",
            &native_app,
            vec![
                ("code", &code),
                ("redirect_uri", "com.example.app:/callback"),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
        (
            "no redirect",
            &native_app,
            vec![("code", &code), ("code_verifier", VERIFIER)],
            "invalid_request",
        ),
        (
            "no verifier",
            &native_app,
            vec![("code", &code), ("redirect_uri", LOOPBACK)],
            "invalid_request",
        ),
        (
            "wrong verifier",
            &native_app,
            vec![
                ("code", &code),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", &wrong_verifier),
            ],
            "invalid_grant",
        ),
        (
            "a typo in the code",
            &native_app,
            vec![
                ("code", &code[..code.len() - 1]),
                ("redirect_uri", LOOPBACK),
                ("code_verifier", VERIFIER),
            ],
            "invalid_grant",
        ),
    ];
    for (case, client, form, error) in attempts {
        let form = [&[("grant_type", "authorization_code")][..], &form[..]].concat();
        let (status, body) = token_request(server, client, &form).await;
        assert_eq!(
            (status, text(&body, "error")),
            (StatusCode::BAD_REQUEST, error),
            "{case}: {body}"
        );
    }
    let (status, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the wrong tries did not use the code up: {body}"
    );
    let access = text(&body, "access_token").to_owned();
    let refresh_token = text(&body, "refresh_token").to_owned();
    assert!(is_active(&server.url, &setup.introspect_key, &access).await);

    // A replayed code is refused and revokes what it gave (RFC 6749 4.1.2).
    let (status, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(!is_active(&server.url, &setup.introspect_key, &access).await);
    let (status, _) = refresh(server, &native_app, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let events = audit(&mut setup.admin, "acme").await;
    assert_eq!(events[0].action(), pb::AuditAction::GrantReplayed);
    assert_eq!(events[0].details["replayed"], "authorization_code");

    // Codes live 60 seconds.
    let late = consented_code(&setup, &native_app, LOOPBACK, "OR.Jobs").await;
    server.clock.advance(time::Duration::seconds(61));
    let (status, body) = redeem(server, &native_app, &late, LOOPBACK).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    // A non-confidential client may not use client credentials.
    let (status, body) =
        token_request(server, &native_app, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "unauthorized_client")
    );
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_whole_grant(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Native").await;
    let server = &setup.server;
    let key = &setup.introspect_key;
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, first) = redeem(server, &app, &code, LOOPBACK).await;
    let r1 = text(&first, "refresh_token").to_owned();

    let (status, second) = refresh(server, &app, &r1).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = text(&second, "refresh_token").to_owned();
    assert_ne!(r1, r2);
    // A client that lost the answer retries within the grace window and
    // gets the same successor.
    server.clock.advance(time::Duration::seconds(20));
    let (status, retried) = refresh(server, &app, &r1).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(text(&retried, "refresh_token"), r2);
    // Narrowing: a subset of the granted scopes.
    let (status, narrowed) = token_request(
        server,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("scope", "OR.Queues"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(text(&narrowed, "scope"), "OR.Queues offline_access");
    let r3 = text(&narrowed, "refresh_token").to_owned();
    let (status, wider) = token_request(
        server,
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r3),
            ("scope", "OR.Assets"),
        ],
    )
    .await;
    assert_eq!(
        (status, text(&wider, "error")),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );

    // The token just replaced (r2) gets its successor again up to 30 s
    // after the rotation, and is reuse after that: the whole grant ends.
    server.clock.advance(time::Duration::seconds(30));
    let (status, body) = refresh(server, &app, &r2).await;
    assert_eq!(status, StatusCode::OK, "the last moment of grace: {body}");
    assert_eq!(text(&body, "refresh_token"), r3);
    server.clock.advance(time::Duration::milliseconds(1));
    let (status, body) = refresh(server, &app, &r2).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, _) = refresh(server, &app, &r3).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the newest token died too");
    for body in [&first, &second, &narrowed] {
        assert!(!is_active(&server.url, key, text(body, "access_token")).await);
    }
    let events = audit(&mut setup.admin, "acme").await;
    assert_eq!(events[0].action(), pb::AuditAction::GrantReplayed);
    assert_eq!(events[0].details["replayed"], "refresh_token");
    assert_eq!(events[0].details["subject"], USER);

    // A refresh token unused for 30 days stops working.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let idle = text(&body, "refresh_token").to_owned();
    server.clock.advance(time::Duration::days(30));
    let (status, _) = refresh(server, &app, &idle).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A forged token naming a real grant (its MAC altered, its checksum
    // made right) is merely invalid: it does not end the grant.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let genuine = text(&body, "refresh_token").to_owned();
    let forged = forge(&genuine);
    let (status, body) = refresh(server, &app, &forged).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, body) = refresh(server, &app, &genuine).await;
    assert_eq!(status, StatusCode::OK, "the grant lives on: {body}");

    // RFC 7009: the application revokes its refresh token, and with it the
    // grant's access tokens; the token just replaced revokes it too (a
    // client that lost a rotation's answer can still log out).
    let access = text(&body, "access_token").to_owned();
    let revocable = genuine;
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        None,
        &[("token", &revocable), ("client_id", &app.id)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!is_active(&server.url, key, &access).await);
    let (status, _) = refresh(server, &app, &revocable).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// `token` with one byte of its MAC changed and its checksum made right
/// again: what someone who knows the grant's ID could make.
fn forge(token: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let prefix = "extapps_rt_";
    let mut body = URL_SAFE_NO_PAD
        .decode(&token[prefix.len()..token.len() - 8])
        .unwrap();
    let last = body.len() - 1;
    body[last] ^= 0x55;
    let mut forged = String::from(prefix);
    URL_SAFE_NO_PAD.encode_string(&body, &mut forged);
    let checksum = crc32fast::hash(forged.as_bytes());
    forged.push_str(&format!("{checksum:08x}"));
    forged
}

async fn application_changes_end_or_narrow_user_tokens(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Native").await;
    let web_app = web(&mut setup, "Web").await;
    let server = &setup.server;
    let key = setup.introspect_key.clone();
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let access = text(&body, "access_token").to_owned();
    let refresh_token = text(&body, "refresh_token").to_owned();

    // Removing a user scope narrows live tokens at once.
    setup
        .admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: vec![grant("OR", &["OR.Queues", "OR.Assets"], &[])],
            etag: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        introspect_grpc(&server.url, &key, &access).await.scope,
        "OR.Queues"
    );
    let (status, body) = refresh(server, &app, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        text(&body, "scope"),
        "OR.Queues offline_access",
        "never the new OR.Assets"
    );
    let refresh_token = text(&body, "refresh_token").to_owned();

    // Deleting the application ends everything.
    setup
        .admin
        .delete_application(pb::DeleteApplicationRequest {
            name: app.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert!(!is_active(&server.url, &key, &access).await);
    let (status, _) = refresh(server, &app, &refresh_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the client is gone");
    assert_eq!(count(server, "user_grants").await, 0, "its grants with it");

    // A new secret with `revoke_tokens` ends the refresh tokens and codes
    // of a confidential application too.
    let first = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    let (status, body) = token_request(
        server,
        &web_app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &first),
            ("redirect_uri", WEB_CALLBACK),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let web_refresh = text(&body, "refresh_token").to_owned();
    let unredeemed = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    server.clock.advance(time::Duration::milliseconds(1));
    let new_secret = rotate(&mut setup.admin, &web_app.name, 0, true)
        .await
        .client_secret;
    let rotated = App {
        name: web_app.name.clone(),
        id: web_app.id.clone(),
        secret: Some(new_secret),
    };
    let (status, body) = refresh(server, &rotated, &web_refresh).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, body) = token_request(
        server,
        &rotated,
        &[
            ("grant_type", "authorization_code"),
            ("code", &unredeemed),
            ("redirect_uri", WEB_CALLBACK),
        ],
    )
    .await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

/// A user scope removed from an application never comes back to access or
/// refresh tokens issued before its removal, even once granted again.
async fn removed_user_scopes_never_come_back(backend: Backend) {
    let mut setup = setup(backend).await;
    let web_app = web(&mut setup, "Web").await;
    let native_app = native(&mut setup, "Native").await;
    let server = &setup.server;
    let key = setup.introspect_key.clone();
    let code = web_code(&setup, &web_app, "OR.Jobs OR.Queues offline_access").await;
    let (status, body) = token_request(
        server,
        &web_app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_CALLBACK),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let web_access = text(&body, "access_token").to_owned();
    let web_refresh = text(&body, "refresh_token").to_owned();
    let code = consented_code(
        &setup,
        &native_app,
        LOOPBACK,
        "OR.Jobs OR.Queues offline_access",
    )
    .await;
    let (_, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    let native_access = text(&body, "access_token").to_owned();
    let native_refresh = text(&body, "refresh_token").to_owned();

    // Every user scope of the web application goes; OR.Jobs of the native
    // one (which keeps OR.Queues).
    let web_grants = |user: &[&str]| vec![grant("OR", user, &["OR.Jobs.Read"])];
    set_scopes(&mut setup.admin, &web_app.name, web_grants(&[])).await;
    set_scopes(
        &mut setup.admin,
        &native_app.name,
        vec![grant("OR", &["OR.Queues"], &[])],
    )
    .await;
    let ended = async |access: &str| !is_active(&server.url, &key, access).await;
    let scope = async |access: &str| introspect_grpc(&server.url, &key, access).await.scope;
    assert!(ended(&web_access).await);
    assert_eq!(scope(&native_access).await, "OR.Queues");
    // Granted again: nothing issued before comes back.
    set_scopes(
        &mut setup.admin,
        &web_app.name,
        web_grants(&["OR.Jobs", "OR.Queues"]),
    )
    .await;
    set_scopes(
        &mut setup.admin,
        &native_app.name,
        vec![grant("OR", &["OR.Jobs", "OR.Queues"], &[])],
    )
    .await;
    assert!(ended(&web_access).await);
    assert_eq!(scope(&native_access).await, "OR.Queues");
    let (status, body) = refresh(server, &web_app, &web_refresh).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
    // The native authorization goes on with what it kept, never more.
    let (status, body) = refresh(server, &native_app, &native_refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(text(&body, "scope"), "OR.Queues offline_access");
    assert_eq!(
        scope(text(&body, "access_token")).await,
        "OR.Queues",
        "the new access token"
    );
    // The user authorizes again: the new grant has the scopes.
    let code = consented_code(&setup, &native_app, LOOPBACK, "OR.Jobs").await;
    let (_, body) = redeem(server, &native_app, &code, LOOPBACK).await;
    assert_eq!(
        introspect_grpc(&server.url, &key, text(&body, "access_token"))
            .await
            .scope,
        "OR.Jobs"
    );
}

/// A refresh token issued to a client whose secret a rotation with
/// `revoke_tokens` then ended ends too, even on a grant the rotation's own
/// revocation of grants did not see (one accepted while it committed): the
/// grant records what its refresh token was issued under.
async fn refresh_tokens_end_with_the_secret_they_were_issued_under(backend: Backend) {
    let mut setup = setup(backend).await;
    let web_app = web(&mut setup, "Web").await;
    let server = &setup.server;
    let redeem_web = async |code: &str| {
        let (status, body) = token_request(
            server,
            &web_app,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", WEB_CALLBACK),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        text(&body, "refresh_token").to_owned()
    };
    let code = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    let before = redeem_web(&code).await;
    // The old secret keeps working for an hour, but its tokens end.
    rotate(&mut setup.admin, &web_app.name, 3600, true).await;
    // As if the grant had been accepted while the rotation committed.
    let db = server.store().connection();
    let sql = match backend {
        Backend::Sqlite => "UPDATE user_grants SET revoke_time = NULL WHERE application_id = ?",
        Backend::Postgres => "UPDATE user_grants SET revoke_time = NULL WHERE application_id = $1",
    };
    let revived = db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [web_app.id.clone().into()],
        ))
        .await
        .unwrap();
    assert_eq!(revived.rows_affected(), 1, "the grant the rotation revoked");
    let (status, body) = refresh(server, &web_app, &before).await;
    assert_eq!(
        (status, text(&body, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{body}"
    );
    // What the old secret gets during its grace period works.
    let code = web_code(&setup, &web_app, "OR.Jobs offline_access").await;
    let during = redeem_web(&code).await;
    let (status, body) = refresh(server, &web_app, &during).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn users_list_and_revoke_what_they_authorized(backend: Backend) {
    let mut setup = setup(backend).await;
    let first = native(&mut setup, "First").await;
    let second = native(&mut setup, "Second").await;
    let server = &setup.server;
    let key = setup.introspect_key.clone();
    let mut tokens = Vec::new();
    for app in [&first, &second, &first] {
        let code = consented_code(&setup, app, LOOPBACK, "OR.Jobs offline_access").await;
        let (_, body) = redeem(server, app, &code, LOOPBACK).await;
        tokens.push(body);
    }
    // A code not redeemed yet is not a live authorization.
    let pending_code = consented_code(&setup, &second, LOOPBACK, "OR.Queues").await;

    let page = setup
        .signin
        .user_authorizations(
            USER,
            extapps_client::model::PageRequest {
                size: 1,
                token: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let rest = setup
        .signin
        .user_authorizations(USER, page.next(1).unwrap())
        .await
        .unwrap();
    assert_eq!(rest.next_page_token, None);
    let mut listed: Vec<_> = page.items.into_iter().chain(rest.items).collect();
    listed.sort_by(|a, b| a.application_display_name.cmp(&b.application_display_name));
    assert_eq!(
        listed
            .iter()
            .map(|a| a.application_display_name.as_str())
            .collect::<Vec<_>>(),
        ["First", "Second"]
    );
    assert_eq!(listed[0].scopes, ["OR.Jobs"]);
    assert!(listed[0].offline_access);
    // Another organization's sign-in key sees none of them; a platform-wide
    // one sees all; nobody else's subject sees anything.
    let other = typed(server, Some("globex"), Role::Signin).await;
    assert!(
        other
            .user_authorizations(USER, Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let platform = typed(server, None, Role::Signin).await;
    assert_eq!(
        platform
            .user_authorizations(USER, Default::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert!(
        setup
            .signin
            .user_authorizations("user-other", Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Revoking one application ends that user's tokens for it at once.
    let name: ApplicationName = first.name.parse().unwrap();
    let hidden = grpc_error(other.revoke_user_authorization(USER, &name).await);
    assert_eq!(hidden.code, Code::NotFound);
    setup
        .signin
        .revoke_user_authorization(USER, &name)
        .await
        .unwrap();
    for body in [&tokens[0], &tokens[2]] {
        assert!(!is_active(&server.url, &key, text(body, "access_token")).await);
        let (status, _) = refresh(server, &first, text(body, "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert!(
        is_active(&server.url, &key, text(&tokens[1], "access_token")).await,
        "the other app's"
    );
    let left = setup
        .signin
        .user_authorizations(USER, Default::default())
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].application_display_name, "Second");
    let again = grpc_error(setup.signin.revoke_user_authorization(USER, &name).await);
    assert_eq!(
        (again.code, again.reason.as_deref()),
        (Code::NotFound, Some("USER_AUTHORIZATION_NOT_FOUND"))
    );
    // Revoking also ends a code not yet redeemed.
    let second_name: ApplicationName = second.name.parse().unwrap();
    setup
        .signin
        .revoke_user_authorization(USER, &second_name)
        .await
        .unwrap();
    let (status, _) = redeem(server, &second, &pending_code, LOOPBACK).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let events = audit(&mut setup.admin, "acme").await;
    assert_eq!(
        events[0].action(),
        pb::AuditAction::UserAuthorizationRevoked
    );
    assert_eq!(events[0].details["subject"], USER);

    // Bad input is refused before anything is read.
    let invalid = error_of(
        setup
            .server
            .client(&setup.server.key(Some("acme"), Role::Signin, &[]).await)
            .revoke_user_authorization(pb::RevokeUserAuthorizationRequest {
                subject: String::new(),
                application: "nope".into(),
            })
            .await,
    );
    assert_eq!(invalid.code, Code::InvalidArgument);
}

async fn simultaneous_redemptions_have_one_winner(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Racer").await;
    let server = &setup.server;
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", LOOPBACK),
        ("code_verifier", VERIFIER),
        ("client_id", app.id.as_str()),
    ];
    let outcomes = at_once(server, &form, 8).await;
    let winners = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
    // The losers replayed the code: the winner's tokens were revoked too.
    let (_, won) = outcomes.iter().find(|(s, _)| *s == StatusCode::OK).unwrap();
    assert!(
        !is_active(
            &server.url,
            &setup.introspect_key,
            text(won, "access_token")
        )
        .await
    );

    // One refresh token sent eight times at once: one rotation; every
    // answer that succeeds carries the same successor.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let parent = text(&body, "refresh_token").to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", parent.as_str()),
        ("client_id", app.id.as_str()),
    ];
    let outcomes = at_once(server, &form, 8).await;
    let successors: std::collections::BTreeSet<_> = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| text(b, "refresh_token").to_owned())
        .collect();
    assert_eq!(successors.len(), 1, "{outcomes:?}");
    let successor = successors.into_iter().next().unwrap();
    let (status, _) = refresh(server, &app, &successor).await;
    assert_eq!(status, StatusCode::OK, "the one successor works");
}

/// Posts the same token request `times` times at once, as a public client.
async fn at_once(
    server: &TestServer,
    form: &[(&str, &str)],
    times: usize,
) -> Vec<(StatusCode, Value)> {
    let form: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(times));
    let tasks: Vec<_> = (0..times)
        .map(|_| {
            let (url, form, start) = (server.url.clone(), form.clone(), start.clone());
            tokio::spawn(async move {
                let pairs: Vec<(&str, &str)> =
                    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                start.wait().await;
                post_form(&url, "/oauth2/token", None, &pairs).await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(times);
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn every_replica_sees_user_revocations_at_once(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Replicated").await;
    let server = &setup.server;
    let other = server.beside(server.ring.clone()).await;
    // The other replica answers from its caches: what reaches it must come
    // through change detection (a channel, or polling the SQLite file).
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        other.store().caches_trusted(true),
    )
    .await
    .expect("the other replica follows changes");
    let key = &setup.introspect_key;
    let mut live = Vec::new();
    for _ in 0..2 {
        let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
        let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
        assert!(is_active(&other.url, key, text(&body, "access_token")).await);
        live.push(body);
    }
    // A user's revocation through one replica (three grants: two
    // redeemed, one code still waiting)...
    let name: ApplicationName = app.name.parse().unwrap();
    let first_grant = live.remove(0);
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let seen = other.store().changes_applied();
    setup
        .signin
        .revoke_user_authorization(USER, &name)
        .await
        .unwrap();
    arrived(&other, seen + 3).await;
    // ... ends the tokens on the other, and its codes and refresh tokens.
    for body in [&first_grant, &live[0]] {
        assert!(!is_active(&other.url, key, text(body, "access_token")).await);
        let (status, _) = refresh(&other, &app, text(body, "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, _) = redeem(&other, &app, &code, LOOPBACK).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A refresh token reused on one replica ends the grant on the other.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, first) = redeem(server, &app, &code, LOOPBACK).await;
    let (_, second) = refresh(&other, &app, text(&first, "refresh_token")).await;
    server.clock.advance(time::Duration::minutes(1));
    let seen = other.store().changes_applied();
    let (status, _) = refresh(server, &app, text(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    arrived(&other, seen + 1).await;
    assert!(!is_active(&other.url, key, text(&second, "access_token")).await);

    // A removed scope narrows the other replica's answer at once.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let access = text(&body, "access_token").to_owned();
    assert_eq!(
        introspect_grpc(&other.url, key, &access).await.scope,
        "OR.Jobs OR.Queues"
    );
    let seen = other.store().changes_applied();
    setup
        .admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: vec![grant("OR", &["OR.Queues"], &[])],
            etag: String::new(),
        })
        .await
        .unwrap();
    arrived(&other, seen + 1).await;
    assert_eq!(
        introspect_grpc(&other.url, key, &access).await.scope,
        "OR.Queues"
    );
}

/// Waits until `replica` has applied `count` changes: the delivery of
/// another replica's notification (PostgreSQL, about a millisecond) or its
/// next poll of the SQLite file (at most 20 ms).
async fn arrived(replica: &TestServer, count: u64) {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        replica.store().wait_for_changes(count),
    )
    .await
    .expect("the other replica's change arrives");
}
