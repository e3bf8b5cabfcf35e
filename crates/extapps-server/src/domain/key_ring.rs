//! The server's key ring: the keys that seal access tokens, sign page tokens,
//! key the verified-secret cache and seal idempotency records. They come
//! from configuration (a key file or the environment), never from the
//! database, so a copy of the database alone cannot mint or open anything.
//!
//! Each key has a short random ID. The newest key that is not staged seals;
//! every key of the ring opens, and what is sealed names its key's ID, so
//! opening never tries keys in turn. Rotating adds a key (new tokens use it,
//! live tokens keep working); a staged key only opens until it is promoted,
//! so replicas can all learn a key before any of them seals with it;
//! retiring a key ends what it sealed (access tokens, and refresh tokens
//! not rotated since: wait the refresh idle lifetime before retiring a key
//! that is not compromised). Each use gets its own key,
//! derived from the ring key with HKDF, so no two uses share key material.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;

use super::error::Error;

/// Bytes of a key ID, as it travels in tokens.
pub const KEY_ID_BYTES: usize = 4;

/// The ID of a ring key.
pub type KeyId = [u8; KEY_ID_BYTES];

/// What a derived key is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    AccessToken,
    PageToken,
    VerifiedSecrets,
    Idempotency,
    AuthorizationRequest,
    RefreshToken,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::AccessToken => b"extapps access token v2",
            Purpose::PageToken => b"extapps page token v2",
            Purpose::VerifiedSecrets => b"extapps verified secrets v2",
            Purpose::Idempotency => b"extapps idempotency v2",
            Purpose::AuthorizationRequest => b"extapps authorization request v1",
            Purpose::RefreshToken => b"extapps refresh token v1",
        }
    }
}

/// One key of the ring.
#[derive(Clone)]
struct RingKey {
    id: KeyId,
    created: OffsetDateTime,
    /// Opens but does not seal yet.
    staged: bool,
    material: [u8; 32],
}

/// The whole ring; the last key not staged seals.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids())
            .field("material", &"[REDACTED]")
            .finish()
    }
}

/// The ring as written to a key file (TOML).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    staged: bool,
    material: String,
}

const HEADER: &str = "\
# extapps key ring: the keys that seal access tokens. Keep it secret (mode
# 0600) and give every replica the same file. The last key that is not
# staged seals; every key opens. Rotate with `extapps-server key-ring rotate`.
";

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut bytes).map_err(|e| {
        tracing::error!(error = %e, "the OS random number generator failed");
        Error::Internal
    })?;
    Ok(bytes)
}

/// The hexadecimal form of a key ID.
pub fn show_id(id: &KeyId) -> String {
    super::credential::hex(id)
}

impl KeyRing {
    /// A ring of one fresh key.
    pub fn generate(now: OffsetDateTime) -> Result<Self, Error> {
        Self { keys: Vec::new() }.rotated(now, false)
    }

    /// This ring with a fresh key added, which seals from now on, or, if
    /// `staged`, only opens until promoted.
    pub fn rotated(&self, now: OffsetDateTime, staged: bool) -> Result<Self, Error> {
        let mut id: KeyId = random()?;
        while self.keys.iter().any(|k| k.id == id) {
            id = random()?;
        }
        let mut keys = self.keys.clone();
        keys.push(RingKey {
            id,
            created: now,
            staged,
            material: random()?,
        });
        Ok(Self { keys })
    }

    /// This ring with the staged key `id` sealing from now on.
    pub fn promoted(&self, id: &str) -> Result<Self, String> {
        let position = self.position(id)?;
        if !self.keys[position].staged {
            return Err(format!(
                "`{id}` is not staged: only a staged key can be promoted"
            ));
        }
        let mut keys = self.keys.clone();
        let mut key = keys.remove(position);
        key.staged = false;
        keys.push(key);
        Ok(Self { keys })
    }

    fn position(&self, id: &str) -> Result<usize, String> {
        let wanted = id.trim().to_ascii_lowercase();
        self.keys
            .iter()
            .position(|k| show_id(&k.id) == wanted)
            .ok_or_else(|| format!("the key ring has no key `{id}`"))
    }

    fn sealing_position(&self) -> Option<usize> {
        self.keys.iter().rposition(|k| !k.staged)
    }

    /// This ring without the key `id` (hexadecimal). The sealing key cannot
    /// be retired: rotate first.
    pub fn retired(&self, id: &str) -> Result<Self, String> {
        let position = self.position(id)?;
        if Some(position) == self.sealing_position() {
            return Err(format!(
                "`{id}` is the key that seals new tokens: rotate first, then retire it"
            ));
        }
        let mut keys = self.keys.clone();
        keys.remove(position);
        Ok(Self { keys })
    }

    /// The IDs (hexadecimal) and creation times, in ring order.
    pub fn ids(&self) -> Vec<(String, OffsetDateTime)> {
        self.keys
            .iter()
            .map(|k| (show_id(&k.id), k.created))
            .collect()
    }

    /// Each key's ID, creation time and state (`seals`, `opens`, `staged`).
    pub fn describe(&self) -> Vec<(String, OffsetDateTime, &'static str)> {
        let sealing = self.sealing_position();
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let state = match (Some(i) == sealing, k.staged) {
                    (true, _) => "seals",
                    (false, true) => "staged",
                    (false, false) => "opens",
                };
                (show_id(&k.id), k.created, state)
            })
            .collect()
    }

    /// Reads a key file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: KeyFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut keys = Vec::with_capacity(file.keys.len());
        for (i, entry) in file.keys.into_iter().enumerate() {
            let id: KeyId = parse_hex(&entry.id)
                .ok_or_else(|| format!("keys[{i}].id must be {} hex digits", 2 * KEY_ID_BYTES))?;
            let material: [u8; 32] = URL_SAFE_NO_PAD
                .decode(entry.material.trim())
                .ok()
                .and_then(|m| m.try_into().ok())
                .ok_or_else(|| format!("keys[{i}].material must be 32 bytes in base64url"))?;
            if keys.iter().any(|k: &RingKey| k.id == id) {
                return Err(format!("keys[{i}].id `{}` is repeated", entry.id));
            }
            keys.push(RingKey {
                id,
                created: entry.created,
                staged: entry.staged,
                material,
            });
        }
        if keys.is_empty() {
            return Err("the key ring holds no key".into());
        }
        let ring = Self { keys };
        if ring.sealing_position().is_none() {
            return Err("every key is staged: promote one so that it seals".into());
        }
        Ok(ring)
    }

    /// The key file's text.
    pub fn to_toml(&self) -> Result<String, Error> {
        let file = KeyFile {
            keys: self
                .keys
                .iter()
                .map(|k| KeyEntry {
                    id: show_id(&k.id),
                    created: k.created,
                    staged: k.staged,
                    material: URL_SAFE_NO_PAD.encode(k.material),
                })
                .collect(),
        };
        let body = toml::to_string(&file).map_err(|_| Error::Internal)?;
        Ok(format!("{HEADER}\n{body}"))
    }

    /// The keys for one purpose.
    pub fn keys_for(&self, purpose: Purpose) -> Result<PurposeKeys, Error> {
        let derived = self
            .keys
            .iter()
            .map(|k| {
                let mut key = [0u8; 32];
                Hkdf::<Sha256>::new(Some(&k.id), &k.material)
                    .expand(purpose.label(), &mut key)
                    .map_err(|_| Error::Internal)?;
                Ok((k.id, key))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let sealing = *self
            .sealing_position()
            .and_then(|i| derived.get(i))
            .ok_or(Error::Internal)?;
        Ok(PurposeKeys {
            sealing,
            all: derived,
        })
    }
}

fn parse_hex(text: &str) -> Option<KeyId> {
    if text.len() != 2 * KEY_ID_BYTES || !text.is_ascii() {
        return None;
    }
    let mut id = [0u8; KEY_ID_BYTES];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

/// The derived keys of one purpose: the newest seals, any opens.
#[derive(Clone)]
pub struct PurposeKeys {
    sealing: (KeyId, [u8; 32]),
    /// Every key, the sealing one included.
    all: Vec<(KeyId, [u8; 32])>,
}

impl fmt::Debug for PurposeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PurposeKeys([REDACTED])")
    }
}

impl PurposeKeys {
    /// The key that seals, and its ID.
    pub fn sealing(&self) -> (KeyId, &[u8; 32]) {
        (self.sealing.0, &self.sealing.1)
    }

    /// The key with this ID, if the ring still holds it.
    pub fn get(&self, id: &KeyId) -> Option<&[u8; 32]> {
        self.all.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }

    /// Every key with its ID.
    pub fn iter(&self) -> impl Iterator<Item = &(KeyId, [u8; 32])> {
        self.all.iter()
    }

    /// A single key for tests and benchmarks.
    pub fn fixed(material: [u8; 32]) -> Self {
        let key = ([0; KEY_ID_BYTES], material);
        Self {
            sealing: key,
            all: vec![key],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    #[test]
    fn round_trips_through_the_key_file() {
        let ring = KeyRing::generate(now())
            .unwrap()
            .rotated(now(), false)
            .unwrap()
            .rotated(now(), true)
            .unwrap();
        let text = ring.to_toml().unwrap();
        let back = KeyRing::parse(&text).unwrap();
        assert_eq!(back.describe(), ring.describe());
        assert_eq!(
            ring.describe().iter().map(|d| d.2).collect::<Vec<_>>(),
            ["opens", "seals", "staged"]
        );
        let (a, b) = (
            ring.keys_for(Purpose::AccessToken).unwrap(),
            back.keys_for(Purpose::AccessToken).unwrap(),
        );
        assert_eq!(a.sealing().0, b.sealing().0);
        assert_eq!(a.sealing().1, b.sealing().1);
        assert!(!format!("{ring:?}").contains(&text[text.find("material").unwrap() + 12..][..20]));
    }

    #[test]
    fn the_newest_key_seals_and_every_key_opens() {
        let first = KeyRing::generate(now()).unwrap();
        let second = first.rotated(now(), false).unwrap();
        let old = first.keys_for(Purpose::AccessToken).unwrap();
        let new = second.keys_for(Purpose::AccessToken).unwrap();
        assert_ne!(old.sealing().0, new.sealing().0);
        assert_eq!(new.get(&old.sealing().0), Some(old.sealing().1));
        // Purposes never share a key.
        let page = second.keys_for(Purpose::PageToken).unwrap();
        assert_ne!(page.sealing().1, new.sealing().1);
        // Retiring the old key; the sealing key cannot be retired.
        let old_id = show_id(&old.sealing().0);
        let retired = second.retired(&old_id).unwrap();
        assert!(
            retired
                .keys_for(Purpose::AccessToken)
                .unwrap()
                .get(&old.sealing().0)
                .is_none()
        );
        assert!(
            retired
                .retired(&show_id(&new.sealing().0))
                .unwrap_err()
                .contains("rotate first")
        );
    }

    #[test]
    fn a_staged_key_opens_and_seals_only_once_promoted() {
        let ring = KeyRing::generate(now()).unwrap();
        let staged = ring.rotated(now(), true).unwrap();
        let before = ring.keys_for(Purpose::AccessToken).unwrap().sealing().0;
        let keys = staged.keys_for(Purpose::AccessToken).unwrap();
        assert_eq!(keys.sealing().0, before, "the staged key does not seal");
        let new_id = staged.ids()[1].0.clone();
        let new = keys.iter().find(|(id, _)| show_id(id) == new_id).unwrap().0;
        assert!(keys.get(&new).is_some(), "but it opens");
        assert!(
            staged
                .promoted(&staged.ids()[0].0)
                .unwrap_err()
                .contains("not staged")
        );
        let promoted = staged.promoted(&new_id.to_uppercase()).unwrap();
        assert_eq!(
            promoted.keys_for(Purpose::AccessToken).unwrap().sealing().0,
            new
        );
        let only_staged = ring
            .to_toml()
            .unwrap()
            .replace("[[keys]]\n", "[[keys]]\nstaged = true\n");
        assert!(
            KeyRing::parse(&only_staged)
                .unwrap_err()
                .contains("every key is staged")
        );
    }

    #[test]
    fn broken_key_files_are_refused_with_the_reason() {
        for (text, expected) in [
            ("keys = []", "no key"),
            ("nonsense", ""),
            (
                "[[keys]]\nid = \"zz\"\ncreated = \"2026-01-01T00:00:00Z\"\nmaterial = \"AAAA\"",
                "keys[0].id",
            ),
            (
                "[[keys]]\nid = \"00112233\"\ncreated = \"2026-01-01T00:00:00Z\"\nmaterial = \"AAAA\"",
                "keys[0].material",
            ),
        ] {
            let error = KeyRing::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
