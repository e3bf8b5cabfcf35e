//! What ends access ends it for good, whatever the timing: a rotation with
//! `revoke_tokens` ends every token its old secrets authenticated, even one
//! whose request read the old state just before the rotation and was
//! answered just after; a removed scope never comes back to a token issued
//! before its removal, even once it is granted again, on every replica.

use std::sync::Arc;

use extapps_server::domain::{
    caller::Role,
    clock::{Clock, to_micros},
    key_ring::Purpose,
    names::ClientId,
    token::{TokenClaims, TokenSealer},
};
use secrecy::ExposeSecret;

use crate::support::fixtures::{get, grant, rotate, set_scopes};
use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{App, introspect_grpc, is_active, service_client, token};

crate::on_both_backends!(
    a_token_decided_before_a_rotation_ends_with_it_whenever_it_was_sealed,
    tokens_requested_during_a_rotation_end_with_it,
    a_graced_secret_keeps_getting_live_tokens,
    a_removed_application_scope_never_comes_back,
);

/// Waits until `replica` has applied `count` changes made through other
/// replicas (~1 ms on PostgreSQL, one poll of 20 ms on SQLite). With the
/// caches off it reads the database on every call: nothing to wait for.
async fn delivered(replica: &TestServer, count: u64) {
    if crate::support::harness::caches_on() {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            replica.store().wait_for_changes(count),
        )
        .await
        .expect("the change reaches the other replica");
    }
}

/// The ID of the application's only live secret.
async fn secret_id(server: &TestServer, client: &App) -> uuid::Uuid {
    let mut admin = server.admin("acme").await;
    let app = get(&mut admin, &client.app.name).await;
    assert_eq!(app.secrets.len(), 1);
    app.secrets[0].secret_id.parse().unwrap()
}

/// The application's revision, read from its etag (`"7"`).
async fn revision(server: &TestServer, client: &App) -> i64 {
    let mut admin = server.admin("acme").await;
    get(&mut admin, &client.app.name)
        .await
        .etag
        .trim_matches('"')
        .parse()
        .unwrap()
}

async fn a_token_decided_before_a_rotation_ends_with_it_whenever_it_was_sealed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let client = service_client(&server, "Rotated").await;
    let old_secret = secret_id(&server, &client).await;
    let before = revision(&server, &client).await;
    let issued = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    // A second replica that has the application in memory already.
    let replica = server.beside(server.ring.clone()).await;
    assert!(is_active(&replica.url, &key, &issued).await);
    let mut admin = server.admin("acme").await;
    rotate(&mut admin, &client.app.name, 0, true).await;
    delivered(&replica, 1).await;
    // A request that authenticated with the old secret against the state
    // before the rotation, and sealed its token a minute after it: the
    // claims it carries are what such a request writes (made here with the
    // server's own key, as the server would).
    server.clock.advance(time::Duration::minutes(1));
    let now = to_micros(server.clock.now());
    let sealer = TokenSealer::new(&server.ring.keys_for(Purpose::AccessToken).unwrap());
    let late = |revision: i64| {
        sealer
            .seal(&TokenClaims {
                id: uuid::Uuid::new_v4(),
                client_id: ClientId::parse(&client.app.client_id).unwrap(),
                subject: None,
                grant: None,
                credential: Some(old_secret),
                revision,
                scopes: vec!["OR.Queues".into()],
                issued_at: now,
                expires_at: now + 3_600_000_000,
            })
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    assert!(!is_active(&server.url, &key, &issued).await);
    assert!(
        !is_active(&server.url, &key, &late(before)).await,
        "stamped after the rotation, decided before it"
    );
    // The same claims decided at the rotation's own revision (the old
    // secret in a grace period) would be live: the revision decides.
    assert!(is_active(&server.url, &key, &late(before + 1)).await);
    // Every replica agrees.
    assert!(!is_active(&replica.url, &key, &late(before)).await);
    assert!(!is_active(&replica.url, &key, &issued).await);
}

async fn tokens_requested_during_a_rotation_end_with_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let mut admin = server.admin("acme").await;
    for round in 0..6 {
        let client = service_client(&server, &format!("Busy {round}")).await;
        // Three clients ask for tokens with the secret until it stops
        // working; the rotation lands in the middle of their requests.
        let tokens_so_far = Arc::new(tokio::sync::Semaphore::new(0));
        let askers: Vec<_> = (0..3)
            .map(|_| {
                let (url, id, secret, counted) = (
                    server.url.clone(),
                    client.app.client_id.clone(),
                    client.secret.clone(),
                    tokens_so_far.clone(),
                );
                tokio::spawn(async move {
                    let http = crate::support::oauth_http::http();
                    let mut tokens = Vec::new();
                    // Bounded: a rotation that did not stop the old secret
                    // fails the test instead of hanging it.
                    for _ in 0..20_000 {
                        let response = http
                            .post(format!("{url}/oauth2/token"))
                            .basic_auth(&id, Some(&secret))
                            .form(&[("grant_type", "client_credentials")])
                            .send()
                            .await
                            .unwrap();
                        if response.status() != reqwest::StatusCode::OK {
                            assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
                            return tokens;
                        }
                        let body: serde_json::Value = response.json().await.unwrap();
                        tokens.push(body["access_token"].as_str().unwrap().to_owned());
                        counted.add_permits(1);
                    }
                    panic!("the old secret still works after 20,000 requests");
                })
            })
            .collect();
        let _ = tokens_so_far.acquire_many(30).await.unwrap();
        rotate(&mut admin, &client.app.name, 0, true).await;
        let mut issued = Vec::new();
        for asker in askers {
            issued.extend(asker.await.unwrap());
        }
        assert!(issued.len() >= 30);
        for token in &issued {
            let answer = introspect_grpc(&server.url, &key, token).await;
            assert!(!answer.active, "round {round}: a token of the old secret");
        }
    }
}

async fn a_graced_secret_keeps_getting_live_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let client = service_client(&server, "Graced").await;
    let before = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let mut admin = server.admin("acme").await;
    let new_secret = rotate(&mut admin, &client.app.name, 3600, true)
        .await
        .client_secret;
    // Tokens of before the rotation end; the old secret still gets tokens
    // during its grace period, and they are live.
    assert!(!is_active(&server.url, &key, &before).await);
    let during = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    assert!(is_active(&server.url, &key, &during).await);
    let with_new = token(&server.url, &client, &new_secret, None)
        .await
        .unwrap();
    assert!(is_active(&server.url, &key, &with_new).await);
    // A later rotation without `revoke_tokens` ends none of them.
    rotate(&mut admin, &client.app.name, 0, false).await;
    assert!(is_active(&server.url, &key, &during).await);
    assert!(is_active(&server.url, &key, &with_new).await);
}

async fn a_removed_application_scope_never_comes_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.key(Some("acme"), Role::Introspect, &[]).await;
    let client = service_client(&server, "Narrowed").await;
    let name = client.app.name.clone();
    let mut admin = server.admin("acme").await;
    let both = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let jobs_only = token(&server.url, &client, &client.secret, Some("OR.Jobs.Read"))
        .await
        .unwrap();
    let replica = server.beside(server.ring.clone()).await;
    assert!(
        is_active(&replica.url, &key, &both).await,
        "in its memory now"
    );
    let scope = |url: String, token: String| {
        let key = key.clone();
        async move {
            let answer = introspect_grpc(&url, &key, &token).await;
            answer.active.then_some(answer.scope)
        }
    };
    assert_eq!(
        scope(server.url.clone(), both.clone()).await.as_deref(),
        Some("OR.Jobs.Read OR.Queues")
    );

    // Removing OR.Jobs.Read narrows one token and ends the other...
    set_scopes(&mut admin, &name, vec![grant("OR", &[], &["OR.Queues"])]).await;
    delivered(&replica, 1).await;
    for url in [&server.url, &replica.url] {
        assert_eq!(
            scope(url.clone(), both.clone()).await.as_deref(),
            Some("OR.Queues")
        );
        assert_eq!(scope(url.clone(), jobs_only.clone()).await, None);
    }
    // ...and granting it again, in the next edit or after others, gives it
    // back to neither.
    set_scopes(
        &mut admin,
        &name,
        vec![grant("OR", &[], &["OR.Jobs.Read", "OR.Queues"])],
    )
    .await;
    set_scopes(
        &mut admin,
        &name,
        vec![grant(
            "OR",
            &[],
            &["OR.Jobs.Read", "OR.Queues", "OR.Assets"],
        )],
    )
    .await;
    delivered(&replica, 3).await;
    for url in [&server.url, &replica.url] {
        assert_eq!(
            scope(url.clone(), both.clone()).await.as_deref(),
            Some("OR.Queues")
        );
        assert_eq!(scope(url.clone(), jobs_only.clone()).await, None);
    }
    // A token issued after the re-grant has it.
    let after = token(&server.url, &client, &client.secret, Some("OR.Jobs.Read"))
        .await
        .unwrap();
    assert_eq!(
        scope(replica.url.clone(), after.clone()).await.as_deref(),
        Some("OR.Jobs.Read")
    );
    // Removing another scope leaves what was decided after the re-grant.
    set_scopes(&mut admin, &name, vec![grant("OR", &[], &["OR.Jobs.Read"])]).await;
    assert_eq!(
        scope(server.url.clone(), after).await.as_deref(),
        Some("OR.Jobs.Read")
    );
    assert_eq!(scope(server.url.clone(), both).await, None);
}
