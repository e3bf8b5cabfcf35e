//! A private CA and its certificates, and the server binary serving TLS
//! with them.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::support::processes::Serving;

/// A private CA, a server certificate for `localhost` and a client
/// certificate, all as PEM.
pub(crate) struct Pki {
    pub(crate) ca: String,
    pub(crate) server: (String, String),
    pub(crate) client: (String, String),
}

/// A fresh private CA and the certificates it signed.
pub(crate) fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf("localhost"),
        client: leaf("resource-server.internal"),
    }
}

/// Writes `pem` to `dir/name`; returns the file's path.
pub(crate) fn write(dir: &Path, name: &str, pem: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path.to_string_lossy().into_owned()
}

/// The server binary with `pki`'s server certificate (and, if asked, its
/// CA for client certificates): the server and its `https://localhost` URL.
pub(crate) fn serve_tls(dir: &Path, pki: &Pki, client_ca: bool) -> (Serving, String) {
    serve_tls_with(dir, pki, client_ca, &[])
}

/// [`serve_tls`] with extra environment variables.
pub(crate) fn serve_tls_with(
    dir: &Path,
    pki: &Pki,
    client_ca: bool,
    extra: &[(&str, &str)],
) -> (Serving, String) {
    let mut env = vec![
        ("EXTAPPS_TLS_CERT", write(dir, "server.pem", &pki.server.0)),
        ("EXTAPPS_TLS_KEY", write(dir, "server.key", &pki.server.1)),
    ];
    if client_ca {
        env.push(("EXTAPPS_TLS_CLIENT_CA", write(dir, "ca.pem", &pki.ca)));
    }
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    let serving = Serving::start_with(dir, &env);
    let port = serving.addr.rsplit(':').next().unwrap().to_owned();
    (serving, format!("https://localhost:{port}"))
}
