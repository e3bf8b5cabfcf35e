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

criterion_group!(benches, tokens, credentials, page_tokens);
criterion_main!(benches);
