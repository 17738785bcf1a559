//! The listener over a real socket: a half-sent request head is closed within the header
//! timeout, a half-sent body within the body timeout, a lying `Content-Length: 2^62` is
//! answered 413 at once, and connections beyond the limit wait for a free slot.

use crate::support::TestApp;
use cityos_server::http::listen::{serve, Limits};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(
    t: &TestApp,
    max_connections: usize,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let limits = Limits {
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        max_connections,
        drain: Duration::from_secs(1),
    };
    let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
    tokio::spawn(serve(listener, router, limits, async {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// Reads until the peer closes (or `within` passes): what was answered, and when it ended.
async fn read_all(s: &mut TcpStream, within: Duration) -> (String, Option<Duration>) {
    let t = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(t.elapsed()), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&buf).into_owned(),
                    Some(t.elapsed()),
                )
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (String::from_utf8_lossy(&buf).into_owned(), None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_lying_clients() {
    let t = TestApp::sqlite();
    let (addr, stop) = start(&t, 64).await;

    // A request head that never ends is closed within the header timeout.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, closed) = read_all(&mut s, Duration::from_secs(5)).await;
    let closed = closed.expect("a half-sent head must be closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");

    // A connection that sends nothing at all goes the same way.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (_, closed) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle connection must be closed");

    // A body that never arrives fails within the body timeout and the connection closes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user").await.unwrap();
    let (text, closed) = read_all(&mut s, Duration::from_secs(5)).await;
    let closed = closed.expect("a half-sent body must be closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    assert!(!text.starts_with("HTTP/1.1 5"), "{text}");

    // A lying Content-Length is refused at once, before any body byte.
    for path in [
        "/api/v1/reports",
        "/api/v1/media",
        "/api/v1/readings",
        "/api/v1/datasets/x",
        "/open311/v2/requests.json",
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4611686018427387904\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer to a lying Content-Length"))
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        assert!(text.contains("application/problem+json"), "{text}");
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    // A plain request still works.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_all(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait() {
    let t = TestApp::sqlite();
    let (addr, stop) = start(&t, 2).await;
    // Two idle connections take both slots (until the header timeout closes them).
    let started = Instant::now();
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_all(&mut c, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // It was served only once a slot was free: after the idle ones timed out.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "served after {:?}",
        started.elapsed()
    );
    let _ = stop.send(());
}
