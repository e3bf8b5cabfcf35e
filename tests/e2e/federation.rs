//! Federated credentials (SPEC section 4): an application trusts an outside
//! provider's tokens for an exact issuer, subject and audience, and a
//! workload (a CI job, here) gets access tokens with such a token alone. The
//! provider is a real one on loopback; extapps reads its keys only when it
//! is allowed, within bounds, and never for a token that matches nothing.

use extapps_client::{GeneratedClient as Client, v1 as pb};
use extapps_server::domain::{caller::Role, clock::Clock, federation::AllowedIssuers};
use extapps_server::issuers::FederationSettings;
use extapps_server::service::ClientAuthSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::issuer::Issuer;
use crate::support::oauth_http::{App, is_active, metrics, post_form, service_client};
use crate::support::signing::{Alg, JWT_BEARER, SigningKey, refused, token_by_assertion};

crate::on_both_backends!(
    a_ci_job_gets_tokens_with_its_providers_token_and_no_secret,
    rfc_8414_issuers_work_and_a_token_serves_once_even_after_deletion,
    tokens_that_match_no_credential_are_refused_without_a_network_call,
    issuers_that_misbehave_cost_bounded_time_and_nothing_else,
    federated_credentials_are_validated_and_capped,
);

const SUBJECT: &str = "repo:acme/billing:ref:refs/heads/main";
const AUDIENCE: &str = "extapps-billing";

/// A server that allows the provider's issuers, with fetches bounded at
/// one second.
async fn server_allowing(backend: Backend, issuer: &Issuer) -> TestServer {
    TestServer::start_with(
        backend,
        ClientAuthSettings {
            federation: FederationSettings {
                allowed: AllowedIssuers::parse(&[issuer.base().to_owned()]).unwrap(),
                timeout: std::time::Duration::from_secs(1),
                ..FederationSettings::default()
            },
            ..ClientAuthSettings::default()
        },
    )
    .await
}

fn now(server: &TestServer) -> i64 {
    server.clock.now().unix_timestamp()
}

async fn add_federated(
    admin: &mut Client,
    name: &str,
    issuer: &str,
    subject: &str,
    audience: &str,
) -> Result<pb::AddFederatedCredentialResponse, tonic::Status> {
    admin
        .add_federated_credential(pb::AddFederatedCredentialRequest {
            name: name.into(),
            issuer: issuer.into(),
            subject: subject.into(),
            audience: audience.into(),
            description: "CI deploys".into(),
            etag: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}
/// A provider token naming the registered subject and audience, from
/// the issuer's `mode` endpoint.
fn ci_token(issuer: &Issuer, server: &TestServer, mode: &str) -> String {
    issuer.token(mode, now(server), json!({"sub": SUBJECT, "aud": AUDIENCE}))
}

/// A client-credentials request with the provider's token and the
/// application's ID.
async fn token_with(server: &TestServer, client: &App, token: &str) -> (StatusCode, Value) {
    token_by_assertion(server, token, &[("client_id", &client.app.client_id)]).await
}

fn unavailable((status, body): (StatusCode, Value)) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

async fn a_ci_job_gets_tokens_with_its_providers_token_and_no_secret(backend: Backend) {
    let issuer = Issuer::start().await;
    let server = server_allowing(backend, &issuer).await;
    let mut admin = server.admin("acme").await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let client = service_client(&server, "Billing deploys").await;
    let added = add_federated(
        &mut admin,
        &client.app.name,
        &issuer.url("good"),
        SUBJECT,
        AUDIENCE,
    )
    .await
    .unwrap();
    let credential = added.federated_credential.unwrap();
    assert_eq!(
        credential.name,
        format!(
            "{}/federatedCredentials/{}",
            client.app.name, credential.credential_id
        )
    );
    assert_eq!(
        added.application.unwrap().federated_credentials,
        vec![credential.clone()]
    );
    let event = audit(&mut admin, "acme").await.into_iter().next().unwrap();
    assert_eq!(event.action(), pb::AuditAction::FederatedCredentialAdded);
    assert_eq!(event.details["subject"], SUBJECT);
    delete_secret(&mut admin, &client.app.secrets[0], false)
        .await
        .unwrap();

    // The CI job's token, ten minutes long, with its audience among others.
    let job_token = issuer.token(
        "good",
        now(&server),
        json!({"sub": SUBJECT, "aud": ["https://other.example", AUDIENCE]}),
    );
    let (status, body) = token_with(&server, &client, &job_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(is_active(&server.url, &introspect, &access).await);
    assert_eq!(issuer.requests(), 2, "discovery and key set, once");
    // Once only (stored as for private_key_jwt, so on every replica).
    refused(
        token_with(&server, &client, &job_token).await,
        "used before",
    );
    // The next job's token: the keys come from the cache.
    let next = ci_token(&issuer, &server, "good");
    let (status, body) = token_with(&server, &client, &next).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(issuer.requests(), 2, "no fetch");
    let listed = get(&mut admin, &client.app.name).await;
    assert!(listed.federated_credentials[0].last_use_time.is_some());

    // The provider rotates its key: a minute after the last fetch, the
    // unknown kid is fetched once; a second unknown kid within the minute
    // is not.
    server.clock.advance(time::Duration::seconds(61));
    issuer.rotate("ci-2");
    let rotated = ci_token(&issuer, &server, "good");
    let (status, body) = token_with(&server, &client, &rotated).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(issuer.requests(), 4);
    issuer.rotate("ci-3");
    let again = ci_token(&issuer, &server, "good");
    unavailable(token_with(&server, &client, &again).await);
    assert_eq!(issuer.requests(), 4, "at most one fetch a minute");
    server.clock.advance(time::Duration::seconds(61));
    let (status, body) = token_with(&server, &client, &again).await;
    assert_eq!(status, StatusCode::OK, "a minute later: {body}");
    assert_eq!(issuer.requests(), 6);

    // Deleted with its tokens: they end, and the provider's tokens are
    // refused, without a fetch.
    delete_federated(&mut admin, &credential, true)
        .await
        .unwrap();
    assert!(!is_active(&server.url, &introspect, &access).await);
    let after = ci_token(&issuer, &server, "good");
    refused(
        token_with(&server, &client, &after).await,
        "no federated credential",
    );
    assert_eq!(issuer.requests(), 6, "no fetch");
    let event = audit(&mut admin, "acme").await.into_iter().next().unwrap();
    assert_eq!(event.action(), pb::AuditAction::FederatedCredentialDeleted);
    assert_eq!(event.details["revoke_tokens"], "true");
}

async fn tokens_that_match_no_credential_are_refused_without_a_network_call(backend: Backend) {
    let issuer = Issuer::start().await;
    let server = server_allowing(backend, &issuer).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Guarded deploys").await;
    add_federated(
        &mut admin,
        &client.app.name,
        &issuer.url("good"),
        SUBJECT,
        AUDIENCE,
    )
    .await
    .unwrap();
    let at = now(&server);
    // The changes go to the provider as they are: a `null` there removes
    // the claim from the token.
    let good = |changes: Value| {
        let mut claims = json!({"sub": SUBJECT, "aud": AUDIENCE});
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        issuer.token("good", at, claims)
    };
    let cases = [
        (
            good(json!({"sub": "repo:acme/billing:ref:refs/heads/feature"})),
            "no federated credential",
        ),
        (
            good(json!({"sub": "REPO:acme/billing:ref:refs/heads/main"})),
            "no federated credential",
        ),
        (good(json!({"aud": "extapps"})), "no federated credential"),
        (good(json!({"aud": []})), "no federated credential"),
        (
            good(json!({"iss": issuer.url("other")})),
            "no federated credential",
        ),
        (
            good(json!({"iss": "https://ci.not-allowed.example"})),
            "not one this server's operator allows",
        ),
        (good(json!({"exp": at + 3700})), "more than 1 hour"),
        (good(json!({"exp": at - 1})), "expired"),
        (good(json!({"iat": null})), "`iat`"),
        (good(json!({"padding": "x".repeat(9000)})), "8 KiB"),
    ];
    for (token, why) in cases {
        refused(token_with(&server, &client, &token).await, why);
    }
    // Not RS256: refused before anything else.
    let es256 = SigningKey::generate(Alg::Es256).with_kid("ci-1");
    let forged = es256.sign(
        &es256.header(),
        &json!({"iss": issuer.url("good"), "sub": SUBJECT, "aud": AUDIENCE, "iat": at, "exp": at + 60, "jti": "x"}),
    );
    refused(token_with(&server, &client, &forged).await, "RS256");
    // Without the client's ID, it names no client.
    let (status, body) = post_form(
        &server.url,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &good(json!({}))),
        ],
    )
    .await;
    refused((status, body), "send `client_id`");
    assert_eq!(issuer.requests(), 0, "no network call for any of these");

    // Signed by someone else under the provider's kid: fetched, refused.
    let impostor = SigningKey::generate(Alg::Rs256).with_kid("ci-1");
    let claims = json!({"iss": issuer.url("good"), "sub": SUBJECT, "aud": AUDIENCE, "iat": at, "exp": at + 60, "jti": "y"});
    refused(
        token_with(
            &server,
            &client,
            &impostor.sign(&impostor.header(), &claims),
        )
        .await,
        "signature",
    );
    assert_eq!(issuer.requests(), 2);
    let (status, body) = token_with(&server, &client, &good(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn issuers_that_misbehave_cost_bounded_time_and_nothing_else(backend: Backend) {
    let issuer = Issuer::start().await;
    let server = server_allowing(backend, &issuer).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Bounded deploys").await;
    let modes = ["slow", "huge", "redirect", "many", "outside", "mismatch"];
    for mode in modes {
        add_federated(
            &mut admin,
            &client.app.name,
            &issuer.url(mode),
            SUBJECT,
            AUDIENCE,
        )
        .await
        .unwrap();
    }
    for mode in modes {
        let started = std::time::Instant::now();
        let before = issuer.requests();
        let token = ci_token(&issuer, &server, mode);
        unavailable(token_with(&server, &client, &token).await);
        // Discovery and the key set at most: never the other origin a
        // redirect or a foreign jwks_uri names (the same server, counted).
        let expected = if mode == "outside" || mode == "mismatch" {
            1
        } else {
            2
        };
        assert_eq!(issuer.requests() - before, expected, "{mode}");
        // Bounded by the fetch timeout (1 s here), not by the provider.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{mode}"
        );
        // Within the minute, no second fetch: told to retry later.
        let before = issuer.requests();
        let token = ci_token(&issuer, &server, mode);
        unavailable(token_with(&server, &client, &token).await);
        assert_eq!(
            issuer.requests(),
            before,
            "{mode}: no fetch within the minute"
        );
    }
    // The server serves on.
    let (status, body) = post_form(
        &server.url,
        "/oauth2/token",
        Some((&client.app.client_id, &client.secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counted = metrics(&server.url).await;
    assert!(!counted.contains("outcome=\"accepted\""), "{counted}");
    for outcome in ["too_large", "unreachable", "status", "malformed"] {
        assert!(
            counted.contains(&format!(
                "extapps_federation_fetches_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome}: {counted}"
        );
    }
}

async fn federated_credentials_are_validated_and_capped(backend: Backend) {
    let issuer = Issuer::start().await;
    let server = server_allowing(backend, &issuer).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Validated deploys").await;
    let name = client.app.name.as_str();
    let bad = error_of(
        add_federated(
            &mut admin,
            name,
            "https://ci.not-allowed.example",
            SUBJECT,
            AUDIENCE,
        )
        .await,
    );
    assert_eq!(bad.code, Code::InvalidArgument);
    assert!(
        bad.violation("issuer")
            .unwrap()
            .contains("--federation-allowed-issuers"),
        "{bad:?}"
    );
    let bad = error_of(add_federated(&mut admin, name, "not a url", "", "a\nb").await);
    assert!(bad.violation("issuer").is_some(), "{bad:?}");
    assert_eq!(bad.violation("subject"), Some("is required"));
    assert!(bad.violation("audience").unwrap().contains("control"));
    let sneaky = format!("{}/../evil", issuer.url("good"));
    let bad = error_of(add_federated(&mut admin, name, &sneaky, SUBJECT, AUDIENCE).await);
    assert!(bad.violation("issuer").unwrap().contains("`..`"), "{bad:?}");
    assert!(
        get(&mut admin, name).await.federated_credentials.is_empty(),
        "nothing added"
    );

    for i in 0..20 {
        add_federated(
            &mut admin,
            name,
            &issuer.url("good"),
            &format!("{SUBJECT}:{i}"),
            AUDIENCE,
        )
        .await
        .unwrap();
    }
    let full =
        error_of(add_federated(&mut admin, name, &issuer.url("good"), SUBJECT, AUDIENCE).await);
    assert_eq!(full.code, Code::FailedPrecondition);
    assert_eq!(
        full.reason.as_deref(),
        Some("TOO_MANY_FEDERATED_CREDENTIALS")
    );
    let mut listed = get(&mut admin, name).await.federated_credentials;
    assert_eq!(listed.len(), 20);
    // Listed oldest first, and by ID within one instant: the one to delete
    // is found by its subject, the one to add again is another.
    let zero = listed
        .iter()
        .position(|c| c.subject == format!("{SUBJECT}:0"))
        .unwrap();
    listed.swap(0, zero);
    delete_federated(&mut admin, &listed[0], false)
        .await
        .unwrap();
    let again = error_of(
        add_federated(
            &mut admin,
            name,
            &issuer.url("good"),
            &format!("{SUBJECT}:1"),
            AUDIENCE,
        )
        .await,
    );
    assert_eq!(again.code, Code::AlreadyExists);
    assert_eq!(
        again.reason.as_deref(),
        Some("FEDERATED_CREDENTIAL_ALREADY_EXISTS")
    );
    let gone = error_of(delete_federated(&mut admin, &listed[0], false).await);
    assert_eq!(gone.code, Code::NotFound);
    assert_eq!(
        gone.reason.as_deref(),
        Some("FEDERATED_CREDENTIAL_NOT_FOUND")
    );
    let native = register(&mut admin, "acme", native_app("Native deploys")).await;
    let refused = error_of(
        add_federated(
            &mut admin,
            &native.application.unwrap().name,
            &issuer.url("good"),
            SUBJECT,
            AUDIENCE,
        )
        .await,
    );
    assert_eq!(
        refused.reason.as_deref(),
        Some("APPLICATION_NOT_CONFIDENTIAL")
    );
    let mut other = server.admin("globex").await;
    let hidden = error_of(delete_federated(&mut other, &listed[1], false).await);
    assert_eq!(hidden.reason.as_deref(), Some("APPLICATION_NOT_FOUND"));
}

/// The command line adds and deletes a federated credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_and_deletes_federated_credentials() {
    let issuer = Issuer::start().await;
    let server = server_allowing(Backend::Sqlite, &issuer).await;
    let key = server.key(Some("acme"), Role::Admin, &[]).await;
    let client = service_client(&server, "CLI deploys").await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(crate::support::harness::workspace_bin("extapps"))
            .env("EXTAPPS_URL", &server.url)
            .env("EXTAPPS_KEY", &key)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        (output.status.code().unwrap_or(-1), stdout, stderr)
    };
    let issuer_url = issuer.url("good");
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "federated",
        "add",
        &client.app.name,
        "--issuer",
        &issuer_url,
        "--subject",
        SUBJECT,
        "--audience",
        AUDIENCE,
    ]);
    assert_eq!(code, 0, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();
    let listed = &app["federated_credentials"][0];
    assert_eq!(listed["issuer"], issuer_url.as_str());
    assert_eq!(listed["subject"], SUBJECT);
    let id = listed["credential_id"].as_str().unwrap();
    let (code, out, err) = run(&["apps", "get", &client.app.name]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("FEDERATED CREDENTIAL ID") && out.contains(SUBJECT),
        "{out}"
    );
    let (code, _, err) = run(&[
        "apps",
        "federated",
        "add",
        &client.app.name,
        "--issuer",
        "https://ci.not-allowed.example",
        "--subject",
        SUBJECT,
        "--audience",
        AUDIENCE,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("issuer: is not an issuer this server's operator allows"),
        "{err}"
    );
    // A token it got ends with it, as `--revoke-tokens` asks.
    let (status, body) = token_with(&server, &client, &ci_token(&issuer, &server, "good")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    assert!(is_active(&server.url, &introspect, &access).await);
    let (code, out, err) = run(&[
        "-o",
        "json",
        "apps",
        "federated",
        "delete",
        &client.app.name,
        id,
        "--revoke-tokens",
    ]);
    assert_eq!(code, 0, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(app["federated_credentials"], json!([]));
    assert!(!is_active(&server.url, &introspect, &access).await);
}

/// The README's walk-through, run as written: a stand-in provider served
/// from files by Python on loopback, a token signed by openssl, and the
/// command line registering the credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_gets_a_ci_token_without_any_secret() {
    // A free loopback port for the provider, which the server allows.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start_with(
        Backend::Sqlite,
        ClientAuthSettings {
            federation: FederationSettings {
                allowed: AllowedIssuers::parse(&[format!("http://127.0.0.1:{port}")]).unwrap(),
                ..FederationSettings::default()
            },
            ..ClientAuthSettings::default()
        },
    )
    .await;
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let client = service_client(&server, "CI walk-through").await;
    let mut admin = server.admin("acme").await;
    delete_secret(&mut admin, &client.app.secrets[0], false)
        .await
        .unwrap();
    let answer = crate::support::walkthrough::run(
        "ci_job.sh",
        &[
            ("EXTAPPS_URL", server.url.clone()),
            ("EXTAPPS_KEY", admin_key.clone()),
            ("APP", client.app.name.clone()),
            ("CLIENT_ID", client.app.client_id.clone()),
            ("ISSUER_PORT", port.to_string()),
        ],
    )
    .await;
    let token = answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(is_active(&server.url, &introspect, token).await);
    let app = get(&mut admin, &client.app.name).await;
    assert!(app.secrets.is_empty() && app.keys.is_empty());
    assert!(app.federated_credentials[0].last_use_time.is_some());
}

async fn rfc_8414_issuers_work_and_a_token_serves_once_even_after_deletion(backend: Backend) {
    let issuer = Issuer::start().await;
    let server = server_allowing(backend, &issuer).await;
    let mut admin = server.admin("acme").await;
    let first = service_client(&server, "First deploys").await;
    let second = service_client(&server, "Second deploys").await;
    for client in [&first, &second] {
        add_federated(
            &mut admin,
            &client.app.name,
            &issuer.url("rfc8414"),
            SUBJECT,
            AUDIENCE,
        )
        .await
        .unwrap();
    }
    // Discovery answers 404; the RFC 8414 metadata is read instead.
    let token = ci_token(&issuer, &server, "rfc8414");
    let (status, body) = token_with(&server, &first, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        issuer.requests(),
        3,
        "discovery, RFC 8414 metadata, key set"
    );
    // The same provider token, at an application that trusts the same
    // triple: used already.
    refused(token_with(&server, &second, &token).await, "used before");
    // Deleting the application that used it does not make it new again.
    admin
        .delete_application(pb::DeleteApplicationRequest {
            name: first.app.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    refused(token_with(&server, &second, &token).await, "used before");
    let fresh = ci_token(&issuer, &server, "rfc8414");
    let (status, body) = token_with(&server, &second, &fresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
