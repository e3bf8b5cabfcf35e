//! The CPU work on the token and introspection paths, without network or
//! database: what a request costs before it waits on anything.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use extapps_server::domain::{
    credential::{self, CredentialKind},
    key_ring::PurposeKeys,
    names::ClientId,
    page_token::PageTokens,
    token::{TokenClaims, TokenSealer},
};
use secrecy::ExposeSecret;

fn claims() -> TokenClaims {
    TokenClaims {
        grant: None,
        credential: Some(uuid::Uuid::new_v4()),
        revision: 3,
        id: uuid::Uuid::new_v4(),
        client_id: ClientId::generate(),
        subject: None,
        scopes: vec!["OR.Jobs.Read".into(), "OR.Queues".into()],
        issued_at: 1_795_500_000_000_000,
        expires_at: 1_795_503_600_000_000,
    }
}

fn tokens(c: &mut Criterion) {
    let sealer = TokenSealer::new(&PurposeKeys::fixed([7; 32]));
    let claims = claims();
    let token = sealer.seal(&claims).unwrap();
    c.bench_function("token seal", |b| b.iter(|| sealer.seal(black_box(&claims))));
    c.bench_function("token open", |b| {
        b.iter(|| sealer.open(black_box(token.expose_secret())))
    });
    c.bench_function("token open (garbage)", |b| {
        b.iter(|| {
            sealer.open(black_box(
                "extapps_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ))
        })
    });
}

fn credentials(c: &mut Criterion) {
    let secret = credential::generate(CredentialKind::ClientSecret).unwrap();
    c.bench_function("secret checksum", |b| {
        b.iter(|| {
            credential::is_well_formed(
                CredentialKind::ClientSecret,
                black_box(secret.expose_secret()),
            )
        })
    });
    c.bench_function("caller key digest", |b| {
        b.iter(|| credential::digest(black_box(&secret)))
    });
    let phc = credential::hash_secret(&secret).unwrap();
    c.bench_function("argon2id verify (generated-secret parameters)", |b| {
        b.iter(|| credential::verify_secret(black_box(&secret), black_box(&phc)))
    });
    // What a hit of the verified-secret cache computes instead: the HMAC
    // its entries are keyed by (plus one lookup in a concurrent map).
    c.bench_function("verified-secret cache key (HMAC-SHA256)", |b| {
        use hmac::{Hmac, KeyInit, Mac};
        let client = ClientId::generate();
        b.iter(|| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&[9; 32]).unwrap();
            mac.update(client.as_uuid().as_bytes());
            mac.update(black_box(secret.expose_secret()).as_bytes());
            mac.finalize().into_bytes()
        })
    });
}

fn page_tokens(c: &mut Criterion) {
    let pages = PageTokens::new(PurposeKeys::fixed([5; 32]));
    let token = pages.encode("applications\nacme", b"Billing sync").unwrap();
    c.bench_function("page token decode", |b| {
        b.iter(|| pages.decode(black_box("applications\nacme"), black_box(&token)))
    });
}

/// A client assertion (`private_key_jwt`) checked as the token endpoint
/// does: its claims read and checked, then its signature verified with the
/// registered key, for the two algorithms whose keys are small (ES256,
/// EdDSA).
fn client_assertions(c: &mut Criterion) {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    };
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use extapps_server::domain::{client_assertion, client_key::VerifyingKey};
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    // A fixed instant: the claims are made for it.
    let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let claims = serde_json::json!({
        "iss": "6f1c1a36-4b1e-4c1e-9a0e-2b7d3c4d5e6f",
        "sub": "6f1c1a36-4b1e-4c1e-9a0e-2b7d3c4d5e6f",
        "aud": "https://auth.example/oauth2/token",
        "iat": now.unix_timestamp(),
        "exp": now.unix_timestamp() + 60,
        "jti": "3f0b7a39-5d4c-4f7e-a0a1-0d9e8c7b6a59",
    });
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = ec.public_key().as_ref().to_vec();
    let ed = Ed25519KeyPair::generate().unwrap();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "ES256",
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
                .to_string(),
            {
                let signed = format!("{}.{}", b64(br#"{"alg":"ES256"}"#), b64(claims.to_string().as_bytes()));
                let signature = ec.sign(&rng, signed.as_bytes()).unwrap();
                format!("{signed}.{}", b64(signature.as_ref()))
            },
        ),
        (
            "EdDSA",
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(ed.public_key().as_ref())})
                .to_string(),
            {
                let signed = format!("{}.{}", b64(br#"{"alg":"EdDSA"}"#), b64(claims.to_string().as_bytes()));
                format!("{signed}.{}", b64(ed.sign(signed.as_bytes()).as_ref()))
            },
        ),
    ];
    let for_us = |aud: &str| aud == "https://auth.example/oauth2/token";
    for (alg, jwk, text) in cases {
        let key = VerifyingKey::from_stored(uuid::Uuid::nil(), &jwk, None).unwrap();
        let assertion = client_assertion::read(&text, None, &for_us, now).unwrap();
        assert!(key.verifies(assertion.signed, assertion.signature));
        c.bench_function(&format!("client assertion read ({alg})"), |b| {
            b.iter(|| client_assertion::read(black_box(&text), None, &for_us, now).unwrap())
        });
        c.bench_function(&format!("client assertion signature ({alg})"), |b| {
            b.iter(|| key.verifies(black_box(assertion.signed), black_box(assertion.signature)))
        });
    }
}

criterion_group!(benches, tokens, credentials, page_tokens, client_assertions);
criterion_main!(benches);
