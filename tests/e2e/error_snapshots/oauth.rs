//! The OAuth endpoints, given bad requests: status, the headers a client
//! acts on, and the RFC 6749 error body.

use std::fmt::Write as _;

use extapps_server::domain::caller::Role;
use reqwest::RequestBuilder;

use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{http, service_client};
use crate::support::snapshot::assert_snapshot;

crate::on_both_backends!(oauth_endpoints_answer_bad_requests_with_rfc_6749_errors);

/// Sends `request` and appends its answer, which must not be a success:
/// status, `WWW-Authenticate`, `Retry-After` and `Cache-Control` when
/// present, then the JSON body.
async fn answer(report: &mut String, name: &str, request: RequestBuilder) {
    let response = request.send().await.unwrap();
    let status = response.status();
    assert!(!status.is_success(), "{name}: {status}");
    writeln!(report, "## {name}\n{status}").unwrap();
    for header in ["www-authenticate", "retry-after", "cache-control"] {
        if let Some(value) = response.headers().get(header) {
            writeln!(report, "{header}: {}", value.to_str().unwrap()).unwrap();
        }
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    writeln!(report, "{}\n", serde_json::to_string_pretty(&body).unwrap()).unwrap();
}

async fn oauth_endpoints_answer_bad_requests_with_rfc_6749_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Snapshots").await;
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let (id, secret) = (client.app.client_id.as_str(), client.secret.as_str());
    let url = server.url.as_str();
    let post = |path: &str| http().post(format!("{url}{path}"));
    let token = |form: &[(&str, &str)]| {
        post("/oauth2/token")
            .basic_auth(id, Some(secret))
            .form(form)
    };
    let credentials = [("grant_type", "client_credentials")];
    let r = &mut String::new();

    answer(r, "token: no grant_type", token(&[])).await;
    answer(
        r,
        "token: unsupported grant_type",
        token(&[("grant_type", "password")]),
    )
    .await;
    answer(
        r,
        "token: a parameter twice",
        token(&[credentials[0], credentials[0]]),
    )
    .await;
    answer(
        r,
        "token: unknown scope",
        token(&[credentials[0], ("scope", "OR.Nope")]),
    )
    .await;
    answer(
        r,
        "token: authorization_code for a client without user scopes",
        token(&[("grant_type", "authorization_code"), ("code", "x")]),
    )
    .await;
    answer(
        r,
        "token: no client authentication",
        post("/oauth2/token").form(&credentials),
    )
    .await;
    answer(
        r,
        "token: a secret that fails its checksum",
        post("/oauth2/token")
            .basic_auth(id, Some("extapps_cs_mistyped"))
            .form(&credentials),
    )
    .await;
    // Another application's secret: well formed, checksum and all.
    let wrong = service_client(&server, "Snapshots other").await.secret;
    answer(
        r,
        "token: a well-formed secret that is not the client's",
        post("/oauth2/token")
            .basic_auth(id, Some(&wrong))
            .form(&credentials),
    )
    .await;
    answer(
        r,
        "token: Basic credentials and another client's client_id in the body",
        post("/oauth2/token")
            .basic_auth(id, Some(secret))
            .form(&[credentials[0], ("client_id", "someone-else")]),
    )
    .await;
    answer(
        r,
        "token: Basic credentials and client_secret in the body",
        post("/oauth2/token").basic_auth(id, Some(secret)).form(&[
            credentials[0],
            ("client_id", id),
            ("client_secret", secret),
        ]),
    )
    .await;
    answer(
        r,
        "token: unknown client",
        post("/oauth2/token")
            .basic_auth("00000000-0000-0000-0000-000000000000", Some(secret))
            .form(&credentials),
    )
    .await;

    answer(
        r,
        "introspect: no caller key",
        post("/oauth2/introspect").form(&[("token", "x")]),
    )
    .await;
    answer(
        r,
        "introspect: a client with a wrong secret (a client may introspect its own tokens)",
        post("/oauth2/introspect")
            .basic_auth(id, Some("extapps_cs_wrong"))
            .form(&[("token", "x")]),
    )
    .await;
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    answer(
        r,
        "introspect: a caller key of another role",
        post("/oauth2/introspect")
            .bearer_auth(&admin_key)
            .form(&[("token", "x")]),
    )
    .await;
    let forged = {
        let signed = format!("extapps_key_{}", "Q".repeat(43));
        format!("{signed}{:08x}", crc32fast::hash(signed.as_bytes()))
    };
    answer(
        r,
        "introspect: a caller key nobody holds",
        post("/oauth2/introspect")
            .bearer_auth(&forged)
            .form(&[("token", "x")]),
    )
    .await;
    answer(
        r,
        "introspect: no token",
        post("/oauth2/introspect")
            .bearer_auth(&introspect_key)
            .form(&[("a", "b")]),
    )
    .await;

    answer(
        r,
        "revoke: no client authentication",
        post("/oauth2/revoke").form(&[("token", "x")]),
    )
    .await;
    answer(
        r,
        "revoke: no token",
        post("/oauth2/revoke")
            .basic_auth(id, Some(secret))
            .form(&[("a", "b")]),
    )
    .await;

    let authorize = |query: &[(&str, &str)]| {
        http()
            .get(format!("{url}/oauth2/authorize"))
            .header("accept", "application/json")
            .query(query)
    };
    answer(
        r,
        "authorize: no client_id",
        authorize(&[("response_type", "code")]),
    )
    .await;
    let mut admin = server.admin("acme").await;
    let native = crate::support::fixtures::register(
        &mut admin,
        "acme",
        crate::support::fixtures::native_app("Snapshots, native"),
    )
    .await
    .application
    .unwrap();
    answer(
        r,
        "authorize: a redirect_uri that is not registered",
        authorize(&[
            ("response_type", "code"),
            ("client_id", &native.client_id),
            ("redirect_uri", "https://attacker.example/cb"),
        ]),
    )
    .await;
    answer(
        r,
        "authorize: an application without user scopes",
        authorize(&[("response_type", "code"), ("client_id", id), ("state", "x")]),
    )
    .await;

    assert_snapshot("oauth_errors", r);
}
