//! Access tokens: self-contained and sealed (XChaCha20-Poly1305) under a key
//! of the key ring every replica shares, so issuing one writes nothing and
//! checking one needs no token lookup. The holder sees only an opaque string:
//! a prefix, the ID of the ring key that sealed it, a 192-bit random nonce
//! and the ciphertext of the claims, which include a random 128-bit token ID.
//! The database never holds a usable token, nor the key to make one; it
//! holds only the IDs of revoked tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use secrecy::SecretString;
use uuid::Uuid;

use super::error::Error;
use super::key_ring::{KEY_ID_BYTES, KeyId, PurposeKeys};
use super::names::ClientId;

/// Prefix of every access token, for scanners and for telling tokens apart
/// from other credentials.
pub const ACCESS_TOKEN_PREFIX: &str = "extapps_at_";

const VERSION: u8 = 1;
const NONCE_BYTES: usize = 24;
/// Tokens longer than this are rejected before any decoding.
const MAX_TOKEN_CHARS: usize = 4096;

/// What a token says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Unique token ID (`jti`).
    pub id: Uuid,
    pub client_id: ClientId,
    /// The signed-in user; `None` for tokens an application holds on its own
    /// behalf (client credentials), whose subject is the client.
    pub subject: Option<String>,
    /// Scopes granted when the token was issued.
    pub scopes: Vec<String>,
    /// Microseconds since the Unix epoch: a revocation at a given instant
    /// must tell tokens issued just before it from those issued just after.
    pub issued_at: i64,
    pub expires_at: i64,
}

impl TokenClaims {
    fn encode(&self) -> Vec<u8> {
        let subject = self.subject.as_deref().unwrap_or_default().as_bytes();
        let scopes = self.scopes.join(" ");
        let mut out = Vec::with_capacity(52 + subject.len() + scopes.len());
        out.push(VERSION);
        out.push(u8::from(self.subject.is_some()));
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(self.client_id.as_uuid().as_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&(subject.len() as u16).to_be_bytes());
        out.extend_from_slice(subject);
        out.extend_from_slice(scopes.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (&[VERSION, has_subject], rest) = bytes.split_first_chunk::<2>()? else {
            return None;
        };
        let (id, rest) = rest.split_first_chunk::<16>()?;
        let (client, rest) = rest.split_first_chunk::<16>()?;
        let (iat, rest) = rest.split_first_chunk::<8>()?;
        let (exp, rest) = rest.split_first_chunk::<8>()?;
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let (subject, scopes) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        let scopes = std::str::from_utf8(scopes).ok()?;
        Some(Self {
            id: Uuid::from_bytes(*id),
            client_id: ClientId::from_uuid(Uuid::from_bytes(*client)),
            subject: match has_subject {
                0 => None,
                _ => Some(std::str::from_utf8(subject).ok()?.to_owned()),
            },
            scopes: scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            issued_at: i64::from_be_bytes(*iat),
            expires_at: i64::from_be_bytes(*exp),
        })
    }
}

/// Seals and opens access tokens.
#[derive(Clone)]
pub struct TokenSealer {
    sealing: (KeyId, XChaCha20Poly1305),
    /// Every key that opens, the sealing one included.
    opening: Vec<(KeyId, XChaCha20Poly1305)>,
}

/// The additional data a token is sealed with: its prefix and key ID.
fn aad(id: &KeyId) -> [u8; ACCESS_TOKEN_PREFIX.len() + KEY_ID_BYTES] {
    let mut aad = [0u8; ACCESS_TOKEN_PREFIX.len() + KEY_ID_BYTES];
    let (prefix, key) = aad.split_at_mut(ACCESS_TOKEN_PREFIX.len());
    prefix.copy_from_slice(ACCESS_TOKEN_PREFIX.as_bytes());
    key.copy_from_slice(id);
    aad
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer([REDACTED])")
    }
}

impl TokenSealer {
    pub fn new(keys: &PurposeKeys) -> Self {
        let (id, key) = keys.sealing();
        let cipher = |key: &[u8; 32]| XChaCha20Poly1305::new(&(*key).into());
        Self {
            sealing: (id, cipher(key)),
            opening: keys.iter().map(|(id, key)| (*id, cipher(key))).collect(),
        }
    }

    /// The token string for `claims`.
    pub fn seal(&self, claims: &TokenClaims) -> Result<SecretString, Error> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| Error::Internal)?;
        let (id, cipher) = &self.sealing;
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &claims.encode(),
                    aad: &aad(id),
                },
            )
            .map_err(|_| Error::Internal)?;
        let mut token = String::from(ACCESS_TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(
            [id.as_slice(), nonce.as_slice(), &sealed].concat(),
            &mut token,
        );
        Ok(SecretString::from(token))
    }

    /// The claims of a token this server sealed with a key still in its
    /// ring; `None` for anything else (foreign, altered, truncated, garbage,
    /// or sealed by a retired key). Expiry is not checked here.
    pub fn open(&self, token: &str) -> Option<TokenClaims> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.strip_prefix(ACCESS_TOKEN_PREFIX)?)
            .ok()?;
        let (id, rest) = bytes.split_first_chunk::<KEY_ID_BYTES>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_BYTES>()?;
        let (_, cipher) = self.opening.iter().find(|(known, _)| known == id)?;
        let plain = cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: sealed,
                    aad: &aad(id),
                },
            )
            .ok()?;
        TokenClaims::decode(&plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    fn claims() -> TokenClaims {
        TokenClaims {
            id: Uuid::new_v4(),
            client_id: ClientId::generate(),
            subject: None,
            scopes: vec!["OR.Jobs".into(), "OR.Queues.Read".into()],
            issued_at: 1_700_000_000_000_000,
            expires_at: 1_700_003_600_000_000,
        }
    }

    fn sealer(material: u8) -> TokenSealer {
        TokenSealer::new(&PurposeKeys::fixed([material; 32]))
    }

    #[test]
    fn round_trips_and_hides_the_claims() {
        let sealer = sealer(3);
        let mut c = claims();
        c.subject = Some("user-42".into());
        let token = sealer.seal(&c).unwrap();
        let text = token.expose_secret();
        assert!(text.starts_with(ACCESS_TOKEN_PREFIX));
        assert!(!text.contains("OR.Jobs") && !text.contains("user-42"));
        assert_eq!(sealer.open(text).unwrap(), c);
        // Same claims, different token: the nonce is random.
        assert_ne!(sealer.seal(&c).unwrap().expose_secret(), text);
    }

    #[test]
    fn another_key_or_any_change_is_refused() {
        let sealer = sealer(3);
        let token = sealer.seal(&claims()).unwrap();
        let text = token.expose_secret();
        assert!(self::sealer(4).open(text).is_none());
        let mut bytes = text.as_bytes().to_vec();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer.open(std::str::from_utf8(&bytes).unwrap()).is_none());
        assert!(sealer.open(&text[..text.len() - 1]).is_none());
        assert!(
            sealer
                .open(&text.replace(ACCESS_TOKEN_PREFIX, "extapps_cs_"))
                .is_none()
        );
    }

    #[test]
    fn a_rotated_ring_opens_old_tokens_until_their_key_is_retired() {
        use crate::domain::key_ring::{KeyRing, Purpose};
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let first = KeyRing::generate(now).unwrap();
        let second = first.rotated(now, false).unwrap();
        let old = TokenSealer::new(&first.keys_for(Purpose::AccessToken).unwrap());
        let new = TokenSealer::new(&second.keys_for(Purpose::AccessToken).unwrap());
        let old_token = old.seal(&claims()).unwrap();
        let new_token = new.seal(&claims()).unwrap();
        assert!(new.open(old_token.expose_secret()).is_some());
        assert!(
            old.open(new_token.expose_secret()).is_none(),
            "not yet in the old ring"
        );
        let (old_id, _) = second.ids()[0].clone();
        let retired = TokenSealer::new(
            &second
                .retired(&old_id)
                .unwrap()
                .keys_for(Purpose::AccessToken)
                .unwrap(),
        );
        assert!(retired.open(old_token.expose_secret()).is_none());
        assert!(retired.open(new_token.expose_secret()).is_some());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,200}") {
            let sealer = sealer(3);
            prop_assert!(sealer.open(&s).is_none());
            let prefixed = format!("{ACCESS_TOKEN_PREFIX}{s}");
            prop_assert!(sealer.open(&prefixed).is_none());
        }
    }
}
