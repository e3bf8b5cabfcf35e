//! Safe retries of creating calls (AIP-155).
//!
//! The saved response holds a one-time secret, and secrets are never stored in
//! a usable form. So the request ID is stored only as a digest (the lookup
//! key), and the response is sealed with ChaCha20-Poly1305 under a key
//! derived from a key of the server's key ring together with the request ID:
//! the database alone cannot open it, not even with a request ID known, and
//! the key ring alone cannot either without the request ID.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::credential::hex;
use super::error::Error;
use super::key_ring::{KEY_ID_BYTES, KeyId, PurposeKeys};
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
    context: String,
    request_id: Uuid,
    keys: PurposeKeys,
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
        keys: &PurposeKeys,
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
        Ok(Self {
            lookup,
            context,
            request_id,
            keys: keys.clone(),
        })
    }

    /// The sealing key of this request under the ring key `ring_key`.
    fn seal_key(&self, ring_key: &[u8; 32]) -> Result<ChaCha20Poly1305, Error> {
        let mut seal_key = [0u8; 32];
        let secret = [ring_key.as_slice(), self.request_id.as_bytes()].concat();
        Hkdf::<Sha256>::new(Some(self.context.as_bytes()), &secret)
            .expand(b"extapps idempotency seal v2", &mut seal_key)
            .map_err(|_| Error::Internal)?;
        Ok(ChaCha20Poly1305::new(&seal_key.into()))
    }

    /// `key ID || nonce || ciphertext` of `plaintext`, bound to the lookup
    /// key.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; 12];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut nonce)
            .map_err(|_| Error::Internal)?;
        let (id, ring_key) = self.keys.sealing();
        let sealed = self
            .seal_key(ring_key)?
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: self.lookup.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal)?;
        Ok([id.as_slice(), nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`seal`](Self::seal) made; `None` if the ring no longer
    /// holds its key or it does not open.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let (id, rest) = sealed.split_first_chunk::<KEY_ID_BYTES>()?;
        let (nonce, ciphertext) = rest.split_first_chunk::<12>()?;
        let ring_key = self.keys.get(id as &KeyId)?;
        self.seal_key(ring_key)
            .ok()?
            .decrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad: self.lookup.as_bytes(),
                },
            )
            .ok()
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
    fn only_the_same_request_id_and_ring_open_the_record() {
        let ring = PurposeKeys::fixed([5; 32]);
        let org = OrganizationId::parse("acme").unwrap();
        let id = Uuid::new_v4();
        let key = IdempotencyKey::derive(&ring, &org, "Register", id).unwrap();
        let sealed = key.seal(b"secret response").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(&sealed).unwrap(), b"secret response");

        let other = IdempotencyKey::derive(&ring, &org, "Register", Uuid::new_v4()).unwrap();
        assert_ne!(other.lookup, key.lookup);
        assert!(other.open(&sealed).is_none());
        let other_org =
            IdempotencyKey::derive(&ring, &OrganizationId::parse("b").unwrap(), "Register", id)
                .unwrap();
        assert_ne!(other_org.lookup, key.lookup);
        // The request ID without the ring (a database reader who knows it)
        // opens nothing.
        let other_ring =
            IdempotencyKey::derive(&PurposeKeys::fixed([6; 32]), &org, "Register", id).unwrap();
        assert_eq!(other_ring.lookup, key.lookup);
        assert!(other_ring.open(&sealed).is_none());
    }
}
