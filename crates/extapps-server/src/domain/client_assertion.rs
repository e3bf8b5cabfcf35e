//! Client assertions (RFC 7521, RFC 7523 section 2.2): a JWT a client signs
//! to authenticate instead of sending a shared secret. Everything that can
//! be checked without a key is checked here, before any key is looked up:
//! its size, its shape, an algorithm among those registered keys may have,
//! who issued it and for whom, and when it is valid. The signature is
//! checked last, with the key's own algorithm.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::client_key::SigningAlgorithm;

/// The one `client_assertion_type` there is (RFC 7523 section 2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Bytes of an assertion: a JWT signed with an 8192-bit RSA key and ordinary
/// claims takes under 2 KiB.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// How far ahead an assertion may expire: it is for one request, and its
/// `jti` is remembered until then.
pub const MAX_LIFETIME: Duration = Duration::minutes(5);
/// How far ahead an outside provider's token may expire (the provider,
/// not the client, decides its lifetime; CI and cluster tokens live up to
/// an hour).
pub const MAX_FEDERATED_LIFETIME: Duration = Duration::hours(1);
/// How far a client's clock may run ahead of this server's.
pub const CLOCK_SKEW: Duration = Duration::seconds(30);
/// Characters of a `jti`.
pub const MAX_JTI_CHARS: usize = 256;

/// Why an assertion was refused, as the client is told (it wrote the
/// assertion: telling it what is wrong gives nothing away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooLarge,
    Malformed,
    Algorithm,
    Critical,
    Subject,
    ClientMismatch,
    Audience,
    Expired,
    TooLong,
    NotYetValid,
    IssuedAt,
    Jti,
    NoKey,
    Signature,
    Replayed,
    FederatedAlgorithm,
    FederatedTooLong,
    IssuerNotAllowed,
    NoFederatedCredential,
}

impl Refusal {
    pub fn description(self) -> &'static str {
        match self {
            Refusal::TooLarge => "the client assertion is larger than 8 KiB",
            Refusal::Malformed => {
                "the client assertion is not a signed JWT (JWS compact serialization) with JSON claims"
            }
            Refusal::Algorithm => {
                "the client assertion's `alg` must be ES256, EdDSA, RS256 or PS256, as its key"
            }
            Refusal::Critical => "the client assertion names `crit` header parameters",
            Refusal::Subject => {
                "the client assertion's `iss` and `sub` must both be the client ID \
                 (or, for an outside provider's token, send `client_id` beside it)"
            }
            Refusal::ClientMismatch => {
                "`client_id` names another client than the client assertion's `sub`"
            }
            Refusal::Audience => {
                "the client assertion's `aud` must name this server: its issuer or the endpoint's URL"
            }
            Refusal::Expired => "the client assertion has expired (or has no `exp`)",
            Refusal::TooLong => {
                "the client assertion's `exp` is more than 5 minutes after its `iat`"
            }
            Refusal::NotYetValid => "the client assertion's `iat` or `nbf` is in the future",
            Refusal::IssuedAt => "the client assertion needs an `iat` (when it was made)",
            Refusal::Jti => {
                "the client assertion needs a `jti` of 1 to 256 visible ASCII characters"
            }
            Refusal::NoKey => {
                "no registered key of the client matches the client assertion's `alg` and `kid`"
            }
            Refusal::Signature => "the client assertion's signature does not verify",
            Refusal::Replayed => "the client assertion was used before: make a new one per request",
            Refusal::FederatedAlgorithm => "an outside provider's token must be signed with RS256",
            Refusal::FederatedTooLong => "the token's `exp` is more than 1 hour after its `iat`",
            Refusal::IssuerNotAllowed => {
                "the token's issuer is not one this server's operator allows"
            }
            Refusal::NoFederatedCredential => {
                "no federated credential of the client matches the token's `iss`, `sub` and `aud` exactly"
            }
        }
    }

    /// The label of the refusal in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Malformed => "malformed",
            Refusal::Algorithm => "algorithm",
            Refusal::Critical => "critical",
            Refusal::Subject => "subject",
            Refusal::ClientMismatch => "client_mismatch",
            Refusal::Audience => "audience",
            Refusal::Expired => "expired",
            Refusal::TooLong => "too_long",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::IssuedAt => "issued_at",
            Refusal::Jti => "jti",
            Refusal::NoKey => "no_key",
            Refusal::Signature => "signature",
            Refusal::Replayed => "replayed",
            Refusal::FederatedAlgorithm => "federated_algorithm",
            Refusal::FederatedTooLong => "federated_too_long",
            Refusal::IssuerNotAllowed => "issuer_not_allowed",
            Refusal::NoFederatedCredential => "no_federated_credential",
        }
    }
}

/// An assertion whose form and claims passed, its signature not yet
/// checked. Its `Debug` leaves out the signed text and the signature:
/// together they are the token, and a provider's token is a bearer token
/// elsewhere too.
pub struct Assertion<'a> {
    /// `header.payload`: what the signature covers.
    pub signed: &'a str,
    /// The signature, base64url.
    pub signature: &'a str,
    pub algorithm: SigningAlgorithm,
    pub kid: Option<String>,
    pub issuer: String,
    /// For `private_key_jwt`, the client ID as the client wrote it (`iss`
    /// too); for an outside provider's token, whom it names.
    pub subject: String,
    /// `aud`, as one or several values.
    pub audiences: Vec<String>,
    pub jti: String,
    pub expire_time: OffsetDateTime,
}

impl std::fmt::Debug for Assertion<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assertion")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("audiences", &self.audiences)
            .field("jti", &self.jti)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

impl Assertion<'_> {
    /// Whether the client signed it itself (`private_key_jwt`), rather than
    /// an outside provider (a federated credential's token).
    pub fn is_self_signed(&self) -> bool {
        self.issuer == self.subject
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// `aud`: one string or an array of them (RFC 7519 section 4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    jti: Option<String>,
}

/// Reads `text` as a client assertion for this server, checked at `now`:
/// `for_us` tells the values `aud` may hold (the issuer and the endpoint's
/// URL), `client_id` is the one the request named beside it, if any.
pub fn read<'a>(
    text: &'a str,
    client_id: Option<&str>,
    for_us: &dyn Fn(&str) -> bool,
    now: OffsetDateTime,
) -> Result<Assertion<'a>, Refusal> {
    if text.len() > MAX_ASSERTION_BYTES {
        return Err(Refusal::TooLarge);
    }
    let mut parts = text.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header: Header = json_part(header)?;
    let claims: Claims = json_part(payload)?;
    if signature.is_empty() {
        return Err(Refusal::Malformed);
    }
    // `none` and HMAC are no algorithm of any registered key.
    let algorithm = SigningAlgorithm::parse(&header.alg).ok_or(Refusal::Algorithm)?;
    if header.crit.is_some() {
        return Err(Refusal::Critical);
    }
    let (issuer, subject) = match (claims.iss, claims.sub) {
        (Some(iss), Some(sub)) if !iss.is_empty() && !sub.is_empty() => (iss, sub),
        _ => return Err(Refusal::Subject),
    };
    let audiences = match claims.aud {
        Some(Audience::One(aud)) => vec![aud],
        Some(Audience::Many(auds)) => auds,
        None => Vec::new(),
    };
    let self_signed = issuer == subject;
    if self_signed {
        if client_id.is_some_and(|id| id != subject) {
            return Err(Refusal::ClientMismatch);
        }
        if !audiences.iter().any(|aud| for_us(aud)) {
            return Err(Refusal::Audience);
        }
    } else {
        // An outside provider's token names a workload, not the client:
        // the client names itself beside it.
        if client_id.is_none() {
            return Err(Refusal::Subject);
        }
        if algorithm != SigningAlgorithm::Rs256 {
            return Err(Refusal::FederatedAlgorithm);
        }
    }
    let expire_time = claims
        .exp
        .and_then(instant)
        .filter(|exp| *exp > now)
        .ok_or(Refusal::Expired)?;
    // Its life is measured from when it was made, not from when it is
    // used: an assertion made to last an hour is refused in its last
    // minutes as in its first, and a signer cannot make one now for later.
    let issued_at = claims.iat.and_then(instant).ok_or(Refusal::IssuedAt)?;
    if issued_at > now + CLOCK_SKEW
        || claims
            .nbf
            .is_some_and(|nbf| instant(nbf).is_none_or(|nbf| nbf > now + CLOCK_SKEW))
    {
        return Err(Refusal::NotYetValid);
    }
    let (lifetime, too_long) = match self_signed {
        true => (MAX_LIFETIME, Refusal::TooLong),
        false => (MAX_FEDERATED_LIFETIME, Refusal::FederatedTooLong),
    };
    if expire_time - issued_at > lifetime {
        return Err(too_long);
    }
    // Visible ASCII: it is stored, and compared byte for byte.
    let jti = claims
        .jti
        .filter(|jti| {
            !jti.is_empty()
                && jti.len() <= MAX_JTI_CHARS
                && jti.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or(Refusal::Jti)?;
    let signed = &text[..text.len() - signature.len() - 1];
    Ok(Assertion {
        signed,
        signature,
        algorithm,
        kid: header.kid,
        issuer,
        subject,
        audiences,
        jti,
        expire_time,
    })
}

/// A base64url JSON part of a JWS.
fn json_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refusal::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)
}

/// A NumericDate (seconds since the epoch, possibly fractional), if it is
/// an instant at all.
fn instant(seconds: f64) -> Option<OffsetDateTime> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    // Within the range `time` represents; beyond it, no instant.
    if !(-1e11..=1e11).contains(&whole) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    OffsetDateTime::from_unix_timestamp(whole as i64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUD: &str = "https://auth.example/oauth2/token";

    fn ours(aud: &str) -> bool {
        aud == AUD || aud == "https://auth.example"
    }

    fn encode(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn jwt(header: serde_json::Value, claims: serde_json::Value) -> String {
        format!("{}.{}.c2ln", encode(&header), encode(&claims))
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "iss": "client", "sub": "client", "aud": AUD,
            "exp": 1_800_000_060, "iat": 1_800_000_000, "jti": "one",
        })
    }

    fn with(mut base: serde_json::Value, changes: serde_json::Value) -> serde_json::Value {
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base
    }

    fn header() -> serde_json::Value {
        serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})
    }

    fn refusal(header: serde_json::Value, claims: serde_json::Value) -> Refusal {
        read(&jwt(header, claims), None, &ours, now()).unwrap_err()
    }

    #[test]
    fn debug_never_shows_the_token() {
        let text = jwt(header(), claims());
        let assertion = read(&text, None, &ours, now()).unwrap();
        let shown = format!("{assertion:?}");
        assert!(shown.contains("\"one\""), "{shown}");
        let (signed, signature) = text.rsplit_once('.').unwrap();
        assert!(
            !shown.contains(signature) && !shown.contains(signed),
            "{shown}"
        );
    }

    #[test]
    fn a_good_assertion_reads_with_what_verifying_it_needs() {
        let text = jwt(header(), claims());
        let assertion = read(&text, Some("client"), &ours, now()).unwrap();
        assert_eq!(assertion.algorithm, SigningAlgorithm::Es256);
        assert_eq!(assertion.kid.as_deref(), Some("k1"));
        assert_eq!(assertion.subject, "client");
        assert_eq!(assertion.jti, "one");
        assert_eq!(assertion.signature, "c2ln");
        assert_eq!(format!("{}.c2ln", assertion.signed), text);
        assert_eq!(
            assertion.expire_time,
            OffsetDateTime::from_unix_timestamp(1_800_000_060).unwrap()
        );
        // An array audience naming this server, and fractional dates.
        let array = with(
            claims(),
            serde_json::json!({"aud": ["https://other.example", AUD], "exp": 1_800_000_060.5}),
        );
        assert!(read(&jwt(header(), array), None, &ours, now()).is_ok());
    }

    #[test]
    fn algorithms_without_a_registered_key_type_are_refused() {
        for alg in ["none", "HS256", "HS512", "RS512", "ES384", "es256", ""] {
            let header = with(header(), serde_json::json!({"alg": alg}));
            assert_eq!(refusal(header, claims()), Refusal::Algorithm, "{alg}");
        }
        let critical = with(header(), serde_json::json!({"crit": ["exp"]}));
        assert_eq!(refusal(critical, claims()), Refusal::Critical);
    }

    #[test]
    fn claims_must_name_the_client_this_server_and_a_short_valid_window() {
        let cases = [
            (serde_json::json!({"iss": "other"}), Refusal::Subject),
            (serde_json::json!({"sub": null}), Refusal::Subject),
            (serde_json::json!({"iss": "", "sub": ""}), Refusal::Subject),
            (
                serde_json::json!({"aud": "https://auth.example/oauth2/revoke"}),
                Refusal::Audience,
            ),
            (serde_json::json!({"aud": []}), Refusal::Audience),
            (serde_json::json!({"aud": null}), Refusal::Audience),
            (serde_json::json!({"exp": null}), Refusal::Expired),
            (serde_json::json!({"exp": 1_800_000_000}), Refusal::Expired),
            (serde_json::json!({"exp": "1800000060"}), Refusal::Malformed),
            (serde_json::json!({"exp": 1_800_000_301}), Refusal::TooLong),
            (serde_json::json!({"iat": 1_799_999_000}), Refusal::TooLong),
            (serde_json::json!({"iat": null}), Refusal::IssuedAt),
            (serde_json::json!({"jti": "a b"}), Refusal::Jti),
            (serde_json::json!({"jti": "a\u{0}"}), Refusal::Jti),
            (serde_json::json!({"exp": 1e300}), Refusal::Expired),
            (
                serde_json::json!({"iat": 1_800_000_031}),
                Refusal::NotYetValid,
            ),
            (
                serde_json::json!({"nbf": 1_800_000_031}),
                Refusal::NotYetValid,
            ),
            (serde_json::json!({"jti": null}), Refusal::Jti),
            (serde_json::json!({"jti": ""}), Refusal::Jti),
            (serde_json::json!({"jti": "j".repeat(257)}), Refusal::Jti),
        ];
        for (change, expected) in cases {
            assert_eq!(
                refusal(header(), with(claims(), change.clone())),
                expected,
                "{change}"
            );
        }
        // Within the skew: a client clock a little ahead is fine.
        let ahead = with(
            claims(),
            serde_json::json!({"iat": 1_800_000_030, "nbf": 1_800_000_030, "exp": 1_800_000_330}),
        );
        assert!(read(&jwt(header(), ahead), None, &ours, now()).is_ok());
        // Made a little earlier, within its five minutes, it is fine (one
        // made to last an hour is refused even in its last minutes: the
        // `iat` case above).
        let made_early = with(
            claims(),
            serde_json::json!({"iat": 1_799_999_900, "exp": 1_800_000_200}),
        );
        assert!(read(&jwt(header(), made_early), None, &ours, now()).is_ok());
        let ahead = with(
            claims(),
            serde_json::json!({"iat": 1_800_000_030, "exp": 1_800_000_330}),
        );
        assert!(read(&jwt(header(), ahead), None, &ours, now()).is_ok());
        let text = jwt(header(), claims());
        assert_eq!(
            read(&text, Some("another"), &ours, now()).unwrap_err(),
            Refusal::ClientMismatch
        );
    }

    #[test]
    fn an_outside_providers_token_is_read_with_its_own_rules() {
        let ci = with(
            claims(),
            serde_json::json!({
                "iss": "https://ci.example", "sub": "repo:acme/app", "aud": ["extapps", "other"],
                "exp": 1_800_003_000,
            }),
        );
        let rs256 = with(header(), serde_json::json!({"alg": "RS256"}));
        let text = jwt(rs256.clone(), ci.clone());
        // Its audience is the credential's, not this server: not checked here.
        let assertion = read(&text, Some("client"), &ours, now()).unwrap();
        assert!(!assertion.is_self_signed());
        assert_eq!(assertion.issuer, "https://ci.example");
        assert_eq!(assertion.subject, "repo:acme/app");
        assert_eq!(assertion.audiences, ["extapps", "other"]);
        // Without the client's ID beside it, it names no client.
        assert_eq!(
            read(&text, None, &ours, now()).unwrap_err(),
            Refusal::Subject
        );
        // RS256 only, and an hour at most.
        let es256 = jwt(header(), ci.clone());
        assert_eq!(
            read(&es256, Some("client"), &ours, now()).unwrap_err(),
            Refusal::FederatedAlgorithm
        );
        let long = jwt(rs256, with(ci, serde_json::json!({"exp": 1_800_003_601})));
        assert_eq!(
            read(&long, Some("client"), &ours, now()).unwrap_err(),
            Refusal::FederatedTooLong
        );
    }

    #[test]
    fn what_is_not_a_compact_jws_is_malformed_and_size_comes_first() {
        let good = jwt(header(), claims());
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &good[..good.len() - 5],
            &format!("{}.", good.rsplit_once('.').unwrap().0),
        ] {
            assert_eq!(
                read(bad, None, &ours, now()).unwrap_err(),
                Refusal::Malformed,
                "{bad}"
            );
        }
        let huge = format!("{good}{}", "A".repeat(MAX_ASSERTION_BYTES));
        assert_eq!(
            read(&huge, None, &ours, now()).unwrap_err(),
            Refusal::TooLarge
        );
    }
}
