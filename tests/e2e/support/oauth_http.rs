//! OAuth 2.0 over HTTP and gRPC, as a client and a resource server call it:
//! a registered confidential application, client-credentials tokens, and
//! introspection over both transports.

use extapps_client::v1 as pb;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::fixtures::{register, service_app};
use crate::support::harness::TestServer;

/// A registered confidential application and its secret.
pub(crate) struct App {
    pub(crate) app: pb::Application,
    pub(crate) secret: String,
}

pub(crate) async fn service_client(server: &TestServer, name: &str) -> App {
    let mut admin = server.admin("acme").await;
    let registered = register(&mut admin, "acme", service_app(name)).await;
    App {
        app: registered.application.unwrap(),
        secret: registered.client_secret,
    }
}

/// An HTTP client that follows no redirect, and fails a request that
/// takes longer than 30 s instead of hanging the test.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The server's Prometheus metrics, as text.
pub(crate) async fn metrics(url: &str) -> String {
    http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// POSTs a form to `path` with client_secret_basic.
pub(crate) async fn post_form(
    url: &str,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = http().post(format!("{url}{path}")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A token by client credentials, or the error body.
pub(crate) async fn token(
    url: &str,
    client: &App,
    secret: &str,
    scope: Option<&str>,
) -> Result<String, Value> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let (status, body) = post_form(
        url,
        "/oauth2/token",
        Some((&client.app.client_id, secret)),
        &form,
    )
    .await;
    match status {
        StatusCode::OK => Ok(body["access_token"].as_str().unwrap().to_owned()),
        _ => Err(body),
    }
}

pub(crate) async fn introspect_grpc(
    url: &str,
    key: &str,
    token: &str,
) -> pb::IntrospectTokenResponse {
    extapps_client::connect(url, key)
        .await
        .unwrap()
        .generated()
        .introspect_token(pb::IntrospectTokenRequest {
            token: token.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

pub(crate) async fn introspect_http(url: &str, key: &str, token: &str) -> Value {
    let response = http()
        .post(format!("{url}/oauth2/introspect"))
        .bearer_auth(key)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// Whether the token is active, asked both ways (which must agree).
pub(crate) async fn is_active(url: &str, key: &str, token: &str) -> bool {
    let grpc = introspect_grpc(url, key, token).await;
    let http = introspect_http(url, key, token).await;
    assert_eq!(
        grpc.active,
        http["active"].as_bool().unwrap(),
        "gRPC and HTTP agree"
    );
    if !grpc.active {
        assert_eq!(
            grpc,
            pb::IntrospectTokenResponse::default(),
            "inactive says nothing else"
        );
        assert_eq!(
            http.as_object().unwrap().len(),
            1,
            "inactive says nothing else: {http}"
        );
    }
    grpc.active
}
