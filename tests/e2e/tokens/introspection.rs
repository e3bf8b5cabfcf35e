//! Resource servers introspect tokens: a key bound to resources sees only
//! tokens for them, only introspection keys may ask, and garbage is simply
//! inactive.

use extapps_server::domain::caller::Role;
use reqwest::StatusCode;

use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{http, is_active, service_client, token};

crate::on_both_backends!(bound_introspect_keys_see_only_their_resources);

async fn bound_introspect_keys_see_only_their_resources(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Audience").await;
    let token = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let orchestrator = server.key(Some("acme"), Role::Introspect, &["OR"]).await;
    let management = server.key(Some("acme"), Role::Introspect, &["PM"]).await;
    let both = server
        .key(Some("acme"), Role::Introspect, &["PM", "OR"])
        .await;
    assert!(is_active(&server.url, &orchestrator, &token).await);
    assert!(
        !is_active(&server.url, &management, &token).await,
        "not its audience"
    );
    assert!(is_active(&server.url, &both, &token).await);

    // Admin keys may not introspect, over HTTP either.
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    let response = http()
        .post(format!("{}/oauth2/introspect", server.url))
        .bearer_auth(&admin_key)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let anonymous = http()
        .post(format!("{}/oauth2/introspect", server.url))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Garbage is simply inactive.
    for garbage in [
        "extapps_at_",
        "extapps_at_AAAA",
        "not a token",
        &token[..token.len() - 2],
    ] {
        assert!(
            !is_active(&server.url, &orchestrator, garbage).await,
            "{garbage}"
        );
    }
}
