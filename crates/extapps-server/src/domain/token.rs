//! Access tokens: self-contained and sealed (XChaCha20-Poly1305) under a key
//! every replica shares, so issuing one writes nothing and checking one needs
//! no token lookup. The holder sees only an opaque string: a prefix, a
//! 192-bit random nonce and the ciphertext of the claims, which include a
//! random 128-bit token ID. The database never holds a usable token; it holds
//! only the IDs of revoked ones.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use secrecy::SecretString;
use uuid::Uuid;

use super::error::Error;
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
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer([REDACTED])")
    }
}

impl TokenSealer {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// The token string for `claims`.
    pub fn seal(&self, claims: &TokenClaims) -> Result<SecretString, Error> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| Error::Internal)?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &claims.encode(),
                    aad: ACCESS_TOKEN_PREFIX.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal)?;
        let mut token = String::from(ACCESS_TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string([nonce.as_slice(), &sealed].concat(), &mut token);
        Ok(SecretString::from(token))
    }

    /// The claims of a token this server sealed; `None` for anything else
    /// (foreign, altered, truncated or garbage). Expiry is not checked here.
    pub fn open(&self, token: &str) -> Option<TokenClaims> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.strip_prefix(ACCESS_TOKEN_PREFIX)?)
            .ok()?;
        let (nonce, sealed) = bytes.split_first_chunk::<NONCE_BYTES>()?;
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: sealed,
                    aad: ACCESS_TOKEN_PREFIX.as_bytes(),
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

    #[test]
    fn round_trips_and_hides_the_claims() {
        let sealer = TokenSealer::new([3; 32]);
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
        let sealer = TokenSealer::new([3; 32]);
        let token = sealer.seal(&claims()).unwrap();
        let text = token.expose_secret();
        assert!(TokenSealer::new([4; 32]).open(text).is_none());
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

    proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,200}") {
            let sealer = TokenSealer::new([3; 32]);
            prop_assert!(sealer.open(&s).is_none());
            let prefixed = format!("{ACCESS_TOKEN_PREFIX}{s}");
            prop_assert!(sealer.open(&prefixed).is_none());
        }
    }
}
