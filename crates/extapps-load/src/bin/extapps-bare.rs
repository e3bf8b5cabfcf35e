//! `extapps-bare`: the ceiling of the HTTP benchmark. A bare axum endpoint,
//! on the same runtime and socket settings as extapps (a Tokio worker per
//! core, `TCP_NODELAY`), that reads each request's body and answers the
//! token and introspection endpoints with JSON of the same shape and size
//! as extapps' answers, and does nothing else: what serving HTTP costs
//! here before any OAuth work.
//!
//! `extapps-bare [ADDRESS]` (default `127.0.0.1:50199`).

use axum::serve::ListenerExt;
use axum::{
    Json, Router,
    body::Bytes,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

/// A JSON answer with the headers extapps sends on these endpoints.
fn no_store(body: Value) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn token(_body: Bytes) -> Response {
    no_store(json!({
        // As long as an extapps access token.
        "access_token": format!("extapps_at_{}", "A".repeat(150)),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "OR.Jobs.Read OR.Queues",
    }))
}

async fn introspect(_body: Bytes) -> Response {
    no_store(json!({
        "active": true,
        "scope": "OR.Jobs.Read OR.Queues",
        "client_id": "7c3f2a4e-2b8f-4d1e-9a55-3c6f0e2d9b11",
        "token_type": "Bearer",
        "exp": 1_795_503_600,
        "iat": 1_795_500_000,
        "sub": "7c3f2a4e-2b8f-4d1e-9a55-3c6f0e2d9b11",
        "aud": ["OR"],
        "iss": "http://127.0.0.1:50199",
        "jti": "0b9f3c1a-6d2e-4f7a-8c5b-1e4d2a9f7c30",
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50199".to_owned());
    let router = Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/introspect", post(introspect));
    let listener = tokio::net::TcpListener::bind(&address)
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, router).await
}
