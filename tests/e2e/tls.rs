//! TLS by configuration: the real server binary with a certificate from a
//! private CA, reached by the typed client with its TLS options, and mutual
//! TLS when the server requires client certificates.

use extapps_client::{Client, Tls};

use crate::support::harness::workspace_bin;
use crate::support::pki::{pki, serve_tls, serve_tls_with, write};
use crate::support::processes::{create_key, run_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_speaks_tls_and_the_client_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let key = create_key(dir.path(), &[], "admin");
    let (serving, url) = serve_tls(dir.path(), &pki, false);

    let client = Client::builder(&url, &key)
        .tls(Tls::ca_pem(&pki.ca))
        .connect()
        .await
        .unwrap();
    assert!(!client.resources().await.unwrap().is_empty());

    // By IP address, the certificate's name is given explicitly.
    let by_ip = Client::builder(&format!("https://{}", serving.addr), &key)
        .tls(Tls::ca_pem(&pki.ca).domain_name("localhost"))
        .connect()
        .await
        .unwrap();
    assert!(!by_ip.resources().await.unwrap().is_empty());

    // A client that does not trust the CA (the system roots by default)
    // refuses the server; one expecting another name too.
    let untrusted = Client::builder(&url, &key).connect().await;
    assert!(untrusted.is_err(), "trusted a private CA by default");
    let misnamed = Client::builder(&format!("https://{}", serving.addr), &key)
        .tls(Tls::ca_pem(&pki.ca).domain_name("billing.internal"))
        .connect()
        .await;
    assert!(misnamed.is_err(), "accepted a certificate for another name");

    // The CLI, with the CA's certificate, and without it.
    let ca = write(dir.path(), "ca.pem", &pki.ca);
    let cli = |extra: &[&str]| {
        let output = std::process::Command::new(workspace_bin("extapps"))
            .env_clear()
            .args(["--url", &url, "--key", &key])
            .args(extra)
            .args(["resources", "list"])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, listed, err) = cli(&["--ca-cert", &ca]);
    assert_eq!(code, Some(0), "{err}");
    assert!(listed.contains("OR.Jobs.Read"), "{listed}");
    let (code, _, err) = cli(&[]);
    assert_eq!(code, Some(6), "unavailable: {err}");
    assert!(err.contains("cannot connect"), "{err}");

    // Plaintext gets nothing from a TLS port.
    let plaintext = Client::builder(&format!("http://{}", serving.addr), &key)
        .retry(extapps_client::RetryPolicy::never())
        .connect_lazy()
        .unwrap();
    assert!(plaintext.resources().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_the_server_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let key = create_key(dir.path(), &[], "admin");
    let (_serving, url) = serve_tls(dir.path(), &pki, true);

    let with_certificate = Client::builder(&url, &key)
        .tls(Tls::ca_pem(&pki.ca).identity(&pki.client.0, &pki.client.1))
        .connect()
        .await
        .unwrap();
    assert!(!with_certificate.resources().await.unwrap().is_empty());

    // Without one, the handshake fails, at connection or at the first call.
    let refused = match Client::builder(&url, &key)
        .tls(Tls::ca_pem(&pki.ca))
        .retry(extapps_client::RetryPolicy::never())
        .connect()
        .await
    {
        Err(_) => true,
        Ok(client) => client.resources().await.is_err(),
    };
    assert!(refused, "served a client without a certificate");
}

#[test]
fn bad_tls_files_stop_startup_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let cert = write(dir.path(), "server.pem", &pki.server.0);
    let other_key = write(dir.path(), "other.key", &pki.client.1);
    let not_pem = write(dir.path(), "notes.txt", "hello");
    for (env, expected) in [
        (
            vec![("EXTAPPS_TLS_CERT", cert.as_str())],
            "--tls-key <TLS_KEY>",
        ),
        (
            vec![
                ("EXTAPPS_TLS_CERT", not_pem.as_str()),
                ("EXTAPPS_TLS_KEY", other_key.as_str()),
            ],
            "no PEM certificate",
        ),
        (
            vec![
                ("EXTAPPS_TLS_CERT", cert.as_str()),
                ("EXTAPPS_TLS_KEY", other_key.as_str()),
            ],
            "do not make a pair",
        ),
    ] {
        let (ok, _, err) = run_with(dir.path(), &env, &["serve", "--listen", "127.0.0.1:0"]);
        assert!(!ok, "started with {env:?}");
        assert!(err.contains(expected), "{env:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A client that opens a connection and never starts its handshake is cut
/// off at the header deadline, and meanwhile others are served: handshakes
/// do not wait in line behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_neither_blocks_others_nor_stays() {
    use tokio::io::AsyncReadExt;

    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let key = create_key(dir.path(), &[], "admin");
    let (serving, url) = serve_tls_with(
        dir.path(),
        &pki,
        false,
        &[("EXTAPPS_HEADER_READ_TIMEOUT", "500ms")],
    );
    let mut stalled = Vec::new();
    for _ in 0..32 {
        stalled.push(tokio::net::TcpStream::connect(&serving.addr).await.unwrap());
    }
    let client = Client::builder(&url, &key)
        .tls(Tls::ca_pem(&pki.ca))
        .connect()
        .await
        .unwrap();
    client.resources().await.unwrap();
    for mut stream in stalled {
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut buf = [0u8; 16];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "a silent TLS connection is closed");
    }
}
