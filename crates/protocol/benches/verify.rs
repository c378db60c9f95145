//! Cost of SigV4 `parse` + `verify` for an SDK-signed awsQuery POST (the common case):
//! `cargo bench -p rampart-protocol --bench verify`. Prints nanoseconds per call.

use std::time::{Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderName};
use rampart_protocol::sigv4::{self, SignedRequest};
use time::OffsetDateTime;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

fn signed_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("host", "127.0.0.1:4566".parse().unwrap());
    headers.insert("user-agent", "rampart-bench".parse().unwrap());
    headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse().unwrap());
    let identity = Credentials::new(KEY, SECRET, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        "http://127.0.0.1:4566/",
        headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    headers
}

fn measure(name: &str, n: usize, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    println!("{name:<16} {:>8.0} ns/call", start.elapsed().as_nanos() as f64 / n as f64);
}

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let headers = signed_headers();
    let req = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: BODY.as_bytes() };
    let now = OffsetDateTime::now_utc();
    let auth = sigv4::parse(&req).unwrap();
    sigv4::verify(&req, &auth, SECRET, now).unwrap();
    measure("parse", n, || {
        std::hint::black_box(sigv4::parse(std::hint::black_box(&req)).unwrap());
    });
    measure("verify", n, || {
        sigv4::verify(std::hint::black_box(&req), &auth, SECRET, now).unwrap();
    });
    measure("parse+verify", n, || {
        let auth = sigv4::parse(std::hint::black_box(&req)).unwrap();
        sigv4::verify(&req, &auth, SECRET, now).unwrap();
    });
}
