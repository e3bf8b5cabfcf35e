//! Users list and revoke the applications they authorized, through the
//! sign-in front end, and every replica sees a revocation at once.

use extapps_client::{model::ApplicationName, v1 as pb};
use extapps_server::domain::caller::Role;
use reqwest::StatusCode;
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::oauth_http::{introspect_grpc, is_active};
use crate::support::user_flow::{
    LOOPBACK, USER, consented_code, grpc_error, native, redeem, refresh, setup, text, typed,
};

crate::on_both_backends!(
    users_list_and_revoke_what_they_authorized,
    every_replica_sees_user_revocations_at_once,
);

async fn users_list_and_revoke_what_they_authorized(backend: Backend) {
    let mut setup = setup(backend).await;
    let first = native(&mut setup, "First").await;
    let second = native(&mut setup, "Second").await;
    let server = &setup.server;
    let key = setup.introspect_key.clone();
    let mut tokens = Vec::new();
    for app in [&first, &second, &first] {
        let code = consented_code(&setup, app, LOOPBACK, "OR.Jobs offline_access").await;
        let (_, body) = redeem(server, app, &code, LOOPBACK).await;
        tokens.push(body);
    }
    // A code not redeemed yet is not a live authorization.
    let pending_code = consented_code(&setup, &second, LOOPBACK, "OR.Queues").await;

    let page = setup
        .signin
        .user_authorizations(
            USER,
            extapps_client::model::PageRequest {
                size: 1,
                token: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let rest = setup
        .signin
        .user_authorizations(USER, page.next(1).unwrap())
        .await
        .unwrap();
    assert_eq!(rest.next_page_token, None);
    let mut listed: Vec<_> = page.items.into_iter().chain(rest.items).collect();
    listed.sort_by(|a, b| a.application_display_name.cmp(&b.application_display_name));
    assert_eq!(
        listed
            .iter()
            .map(|a| a.application_display_name.as_str())
            .collect::<Vec<_>>(),
        ["First", "Second"]
    );
    assert_eq!(listed[0].scopes, ["OR.Jobs"]);
    assert!(listed[0].offline_access);
    // Another organization's sign-in key sees none of them; a platform-wide
    // one sees all; nobody else's subject sees anything.
    let other = typed(server, Some("globex"), Role::Signin).await;
    assert!(
        other
            .user_authorizations(USER, Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let platform = typed(server, None, Role::Signin).await;
    assert_eq!(
        platform
            .user_authorizations(USER, Default::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert!(
        setup
            .signin
            .user_authorizations("user-other", Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Revoking one application ends that user's tokens for it at once.
    let name: ApplicationName = first.name.parse().unwrap();
    let hidden = grpc_error(other.revoke_user_authorization(USER, &name).await);
    assert_eq!(hidden.code, Code::NotFound);
    setup
        .signin
        .revoke_user_authorization(USER, &name)
        .await
        .unwrap();
    for body in [&tokens[0], &tokens[2]] {
        assert!(!is_active(&server.url, &key, text(body, "access_token")).await);
        let (status, _) = refresh(server, &first, text(body, "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert!(
        is_active(&server.url, &key, text(&tokens[1], "access_token")).await,
        "the other app's"
    );
    let left = setup
        .signin
        .user_authorizations(USER, Default::default())
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].application_display_name, "Second");
    let again = grpc_error(setup.signin.revoke_user_authorization(USER, &name).await);
    assert_eq!(
        (again.code, again.reason.as_deref()),
        (Code::NotFound, Some("USER_AUTHORIZATION_NOT_FOUND"))
    );
    // Revoking also ends a code not yet redeemed.
    let second_name: ApplicationName = second.name.parse().unwrap();
    setup
        .signin
        .revoke_user_authorization(USER, &second_name)
        .await
        .unwrap();
    let (status, _) = redeem(server, &second, &pending_code, LOOPBACK).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let events = audit(&mut setup.admin, "acme").await;
    assert_eq!(
        events[0].action(),
        pb::AuditAction::UserAuthorizationRevoked
    );
    assert_eq!(events[0].details["subject"], USER);

    // Bad input is refused before anything is read.
    let invalid = error_of(
        setup
            .server
            .client(&setup.server.key(Some("acme"), Role::Signin, &[]).await)
            .revoke_user_authorization(pb::RevokeUserAuthorizationRequest {
                subject: String::new(),
                application: "nope".into(),
            })
            .await,
    );
    assert_eq!(invalid.code, Code::InvalidArgument);
}

async fn every_replica_sees_user_revocations_at_once(backend: Backend) {
    let mut setup = setup(backend).await;
    let app = native(&mut setup, "Replicated").await;
    let server = &setup.server;
    let other = server.beside(server.ring.clone()).await;
    // The other replica answers from its caches: what reaches it must come
    // through change detection (a channel, or polling the SQLite file).
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        other.store().caches_trusted(true),
    )
    .await
    .expect("the other replica follows changes");
    let key = &setup.introspect_key;
    let mut live = Vec::new();
    for _ in 0..2 {
        let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
        let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
        assert!(is_active(&other.url, key, text(&body, "access_token")).await);
        live.push(body);
    }
    // A user's revocation through one replica (three grants: two
    // redeemed, one code still waiting)...
    let name: ApplicationName = app.name.parse().unwrap();
    let first_grant = live.remove(0);
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs offline_access").await;
    let seen = other.store().changes_applied();
    setup
        .signin
        .revoke_user_authorization(USER, &name)
        .await
        .unwrap();
    arrived(&other, seen + 3).await;
    // ... ends the tokens on the other, and its codes and refresh tokens.
    for body in [&first_grant, &live[0]] {
        assert!(!is_active(&other.url, key, text(body, "access_token")).await);
        let (status, _) = refresh(&other, &app, text(body, "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, _) = redeem(&other, &app, &code, LOOPBACK).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A refresh token reused on one replica ends the grant on the other.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, first) = redeem(server, &app, &code, LOOPBACK).await;
    let (_, second) = refresh(&other, &app, text(&first, "refresh_token")).await;
    server.clock.advance(time::Duration::minutes(1));
    let seen = other.store().changes_applied();
    let (status, _) = refresh(server, &app, text(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    arrived(&other, seen + 1).await;
    assert!(!is_active(&other.url, key, text(&second, "access_token")).await);

    // A removed scope narrows the other replica's answer at once.
    let code = consented_code(&setup, &app, LOOPBACK, "OR.Jobs OR.Queues offline_access").await;
    let (_, body) = redeem(server, &app, &code, LOOPBACK).await;
    let access = text(&body, "access_token").to_owned();
    assert_eq!(
        introspect_grpc(&other.url, key, &access).await.scope,
        "OR.Jobs OR.Queues"
    );
    let seen = other.store().changes_applied();
    setup
        .admin
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: app.name.clone(),
            grants: vec![grant("OR", &["OR.Queues"], &[])],
            etag: String::new(),
        })
        .await
        .unwrap();
    arrived(&other, seen + 1).await;
    assert_eq!(
        introspect_grpc(&other.url, key, &access).await.scope,
        "OR.Queues"
    );
}

/// Waits until `replica` has applied `count` changes: the delivery of
/// another replica's notification (PostgreSQL, about a millisecond) or its
/// next poll of the SQLite file (at most 20 ms).
async fn arrived(replica: &TestServer, count: u64) {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        replica.store().wait_for_changes(count),
    )
    .await
    .expect("the other replica's change arrives");
}
