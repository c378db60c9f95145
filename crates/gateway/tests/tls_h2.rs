//! TLS listener (rustls, ALPN h2 / http/1.1) and HTTP/2 to clients, through the WAF.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

fn block_evil() -> serde_json::Value {
    acl(json!([{"Name": "evil", "Priority": 1, "Action": {"Block": {}}, "VisibilityConfig": vis("evil"),
        "Statement": {"ByteMatchStatement": {"SearchString": "/evil", "PositionalConstraint": "STARTS_WITH",
            "TextTransformations": [{"Priority": 0, "Type": "NONE"}], "FieldToMatch": {"UriPath": {}}}}}]))
}

async fn h2_get<T>(io: T, authority: &str, path: &str) -> (u16, String)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await.expect("h2 handshake");
    tokio::spawn(conn);
    let req =
        http::Request::builder().uri(format!("https://{authority}{path}")).body(Empty::<Bytes>::new()).expect("req");
    let res = sender.send_request(req).await.expect("h2 response");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn http2_prior_knowledge_through_the_waf() {
    let g = start(Some(block_evil()), |_| {}).await;
    let (status, body) =
        h2_get(tokio::net::TcpStream::connect(g.addr()).await.expect("tcp"), "app.example", "/ok").await;
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_str(&body).expect("echo");
    assert_eq!(echo["headers"]["host"], "app.example", "h2 :authority becomes Host upstream");
    let (status, _) =
        h2_get(tokio::net::TcpStream::connect(g.addr()).await.expect("tcp"), "app.example", "/evil").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn tls_with_alpn_h2() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIP tls_with_alpn_h2: openssl not available to make a test certificate");
        return;
    }
    let (c2, k2) = (cert.clone(), key.clone());
    let g = start(Some(block_evil()), move |c| {
        c.tls_cert = Some(c2);
        c.tls_key = Some(k2);
    })
    .await;
    use rustls_pki_types::pem::PemObject;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&cert).expect("pem") {
        roots.add(c.expect("cert")).expect("add root");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tcp = tokio::net::TcpStream::connect(g.addr()).await.expect("tcp");
    let tls = connector.connect(name.clone(), tcp).await.expect("tls handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = h2_get(tls, "localhost", "/fine").await;
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_str(&body).expect("echo");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    let tcp = tokio::net::TcpStream::connect(g.addr()).await.expect("tcp");
    let tls = connector.connect(name, tcp).await.expect("tls handshake");
    assert_eq!(h2_get(tls, "localhost", "/evil").await.0, 403);
}
