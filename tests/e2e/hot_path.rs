//! What the hot path costs, counted rather than timed: the heap
//! allocations of a token request, an HTTP introspection and a gRPC
//! `IntrospectToken`, each through the server's whole router with its
//! caches warm. Each has a fixed ceiling a little above today's count: a
//! change that formats a string, clones a collection or boxes a future per
//! request shows here as a failure, on any machine, whatever its speed.
//! (That the per-request handle on the service state stays one reference
//! count is a unit test of the server.)
//!
//! The counting allocator counts the calling thread only. The server
//! (with its cache poller) runs on a runtime of its own; the measured
//! requests are driven on this test's thread, with no log subscriber (as a
//! server logging at INFO formats nothing on this path), and each count is
//! the median of many requests, so a rare housekeeping step is not the
//! figure. SQLite only: with warm caches the path reads no database.

use axum::{
    body::Body,
    http::{HeaderMap, Request},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use extapps_server::domain::caller::Role;
use http_body_util::BodyExt;
use prost::Message;
use tower::ServiceExt;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer};

/// Ceilings, in heap allocations per request (building the request not
/// included, reading the answer included): today's medians (55, 56 and 63)
/// and a tenth more. Before the hot path was trimmed they were 87, 101 and
/// 75.
const TOKEN_REQUEST: u64 = 61;
const HTTP_INTROSPECTION: u64 = 62;
const GRPC_INTROSPECTION: u64 = 70;

/// The median allocations of `count` calls of `request` through `router`,
/// each answer checked by `answered` (the path measured is the one named).
fn allocations_per_request(
    runtime: &tokio::runtime::Runtime,
    router: &axum::Router,
    request: impl Fn() -> Request<Body>,
    answered: impl Fn(&axum::http::HeaderMap, &[u8]),
    count: usize,
) -> u64 {
    let mut counts: Vec<u64> = (0..count)
        .map(|_| {
            let request = request();
            let mut answer = None;
            let counted = allocation_counter::measure(|| {
                let silent = tracing::subscriber::NoSubscriber::default();
                tracing::subscriber::with_default(silent, || {
                    answer = Some(runtime.block_on(async {
                        let response = router.clone().oneshot(request).await.unwrap();
                        assert!(response.status().is_success(), "{}", response.status());
                        let (parts, body) = response.into_parts();
                        let collected = body.collect().await.unwrap();
                        let mut headers = parts.headers;
                        headers.extend(collected.trailers().cloned().unwrap_or_default());
                        (headers, collected.to_bytes())
                    }));
                });
            });
            let (headers, body) = answer.unwrap();
            answered(&headers, &body);
            counted.count_total
        })
        .collect();
    counts.sort_unstable();
    counts[count / 2]
}

/// A successful OAuth answer: JSON holding `member` as `value`.
fn json_with(member: &'static str, value: serde_json::Value) -> impl Fn(&HeaderMap, &[u8]) {
    move |_, body| {
        let answer: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(answer[member], value, "{answer}");
    }
}

/// A gRPC `IntrospectToken` answer of status OK saying the token is active
/// (a trailers-only error would pass as HTTP 200).
fn grpc_active(headers: &HeaderMap, body: &[u8]) {
    assert_eq!(headers["grpc-status"], "0", "{headers:?}");
    let message = body.get(5..).unwrap();
    let answer = extapps_client::v1::IntrospectTokenResponse::decode(message).unwrap();
    assert!(answer.active);
}

#[test]
fn token_and_introspection_requests_allocate_within_their_ceilings() {
    let serving = tokio::runtime::Runtime::new().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, router, basic, introspect_key) = serving.block_on(async {
        let server = TestServer::start(Backend::Sqlite).await;
        let mut admin = server.admin("acme").await;
        let registered = register(&mut admin, "acme", service_app("Hot path")).await;
        let app = registered.application.unwrap();
        let basic = STANDARD.encode(format!("{}:{}", app.client_id, registered.client_secret));
        let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
        let router = extapps_server::server::router(server.service.clone())
            .await
            .unwrap();
        (server, router, basic, introspect_key)
    });
    let token_request = || {
        Request::post("/oauth2/token")
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=client_credentials"))
            .unwrap()
    };
    // Warm: the application, the verified secret and the caller key are
    // remembered, the secret's last use is written.
    let issued = || json_with("token_type", "Bearer".into());
    allocations_per_request(&runtime, &router, token_request, issued(), 10);
    let answer = runtime.block_on(async {
        let response = router.clone().oneshot(token_request()).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    });
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let introspection = || {
        Request::post("/oauth2/introspect")
            .header("authorization", format!("Bearer {introspect_key}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let grpc_introspection = || {
        let message = extapps_client::v1::IntrospectTokenRequest {
            token: token.clone(),
        }
        .encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&message);
        Request::post("/extapps.v1.ExternalApplications/IntrospectToken")
            .header("authorization", format!("Bearer {introspect_key}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Body::from(framed))
            .unwrap()
    };
    let active = || json_with("active", true.into());
    allocations_per_request(&runtime, &router, introspection, active(), 10);
    allocations_per_request(&runtime, &router, grpc_introspection, grpc_active, 10);

    let counts = [
        (
            "token request",
            allocations_per_request(&runtime, &router, token_request, issued(), 201),
            TOKEN_REQUEST,
        ),
        (
            "HTTP introspection",
            allocations_per_request(&runtime, &router, introspection, active(), 201),
            HTTP_INTROSPECTION,
        ),
        (
            "gRPC IntrospectToken",
            allocations_per_request(&runtime, &router, grpc_introspection, grpc_active, 201),
            GRPC_INTROSPECTION,
        ),
    ];
    for (what, count, ceiling) in counts {
        assert!(
            count <= ceiling,
            "a {what} made {count} heap allocations, more than its ceiling of {ceiling}: \
             {counts:?}"
        );
    }
    drop(router);
    serving.block_on(async move { drop(server) });
}
