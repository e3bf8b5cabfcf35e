//! The server's side of every accepted connection, plaintext and TLS, has
//! `TCP_NODELAY` set: a response written in pieces (a gRPC header frame,
//! then data) must not wait for the peer's delayed ACK, which costs a
//! client that sends one call at a time about 40 ms per call. The option is
//! read from the real server process's own sockets, duplicated with
//! `pidfd_getfd(2)`, so the check does not depend on timing.

use std::net::SocketAddr;

use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
use socket2::SockRef;

use crate::support::pki::{pki, serve_tls};
use crate::support::processes::{Serving, create_key};

/// `TCP_NODELAY` of each connection `pid` accepted on `listening`, read
/// from duplicates of its sockets.
fn accepted_nodelay(pid: u32, listening: SocketAddr) -> Vec<bool> {
    let process = Pid::from_raw(pid as i32).unwrap();
    let pidfd = pidfd_open(process, PidfdFlags::empty()).unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // closed meanwhile
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let number: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let socket = match pidfd_getfd(&pidfd, number, PidfdGetfdFlags::empty()) {
            Ok(socket) => socket,
            Err(rustix::io::Errno::BADF) => continue, // closed meanwhile
            // Refused (a seccomp filter, ptrace rules): say so, rather than
            // report no sockets.
            Err(e) => panic!("cannot read the server's socket {number}: {e}"),
        };
        let socket = SockRef::from(&socket);
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
        if local == Some(listening) && peer.is_some() {
            found.push(socket.tcp_nodelay().unwrap());
        }
    }
    found
}

fn listening(serving: &Serving) -> SocketAddr {
    serving.addr.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_plaintext_connections_send_without_delay() {
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(dir.path(), &[], "admin");
    let serving = Serving::start_with(dir.path(), &[]);
    // A gRPC call and an HTTP request, each on its own connection, both
    // answered: both connections are accepted and still open below.
    let client = extapps_client::connect(&serving.url(), &key).await.unwrap();
    assert!(!client.resources().await.unwrap().is_empty());
    let http = reqwest::Client::new();
    let metadata = http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            serving.url()
        ))
        .send()
        .await
        .unwrap();
    assert!(metadata.status().is_success());

    let accepted = accepted_nodelay(serving.pid(), listening(&serving));
    assert!(accepted.len() >= 2, "{accepted:?}");
    assert!(
        accepted.iter().all(|nodelay| *nodelay),
        "TCP_NODELAY of each accepted socket: {accepted:?}"
    );
    drop((client, http));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_tls_connections_send_without_delay() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let key = create_key(dir.path(), &[], "admin");
    let (serving, url) = serve_tls(dir.path(), &pki, false);
    let client = extapps_client::Client::builder(&url, &key)
        .tls(extapps_client::Tls::ca_pem(&pki.ca))
        .connect()
        .await
        .unwrap();
    assert!(!client.resources().await.unwrap().is_empty());

    let accepted = accepted_nodelay(serving.pid(), listening(&serving));
    assert!(!accepted.is_empty());
    assert!(
        accepted.iter().all(|nodelay| *nodelay),
        "TCP_NODELAY of each accepted TLS socket: {accepted:?}"
    );
    drop(client);
}
