//! Refresh tokens: one per generation of a user grant, made by the server
//! alone. A token is the grant's ID, its generation, the ID of the ring key
//! and an HMAC-SHA-256 over all three under that key, in base64url after a
//! prefix and before a CRC-32 checksum (like every credential).
//!
//! Nothing of a token is stored: the grant keeps only its current
//! generation, so a database dump cannot mint one, and any token the server
//! ever made can be told apart from a forgery by its MAC. That is what makes
//! reuse detection safe: a genuine token of an earlier generation is reuse
//! (the grant is revoked), a forged one is merely invalid (knowing a grant's
//! ID is not enough to end it). The successor of a generation is the same
//! token whenever it is made, so a client that lost an answer can be given
//! it again without keeping it anywhere.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use uuid::Uuid;

use super::credential;
use super::error::Error;
use super::key_ring::{KEY_ID_BYTES, KeyId, PurposeKeys};

/// Prefix of every refresh token.
pub const REFRESH_TOKEN_PREFIX: &str = "extapps_rt_";
const MAC_BYTES: usize = 32;
const BODY_BYTES: usize = 16 + 4 + KEY_ID_BYTES + MAC_BYTES;

/// Makes and checks refresh tokens.
#[derive(Clone)]
pub struct RefreshTokens {
    keys: PurposeKeys,
}

impl std::fmt::Debug for RefreshTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshTokens([REDACTED])")
    }
}

fn mac(key: &[u8; 32], grant: &Uuid, generation: u32) -> Result<Hmac<Sha256>, Error> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Error::Internal)?;
    mac.update(REFRESH_TOKEN_PREFIX.as_bytes());
    mac.update(grant.as_bytes());
    mac.update(&generation.to_be_bytes());
    Ok(mac)
}

impl RefreshTokens {
    pub fn new(keys: PurposeKeys) -> Self {
        Self { keys }
    }

    /// The token of `generation` of `grant`.
    pub fn make(&self, grant: &Uuid, generation: u32) -> Result<SecretString, Error> {
        let (id, key) = self.keys.sealing();
        let tag = mac(key, grant, generation)?.finalize().into_bytes();
        let mut body = Vec::with_capacity(BODY_BYTES);
        body.extend_from_slice(grant.as_bytes());
        body.extend_from_slice(&generation.to_be_bytes());
        body.extend_from_slice(&id);
        body.extend_from_slice(&tag);
        let mut token = String::from(REFRESH_TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(body, &mut token);
        Ok(SecretString::from(credential::with_checksum(token)))
    }

    /// The grant and generation of a token this server made with a key
    /// still in its ring; `None` for anything else, forged or mistyped.
    pub fn open(&self, token: &str) -> Option<(Uuid, u32)> {
        let signed = credential::checked(token)?;
        let body = URL_SAFE_NO_PAD
            .decode(signed.strip_prefix(REFRESH_TOKEN_PREFIX)?)
            .ok()?;
        let (grant, rest) = body.split_first_chunk::<16>()?;
        let (generation, rest) = rest.split_first_chunk::<4>()?;
        let (id, tag) = rest.split_first_chunk::<KEY_ID_BYTES>()?;
        let key = self.keys.get(id as &KeyId)?;
        let grant = Uuid::from_bytes(*grant);
        let generation = u32::from_be_bytes(*generation);
        // Constant-time comparison of the whole tag.
        mac(key, &grant, generation).ok()?.verify_slice(tag).ok()?;
        Some((grant, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    const CHECKSUM_CHARS: usize = 8;

    fn tokens(material: u8) -> RefreshTokens {
        RefreshTokens::new(PurposeKeys::fixed([material; 32]))
    }

    #[test]
    fn tokens_are_the_same_for_a_generation_and_refused_when_altered() {
        let grant = Uuid::new_v4();
        let made = tokens(1).make(&grant, 7).unwrap();
        let text = made.expose_secret();
        assert!(text.starts_with(REFRESH_TOKEN_PREFIX));
        assert_eq!(tokens(1).open(text), Some((grant, 7)));
        assert_eq!(tokens(1).make(&grant, 7).unwrap().expose_secret(), text);
        assert_ne!(tokens(1).make(&grant, 8).unwrap().expose_secret(), text);
        assert_eq!(tokens(2).open(text), None, "another ring");
        // A forgery with the right grant, generation and checksum, but no
        // key: refused.
        let mut body = URL_SAFE_NO_PAD
            .decode(&text[REFRESH_TOKEN_PREFIX.len()..text.len() - CHECKSUM_CHARS])
            .unwrap();
        let last = body.len() - 1;
        body[last] ^= 1;
        let mut forged = String::from(REFRESH_TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&body, &mut forged);
        let forged = credential::with_checksum(forged);
        assert_eq!(tokens(1).open(&forged), None);
        assert_eq!(tokens(1).open(&text[..text.len() - 1]), None);
    }

    proptest! {
        #[test]
        fn garbage_never_opens(s in ".{0,120}") {
            prop_assert_eq!(tokens(1).open(&s), None);
            prop_assert_eq!(tokens(1).open(&format!("{REFRESH_TOKEN_PREFIX}{s}")), None);
        }

        #[test]
        fn every_generation_round_trips(generation in any::<u32>()) {
            let grant = Uuid::new_v4();
            let made = tokens(3).make(&grant, generation).unwrap();
            prop_assert_eq!(tokens(3).open(made.expose_secret()), Some((grant, generation)));
        }
    }
}
