//! Two server processes on one PostgreSQL database, each with its own caches:
//! what one replica changes, the other enforces as soon as the change's
//! notification reaches it (SPEC section 7).

use extapps_client::v1 as pb;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, fresh_database};
use crate::support::oauth_http::{App, is_active, token};
use crate::support::processes::{Serving, create_key, key_file, run_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_enforce_each_others_changes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(Backend::Postgres, &dir).await;
    // The replicas share one key file, as a deployment must.
    let key_file = key_file(dir.path());
    let env = [
        ("EXTAPPS_DATABASE_URL", database.as_str()),
        ("EXTAPPS_KEY_FILE", key_file.as_str()),
    ];
    let admin_key = create_key(dir.path(), &env, "admin");
    let introspect_key = create_key(dir.path(), &env, "introspect");
    let a = Serving::start_with(dir.path(), &env);
    let b = Serving::start_with(dir.path(), &env);
    for replica in [&a, &b] {
        replica.wait_for_logs("cache invalidation channel is up", 1);
    }
    // Each change reaches both replicas as one notification; a replica
    // enforces it once it has arrived (the wait is the delivery, ~1 ms).
    let delivered = |count: usize| {
        for replica in [&a, &b] {
            replica.wait_for_logs("invalidation received", count);
        }
    };
    let (a_url, b_url) = (a.url(), b.url());
    let mut admin_a = extapps_client::connect(&a_url, &admin_key)
        .await
        .unwrap()
        .generated();
    let mut admin_b = extapps_client::connect(&b_url, &admin_key)
        .await
        .unwrap()
        .generated();

    // Registered on A, usable on B: the replicas share keys for tokens.
    let registered = register(&mut admin_a, "acme", service_app("Replicated")).await;
    let client = App {
        app: registered.application.unwrap(),
        secret: registered.client_secret,
    };
    let on_a = token(&a_url, &client, &client.secret, None).await.unwrap();
    let on_b = token(&b_url, &client, &client.secret, None).await.unwrap();
    for url in [&a_url, &b_url] {
        assert!(is_active(url, &introspect_key, &on_a).await);
        assert!(is_active(url, &introspect_key, &on_b).await);
    }

    // Rotation through A: B refuses the old secret at once (even though it
    // verified it moments ago), and the tokens live on.
    let rotated = rotate(&mut admin_a, &client.app.name, 0, false).await;
    delivered(1);
    let refused = token(&b_url, &client, &client.secret, None)
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client");
    assert!(is_active(&b_url, &introspect_key, &on_a).await);
    let fresh = token(&b_url, &client, &rotated.client_secret, None)
        .await
        .unwrap();

    // Scope removal through B: A reports the narrower scope at once.
    admin_b
        .update_application_scopes(pb::UpdateApplicationScopesRequest {
            name: client.app.name.clone(),
            grants: vec![grant("OR", &[], &["OR.Queues"])],
            etag: String::new(),
        })
        .await
        .unwrap();
    delivered(2);
    let narrowed =
        crate::support::oauth_http::introspect_grpc(&a_url, &introspect_key, &fresh).await;
    assert_eq!(narrowed.scope, "OR.Queues");

    // Revocation through A: B sees the token inactive at once.
    let revoke_tokens = rotate(&mut admin_a, &client.app.name, 0, true).await;
    delivered(3);
    assert!(!is_active(&b_url, &introspect_key, &fresh).await);
    let last = token(&a_url, &client, &revoke_tokens.client_secret, None)
        .await
        .unwrap();
    assert!(is_active(&b_url, &introspect_key, &last).await);

    // A second secret added through B, used on B, then deleted with its
    // tokens through A: B refuses it and ends its token at once, and the
    // other secret's token lives on.
    let kept = revoke_tokens.application.clone().unwrap();
    let (added_secret, after) = add_secret(&mut admin_b, &client.app.name, "", None).await;
    delivered(4);
    let by_added = token(&b_url, &client, &added_secret, None).await.unwrap();
    let added = newest(&after, &kept.secrets.iter().collect::<Vec<_>>());
    delete_secret(&mut admin_a, &added, true).await.unwrap();
    delivered(5);
    let refused = token(&b_url, &client, &added_secret, None)
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client");
    assert!(!is_active(&b_url, &introspect_key, &by_added).await);
    assert!(is_active(&b_url, &introspect_key, &last).await);

    // Deletion through B: A refuses the secret and every token at once.
    admin_b
        .delete_application(pb::DeleteApplicationRequest {
            name: client.app.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    delivered(6);
    assert!(!is_active(&a_url, &introspect_key, &last).await);
    let refused = token(&a_url, &client, &revoke_tokens.client_secret, None)
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client");

    // A key revoked by the operator command (a third process) stops working
    // on both replicas, though both had it cached.
    let (ok, listed, _) = run_with(dir.path(), &env, &["keys", "list"]);
    assert!(ok);
    let introspect_id = listed
        .lines()
        .find(|l| l.contains("introspect"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(run_with(dir.path(), &env, &["keys", "revoke", &introspect_id]).0);
    delivered(7);
    for url in [&a_url, &b_url] {
        let refused = extapps_client::connect(url, &introspect_key)
            .await
            .unwrap()
            .generated()
            .introspect_token(pb::IntrospectTokenRequest {
                token: last.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
}

/// A replica that loses its notification channel must not answer from its
/// caches (it could miss a change), and trusts them again once it listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_its_channel_reads_the_database() {
    use std::time::Duration;

    use extapps_server::domain::caller::Role;
    use sea_orm::ConnectionTrait;

    use crate::support::harness::TestServer;

    let server = TestServer::start(Backend::Postgres).await;
    let client = crate::support::oauth_http::service_client(&server, "Cut off").await;
    let introspector = server.key(Some("acme"), Role::Introspect, &[]).await;
    let access = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    assert!(
        is_active(&server.url, &introspector, &access).await,
        "the cache is warm"
    );

    // Cut the listening connection, as a network fault would.
    let db = server.store().connection();
    db.execute_unprepared(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        server.store().caches_trusted(false),
    )
    .await
    .expect("the replica notices the lost channel");

    // A change nobody announces (as if its notification were lost) is still
    // seen, because an untrusted replica reads the database.
    db.execute_unprepared(&format!(
        "DELETE FROM application_secrets WHERE application_id = '{0}'; \
         DELETE FROM applications WHERE id = '{0}'",
        client.app.client_id
    ))
    .await
    .unwrap();
    assert!(!is_active(&server.url, &introspector, &access).await);

    // The replica listens again and starts from empty caches.
    tokio::time::timeout(Duration::from_secs(30), server.store().caches_trusted(true))
        .await
        .expect("the replica listens again");
    assert!(!is_active(&server.url, &introspector, &access).await);
    assert_eq!(
        token(&server.url, &client, &client.secret, None)
            .await
            .unwrap_err()["error"],
        "invalid_client"
    );
}

/// `serve --no-caches`: every request is read from the database, and the
/// replica says so in its metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_caches_reads_every_request_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("EXTAPPS_NO_CACHES", "true")];
    let admin_key = create_key(dir.path(), &env, "admin");
    let serving = Serving::start_with(dir.path(), &env);
    let url = serving.url();
    let mut admin = extapps_client::connect(&url, &admin_key)
        .await
        .unwrap()
        .generated();
    let registered = register(&mut admin, "acme", service_app("Uncached")).await;
    let client = App {
        app: registered.application.unwrap(),
        secret: registered.client_secret,
    };
    for _ in 0..3 {
        token(&url, &client, &client.secret, None).await.unwrap();
    }
    let metrics = crate::support::oauth_http::metrics(&url).await;
    for cache in ["applications", "callers"] {
        assert!(
            metrics.contains(&format!(
                "extapps_replica_cache_lookups_total{{cache=\"{cache}\",outcome=\"distrusted\"}}"
            )),
            "{metrics}"
        );
        assert!(
            !metrics.contains(&format!(
                "extapps_replica_cache_lookups_total{{cache=\"{cache}\",outcome=\"hit\"}}"
            )),
            "{metrics}"
        );
    }
}
