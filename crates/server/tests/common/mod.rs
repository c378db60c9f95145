//! Shared by the pipeline tests: SigV4-signed awsQuery calls, as an SDK sends them.

use std::net::SocketAddr;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use rampart_server::pipeline::{Pipeline, RawRequest, RawResponse};
use time::OffsetDateTime;

/// Credentials to sign with.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub token: Option<&'a str>,
}

/// A SigV4-signed awsQuery POST, as an SDK sends it, signed at `at`; handled with the clock at `now`.
pub fn call_at(
    p: &Pipeline,
    service: &str,
    keys: &Keys<'_>,
    body: &str,
    at: OffsetDateTime,
    now: OffsetDateTime,
) -> RawResponse {
    let identity = Credentials::new(keys.id, keys.secret, keys.token.map(str::to_string), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::from(at))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://localhost:4566/")
        .header("host", "localhost:4566")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body.to_string())
        .unwrap();
    let signable = SignableRequest::new(
        "POST",
        "http://localhost:4566/",
        req.headers().iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut req);
    let remote: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let raw = RawRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: req.headers(),
        body: req.body().as_bytes(),
        remote,
        secure_transport: false,
    };
    p.handle_at(&raw, now)
}

/// [`call_at`] now, with long-term keys.
#[allow(dead_code)] // not every test file uses it
pub fn call(p: &Pipeline, service: &str, key: (&str, &str), body: &str) -> RawResponse {
    let now = OffsetDateTime::now_utc();
    call_at(p, service, &Keys { id: key.0, secret: key.1, token: None }, body, now, now)
}
