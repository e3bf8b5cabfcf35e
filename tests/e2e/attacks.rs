//! Strangers against the token endpoint: guessing secrets, trying to lock a
//! client out, flooding with unknown clients, and a verifier pool that
//! refuses instead of queueing without bound.

use std::num::NonZeroU32;

use extapps_server::service::{BudgetSettings, ClientAuthSettings, PoolSettings};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Backend, TestServer};
use crate::tokens::{App, http, metrics, service_client, token};

crate::on_both_backends!(
    strangers_cannot_lock_a_client_out,
    unknown_and_malformed_clients_cost_no_verification,
    the_source_budget_covers_every_client_from_that_source,
    a_burst_of_first_requests_costs_one_verification,
    a_failing_source_is_refused_before_any_database_read,
    a_legitimate_client_is_served_through_a_flood,
);

/// A well-formed secret (prefix and checksum right) that is nobody's.
pub fn forged_secret() -> String {
    let body = "A".repeat(43);
    let signed = format!("extapps_cs_{body}");
    format!("{signed}{:08x}", crc32fast::hash(signed.as_bytes()))
}

/// A token request with `secret` from `forwarded_for` (if set): status,
/// `Retry-After` and body.
async fn attempt(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    forwarded_for: Option<&str>,
) -> (StatusCode, Option<u64>, Value) {
    let mut request = http()
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

pub fn budget(per_client: u32, per_source: u32, trusted_proxies: usize) -> ClientAuthSettings {
    ClientAuthSettings {
        pool: PoolSettings::default(),
        budget: BudgetSettings {
            per_client: NonZeroU32::new(per_client).unwrap(),
            per_source: NonZeroU32::new(per_source).unwrap(),
            failures_per_source: NonZeroU32::new(1000).unwrap(),
        },
        trusted_proxies,
    }
}

async fn strangers_cannot_lock_a_client_out(backend: Backend) {
    // Per source high: the attacker here is many addresses (one proxy hop).
    let server = TestServer::start_with(backend, budget(10, 1000, 1)).await;
    let victim = service_client(&server, "Victim").await;
    let id = victim.app.client_id.clone();
    // The owner's secret is verified once, from its own address.
    token(&server.url, &victim, &victim.secret, None)
        .await
        .unwrap();

    // Strangers spend the client's budget with wrong secrets, then are told
    // to wait.
    let wrong = forged_secret();
    let mut refused = None;
    for i in 0..11 {
        let address = format!("198.51.100.{i}");
        let (status, retry_after, body) = attempt(&server, &id, &wrong, Some(&address)).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, retry_after, body));
            break;
        }
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client"))
        );
    }
    let (after, retry_after, body) = refused.expect("the client's budget runs out");
    assert_eq!(after, 9, "the owner's verification and 9 guesses spent 10");
    assert_eq!(retry_after, Some(6), "one verification every 6 s");
    assert_eq!(body["error"], "temporarily_unavailable");

    // The owner, from the attackers' addresses or its own, still gets
    // tokens: its secret was verified before, so no budget is consulted.
    for address in [Some("198.51.100.1"), Some("203.0.113.7"), None] {
        let (status, _, body) = attempt(&server, &id, &victim.secret, address).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Another client is not affected.
    let bystander = service_client(&server, "Bystander").await;
    token(&server.url, &bystander, &bystander.secret, None)
        .await
        .unwrap();

    // The budget refills with the server's clock, not the wall clock.
    server.clock.advance(time::Duration::seconds(6));
    let (status, _, _) = attempt(&server, &id, &wrong, Some("198.51.100.1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "one guess more after 6 s");
    let (status, _, _) = attempt(&server, &id, &wrong, Some("198.51.100.1")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

async fn unknown_and_malformed_clients_cost_no_verification(backend: Backend) {
    let server = TestServer::start_with(backend, budget(10, 5, 0)).await;
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

async fn the_source_budget_covers_every_client_from_that_source(backend: Backend) {
    let server = TestServer::start_with(backend, budget(10, 3, 0)).await;
    let mut clients: Vec<App> = Vec::new();
    for name in ["One", "Two", "Three", "Four"] {
        clients.push(service_client(&server, name).await);
    }
    let forged = forged_secret();
    for client in &clients[..3] {
        let (status, _, _) = attempt(&server, &client.app.client_id, &forged, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A fourth client from the same address: the address's budget is spent,
    // even for a correct secret not verified before.
    let (status, retry_after, body) =
        attempt(&server, &clients[3].app.client_id, &clients[3].secret, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(retry_after, Some(20));
    // X-Forwarded-For is not trusted by default: another "address" in the
    // header changes nothing.
    let (status, _, _) = attempt(
        &server,
        &clients[3].app.client_id,
        &clients[3].secret,
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    server.clock.advance(time::Duration::seconds(20));
    token(&server.url, &clients[3], &clients[3].secret, None)
        .await
        .unwrap();
}

async fn a_burst_of_first_requests_costs_one_verification(backend: Backend) {
    // A budget of 2: a client opening with 32 parallel requests would spend
    // it 16 times over if each verified on its own.
    let server = TestServer::start_with(backend, budget(2, 2, 0)).await;
    let client = service_client(&server, "Eager").await;
    let burst: Vec<_> = (0..32)
        .map(|_| {
            let (url, id, secret) = (
                server.url.clone(),
                client.app.client_id.clone(),
                client.secret.clone(),
            );
            tokio::spawn(async move {
                http()
                    .post(format!("{url}/oauth2/token"))
                    .basic_auth(id, Some(secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
}

async fn a_failing_source_is_refused_before_any_database_read(backend: Backend) {
    let mut settings = budget(10, 30, 1);
    settings.budget.failures_per_source = NonZeroU32::new(5).unwrap();
    let server = TestServer::start_with(backend, settings).await;
    let owner = service_client(&server, "Neighbour").await;
    let shared = Some("192.0.2.10");
    // The owner's secret is verified once, from the address it shares.
    let (status, _, _) = attempt(&server, &owner.app.client_id, &owner.secret, shared).await;
    assert_eq!(status, StatusCode::OK);
    // A stranger behind the same address fails 5 times, then is refused
    // outright, whatever it sends.
    for _ in 0..5 {
        let (status, _, _) = stranger(&server, shared).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = stranger(&server, shared).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the 6th failure spends the budget"
    );
    // Unknown clients answered 429, not 401: the refusal came before the
    // client was even looked up.
    for _ in 0..20 {
        let (status, retry_after, body) = stranger(&server, shared).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(retry_after, Some(12));
    }
    // The owner's verified secret still works from that address; another
    // address is not affected.
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
    // per-source budget shields the server: only the cheap refusals, the
    // per-client budget and the bounded pool do.
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
