//! Safe retries of creating calls (AIP-155).
//!
//! The saved response holds a one-time secret, and secrets are never stored in
//! a usable form. So the request ID is stored only as a digest (the lookup
//! key), and the response is sealed with ChaCha20-Poly1305 under a key derived
//! from the request ID itself: only a caller who knows the request ID (a random
//! UUID) can open it, the database alone cannot.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::credential::hex;
use super::error::Error;
use super::names::OrganizationId;

/// How long a saved response is replayed.
pub const RETENTION: time::Duration = time::Duration::hours(24);

/// Reads an optional `request_id`: empty, or a UUID.
pub fn parse_request_id(field: &str, value: &str) -> Result<Option<Uuid>, Error> {
    if value.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(value).map(Some).map_err(|_| {
        Error::invalid_field(field, "must be a UUID (a random one, unique per request)")
    })
}

/// The keys of one request ID in one organization and call.
pub struct IdempotencyKey {
    /// Hex digest under which the record is stored.
    pub lookup: String,
    seal_key: [u8; 32],
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyKey")
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

impl IdempotencyKey {
    pub fn derive(
        organization: &OrganizationId,
        call: &str,
        request_id: Uuid,
    ) -> Result<Self, Error> {
        let context = format!("{call}\n{organization}");
        let lookup = hex(&Sha256::digest(
            [
                b"extapps idempotency lookup v1\n",
                context.as_bytes(),
                b"\n",
                request_id.as_bytes(),
            ]
            .concat(),
        ));
        let mut seal_key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(context.as_bytes()), request_id.as_bytes())
            .expand(b"extapps idempotency seal v1", &mut seal_key)
            .map_err(|_| Error::Internal)?;
        Ok(Self { lookup, seal_key })
    }

    /// `nonce || ciphertext` of `plaintext`, bound to the lookup key.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| Error::Internal)?;
        let cipher = ChaCha20Poly1305::new(&self.seal_key.into());
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: self.lookup.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`seal`](Self::seal) made.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let (nonce, ciphertext) = sealed.split_at_checked(12).ok_or(Error::Internal)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| Error::Internal)?;
        ChaCha20Poly1305::new(&self.seal_key.into())
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: self.lookup.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal)
    }
}

/// Digest of a request's canonical form, to tell a retry from a reuse.
pub fn request_digest(canonical: &[u8]) -> String {
    hex(&Sha256::digest(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_request_id_opens_the_record() {
        let org = OrganizationId::parse("acme").unwrap();
        let id = Uuid::new_v4();
        let key = IdempotencyKey::derive(&org, "Register", id).unwrap();
        let sealed = key.seal(b"secret response").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(&sealed).unwrap(), b"secret response");

        let other = IdempotencyKey::derive(&org, "Register", Uuid::new_v4()).unwrap();
        assert_ne!(other.lookup, key.lookup);
        assert!(other.open(&sealed).is_err());
        let other_org =
            IdempotencyKey::derive(&OrganizationId::parse("b").unwrap(), "Register", id).unwrap();
        assert_ne!(other_org.lookup, key.lookup);
    }
}
