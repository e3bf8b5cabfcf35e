//! `/oauth2/authorize`: a redirect URL not trusted yet gets a page, never a
//! redirect; once it is trusted, every other error goes back to the
//! application; the endpoint says what to set when no sign-in URL is
//! configured.

use extapps_client::v1 as pb;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, SIGNIN_URL, TestServer};
use crate::support::oauth_http::http;
use crate::support::stored::count;
use crate::support::user_flow::{
    App, CHALLENGE, LOOPBACK, WEB_CALLBACK, WEB_OTHER, authorize, native, pending, redirected,
    registered, setup, setup_on, web,
};

crate::on_both_backends!(
    authorize_refuses_untrusted_redirects_with_a_page_and_the_rest_by_redirect,
);

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
