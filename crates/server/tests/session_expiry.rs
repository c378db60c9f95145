//! Temporary credentials through the whole pipeline, with the server's clock injected
//! ([`Pipeline::handle_at`]): a session works until the second before its Expiration and answers
//! `ExpiredToken` from that second on; its token must be presented exactly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use rampart_server::pipeline::{Pipeline, RawRequest, RawResponse};
use rampart_store::{Sealer, SqliteStore, Store};
use time::OffsetDateTime;

const ACCT: &str = "111122223333";
const ROOT_KEY: &str = "AKIAROOTROOTROOT0001";
const ROOT_SECRET: &str = "rootsecretrootsecretrootsecretrootsecret";

fn pipeline() -> Pipeline {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let iam = rampart_iam::Iam::new(store, Arc::new(Sealer::new(&Sealer::generate_key())));
    iam.bootstrap_account(ACCT, ROOT_KEY, ROOT_SECRET).unwrap();
    Pipeline::new(vec![iam.iam_service(), iam.sts_service()], iam.authorizer(), iam.credentials())
}

struct Keys<'a> {
    id: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
}

/// A SigV4-signed awsQuery POST, as an SDK sends it, signed at `at`; handled with the clock at `now`.
fn call(
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

fn text(resp: &RawResponse) -> String {
    String::from_utf8_lossy(&resp.body).into_owned()
}

fn between<'a>(s: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = s.find(&open).map(|i| i + open.len()).unwrap_or_else(|| panic!("no <{tag}> in {s}"));
    let end = s[start..].find(&format!("</{tag}>")).unwrap() + start;
    &s[start..end]
}

fn encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[test]
fn sessions_expire_exactly_at_expiration() {
    let p = pipeline();
    let root = Keys { id: ROOT_KEY, secret: ROOT_SECRET, token: None };
    let t0 = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let r = call(
        &p,
        "iam",
        &root,
        &format!("Action=CreateRole&Version=2010-05-08&RoleName=R&AssumeRolePolicyDocument={}", encode(&trust)),
        t0,
        t0,
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    let r = call(
        &p,
        "sts",
        &root,
        &format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=clock&DurationSeconds=900",
            encode(&format!("arn:aws:iam::{ACCT}:role/R"))
        ),
        t0,
        t0,
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    let body = text(&r);
    let (id, secret, token) =
        (between(&body, "AccessKeyId"), between(&body, "SecretAccessKey"), between(&body, "SessionToken"));
    let session = Keys { id, secret, token: Some(token) };
    let expires = t0 + time::Duration::seconds(900);
    let who = "Action=GetCallerIdentity&Version=2011-06-15";

    // Signed a minute before expiry (within SigV4's 15-minute skew), handled at the last valid second…
    let signed_at = expires - time::Duration::seconds(60);
    let r = call(&p, "sts", &session, who, signed_at, expires - time::Duration::seconds(1));
    assert_eq!(r.status, 200, "{}", text(&r));
    assert!(text(&r).contains(&format!("arn:aws:sts::{ACCT}:assumed-role/R/clock")));
    // …and at the Expiration second itself: expired.
    let r = call(&p, "sts", &session, who, signed_at, expires);
    assert_eq!(r.status, 403, "{}", text(&r));
    assert!(text(&r).contains("<Code>ExpiredToken</Code>"), "{}", text(&r));

    // The token must be presented, and exactly.
    let r = call(&p, "sts", &Keys { token: None, ..session }, who, t0, t0);
    assert!(text(&r).contains("<Code>InvalidClientTokenId</Code>"), "{}", text(&r));
    let wrong = format!("{}x", &token[..token.len() - 1]);
    let r = call(&p, "sts", &Keys { id, secret, token: Some(&wrong) }, who, t0, t0);
    assert!(text(&r).contains("<Code>InvalidClientTokenId</Code>"), "{}", text(&r));
}
