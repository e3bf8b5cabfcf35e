//! Sealed strings: data encrypted and authenticated (XChaCha20-Poly1305)
//! under a key of the key ring every replica shares, so that a value can
//! travel through clients and come back unread and unaltered. The text is a
//! prefix, the ID of the ring key that sealed it, a random 192-bit nonce and
//! the ciphertext, in unpadded base64url; the prefix and key ID are bound in
//! as additional data.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::error::Error;
use super::key_ring::{KEY_ID_BYTES, KeyId, PurposeKeys};
use super::xchacha::{NONCE_BYTES, TAG_BYTES, XChaCha20Poly1305};

/// Seals and opens the strings of one purpose.
#[derive(Clone)]
pub struct Sealer {
    prefix: &'static str,
    /// Longer texts are refused before any decoding.
    max_chars: usize,
    sealing: RingKey,
    /// Every key that opens, the sealing one included.
    opening: Vec<RingKey>,
}

/// One key of the ring, ready for use.
#[derive(Clone)]
struct RingKey {
    id: KeyId,
    cipher: XChaCha20Poly1305,
    /// The additional data of every text it seals: the prefix and key ID.
    aad: Vec<u8>,
}

impl RingKey {
    fn new(prefix: &str, id: KeyId, key: &[u8; 32]) -> Self {
        Self {
            id,
            cipher: XChaCha20Poly1305::new(key),
            aad: [prefix.as_bytes(), &id].concat(),
        }
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({}, [REDACTED])", self.prefix)
    }
}

/// A fresh nonce from the OS generator. Every replica seals with the same
/// key, so a repeated nonce would let its holder forge tokens: a user-space
/// generator is not enough, since a forked process or a VM restored from a
/// snapshot replays its state, while the kernel's is reseeded.
fn nonce() -> Result<[u8; NONCE_BYTES], Error> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut nonce)
        .map_err(|_| Error::Internal)?;
    Ok(nonce)
}

/// A nonce drawn from the OS generator together with other randomness (see
/// [`super::token::FreshToken`]); not `Clone`, and consumed by sealing.
pub(super) struct Nonce(pub(super) [u8; NONCE_BYTES]);

impl Sealer {
    pub fn new(prefix: &'static str, max_chars: usize, keys: &PurposeKeys) -> Self {
        let (id, key) = keys.sealing();
        Self {
            prefix,
            max_chars,
            sealing: RingKey::new(prefix, id, key),
            opening: keys
                .iter()
                .map(|(id, key)| RingKey::new(prefix, *id, key))
                .collect(),
        }
    }

    /// The sealed text of `plain`.
    pub fn seal(&self, plain: &[u8]) -> Result<String, Error> {
        self.seal_with(plain, Nonce(nonce()?))
    }

    /// The sealed text of `plain`, under a nonce drawn for it.
    pub(super) fn seal_with(&self, plain: &[u8], nonce: Nonce) -> Result<String, Error> {
        let Nonce(nonce) = nonce;
        let RingKey { id, cipher, aad } = &self.sealing;
        let header = KEY_ID_BYTES + NONCE_BYTES;
        let mut bytes = Vec::with_capacity(header + plain.len() + TAG_BYTES);
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(plain);
        let tag = cipher
            .seal_in_place(&nonce, aad, &mut bytes[header..])
            .ok_or(Error::Internal)?;
        bytes.extend_from_slice(&tag);
        let mut text = String::with_capacity(self.prefix.len() + bytes.len().div_ceil(3) * 4);
        text.push_str(self.prefix);
        URL_SAFE_NO_PAD.encode_string(&bytes, &mut text);
        // Never make what `open` would refuse.
        if text.len() > self.max_chars {
            return Err(Error::Internal);
        }
        Ok(text)
    }

    /// What a text this sealer (with a key still in its ring) sealed holds;
    /// `None` for anything else.
    pub fn open(&self, text: &str) -> Option<Vec<u8>> {
        if text.len() > self.max_chars {
            return None;
        }
        let mut bytes = URL_SAFE_NO_PAD
            .decode(text.strip_prefix(self.prefix)?)
            .ok()?;
        let (id, rest) = bytes.split_first_chunk_mut::<KEY_ID_BYTES>()?;
        let (nonce, sealed) = rest.split_first_chunk_mut::<NONCE_BYTES>()?;
        let key = self.opening.iter().find(|key| key.id == *id)?;
        let plain = key.cipher.open_in_place(nonce, &key.aad, sealed)?.len();
        bytes.drain(..KEY_ID_BYTES + NONCE_BYTES);
        bytes.truncate(plain);
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_prefix_is_bound_in() {
        let keys = PurposeKeys::fixed([5; 32]);
        let a = Sealer::new("a_", 100, &keys);
        let b = Sealer::new("b_", 100, &keys);
        let text = a.seal(b"x").unwrap();
        assert_eq!(a.open(&text).unwrap(), b"x");
        assert!(b.open(&text.replacen("a_", "b_", 1)).is_none());
        assert!(a.open(&format!("{text}{}", "A".repeat(100))).is_none());
        assert!(a.seal(&[0; 100]).is_err(), "longer than it may be");
    }

    /// The layout of a sealed text, rebuilt with the portable
    /// `chacha20poly1305` crate: prefix, then base64url of the key ID, the
    /// nonce and the ciphertext with its tag, the prefix and key ID bound
    /// in as additional data. Texts already handed out depend on it.
    #[test]
    fn a_sealed_text_keeps_its_layout() {
        use chacha20poly1305::{KeyInit, XNonce, aead::Aead};
        let keys = PurposeKeys::fixed([5; 32]);
        let (id, key) = keys.sealing();
        let sealer = Sealer::new("t_", 200, &keys);
        let text = sealer.seal_with(b"hello", Nonce([7; NONCE_BYTES])).unwrap();
        let sealed = chacha20poly1305::XChaCha20Poly1305::new(&(*key).into())
            .encrypt(
                &XNonce::from([7; NONCE_BYTES]),
                chacha20poly1305::aead::Payload {
                    msg: b"hello",
                    aad: &[b"t_".as_slice(), &id].concat(),
                },
            )
            .unwrap();
        let expected = format!(
            "t_{}",
            URL_SAFE_NO_PAD.encode([id.as_slice(), &[7; NONCE_BYTES], &sealed].concat())
        );
        assert_eq!(text, expected);
        assert_eq!(sealer.open(&expected).unwrap(), b"hello");
    }

    proptest! {
        /// Whatever fits opens to exactly what was sealed, and any one
        /// changed character makes it unreadable.
        #[test]
        fn what_is_sealed_opens_unchanged_and_only_unaltered(
            plain in proptest::collection::vec(any::<u8>(), 0..40),
            at in any::<usize>(),
        ) {
            let sealer = Sealer::new("t_", 200, &PurposeKeys::fixed([5; 32]));
            let text = sealer.seal(&plain).unwrap();
            prop_assert!(text.starts_with("t_"));
            prop_assert_eq!(sealer.open(&text), Some(plain));
            let mut altered: Vec<char> = text.chars().collect();
            let i = 2 + at % (altered.len() - 2);
            altered[i] = if altered[i] == 'A' { 'B' } else { 'A' };
            prop_assert_eq!(sealer.open(&altered.into_iter().collect::<String>()), None);
        }
    }
}
