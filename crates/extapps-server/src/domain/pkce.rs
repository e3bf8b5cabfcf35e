//! PKCE (RFC 7636): what a challenge and a verifier look like, and the two
//! decision tables, one at the authorization request (section 4.3: is a
//! challenge required, and is it S256) and one at the token request
//! (section 4.6: does the verifier answer the challenge). `plain` is never
//! accepted (RFC 9700 section 2.1.1).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::oauth::OAuthError;

/// Whether `challenge` can be an S256 challenge: the unpadded base64url of
/// a SHA-256 digest.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// Whether `verifier` has the shape RFC 7636 section 4.1 requires.
pub fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` is the one `challenge` was made from (S256), compared
/// in constant time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    is_verifier(verifier) && super::credential::digests_match(&computed, challenge)
}

/// The challenge an authorization request carries, as `code_challenge` and
/// `code_challenge_method` were sent; `required` for an application that
/// cannot keep a secret. A method without a challenge, a challenge without
/// a method, and any method but `S256` are refused: a missing method would
/// mean `plain` (RFC 7636 section 4.3).
pub fn challenge_of_request(
    challenge: Option<&str>,
    method: Option<&str>,
    required: bool,
) -> Result<Option<String>, OAuthError> {
    let refused = |why: &str| Err(OAuthError::InvalidRequest(why.into()));
    match (challenge, method) {
        (None, None) if required => {
            refused("PKCE is required: send `code_challenge` with `code_challenge_method=S256`")
        }
        (None, None) => Ok(None),
        (None, Some(_)) => refused("`code_challenge_method` without `code_challenge`"),
        (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => {
            Ok(Some(challenge.to_owned()))
        }
        (Some(_), Some("S256")) => refused(
            "`code_challenge` must be the base64url SHA-256 of the verifier (43 characters)",
        ),
        (Some(_), _) => refused("`code_challenge_method` must be `S256`; `plain` is not accepted"),
    }
}

/// Whether the token request's `code_verifier` answers the challenge its
/// authorization request carried (none: no verifier may be sent either).
pub fn check_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) if verifier_matches(verifier, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::InvalidGrant(
            "the PKCE `code_verifier` does not match".into(),
        )),
        (Some(_), None) => Err(OAuthError::InvalidRequest(
            "parameter `code_verifier` is missing (PKCE)".into(),
        )),
        (None, Some(_)) => Err(OAuthError::InvalidGrant(
            "a `code_verifier` was sent, but the authorization request had no `code_challenge`"
                .into(),
        )),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code(result: Result<impl std::fmt::Debug, OAuthError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        assert!(is_s256_challenge(CHALLENGE));
        assert!(verifier_matches(VERIFIER, CHALLENGE));
        assert!(!verifier_matches(&VERIFIER.replace('d', "e"), CHALLENGE));
        assert!(!is_s256_challenge("plain-challenge"));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}!", "a".repeat(43))));
    }

    #[test]
    fn an_authorization_request_carries_an_s256_challenge_or_none_where_allowed() {
        let table = [
            // challenge, method, required -> outcome
            (None, None, false, "ok"),
            (None, None, true, "invalid_request"),
            (None, Some("S256"), false, "invalid_request"),
            (Some(CHALLENGE), Some("S256"), false, "ok"),
            (Some(CHALLENGE), Some("S256"), true, "ok"),
            (Some("too-short"), Some("S256"), true, "invalid_request"),
            (Some(CHALLENGE), Some("plain"), false, "invalid_request"),
            (Some(CHALLENGE), Some("s256"), false, "invalid_request"),
            // No method means `plain`: refused, not taken for S256.
            (Some(CHALLENGE), None, false, "invalid_request"),
        ];
        for (challenge, method, required, expected) in table {
            assert_eq!(
                code(challenge_of_request(challenge, method, required)),
                expected,
                "{challenge:?} {method:?} required={required}"
            );
        }
        assert_eq!(
            challenge_of_request(Some(CHALLENGE), Some("S256"), false),
            Ok(Some(CHALLENGE.to_owned()))
        );
        assert_eq!(challenge_of_request(None, None, false), Ok(None));
    }

    #[test]
    fn a_token_request_answers_the_challenge_exactly() {
        let table = [
            (Some(CHALLENGE), Some(VERIFIER), "ok"),
            (
                Some(CHALLENGE),
                Some("a-verifier-of-the-right-shape-but-not-this-one-x"),
                "invalid_grant",
            ),
            (Some(CHALLENGE), None, "invalid_request"),
            (None, Some(VERIFIER), "invalid_grant"),
            (None, None, "ok"),
            // The challenge itself is not its verifier.
            (Some(CHALLENGE), Some(CHALLENGE), "invalid_grant"),
        ];
        for (challenge, verifier, expected) in table {
            assert_eq!(
                code(check_verifier(challenge, verifier)),
                expected,
                "{challenge:?} {verifier:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn verifiers_match_only_their_own_challenge(verifier in "[A-Za-z0-9._~-]{43,128}") {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            prop_assert!(is_s256_challenge(&challenge));
            prop_assert!(verifier_matches(&verifier, &challenge));
            prop_assert_eq!(check_verifier(Some(&challenge), Some(&verifier)), Ok(()));
            let other = format!("{}x", &verifier[..verifier.len() - 1]);
            prop_assert_eq!(verifier_matches(&other, &challenge), other == verifier);
        }

        #[test]
        fn only_an_s256_challenge_is_ever_accepted(
            challenge in proptest::option::of("[A-Za-z0-9_-]{0,50}"),
            method in proptest::option::of("S256|plain|s256|"),
            required in any::<bool>(),
        ) {
            match challenge_of_request(challenge.as_deref(), method.as_deref(), required) {
                Ok(Some(accepted)) => {
                    prop_assert_eq!(method.as_deref(), Some("S256"));
                    prop_assert!(is_s256_challenge(&accepted));
                    prop_assert_eq!(Some(accepted), challenge);
                }
                Ok(None) => {
                    prop_assert!(!required && challenge.is_none() && method.is_none());
                }
                Err(e) => prop_assert_eq!(e.code(), "invalid_request"),
            }
        }
    }
}
