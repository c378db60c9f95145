//! Connection bounds (crates/server/src/conn.rs): idle, half-sent and body-less connections are
//! closed; many open connections do not stop the health endpoint; request bodies are bounded.
//!
//! Every wait is on an event (the server closing the socket: a read returning EOF, or an answer),
//! with a generous upper bound; the timeouts under test are shortened through the limits.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use rampart_server::conn::{self, ConnectionLimits, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far more than any timeout under test: only a broken server hits it.
const BOUND: Duration = Duration::from_secs(20);

struct Server {
    addr: std::net::SocketAddr,
    registry: Arc<Registry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(limits: ConnectionLimits) -> Server {
        let body_timeout = limits.body_read_timeout;
        let app =
            Router::new().route("/_rampart/health", get(|| async { "ok" })).fallback(move |req: Request| async move {
                let (parts, body) = req.into_parts();
                let limit = conn::body_limit(&parts.headers);
                match conn::read_body(&parts.headers, body, limit, body_timeout).await {
                    Ok(bytes) => format!("read {} bytes", bytes.len()).into_response(),
                    Err(e) => e.response(&parts.headers),
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = Registry::new(limits.effective_max_connections());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(conn::serve(listener, app, limits, registry.clone(), async move {
            let _ = stopped.await;
        }));
        Server { addr, registry, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(BOUND, &mut self.task).await.expect("server stops").unwrap();
    }
}

fn quick() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        max_connections: 64,
    }
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

async fn health(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::time::timeout(BOUND, TcpStream::connect(addr)).await.unwrap().unwrap();
    s.write_all(b"GET /_rampart/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    read_to_close(&mut s).await
}

#[tokio::test]
async fn silent_half_sent_and_idle_connections_are_closed() {
    let server = Server::start(quick()).await;

    // Nothing at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, "");

    // Half the headers.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty").await.unwrap();
    assert_eq!(read_to_close(&mut half).await, "");

    // HTTP/2 preface, then nothing.
    let mut h2 = TcpStream::connect(server.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    read_to_close(&mut h2).await;

    // A kept-alive connection after its call: answered, then closed when idle.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /_rampart/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");

    server.stop().await;
}

#[tokio::test]
async fn a_body_that_never_comes_times_out_with_400() {
    let server = Server::start(quick()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nAction=Get").await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn malformed_chunked_body_is_400_and_oversized_is_413() {
    let limits = ConnectionLimits { body_read_timeout: BOUND, ..quick() };
    let server = Server::start(limits).await;

    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nnot hex\r\n0\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>IncompleteBody</Code>"), "{answer}");

    // A declared length over the limit is refused before any of the body is sent.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", conn::MAX_BODY_BYTES + 1);
    s.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // JSON requests get the JSON error shape; chunked bodies beyond the limit are cut off.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.Encrypt\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let mut sent = 0;
    while sent <= conn::MAX_BODY_BYTES {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if s.write_all(&frame).await.is_err() {
            break; // The server answered and closed.
        }
        sent += chunk.len();
    }
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"__type\":\"RequestEntityTooLarge\""), "{answer}");

    // A well-formed body is read.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello").await.unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.ends_with("read 5 bytes"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn health_answers_with_many_connections_open() {
    // Connections that hold on (long timeouts), far more than the cap.
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(300),
        body_read_timeout: Duration::from_secs(300),
        idle_timeout: Duration::from_secs(300),
        max_connections: 16,
    };
    let server = Server::start(limits).await;
    let mut held = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        }
        held.push(s);
    }
    let answer = health(server.addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(server.registry.open_connections() <= 16, "{}", server.registry.open_connections());
    // The oldest connections made room: the server closed them.
    assert_eq!(read_to_close(&mut held[0]).await, "");
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn graceful_stop_closes_idle_connections() {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(300),
        idle_timeout: Duration::from_secs(300),
        ..quick()
    };
    let server = Server::start(limits).await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /_rampart/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    tokio::time::timeout(BOUND, idle.read_exact(&mut first)).await.unwrap().unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    server.stop().await;
    read_to_close(&mut idle).await;
}
