//! The keys that seal tokens live outside the database: a copy of the
//! database alone opens and mints nothing, a rotated ring keeps live tokens
//! working, and a token claiming a longer life than this server issues is
//! refused whoever sealed it.

use extapps_client::v1 as pb;
use extapps_server::domain::{
    caller::Role,
    clock::{Clock, to_micros},
    key_ring::{KeyRing, Purpose},
    names::ClientId,
    token::{TokenClaims, TokenSealer},
};
use sea_orm::ConnectionTrait;
use secrecy::ExposeSecret;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::oauth_http::{is_active, service_client, token};

crate::on_both_backends!(
    a_copy_of_the_database_alone_opens_nothing,
    a_rotated_ring_keeps_live_tokens,
    tokens_living_longer_than_the_server_issues_are_refused,
);

async fn list_page(
    server: &TestServer,
    key: &str,
    page_token: &str,
) -> Result<pb::ListApplicationsResponse, tonic::Status> {
    server
        .client(key)
        .list_applications(pb::ListApplicationsRequest {
            parent: "organizations/acme".into(),
            page_size: 1,
            page_token: page_token.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn a_copy_of_the_database_alone_opens_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Sealed").await;
    let access = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let mut request = register_request("acme", service_app("Retried"));
    request.request_id = uuid::Uuid::new_v4().to_string();
    server
        .client(&admin_key)
        .register_application(request.clone())
        .await
        .unwrap();
    let page = list_page(&server, &admin_key, "").await.unwrap();
    assert!(!page.next_page_token.is_empty());

    // No key of the ring is in the database.
    let db = server.store().connection();
    assert!(
        db.execute_unprepared("SELECT * FROM server_keys")
            .await
            .is_err(),
        "the old key table is gone"
    );

    // A server on the same database without the key file (here: with a ring
    // of its own) is what a database thief has.
    let thief = server
        .beside(KeyRing::generate(server.clock.now()).unwrap())
        .await;
    assert!(!is_active(&thief.url, &introspect_key, &access).await);
    let refused = error_of(list_page(&thief, &admin_key, &page.next_page_token).await);
    assert!(refused.violation("page_token").is_some());
    let replay = error_of(
        thief
            .client(&admin_key)
            .register_application(request.clone())
            .await,
    );
    assert_eq!(replay.code, tonic::Code::FailedPrecondition);
    assert_eq!(replay.reason.as_deref(), Some("SAVED_RESPONSE_UNAVAILABLE"));
    // A token the thief's server seals is worthless to the real one.
    let forged = token(&thief.url, &client, &client.secret, None)
        .await
        .unwrap();
    assert!(!is_active(&server.url, &introspect_key, &forged).await);

    // The real server, with its ring, still opens everything.
    assert!(is_active(&server.url, &introspect_key, &access).await);
    list_page(&server, &admin_key, &page.next_page_token)
        .await
        .unwrap();
    let replayed = server
        .client(&admin_key)
        .register_application(request)
        .await
        .unwrap()
        .into_inner();
    assert!(replayed.client_secret.starts_with("extapps_cs_"));
}

async fn a_rotated_ring_keeps_live_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Rotating").await;
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let before = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();

    let rotated = server.ring.rotated(server.clock.now(), false).unwrap();
    let after_rotation = server.beside(rotated.clone()).await;
    let after = token(&after_rotation.url, &client, &client.secret, None)
        .await
        .unwrap();
    assert!(
        is_active(&after_rotation.url, &introspect_key, &before).await,
        "old key still opens"
    );
    assert!(is_active(&after_rotation.url, &introspect_key, &after).await);
    assert!(
        !is_active(&server.url, &introspect_key, &after).await,
        "the old ring lacks the new key"
    );

    // Retiring the old key ends what it sealed.
    let (old_id, _) = rotated.ids()[0].clone();
    let retired = server.beside(rotated.retired(&old_id).unwrap()).await;
    assert!(!is_active(&retired.url, &introspect_key, &before).await);
    assert!(is_active(&retired.url, &introspect_key, &after).await);
}

async fn tokens_living_longer_than_the_server_issues_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Long lived").await;
    let introspect_key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let sealer = TokenSealer::new(&server.ring.keys_for(Purpose::AccessToken).unwrap());
    let now = to_micros(server.clock.now());
    let hour = 3_600_000_000;
    let forge = |issued_at: i64, expires_at: i64| {
        sealer
            .seal(&TokenClaims {
                grant: None,
                credential: None,
                revision: 0,
                id: uuid::Uuid::new_v4(),
                client_id: ClientId::parse(&client.app.client_id).unwrap(),
                subject: None,
                scopes: vec!["OR.Jobs.Read".into()],
                issued_at,
                expires_at,
            })
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    // Within the server's one hour: active (the key really is the server's).
    assert!(is_active(&server.url, &introspect_key, &forge(now, now + hour)).await);
    // 23 hours, or issued in the future: refused.
    assert!(!is_active(&server.url, &introspect_key, &forge(now, now + 23 * hour)).await);
    assert!(
        !is_active(
            &server.url,
            &introspect_key,
            &forge(now + hour, now + hour + 60)
        )
        .await
    );
}
