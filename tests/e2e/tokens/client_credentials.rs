//! Client credentials over OAuth 2.0: a standard client library obtains
//! tokens, which introspect alike over gRPC and HTTP, and malformed token
//! requests get RFC 6749 errors.

use extapps_client::v1 as pb;
use extapps_server::domain::caller::Role;
use oauth2::{
    AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl, basic::BasicClient,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{
    http, introspect_grpc, introspect_http, metrics, service_client, token,
};

crate::on_both_backends!(
    an_oauth_library_gets_a_token_that_introspects_alike_over_grpc_and_http,
    malformed_token_requests_get_rfc_6749_errors,
);

async fn an_oauth_library_gets_a_token_that_introspects_alike_over_grpc_and_http(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Library").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let http = oauth2::reqwest::Client::builder()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token_url = TokenUrl::new(format!("{}/oauth2/token", server.url)).unwrap();

    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let oauth = BasicClient::new(ClientId::new(client.app.client_id.clone()))
            .set_client_secret(ClientSecret::new(client.secret.clone()))
            .set_token_uri(token_url.clone())
            .set_auth_type(auth);
        // No scope: all the application scopes.
        let all = oauth
            .exchange_client_credentials()
            .request_async(&http)
            .await
            .unwrap();
        assert_eq!(all.expires_in().unwrap().as_secs(), 3600);
        let scopes: Vec<String> = all
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(scopes, ["OR.Jobs.Read", "OR.Queues"]);
        // A subset.
        let some = oauth
            .exchange_client_credentials()
            .add_scope(Scope::new("OR.Queues".into()))
            .request_async(&http)
            .await
            .unwrap();
        let token = some.access_token().secret().clone();
        assert!(token.starts_with("extapps_at_"));

        let grpc = introspect_grpc(&server.url, &introspector, &token).await;
        assert!(grpc.active);
        assert_eq!(grpc.scope, "OR.Queues");
        assert_eq!(grpc.client_id, client.app.client_id);
        assert_eq!(grpc.sub, client.app.client_id);
        assert_eq!(grpc.token_type, "Bearer");
        assert_eq!(grpc.aud, ["OR"]);
        assert_eq!(grpc.iss, server.url);
        assert_eq!(grpc.exp - grpc.iat, 3600);
        assert!(uuid::Uuid::parse_str(&grpc.jti).is_ok());

        let http_answer = introspect_http(&server.url, &introspector, &token).await;
        assert_eq!(http_answer["active"], true);
        assert_eq!(http_answer["scope"], grpc.scope);
        assert_eq!(http_answer["client_id"], grpc.client_id);
        assert_eq!(http_answer["sub"], grpc.sub);
        assert_eq!(http_answer["token_type"], "Bearer");
        assert_eq!(http_answer["aud"], serde_json::json!(grpc.aud));
        assert_eq!(http_answer["iss"], grpc.iss);
        assert_eq!(http_answer["exp"], grpc.exp);
        assert_eq!(http_answer["iat"], grpc.iat);
        assert_eq!(http_answer["jti"], grpc.jti);
    }

    // The secret's last use is recorded, never the secret.
    let mut admin = server.admin("acme").await;
    let app = get(&mut admin, &client.app.name).await;
    assert!(app.secrets[0].last_use_time.is_some());

    // Metadata (RFC 8414) points at the endpoints.
    let metadata: Value = http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            server.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], server.url);
    assert_eq!(
        metadata["token_endpoint"],
        format!("{}/oauth2/token", server.url)
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        format!("{}/oauth2/introspect", server.url)
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        format!("{}/oauth2/revoke", server.url)
    );
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["client_credentials", "authorization_code", "refresh_token"])
    );

    // Metrics count what just happened: four tokens, of which three were
    // authenticated from the verified-secret cache.
    let metrics = metrics(&server.url).await;
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing from\n{metrics}"))
    };
    assert_eq!(
        value("extapps_token_requests_total{outcome=\"issued\"}"),
        4.0
    );
    assert_eq!(
        value("extapps_verified_secret_cache_lookups_total{outcome=\"miss\"}"),
        1.0
    );
    assert_eq!(
        value("extapps_verified_secret_cache_lookups_total{outcome=\"hit\"}"),
        3.0
    );
    assert_eq!(
        value("extapps_introspections_total{outcome=\"active\"}"),
        4.0
    );
    assert_eq!(
        value("extapps_calls_total{transport=\"grpc\",endpoint=\"IntrospectToken\",code=\"OK\"}"),
        2.0
    );
    assert_eq!(
        value("extapps_calls_total{transport=\"http\",endpoint=\"/oauth2/token\",code=\"200\"}"),
        4.0
    );
    assert!(metrics.contains("extapps_call_duration_seconds_bucket{"));
    // The replica caches answer the repeat lookups, on both databases; a
    // server that does not follow changes says it asked the database.
    let outcome = if crate::support::harness::caches_on() {
        "hit"
    } else {
        "distrusted"
    };
    for cache in ["applications", "callers"] {
        let series = format!(
            "extapps_replica_cache_lookups_total{{cache=\"{cache}\",outcome=\"{outcome}\"}}"
        );
        assert!(value(&series) >= 1.0, "{series}");
    }
    assert!(!metrics.contains(&client.secret[11..]));
}

async fn malformed_token_requests_get_rfc_6749_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Strict").await;
    let id = client.app.client_id.as_str();
    let secret = client.secret.as_str();
    let mut admin = server.admin("acme").await;
    let mut user_only = native_app("User only");
    user_only.r#type = pb::ApplicationType::Confidential.into();
    let user_only = register(&mut admin, "acme", user_only).await;
    let user_only_id = user_only.application.unwrap().client_id;
    let url = format!("{}/oauth2/token", server.url);
    let cc = [("grant_type", "client_credentials")];
    let big = "x".repeat(extapps_server::oauth::MAX_BODY_BYTES + 1);
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "no grant_type",
            http()
                .post(&url)
                .basic_auth(id, Some(secret))
                .form(&[("scope", "OR.Queues")]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "repeated grant_type",
            http()
                .post(&url)
                .basic_auth(id, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&grant_type=client_credentials"),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "JSON body",
            http()
                .post(&url)
                .basic_auth(id, Some(secret))
                .json(&serde_json::json!({"grant_type": "client_credentials"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "oversized body",
            http()
                .post(&url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("pad", big.as_str())]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "no client authentication",
            http().post(&url).form(&cc),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "unknown client",
            http()
                .post(&url)
                .basic_auth(&unknown, Some(secret))
                .form(&cc),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "client ID not a UUID",
            http().post(&url).basic_auth("acme", Some(secret)).form(&cc),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "wrong secret",
            http()
                .post(&url)
                .basic_auth(id, Some(&format!("{secret}x")))
                .form(&cc),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "both authentication methods",
            http().post(&url).basic_auth(id, Some(secret)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "Basic credentials and another client's client_id in the body",
            http().post(&url).basic_auth(id, Some(secret)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &unknown),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "bearer instead of basic",
            http().post(&url).bearer_auth(secret).form(&cc),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            "password grant",
            http()
                .post(&url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "password")]),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "scope not granted",
            http().post(&url).basic_auth(id, Some(secret)).form(&[
                ("grant_type", "client_credentials"),
                ("scope", "OR.Queues PM.Users"),
            ]),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "user scope asked as application scope",
            http()
                .post(&url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "OR.Jobs")]),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "application without application scopes",
            http()
                .post(&url)
                .basic_auth(&user_only_id, Some(&user_only.client_secret))
                .form(&cc),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
    ];
    for (case, request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{case}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                response.headers().contains_key("www-authenticate"),
                "{case}"
            );
        }
        assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{case}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{case}"
        );
        assert!(
            !body.to_string().contains(&secret[11..]),
            "{case}: the secret is echoed"
        );
    }
    // A GET is not a token request.
    let get = http().get(&url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    // After all that, the right request still works, also with the same
    // `client_id` in the body beside Basic credentials (RFC 6749 section
    // 3.2.1; some client libraries send both).
    token(&server.url, &client, secret, None).await.unwrap();
    let response = http()
        .post(&url)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("client_id", id)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
