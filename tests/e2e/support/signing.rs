//! Key pairs of the four algorithms a registered key may have, and client
//! assertions (RFC 7523) signed with them, as an application makes them:
//! with aws-lc directly, not with the server's JWS library, so that a
//! mistake the two would share cannot hide.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::harness::TestServer;
use crate::support::oauth_http::post_form;

/// The `client_assertion_type` of JWT client assertions.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Es256,
    EdDsa,
    Rs256,
    Ps256,
}

impl Alg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
        }
    }
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

/// A key pair an application holds; the server gets its public JWK.
pub(crate) struct SigningKey {
    pub(crate) alg: Alg,
    pair: Pair,
    /// The `kid` its JWK and assertions carry, if any.
    pub(crate) kid: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    pub(crate) fn generate(alg: Alg) -> Self {
        let pair = match alg {
            Alg::Es256 => {
                Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
            }
            Alg::EdDsa => Pair::Ed(Ed25519KeyPair::generate().unwrap()),
            Alg::Rs256 | Alg::Ps256 => {
                Pair::Rsa(aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap())
            }
        };
        Self {
            alg,
            pair,
            kid: None,
        }
    }

    /// The same key, its JWK and assertions naming `kid`.
    pub(crate) fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// The public JWK, as an administrator registers it.
    pub(crate) fn public_jwk(&self) -> Value {
        let mut jwk = match &self.pair {
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Pair::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
            Pair::Rsa(pair) => {
                let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "n": b64(&parts.n), "e": b64(&parts.e), "alg": self.alg.name()})
            }
        };
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The signature of `message` with this key's algorithm.
    pub(crate) fn signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            Pair::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Pair::Rsa(pair) => {
                let padding = match self.alg {
                    Alg::Ps256 => &RSA_PSS_SHA256,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut signature).unwrap();
                signature
            }
        }
    }

    /// A compact JWS of `claims` under `header`, signed with this key.
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = b64(&self.signature(signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    /// The header an application puts on its assertions.
    pub(crate) fn header(&self) -> Value {
        let mut header = json!({"alg": self.alg.name(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        header
    }

    /// A good assertion for `client_id` at the server's token endpoint.
    pub(crate) fn assertion(&self, server: &TestServer, client_id: &str) -> String {
        self.sign(&self.header(), &claims(server, client_id))
    }
}

/// Good claims for `client_id`: this server's token endpoint as audience,
/// one minute of life on the server's clock, a fresh `jti`.
pub(crate) fn claims(server: &TestServer, client_id: &str) -> Value {
    let now = extapps_server::domain::clock::Clock::now(server.clock.as_ref()).unix_timestamp();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/oauth2/token", server.url),
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// `base` with the members of `changes` set (`null`: removed).
pub(crate) fn with(mut base: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(name);
        } else {
            base[name] = value.clone();
        }
    }
    base
}

/// A client-credentials token request authenticated by `assertion`, and
/// `extra` parameters.
pub(crate) async fn token_by_assertion(
    server: &TestServer,
    assertion: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    post_form(&server.url, "/oauth2/token", None, &form).await
}

/// The access token of a successful token response.
pub(crate) fn access_token((status, body): (StatusCode, Value)) -> String {
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Asserts a refusal as `invalid_client` (401), saying `why`.
pub(crate) fn refused((status, body): (StatusCode, Value), why: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    assert_eq!(body["error"], "invalid_client", "{why}: {body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains(why), "{why}: {description}");
}
