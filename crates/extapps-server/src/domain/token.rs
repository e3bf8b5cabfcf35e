//! Access tokens: self-contained and sealed (XChaCha20-Poly1305) under a key
//! of the key ring every replica shares, so issuing one writes nothing and
//! checking one needs no token lookup. The holder sees only an opaque string:
//! a prefix, the ID of the ring key that sealed it, a 192-bit random nonce
//! and the ciphertext of the claims, which include a random 128-bit token ID.
//! The database never holds a usable token, nor the key to make one; it
//! holds only the IDs of revoked tokens.

use secrecy::SecretString;
use uuid::Uuid;

use super::error::Error;
use super::key_ring::PurposeKeys;
use super::names::ClientId;
use super::sealing::{Nonce, Sealer};

/// Prefix of every access token, for scanners and for telling tokens apart
/// from other credentials.
pub const ACCESS_TOKEN_PREFIX: &str = "extapps_at_";

/// Claims as sealed today: with the application revision and the
/// credential. Version 1 (without them) is still opened, for tokens issued
/// before.
const VERSION: u8 = 2;
const VERSION_WITHOUT_REVISION: u8 = 1;
/// Flags of the claims.
const HAS_SUBJECT: u8 = 1;
const HAS_GRANT: u8 = 2;
const HAS_CREDENTIAL: u8 = 4;
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
    /// The user grant the token was issued from (authorization code or
    /// refresh token): revoking the grant revokes the token.
    pub grant: Option<Uuid>,
    /// The credential (a client secret's ID) that authenticated the client
    /// the token was issued to; `None` for a non-confidential client, and
    /// in tokens issued before tokens recorded it.
    pub credential: Option<Uuid>,
    /// The application's revision that the token's scopes and its client's
    /// authentication were decided at (see [`super::token_rules`]); 0 in
    /// tokens issued before tokens recorded it.
    pub revision: i64,
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
        let mut out = Vec::with_capacity(108 + subject.len() + scopes.len());
        out.push(VERSION);
        let flag = |present: bool, flag: u8| if present { flag } else { 0 };
        out.push(
            flag(self.subject.is_some(), HAS_SUBJECT)
                | flag(self.grant.is_some(), HAS_GRANT)
                | flag(self.credential.is_some(), HAS_CREDENTIAL),
        );
        out.extend_from_slice(self.id.as_bytes());
        if let Some(grant) = &self.grant {
            out.extend_from_slice(grant.as_bytes());
        }
        if let Some(credential) = &self.credential {
            out.extend_from_slice(credential.as_bytes());
        }
        out.extend_from_slice(self.client_id.as_uuid().as_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.revision.to_be_bytes());
        out.extend_from_slice(&(subject.len() as u16).to_be_bytes());
        out.extend_from_slice(subject);
        out.extend_from_slice(scopes.as_bytes());
        out
    }

    fn decode<'a>(bytes: &'a [u8]) -> Option<Self> {
        let (&[version, flags], rest) = bytes.split_first_chunk::<2>()?;
        let known_flags = match version {
            VERSION => HAS_SUBJECT | HAS_GRANT | HAS_CREDENTIAL,
            VERSION_WITHOUT_REVISION => HAS_SUBJECT | HAS_GRANT,
            _ => return None,
        };
        if flags & !known_flags != 0 {
            return None;
        }
        let optional_id = |flag: u8, rest: &'a [u8]| match flags & flag {
            0 => Some((None, rest)),
            _ => {
                let (id, rest) = rest.split_first_chunk::<16>()?;
                Some((Some(Uuid::from_bytes(*id)), rest))
            }
        };
        let (id, rest) = rest.split_first_chunk::<16>()?;
        let (grant, rest) = optional_id(HAS_GRANT, rest)?;
        let (credential, rest) = optional_id(HAS_CREDENTIAL, rest)?;
        let (client, rest) = rest.split_first_chunk::<16>()?;
        let (iat, rest) = rest.split_first_chunk::<8>()?;
        let (exp, rest) = rest.split_first_chunk::<8>()?;
        let (revision, rest) = match version {
            VERSION => {
                let (revision, rest) = rest.split_first_chunk::<8>()?;
                (i64::from_be_bytes(*revision), rest)
            }
            _ => (0, rest),
        };
        let (len, rest) = rest.split_first_chunk::<2>()?;
        let (subject, scopes) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        let scopes = std::str::from_utf8(scopes).ok()?;
        Some(Self {
            id: Uuid::from_bytes(*id),
            client_id: ClientId::from_uuid(Uuid::from_bytes(*client)),
            subject: match flags & HAS_SUBJECT {
                0 => None,
                _ => Some(std::str::from_utf8(subject).ok()?.to_owned()),
            },
            grant,
            credential,
            revision,
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

/// The randomness a new token needs, its ID and its sealing nonce, drawn in
/// one call to the OS generator: each system call is a point where a loaded
/// server loses its core, and a token used to make two. Not `Clone`:
/// [`TokenSealer::seal_fresh`] consumes it, so its nonce seals once.
pub struct FreshToken {
    id: Uuid,
    nonce: Nonce,
}

impl std::fmt::Debug for FreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshToken").field("id", &self.id).finish()
    }
}

impl FreshToken {
    pub fn draw() -> Result<Self, Error> {
        let mut random = [0u8; 40];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut random)
            .map_err(|_| Error::Internal)?;
        let (id, nonce) = random.split_at(16);
        Ok(Self {
            id: uuid::Builder::from_random_bytes(id.try_into().map_err(|_| Error::Internal)?)
                .into_uuid(),
            nonce: Nonce(nonce.try_into().map_err(|_| Error::Internal)?),
        })
    }

    /// The token's ID (`jti`), a version 4 UUID.
    pub fn id(&self) -> Uuid {
        self.id
    }
}

/// Seals and opens access tokens.
#[derive(Debug, Clone)]
pub struct TokenSealer(Sealer);

impl TokenSealer {
    pub fn new(keys: &PurposeKeys) -> Self {
        Self(Sealer::new(ACCESS_TOKEN_PREFIX, MAX_TOKEN_CHARS, keys))
    }

    /// The token string for `claims`.
    pub fn seal(&self, claims: &TokenClaims) -> Result<SecretString, Error> {
        self.0.seal(&claims.encode()).map(SecretString::from)
    }

    /// The token string for `claims`, sealed under `fresh`'s nonce (its ID
    /// is the one the claims carry).
    pub fn seal_fresh(
        &self,
        claims: &TokenClaims,
        fresh: FreshToken,
    ) -> Result<SecretString, Error> {
        self.0
            .seal_with(&claims.encode(), fresh.nonce)
            .map(SecretString::from)
    }

    /// The claims of a token this server sealed with a key still in its
    /// ring; `None` for anything else (foreign, altered, truncated, garbage,
    /// or sealed by a retired key). Expiry is not checked here.
    pub fn open(&self, token: &str) -> Option<TokenClaims> {
        TokenClaims::decode(&self.0.open(token)?)
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
            grant: None,
            credential: Some(Uuid::new_v4()),
            revision: 7,
            scopes: vec!["OR.Jobs".into(), "OR.Queues.Read".into()],
            issued_at: 1_700_000_000_000_000,
            expires_at: 1_700_003_600_000_000,
        }
    }

    #[test]
    fn a_fresh_token_is_sealed_under_its_own_nonce_and_opens() {
        let sealer = sealer(3);
        let (first, second) = (FreshToken::draw().unwrap(), FreshToken::draw().unwrap());
        assert_ne!(first.id(), second.id());
        assert_eq!(first.id().get_version_num(), 4);
        let mut c = claims();
        c.id = first.id();
        let token = sealer.seal_fresh(&c, first).unwrap();
        assert_eq!(sealer.open(token.expose_secret()), Some(c.clone()));
        // The same claims under another draw: another nonce, another text.
        let again = sealer.seal_fresh(&c, second).unwrap();
        assert_ne!(again.expose_secret(), token.expose_secret());
    }

    fn sealer(material: u8) -> TokenSealer {
        TokenSealer::new(&PurposeKeys::fixed([material; 32]))
    }

    #[test]
    fn round_trips_and_hides_the_claims() {
        let sealer = sealer(3);
        let mut c = claims();
        c.subject = Some("user-42".into());
        c.grant = Some(Uuid::new_v4());
        let token = sealer.seal(&c).unwrap();
        let text = token.expose_secret();
        assert!(text.starts_with(ACCESS_TOKEN_PREFIX));
        assert!(!text.contains("OR.Jobs") && !text.contains("user-42"));
        assert_eq!(sealer.open(text).unwrap(), c);
        // Same claims, different token: the nonce is random.
        assert_ne!(sealer.seal(&c).unwrap().expose_secret(), text);
    }

    #[test]
    fn tokens_sealed_before_revisions_still_open() {
        // The layout of version 1: no credential, no revision.
        let id = Uuid::new_v4();
        let client = ClientId::generate();
        let mut v1 = vec![VERSION_WITHOUT_REVISION, HAS_SUBJECT];
        v1.extend_from_slice(id.as_bytes());
        v1.extend_from_slice(client.as_uuid().as_bytes());
        v1.extend_from_slice(&10i64.to_be_bytes());
        v1.extend_from_slice(&20i64.to_be_bytes());
        v1.extend_from_slice(&4u16.to_be_bytes());
        v1.extend_from_slice(b"userOR.Jobs");
        let claims = TokenClaims::decode(&v1).unwrap();
        assert_eq!(
            claims,
            TokenClaims {
                id,
                client_id: client,
                subject: Some("user".into()),
                grant: None,
                credential: None,
                revision: 0,
                scopes: vec!["OR.Jobs".into()],
                issued_at: 10,
                expires_at: 20,
            }
        );
        // A credential flag means nothing in version 1.
        v1[1] |= HAS_CREDENTIAL;
        assert_eq!(TokenClaims::decode(&v1), None);
        let mut c = claims;
        c.credential = None;
        c.revision = 3;
        assert_eq!(TokenClaims::decode(&c.encode()), Some(c));
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
        fn forged_text_never_opens(s in ".{0,200}") {
            let sealer = sealer(3);
            prop_assert!(sealer.open(&s).is_none());
            let prefixed = format!("{ACCESS_TOKEN_PREFIX}{s}");
            prop_assert!(sealer.open(&prefixed).is_none());
        }
    }
}
