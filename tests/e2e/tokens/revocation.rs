//! Tokens expire after their lifetime, and a client revokes its own tokens
//! (RFC 7009), with its own credentials only.

use extapps_server::domain::caller::Role;
use reqwest::StatusCode;

use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{is_active, post_form, service_client, token};

crate::on_both_backends!(tokens_expire_and_can_be_revoked);

async fn tokens_expire_and_can_be_revoked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Revoker").await;
    let other = service_client(&server, "Other").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let kept = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let revoked = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let others = token(&server.url, &other, &other.secret, None)
        .await
        .unwrap();

    let id = client.app.client_id.as_str();
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        Some((id, &client.secret)),
        &[("token", &revoked)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!is_active(&server.url, &introspector, &revoked).await);
    assert!(is_active(&server.url, &introspector, &kept).await);
    // Another client's token and garbage: 200, and nothing happens.
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        Some((id, &client.secret)),
        &[("token", &others)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(is_active(&server.url, &introspector, &others).await);
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        Some((id, &client.secret)),
        &[("token", "garbage")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Revocation needs the client's own credentials.
    let (status, body) = post_form(
        &server.url,
        "/oauth2/revoke",
        Some((id, &other.secret)),
        &[("token", &kept)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(is_active(&server.url, &introspector, &kept).await);

    // One hour later every token has expired.
    server.clock.advance(time::Duration::seconds(3600));
    assert!(!is_active(&server.url, &introspector, &kept).await);
    assert!(!is_active(&server.url, &introspector, &others).await);
}
