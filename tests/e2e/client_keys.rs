//! Applications without a shared secret (SPEC section 4): public keys an
//! administrator registers, and `private_key_jwt` client assertions
//! (RFC 7523) signed with them at the token and revocation endpoints:
//! every accepted algorithm, a key's tokens ended with it, and the
//! assertions an attacker would try (no algorithm, HMAC keyed with the
//! public key, stale, early, replayed, misaddressed, foreign, oversized).

use extapps_client::{GeneratedClient as Client, v1 as pb};
use extapps_server::domain::caller::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use crate::support::fixtures::*;
use crate::support::harness::{Backend, TestServer, error_of};
use crate::support::oauth_http::{App, http, is_active, metrics, post_form, service_client, token};
use crate::support::signing::{
    Alg, JWT_BEARER, SigningKey, access_token, claims, refused, token_by_assertion, with,
};
use crate::support::stored::count;

crate::on_both_backends!(
    keys_are_registered_listed_and_deleted_by_administrators,
    an_application_without_a_shared_secret_lives_on_its_keys,
    assertions_that_must_not_pass_are_refused_and_issue_nothing,
    deleting_a_key_ends_its_tokens_only_when_asked,
    an_assertion_is_accepted_once_across_replicas,
    replays_sent_at_once_leave_one_token_each_and_no_error,
    strangers_assertions_cost_bounded_work_and_the_owner_is_served,
    a_client_introspects_its_own_tokens_and_no_others,
);

/// A confidential application whose only credentials are `keys`: its
/// secret is deleted once they are registered.
async fn keyed_client(
    server: &TestServer,
    admin: &mut Client,
    name: &str,
    keys: &[&SigningKey],
) -> (App, Vec<pb::ClientKeyInfo>) {
    let client = service_client(server, name).await;
    let mut infos = Vec::new();
    for key in keys {
        let added = add_key(admin, &client.app.name, &key.public_jwk())
            .await
            .unwrap();
        infos.push(added.key.unwrap());
    }
    let after = delete_secret(admin, &client.app.secrets[0], false)
        .await
        .unwrap();
    assert!(after.secrets.is_empty(), "no shared secret left");
    (client, infos)
}

async fn keys_are_registered_listed_and_deleted_by_administrators(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let client = service_client(&server, "Keyed").await;
    let key = SigningKey::generate(Alg::Es256).with_kid("ci-2026");

    let added = add_key(&mut admin, &client.app.name, &key.public_jwk())
        .await
        .unwrap();
    let info = added.key.unwrap();
    let app = added.application.unwrap();
    assert_eq!(info.algorithm, "ES256");
    assert_eq!(
        info.name,
        format!("{}/keys/{}", client.app.name, info.key_id)
    );
    assert_eq!(info.thumbprint.len(), 43, "SHA-256, base64url");
    assert!(info.last_use_time.is_none() && info.expire_time.is_none());
    let stored: Value = serde_json::from_str(&info.jwk).unwrap();
    assert_eq!(stored["alg"], "ES256", "the algorithm is set on the key");
    assert_eq!(stored["kid"], "ci-2026");
    assert_eq!(app.keys, vec![info.clone()]);
    assert_eq!(app.secrets.len(), 1, "keys live beside secrets");
    assert_eq!(get(&mut admin, &client.app.name).await, app);
    let event = audit(&mut admin, "acme")
        .await
        .into_iter()
        .find(|e| e.action() == pb::AuditAction::ApplicationKeyAdded)
        .expect("an audit event");
    assert_eq!(event.details["key_id"], info.key_id);
    assert_eq!(event.details["thumbprint"], info.thumbprint);

    // The same key again (whatever its kid), by thumbprint.
    let again = error_of(add_key(&mut admin, &client.app.name, &key.public_jwk()).await);
    assert_eq!(again.code, Code::AlreadyExists);
    assert_eq!(again.reason.as_deref(), Some("KEY_ALREADY_REGISTERED"));

    // A private key pasted by mistake is never stored.
    let mut private = key.public_jwk();
    private["d"] = json!("870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE");
    let refused = error_of(add_key(&mut admin, &client.app.name, &private).await);
    assert_eq!(refused.code, Code::InvalidArgument);
    assert!(
        refused.violation("jwk").unwrap().contains("private"),
        "{refused:?}"
    );
    let symmetric = json!({"kty": "oct", "k": "c2VjcmV0"});
    let refused = error_of(add_key(&mut admin, &client.app.name, &symmetric).await);
    assert!(refused.violation("jwk").unwrap().contains("symmetric"));

    // Ten at most; a non-confidential application has none.
    for _ in 1..10 {
        let other = SigningKey::generate(Alg::EdDsa);
        add_key(&mut admin, &client.app.name, &other.public_jwk())
            .await
            .unwrap();
    }
    let eleventh = SigningKey::generate(Alg::EdDsa);
    let full = error_of(add_key(&mut admin, &client.app.name, &eleventh.public_jwk()).await);
    assert_eq!(full.code, Code::FailedPrecondition);
    assert_eq!(full.reason.as_deref(), Some("TOO_MANY_KEYS"));
    assert_eq!(get(&mut admin, &client.app.name).await.keys.len(), 10);
    let native = register(&mut admin, "acme", native_app("Native")).await;
    let name = native.application.unwrap().name;
    let refused = error_of(add_key(&mut admin, &name, &key.public_jwk()).await);
    assert_eq!(refused.code, Code::FailedPrecondition);
    assert_eq!(
        refused.reason.as_deref(),
        Some("APPLICATION_NOT_CONFIDENTIAL")
    );

    // Deleted once; then not found. Another organization sees nothing.
    let mut other_admin = server.admin("globex").await;
    let hidden = error_of(delete_key(&mut other_admin, &info, false).await);
    assert_eq!(hidden.code, Code::NotFound);
    assert_eq!(hidden.reason.as_deref(), Some("APPLICATION_NOT_FOUND"));
    let after = delete_key(&mut admin, &info, false).await.unwrap();
    assert!(after.keys.iter().all(|k| k.key_id != info.key_id));
    assert_eq!(after.keys.len(), 9);
    let gone = error_of(delete_key(&mut admin, &info, false).await);
    assert_eq!(gone.code, Code::NotFound);
    assert_eq!(gone.reason.as_deref(), Some("APPLICATION_KEY_NOT_FOUND"));
    let event = audit(&mut admin, "acme").await.into_iter().next().unwrap();
    assert_eq!(event.action(), pb::AuditAction::ApplicationKeyDeleted);
    assert_eq!(event.details["key_id"], info.key_id);
    assert_eq!(event.details["revoke_tokens"], "false");
    // Deleted, the same key may come back.
    add_key(&mut admin, &client.app.name, &key.public_jwk())
        .await
        .unwrap();
}

async fn an_application_without_a_shared_secret_lives_on_its_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let keys: Vec<SigningKey> = [Alg::Es256, Alg::EdDsa, Alg::Rs256, Alg::Ps256]
        .into_iter()
        .map(SigningKey::generate)
        .collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let (client, infos) = keyed_client(&server, &mut admin, "Keys only", &refs).await;
    let client_id = client.app.client_id.as_str();

    for (key, info) in keys.iter().zip(&infos) {
        // Without a kid, the key of the assertion's algorithm verifies it.
        let token = access_token(
            token_by_assertion(&server, &key.assertion(&server, client_id), &[]).await,
        );
        assert!(
            is_active(&server.url, &introspect, &token).await,
            "{:?}",
            key.alg
        );
        let answer =
            crate::support::oauth_http::introspect_http(&server.url, &introspect, &token).await;
        assert_eq!(answer["client_id"], client_id);
        // A kid naming the key by its thumbprint, and the client ID beside
        // the assertion, as some libraries send it.
        let named = key.sign(
            &with(key.header(), json!({"kid": info.thumbprint})),
            &claims(&server, client_id),
        );
        access_token(token_by_assertion(&server, &named, &[("client_id", client_id)]).await);
    }

    // The issuer itself is an audience too, and an array may name it.
    let issuer = with(
        claims(&server, client_id),
        json!({"aud": ["https://elsewhere.example", server.url]}),
    );
    access_token(token_by_assertion(&server, &keys[0].sign(&keys[0].header(), &issuer), &[]).await);

    // Revocation takes an assertion too (its endpoint or the token
    // endpoint as audience).
    let token = access_token(
        token_by_assertion(&server, &keys[1].assertion(&server, client_id), &[]).await,
    );
    let revoke_claims = with(
        claims(&server, client_id),
        json!({"aud": format!("{}/oauth2/revoke", server.url)}),
    );
    let (status, body) = post_form(
        &server.url,
        "/oauth2/revoke",
        None,
        &[
            ("token", &token),
            ("client_assertion_type", JWT_BEARER),
            (
                "client_assertion",
                &keys[1].sign(&keys[1].header(), &revoke_claims),
            ),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!is_active(&server.url, &introspect, &token).await);

    // Each key's last use is shown; nothing else changed.
    let app = get(&mut admin, &client.app.name).await;
    assert_eq!(app.keys.len(), 4);
    assert!(
        app.keys.iter().all(|k| k.last_use_time.is_some()),
        "{:?}",
        app.keys
    );

    // The metadata says how.
    let metadata: Value = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            server.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for endpoint in ["token", "revocation"] {
        let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt")),
            "{metadata}"
        );
        assert_eq!(
            metadata[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
            json!(["ES256", "EdDSA", "RS256", "PS256"])
        );
    }
    let counted = metrics(&server.url).await;
    assert!(
        counted.contains("extapps_client_assertions_total{outcome=\"accepted\"} 11"),
        "{counted}"
    );
}

async fn assertions_that_must_not_pass_are_refused_and_issue_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let key = SigningKey::generate(Alg::Es256).with_kid("k1");
    let other = SigningKey::generate(Alg::Es256).with_kid("k2");
    let rsa = SigningKey::generate(Alg::Rs256);
    let (client, _) = keyed_client(&server, &mut admin, "Guarded", &[&key, &other, &rsa]).await;
    let id = client.app.client_id.as_str();
    let good = || claims(&server, id);
    let now = good()["iat"].as_i64().unwrap();
    let b64 = |v: &Value| {
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v.to_string(),
        )
    };

    // No algorithm: a JWS without a signature.
    let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good()));
    refused(
        token_by_assertion(&server, &none, &[]).await,
        "not a signed JWT",
    );
    let none = format!("{}.{}.AAAA", b64(&json!({"alg": "none"})), b64(&good()));
    refused(
        token_by_assertion(&server, &none, &[]).await,
        "`alg` must be",
    );
    // HS256 keyed with the public key's JWK text and its raw x coordinate:
    // the confusion attack on libraries that let the header pick the
    // algorithm.
    let hs_header = json!({"alg": "HS256", "kid": "k1"});
    let signed = format!("{}.{}", b64(&hs_header), b64(&good()));
    let x = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key.public_jwk()["x"].as_str().unwrap(),
    )
    .unwrap();
    for secret in [key.public_jwk().to_string().into_bytes(), x] {
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
            signed.as_bytes(),
        );
        let forged = format!(
            "{signed}.{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                mac.as_ref()
            )
        );
        refused(
            token_by_assertion(&server, &forged, &[]).await,
            "`alg` must be",
        );
    }
    // An algorithm of a key type, but not of the key the kid names.
    let mislabelled = key.sign(&json!({"alg": "EdDSA", "kid": "k1"}), &good());
    refused(
        token_by_assertion(&server, &mislabelled, &[]).await,
        "no registered key",
    );
    // Signed by a key the client does not hold, or by its other key under
    // this one's kid.
    let stranger = SigningKey::generate(Alg::Es256).with_kid("k1");
    refused(
        token_by_assertion(&server, &stranger.assertion(&server, id), &[]).await,
        "signature",
    );
    let swapped = other.sign(&key.header(), &good());
    refused(
        token_by_assertion(&server, &swapped, &[]).await,
        "signature",
    );
    let unknown_kid = key.sign(&with(key.header(), json!({"kid": "nobody"})), &good());
    refused(
        token_by_assertion(&server, &unknown_kid, &[]).await,
        "no registered key",
    );
    // A tampered payload.
    let genuine = key.assertion(&server, id);
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with(good(), json!({"exp": now + 200}))),
        parts[2]
    );
    refused(
        token_by_assertion(&server, &tampered, &[]).await,
        "signature",
    );

    // Claims: time, audience, issuer.
    let cases = [
        (json!({"exp": now - 1}), "expired"),
        (json!({"exp": null}), "expired"),
        (json!({"exp": now + 3600}), "5 minutes"),
        (json!({"iat": now + 120}), "in the future"),
        (json!({"nbf": now + 120}), "in the future"),
        (
            json!({"aud": "https://attacker.example/oauth2/token"}),
            "`aud`",
        ),
        (
            json!({"aud": format!("{}/oauth2/introspect", server.url)}),
            "`aud`",
        ),
        (json!({"iss": "someone-else"}), "`iss` and `sub`"),
        (
            json!({"sub": uuid::Uuid::new_v4().to_string()}),
            "`iss` and `sub`",
        ),
        (json!({"jti": null}), "`jti`"),
    ];
    for (change, why) in cases {
        let assertion = key.sign(&key.header(), &with(good(), change));
        refused(token_by_assertion(&server, &assertion, &[]).await, why);
    }
    // Another client's ID beside the assertion.
    let mismatch = token_by_assertion(
        &server,
        &key.assertion(&server, id),
        &[("client_id", &uuid::Uuid::new_v4().to_string())],
    )
    .await;
    refused(mismatch, "another client");
    // Over 8 KiB, refused before anything is parsed.
    let padded = key.sign(
        &key.header(),
        &with(good(), json!({"pad": "x".repeat(9000)})),
    );
    refused(token_by_assertion(&server, &padded, &[]).await, "8 KiB");

    // Replayed: the second use is refused, even though all else is good.
    let once = key.assertion(&server, id);
    access_token(token_by_assertion(&server, &once, &[]).await);
    refused(token_by_assertion(&server, &once, &[]).await, "used before");

    // Malformed requests are the client's, not an authentication failure.
    for (form, why) in [
        (
            vec![("client_assertion", once.as_str())],
            "client_assertion_type",
        ),
        (
            vec![
                ("client_assertion", once.as_str()),
                ("client_assertion_type", "urn:example:saml"),
            ],
            "must be `urn:ietf",
        ),
        (
            vec![("client_assertion_type", JWT_BEARER)],
            "without a `client_assertion`",
        ),
    ] {
        let mut full = vec![("grant_type", "client_credentials")];
        full.extend(form);
        let (status, body) = post_form(&server.url, "/oauth2/token", None, &full).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"].as_str().unwrap().contains(why),
            "{body}"
        );
    }
    let both = post_form(
        &server.url,
        "/oauth2/token",
        Some((id, "extapps_cs_whatever")),
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &key.assertion(&server, id)),
        ],
    )
    .await;
    assert_eq!(both.0, StatusCode::BAD_REQUEST, "{}", both.1);
    assert!(
        both.1["error_description"]
            .as_str()
            .unwrap()
            .contains("one client authentication method")
    );

    // Through it all, the owner is served, from the same address.
    access_token(token_by_assertion(&server, &key.assertion(&server, id), &[]).await);
    access_token(token_by_assertion(&server, &rsa.assertion(&server, id), &[]).await);
}

async fn deleting_a_key_ends_its_tokens_only_when_asked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let kept = SigningKey::generate(Alg::EdDsa);
    let quiet = SigningKey::generate(Alg::Es256);
    let ended = SigningKey::generate(Alg::Ps256);
    let client = service_client(&server, "Mixed").await;
    let mut infos = Vec::new();
    for key in [&kept, &quiet, &ended] {
        infos.push(
            add_key(&mut admin, &client.app.name, &key.public_jwk())
                .await
                .unwrap()
                .key
                .unwrap(),
        );
    }
    let id = client.app.client_id.as_str();
    let by_secret = token(&server.url, &client, &client.secret, None)
        .await
        .unwrap();
    let by_kept =
        access_token(token_by_assertion(&server, &kept.assertion(&server, id), &[]).await);
    let by_quiet =
        access_token(token_by_assertion(&server, &quiet.assertion(&server, id), &[]).await);
    let by_ended =
        access_token(token_by_assertion(&server, &ended.assertion(&server, id), &[]).await);

    // Deleted without its tokens: the key stops, its token lives on.
    delete_key(&mut admin, &infos[1], false).await.unwrap();
    refused(
        token_by_assertion(&server, &quiet.assertion(&server, id), &[]).await,
        "no registered key",
    );
    assert!(is_active(&server.url, &introspect, &by_quiet).await);

    // Another replica, with caches of its own, sees the deletion at once.
    let replica = server.beside(server.ring.clone()).await;
    assert!(is_active(&replica.url, &introspect, &by_ended).await);
    // Deleted with its tokens: exactly its token ends.
    let after = delete_key(&mut admin, &infos[2], true).await.unwrap();
    assert_eq!(
        after.keys,
        vec![get(&mut admin, &client.app.name).await.keys[0].clone()]
    );
    assert!(!is_active(&server.url, &introspect, &by_ended).await);
    // (SQLite replicas hear of changes by polling: the change must arrive.)
    if crate::support::harness::caches_on() {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            replica.store().wait_for_changes(1),
        )
        .await
        .expect("the change reaches the other replica");
    }
    assert!(!is_active(&replica.url, &introspect, &by_ended).await);
    for token in [&by_secret, &by_kept, &by_quiet] {
        assert!(is_active(&server.url, &introspect, token).await);
    }
    refused(
        token_by_assertion(&server, &ended.assertion(&server, id), &[]).await,
        "no registered key",
    );
    let event = audit(&mut admin, "acme").await.into_iter().next().unwrap();
    assert_eq!(event.details["revoke_tokens"], "true");

    // A key past its expiry stops by itself.
    let brief = SigningKey::generate(Alg::Es256);
    let brief_info = admin
        .add_application_key(pb::AddApplicationKeyRequest {
            name: client.app.name.clone(),
            jwk: brief.public_jwk().to_string(),
            expiration: Some(pb::add_application_key_request::Expiration::Ttl(
                prost_types::Duration {
                    seconds: 3600,
                    nanos: 0,
                },
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    access_token(token_by_assertion(&server, &brief.assertion(&server, id), &[]).await);
    server.clock.advance(time::Duration::minutes(30));
    let late = access_token(token_by_assertion(&server, &brief.assertion(&server, id), &[]).await);
    server.clock.advance(time::Duration::minutes(30));
    refused(
        token_by_assertion(&server, &brief.assertion(&server, id), &[]).await,
        "no registered key",
    );
    assert_eq!(
        get(&mut admin, &client.app.name).await.keys.len(),
        1,
        "not listed"
    );
    access_token(token_by_assertion(&server, &kept.assertion(&server, id), &[]).await);
    // Kept while a token it got can live. Added again, it comes back with
    // its ID, so deleting it still ends that token.
    server.service.housekeeping().await;
    assert!(is_active(&server.url, &introspect, &late).await);
    let again = add_key(&mut admin, &client.app.name, &brief.public_jwk())
        .await
        .unwrap()
        .key
        .unwrap();
    assert_eq!(again.key_id, brief_info.key_id);
    assert_eq!(again.expire_time, None, "as added this time");
    access_token(token_by_assertion(&server, &brief.assertion(&server, id), &[]).await);
    delete_key(&mut admin, &brief_info, true).await.unwrap();
    assert!(!is_active(&server.url, &introspect, &late).await);
    let err = error_of(delete_key(&mut admin, &brief_info, true).await);
    assert_eq!(err.reason.as_deref(), Some("APPLICATION_KEY_NOT_FOUND"));
}

/// A fresh assertion of client `id`, addressed to both replicas' token
/// endpoints, as one deployment's issuer would be.
fn for_both(key: &SigningKey, server: &TestServer, replica: &TestServer, id: &str) -> String {
    let both = with(
        claims(server, id),
        json!({"aud": [format!("{}/oauth2/token", server.url), format!("{}/oauth2/token", replica.url)]}),
    );
    key.sign(&key.header(), &both)
}

async fn an_assertion_is_accepted_once_across_replicas(backend: Backend) {
    let server = TestServer::start(backend).await;
    let replica = server.beside(server.ring.clone()).await;
    let mut admin = server.admin("acme").await;
    let key = SigningKey::generate(Alg::EdDsa);
    let (client, _) = keyed_client(&server, &mut admin, "Replicated", &[&key]).await;
    let id = client.app.client_id.as_str();
    let assertion = for_both(&key, &server, &replica, id);
    access_token(token_by_assertion(&replica, &assertion, &[]).await);
    refused(
        token_by_assertion(&server, &assertion, &[]).await,
        "used before",
    );
    refused(
        token_by_assertion(&replica, &assertion, &[]).await,
        "used before",
    );

    // The same assertion sent many times at once (its jti then lands
    // several times in one batch of writes): one token, exactly.
    let burst = for_both(&key, &server, &replica, id);
    let sends: Vec<_> = (0..16)
        .map(|i| {
            let target = if i % 2 == 0 { &server } else { &replica };
            token_by_assertion(target, &burst, &[])
        })
        .collect();
    let mut accepted = 0;
    for (status, body) in futures_util::future::join_all(sends).await {
        match status {
            StatusCode::OK => accepted += 1,
            _ => assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("used before"),
                "{body}"
            ),
        }
    }
    assert_eq!(accepted, 1, "one of sixteen at once");
    // Every one of them was refused by the write itself: each replica
    // counts the rows it sent and the batches they went in.
    for (replica, rows) in [(&server, 9), (&replica, 10)] {
        let counted = metrics(&replica.url).await;
        let value = |name: &str| -> f64 {
            counted
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} in {counted}"))
                .parse()
                .unwrap()
        };
        assert_eq!(value("extapps_used_assertion_rows_total"), rows as f64);
        let batches = value("extapps_used_assertion_write_duration_seconds_count{outcome=\"ok\"}");
        assert!((1.0..=rows as f64).contains(&batches), "{batches} batches");
        assert!(value("extapps_used_assertion_write_duration_seconds_sum{outcome=\"ok\"}") > 0.0);
    }

    // Their jtis are kept past their expiry (replicas' clocks differ),
    // then forgotten; the assertion is refused for its expiry by then.
    assert_eq!(count(&server, "used_assertions").await, 2);
    server.clock.advance(time::Duration::minutes(2));
    server.service.housekeeping().await;
    assert_eq!(
        count(&server, "used_assertions").await,
        2,
        "kept within the margin"
    );
    refused(
        token_by_assertion(&server, &assertion, &[]).await,
        "expired",
    );
    server.clock.advance(time::Duration::minutes(10));
    server.service.housekeeping().await;
    assert_eq!(
        count(&server, "used_assertions").await,
        0,
        "purged after the margin"
    );
    refused(
        token_by_assertion(&replica, &assertion, &[]).await,
        "expired",
    );
}

async fn replays_sent_at_once_leave_one_token_each_and_no_error(backend: Backend) {
    let server = TestServer::start(backend).await;
    let replica = server.beside(server.ring.clone()).await;
    let mut admin = server.admin("acme").await;
    let key = SigningKey::generate(Alg::EdDsa);
    let (client, _) = keyed_client(&server, &mut admin, "Replayed", &[&key]).await;
    let id = client.app.client_id.as_str();
    // Eight assertions, each sent eight times, all at once and shuffled,
    // to two replicas: their batches, written side by side, share jtis in
    // every order, and must neither deadlock nor let a jti through twice.
    let assertions: Vec<String> = (0..8)
        .map(|_| for_both(&key, &server, &replica, id))
        .collect();
    let (server, replica) = (&server, &replica);
    // Each replica knows the client already: the burst is about the writes.
    for target in [server, replica] {
        access_token(token_by_assertion(target, &key.assertion(target, id), &[]).await);
    }
    let mut sends = Vec::new();
    for round in 0..8 {
        for i in 0..8 {
            let assertion = &assertions[(i * 3 + round) % 8];
            // Each assertion goes to one replica, then the other.
            let target = if i % 2 == 0 { server } else { replica };
            sends
                .push(async move { (assertion, token_by_assertion(target, assertion, &[]).await) });
        }
    }
    let mut accepted = std::collections::HashMap::new();
    for (assertion, (status, body)) in futures_util::future::join_all(sends).await {
        match status {
            StatusCode::OK => *accepted.entry(assertion.clone()).or_insert(0) += 1,
            StatusCode::UNAUTHORIZED => assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("used before"),
                "{body}"
            ),
            _ => panic!("{status}: {body}"),
        }
    }
    assert_eq!(accepted.len(), 8, "each assertion once: {accepted:?}");
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
}

async fn strangers_assertions_cost_bounded_work_and_the_owner_is_served(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    // Three keys of one algorithm: an assertion without a `kid` could mean
    // any of them.
    let key = SigningKey::generate(Alg::Es256).with_kid("owner-1");
    let spare = [
        SigningKey::generate(Alg::Es256).with_kid("owner-2"),
        SigningKey::generate(Alg::Es256).with_kid("owner-3"),
    ];
    let (client, _) = keyed_client(
        &server,
        &mut admin,
        "Targeted",
        &[&key, &spare[0], &spare[1]],
    )
    .await;
    let id = client.app.client_id.clone();
    // The owner has been at work before the strangers come.
    access_token(token_by_assertion(&server, &key.assertion(&server, &id), &[]).await);
    let stranger = SigningKey::generate(Alg::Es256);
    let sent = 10_000;
    let flood = (0..sent).map(|i| {
        let server_url = server.url.clone();
        let assertion = match i % 3 {
            // Random bytes.
            0 => uuid::Uuid::new_v4().simple().to_string(),
            // Well formed, for clients that do not exist.
            1 => stranger.assertion(&server, &uuid::Uuid::new_v4().to_string()),
            // For the owner's client, signed by the stranger.
            _ => stranger.assertion(&server, &id),
        };
        async move {
            http()
                .post(format!("{server_url}/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses: Vec<StatusCode> = futures_bounded(flood, 32).await;
    let mut seen = std::collections::BTreeMap::new();
    for status in &statuses {
        *seen.entry(status.as_u16()).or_insert(0) += 1;
    }
    // Refused, told to wait, or (a cold PostgreSQL pool opening its
    // connections under the burst) told the storage is busy: never a token,
    // never a server error.
    assert!(seen.keys().all(|s| [401, 429, 503].contains(s)), "{seen:?}");
    // Unknown clients cost a database read only until the source has
    // failed enough; garbage costs none at all.
    let limited = seen.get(&429).copied().unwrap_or(0);
    assert!(limited > sent / 3 - 100, "{seen:?}");
    // The strangers' assertions for the owner's client name no key: three
    // checks each while their address is within its budget (120 failures a
    // minute, and the 32 requests in flight when it runs out); once it is
    // refused, at most one each (none while this replica holds the client,
    // whose three keys the header could mean; one against the key that
    // verified the owner lately when it does not, as with the caches off).
    let counted = metrics(&server.url).await;
    let checked: u64 = counted
        .lines()
        .find_map(|l| l.strip_prefix("extapps_client_assertion_signature_checks_total "))
        .map(|n| n.parse().unwrap())
        .unwrap();
    assert!(
        checked < 3 * 200 + (sent as u64) / 3,
        "{checked} signature checks for {sent} assertions"
    );
    // The owner, from the same address, is still served.
    access_token(token_by_assertion(&server, &key.assertion(&server, &id), &[]).await);
}

/// Runs `futures` at most `limit` at a time; their outputs.
async fn futures_bounded<F>(futures: impl Iterator<Item = F>, limit: usize) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = tokio::task::JoinSet::new();
    for future in futures {
        let permit = permits.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let output = future.await;
            drop(permit);
            output
        });
    }
    tasks.join_all().await
}

/// The README's walk-through, run as written: openssl makes the key pair,
/// the command line registers it and deletes the secret, and a JWT signed
/// by openssl gets a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_gets_a_token_with_a_key_pair() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin_key = server.key(Some("acme"), Role::Admin, &[]).await;
    let introspect = server.key(Some("acme"), Role::Introspect, &[]).await;
    let client = service_client(&server, "Walk-through").await;
    let answer = crate::support::walkthrough::run(
        "key_pair.sh",
        &[
            ("EXTAPPS_URL", server.url.clone()),
            ("EXTAPPS_KEY", admin_key.clone()),
            ("APP", client.app.name.clone()),
            ("CLIENT_ID", client.app.client_id.clone()),
            ("SECRET_ID", client.app.secrets[0].secret_id.clone()),
        ],
    )
    .await;
    let token = answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(is_active(&server.url, &introspect, token).await);
    let mut admin = server.admin("acme").await;
    let app = get(&mut admin, &client.app.name).await;
    assert!(app.secrets.is_empty());
    assert_eq!(app.keys.len(), 1);
    assert_eq!(app.keys[0].algorithm, "EdDSA");
}

async fn a_client_introspects_its_own_tokens_and_no_others(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut admin = server.admin("acme").await;
    let key = SigningKey::generate(Alg::EdDsa);
    let (keyed, _) = keyed_client(&server, &mut admin, "Introspecting", &[&key]).await;
    let other = service_client(&server, "Other").await;
    let id = keyed.app.client_id.as_str();
    let own = access_token(token_by_assertion(&server, &key.assertion(&server, id), &[]).await);
    let foreign = crate::support::oauth_http::token(&server.url, &other, &other.secret, None)
        .await
        .unwrap();
    let introspect_with = |assertion: String, token: String| {
        let url = server.url.clone();
        async move {
            post_form(
                &url,
                "/oauth2/introspect",
                None,
                &[
                    ("token", token.as_str()),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.as_str()),
                ],
            )
            .await
        }
    };
    // Its own token, with an assertion addressed to the introspection
    // endpoint.
    let at_introspect = key.sign(
        &key.header(),
        &with(
            claims(&server, id),
            json!({"aud": format!("{}/oauth2/introspect", server.url)}),
        ),
    );
    let (status, body) = introspect_with(at_introspect, own.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], id);
    assert!(body.get("organization").is_none());
    // Another client's token is inactive to it, and says nothing more.
    let (status, body) = introspect_with(key.assertion(&server, id), foreign.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"active": false}));
    // The other client, by its secret (HTTP Basic), sees its own.
    let (status, body) = post_form(
        &server.url,
        "/oauth2/introspect",
        Some((&other.app.client_id, &other.secret)),
        &[("token", &foreign)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true);
    // A wrong secret is invalid_client; no credentials at all, the
    // resource servers' challenge.
    let (status, body) = post_form(
        &server.url,
        "/oauth2/introspect",
        Some((&other.app.client_id, "extapps_cs_wrong")),
        &[("token", &foreign)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = post_form(
        &server.url,
        "/oauth2/introspect",
        None,
        &[("token", &foreign)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_request", "{body}");
}
