//! A database written under the looser rules of earlier versions, served
//! by today's server process: redirect URLs that a URL parser would rewrite
//! stay readable, are reported at start-up and are never redirected to;
//! names that differ from others only by invisible characters take keys of
//! their own; used assertions kept from before stay until they expire.

use extapps_migrations::{Migrator, MigratorTrait};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};

use crate::support::fixtures::*;
use crate::support::harness::{Backend, error_of, fresh_database};
use crate::support::oauth_http::http;
use crate::support::processes::{Serving, create_key, key_file};

crate::on_both_backends!(
    rows_of_looser_rules_stay_readable_and_fail_nothing_silently,
    used_assertions_are_kept_through_the_upgrade_and_outlive_their_application,
    going_down_restores_the_used_assertions_table_as_it_was,
);

const SIGNIN: &str = "https://signin.example/";

async fn rows_of_looser_rules_stay_readable_and_fail_nothing_silently(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(backend, &dir).await;
    let db = sea_orm::Database::connect(&database).await.unwrap();
    // The schema before this version, holding what its rules let in: a
    // redirect URL with a raw line feed, and a name that differs from
    // another by a zero-width space (each with the key that version gave).
    Migrator::up(&db, Some(7)).await.unwrap();
    let (bent, invisible) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let rows = [
        (bent, "Pay", "pay", r#"["https://app.example.com/c\nb"]"#),
        (
            invisible,
            "Pay\u{200B}",
            "pay\u{200B}",
            r#"["https://other.example.com/cb"]"#,
        ),
    ];
    for (i, (id, name, key, urls)) in rows.into_iter().enumerate() {
        let sql = match backend {
            Backend::Sqlite => {
                "INSERT INTO applications (id, organization, display_name, display_name_key, \
                 app_type, grants, redirect_urls, revision, tokens_not_before, create_time, \
                 update_time) VALUES (?, 'acme', ?, ?, 'non_confidential', \
                 '{\"OR\":{\"user_scopes\":[\"OR.Jobs\"],\"application_scopes\":[]}}', ?, 1, NULL, ?, ?)"
            }
            Backend::Postgres => {
                "INSERT INTO applications (id, organization, display_name, display_name_key, \
                 app_type, grants, redirect_urls, revision, tokens_not_before, create_time, \
                 update_time) VALUES ($1, 'acme', $2, $3, 'non_confidential', \
                 '{\"OR\":{\"user_scopes\":[\"OR.Jobs\"],\"application_scopes\":[]}}', $4, 1, NULL, $5, $6)"
            }
        };
        let time = 1_700_000_000_000_000i64 + i as i64;
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [
                id.to_string().into(),
                name.into(),
                key.into(),
                urls.into(),
                time.into(),
                time.into(),
            ],
        ))
        .await
        .unwrap();
    }

    // Today's server process applies what is pending and starts.
    let key_file = key_file(dir.path());
    let env = [
        ("EXTAPPS_DATABASE_URL", database.as_str()),
        ("EXTAPPS_KEY_FILE", key_file.as_str()),
        ("EXTAPPS_SIGNIN_URL", SIGNIN),
    ];
    let admin_key = create_key(dir.path(), &env, "admin");
    let serving = Serving::start_with(dir.path(), &env);
    let url = serving.url();

    // Reported at start-up, by application, and only the one at fault.
    serving.wait_for_logs("never redirected to", 1);
    let reported: Vec<String> = serving
        .logs()
        .into_iter()
        .filter(|line| line.contains("never redirected to"))
        .collect();
    assert_eq!(reported.len(), 1, "{reported:#?}");
    assert!(reported[0].contains(&bent.to_string()) && reported[0].contains("WARN"));

    // Readable as stored.
    let mut admin = extapps_client::connect(&url, &admin_key)
        .await
        .unwrap()
        .generated();
    let name = format!("organizations/acme/applications/{bent}");
    let app = get(&mut admin, &name).await;
    assert_eq!(app.redirect_urls, ["https://app.example.com/c\nb"]);

    // Never redirected to: the page, named or not, never a 500.
    let authorize = |redirect_uri: Option<&'static str>| {
        let url = url.clone();
        async move {
            let mut query = vec![
                ("response_type", "code".to_owned()),
                ("client_id", bent.to_string()),
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                ),
                ("code_challenge_method", "S256".into()),
                ("state", "s".into()),
            ];
            if let Some(redirect_uri) = redirect_uri {
                query.push(("redirect_uri", redirect_uri.into()));
            }
            http()
                .get(format!("{url}/oauth2/authorize"))
                .query(&query)
                .send()
                .await
                .unwrap()
        }
    };
    for given in [None, Some("https://app.example.com/c\nb")] {
        let response = authorize(given).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{given:?}");
        assert!(response.headers().get("location").is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("registered again"), "{page}");
    }
    // The invisible character no longer makes a name another: the later
    // of the two keeps a key of its own, and no new name may take a form
    // of either.
    let key_of = |id: uuid::Uuid| {
        let db = &db;
        async move {
            let sql = match backend {
                Backend::Sqlite => "SELECT display_name_key FROM applications WHERE id = ?",
                Backend::Postgres => "SELECT display_name_key FROM applications WHERE id = $1",
            };
            db.query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                sql,
                [id.to_string().into()],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<String>(0)
            .unwrap()
        }
    };
    assert_eq!(key_of(invisible).await, format!("pay\u{1}{invisible}"));
    for taken in ["PAY", "pay\u{2060}", "Pay\u{200B}"] {
        let err = error_of(
            admin
                .register_application(register_request("acme", service_app(taken)))
                .await,
        );
        assert_eq!(
            err.reason.as_deref(),
            Some("DISPLAY_NAME_TAKEN"),
            "{taken:?}"
        );
    }
    // The one with a key of its own may not be renamed into a form of the
    // other either, though its own name's key is that plain key.
    let invisible_name = format!("organizations/acme/applications/{invisible}");
    for taken in ["PAY", "Pay"] {
        let err = error_of(
            admin
                .update_application(extapps_client::v1::UpdateApplicationRequest {
                    application: Some(extapps_client::v1::Application {
                        name: invisible_name.clone(),
                        display_name: taken.into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                })
                .await,
        );
        assert_eq!(err.reason.as_deref(), Some("DISPLAY_NAME_TAKEN"), "{taken}");
    }
    // Other edits keep it; replacing it makes the application usable.
    rename(&mut admin, &name, "Pay, renamed").await;
    assert_eq!(
        get(&mut admin, &name).await.redirect_urls,
        ["https://app.example.com/c\nb"]
    );
    admin
        .update_application(extapps_client::v1::UpdateApplicationRequest {
            application: Some(extapps_client::v1::Application {
                name: name.clone(),
                redirect_urls: vec!["https://app.example.com/cb".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["redirect_urls".into()],
            }),
        })
        .await
        .unwrap();
    let response = authorize(None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(SIGNIN)
    );
}

async fn used_assertions_are_kept_through_the_upgrade_and_outlive_their_application(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(backend, &dir).await;
    let db = sea_orm::Database::connect(&database).await.unwrap();
    let run = |sql: &'static str| {
        let db = &db;
        async move { db.execute_unprepared(sql).await.unwrap() }
    };
    let count = || {
        let db = &db;
        async move {
            db.query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) FROM used_assertions",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
        }
    };
    // Before this version, a used assertion went with its application.
    Migrator::up(&db, Some(13)).await.unwrap();
    run(
        "INSERT INTO applications (id, organization, display_name, display_name_key, \
         app_type, grants, redirect_urls, revision, tokens_not_before, create_time, update_time) \
         VALUES ('a', 'acme', 'Deploys', 'deploys', 'confidential', '{}', '[]', 1, NULL, 1, 1)",
    )
    .await;
    run(
        "INSERT INTO used_assertions (application_id, issuer, jti, expire_time) \
         VALUES ('a', 'https://ci.example', 'one', 5), ('a', 'https://ci.example', 'two', 6)",
    )
    .await;

    Migrator::up(&db, None).await.unwrap();
    assert_eq!(count().await, 2, "the rows are kept");
    run("DELETE FROM applications").await;
    assert_eq!(count().await, 2, "and outlive their application");
    // Still used once per issuer.
    let again = db
        .execute_unprepared(
            "INSERT INTO used_assertions (application_id, issuer, jti, expire_time) \
             VALUES ('b', 'https://ci.example', 'one', 5)",
        )
        .await;
    assert!(
        matches!(
            again.as_ref().map_err(|e| e.sql_err()),
            Err(Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
        ),
        "{again:?}"
    );
}

/// `used_assertions` as the database describes it: columns, keys, foreign
/// keys and indexes, whatever the text it was created with.
async fn used_assertions_schema(db: &sea_orm::DatabaseConnection, backend: Backend) -> Vec<String> {
    let queries: &[&str] = match backend {
        Backend::Sqlite => &[
            "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || pk FROM pragma_table_info('used_assertions')",
            "SELECT \"table\" || ' ' || \"from\" || ' ' || \"to\" || ' ' || on_delete FROM pragma_foreign_key_list('used_assertions')",
            "SELECT l.name || ' ' || l.\"unique\" || ' ' || l.origin || ' ' || \
             (SELECT group_concat(name, ',') FROM pragma_index_info(l.name)) \
             FROM pragma_index_list('used_assertions') l",
            "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = 'used_assertions'",
        ],
        Backend::Postgres => &[
            "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'used_assertions'",
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'used_assertions'::regclass",
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = 'used_assertions'",
        ],
    };
    let mut described = Vec::new();
    for sql in queries {
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), *sql))
            .await
            .unwrap();
        for row in rows {
            let value: Option<String> = row
                .try_get_by_index::<String>(0)
                .ok()
                .or_else(|| row.try_get_by_index::<i64>(0).ok().map(|n| n.to_string()))
                .or_else(|| row.try_get_by_index::<bool>(0).ok().map(|b| b.to_string()));
            described.push(value.unwrap());
        }
    }
    described.sort();
    described
}

async fn going_down_restores_the_used_assertions_table_as_it_was(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(backend, &dir).await;
    let db = sea_orm::Database::connect(&database).await.unwrap();
    Migrator::up(&db, Some(13)).await.unwrap();
    let before = used_assertions_schema(&db, backend).await;
    db.execute_unprepared(
        "INSERT INTO applications (id, organization, display_name, display_name_key, \
         app_type, grants, redirect_urls, revision, tokens_not_before, create_time, update_time) \
         VALUES ('a', 'acme', 'Deploys', 'deploys', 'confidential', '{}', '[]', 1, NULL, 1, 1)",
    )
    .await
    .unwrap();
    db.execute_unprepared(
        "INSERT INTO used_assertions (application_id, issuer, jti, expire_time) \
         VALUES ('a', 'https://ci.example', 'one', 5)",
    )
    .await
    .unwrap();

    Migrator::up(&db, None).await.unwrap();
    let after = used_assertions_schema(&db, backend).await;
    assert_ne!(after, before, "the upgrade changes the table");
    // Down to where it was: the table as it was, row kept.
    let since = Migrator::migrations().len() - 13;
    Migrator::down(&db, Some(since as u32)).await.unwrap();
    assert_eq!(used_assertions_schema(&db, backend).await, before);
    let kept = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT jti FROM used_assertions",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap();
    assert_eq!(kept, "one");
    // And up again.
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(used_assertions_schema(&db, backend).await, after);
}
