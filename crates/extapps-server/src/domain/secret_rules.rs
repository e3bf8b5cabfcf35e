//! The rules of an application's secrets beyond their form (SPEC rules 6a
//! and 7): several may be live at once, up to a cap; each may carry a
//! description and an expiry of its own.

use time::{Duration, OffsetDateTime};

use super::application::{is_bidi_control, is_default_ignorable};
use super::clock::{from_micros, to_micros};
use super::error::{Error, FieldViolation, Reason};

/// Secrets live at once per application, as in the platform the seeds
/// describe.
pub const MAX_LIVE_SECRETS: usize = 5;
/// Characters of a description.
pub const MAX_DESCRIPTION_CHARS: usize = 128;
/// How far ahead a secret may expire: ten years.
pub const MAX_SECRET_LIFETIME: Duration = Duration::days(3653);

/// A secret's description: trimmed, at most 128 characters, on one line,
/// and read as written: no control characters, line or paragraph
/// separators, bidirectional controls or invisible format characters (it
/// is shown in listings, tables and logs of tools, where any of those could
/// hide or reorder what an administrator reads).
pub fn description(field: &str, value: &str) -> Result<String, FieldViolation> {
    let value = value.trim();
    if value.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if value.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}')
            || is_bidi_control(c)
            || is_default_ignorable(c)
    }) {
        return Err(FieldViolation::new(
            field,
            "must be one line of visible text: no control characters (line breaks, tabs), \
             line separators, bidirectional controls or invisible characters",
        ));
    }
    Ok(value.to_owned())
}

/// When a new secret should expire, as the request asks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    /// Never by itself.
    Never,
    /// At this instant (`expire_time`).
    At(OffsetDateTime),
    /// This long from now (`ttl`).
    After(Duration),
}

impl Expiration {
    /// The instant the secret expires, as stored (to the microsecond),
    /// checked: after `now` once stored, and at most [`MAX_SECRET_LIFETIME`]
    /// ahead.
    pub fn resolve(self, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, FieldViolation> {
        let (field, end) = match self {
            Expiration::Never => return Ok(None),
            Expiration::At(end) => ("expire_time", end),
            Expiration::After(ttl) => {
                if !ttl.is_positive() {
                    return Err(FieldViolation::new("ttl", "must be more than 0"));
                }
                if ttl > MAX_SECRET_LIFETIME {
                    return Err(FieldViolation::new("ttl", "must be at most 10 years"));
                }
                ("ttl", now + ttl)
            }
        };
        // Stored to the microsecond: an end within the current one would
        // make a secret that never works.
        let end = from_micros(to_micros(end));
        if end <= now {
            return Err(FieldViolation::new(field, "must be in the future"));
        }
        if end - now > MAX_SECRET_LIFETIME {
            return Err(FieldViolation::new(field, "must be at most 10 years ahead"));
        }
        Ok(Some(end))
    }
}

/// Refuses a change that would leave more than [`MAX_LIVE_SECRETS`] live.
pub fn check_live_count(live_after: usize) -> Result<(), Error> {
    if live_after > MAX_LIVE_SECRETS {
        return Err(Error::FailedPrecondition {
            reason: Reason::TooManySecrets,
            message: format!(
                "an application holds at most {MAX_LIVE_SECRETS} live secrets: \
                 delete one first, or replace them without a grace period"
            ),
        });
    }
    Ok(())
}

/// The secret does not exist (any more) on this application.
pub fn secret_not_found() -> Error {
    Error::NotFound {
        reason: Reason::SecretNotFound,
        message: "secret not found (deleted, expired or never of this application)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
    }

    #[test]
    fn descriptions_are_trimmed_bounded_and_printable() {
        assert_eq!(description("d", "  CI pipeline ").unwrap(), "CI pipeline");
        assert_eq!(description("d", "").unwrap(), "");
        assert_eq!(
            description("d", &"é".repeat(128)).unwrap().chars().count(),
            128
        );
        assert!(description("d", &"a".repeat(129)).is_err());
        assert!(description("d", "two\nlines").is_err());
        assert!(description("d", "tab\there").is_err());
        for hidden in ['\u{2028}', '\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}'] {
            assert!(
                description("d", &format!("a{hidden}b")).is_err(),
                "{hidden:?}"
            );
        }
        assert_eq!(description("d", "Büro — CI ✓").unwrap(), "Büro — CI ✓");
    }

    #[test]
    fn an_expiry_is_in_the_future_and_within_ten_years() {
        let now = at(0);
        assert_eq!(Expiration::Never.resolve(now), Ok(None));
        assert_eq!(
            Expiration::After(Duration::days(90)).resolve(now),
            Ok(Some(now + Duration::days(90)))
        );
        assert_eq!(Expiration::At(at(1)).resolve(now), Ok(Some(at(1))));
        for (expiration, field) in [
            (Expiration::At(now), "expire_time"),
            (Expiration::At(at(-1)), "expire_time"),
            (
                Expiration::At(now + MAX_SECRET_LIFETIME + Duration::SECOND),
                "expire_time",
            ),
            (Expiration::After(Duration::ZERO), "ttl"),
            (Expiration::After(Duration::seconds(-5)), "ttl"),
            (
                Expiration::After(MAX_SECRET_LIFETIME + Duration::SECOND),
                "ttl",
            ),
        ] {
            assert_eq!(
                expiration.resolve(now).unwrap_err().field,
                field,
                "{expiration:?}"
            );
        }
        assert!(Expiration::After(MAX_SECRET_LIFETIME).resolve(now).is_ok());
        // Less than the microsecond it is stored to: it would never work.
        assert!(
            Expiration::After(Duration::nanoseconds(500))
                .resolve(now)
                .is_err()
        );
        assert_eq!(
            Expiration::After(Duration::microseconds(1)).resolve(now),
            Ok(Some(now + Duration::microseconds(1)))
        );
    }

    #[test]
    fn five_live_secrets_at_most() {
        assert!(check_live_count(MAX_LIVE_SECRETS).is_ok());
        assert_eq!(
            check_live_count(MAX_LIVE_SECRETS + 1).unwrap_err().reason(),
            Reason::TooManySecrets
        );
    }
}
