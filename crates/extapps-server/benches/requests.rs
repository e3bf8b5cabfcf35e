//! Whole requests through the server's own router, in process: every layer
//! and handler a token, HTTP introspection or gRPC `IntrospectToken` request
//! passes, on a real SQLite database with the caches warm, without the
//! network and the kernel. What the server's own code costs per request,
//! measured without the scheduling noise of a load test on shared cores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{body::Body, http::Request};
use base64::{Engine, engine::general_purpose::STANDARD};
use criterion::{Criterion, criterion_group, criterion_main};
use extapps_server::{
    domain::{
        application::RegistrationInput,
        application_type::ApplicationType,
        caller::Role,
        clock::{Clock, SystemClock},
        key_ring::KeyRing,
        names::OrganizationId,
        scope_grants::ResourceGrantInput,
    },
    service::{ClientAuthSettings, Service, TokenSettings, UserAccessSettings},
    store::Store,
};
use http_body_util::BodyExt;
use prost::Message;
use secrecy::ExposeSecret;
use tower::ServiceExt;

// The server's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A server's router on a fresh SQLite file, with one confidential
/// application, its credentials, a live token and an introspect key.
struct Fixture {
    router: axum::Router,
    basic: String,
    token: String,
    introspect_key: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let ring = KeyRing::generate(SystemClock.now()).unwrap();
    let tokens = TokenSettings {
        ttl: time::Duration::HOUR,
        issuer: "http://127.0.0.1:50051".into(),
        user: UserAccessSettings::default(),
    };
    let catalog = extapps_server::commands::load_catalog(None).unwrap();
    let service = Service::new(
        store,
        catalog,
        Arc::new(SystemClock),
        &ring,
        tokens,
        ClientAuthSettings::default(),
    )
    .await
    .unwrap();
    service.start_background(true);
    let organization = OrganizationId::parse("acme").unwrap();
    let admin = service
        .create_caller_key(Some(organization.clone()), Role::Admin, vec![])
        .await
        .unwrap();
    let introspect = service
        .create_caller_key(Some(organization.clone()), Role::Introspect, vec![])
        .await
        .unwrap();
    let admin = service
        .authenticate(Some(&format!("Bearer {}", admin.key.expose_secret())), None)
        .await
        .unwrap();
    let registered = service
        .register_application(
            &admin,
            &organization,
            RegistrationInput {
                display_name: "bench".into(),
                app_type: Some(ApplicationType::Confidential),
                grants: vec![ResourceGrantInput {
                    resource: "OR".into(),
                    user_scopes: vec![],
                    application_scopes: vec!["OR.Jobs.Read".into(), "OR.Queues".into()],
                }],
                redirect_urls: vec![],
            },
            None,
        )
        .await
        .unwrap();
    let basic = STANDARD.encode(format!(
        "{}:{}",
        registered.application.client_id,
        registered.client_secret.unwrap().expose_secret()
    ));
    let router = extapps_server::server::router(service).await.unwrap();
    let mut fixture = Fixture {
        router,
        basic: format!("Basic {basic}"),
        token: String::new(),
        introspect_key: format!("Bearer {}", introspect.key.expose_secret()),
        _dir: dir,
    };
    let issued = call(&fixture.router, token_request(&fixture)).await;
    let issued: serde_json::Value = serde_json::from_slice(&issued).unwrap();
    fixture.token = issued["access_token"].as_str().unwrap().to_owned();
    fixture
}

fn token_request(fixture: &Fixture) -> Request<Body> {
    Request::post("/oauth2/token")
        .header("authorization", &fixture.basic)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("grant_type=client_credentials"))
        .unwrap()
}

fn introspect_request(fixture: &Fixture) -> Request<Body> {
    Request::post("/oauth2/introspect")
        .header("authorization", &fixture.introspect_key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={}", fixture.token)))
        .unwrap()
}

fn grpc_introspect_request(fixture: &Fixture) -> Request<Body> {
    let message = extapps_proto::v1::IntrospectTokenRequest {
        token: fixture.token.clone(),
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&message);
    Request::post("/extapps.v1.ExternalApplications/IntrospectToken")
        .header("authorization", &fixture.introspect_key)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Body::from(framed))
        .unwrap()
}

/// One request through the router, its whole answer read; panics on
/// anything but a success (a gRPC error may come as HTTP 200 with its
/// status in the headers).
async fn call(router: &axum::Router, request: Request<Body>) -> bytes::Bytes {
    let response = router.clone().oneshot(request).await.unwrap();
    assert!(response.status().is_success(), "{:?}", response.status());
    let grpc_status = response.headers().get("grpc-status").cloned();
    let collected = response.into_body().collect().await.unwrap();
    if let Some(status) = collected
        .trailers()
        .and_then(|t| t.get("grpc-status").cloned())
        .or(grpc_status)
    {
        assert_eq!(status, "0");
    }
    collected.to_bytes()
}

type MakeRequest = fn(&Fixture) -> Request<Body>;

fn requests(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixture = runtime.block_on(fixture());
    // The introspections measured are of an active token.
    let answer = runtime.block_on(call(&fixture.router, introspect_request(&fixture)));
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["active"], true);
    let answer = runtime.block_on(call(&fixture.router, grpc_introspect_request(&fixture)));
    let answer = extapps_proto::v1::IntrospectTokenResponse::decode(&answer[5..]).unwrap();
    assert!(answer.active);
    let cases: [(&str, MakeRequest); 3] = [
        ("token request (client credentials)", token_request),
        ("HTTP introspection", introspect_request),
        ("gRPC IntrospectToken", grpc_introspect_request),
    ];
    for (name, request) in cases {
        c.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iterations {
                        let request = request(&fixture);
                        let started = Instant::now();
                        call(&fixture.router, request).await;
                        spent += started.elapsed();
                    }
                    spent
                })
            });
        });
    }
}

criterion_group!(benches, requests);
criterion_main!(benches);
