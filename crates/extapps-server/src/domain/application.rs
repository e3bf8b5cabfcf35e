//! The application aggregate and the rules of registering and editing one
//! (SPEC section 2).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;

use super::application_type::ApplicationType;
use super::catalog::Catalog;
use super::error::{Error, Violations};
use super::names::{ApplicationName, ClientId, OrganizationId};
use super::redirect_url::{MAX_REDIRECT_URLS, RedirectUrl};
use super::scope_grants::{ResourceGrantInput, ScopeGrants};

/// A display name: trimmed, NFC-normalized, 1 to 128 characters; no
/// control, bidirectional control, line or paragraph separator characters,
/// and at least one visible base character (not only invisible ones or
/// combining marks). It is shown to users on consent screens: what they
/// read must be what it is, so names that look the same share a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

/// Characters that reorder text (Unicode bidirectional controls): a name
/// holding one can display as another.
pub(super) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Unicode's Default_Ignorable_Code_Point set (zero-width spaces and
/// joiners, variation selectors, fillers, tags): characters that show
/// nothing, yet make two strings differ.
pub(super) fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Characters that show nothing: white space, the default-ignorable ones,
/// and the Braille blank (which Unicode does not call ignorable).
fn is_invisible(c: char) -> bool {
    c.is_whitespace() || is_default_ignorable(c) || c == '\u{2800}'
}

/// A character that shows on its own: not invisible, and not a combining
/// mark (which only decorates the character before it).
fn is_visible_base(c: char) -> bool {
    !is_invisible(c) && !unicode_normalization::char::is_combining_mark(c)
}

impl DisplayName {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(value: &str) -> Result<Self, String> {
        let normalized: String = value.trim().nfc().collect();
        let chars = normalized.chars().count();
        if chars == 0 {
            return Err("is required".into());
        }
        if chars > Self::MAX_CHARS {
            return Err(format!(
                "must be at most {} characters (got {chars})",
                Self::MAX_CHARS
            ));
        }
        if normalized.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if normalized.contains(['\u{2028}', '\u{2029}']) {
            return Err(
                "must not contain line or paragraph separators (U+2028, U+2029): a name is one line"
                    .into(),
            );
        }
        if normalized.chars().any(is_bidi_control) {
            return Err(
                "must not contain bidirectional control characters (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069)"
                    .into(),
            );
        }
        if !normalized.chars().any(is_visible_base) {
            return Err(
                "must contain a visible character (not only invisible characters or combining marks)"
                    .into(),
            );
        }
        Ok(Self(normalized))
    }

    /// A name as stored: valid by the rules of the day it was written,
    /// which may have been looser than today's. Never refused, so an
    /// application with such a name can still be read and renamed.
    pub fn stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What two names that may not coexist in one organization share:
    /// without default-ignorable characters (a zero-width space or joiner
    /// does not make a name another), compatibility-normalized (NFKC:
    /// fullwidth and styled letters become plain ones) and lower-cased,
    /// final sigma included.
    pub fn key(&self) -> String {
        let visible: String = self
            .0
            .chars()
            .filter(|c| !is_default_ignorable(*c))
            .collect();
        let folded: String = visible.nfkc().collect::<String>().to_lowercase();
        folded
            .replace('ς', "σ")
            .nfkc()
            .filter(|c| !is_default_ignorable(*c))
            .collect()
    }
}

/// Metadata of one live client secret; the secret itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub secret_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub create_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expire_time: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_use_time: Option<OffsetDateTime>,
    /// What the secret is for; empty if nothing was said (and in records
    /// written before secrets had descriptions).
    #[serde(default)]
    pub description: String,
}

/// Metadata of one registered public key (its public JWK is no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub key_id: String,
    pub algorithm: String,
    pub thumbprint: String,
    pub jwk: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub create_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expire_time: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_use_time: Option<OffsetDateTime>,
}

/// Metadata of one federated credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedInfo {
    pub credential_id: String,
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub create_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_use_time: Option<OffsetDateTime>,
}

/// A registered application as stored and shown (never with a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub organization: OrganizationId,
    pub client_id: ClientId,
    pub display_name: DisplayName,
    pub app_type: ApplicationType,
    pub grants: ScopeGrants,
    pub redirect_urls: Vec<RedirectUrl>,
    pub secrets: Vec<SecretInfo>,
    /// Public keys for `private_key_jwt`; none in records written before
    /// applications had keys.
    #[serde(default)]
    pub keys: Vec<KeyInfo>,
    /// Federated credentials; none in records written before applications
    /// had them.
    #[serde(default)]
    pub federated: Vec<FederatedInfo>,
    pub revision: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub create_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub update_time: OffsetDateTime,
}

impl Application {
    pub fn name(&self) -> ApplicationName {
        ApplicationName {
            organization: self.organization.clone(),
            client_id: self.client_id,
        }
    }

    pub fn etag(&self) -> String {
        Etag(self.revision).to_string()
    }
}

/// The concurrency token of an application (AIP-154): its revision, quoted as
/// HTTP entity tags are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Etag(pub i64);

impl Etag {
    /// `""` means "no precondition"; anything else must be an etag we issued.
    pub fn parse_optional(field: &str, value: &str) -> Result<Option<Self>, Error> {
        if value.is_empty() {
            return Ok(None);
        }
        value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| v.parse::<i64>().ok())
            .map(|revision| Some(Etag(revision)))
            .ok_or_else(|| Error::invalid_field(field, "is not an etag returned by this service"))
    }
}

impl std::fmt::Display for Etag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// A registration request as received.
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    pub display_name: String,
    pub app_type: Option<ApplicationType>,
    pub grants: Vec<ResourceGrantInput>,
    pub redirect_urls: Vec<String>,
}

/// A registration that passed every rule. Its JSON is the canonical form of
/// the request, for telling an idempotent retry from a reused request ID.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub display_name: DisplayName,
    pub app_type: ApplicationType,
    pub grants: ScopeGrants,
    pub redirect_urls: Vec<RedirectUrl>,
}

impl RegistrationInput {
    /// Checks the whole request; `prefix` is the path of the application
    /// message in the request (`application`).
    pub fn validate(&self, prefix: &str, catalog: &Catalog) -> Result<Registration, Error> {
        let mut violations = Violations::default();
        let display_name = check_display_name(prefix, &self.display_name, &mut violations);
        if self.app_type.is_none() {
            violations.push(
                format!("{prefix}.type"),
                "is required: APPLICATION_TYPE_CONFIDENTIAL or APPLICATION_TYPE_NON_CONFIDENTIAL",
            );
        }
        let grants = ScopeGrants::validate(
            &format!("{prefix}.grants"),
            &self.grants,
            self.app_type,
            catalog,
            &mut violations,
        );
        let redirect_urls = check_redirect_urls(prefix, &self.redirect_urls, &mut violations);
        if let (Some(grants), Some(urls)) = (&grants, &redirect_urls) {
            check_redirect_urls_needed(
                &format!("{prefix}.redirect_urls"),
                grants,
                urls,
                &mut violations,
            );
        }
        violations.into_result()?;
        match (display_name, self.app_type, grants, redirect_urls) {
            (Some(display_name), Some(app_type), Some(grants), Some(redirect_urls)) => {
                Ok(Registration {
                    display_name,
                    app_type,
                    grants,
                    redirect_urls,
                })
            }
            _ => Err(Error::Internal),
        }
    }
}

/// Validates a new display name under `{prefix}.display_name`.
pub fn check_display_name(
    prefix: &str,
    value: &str,
    violations: &mut Violations,
) -> Option<DisplayName> {
    DisplayName::parse(value)
        .map_err(|why| violations.push(format!("{prefix}.display_name"), why))
        .ok()
}

/// Validates a redirect URL list under `{prefix}.redirect_urls`.
pub fn check_redirect_urls(
    prefix: &str,
    values: &[String],
    violations: &mut Violations,
) -> Option<Vec<RedirectUrl>> {
    let field = format!("{prefix}.redirect_urls");
    if values.len() > MAX_REDIRECT_URLS {
        violations.push(
            field,
            format!(
                "at most {MAX_REDIRECT_URLS} redirect URLs (got {})",
                values.len()
            ),
        );
        return None;
    }
    let before = violations.len();
    let mut seen = HashSet::new();
    let mut urls = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        match RedirectUrl::parse(value) {
            Ok(url) if !seen.insert(url.clone()) => {
                violations.push(format!("{field}[{i}]"), "is listed twice")
            }
            Ok(url) => urls.push(url),
            Err(why) => violations.push(format!("{field}[{i}]"), why),
        }
    }
    (violations.len() == before).then_some(urls)
}

/// Rule 5: user scopes need somewhere to send the user back.
pub fn check_redirect_urls_needed(
    field: &str,
    grants: &ScopeGrants,
    urls: &[RedirectUrl],
    violations: &mut Violations,
) {
    if grants.has_user_scopes() && urls.is_empty() {
        violations.push(
            field,
            "at least one redirect URL is required when user scopes are granted",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::DEFAULT_CATALOG;

    fn input() -> RegistrationInput {
        RegistrationInput {
            display_name: "  Billing sync  ".into(),
            app_type: Some(ApplicationType::Confidential),
            grants: vec![ResourceGrantInput {
                resource: "OR".into(),
                user_scopes: vec!["OR.Jobs".into()],
                application_scopes: vec![],
            }],
            redirect_urls: vec!["https://billing.example.com/cb".into()],
        }
    }

    #[test]
    fn display_names_are_safe_to_show() {
        // Stored composed, and compared without regard to case.
        let decomposed = DisplayName::parse("Cafe\u{301} Sync").unwrap();
        assert_eq!(decomposed.as_str(), "Caf\u{e9} Sync");
        assert_eq!(
            decomposed.key(),
            DisplayName::parse("CAFÉ SYNC").unwrap().key()
        );
        for hidden in [
            "\u{200B}",
            "\u{200B}\u{2060}",
            "\u{3164}",
            "\u{FEFF} \u{00AD}",
        ] {
            assert!(DisplayName::parse(hidden).is_err(), "{hidden:?}");
        }
        for reordering in ["Pay\u{202E}lagaP", "a\u{2066}b", "\u{200F}x"] {
            let why = DisplayName::parse(reordering).unwrap_err();
            assert!(why.contains("bidirectional"), "{reordering:?}: {why}");
        }
        assert!(
            DisplayName::parse("x\u{200D}y").is_ok(),
            "invisible inside a visible name"
        );
        assert!(
            DisplayName::parse("שלום").is_ok(),
            "right-to-left text itself is fine"
        );
        assert!(DisplayName::parse("\u{2800}\u{2800}").is_err());
        // One line, and something to see besides marks.
        for bad in [
            "a\u{2028}b",
            "a\u{2029}b",
            "\u{301}",
            "\u{301}\u{308}",
            " \u{20DD} ",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DisplayName::parse("e\u{301}\u{308}x").is_ok());
        // Invisible characters do not make a name another.
        let key = |name| DisplayName::parse(name).unwrap().key();
        assert_eq!(key("pay\u{200B}"), key("pay"));
        assert_eq!(key("p\u{200D}a\u{FE0F}y\u{00AD}"), key("PAY"));
        assert_ne!(key("pay"), key("p ay"));
        // Styled and fullwidth letters, and final sigma, share a key.
        assert_eq!(key("ＲＥＰＯＲＴＳ"), key("Reports"));
        assert_eq!(key("𝐑𝐞𝐩𝐨𝐫𝐭𝐬"), key("reports"));
        assert_eq!(key("ΟΔΟΣ"), key("οδοσ"));
        assert_ne!(key("Reports"), key("Report"));
    }

    #[test]
    fn trims_the_display_name() {
        let catalog = Catalog::from_toml(DEFAULT_CATALOG).unwrap();
        let valid = input().validate("application", &catalog).unwrap();
        assert_eq!(valid.display_name.as_str(), "Billing sync");
    }

    #[test]
    fn user_scopes_need_a_redirect_url() {
        let catalog = Catalog::from_toml(DEFAULT_CATALOG).unwrap();
        let mut no_url = input();
        no_url.redirect_urls.clear();
        let Err(Error::InvalidArgument { violations, .. }) =
            no_url.validate("application", &catalog)
        else {
            panic!("expected InvalidArgument")
        };
        assert_eq!(violations[0].field, "application.redirect_urls");
    }

    #[test]
    fn display_name_limits_count_characters() {
        assert!(DisplayName::parse(&"é".repeat(128)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(129)).is_err());
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn etags_round_trip_and_reject_garbage() {
        assert_eq!(
            Etag::parse_optional("etag", &Etag(7).to_string()).unwrap(),
            Some(Etag(7))
        );
        assert_eq!(Etag::parse_optional("etag", "").unwrap(), None);
        assert!(Etag::parse_optional("etag", "7").is_err());
        assert!(Etag::parse_optional("etag", "\"x\"").is_err());
    }
}
