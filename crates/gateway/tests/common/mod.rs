//! Test support: a tiny upstream on 127.0.0.1, a gateway started in-process, a raw HTTP/1.1 client
//! (requests sent as bytes, optionally from another loopback source address).
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart_gateway::{Gateway, GatewayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
}

/// An upstream that answers 200 with a JSON echo of what it received, and `x-upstream: 1`.
pub async fn upstream() -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else { continue };
            let h = h.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let h = h.clone();
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let headers: serde_json::Map<String, serde_json::Value> = parts
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_string(),
                                    serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                                )
                            })
                            .collect();
                        let echo = serde_json::json!({
                            "method": parts.method.as_str(),
                            "uri": parts.uri.to_string(),
                            "headers": headers,
                            "body": String::from_utf8_lossy(&body),
                        });
                        let mut r = http::Response::new(Full::new(Bytes::from(echo.to_string())));
                        r.headers_mut().insert("x-upstream", http::HeaderValue::from_static("1"));
                        r.headers_mut().insert("content-type", http::HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Upstream { addr, hits }
}

pub struct TestGateway {
    pub gw: Gateway,
    pub acl_path: PathBuf,
    pub dir: tempfile::TempDir,
    pub upstream: Upstream,
}

impl TestGateway {
    pub fn addr(&self) -> SocketAddr {
        self.gw.addr
    }

    /// Rewrites the web ACL file (atomically: a rename), so the watcher sees it whole.
    pub fn write_acl(&self, acl: &serde_json::Value) {
        write_atomic(&self.acl_path, &acl.to_string());
    }
}

pub fn write_atomic(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write acl");
    std::fs::rename(&tmp, path).expect("rename acl");
}

/// Starts an upstream and a gateway in front of it; `tweak` adjusts the configuration.
pub async fn start(acl: Option<serde_json::Value>, tweak: impl FnOnce(&mut GatewayConfig)) -> TestGateway {
    let up = upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let acl_path = dir.path().join("acl.json");
    let mut cfg =
        GatewayConfig::new("127.0.0.1:0".parse().expect("addr"), &format!("http://{}", up.addr)).expect("config");
    if let Some(a) = acl {
        std::fs::write(&acl_path, a.to_string()).expect("write acl");
        cfg.web_acl = Some(acl_path.clone());
    }
    cfg.admin_listen = Some("127.0.0.1:0".parse().expect("addr"));
    cfg.reload_poll = Duration::from_millis(50);
    cfg.shield.auto_mitigation = false;
    tweak(&mut cfg);
    let gw = Gateway::start(cfg).await.expect("gateway starts");
    TestGateway { gw, acl_path, dir, upstream: up }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn is_from_upstream(&self) -> bool {
        self.header("x-upstream") == Some("1")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn connect_from(addr: SocketAddr, src: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    sock.connect(addr).await
}

/// Reads one HTTP/1.1 response (Content-Length or close-delimited).
pub async fn read_response(s: &mut TcpStream) -> std::io::Result<Resp> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a response"));
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    let mut body = buf[head_end..].to_vec();
    let cl = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if let Some(cl) = cl {
        while body.len() < cl {
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&tmp[..n]);
        }
        body.truncate(cl);
    } else if chunked {
        loop {
            if body.windows(5).any(|w| w == b"0\r\n\r\n") {
                break;
            }
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&tmp[..n]);
        }
        body = dechunk(&body);
    } else if status != 204 && status != 304 {
        s.read_to_end(&mut body).await?;
    }
    Ok(Resp { status, headers, body })
}

fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = b[i..].windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[i..i + p]).trim(), 16).unwrap_or(0);
        i += p + 2;
        if size == 0 || i + size > b.len() {
            break;
        }
        out.extend_from_slice(&b[i..i + size]);
        i += size + 2;
    }
    out
}

/// Sends raw bytes on a new connection and reads one response.
pub async fn raw(addr: SocketAddr, src: Option<IpAddr>, req: &[u8]) -> std::io::Result<Resp> {
    let mut s = connect_from(addr, src).await?;
    s.write_all(req).await?;
    tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no response"))?
}

/// A GET with the usual headers.
pub async fn get(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> Resp {
    request(addr, None, "GET", path, extra, b"").await
}

pub async fn request(
    addr: SocketAddr,
    src: Option<IpAddr>,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: app.example\r\nUser-Agent: rampart-test/1.0\r\nAccept: */*\r\nConnection: close\r\n");
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, src, &bytes).await.expect("response")
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes (waiting on a condition, not a sleep).
pub async fn wait_until<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn vis(name: &str) -> serde_json::Value {
    serde_json::json!({"SampledRequestsEnabled": true, "CloudWatchMetricsEnabled": true, "MetricName": name})
}

pub fn acl(rules: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "Name": "test-acl", "Scope": "REGIONAL", "DefaultAction": {"Allow": {}},
        "Rules": rules, "VisibilityConfig": vis("test-acl")
    })
}

/// GET on the admin listener.
pub async fn admin_get(gw: &TestGateway, path: &str) -> Resp {
    let a = gw.gw.admin_addr.expect("admin listener");
    raw(a, None, format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("admin response")
}
