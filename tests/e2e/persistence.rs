//! What reaches the database and the logs, and the migrations.

use extapps_client::v1 as pb;
use extapps_migrations::{Migrator, MigratorTrait};
use extapps_server::{domain::caller::Role, store::Store};
use sea_orm::{ConnectionTrait, Statement};

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, captured_logs, error_of, fresh_database};

crate::on_both_backends!(
    secrets_and_keys_never_reach_the_database_or_the_logs,
    migrations_apply_from_empty_and_match_the_entities,
    the_upgrade_takes_the_keys_out_of_the_database,
    the_upgrade_makes_display_names_unique_without_regard_to_case,
);

/// Every value of every table, as text (blobs decoded lossily).
async fn everything_stored(server: &TestServer) -> String {
    let tables: [(&str, &[&str]); 5] = [
        (
            "applications",
            &[
                "id",
                "organization",
                "display_name",
                "app_type",
                "grants",
                "redirect_urls",
            ],
        ),
        ("application_secrets", &["id", "application_id", "phc"]),
        (
            "caller_keys",
            &["id", "organization", "role", "resources", "digest"],
        ),
        (
            "audit_events",
            &[
                "organization",
                "application_id",
                "actor",
                "action",
                "before",
                "after",
                "details",
            ],
        ),
        ("idempotency_records", &["lookup", "request_digest"]),
    ];
    let blobs = [("idempotency_records", "response")];
    let db = server.store().connection();
    let mut all = String::new();
    for (table, columns) in tables {
        let sql = format!("SELECT {} FROM {table}", columns.join(", "));
        for row in db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
        {
            for i in 0..columns.len() {
                all.push_str(
                    &row.try_get_by_index::<Option<String>>(i)
                        .unwrap()
                        .unwrap_or_default(),
                );
                all.push('\n');
            }
        }
    }
    for (table, column) in blobs {
        let sql = format!("SELECT {column} FROM {table}");
        for row in db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
        {
            all.push_str(&String::from_utf8_lossy(
                &row.try_get_by_index::<Vec<u8>>(0).unwrap(),
            ));
            all.push('\n');
        }
    }
    all
}

/// The random part of a credential: what must never appear anywhere.
fn body(credential: &str) -> &str {
    let start = credential.find('_').unwrap();
    let after_prefix = credential[start + 1..].find('_').unwrap() + start + 2;
    &credential[after_prefix..after_prefix + 32]
}

async fn secrets_and_keys_never_reach_the_database_or_the_logs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    let introspect_key = server.key(Some("acme"), Role::Introspect, &["OR"]).await;
    let mut admin = server.client(&admin_key);
    let mut request = register_request("acme", service_app("Secretive"));
    request.request_id = uuid::Uuid::new_v4().to_string();
    let registered = admin
        .register_application(request)
        .await
        .unwrap()
        .into_inner();
    let app = registered.application.unwrap();
    let rotated = admin
        .generate_application_secret(pb::GenerateApplicationSecretRequest {
            name: app.name.clone(),
            grace_period: Some(prost_types::Duration {
                seconds: 60,
                nanos: 0,
            }),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let client = crate::support::oauth_http::App {
        app: rotated.application.clone().unwrap(),
        secret: rotated.client_secret.clone(),
    };
    let access_token =
        crate::support::oauth_http::token(&server.url, &client, &rotated.client_secret, None)
            .await
            .unwrap();
    assert!(
        crate::support::oauth_http::is_active(&server.url, &introspect_key, &access_token).await
    );
    // A failed call with a key must not log it either.
    let _ = server
        .client(&format!("{admin_key}x"))
        .get_application(pb::GetApplicationRequest {
            name: app.name.clone(),
        })
        .await;

    let stored = everything_stored(&server).await;
    assert!(stored.contains("$argon2id$"), "the hashes are there");
    let credentials = [
        registered.client_secret.as_str(),
        rotated.client_secret.as_str(),
        admin_key.as_str(),
        introspect_key.as_str(),
        access_token.as_str(),
    ];
    let logs = captured_logs();
    assert!(!logs.is_empty(), "logs are captured");
    for credential in credentials {
        assert!(
            !stored.contains(body(credential)),
            "a credential is stored in clear"
        );
        assert!(!logs.contains(body(credential)), "a credential was logged");
    }
    if backend == Backend::Sqlite {
        // The raw file too, WAL included.
        let path = server.database_url.trim_start_matches("sqlite://");
        let path = path.split('?').next().unwrap();
        for file in [path.to_owned(), format!("{path}-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            for credential in credentials {
                let needle = body(credential).as_bytes();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{file} holds a credential"
                );
            }
        }
    }
}

async fn migrations_apply_from_empty_and_match_the_entities(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, &dir).await;
    let store = Store::connect(&url).await.unwrap();
    assert!(
        store.check_schema().await.is_err(),
        "an empty database is not up to date"
    );
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();
    // Down to empty and up again: every migration is reversible.
    Migrator::reset(store.connection()).await.unwrap();
    assert!(store.check_schema().await.is_err());
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();
    store.migrate().await.unwrap();
    assert!(
        Migrator::get_pending_migrations(store.connection())
            .await
            .unwrap()
            .is_empty(),
        "migrating twice is a no-op"
    );

    // A schema that drifted from the entities is refused, and the
    // difference named: a missing unique index, a column the server does
    // not know, a column gone (renamed), a type and a nullability that
    // differ (PostgreSQL only: SQLite cannot change a column's type).
    let db = store.connection();
    let mut drift = vec![
        "DROP INDEX applications_organization_display_name_key",
        "ALTER TABLE revoked_tokens ADD COLUMN stray TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE answered_authorization_requests RENAME COLUMN expire_time TO expires",
    ];
    let mut expected = vec![
        "table `applications` lacks a unique index on (organization, display_name_key)",
        "column `revoked_tokens.stray` is not one the server knows",
        "column `answered_authorization_requests.expire_time` is missing",
    ];
    if backend == Backend::Postgres {
        drift.push("ALTER TABLE user_grants ALTER COLUMN rotate_time TYPE text");
        drift.push("ALTER TABLE user_grants ALTER COLUMN subject DROP NOT NULL");
        expected.push("column `user_grants.rotate_time` holds Text, the server expects Integer");
        expected.push("column `user_grants.subject` is nullable, the server expects it NOT NULL");
    }
    for sql in drift {
        db.execute_unprepared(sql).await.unwrap();
    }
    let refused = store.check_schema().await.unwrap_err().to_string();
    for named in expected {
        assert!(refused.contains(named), "`{named}` in: {refused}");
    }
}

async fn the_upgrade_takes_the_keys_out_of_the_database(backend: Backend) {
    use extapps_migrations::{Migrator, MigratorTrait};
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, &dir).await;
    let db = sea_orm::Database::connect(&url).await.unwrap();
    // The schema as the previous version left it, with a key and a saved
    // response in it.
    Migrator::up(&db, Some(2)).await.unwrap();
    let backend_kind = db.get_database_backend();
    for sql in [
        "INSERT INTO server_keys (name, material) VALUES ('access_token', X'0102')",
        "INSERT INTO idempotency_records (lookup, request_digest, response, create_time) \
         VALUES ('l', 'd', X'0102', 1)",
    ] {
        let sql = match backend {
            Backend::Sqlite => sql.to_owned(),
            Backend::Postgres => sql.replace("X'0102'", "'\\x0102'::bytea"),
        };
        db.execute_raw(Statement::from_string(backend_kind, sql))
            .await
            .unwrap();
    }
    Migrator::up(&db, None).await.unwrap();
    assert!(
        db.execute_unprepared("SELECT * FROM server_keys")
            .await
            .is_err(),
        "the keys are gone with their table"
    );
    let row = db
        .query_one_raw(Statement::from_string(
            backend_kind,
            "SELECT response FROM idempotency_records WHERE lookup = 'l'",
        ))
        .await
        .unwrap()
        .expect("the record stays, so a retry is still recognized");
    assert!(
        row.try_get_by_index::<Vec<u8>>(0).unwrap().is_empty(),
        "its old sealing is gone"
    );
}

async fn the_upgrade_makes_display_names_unique_without_regard_to_case(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(backend, &dir).await;
    let db = sea_orm::Database::connect(&url).await.unwrap();
    // The previous schema, holding names that differ only in case, and one
    // stored decomposed.
    Migrator::up(&db, Some(4)).await.unwrap();
    let kind = db.get_database_backend();
    let ids = [
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    ];
    for (i, (id, name)) in ids.iter().zip(["Sync", "SYNC", "Cafe\u{301}"]).enumerate() {
        db.execute_raw(Statement::from_sql_and_values(
            kind,
            match backend {
                Backend::Sqlite => {
                    "INSERT INTO applications (id, organization, display_name, app_type, grants, \
                     redirect_urls, revision, tokens_not_before, create_time, update_time) \
                     VALUES (?, 'acme', ?, 'confidential', '{\"OR\":{\"user_scopes\":[],\"application_scopes\":[\"OR.Jobs\"]}}', '[]', 1, NULL, ?, ?)"
                }
                Backend::Postgres => {
                    "INSERT INTO applications (id, organization, display_name, app_type, grants, \
                     redirect_urls, revision, tokens_not_before, create_time, update_time) \
                     VALUES ($1, 'acme', $2, 'confidential', '{\"OR\":{\"user_scopes\":[],\"application_scopes\":[\"OR.Jobs\"]}}', '[]', 1, NULL, $3, $4)"
                }
            },
            [
                id.to_string().into(),
                name.into(),
                (1_700_000_000_000_000i64 + i as i64).into(),
                (1_700_000_000_000_000i64 + i as i64).into(),
            ],
        ))
        .await
        .unwrap();
    }
    drop(db);
    let server = TestServer::start_on_database(backend, url).await;
    let mut admin = server.admin("acme").await;
    // Nothing was lost or renamed; the decomposed name is now composed.
    let names: Vec<String> = list_all(&mut admin, "acme")
        .await
        .into_iter()
        .map(|a| a.display_name)
        .collect();
    assert_eq!(names, ["Caf\u{e9}", "SYNC", "Sync"]);
    // The names kept with a key of their own still take every change.
    for app in list_all(&mut admin, "acme").await {
        admin
            .update_application_scopes(pb::UpdateApplicationScopesRequest {
                name: app.name.clone(),
                grants: vec![grant("OR", &[], &["OR.Queues"])],
                etag: String::new(),
            })
            .await
            .unwrap();
    }
    // And no new name may take any of theirs in another case.
    for taken in ["sync", "CAFÉ"] {
        let err = error_of(
            admin
                .register_application(register_request("acme", service_app(taken)))
                .await,
        );
        assert_eq!(err.reason.as_deref(), Some("DISPLAY_NAME_TAKEN"), "{taken}");
    }
}
