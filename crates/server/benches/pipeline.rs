//! In-process cost of one call through the whole pipeline (SigV4 → decode → authorize → handler →
//! encode → audit), without HTTP or the kernel: `cargo bench -p rampart-server --bench pipeline`.
//! Complements bench/server (which measures the server process under real HTTP load) with
//! repeatable per-stage numbers while tuning. Prints nanoseconds per call for each operation.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::HeaderMap;
use rampart_server::bootstrap::{bootstrap, ServerConfig};
use rampart_server::http::build_pipeline;
use rampart_server::pipeline::{Pipeline, RawRequest};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACCOUNT: &str = "123456789012";
const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

struct Call {
    headers: HeaderMap,
    body: String,
}

/// A request signed as an SDK signs it (awsQuery form, or awsJson with `target`).
fn signed(service: &str, body: &str, target: Option<&str>) -> Call {
    let mut headers = HeaderMap::new();
    headers.insert("host", "127.0.0.1:4566".parse().unwrap());
    headers.insert("user-agent", "rampart-bench".parse().unwrap());
    match target {
        Some(t) => {
            headers.insert("content-type", "application/x-amz-json-1.1".parse().unwrap());
            headers.insert("x-amz-target", t.parse().unwrap());
        }
        None => {
            headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse().unwrap());
        }
    }
    let identity = Credentials::new(KEY, SECRET, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        "http://127.0.0.1:4566/",
        headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    Call { headers, body: body.to_string() }
}

fn run(p: &Pipeline, call: &Call) -> (u16, String) {
    let remote: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let raw = RawRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &call.headers,
        body: call.body.as_bytes(),
        remote,
        secure_transport: false,
    };
    let r = p.handle(&raw);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

fn measure(p: &Pipeline, name: &str, call: &Call, n: usize) {
    // `OP=kms:Encrypt` measures only that operation (profiling one at a time).
    if std::env::var("OP").is_ok_and(|op| op != name) {
        return;
    }
    let (status, body) = run(p, call);
    assert_eq!(status, 200, "{name}: {body}");
    for _ in 0..n / 10 {
        run(p, call);
    }
    let start = Instant::now();
    for _ in 0..n {
        run(p, call);
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{name:<28} {:>8.2} µs/call", ns / 1000.0);
}

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let config = ServerConfig {
        ephemeral: true,
        account_id: Some(ACCOUNT.into()),
        root_access_key_id: Some(KEY.into()),
        root_secret_access_key: Some(SECRET.into()),
        ..Default::default()
    };
    let boot = bootstrap(&config).expect("bootstrap");
    let p = build_pipeline(&boot).expect("pipeline");

    let create = signed("iam", "Action=CreateUser&Version=2010-05-08&UserName=bench", None);
    assert_eq!(run(&p, &create).0, 200);
    let key = run(&p, &signed("kms", "{\"Description\":\"bench\"}", Some("TrentService.CreateKey"))).1;
    let key_id = key.split("\"KeyId\":\"").nth(1).and_then(|s| s.split('"').next()).expect("KeyId").to_string();

    measure(&p, "iam:GetUser", &signed("iam", "Action=GetUser&Version=2010-05-08&UserName=bench", None), n);
    measure(&p, "sts:GetCallerIdentity", &signed("sts", "Action=GetCallerIdentity&Version=2011-06-15", None), n);
    let encrypt = format!(
        "{{\"KeyId\":\"{key_id}\",\"Plaintext\":\"cmFtcGFydC1iZW5jaC1wbGFpbnRleHQtMzItYnl0ZXM=\",\"EncryptionContext\":{{\"bench\":\"kms\"}}}}"
    );
    measure(&p, "kms:Encrypt", &signed("kms", &encrypt, Some("TrentService.Encrypt")), n);
    let gdk = format!("{{\"KeyId\":\"{key_id}\",\"KeySpec\":\"AES_256\",\"EncryptionContext\":{{\"bench\":\"kms\"}}}}");
    measure(&p, "kms:GenerateDataKey", &signed("kms", &gdk, Some("TrentService.GenerateDataKey")), n);
}
