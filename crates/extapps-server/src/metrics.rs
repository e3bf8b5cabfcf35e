//! Prometheus metrics: calls and their latency per gRPC method and OAuth
//! endpoint, token request outcomes, introspection answers and the hit ratio
//! of the verified-secret cache, the client secrets about to expire, and
//! the writes of client assertions' jti. Served at `GET /metrics`.

use std::{borrow::Cow, sync::Arc, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// `grpc` or `http`.
    transport: &'static str,
    /// gRPC method or HTTP path.
    endpoint: &'static str,
    /// gRPC status code name or HTTP status.
    code: Cow<'static, str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    transport: &'static str,
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WithinLabels {
    /// `7d` or `30d`.
    within: &'static str,
}

/// The horizons of the expiring-secrets gauge, with their labels.
pub const EXPIRY_HORIZONS: [(&str, time::Duration); 2] = [
    ("7d", time::Duration::days(7)),
    ("30d", time::Duration::days(30)),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    outcome: &'static str,
}

/// The server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    calls: Family<CallLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    token_requests: Family<OutcomeLabels, Counter>,
    introspections: Family<OutcomeLabels, Counter>,
    secret_cache: Family<OutcomeLabels, Counter>,
    client_assertions: Family<OutcomeLabels, Counter>,
    signature_checks: Counter,
    federation_fetches: Family<OutcomeLabels, Counter>,
    replica_cache: Family<CacheLabels, Counter>,
    hash_upgrades: Counter,
    secrets_expiring: Family<WithinLabels, Gauge>,
    used_assertion_writes: Family<OutcomeLabels, Histogram>,
    used_assertion_rows: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("extapps");
        let calls = Family::<CallLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms to about 4 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        });
        let token_requests = Family::<OutcomeLabels, Counter>::default();
        let introspections = Family::<OutcomeLabels, Counter>::default();
        let secret_cache = Family::<OutcomeLabels, Counter>::default();
        let client_assertions = Family::<OutcomeLabels, Counter>::default();
        let signature_checks = Counter::default();
        let federation_fetches = Family::<OutcomeLabels, Counter>::default();
        let replica_cache = Family::<CacheLabels, Counter>::default();
        let hash_upgrades = Counter::default();
        let secrets_expiring = Family::<WithinLabels, Gauge>::default();
        let used_assertion_writes =
            Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
                // 0.1 ms to about 6.6 s, past the 5 s a request waits for it.
                Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
            });
        let used_assertion_rows = Counter::default();
        registry.register(
            "calls",
            "Calls answered, by endpoint and status",
            calls.clone(),
        );
        registry.register(
            "call_duration_seconds",
            "Time to answer a call, by endpoint",
            latency.clone(),
        );
        registry.register(
            "token_requests",
            "Token endpoint requests, by outcome (issued or the OAuth error code)",
            token_requests.clone(),
        );
        registry.register(
            "introspections",
            "Introspection answers, active or inactive",
            introspections.clone(),
        );
        registry.register(
            "verified_secret_cache_lookups",
            "Client authentications answered from the verified-secret cache (hit) or by argon2id (miss)",
            secret_cache.clone(),
        );
        registry.register(
            "client_assertions",
            "Client assertions (private_key_jwt and federated credentials) presented, by outcome: accepted, or why refused",
            client_assertions.clone(),
        );
        registry.register(
            "client_assertion_signature_checks",
            "Signatures of client assertions checked (at most one per request from an address refused for its failures)",
            signature_checks.clone(),
        );
        registry.register(
            "federation_fetches",
            "Fetches of an outside identity provider's metadata and keys, by outcome (ok, or why not)",
            federation_fetches.clone(),
        );
        registry.register(
            "replica_cache_lookups",
            "Lookups in this replica's caches of caller keys and applications, by outcome (hit, miss, distrusted)",
            replica_cache.clone(),
        );
        registry.register(
            "secret_hash_upgrades",
            "Client secret hashes replaced on use: made with earlier, password-grade parameters",
            hash_upgrades.clone(),
        );
        registry.register(
            "client_secrets_expiring",
            "Client secrets, of all applications, that expire by themselves within the horizon \
             (replaced secrets in their grace period not included), as of the last housekeeping",
            secrets_expiring.clone(),
        );
        registry.register(
            "used_assertion_write_duration_seconds",
            "Time to write one batch of client assertions' jti (one statement, one commit), by outcome (ok or error)",
            used_assertion_writes.clone(),
        );
        registry.register(
            "used_assertion_rows",
            "Client assertions' jti in the batches written without error (replays among them included: the write refuses them)",
            used_assertion_rows.clone(),
        );
        Self {
            registry: Arc::new(registry),
            calls,
            latency,
            token_requests,
            introspections,
            secret_cache,
            client_assertions,
            signature_checks,
            federation_fetches,
            replica_cache,
            hash_upgrades,
            secrets_expiring,
            used_assertion_writes,
            used_assertion_rows,
        }
    }
}

impl Metrics {
    /// Counts one answered call.
    pub fn call(
        &self,
        transport: &'static str,
        endpoint: &'static str,
        code: Cow<'static, str>,
        took: Duration,
    ) {
        self.calls
            .get_or_create(&CallLabels {
                transport,
                endpoint,
                code,
            })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels {
                transport,
                endpoint,
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one batch of used assertions written (`rows` of them), or
    /// that failed (`None`).
    pub fn used_assertions_written(&self, rows: Option<usize>, took: Duration) {
        let outcome = if rows.is_some() { "ok" } else { "error" };
        self.used_assertion_writes
            .get_or_create(&OutcomeLabels { outcome })
            .observe(took.as_secs_f64());
        if let Some(rows) = rows {
            self.used_assertion_rows.inc_by(rows as u64);
        }
    }

    pub fn token_request(&self, outcome: &'static str) {
        self.token_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn introspection(&self, active: bool) {
        let outcome = if active { "active" } else { "inactive" };
        self.introspections
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn secret_cache(&self, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.secret_cache
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// A client assertion accepted (`accepted`) or refused, and why.
    pub fn client_assertion(&self, outcome: &'static str) {
        self.client_assertions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// One client assertion signature checked.
    pub fn signature_checked(&self) {
        self.signature_checks.inc();
    }

    /// One fetch of an issuer's keys, and how it went.
    pub fn federation_fetch(&self, outcome: &'static str) {
        self.federation_fetches
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn secret_hash_upgraded(&self) {
        self.hash_upgrades.inc();
    }

    /// A lookup in a replica cache (`callers`, `applications`): `hit`,
    /// `miss`, or `distrusted` (the replica cannot see other replicas'
    /// changes right now, so it asked the database).
    pub fn replica_cache(&self, cache: &'static str, outcome: &'static str) {
        self.replica_cache
            .get_or_create(&CacheLabels { cache, outcome })
            .inc();
    }

    /// How many secrets expire within the horizon labelled `within`.
    pub fn secrets_expiring(&self, within: &'static str, count: u64) {
        self.secrets_expiring
            .get_or_create(&WithinLabels { within })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        out
    }
}
