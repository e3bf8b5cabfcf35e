//! Clients that hold connections without finishing requests: silent
//! connections, a header dribbled byte by byte, a body that never ends, more
//! connections than the cap, and a shutdown with such connections open.
//! Each runs against short limits and asserts only an upper bound.

use std::time::Duration;

use extapps_server::server::{ConnectionLimits, serve};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

use crate::support::harness::{Backend, TestServer};

crate::on_both_backends!(slow_and_idle_connections_are_closed);

/// Generous: every limit below is well under it.
const BOUND: Duration = Duration::from_secs(10);

fn short_limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        http2_keepalive: Duration::from_secs(5),
        max_connections: 3,
        max_connections_per_source: 1000,
        drain: Duration::from_secs(60),
    }
}

struct Front {
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
}

async fn front(server: &TestServer, limits: ConnectionLimits) -> Front {
    let router = extapps_server::server::router(server.service.clone())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(
        listener,
        None,
        router,
        async move {
            let _ = stopped.await;
        },
        limits,
    ));
    Front { addr, stop, served }
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

const TOKEN_HEAD: &str = "POST /oauth2/token HTTP/1.1\r\nHost: extapps\r\n\
    Content-Type: application/x-www-form-urlencoded\r\n";

async fn slow_and_idle_connections_are_closed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let front = front(&server, short_limits()).await;

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(front.addr).await.unwrap();
    assert_eq!(until_closed(&mut silent).await, "");

    // A request head dribbled a byte at a time, never finished.
    let mut dribble = TcpStream::connect(front.addr).await.unwrap();
    let dribbled = tokio::time::timeout(BOUND, async {
        for byte in TOKEN_HEAD.bytes().cycle() {
            if dribble.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(dribbled.is_ok(), "the dribbling client is cut off");

    // A chunked body that never ends: refused as unreadable, then closed.
    let mut endless = TcpStream::connect(front.addr).await.unwrap();
    endless
        .write_all(
            format!("{TOKEN_HEAD}Transfer-Encoding: chunked\r\n\r\n5\r\ngrant\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let answer = until_closed(&mut endless).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_request"), "{answer}");

    // A kept-alive connection after its request: closed once idle.
    let mut kept = TcpStream::connect(front.addr).await.unwrap();
    kept.write_all(
        b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: extapps\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // At the cap (3), a fourth connection is closed at once; once the
    // others go, connections are accepted again.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(TcpStream::connect(front.addr).await.unwrap());
    }
    let mut fourth = TcpStream::connect(front.addr).await.unwrap();
    fourth
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok();
    let refused = until_closed(&mut fourth).await;
    assert_eq!(refused, "", "no answer beyond the cap");
    drop(open);
    let answer = tokio::time::timeout(BOUND, async {
        loop {
            let mut again = TcpStream::connect(front.addr).await.unwrap();
            again
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .ok();
            let answer = until_closed(&mut again).await;
            if !answer.is_empty() {
                return answer;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a slot frees up once the connections close");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Unknown paths are a plain 404.
    let mut unknown = TcpStream::connect(front.addr).await.unwrap();
    unknown
        .write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut unknown).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    // Shutdown with a stalled and an idle connection open returns long before
    // the 60 s drain: nothing is in progress.
    let mut stalled = TcpStream::connect(front.addr).await.unwrap();
    stalled.write_all(b"POST /oauth2/tok").await.unwrap();
    let _idle = TcpStream::connect(front.addr).await.unwrap();
    front.stop.send(()).unwrap();
    tokio::time::timeout(BOUND, front.served)
        .await
        .expect("shutdown does not wait for stalled connections")
        .unwrap()
        .unwrap();
    assert_eq!(until_closed(&mut stalled).await, "");
}
