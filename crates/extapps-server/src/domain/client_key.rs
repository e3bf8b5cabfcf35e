//! Public keys an administrator registers on a confidential application, so
//! that it authenticates with `private_key_jwt` (RFC 7523 §2.2) instead of a
//! shared secret: a JWK (RFC 7517) holding only the public half of a key of
//! one of the signing algorithms the server accepts, known by its RFC 7638
//! thumbprint. The algorithm is a property of the key, fixed here: an
//! assertion is verified with its key's algorithm only, never with one its
//! header names (so never `none`, and never HMAC keyed with a public key).

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash,
};

use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{Error, FieldViolation, Reason};

/// Bytes of a JWK's text: a 4096-bit RSA key takes under 1 KiB.
pub const MAX_JWK_BYTES: usize = 8 * 1024;
/// The smallest RSA modulus accepted (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest, which bounds the cost of a verification.
pub const MAX_RSA_BITS: usize = 8192;
/// Keys registered at once per application.
pub const MAX_KEYS: usize = 10;

/// Members that only a private (or symmetric) key has: a JWK holding any is
/// refused, so that a private key pasted by mistake is not stored.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The signing algorithms a registered key may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
}

impl SigningAlgorithm {
    /// The JWA name (RFC 7518, RFC 8037).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::EdDsa => "EdDSA",
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Ps256 => "PS256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            SigningAlgorithm::Es256,
            SigningAlgorithm::EdDsa,
            SigningAlgorithm::Rs256,
            SigningAlgorithm::Ps256,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    /// Every algorithm, for the server's metadata.
    pub const ALL: [SigningAlgorithm; 4] = [
        SigningAlgorithm::Es256,
        SigningAlgorithm::EdDsa,
        SigningAlgorithm::Rs256,
        SigningAlgorithm::Ps256,
    ];
}

/// A public key fit to verify an application's assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: SigningAlgorithm,
    /// RFC 7638 thumbprint (SHA-256, base64url): the key's identity, the
    /// same whoever computes it.
    pub thumbprint: String,
    /// The JWK as stored: its public members only, with `alg` set.
    pub jwk: String,
}

/// A registered key, ready to verify the assertions signed with it.
#[derive(Clone)]
pub struct VerifyingKey {
    /// Also the credential its tokens record.
    pub id: Uuid,
    pub algorithm: SigningAlgorithm,
    /// The JWK's `kid` member, if it has one.
    pub kid: Option<String>,
    pub thumbprint: String,
    pub expire_time: Option<OffsetDateTime>,
    decoding: jsonwebtoken::DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("thumbprint", &self.thumbprint)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// A stored key, read again with the checks it was registered under;
    /// `None` if it no longer passes them.
    pub fn from_stored(id: Uuid, jwk: &str, expire_time: Option<OffsetDateTime>) -> Option<Self> {
        let key = parse_public_jwk("jwk", jwk).ok()?;
        let parsed: Jwk = serde_json::from_str(&key.jwk).ok()?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&parsed).ok()?;
        Some(Self {
            id,
            algorithm: key.algorithm,
            kid: parsed.common.key_id,
            thumbprint: key.thumbprint,
            expire_time,
            decoding,
        })
    }

    /// Whether this key works at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.expire_time.is_none_or(|end| end > now)
    }

    /// Whether an assertion header's `kid` names this key: by its own
    /// `kid` member or by its thumbprint.
    pub fn is_named(&self, kid: &str) -> bool {
        self.kid.as_deref() == Some(kid) || self.thumbprint == kid
    }

    /// Whether `signature` (base64url) signs `signed` under this key, with
    /// the key's own algorithm.
    pub fn verifies(&self, signed: &str, signature: &str) -> bool {
        let algorithm = match self.algorithm {
            SigningAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            SigningAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            SigningAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlgorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
        };
        jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &self.decoding, algorithm)
            .unwrap_or(false)
    }
}

/// The refusal of one key too many.
pub fn check_key_count(keys: usize) -> Result<(), Error> {
    if keys > MAX_KEYS {
        return Err(Error::FailedPrecondition {
            reason: Reason::TooManyKeys,
            message: format!(
                "an application holds at most {MAX_KEYS} keys: delete one before adding another"
            ),
        });
    }
    Ok(())
}

/// A key the application does not hold.
pub fn key_not_found() -> Error {
    Error::NotFound {
        reason: Reason::ApplicationKeyNotFound,
        message: "the application has no such key".into(),
    }
}

/// A key the application holds already.
pub fn key_already_registered() -> Error {
    Error::AlreadyExists {
        reason: Reason::KeyAlreadyRegistered,
        message: "the application already holds this key (the same RFC 7638 thumbprint)".into(),
    }
}

/// Reads the JWK an administrator gave in `field` and checks that it is a
/// public signing key of an accepted algorithm and size.
pub fn parse_public_jwk(field: &str, text: &str) -> Result<PublicKey, FieldViolation> {
    let refuse = |why: &str| FieldViolation::new(field, why);
    if text.len() > MAX_JWK_BYTES {
        return Err(refuse("must be at most 8 KiB of JSON"));
    }
    let members: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| refuse("must be one JWK: a JSON object (RFC 7517), not a key set"))?;
    if members.contains_key("keys") {
        return Err(refuse(
            "must be one JWK, not a JWK set: register its keys one by one",
        ));
    }
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
        return Err(refuse(&if *private == "k" {
            "is a symmetric key: only public keys (EC P-256, Ed25519, RSA) are accepted".to_owned()
        } else {
            format!(
                "holds private key material (`{private}`): register only the public half, \
                 and keep the private key with the application"
            )
        }));
    }
    let jwk: Jwk = serde_json::from_value(serde_json::Value::Object(members)).map_err(|_| {
        refuse("must be a JWK of type EC (P-256), OKP (Ed25519) or RSA with its public members")
    })?;
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err(refuse("must be a signing key (`use` absent or `sig`)"));
    }
    let named = jwk.common.key_algorithm;
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => {
            if ec.curve != EllipticCurve::P256 {
                return Err(refuse("an EC key must be on P-256 (ES256)"));
            }
            let (Some(x), Some(y)) = (base64url(&ec.x), base64url(&ec.y)) else {
                return Err(refuse("an EC P-256 key needs `x` and `y` in base64url"));
            };
            if x.len() != 32 || y.len() != 32 {
                return Err(refuse("an EC P-256 key needs `x` and `y` of 32 bytes each"));
            }
            let point = [&[4u8][..], &x, &y].concat();
            if aws_lc_rs::signature::ParsedPublicKey::new(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .is_err()
            {
                return Err(refuse("is not a point on P-256: not a usable public key"));
            }
            agree(named, KeyAlgorithm::ES256, SigningAlgorithm::Es256)
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err(refuse("an OKP key must be Ed25519 (EdDSA)"));
            }
            if decoded_len(&okp.x) != Some(32) {
                return Err(refuse("an Ed25519 key needs an `x` of 32 bytes"));
            }
            agree(named, KeyAlgorithm::EdDSA, SigningAlgorithm::EdDsa)
        }
        AlgorithmParameters::RSA(rsa) => {
            // RFC 7518 section 6.3.1: the fewest octets, so that one key has
            // one thumbprint; and an RSA modulus and exponent are odd.
            let (Some(n), Some(e)) = (base64url(&rsa.n), base64url(&rsa.e)) else {
                return Err(refuse("an RSA key needs `n` and `e` in base64url"));
            };
            if n.first() == Some(&0) || e.first() == Some(&0) {
                return Err(refuse(
                    "an RSA key's `n` and `e` must not begin with zero octets (RFC 7518 section 6.3.1)",
                ));
            }
            let bits = modulus_bits(&rsa.n)
                .ok_or_else(|| refuse("an RSA key needs `n` and `e` in base64url"))?;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(refuse(&format!(
                    "an RSA key must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits; this one has {bits}"
                )));
            }
            if n.last().is_none_or(|b| b % 2 == 0)
                || e.last().is_none_or(|b| b % 2 == 0)
                || (e.len() == 1 && e[0] < 3)
            {
                return Err(refuse(
                    "is not a usable RSA public key (`n` and `e` odd, `e` at least 3)",
                ));
            }
            if decoded_len(&rsa.e).is_none_or(|len| len == 0 || len > 4) {
                return Err(refuse("an RSA key needs an `e` of 1 to 4 bytes"));
            }
            match named {
                Some(KeyAlgorithm::RS256) => Some(SigningAlgorithm::Rs256),
                Some(KeyAlgorithm::PS256) => Some(SigningAlgorithm::Ps256),
                _ => {
                    return Err(refuse(
                        "an RSA key must name its algorithm: `alg` RS256 or PS256",
                    ));
                }
            }
        }
        // Symmetric keys were refused above (`k`); anything else is unknown.
        _ => None,
    }
    .ok_or_else(|| {
        refuse("names an `alg` other than its key type's (ES256 for P-256, EdDSA for Ed25519)")
    })?;
    // The library's own check that the parameters make a usable key.
    jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| refuse("is not a usable public key"))?;
    let thumbprint = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| refuse("is not a usable public key"))?;
    let mut stored = jwk;
    stored.common.key_algorithm = Some(match algorithm {
        SigningAlgorithm::Es256 => KeyAlgorithm::ES256,
        SigningAlgorithm::EdDsa => KeyAlgorithm::EdDSA,
        SigningAlgorithm::Rs256 => KeyAlgorithm::RS256,
        SigningAlgorithm::Ps256 => KeyAlgorithm::PS256,
    });
    let jwk = serde_json::to_string(&stored).map_err(|_| refuse("is not a usable public key"))?;
    Ok(PublicKey {
        algorithm,
        thumbprint,
        jwk,
    })
}

/// The key type's algorithm, if the JWK names none or the same one.
fn agree(
    named: Option<KeyAlgorithm>,
    expected: KeyAlgorithm,
    algorithm: SigningAlgorithm,
) -> Option<SigningAlgorithm> {
    named.is_none_or(|n| n == expected).then_some(algorithm)
}

fn base64url(value: &str) -> Option<Vec<u8>> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.decode(value).ok()
}

fn decoded_len(value: &str) -> Option<usize> {
    base64url(value).map(|bytes| bytes.len())
}

/// The size of an RSA modulus in bits, leading zero bits not counted.
fn modulus_bits(n: &str) -> Option<usize> {
    let bytes = base64url(n)?;
    let first = bytes.iter().position(|b| *b != 0)?;
    let leading = usize::try_from(bytes[first].leading_zeros()).ok()?;
    Some((bytes.len() - first) * 8 - leading)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1.
    const RFC_7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    /// RFC 7517 Appendix A.1.
    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"sig","kid":"1"}"#;
    /// RFC 8037 Appendix A.2.
    const ED25519: &str =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    fn rsa(alg: &str) -> String {
        format!(r#"{{"kty":"RSA","n":"{RFC_7638_N}","e":"AQAB","alg":"{alg}","kid":"2011-04-29"}}"#)
    }

    #[test]
    fn accepted_keys_get_their_algorithm_and_rfc_7638_thumbprint() {
        let key = parse_public_jwk("jwk", &rsa("RS256")).unwrap();
        assert_eq!(key.algorithm, SigningAlgorithm::Rs256);
        assert_eq!(
            key.thumbprint,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let pss = parse_public_jwk("jwk", &rsa("PS256")).unwrap();
        assert_eq!(pss.algorithm, SigningAlgorithm::Ps256);
        assert_eq!(
            pss.thumbprint, key.thumbprint,
            "the thumbprint ignores `alg`"
        );

        // RFC 8037 Appendix A.3 gives this key's thumbprint.
        let ed = parse_public_jwk("jwk", ED25519).unwrap();
        assert_eq!(ed.algorithm, SigningAlgorithm::EdDsa);
        assert_eq!(ed.thumbprint, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert!(ed.jwk.contains(r#""alg":"EdDSA""#), "{}", ed.jwk);

        let ec = parse_public_jwk("jwk", EC).unwrap();
        assert_eq!(ec.algorithm, SigningAlgorithm::Es256);
        let stored: serde_json::Value = serde_json::from_str(&ec.jwk).unwrap();
        assert_eq!(stored["alg"], "ES256");
        assert_eq!(stored["kid"], "1");
        assert_eq!(
            parse_public_jwk("jwk", &ec.jwk).unwrap(),
            ec,
            "what is stored reads back"
        );
    }

    #[test]
    fn private_symmetric_weak_and_mislabelled_keys_are_refused() {
        let with = |base: &str, member: &str| {
            let mut value: serde_json::Value = serde_json::from_str(base).unwrap();
            let extra: serde_json::Value = serde_json::from_str(member).unwrap();
            for (k, v) in extra.as_object().unwrap() {
                value[k] = v.clone();
            }
            value.to_string()
        };
        let cases = [
            (
                with(EC, r#"{"d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}"#),
                "private",
            ),
            (
                with(
                    ED25519,
                    r#"{"d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#,
                ),
                "private",
            ),
            (r#"{"kty":"oct","k":"c2VjcmV0"}"#.to_owned(), "symmetric"),
            (with(EC, r#"{"alg":"HS256"}"#), "`alg`"),
            (with(EC, r#"{"alg":"RS256"}"#), "`alg`"),
            (with(ED25519, r#"{"alg":"ES256"}"#), "`alg`"),
            (with(EC, r#"{"crv":"P-384"}"#), "P-256"),
            (with(EC, r#"{"use":"enc"}"#), "signing"),
            (with(EC, r#"{"x":"AAAA"}"#), "32 bytes"),
            (rsa("RS512"), "RS256 or PS256"),
            (
                rsa("RS256").replace(r#","alg":"RS256""#, ""),
                "RS256 or PS256",
            ),
            (rsa("RS256").replace(RFC_7638_N, &RFC_7638_N[..172]), "bits"),
            (
                rsa("RS256").replace(RFC_7638_N, &format!("AA{RFC_7638_N}")),
                "zero octets",
            ),
            (rsa("RS256").replace("AQAB", "AQ"), "at least 3"),
            (
                with(EC, r#"{"y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#),
                "not a point",
            ),
            (format!(r#"{{"keys":[{EC}]}}"#), "not a JWK set"),
            ("not json".to_owned(), "JSON object"),
            (format!("{:width$}", EC, width = MAX_JWK_BYTES + 1), "8 KiB"),
        ];
        for (text, why) in cases {
            let refused = parse_public_jwk("jwk", &text).unwrap_err();
            assert_eq!(refused.field, "jwk");
            assert!(
                refused.description.contains(why),
                "{text}: {}",
                refused.description
            );
        }
    }

    #[test]
    fn modulus_size_counts_significant_bits() {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let n = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(modulus_bits(&n(&[0x80; 256])), Some(2048));
        assert_eq!(
            modulus_bits(&n(&[[0u8].as_slice(), &[0x80; 256]].concat())),
            Some(2048)
        );
        assert_eq!(
            modulus_bits(&n(&[[0x7f].as_slice(), &[0xff; 255]].concat())),
            Some(2047)
        );
        assert_eq!(modulus_bits(&n(&[0, 0])), None);
        assert_eq!(modulus_bits(RFC_7638_N), Some(2048));
    }
}
