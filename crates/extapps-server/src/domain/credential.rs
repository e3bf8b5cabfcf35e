//! Generated credentials: client secrets, caller keys, and the codes of user
//! grants.
//!
//! A credential is a recognizable prefix, 256 bits from the OS CSPRNG in
//! base64url (after the 128-bit ID of its grant, for the kinds bound to
//! one), and a CRC-32 checksum: scanners can find leaked ones by their
//! shape, and a mistyped one is rejected without touching the database. The
//! value lives in a `SecretString`, whose `Debug` prints `[REDACTED]`.

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version,
    password_hash::phc::Output,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::error::Error;

/// What a credential is for; each kind has its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ClientSecret,
    CallerKey,
    /// An authorization code, bound to its grant.
    AuthorizationCode,
}

impl CredentialKind {
    pub fn prefix(self) -> &'static str {
        match self {
            CredentialKind::ClientSecret => "extapps_cs_",
            CredentialKind::CallerKey => "extapps_key_",
            CredentialKind::AuthorizationCode => "extapps_ac_",
        }
    }

    /// Bytes of the grant ID before the random part.
    fn bound_bytes(self) -> usize {
        match self {
            CredentialKind::ClientSecret | CredentialKind::CallerKey => 0,
            CredentialKind::AuthorizationCode => 16,
        }
    }

    /// Characters between the prefix and the checksum.
    fn body_chars(self) -> usize {
        // Unpadded base64.
        (4 * (self.bound_bytes() + RANDOM_BYTES)).div_ceil(3)
    }
}

const RANDOM_BYTES: usize = 32;
const CHECKSUM_CHARS: usize = 8;

/// Makes a new credential of `kind`.
pub fn generate(kind: CredentialKind) -> Result<SecretString, Error> {
    generate_after(kind, &[])
}

/// Makes a new credential of a kind bound to a grant, carrying its ID.
pub fn generate_for_grant(kind: CredentialKind, grant: &uuid::Uuid) -> Result<SecretString, Error> {
    generate_after(kind, grant.as_bytes())
}

fn generate_after(kind: CredentialKind, leading: &[u8]) -> Result<SecretString, Error> {
    if leading.len() != kind.bound_bytes() {
        return Err(Error::Internal);
    }
    let mut random = [0u8; RANDOM_BYTES];
    rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut random).map_err(|e| {
        tracing::error!(error = %e, "the OS random number generator failed");
        Error::Internal
    })?;
    let mut value = String::with_capacity(kind.prefix().len() + kind.body_chars() + CHECKSUM_CHARS);
    value.push_str(kind.prefix());
    URL_SAFE_NO_PAD.encode_string([leading, &random].concat(), &mut value);
    Ok(SecretString::from(with_checksum(value)))
}

/// `value` with its CRC-32 checksum appended, as every credential ends.
pub fn with_checksum(mut value: String) -> String {
    let checksum = crc32fast::hash(value.as_bytes());
    value.push_str(&format!("{checksum:08x}"));
    value
}

/// What precedes a valid checksum at the end of `value`; `None` if the
/// checksum is missing or wrong (a typo, or not a credential).
pub fn checked(value: &str) -> Option<&str> {
    let (signed, checksum) = value.split_at_checked(value.len().checked_sub(CHECKSUM_CHARS)?)?;
    let valid = checksum
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && u32::from_str_radix(checksum, 16).is_ok_and(|c| c == crc32fast::hash(signed.as_bytes()));
    valid.then_some(signed)
}

/// Whether `value` has the shape and checksum of a credential of `kind`.
pub fn is_well_formed(kind: CredentialKind, value: &str) -> bool {
    let Some(body) = value.strip_prefix(kind.prefix()) else {
        return false;
    };
    body.len() == kind.body_chars() + CHECKSUM_CHARS && body.is_ascii() && checked(value).is_some()
}

/// The grant a well-formed credential of a bound `kind` carries.
pub fn grant_of(kind: CredentialKind, value: &str) -> Option<uuid::Uuid> {
    if kind.bound_bytes() == 0 || !is_well_formed(kind, value) {
        return None;
    }
    let body = &value[kind.prefix().len()..value.len() - CHECKSUM_CHARS];
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    let (grant, _) = bytes.split_first_chunk::<16>()?;
    Some(uuid::Uuid::from_bytes(*grant))
}

/// Constant-time equality of two digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// SHA-256 of a high-entropy credential, hex: enough to store a caller key
/// (256 random bits cannot be guessed) and cheap enough to check on every call.
pub fn digest(value: &SecretString) -> String {
    digest_str(value.expose_secret())
}

/// [`digest`] of a credential not (yet) wrapped in a `SecretString`.
pub fn digest_str(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// argon2id parameters for generated secrets: the least memory and passes
/// argon2id allows (8 KiB, 1 pass, 1 lane; ~11 µs a hash here). A secret
/// carries 256 random bits, so no cost makes guessing it feasible; a
/// password-grade cost (19 MiB, ~15 ms) would only hand strangers CPU to
/// burn. The hash stays a salted argon2id PHC string, as the spec asks.
const SECRET_M_COST: u32 = 8;
const SECRET_T_COST: u32 = 1;
const SECRET_P_COST: u32 = 1;

/// How every PHC string made with today's parameters begins.
pub const CURRENT_PHC_PREFIX: &str = "$argon2id$v=19$m=8,t=1,p=1$";

fn argon2() -> Result<Argon2<'static>, Error> {
    let params = Params::new(SECRET_M_COST, SECRET_T_COST, SECRET_P_COST, None).map_err(|e| {
        tracing::error!(error = %e, "invalid argon2 parameters");
        Error::Internal
    })?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a client secret to a PHC string with today's parameters: cheap
/// enough to run on the request's own thread.
pub fn hash_secret(secret: &SecretString) -> Result<String, Error> {
    argon2()?
        .hash_password(secret.expose_secret().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "hashing a secret failed");
            Error::Internal
        })
}

/// Whether `phc` was made with today's parameters. A hash made with
/// others (the password-grade ones of earlier versions) costs milliseconds
/// to verify, so it is verified on the bounded pool, and replaced after its
/// next successful use.
pub fn is_current_hash(phc: &str) -> bool {
    phc.starts_with(CURRENT_PHC_PREFIX)
}

/// Whether `secret` matches the PHC string, whatever its parameters. Call
/// it for a hash of other parameters only from a bounded blocking thread.
pub fn verify_secret(secret: &SecretString, phc: &str) -> bool {
    verify_secret_in(secret, phc, &mut Vec::new())
}

/// [`verify_secret`] with working memory that stays with the calling thread:
/// for the few dedicated verification threads, each holding one buffer.
pub fn verify_secret_on_this_thread(secret: &SecretString, phc: &str) -> bool {
    thread_local! {
        static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    MEMORY.with(|memory| match memory.try_borrow_mut() {
        Ok(mut memory) => verify_secret_in(secret, phc, &mut memory),
        Err(_) => verify_secret(secret, phc),
    })
}

/// [`verify_secret`], with argon2id's working memory (19 MiB) in `memory`,
/// kept by the caller for the next run. A thread that verifies again and
/// again then holds one buffer for good, instead of leaving the allocator
/// to decide whether 19 MiB freed each time goes back to the system (glibc's
/// adaptive mmap threshold keeps it).
pub fn verify_secret_in(secret: &SecretString, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Some(Ok(version)), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        hash.version.map(Version::try_from),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    if memory.len() != params.block_count() {
        memory.clear();
        memory.resize(params.block_count(), Block::default());
    }
    let mut computed = [0u8; 64];
    let Some(out) = computed.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            secret.expose_secret().as_bytes(),
            salt,
            out,
            memory.as_mut_slice(),
        )
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(out).is_ok_and(|computed| computed == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_are_well_formed_and_distinct() {
        let a = generate(CredentialKind::ClientSecret).unwrap();
        let b = generate(CredentialKind::ClientSecret).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(is_well_formed(
            CredentialKind::ClientSecret,
            a.expose_secret()
        ));
        assert!(!is_well_formed(
            CredentialKind::CallerKey,
            a.expose_secret()
        ));
        assert_eq!(a.expose_secret().len(), "extapps_cs_".len() + 43 + 8);
    }

    #[test]
    fn grant_bound_credentials_carry_their_grant() {
        let grant = uuid::Uuid::new_v4();
        {
            let kind = CredentialKind::AuthorizationCode;
            let value = generate_for_grant(kind, &grant).unwrap();
            assert_eq!(grant_of(kind, value.expose_secret()), Some(grant));
            assert_eq!(value.expose_secret().len(), kind.prefix().len() + 64 + 8);
            let other = generate_for_grant(kind, &grant).unwrap();
            assert_ne!(value.expose_secret(), other.expose_secret());
            // Checked like every credential: no grant from a typo.
            let typo = value.expose_secret().replacen("_", "-", 2);
            assert_eq!(grant_of(kind, &typo), None);
        }
        assert!(generate_for_grant(CredentialKind::ClientSecret, &grant).is_err());
        let secret = generate(CredentialKind::ClientSecret).unwrap();
        assert_eq!(
            grant_of(CredentialKind::ClientSecret, secret.expose_secret()),
            None
        );
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0x0a, 0xab, 0xff]), "000aabff");
    }

    #[test]
    fn a_typo_breaks_the_checksum() {
        let key = generate(CredentialKind::CallerKey).unwrap();
        let mut typo = key.expose_secret().to_owned().into_bytes();
        let i = CredentialKind::CallerKey.prefix().len() + 5;
        typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
        assert!(!is_well_formed(
            CredentialKind::CallerKey,
            std::str::from_utf8(&typo).unwrap()
        ));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = generate(CredentialKind::ClientSecret).unwrap();
        let shown = format!("{secret:?}");
        assert!(shown.contains("REDACTED"));
        assert!(!shown.contains(&secret.expose_secret()[12..30]));
    }

    #[test]
    fn hashes_verify_only_the_right_secret() {
        let secret = generate(CredentialKind::ClientSecret).unwrap();
        let other = generate(CredentialKind::ClientSecret).unwrap();
        let phc = hash_secret(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(is_current_hash(&phc));
        assert!(verify_secret(&secret, &phc));
        assert!(!verify_secret(&other, &phc));
        // The same with memory kept between runs, and a broken hash.
        let mut memory = Vec::new();
        assert!(verify_secret_in(&secret, &phc, &mut memory));
        assert!(!verify_secret_in(&other, &phc, &mut memory));
        assert!(verify_secret_in(&secret, &phc, &mut memory));
        assert_eq!(memory.len(), 8);
        assert!(!verify_secret_in(
            &secret,
            &phc[..phc.len() - 4],
            &mut memory
        ));
        assert!(!verify_secret_in(&secret, "not a hash", &mut memory));
        assert!(!phc.contains(&secret.expose_secret()[11..]));
    }
}
