//! XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 §2.3): HChaCha20 of the
//! key and the first 16 bytes of the 192-bit nonce makes a key for this one
//! message, which the IETF ChaCha20-Poly1305 AEAD (RFC 8439) then uses with
//! the nonce's last 8 bytes behind four zero bytes.
//!
//! The AEAD is ring's, whose assembly seals a token in a fraction of the
//! time the portable implementation takes on this code's hot path (both are
//! measured in `BENCHMARKS.md`); HChaCha20 comes from the `chacha20` crate.
//! The output is byte for byte what the `chacha20poly1305` crate's
//! `XChaCha20Poly1305` makes, so text sealed by either opens with the other
//! (tested below).

use chacha20::{R20, hchacha};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// Bytes of the extended nonce.
pub const NONCE_BYTES: usize = 24;
/// Bytes of the authentication tag after the ciphertext.
pub const TAG_BYTES: usize = 16;

/// One XChaCha20-Poly1305 key.
#[derive(Clone)]
pub struct XChaCha20Poly1305 {
    key: chacha20::Key,
}

impl std::fmt::Debug for XChaCha20Poly1305 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XChaCha20Poly1305([REDACTED])")
    }
}

impl XChaCha20Poly1305 {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { key: (*key).into() }
    }

    /// The key and nonce of the one message sealed under `nonce`.
    fn message_key(&self, nonce: &[u8; NONCE_BYTES]) -> Option<(LessSafeKey, Nonce)> {
        let (head, tail) = nonce.split_first_chunk::<16>()?;
        let subkey = hchacha::<R20>(&self.key, &(*head).into());
        let key = UnboundKey::new(&CHACHA20_POLY1305, &subkey).ok()?;
        let mut inner = [0u8; 12];
        inner[4..].copy_from_slice(tail);
        Some((LessSafeKey::new(key), Nonce::assume_unique_for_key(inner)))
    }

    /// Encrypts `in_out` in place and returns the tag. The caller never
    /// uses a nonce twice under one key: each is 192 random bits.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Option<[u8; TAG_BYTES]> {
        let (key, nonce) = self.message_key(nonce)?;
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
            .ok()?;
        tag.as_ref().try_into().ok()
    }

    /// Checks and decrypts `in_out` (ciphertext and tag) in place; the
    /// plaintext is the returned prefix of it.
    pub fn open_in_place<'a>(
        &self,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Option<&'a mut [u8]> {
        if in_out.len() < TAG_BYTES {
            return None;
        }
        let (key, nonce) = self.message_key(nonce)?;
        key.open_in_place(nonce, Aad::from(aad), in_out).ok()
    }
}

#[cfg(test)]
mod tests {
    use chacha20poly1305::{
        KeyInit, XNonce,
        aead::{Aead, Payload},
    };
    use proptest::prelude::*;

    use super::*;

    /// The test vector of draft-irtf-cfrg-xchacha-03 §A.3.1.
    #[test]
    fn the_draft_test_vector_seals_and_opens() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let key: [u8; 32] = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
            .try_into()
            .unwrap();
        let nonce: [u8; 24] = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
            .try_into()
            .unwrap();
        let expected = hex(concat!(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
            "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
            "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
            "21f9664c97637da9768812f615c68b13b52e",
            "c0875924c1c7987947deafd8780acf49",
        ));
        let cipher = XChaCha20Poly1305::new(&key);
        let mut sealed = plain.to_vec();
        let tag = cipher.seal_in_place(&nonce, &aad, &mut sealed).unwrap();
        sealed.extend_from_slice(&tag);
        assert_eq!(sealed, expected);
        assert_eq!(
            cipher.open_in_place(&nonce, &aad, &mut sealed).unwrap(),
            plain.as_slice()
        );
    }

    proptest! {
        /// The same bytes as the portable implementation, both ways, and a
        /// changed byte, key, nonce or additional data opens nothing.
        #[test]
        fn it_is_the_portable_cipher_byte_for_byte(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 24]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..40),
            plain in proptest::collection::vec(any::<u8>(), 0..300),
            flip in any::<usize>(),
        ) {
            let portable = chacha20poly1305::XChaCha20Poly1305::new(&key.into());
            let expected = portable
                .encrypt(&XNonce::from(nonce), Payload { msg: &plain, aad: &aad })
                .unwrap();
            let cipher = XChaCha20Poly1305::new(&key);
            let mut sealed = plain.clone();
            let tag = cipher.seal_in_place(&nonce, &aad, &mut sealed).unwrap();
            sealed.extend_from_slice(&tag);
            prop_assert_eq!(&sealed, &expected);
            let mut opened = expected.clone();
            prop_assert_eq!(
                cipher.open_in_place(&nonce, &aad, &mut opened).map(|p| p.to_vec()),
                Some(plain.clone())
            );

            let mut altered = expected.clone();
            let at = flip % altered.len();
            altered[at] ^= 1;
            prop_assert!(cipher.open_in_place(&nonce, &aad, &mut altered).is_none());
            let mut other_nonce = nonce;
            other_nonce[flip % 24] ^= 1;
            prop_assert!(cipher.open_in_place(&other_nonce, &aad, &mut expected.clone()).is_none());
            let mut other_key = key;
            other_key[flip % 32] ^= 1;
            prop_assert!(
                XChaCha20Poly1305::new(&other_key)
                    .open_in_place(&nonce, &aad, &mut expected.clone())
                    .is_none()
            );
            prop_assert!(cipher.open_in_place(&nonce, b"other", &mut expected.clone()).is_none());
        }
    }
}
