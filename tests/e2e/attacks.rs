//! Strangers against the token endpoint: guessing secrets, trying to lock a
//! client out, flooding with unknown clients, and the bounded pool where
//! password-grade hashes of earlier versions are verified until their
//! next use replaces them.

use std::num::NonZeroU32;

use extapps_server::service::ClientAuthSettings;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;

use crate::support::client_auth::budget;
use crate::support::harness::{Backend, TestServer};
use crate::support::oauth_http::{App, http, metrics, service_client, token};

crate::on_both_backends!(
    a_stranger_cannot_lock_a_client_out,
    unknown_and_malformed_clients_cost_no_verification,
    password_grade_hashes_are_replaced_on_their_next_use,
    slow_verifications_are_budgeted_per_source,
    a_failing_source_is_refused_before_any_database_read,
    a_legitimate_client_is_served_through_a_flood,
    a_secret_this_replica_has_not_seen_is_read_again_at_a_bounded_pace,
);

/// A well-formed secret (prefix and checksum right) that is nobody's.
fn forged_secret() -> String {
    let body = "A".repeat(43);
    let signed = format!("extapps_cs_{body}");
    format!("{signed}{:08x}", crc32fast::hash(signed.as_bytes()))
}

/// An HTTP client whose connections come from `address` (any address of
/// 127.0.0.0/8 is this host's loopback): a second source on one machine.
fn http_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .local_address(address.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A token request with `secret` from `forwarded_for` (if set): status,
/// `Retry-After` and body.
async fn attempt(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<u64>, Value) {
    attempt_with(&http(), server, client_id, secret, forwarded_for).await
}

/// [`attempt`] through `http`.
async fn attempt_with(
    http: &reqwest::Client,
    server: &TestServer,
    client_id: &str,
    secret: &str,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<u64>, Value) {
    let mut request = http
        .post(format!("{}/oauth2/token", server.url))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().await.unwrap())
}

/// A token request from nobody: a random client ID and a forged secret.
async fn stranger(
    server: &TestServer,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<u64>, Value) {
    attempt(
        server,
        &uuid::Uuid::new_v4().to_string(),
        &forged_secret(),
        forwarded_for,
    )
    .await
}

async fn a_stranger_cannot_lock_a_client_out(backend: Backend) {
    let server = TestServer::start_with(backend, budget(5, 0)).await;
    let victim = service_client(&server, "Victim").await;
    let id = victim.app.client_id.clone();
    let (owner, attacker) = (http_from("127.0.0.1"), http_from("127.0.0.2"));
    let (status, _, _) = attempt_with(&owner, &server, &id, &victim.secret, None).await;
    assert_eq!(status, StatusCode::OK);
    // A rename empties what this replica remembers of the application and
    // of its verified secret; so do two idle hours.
    let mut admin = server.admin("acme").await;
    crate::support::fixtures::rename(&mut admin, &victim.app.name, "Victim, renamed").await;
    server.clock.advance(time::Duration::hours(2));

    // Well-formed wrong secrets for the victim's ID, from another address,
    // interleaved with the owner's requests: the stranger's address is
    // refused after its 5th failure; the owner never is.
    let wrong = forged_secret();
    for i in 0..20 {
        let (status, retry_after, body) = attempt_with(&attacker, &server, &id, &wrong, None).await;
        if i < 5 {
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("invalid_client")),
                "guess {i}"
            );
        } else {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "guess {i}: {body}");
            assert_eq!(retry_after, Some(12));
        }
        let (status, _, body) = attempt_with(&owner, &server, &id, &victim.secret, None).await;
        assert_eq!(status, StatusCode::OK, "the owner, after guess {i}: {body}");
    }
    // A second replica, whose caches never saw the application: the same.
    let replica = server.beside(server.ring.clone()).await;
    for _ in 0..3 {
        let (status, _, _) = attempt_with(&attacker, &replica, &id, &wrong, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, body) = attempt_with(&owner, &replica, &id, &victim.secret, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // No client's budget was spent: nothing refuses a right secret from a
    // fresh address either.
    let (status, _, _) =
        attempt_with(&http_from("127.0.0.3"), &server, &id, &victim.secret, None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn unknown_and_malformed_clients_cost_no_verification(backend: Backend) {
    let server = TestServer::start_with(backend, budget(1000, 0)).await;
    let known = service_client(&server, "Known").await;
    let forged = forged_secret();
    // Far more requests than the source's budget of 5 verifications: none
    // of them verifies anything, so none is refused for the budget.
    for i in 0..40 {
        let client_id = match i % 4 {
            0 => uuid::Uuid::new_v4().to_string(),
            1 => format!("not-a-uuid-{i}"),
            2 => uuid::Uuid::new_v4().to_string().to_uppercase(),
            _ => known.app.client_id.clone(),
        };
        // A mistyped secret of a known client fails its checksum first.
        let secret = if i % 4 == 3 {
            format!("{forged}x")
        } else {
            forged.clone()
        };
        let (status, retry_after, body) = attempt(&server, &client_id, &secret, None).await;
        assert_eq!(
            (status, retry_after, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, None, Some("invalid_client")),
            "request {i}"
        );
    }
    let metrics = metrics(&server.url).await;
    assert!(
        !metrics.contains("verified_secret_cache_lookups_total{outcome=\"miss\"}"),
        "no secret was looked up, let alone verified:\n{metrics}"
    );
    // The source's whole budget is still there for the real client.
    token(&server.url, &known, &known.secret, None)
        .await
        .unwrap();
}

/// Gives a client's stored secret the password-grade hash (argon2id, 19
/// MiB, 2 passes) that earlier versions stored, as an upgraded database
/// holds it.
async fn store_password_grade_hash(server: &TestServer, client: &App) {
    use argon2::PasswordHasher;
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap();
    let phc = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(client.secret.as_bytes())
        .unwrap()
        .to_string();
    let db = server.store().connection();
    let sql = match server.backend {
        Backend::Sqlite => "UPDATE application_secrets SET phc = ? WHERE application_id = ?",
        Backend::Postgres => "UPDATE application_secrets SET phc = $1 WHERE application_id = $2",
    };
    let updated = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [phc.into(), client.app.client_id.clone().into()],
        ))
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1);
}

/// The stored hash of a client's only secret.
async fn stored_hash(server: &TestServer, client: &App) -> String {
    let db = server.store().connection();
    let sql = match server.backend {
        Backend::Sqlite => "SELECT phc FROM application_secrets WHERE application_id = ?",
        Backend::Postgres => "SELECT phc FROM application_secrets WHERE application_id = $1",
    };
    db.query_one_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [client.app.client_id.clone().into()],
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get_by_index(0)
    .unwrap()
}

async fn password_grade_hashes_are_replaced_on_their_next_use(backend: Backend) {
    let server = TestServer::start(backend).await;
    let new = service_client(&server, "Registered today").await;
    assert!(
        stored_hash(&server, &new)
            .await
            .starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
        "new secrets are hashed for generated secrets"
    );
    let old = service_client(&server, "Registered long ago").await;
    store_password_grade_hash(&server, &old).await;
    // A wrong secret changes nothing.
    let (status, _, _) = attempt(&server, &old.app.client_id, &forged_secret(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        stored_hash(&server, &old)
            .await
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    // The right one works, and its hash is replaced.
    token(&server.url, &old, &old.secret, None).await.unwrap();
    let upgraded = stored_hash(&server, &old).await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
        "{upgraded}"
    );
    assert!(
        metrics(&server.url)
            .await
            .contains("extapps_secret_hash_upgrades_total 1")
    );
    // It keeps working, here and on a replica that reads the new hash.
    token(&server.url, &old, &old.secret, None).await.unwrap();
    let replica = server.beside(server.ring.clone()).await;
    token(&replica.url, &old, &old.secret, None).await.unwrap();
    let (status, _, _) = attempt(&replica, &old.app.client_id, &forged_secret(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        metrics(&replica.url)
            .await
            .contains("extapps_secret_hash_upgrades_total 0")
    );
}

async fn slow_verifications_are_budgeted_per_source(backend: Backend) {
    let mut settings = budget(1000, 0);
    settings.budget.slow_verifications_per_source = NonZeroU32::new(2).unwrap();
    let server = TestServer::start_with(backend, settings).await;
    let mut clients: Vec<App> = Vec::new();
    for name in ["One", "Two", "Three", "Four"] {
        let client = service_client(&server, name).await;
        store_password_grade_hash(&server, &client).await;
        clients.push(client);
    }
    let (near, far) = (http_from("127.0.0.1"), http_from("127.0.0.2"));
    for client in &clients[..2] {
        let (status, _, _) = attempt_with(
            &near,
            &server,
            &client.app.client_id,
            &forged_secret(),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The address has spent its slow verifications, even for a right
    // secret; another address has not.
    let (status, retry_after, body) = attempt_with(
        &near,
        &server,
        &clients[2].app.client_id,
        &clients[2].secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(retry_after, Some(30));
    let (status, _, _) = attempt_with(
        &far,
        &server,
        &clients[3].app.client_id,
        &clients[3].secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Upgraded, the fourth client's secret costs no slow verification: the
    // spent address is no obstacle to it.
    let (status, _, _) = attempt_with(
        &near,
        &server,
        &clients[3].app.client_id,
        &clients[3].secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.clock.advance(time::Duration::seconds(30));
    let (status, _, _) = attempt_with(
        &near,
        &server,
        &clients[2].app.client_id,
        &clients[2].secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_failing_source_is_refused_before_any_database_read(backend: Backend) {
    let server = TestServer::start_with(backend, budget(5, 1)).await;
    let owner = service_client(&server, "Neighbour").await;
    let shared = Some("192.0.2.10");
    // The owner's secret is verified once, from the address it shares.
    let (status, _, _) = attempt(&server, &owner.app.client_id, &owner.secret, shared).await;
    assert_eq!(status, StatusCode::OK);
    // A stranger behind the same address fails 5 times (its budget),
    // then is refused outright, whatever it sends.
    for _ in 0..5 {
        let (status, _, _) = stranger(&server, shared).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Unknown clients answered 429, not 401: the refusal came before the
    // client was even looked up.
    for _ in 0..20 {
        let (status, retry_after, body) = stranger(&server, shared).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(retry_after, Some(12));
    }
    // The owner's secret still works from that address (its application is
    // in this replica's memory, or its secret was verified here before);
    // another address is not affected.
    let (status, _, _) = attempt(&server, &owner.app.client_id, &owner.secret, shared).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = stranger(&server, Some("192.0.2.11")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.clock.advance(time::Duration::seconds(12));
    let (status, _, _) = stranger(&server, shared).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "allowed again after the wait"
    );
}

async fn a_legitimate_client_is_served_through_a_flood(backend: Backend) {
    // The flood comes from many addresses (one trusted proxy hop), so no
    // per-source budget shields the server: only cheap refusals and cheap
    // verifications do.
    let server = TestServer::start_with(
        backend,
        ClientAuthSettings {
            trusted_proxies: 1,
            ..Default::default()
        },
    )
    .await;
    let owner = service_client(&server, "Under siege").await;
    token(&server.url, &owner, &owner.secret, None)
        .await
        .unwrap();
    let strangers: Vec<_> = (0..64)
        .map(|worker| {
            let (url, id) = (server.url.clone(), owner.app.client_id.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..12 {
                    let client = if i % 3 == 0 {
                        id.clone()
                    } else {
                        uuid::Uuid::new_v4().to_string()
                    };
                    let response = http()
                        .post(format!("{url}/oauth2/token"))
                        .header("x-forwarded-for", format!("10.{worker}.{i}.1"))
                        .basic_auth(client, Some(forged_secret()))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .expect("every request is answered");
                    answers.push(response.status());
                }
                answers
            })
        })
        .collect();
    let owner_requests: Vec<_> = (0..8)
        .map(|_| {
            let (url, id, secret) = (
                server.url.clone(),
                owner.app.client_id.clone(),
                owner.secret.clone(),
            );
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..12 {
                    let response = http()
                        .post(format!("{url}/oauth2/token"))
                        .basic_auth(&id, Some(&secret))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap();
                    statuses.push(response.status());
                }
                statuses
            })
        })
        .collect();
    let mut refused = 0;
    for stranger in strangers {
        for status in stranger.await.unwrap() {
            assert!(
                [
                    StatusCode::UNAUTHORIZED,
                    StatusCode::TOO_MANY_REQUESTS,
                    StatusCode::SERVICE_UNAVAILABLE
                ]
                .contains(&status),
                "{status}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 64 * 12);
    for owner_request in owner_requests {
        for status in owner_request.await.unwrap() {
            assert_eq!(status, StatusCode::OK, "the owner is served throughout");
        }
    }
    // And the server is still itself afterwards.
    let bystander = service_client(&server, "After the storm").await;
    token(&server.url, &bystander, &bystander.secret, None)
        .await
        .unwrap();
}

/// A secret the replica's remembered application does not know (as when it
/// was generated through another replica a moment ago, its change still on
/// the way) gets the application read again before it is refused; wrong
/// secrets can make that happen once per client in 200 ms, not once each.
async fn a_secret_this_replica_has_not_seen_is_read_again_at_a_bounded_pace(backend: Backend) {
    use extapps_server::domain::credential::{self, CredentialKind};
    use secrecy::ExposeSecret;

    let server = TestServer::start(backend).await;
    let client = service_client(&server, "Rotated elsewhere").await;
    token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    // A wrong secret: the remembered copy is read again (nothing new).
    let (status, _, _) = attempt(&server, &client.app.client_id, &forged_secret(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A second secret, written behind this replica's back: no change
    // announced, as if its notification had not arrived yet.
    let added = credential::generate(CredentialKind::ClientSecret).unwrap();
    let phc = credential::hash_secret(&added).unwrap();
    let db = server.store().connection();
    let sql = match backend {
        Backend::Sqlite => {
            "INSERT INTO application_secrets (id, application_id, phc, create_time) \
             VALUES (?, ?, ?, 0)"
        }
        Backend::Postgres => {
            "INSERT INTO application_secrets (id, application_id, phc, create_time) \
             VALUES ($1, $2, $3, 0)"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [
            uuid::Uuid::new_v4().to_string().into(),
            client.app.client_id.clone().into(),
            phc.into(),
        ],
    ))
    .await
    .unwrap();
    let added = added.expose_secret().to_owned();
    if crate::support::harness::caches_on() {
        // Within 200 ms (on the server's clock) of the last read: refused.
        let (status, _, _) = attempt(&server, &client.app.client_id, &added, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        server.clock.advance(time::Duration::milliseconds(200));
    }
    // Read again: accepted, and remembered from then on.
    for _ in 0..2 {
        let (status, _, body) = attempt(&server, &client.app.client_id, &added, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
}
