//! Every lifecycle event of the application takes effect at once on its
//! tokens: a new secret, with or without grace and token revocation,
//! removed scopes, and deletion (SPEC rules 7 to 9).

use extapps_client::v1 as pb;
use extapps_server::domain::caller::Role;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{introspect_grpc, is_active, service_client, token};

crate::on_both_backends!(
    rotation_ends_the_old_secret_but_not_the_tokens,
    rotation_with_grace_and_token_revocation,
    removed_scopes_leave_introspection_at_once,
    deletion_ends_every_token_and_the_secret,
);

async fn rotation_ends_the_old_secret_but_not_the_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Rotating").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let old_token = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let mut admin = server.admin("acme").await;
    let rotated = rotate(&mut admin, &client.app.name, 0, false).await;
    let err = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap_err();
    assert_eq!(
        err["error"], "invalid_client",
        "the old secret is dead at once"
    );
    assert!(
        is_active(&server.url, &introspector, &old_token).await,
        "issued tokens live on"
    );
    let new_token = token(&server.url, &client, &rotated.client_secret, None)
        .await
        .unwrap();
    assert!(is_active(&server.url, &introspector, &new_token).await);
}

async fn rotation_with_grace_and_token_revocation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Graceful").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let mut admin = server.admin("acme").await;
    let before = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let rotated = rotate(&mut admin, &client.app.name, 600, false).await;
    // Both secrets work during the grace period.
    token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    token(&server.url, &client, &rotated.client_secret, None)
        .await
        .unwrap();
    server.clock.advance(time::Duration::seconds(601));
    assert_eq!(
        token(&server.url, &client, &client.secret, None)
            .await
            .unwrap_err()["error"],
        "invalid_client"
    );
    let fresh = token(&server.url, &client, &rotated.client_secret, None)
        .await
        .unwrap();
    assert!(is_active(&server.url, &introspector, &before).await);

    // Revoking tokens on rotation ends every token issued so far, at once.
    server.clock.advance(time::Duration::seconds(1));
    let third = rotate(&mut admin, &client.app.name, 0, true).await;
    assert!(!is_active(&server.url, &introspector, &before).await);
    assert!(!is_active(&server.url, &introspector, &fresh).await);
    server.clock.advance(time::Duration::seconds(1));
    let after = token(&server.url, &client, &third.client_secret, None)
        .await
        .unwrap();
    assert!(
        is_active(&server.url, &introspector, &after).await,
        "tokens issued afterwards work"
    );
}

async fn removed_scopes_leave_introspection_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Narrowed").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let token = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    assert_eq!(
        introspect_grpc(&server.url, &introspector, &token)
            .await
            .scope,
        "OR.Jobs.Read OR.Queues"
    );
    let mut admin = server.admin("acme").await;
    admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: client.app.name.clone(),
            grants: vec![
                grant("OR", &[], &["OR.Queues"]),
                grant("PM", &[], &["PM.Users.Read"]),
            ],
            etag: String::new(),
        })
        .await
        .unwrap();
    let narrowed = introspect_grpc(&server.url, &introspector, &token).await;
    assert!(narrowed.active);
    assert_eq!(
        narrowed.scope, "OR.Queues",
        "a removed scope is gone; an added one is not given"
    );
    assert_eq!(narrowed.aud, ["OR"]);
    admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: client.app.name.clone(),
            grants: vec![grant("PM", &[], &["PM.Users.Read"])],
            etag: String::new(),
        })
        .await
        .unwrap();
    assert!(
        !is_active(&server.url, &introspector, &token).await,
        "no scope left: inactive"
    );
}

async fn deletion_ends_every_token_and_the_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Deleted").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let token_1 = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let token_2 = token(&server.url, &client, &client.secret, Some("OR.Queues"))
        .await
        .unwrap();
    let mut admin = server.admin("acme").await;
    admin
        .delete_application(pb::DeleteApplicationRequest {
            name: client.app.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert!(!is_active(&server.url, &introspector, &token_1).await);
    assert!(!is_active(&server.url, &introspector, &token_2).await);
    assert_eq!(
        token(&server.url, &client, &client.secret, None)
            .await
            .unwrap_err()["error"],
        "invalid_client"
    );
}
