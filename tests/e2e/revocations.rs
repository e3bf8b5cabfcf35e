//! Revocations under load and over time: many at once from one client
//! neither deadlock nor fail, and a revocation is forgotten, in memory and
//! in the database, once its token has expired anyway.

use extapps_server::domain::caller::Role;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};

use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{is_active, post_form, service_client, token};

crate::on_both_backends!(
    concurrent_revocations_all_succeed,
    revocations_are_forgotten_when_their_tokens_expire,
);

async fn revocation_rows(server: &TestServer) -> i64 {
    let db = server.store().connection();
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) FROM revoked_tokens",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index::<i64>(0)
    .unwrap()
}

async fn concurrent_revocations_all_succeed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Busy revoker").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let mut tokens = Vec::new();
    for _ in 0..64 {
        tokens.push(
            token(&server.url, &client, &client.secret, None)
                .await
                .unwrap(),
        );
    }
    let revocations = tokens.iter().map(|t| {
        let (url, id, secret, t) = (
            server.url.clone(),
            client.app.client_id.clone(),
            client.secret.clone(),
            t.clone(),
        );
        tokio::spawn(async move {
            post_form(
                &url,
                "/oauth2/revoke",
                Some((&id, &secret)),
                &[("token", &t)],
            )
            .await
            .0
        })
    });
    for status in all(revocations).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(revocation_rows(&server).await, 64);
    // Revoking again changes nothing and answers the same.
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        Some((&client.app.client_id, &client.secret)),
        &[("token", &tokens[0])],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revocation_rows(&server).await, 64);
    for t in tokens.iter().step_by(16) {
        assert!(!is_active(&server.url, &introspector, t).await);
    }
}

async fn all<T: Send + 'static>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.unwrap());
    }
    out
}

async fn revocations_are_forgotten_when_their_tokens_expire(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Forgetful").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let early = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    server.clock.advance(time::Duration::minutes(30));
    let late = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    for t in [&early, &late] {
        let (status, _) = post_form(
            &server.url,
            "/oauth2/revoke",
            Some((&client.app.client_id, &client.secret)),
            &[("token", t)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(revocation_rows(&server).await, 2);
    // The replica that revoked holds them in memory too.
    assert_eq!(server.store().revocations_held(), 2);

    // Nothing has expired yet: housekeeping keeps both.
    server.service.housekeeping().await;
    assert_eq!(revocation_rows(&server).await, 2);

    // The early token expires: its revocation goes, the late one stays and
    // still holds.
    server.clock.advance(time::Duration::minutes(31));
    server.service.housekeeping().await;
    assert_eq!(revocation_rows(&server).await, 1);
    assert_eq!(server.store().revocations_held(), 1);
    assert!(!is_active(&server.url, &introspector, &late).await);
    assert!(
        !is_active(&server.url, &introspector, &early).await,
        "expired anyway"
    );

    server.clock.advance(time::Duration::minutes(30));
    server.service.housekeeping().await;
    assert_eq!(revocation_rows(&server).await, 0);
    assert_eq!(server.store().revocations_held(), 0);
}

/// An SQLite server that reads an announcement it cannot understand (a
/// newer build wrote it), or finds the announcements gone back, stops
/// trusting its caches and starts over, its revocations loaded again: a
/// revoked token stays revoked throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_vanished_announcements_make_an_sqlite_server_start_over() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client = service_client(&server, "Announced").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let revoked = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let (status, _) = post_form(
        &server.url,
        "/oauth2/revoke",
        Some((&client.app.client_id, &client.secret)),
        &[("token", &revoked)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!is_active(&server.url, &introspector, &revoked).await);

    let db = server.store().connection();
    db.execute_unprepared("INSERT INTO cache_changes (payload) VALUES ('from:a-newer-build')")
        .await
        .unwrap();
    let within = std::time::Duration::from_secs(10);
    tokio::time::timeout(within, server.store().caches_trusted(false))
        .await
        .expect("the server stops trusting its caches");
    assert!(
        !is_active(&server.url, &introspector, &revoked).await,
        "read from the database meanwhile"
    );
    tokio::time::timeout(within, server.store().caches_trusted(true))
        .await
        .expect("and starts over");
    assert!(
        !is_active(&server.url, &introspector, &revoked).await,
        "its revocations were loaded again"
    );
    assert_eq!(server.store().revocations_held(), 1);

    // Announcement IDs that went back (the file restored from an older
    // copy, here emptied): the same.
    db.execute_unprepared("DELETE FROM cache_changes")
        .await
        .unwrap();
    tokio::time::timeout(within, server.store().caches_trusted(false))
        .await
        .expect("the server stops trusting its caches");
    tokio::time::timeout(within, server.store().caches_trusted(true))
        .await
        .expect("and starts over");
    assert!(!is_active(&server.url, &introspector, &revoked).await);
}
