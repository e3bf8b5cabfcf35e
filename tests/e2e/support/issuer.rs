//! A real OpenID Connect provider on loopback, standing in for a CI system
//! or a cluster: discovery and a JWKS over HTTP on `127.0.0.1:0`, and RS256
//! tokens signed with its keys. Each issuer path misbehaves as it says
//! (`/slow`, `/huge`, `/redirect`, `/many`, `/outside`, `/mismatch`), or
//! publishes RFC 8414 metadata only (`/rfc8414`); every request is counted.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::support::signing::{Alg, SigningKey};

struct Shared {
    base: String,
    keys: Mutex<Vec<Arc<SigningKey>>>,
    requests: AtomicUsize,
}

/// The provider; it stops with the test's runtime.
pub(crate) struct Issuer {
    shared: Arc<Shared>,
}

impl Issuer {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            base,
            keys: Mutex::new(vec![Arc::new(
                SigningKey::generate(Alg::Rs256).with_kid("ci-1"),
            )]),
            requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/{mode}/.well-known/openid-configuration", get(discovery))
            .route(
                "/.well-known/oauth-authorization-server/{mode}",
                get(rfc8414),
            )
            .route("/{mode}/jwks", get(jwks))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { shared }
    }

    /// The issuer URL of `mode`: `good`, or one that misbehaves.
    pub(crate) fn url(&self, mode: &str) -> String {
        format!("{}/{mode}", self.shared.base)
    }

    /// The prefix every issuer of this provider shares.
    pub(crate) fn base(&self) -> &str {
        &self.shared.base
    }

    /// Requests served so far.
    pub(crate) fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Replaces the keys with a new one named `kid` (a rotation).
    pub(crate) fn rotate(&self, kid: &str) {
        *self.shared.keys.lock().unwrap() =
            vec![Arc::new(SigningKey::generate(Alg::Rs256).with_kid(kid))];
    }

    /// A token of issuer `mode` with `claims` over the usual ones (`iss`,
    /// an `iat` of now, ten minutes of life, a fresh `jti`), signed RS256
    /// with the current key.
    pub(crate) fn token(&self, mode: &str, now: i64, claims: Value) -> String {
        let key = self.shared.keys.lock().unwrap()[0].clone();
        let mut all = json!({
            "iss": self.url(mode),
            "iat": now,
            "exp": now + 600,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        for (name, value) in claims.as_object().unwrap() {
            if value.is_null() {
                all.as_object_mut().unwrap().remove(name);
            } else {
                all[name] = value.clone();
            }
        }
        key.sign(&key.header(), &all)
    }
}

async fn discovery(State(shared): State<Arc<Shared>>, Path(mode): Path<String>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let issuer = format!("{}/{mode}", shared.base);
    let localhost = shared.base.replace("127.0.0.1", "localhost");
    let good = format!("{}/good", shared.base);
    match mode.as_str() {
        // Only RFC 8414 metadata is published.
        "rfc8414" => StatusCode::NOT_FOUND.into_response(),
        // Keys on a host the operator did not allow.
        "outside" => Json(json!({"issuer": issuer, "jwks_uri": format!("{localhost}/good/jwks")}))
            .into_response(),
        // Metadata of another issuer.
        "mismatch" => {
            Json(json!({"issuer": good, "jwks_uri": format!("{issuer}/jwks")})).into_response()
        }
        _ => Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})).into_response(),
    }
}

async fn rfc8414(State(shared): State<Arc<Shared>>, Path(mode): Path<String>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let issuer = format!("{}/{mode}", shared.base);
    Json(json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})).into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>, Path(mode): Path<String>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = shared
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.public_jwk())
        .collect();
    match mode.as_str() {
        // Longer than any fetch may take.
        "slow" => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Json(json!({"keys": keys})).into_response()
        }
        // A megabyte of key set (valid JSON: without the size limit it
        // would be read), in chunks, without a length announced.
        "huge" => {
            let padding = std::iter::repeat_n(bytes::Bytes::from(vec![b'x'; 64 * 1024]), 16);
            let chunks = std::iter::once(bytes::Bytes::from_static(br#"{"keys":[],"padding":""#))
                .chain(padding)
                .chain(std::iter::once(bytes::Bytes::from_static(br#""}"#)))
                .map(Ok::<_, std::convert::Infallible>);
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        // Elsewhere: the same server under another name (another origin),
        // where a followed redirect would be counted.
        "redirect" => {
            let elsewhere = shared.base.replace("127.0.0.1", "localhost");
            (
                StatusCode::FOUND,
                [(header::LOCATION, format!("{elsewhere}/good/jwks"))],
            )
                .into_response()
        }
        // A thousand small keys: within the size limit, over the count.
        "many" => {
            let many: Vec<Value> =
                std::iter::repeat_n(json!({"kty": "oct", "kid": "k"}), 1000).collect();
            Json(json!({"keys": many})).into_response()
        }
        _ => Json(json!({"keys": keys})).into_response(),
    }
}
