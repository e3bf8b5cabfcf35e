//! Several secrets per application (SPEC rule 6a): added beside each other
//! with a description and an expiry, listed, deleted one by one (ending
//! their tokens or not), expiring by themselves, capped at five, and
//! counted for operators when they expire soon.

use extapps_client::{GeneratedClient as Client, v1 as pb};
use extapps_server::domain::{caller::Role, clock::Clock};
use prost_types::Duration;
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::oauth_http::{App, is_active, metrics, service_client, token};

crate::on_both_backends!(
    secrets_added_beside_each_other_all_work_until_one_is_deleted,
    deleting_a_secret_with_its_tokens_ends_only_that_secrets_tokens,
    five_live_secrets_at_most,
    a_secret_expires_by_itself,
    bad_secret_requests_change_nothing,
    operators_see_secrets_that_expire_soon,
    secrets_replaced_before_the_upgrade_are_not_reported_as_expiring,
    revoking_every_token_reaches_secrets_deleted_or_expired_before,
);

fn days(days: i64) -> Option<Duration> {
    Some(Duration {
        seconds: days * 86_400,
        nanos: 0,
    })
}

/// The IDs of the listed secrets (whose last use moves with every token).
fn ids(app: &pb::Application) -> Vec<&str> {
    app.secrets.iter().map(|s| s.secret_id.as_str()).collect()
}

/// The newest audit event of `action` (events of one test share the
/// manual clock's instant, so the newest of all may be another kind).
async fn last_event(admin: &mut Client, action: pb::AuditAction) -> pb::AuditEvent {
    audit(admin, "acme")
        .await
        .into_iter()
        .find(|e| e.action() == action)
        .unwrap_or_else(|| panic!("no {action:?} event"))
}

async fn secrets_added_beside_each_other_all_work_until_one_is_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Several").await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let first = client.app.secrets[0].clone();
    assert_eq!(
        first.name,
        format!("{}/secrets/{}", client.app.name, first.secret_id)
    );
    assert_eq!(first.description, "");

    let (second_secret, after) =
        add_secret(&mut admin, &client.app.name, "  CI pipeline  ", days(90)).await;
    assert_eq!(after.secrets.len(), 2, "the first one stays");
    let second = newest(&after, &[&first]);
    assert_eq!(second.description, "CI pipeline", "trimmed");
    assert_eq!(
        second.expire_time.unwrap().seconds - second.create_time.unwrap().seconds,
        90 * 86_400
    );
    assert!(after.secrets.iter().any(|s| s == &first), "unchanged");
    assert_eq!(get(&mut admin, &client.app.name).await, after);
    let added = last_event(&mut admin, pb::AuditAction::ApplicationSecretGenerated).await;
    assert_eq!(added.details["keep_existing"], "true");
    assert_eq!(added.details["secret_id"], second.secret_id);

    // Both secrets get tokens.
    let by_first = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let by_second = token(&server.url, &client, &second_secret, None)
        .await
        .unwrap();

    // Deleting the second: it stops at once, the first goes on, and its
    // tokens live on (they were not asked to end).
    let after = delete_secret(&mut admin, &second, false).await.unwrap();
    assert_eq!(ids(&after), [first.secret_id.as_str()]);
    let refused = token(&server.url, &client, &second_secret, None)
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client");
    token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    assert!(is_active(&server.url, &introspect, &by_first).await);
    assert!(is_active(&server.url, &introspect, &by_second).await);
    let deleted = last_event(&mut admin, pb::AuditAction::ApplicationSecretDeleted).await;
    assert_eq!(deleted.details["secret_id"], second.secret_id);
    assert_eq!(deleted.details["revoke_tokens"], "false");

    // Gone is gone: not found again, and nothing changes.
    let err = error_of(delete_secret(&mut admin, &second, false).await);
    assert_eq!(err.code, Code::NotFound);
    assert_eq!(err.reason.as_deref(), Some("SECRET_NOT_FOUND"));
    assert_eq!(get(&mut admin, &client.app.name).await, after);

    // Another organization's admin cannot see it to delete it.
    let mut stranger = server.admin("globex").await;
    let err = error_of(delete_secret(&mut stranger, &first, true).await);
    assert_eq!(err.code, Code::NotFound);
    assert_eq!(err.reason.as_deref(), Some("APPLICATION_NOT_FOUND"));
    token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();

    // The last secret may go too: the application then has none.
    let after = delete_secret(&mut admin, &first, false).await.unwrap();
    assert!(after.secrets.is_empty());
    let refused = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client");
}

async fn deleting_a_secret_with_its_tokens_ends_only_that_secrets_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Leaked").await;
    let first = client.app.secrets[0].clone();
    let (leaked_secret, after) = add_secret(&mut admin, &client.app.name, "leaked", None).await;
    let leaked = newest(&after, &[&first]);
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let kept = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let stolen = token(&server.url, &client, &leaked_secret, None)
        .await
        .unwrap();
    assert!(is_active(&server.url, &introspect, &stolen).await);

    let after = delete_secret(&mut admin, &leaked, true).await.unwrap();
    assert_eq!(ids(&after), [first.secret_id.as_str()]);
    assert!(
        !is_active(&server.url, &introspect, &stolen).await,
        "the leaked secret's token ended at once"
    );
    assert!(
        is_active(&server.url, &introspect, &kept).await,
        "the other secret's token lives on"
    );
    // A token the remaining secret gets afterwards is live, of course.
    let fresh = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    assert!(is_active(&server.url, &introspect, &fresh).await);
    let deleted = last_event(&mut admin, pb::AuditAction::ApplicationSecretDeleted).await;
    assert_eq!(deleted.details["secret_id"], leaked.secret_id);
    assert_eq!(deleted.details["revoke_tokens"], "true");
}

async fn five_live_secrets_at_most(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Capped").await;
    for n in 2..=5 {
        let (_, after) = add_secret(&mut admin, &client.app.name, &format!("#{n}"), None).await;
        assert_eq!(after.secrets.len(), n);
    }
    let full = get(&mut admin, &client.app.name).await;
    let events_before = audit(&mut admin, "acme").await.len();
    let err = error_of(
        admin
            .generate_application_secret(pb::GenerateApplicationSecretRequest {
                name: client.app.name.clone(),
                keep_existing_secrets: true,
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.code, Code::FailedPrecondition);
    assert_eq!(err.reason.as_deref(), Some("TOO_MANY_SECRETS"));
    // Replacing with a grace period would keep all five beside a sixth.
    let err = error_of(
        admin
            .generate_application_secret(pb::GenerateApplicationSecretRequest {
                name: client.app.name.clone(),
                grace_period: Some(Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.reason.as_deref(), Some("TOO_MANY_SECRETS"));
    assert_eq!(
        get(&mut admin, &client.app.name).await,
        full,
        "nothing changed"
    );
    assert_eq!(audit(&mut admin, "acme").await.len(), events_before);

    // Deleting one makes room; replacing without grace leaves one.
    delete_secret(&mut admin, &full.secrets[1], false)
        .await
        .unwrap();
    let (_, after) = add_secret(&mut admin, &client.app.name, "room again", None).await;
    assert_eq!(after.secrets.len(), 5);
    let replaced = rotate(&mut admin, &client.app.name, 0, false).await;
    assert_eq!(replaced.application.unwrap().secrets.len(), 1);
}

async fn a_secret_expires_by_itself(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Expiring").await;
    let first = client.app.secrets[0].clone();
    let (short_secret, after) = add_secret(
        &mut admin,
        &client.app.name,
        "one hour",
        Some(Duration {
            seconds: 3600,
            nanos: 0,
        }),
    )
    .await;
    let short = newest(&after, &[&first]);
    token(&server.url, &client, &short_secret, None)
        .await
        .unwrap();

    server.clock.advance(time::Duration::seconds(3599));
    token(&server.url, &client, &short_secret, None)
        .await
        .unwrap();
    server.clock.advance(time::Duration::seconds(1));
    let refused = token(&server.url, &client, &short_secret, None)
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client", "expired at its instant");
    token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let listed = get(&mut admin, &client.app.name).await;
    assert_eq!(ids(&listed), [first.secret_id.as_str()], "no longer listed");
    // Housekeeping removes what no longer works, so expired secrets never
    // pile up in storage; but only once no token it got can still live on
    // any replica (whose token lifetime may be up to a day, and whose clock
    // may differ), so that deleting it can end them till then.
    server.clock.advance(time::Duration::DAY);
    server.service.housekeeping().await;
    let stored = crate::support::stored::stored_secret_hashes(&server, &client.app.client_id);
    assert_eq!(stored.await.len(), 2, "kept while its tokens can live");
    server.clock.advance(time::Duration::DAY);
    server.service.housekeeping().await;
    let stored = crate::support::stored::stored_secret_hashes(&server, &client.app.client_id);
    assert_eq!(stored.await.len(), 1);
    let err = error_of(delete_secret(&mut admin, &short, false).await);
    assert_eq!(err.reason.as_deref(), Some("SECRET_NOT_FOUND"), "purged");
    token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();

    // An expiry given as an instant works the same way.
    let at = prost_types::Timestamp {
        seconds: (server.clock.now() + time::Duration::minutes(10)).unix_timestamp(),
        nanos: 0,
    };
    let added = admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: client.app.name.clone(),
            keep_existing_secrets: true,
            expiration: Some(pb::generate_application_secret_request::Expiration::ExpireTime(at)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let app = added.application.unwrap();
    let expiring = app
        .secrets
        .iter()
        .find(|s| s.expire_time == Some(at))
        .unwrap()
        .clone();
    let late = token(&server.url, &client, &added.client_secret, None)
        .await
        .unwrap();
    server.clock.advance(time::Duration::minutes(10));
    let refused = token(&server.url, &client, &added.client_secret, None)
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client");

    // Expired but not purged yet, it can still be deleted with the tokens
    // it got while it worked.
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    assert!(is_active(&server.url, &introspect, &late).await);
    delete_secret(&mut admin, &expiring, true).await.unwrap();
    assert!(!is_active(&server.url, &introspect, &late).await);
    let err = error_of(delete_secret(&mut admin, &expiring, true).await);
    assert_eq!(err.reason.as_deref(), Some("SECRET_NOT_FOUND"), "deleted");
}

async fn bad_secret_requests_change_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Picky").await;
    let past = prost_types::Timestamp {
        seconds: server.clock.now().unix_timestamp() - 1,
        nanos: 0,
    };
    let request = |edit: &dyn Fn(&mut pb::GenerateApplicationSecretRequest)| {
        let mut request = pb::GenerateApplicationSecretRequest {
            name: client.app.name.clone(),
            keep_existing_secrets: true,
            ..Default::default()
        };
        edit(&mut request);
        request
    };
    use pb::generate_application_secret_request::Expiration;
    let cases: Vec<(&str, pb::GenerateApplicationSecretRequest)> = vec![
        ("description", request(&|r| r.description = "x".repeat(129))),
        (
            "description",
            request(&|r| r.description = "two\nlines".into()),
        ),
        (
            "ttl",
            request(&|r| r.expiration = Some(Expiration::Ttl(Duration::default()))),
        ),
        (
            "ttl",
            request(&|r| {
                r.expiration = Some(Expiration::Ttl(Duration {
                    seconds: -1,
                    nanos: 0,
                }))
            }),
        ),
        (
            "ttl",
            request(&|r| r.expiration = days(3654).map(Expiration::Ttl)),
        ),
        (
            "expire_time",
            request(&|r| r.expiration = Some(Expiration::ExpireTime(past))),
        ),
        ("grace_period", request(&|r| r.grace_period = days(1))),
        ("revoke_tokens", request(&|r| r.revoke_tokens = true)),
    ];
    for (field, bad) in cases {
        let err = error_of(admin.generate_application_secret(bad.clone()).await);
        assert_eq!(err.code, Code::InvalidArgument, "{bad:?}");
        assert!(err.violation(field).is_some(), "{field}: {err:?}");
    }
    for name in [
        format!("{}/secrets/not-a-uuid", client.app.name),
        format!(
            "{}/secret/{}",
            client.app.name, client.app.secrets[0].secret_id
        ),
        client.app.name.clone(),
    ] {
        let err = error_of(
            admin
                .delete_application_secret(pb::DeleteApplicationSecretRequest {
                    name,
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(err.violation("name").is_some(), "{err:?}");
    }
    assert_eq!(get(&mut admin, &client.app.name).await, client.app);

    // An etag read before another change is stale.
    rename(&mut admin, &client.app.name, "Picky too").await;
    let err = error_of(
        admin
            .delete_application_secret(pb::DeleteApplicationSecretRequest {
                name: client.app.secrets[0].name.clone(),
                etag: client.app.etag.clone(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.code, Code::Aborted, "{err:?}");
    assert_eq!(
        get(&mut admin, &client.app.name).await.secrets,
        client.app.secrets
    );

    // A non-confidential application has no secret to add.
    let native = register(&mut admin, "acme", native_app("Desktop")).await;
    let err = error_of(
        admin
            .generate_application_secret(pb::GenerateApplicationSecretRequest {
                name: native.application.unwrap().name,
                keep_existing_secrets: true,
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.reason.as_deref(), Some("APPLICATION_NOT_CONFIDENTIAL"));
}

async fn operators_see_secrets_that_expire_soon(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let expiring = |text: &str, within: &str| -> i64 {
        let prefix = format!("extapps_client_secrets_expiring{{within=\"{within}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    let one: App = service_client(&server, "One").await;
    let two: App = service_client(&server, "Two").await;
    add_secret(&mut admin, &one.app.name, "3 days", days(3)).await;
    add_secret(&mut admin, &one.app.name, "20 days", days(20)).await;
    add_secret(&mut admin, &two.app.name, "29 days", days(29)).await;
    add_secret(&mut admin, &two.app.name, "60 days", days(60)).await;
    add_secret(&mut admin, &two.app.name, "10 days", days(10)).await;
    // Replaced with a grace period: expiring, but nothing to act on.
    rotate(&mut admin, &one.app.name, 86_400, false).await;

    server.service.housekeeping().await;
    let text = metrics(&server.url).await;
    assert_eq!(expiring(&text, "7d"), 0, "the 3-day one was replaced");
    assert_eq!(expiring(&text, "30d"), 2, "two's 10-day and 29-day secrets");

    add_secret(&mut admin, &two.app.name, "5 days", days(5)).await;
    server.clock.advance(time::Duration::days(25));
    server.service.housekeeping().await;
    let text = metrics(&server.url).await;
    assert_eq!(
        expiring(&text, "7d"),
        1,
        "29 days are now 4; the 5-day and 10-day ones expired"
    );
    assert_eq!(
        expiring(&text, "30d"),
        1,
        "the same 4-day one (each horizon counts from now); 60 days are now 35"
    );
}

async fn secrets_replaced_before_the_upgrade_are_not_reported_as_expiring(backend: Backend) {
    use extapps_migrations::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let database = crate::support::harness::fresh_database(backend, &dir).await;
    let db = sea_orm::Database::connect(&database).await.unwrap();
    // The schema before secrets had descriptions, where an expiry meant a
    // replacement's grace period. (Constants only: no placeholders needed.)
    Migrator::up(&db, Some(8)).await.unwrap();
    let app = uuid::Uuid::new_v4();
    // Rows an hour old, one expiring a day later.
    let now = (extapps_server::domain::clock::SystemClock
        .now()
        .unix_timestamp()
        - 3600)
        * 1_000_000;
    let day = 86_400_000_000i64;
    db.execute_unprepared(&format!(
        "INSERT INTO applications (id, organization, display_name, display_name_key, \
         app_type, grants, redirect_urls, revision, tokens_not_before, create_time, \
         update_time) VALUES ('{app}', 'acme', 'Old', 'old', 'confidential', \
         '{{\"OR\":{{\"user_scopes\":[],\"application_scopes\":[\"OR.Jobs\"]}}}}', \
         '[]', 1, NULL, {now}, {now})"
    ))
    .await
    .unwrap();
    db.execute_unprepared(&format!(
        "INSERT INTO application_secrets (id, application_id, phc, create_time, expire_time) \
         VALUES ('{}', '{app}', 'x', {now}, {}), ('{}', '{app}', 'x', {now}, NULL)",
        uuid::Uuid::new_v4(),
        now + day,
        uuid::Uuid::new_v4(),
    ))
    .await
    .unwrap();

    // Today's schema, and a server on it.
    Migrator::up(&db, None).await.unwrap();
    let server = TestServer::start_on_database(backend, database).await;
    server.service.housekeeping().await;
    let text = metrics(&server.url).await;
    for within in ["7d", "30d"] {
        let line = format!("extapps_client_secrets_expiring{{within=\"{within}\"}} 0");
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    // Marked as replaced by the upgrade, not by anyone's hand.
    let marked = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM application_secrets WHERE replace_time IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(marked, 1, "only the secret with an expiry");
}

async fn revoking_every_token_reaches_secrets_deleted_or_expired_before(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let client = service_client(&server, "Everything").await;
    let first = client.app.secrets[0].clone();
    // One secret deleted without its tokens, one expired: their tokens
    // live on, issued before either went.
    let (deleted_secret, after) = add_secret(&mut admin, &client.app.name, "deleted", None).await;
    let deleted = newest(&after, &[&first]);
    let (expiring_secret, _) = add_secret(
        &mut admin,
        &client.app.name,
        "expiring",
        Some(Duration {
            seconds: 60,
            nanos: 0,
        }),
    )
    .await;
    let by_deleted = token(&server.url, &client, &deleted_secret, None)
        .await
        .unwrap();
    let by_expired = token(&server.url, &client, &expiring_secret, None)
        .await
        .unwrap();
    delete_secret(&mut admin, &deleted, false).await.unwrap();
    server.clock.advance(time::Duration::seconds(61));
    server.service.housekeeping().await;
    let listed = get(&mut admin, &client.app.name).await;
    assert_eq!(
        ids(&listed),
        [first.secret_id.as_str()],
        "only the first is listed"
    );
    let stored = crate::support::stored::stored_secret_hashes(&server, &client.app.client_id);
    assert_eq!(
        stored.await.len(),
        2,
        "the expired one is kept while its token lives"
    );
    // A replacement with a grace period leaves it kept too.
    rotate(&mut admin, &client.app.name, 3600, false).await;
    let stored = crate::support::stored::stored_secret_hashes(&server, &client.app.client_id);
    assert_eq!(stored.await.len(), 3);
    assert!(is_active(&server.url, &introspect, &by_deleted).await);
    assert!(is_active(&server.url, &introspect, &by_expired).await);

    // "Every token issued so far" ends them too.
    rotate(&mut admin, &client.app.name, 0, true).await;
    assert!(!is_active(&server.url, &introspect, &by_deleted).await);
    assert!(!is_active(&server.url, &introspect, &by_expired).await);
}
