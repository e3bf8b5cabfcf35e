//! The signing keys of outside identity providers, for federated
//! credentials: read from the issuer's published metadata (OpenID Connect
//! discovery, else RFC 8414) and its `jwks_uri`, only for issuers the
//! operator allows, and with every wait and size bounded: a connect and a
//! total timeout, a body limit, no redirect to another origin, a bounded
//! number of keys per issuer, and a cache bounded in size and time. An
//! issuer's keys are fetched at most once a minute (again for a `kid` the
//! cached set does not hold), by one request.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

use crate::domain::federation::AllowedIssuers;

/// How the server reads outside providers' keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationSettings {
    /// Issuers (URL prefixes) whose keys may be fetched; none by default.
    pub allowed: AllowedIssuers,
    pub connect_timeout: Duration,
    /// For one fetch, connection to last byte.
    pub timeout: Duration,
    /// Bytes of a metadata document or key set.
    pub max_bytes: usize,
    /// Keys of one key set.
    pub max_keys: usize,
    /// How long a key set is used before it is fetched again.
    pub cache_ttl: Duration,
    /// The least time between two fetches for one issuer, on the service
    /// clock.
    pub refetch_after: Duration,
}

impl Default for FederationSettings {
    fn default() -> Self {
        Self {
            allowed: AllowedIssuers::default(),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_bytes: 64 * 1024,
            max_keys: 100,
            cache_ttl: Duration::from_secs(3600),
            refetch_after: Duration::from_secs(60),
        }
    }
}

/// Issuers whose key sets are held at once.
const CACHED_ISSUERS: u64 = 1_000;

/// Why an issuer's keys could not be had; for logs and metrics, never for
/// the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the issuer is not among the allowed ones")]
    NotAllowed,
    #[error("fetched less than a minute ago")]
    TooSoon,
    #[error("{0}: unreachable or timed out")]
    Unreachable(String),
    #[error("{0}: answered HTTP {1}")]
    Status(String, u16),
    #[error("{0}: larger than the limit")]
    TooLarge(String),
    #[error("{0}: {1}")]
    Malformed(String, &'static str),
}

/// One RS256 key of an issuer.
#[derive(Clone)]
pub struct IssuerKey {
    pub kid: Option<String>,
    key: DecodingKey,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// Whether `signature` (base64url) is this key's RS256 signature of
    /// `signed`.
    pub fn verifies(&self, signed: &str, signature: &str) -> bool {
        jsonwebtoken::crypto::verify(
            signature,
            signed.as_bytes(),
            &self.key,
            jsonwebtoken::Algorithm::RS256,
        )
        .unwrap_or(false)
    }
}

/// An issuer's keys as last fetched.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<IssuerKey>,
}

impl KeySet {
    /// Whether a token header naming `kid` (or none) has a candidate here.
    fn holds(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)),
            None => !self.keys.is_empty(),
        }
    }

    /// The keys a header naming `kid` (or none) may mean.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a IssuerKey> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
    }
}

pub struct IssuerKeys {
    settings: FederationSettings,
    client: reqwest::Client,
    sets: moka::sync::Cache<String, Arc<KeySet>>,
    /// When each issuer was last fetched, on the service clock: at most one
    /// fetch a minute.
    fetched: moka::sync::Cache<String, OffsetDateTime>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("allowed", &self.settings.allowed)
            .field("cached", &self.sets.entry_count())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

impl IssuerKeys {
    pub fn new(settings: FederationSettings) -> Result<Self, String> {
        // A redirect is followed only within the origin it starts from.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first();
            let same_origin = first.is_some_and(|first| {
                first.scheme() == attempt.url().scheme()
                    && first.host_str() == attempt.url().host_str()
                    && first.port_or_known_default() == attempt.url().port_or_known_default()
            });
            if same_origin && attempt.previous().len() < 3 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config()?)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(redirects)
            .no_proxy()
            .user_agent(concat!("extapps/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            sets: moka::sync::Cache::builder()
                .max_capacity(CACHED_ISSUERS)
                .time_to_live(settings.cache_ttl)
                .build(),
            fetched: moka::sync::Cache::builder()
                .max_capacity(CACHED_ISSUERS)
                .time_to_idle(settings.cache_ttl)
                .build(),
            settings,
            client,
        })
    }

    /// Whether `issuer` is one the operator allows: checked before any
    /// network call.
    pub fn allows(&self, issuer: &str) -> bool {
        self.settings.allowed.allows(issuer)
    }

    /// The keys of `issuer` for a token whose header names `kid` (or none):
    /// from the cache, or fetched (again, for a `kid` the cached set does
    /// not hold) at most once a minute per issuer. Whoever claims that
    /// fetch makes it; meanwhile the others use the set cached before, or,
    /// for an issuer never fetched yet, are told to retry.
    pub async fn key_set(
        &self,
        issuer: &str,
        kid: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Arc<KeySet>, FetchError> {
        if !self.allows(issuer) {
            return Err(FetchError::NotAllowed);
        }
        let cached = self.sets.get(issuer);
        if let Some(set) = &cached
            && set.holds(kid)
        {
            return Ok(set.clone());
        }
        if !self.claim_fetch(issuer, now) {
            return cached.ok_or(FetchError::TooSoon);
        }
        match self.fetch(issuer).await {
            Ok(set) => {
                let set = Arc::new(set);
                self.sets.insert(issuer.to_owned(), set.clone());
                Ok(set)
            }
            Err(e) => {
                tracing::warn!(issuer, error = %e, "could not read a federated issuer's keys");
                cached.ok_or(e)
            }
        }
    }

    /// The one key of `issuer`'s cached set that a header naming `kid`
    /// (or none) can mean, if there is exactly one: checked with one
    /// verification and no fetch.
    pub fn cached_candidate(&self, issuer: &str, kid: Option<&str>) -> Option<IssuerKey> {
        let set = self.sets.get(issuer)?;
        let mut candidates = set.candidates(kid);
        match (candidates.next(), candidates.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    }

    /// Claims the one fetch a minute of `issuer`, in one atomic step;
    /// `false` if it is taken.
    fn claim_fetch(&self, issuer: &str, now: OffsetDateTime) -> bool {
        use moka::ops::compute::{CompResult, Op};
        let every = self.settings.refetch_after;
        let claimed = self
            .fetched
            .entry_by_ref(issuer)
            .and_compute_with(|last| match last {
                Some(last) if now - *last.value() < every => Op::Nop,
                _ => Op::Put(now),
            });
        matches!(
            claimed,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        )
    }

    async fn fetch(&self, issuer: &str) -> Result<KeySet, FetchError> {
        let base = issuer.trim_end_matches('/');
        let metadata: Metadata = match self
            .get_json(&format!("{base}/.well-known/openid-configuration"))
            .await
        {
            Ok(metadata) => metadata,
            // RFC 8414 section 3: the well-known part before the issuer's path.
            Err(FetchError::Status(..)) => self.get_json(&rfc8414_url(issuer)?).await?,
            Err(e) => return Err(e),
        };
        if metadata.issuer != issuer {
            return Err(FetchError::Malformed(
                issuer.to_owned(),
                "its metadata names another issuer",
            ));
        }
        if !self.allows(&metadata.jwks_uri) {
            return Err(FetchError::Malformed(
                metadata.jwks_uri,
                "jwks_uri is not under an allowed issuer prefix",
            ));
        }
        let jwks: Jwks = self.get_json(&metadata.jwks_uri).await?;
        if jwks.keys.len() > self.settings.max_keys {
            return Err(FetchError::Malformed(
                metadata.jwks_uri,
                "the key set holds more keys than the limit",
            ));
        }
        let keys = jwks.keys.into_iter().filter_map(rs256_key).collect();
        Ok(KeySet { keys })
    }

    /// GETs `url` and reads its body, within the size limit, as JSON.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, FetchError> {
        let unreachable = |_| FetchError::Unreachable(url.to_owned());
        let mut response = self.client.get(url).send().await.map_err(unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(
                url.to_owned(),
                response.status().as_u16(),
            ));
        }
        let limit = self.settings.max_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge(url.to_owned()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge(url.to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|_| FetchError::Malformed(url.to_owned(), "not the JSON expected"))
    }
}

/// TLS to issuers: rustls with the ring provider (as the server's own TLS)
/// and the system's trusted roots.
fn tls_config() -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::warn!(
            errors = native.errors.len(),
            "some of the system's trusted roots could not be read"
        );
    }
    roots.add_parsable_certificates(native.certs);
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `https://host/.well-known/oauth-authorization-server/path` for an issuer
/// `https://host/path` (RFC 8414 section 3.1).
fn rfc8414_url(issuer: &str) -> Result<String, FetchError> {
    let url = url::Url::parse(issuer)
        .map_err(|_| FetchError::Malformed(issuer.to_owned(), "not a URL"))?;
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    Ok(format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    ))
}

/// An RSA signing key of 2048 to 8192 bits for RS256 from a JWKS member;
/// anything else (other types, encryption keys, other algorithms) is
/// skipped.
fn rs256_key(member: serde_json::Value) -> Option<IssuerKey> {
    let text = |name: &str| member.get(name).and_then(|v| v.as_str());
    if text("kty") != Some("RSA")
        || text("use").is_some_and(|u| u != "sig")
        || text("alg").is_some_and(|a| a != "RS256")
    {
        return None;
    }
    let (n, e) = (text("n")?, text("e")?);
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let modulus = URL_SAFE_NO_PAD.decode(n).ok()?;
    let first = modulus.iter().position(|b| *b != 0)?;
    let bits = (modulus.len() - first) * 8 - modulus[first].leading_zeros() as usize;
    if !(2048..=8192).contains(&bits) {
        return None;
    }
    Some(IssuerKey {
        kid: text("kid").map(str::to_owned),
        key: DecodingKey::from_rsa_components(n, e).ok()?,
    })
}
