//! Reaching the server: URL, caller key, TLS, timeouts, retries.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{Client, Error, RetryPolicy};

/// TLS settings for an `https://` server URL.
///
/// Without any, an `https://` URL trusts the system's root certificates.
/// `Debug` never shows the client identity's private key.
#[derive(Clone)]
pub struct Tls {
    config: ClientTlsConfig,
    roots: &'static str,
    domain_name: Option<String>,
    identity: bool,
}

impl Tls {
    /// Trusts the system's root certificates.
    pub fn system_roots() -> Self {
        Self {
            config: ClientTlsConfig::new().with_native_roots(),
            roots: "system",
            domain_name: None,
            identity: false,
        }
    }

    /// Trusts only `ca_pem`, a PEM certificate (a private CA's, say).
    pub fn ca_pem(ca_pem: impl AsRef<[u8]>) -> Self {
        Self {
            config: ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)),
            roots: "given CA",
            domain_name: None,
            identity: false,
        }
    }

    /// Expects `name` in the server's certificate instead of the URL's host
    /// (a server reached by IP address, or through a tunnel).
    pub fn domain_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            config: self.config.domain_name(name.clone()),
            domain_name: Some(name),
            ..self
        }
    }

    /// Presents a client certificate, for servers that require mutual TLS.
    pub fn identity(self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        Self {
            config: self.config.identity(Identity::from_pem(cert_pem, key_pem)),
            identity: true,
            ..self
        }
    }
}

// Written by hand: tonic's TLS settings print the private key's bytes.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("roots", &self.roots)
            .field("domain_name", &self.domain_name)
            .field("identity", &self.identity.then_some("[REDACTED]"))
            .finish()
    }
}

/// Settings of a [`Client`]; [`Client::builder`] makes one.
///
/// ```no_run
/// use std::time::Duration;
/// use extapps_client::{Client, RetryPolicy, Tls};
///
/// # fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let ca = std::fs::read("/etc/extapps/ca.pem")?;
/// let client = Client::builder("https://extapps.internal:50051", "extapps_key_...")
///     .tls(Tls::ca_pem(ca))
///     .timeout(Some(Duration::from_secs(5)))
///     .retry(RetryPolicy { retries: 5, ..RetryPolicy::default() })
///     .connect_lazy()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    key: SecretString,
    tls: Option<Tls>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    retry: RetryPolicy,
}

impl ClientBuilder {
    pub(crate) fn new(url: &str, key: &str) -> Self {
        Self {
            url: url.to_owned(),
            key: SecretString::from(key),
            tls: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Some(Duration::from_secs(30)),
            retry: RetryPolicy::default(),
        }
    }

    /// TLS settings (for an `https://` URL).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How long to wait for a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long each attempt of a call may take (default 30 s); `None`
    /// waits forever.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// When to retry calls that are safe to repeat (default: 3 retries).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Connects now: fails if the server cannot be reached.
    pub async fn connect(self) -> Result<Client, Error> {
        let endpoint = self.endpoint()?;
        let channel = endpoint.connect().await.map_err(Error::Connect)?;
        self.client(channel)
    }

    /// Connects on the first call (and reconnects as needed): for services
    /// that may start before the server does.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let channel = self.endpoint()?.connect_lazy();
        self.client(channel)
    }

    fn endpoint(&self) -> Result<Endpoint, Error> {
        let mut endpoint =
            Endpoint::from_shared(self.url.clone()).map_err(|source| Error::Url {
                url: self.url.clone(),
                source,
            })?;
        endpoint = endpoint.connect_timeout(self.connect_timeout);
        if let Some(timeout) = self.timeout {
            endpoint = endpoint.timeout(timeout);
        }
        let tls = match &self.tls {
            Some(tls) => Some(tls.clone()),
            None if self.url.starts_with("https://") => Some(Tls::system_roots()),
            None => None,
        };
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls.config).map_err(Error::Tls)?;
        }
        Ok(endpoint)
    }

    fn client(self, channel: Channel) -> Result<Client, Error> {
        Ok(Client {
            api: crate::with_key(channel, self.key.expose_secret())?,
            retry: self.retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_key_never_shows_in_debug_output() {
        let key =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBieXRlcw==\n-----END PRIVATE KEY-----\n";
        let tls = Tls::ca_pem("ca")
            .domain_name("extapps.internal")
            .identity("cert", key);
        let builder = Client::builder("https://extapps.internal", "extapps_key_secret").tls(tls);
        let shown = format!("{builder:?}");
        assert!(shown.contains("extapps.internal"), "{shown}");
        for secret in ["c2VjcmV0", "PRIVATE KEY", "extapps_key_secret", "99, 50"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
