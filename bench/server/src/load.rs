//! `run` and `setup`: signed calls over keep-alive HTTP/1.1 connections on a single-threaded
//! runtime (the generator itself stays on one core; the server gets the rest).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::args::{Args, Op};
use crate::request::{self, Signed};

type Sender = SendRequest<Full<Bytes>>;

/// What one connection saw.
#[derive(Default)]
struct Stats {
    ok: usize,
    errors: usize,
    reconnects: usize,
    latencies_us: Vec<u32>,
    error_sample: Option<String>,
}

pub fn run(args: &Args) -> Result<String, String> {
    runtime()?.block_on(run_load(args))
}

pub fn setup(args: &Args) -> Result<String, String> {
    let args = &Args { url: args.url.split(',').next().unwrap_or_default().to_string(), ..args.clone() };
    runtime()?.block_on(async {
        let signed = request::signed(args, Op::IamCreateUser, SystemTime::now())?;
        let mut sender = connect(&authority(args)?).await?;
        let (status, body) = send(&mut sender, &signed).await.map_err(|e| format!("CreateUser: {e}"))?;
        let exists = String::from_utf8_lossy(&body).contains("EntityAlreadyExists");
        if status != 200 && !exists {
            return Err(format!("CreateUser answered {status}: {}", String::from_utf8_lossy(&body)));
        }
        // moto closes every connection after one answer: a new one for the second call.
        let mut sender = connect(&authority(args)?).await?;
        let signed = request::signed(args, Op::IamCreateRole, SystemTime::now())?;
        let (role_status, body) = send(&mut sender, &signed).await.map_err(|e| format!("CreateRole: {e}"))?;
        let exists = String::from_utf8_lossy(&body).contains("EntityAlreadyExists");
        if role_status != 200 && !exists {
            return Err(format!("CreateRole answered {role_status}: {}", String::from_utf8_lossy(&body)));
        }
        let mut sender = connect(&authority(args)?).await?;
        let signed = request::signed(args, Op::SecretsCreateSecret, SystemTime::now())?;
        let (secret_status, body) = send(&mut sender, &signed).await.map_err(|e| format!("CreateSecret: {e}"))?;
        let exists = String::from_utf8_lossy(&body).contains("ResourceExistsException");
        if secret_status != 200 && !exists {
            return Err(format!("CreateSecret answered {secret_status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(format!(
            "{{\"setup\":\"iam:CreateUser+iam:CreateRole+secretsmanager:CreateSecret\",\"user_name\":{},\"status\":{status}}}",
            json_str(&args.user_name)
        ))
    })
}

/// `kms-setup`: CreateKey, then one Encrypt of the benchmark plaintext; prints the key ID and the
/// ciphertext (kms-decrypt needs a ciphertext made by the server under test).
pub fn kms_setup(args: &Args) -> Result<String, String> {
    runtime()?.block_on(async {
        let mut sender = connect(&authority(args)?).await?;
        let signed = request::signed(args, Op::KmsCreateKey, SystemTime::now())?;
        let (status, body) = send(&mut sender, &signed).await.map_err(|e| format!("CreateKey: {e}"))?;
        let body = String::from_utf8_lossy(&body).to_string();
        let key_id = match (status, json_string_field(&body, "KeyId")) {
            (200, Some(k)) => k,
            _ => return Err(format!("CreateKey answered {status}: {body}")),
        };
        let mut enc = args.clone();
        enc.key_id = key_id.clone();
        let signed = request::signed(&enc, Op::KmsEncrypt, SystemTime::now())?;
        // A fresh connection: some servers (moto's) close the first one after answering.
        drop(sender);
        let mut sender = connect(&authority(args)?).await?;
        let (status, body) = send(&mut sender, &signed).await.map_err(|e| format!("Encrypt: {e}"))?;
        let body = String::from_utf8_lossy(&body).to_string();
        let blob = match (status, json_string_field(&body, "CiphertextBlob")) {
            (200, Some(b)) => b,
            _ => return Err(format!("Encrypt answered {status}: {body}")),
        };
        Ok(format!("{{\"key_id\":{},\"ciphertext\":{}}}", json_str(&key_id), json_str(&blob)))
    })
}

/// The string value of `"field": "…"` in a flat JSON response (no escapes in KMS IDs and base64).
fn json_string_field(body: &str, field: &str) -> Option<String> {
    let start = body.find(&format!("\"{field}\""))? + field.len() + 2;
    let rest = body[start..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].replace("\\/", "/"))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

async fn run_load(args: &Args) -> Result<String, String> {
    // Signed once: a signature stays valid for 15 minutes and the server has no replay cache, so
    // re-signing per call would only measure the generator.
    // Several URLs (several nodes of one cluster): connection i goes to URL i mod n, each with
    // requests signed for its host.
    // CreateUser makes a new user per call: one signed request per call, each naming its own.
    let mut targets = Vec::new();
    let run_id = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    for url in args.url.split(',') {
        let one = Args { url: url.to_string(), ..args.clone() };
        let mut signed = Vec::new();
        if args.op == Op::IamCreateUsers {
            for i in 0..args.count {
                let each = Args { user_name: format!("bench-{run_id}-{i}"), ..one.clone() };
                signed.push(request::signed(&each, args.op, SystemTime::now())?);
            }
        } else {
            signed.push(request::signed(&one, args.op, SystemTime::now())?);
        }
        targets.push((authority(&one)?, Arc::new(signed)));
    }
    let remaining = Arc::new(AtomicUsize::new(args.count));
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);

    // Connect everything first so the timed part is only calls.
    let mut senders = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let (addr, signed) = &targets[i % targets.len()];
        senders.push((connect(addr).await?, addr.clone(), signed.clone()));
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (sender, addr, signed) in senders {
        tasks.spawn(worker(sender, addr, signed, remaining.clone(), deadline));
    }
    let mut total = Stats::default();
    while let Some(joined) = tasks.join_next().await {
        let s = joined.map_err(|e| e.to_string())??;
        total.ok += s.ok;
        total.errors += s.errors;
        total.reconnects += s.reconnects;
        total.latencies_us.extend(s.latencies_us);
        if total.error_sample.is_none() {
            total.error_sample = s.error_sample;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let done = total.ok + total.errors;
    total.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if total.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((total.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(total.latencies_us[i]) / 1000.0
    };
    Ok(format!(
        "{{\"url\":{},\"op\":\"{}\",\"connections\":{},\"count\":{},\"ok\":{},\"errors\":{},\"reconnects\":{},\
\"elapsed_s\":{:.3},\"calls_per_s\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"error_sample\":{}}}",
        json_str(&args.url),
        args.op.name(),
        args.connections,
        args.count,
        total.ok,
        total.errors,
        total.reconnects,
        elapsed,
        if elapsed > 0.0 { done as f64 / elapsed } else { 0.0 },
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        total.error_sample.as_deref().map_or("null".to_string(), json_str),
    ))
}

async fn worker(
    mut sender: Sender,
    addr: String,
    requests: Arc<Vec<Signed>>,
    remaining: Arc<AtomicUsize>,
    deadline: Instant,
) -> Result<Stats, String> {
    let mut stats = Stats::default();
    while let Ok(left) = remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) {
        let Some(signed) = requests.get(left % requests.len().max(1)) else {
            return Err("no request to send".into());
        };
        if Instant::now() > deadline {
            stats.errors += 1;
            stats.error_sample.get_or_insert_with(|| "deadline reached".to_string());
            continue;
        }
        let t0 = Instant::now();
        if sender.is_closed() {
            sender = connect(&addr).await?;
            stats.reconnects += 1;
        }
        let mut result = send(&mut sender, signed).await;
        if result.is_err() {
            // The server closed the connection (HTTP/1.0-style servers do after every response).
            sender = connect(&addr).await?;
            stats.reconnects += 1;
            result = send(&mut sender, signed).await;
        }
        stats.latencies_us.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
        match result {
            Ok((200, _)) => stats.ok += 1,
            Ok((status, body)) => {
                stats.errors += 1;
                stats.error_sample.get_or_insert_with(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(e) => {
                stats.errors += 1;
                stats.error_sample.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(stats)
}

async fn send(sender: &mut Sender, signed: &Signed) -> Result<(u16, Bytes), hyper::Error> {
    sender.ready().await?;
    let resp = sender.send_request(signed.to_request()).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn connect(addr: &str) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// `host:port` of `--url` (http only: the benchmark runs on loopback).
fn authority(args: &Args) -> Result<String, String> {
    let uri: http::Uri = args.url.parse().map_err(|e| format!("bad --url: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("--url must be http://host:port".into());
    }
    let host = uri.host().ok_or("--url needs a host")?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(80)))
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn args(url: &str, count: usize, connections: usize) -> Args {
        Args {
            url: url.into(),
            op: Op::StsGetCallerIdentity,
            connections,
            count,
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "secret".into(),
            region: "us-east-1".into(),
            user_name: "bench-user".into(),
            key_id: String::new(),
            ciphertext: String::new(),
            timeout_s: 30,
        }
    }

    /// A tiny HTTP/1.1 server on loopback answering `responses` requests, each on a fresh
    /// connection when `close` (as HTTP/1.0-style servers do), else all on one.
    fn serve(close: bool, total: usize, status: u16) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut served = 0;
            while served < total {
                let (mut s, _) = listener.accept().unwrap();
                loop {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read one request: headers, then Content-Length bytes of body.
                    let header_end = loop {
                        let n = s.read(&mut chunk).unwrap();
                        if n == 0 {
                            break None;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break Some(p + 4);
                        }
                    };
                    let Some(header_end) = header_end else { break };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_lowercase();
                    assert!(head.contains("authorization: aws4-hmac-sha256 credential=akiaiosfodnn7example/"));
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while buf.len() < header_end + len {
                        let n = s.read(&mut chunk).unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = "<ok/>";
                    let conn = if close { "Connection: close\r\n" } else { "" };
                    write!(s, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{conn}\r\n{body}", body.len()).unwrap();
                    served += 1;
                    if close || served >= total {
                        break;
                    }
                }
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn counts_every_call_on_keep_alive() {
        let url = serve(false, 50, 200);
        let out = run(&args(&url, 50, 1)).unwrap();
        assert!(out.contains("\"ok\":50,\"errors\":0,\"reconnects\":0"), "{out}");
    }

    #[test]
    fn reconnects_when_the_server_closes() {
        let url = serve(true, 10, 200);
        let out = run(&args(&url, 10, 1)).unwrap();
        assert!(out.contains("\"ok\":10,\"errors\":0"), "{out}");
    }

    #[test]
    fn non_200_is_an_error_with_a_sample() {
        let url = serve(false, 3, 403);
        let out = run(&args(&url, 3, 1)).unwrap();
        assert!(out.contains("\"ok\":0,\"errors\":3"), "{out}");
        assert!(out.contains("\"error_sample\":\"HTTP 403: <ok/>\""), "{out}");
    }

    #[test]
    fn reads_string_fields() {
        let body = r#"{"KeyMetadata":{"AWSAccountId":"1","KeyId": "abc-123","Arn":"x"}}"#;
        assert_eq!(json_string_field(body, "KeyId").as_deref(), Some("abc-123"));
        assert_eq!(json_string_field(r#"{"CiphertextBlob":"a\/b+=="}"#, "CiphertextBlob").as_deref(), Some("a/b+=="));
        assert_eq!(json_string_field(body, "Missing"), None);
    }

    #[test]
    fn spreads_connections_over_several_urls() {
        let (a, b) = (serve(false, 20, 200), serve(false, 20, 200));
        let out = run(&args(&format!("{a},{b}"), 20, 2)).unwrap();
        assert!(out.contains("\"ok\":20,\"errors\":0"), "{out}");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
