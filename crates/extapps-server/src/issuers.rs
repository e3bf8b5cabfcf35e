//! The signing keys of outside identity providers, for federated
//! credentials: read from the issuer's published metadata (OpenID Connect
//! discovery, else RFC 8414) and its `jwks_uri`, only for issuers the
//! operator allows, and with every wait and size bounded: a connect and a
//! total timeout, a body limit, no redirect to another origin, a bounded
//! number of keys per issuer, and a cache bounded in size and time. An
//! issuer's keys are fetched at most once a minute (again for a `kid` the
//! cached set does not hold), by one request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

use crate::domain::federation::AllowedIssuers;
use crate::metrics::Metrics;

/// How the server reads outside providers' keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationSettings {
    /// Issuers (URL prefixes) whose keys may be fetched; none by default.
    pub allowed: AllowedIssuers,
    pub connect_timeout: Duration,
    /// For one fetch of an issuer's keys, metadata and key set together.
    pub timeout: Duration,
    /// Bytes of a metadata document or key set.
    pub max_bytes: usize,
    /// Keys of one key set.
    pub max_keys: usize,
    /// How long a key set is used before it is fetched again (a key the
    /// provider removed works this long at most).
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
            cache_ttl: Duration::from_secs(600),
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

impl FetchError {
    /// The label of the failure in metrics.
    fn label(&self) -> &'static str {
        match self {
            FetchError::NotAllowed => "not_allowed",
            FetchError::TooSoon => "too_soon",
            FetchError::Unreachable(_) => "unreachable",
            FetchError::Status(..) => "status",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Malformed(..) => "malformed",
        }
    }
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

/// Fetches running at once, across issuers: a flood of tokens naming many
/// issuers under one allowed prefix costs a few outbound requests at a
/// time, never one each.
const FETCHES_AT_ONCE: usize = 4;

/// Outside providers' keys; cheap to clone.
#[derive(Clone)]
pub struct IssuerKeys(Arc<Inner>);

struct Inner {
    settings: FederationSettings,
    /// `None` when no issuer is allowed: nothing is ever fetched, and the
    /// system's roots are not read at start-up for nothing.
    client: Option<reqwest::Client>,
    sets: moka::sync::Cache<String, Arc<KeySet>>,
    /// When each issuer was last fetched, on the service clock: at most one
    /// fetch a minute. A plain map, pruned when full, so that no entry is
    /// ever turned away (a cache's admission policy could).
    fetched: Mutex<HashMap<String, OffsetDateTime>>,
    fetching: Arc<tokio::sync::Semaphore>,
    metrics: Metrics,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("allowed", &self.0.settings.allowed)
            .field("cached", &self.0.sets.entry_count())
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
    pub fn new(settings: FederationSettings, metrics: Metrics) -> Result<Self, String> {
        // A redirect is followed only within the origin it starts from, and
        // only to an allowed place.
        let allowed = settings.allowed.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let first = attempt.previous().first();
            let same_origin = first.is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && allowed.allows(attempt.url().as_str()) && attempt.previous().len() < 3
            {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let client = match settings.allowed.is_empty() {
            true => None,
            false => Some(
                reqwest::Client::builder()
                    .use_preconfigured_tls(tls_config()?)
                    .connect_timeout(settings.connect_timeout)
                    .timeout(settings.timeout)
                    .redirect(redirects)
                    .no_proxy()
                    .user_agent(concat!("extapps/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(Self(Arc::new(Inner {
            sets: moka::sync::Cache::builder()
                .max_capacity(CACHED_ISSUERS)
                .time_to_live(settings.cache_ttl)
                .build(),
            fetched: Mutex::default(),
            fetching: Arc::new(tokio::sync::Semaphore::new(FETCHES_AT_ONCE)),
            settings,
            client,
            metrics,
        })))
    }

    /// Whether `issuer` is one the operator allows: checked before any
    /// network call.
    pub fn allows(&self, issuer: &str) -> bool {
        self.0.settings.allowed.allows(issuer)
    }

    /// The keys of `issuer` for a token whose header names `kid` (or none):
    /// from the cache, or fetched when the cached set does not hold `kid`
    /// (or `refresh` asks, after a signature the cached keys did not
    /// verify), at most once a minute per issuer and a few at a time in
    /// all. A fetch runs on its own task: a caller that goes away does not
    /// cancel it, and its result is kept for everyone. When no fetch may
    /// run, the answer is `TooSoon`: retry later.
    pub async fn key_set(
        &self,
        issuer: &str,
        kid: Option<&str>,
        refresh: bool,
        now: OffsetDateTime,
    ) -> Result<Arc<KeySet>, FetchError> {
        if !self.allows(issuer) {
            return Err(FetchError::NotAllowed);
        }
        if let Some(set) = self.0.sets.get(issuer)
            && set.holds(kid)
            && !refresh
        {
            return Ok(set);
        }
        let Ok(permit) = self.0.fetching.clone().try_acquire_owned() else {
            return Err(FetchError::TooSoon);
        };
        if !self.claim_fetch(issuer, now) {
            return Err(FetchError::TooSoon);
        }
        let inner = self.0.clone();
        let issuer = issuer.to_owned();
        let fetch = tokio::spawn(async move {
            let _permit = permit;
            let fetched =
                match tokio::time::timeout(inner.settings.timeout, inner.fetch(&issuer)).await {
                    Ok(fetched) => fetched,
                    Err(_) => Err(FetchError::Unreachable(issuer.clone())),
                };
            inner.metrics.federation_fetch(match &fetched {
                Ok(_) => "ok",
                Err(e) => e.label(),
            });
            match fetched {
                Ok(set) => {
                    let set = Arc::new(set);
                    inner.sets.insert(issuer, set.clone());
                    Ok(set)
                }
                Err(e) => {
                    tracing::warn!(issuer, error = %e, "could not read a federated issuer's keys");
                    Err(e)
                }
            }
        });
        fetch.await.unwrap_or(Err(FetchError::TooSoon))
    }

    /// `issuer`'s key set as cached, without any fetch.
    pub fn cached(&self, issuer: &str) -> Option<Arc<KeySet>> {
        self.0.sets.get(issuer)
    }

    /// Claims the one fetch a minute of `issuer`; `false` if it is taken,
    /// or if more issuers than the cache holds were fetched within the
    /// minute.
    fn claim_fetch(&self, issuer: &str, now: OffsetDateTime) -> bool {
        let every = self.0.settings.refetch_after;
        let mut fetched = self
            .0
            .fetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if fetched.get(issuer).is_some_and(|last| now - *last < every) {
            return false;
        }
        if fetched.len() >= CACHED_ISSUERS as usize {
            fetched.retain(|_, last| now - *last < every);
            if fetched.len() >= CACHED_ISSUERS as usize {
                return false;
            }
        }
        fetched.insert(issuer.to_owned(), now);
        true
    }
}

impl Inner {
    fn allows(&self, url: &str) -> bool {
        self.settings.allowed.allows(url)
    }

    async fn fetch(&self, issuer: &str) -> Result<KeySet, FetchError> {
        let base = issuer.trim_end_matches('/');
        let metadata: Metadata = match self
            .get_json(&format!("{base}/.well-known/openid-configuration"))
            .await
        {
            Ok(metadata) => metadata,
            // RFC 8414 section 3: the well-known part before the issuer's
            // path, which must be allowed too.
            Err(FetchError::Status(..)) => {
                let url = rfc8414_url(issuer)?;
                if !self.allows(&url) {
                    return Err(FetchError::Malformed(
                        url,
                        "RFC 8414 metadata is outside the allowed prefixes",
                    ));
                }
                self.get_json(&url).await?
            }
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
        let Some(client) = &self.client else {
            return Err(FetchError::NotAllowed);
        };
        let mut response = client.get(url).send().await.map_err(unreachable)?;
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
