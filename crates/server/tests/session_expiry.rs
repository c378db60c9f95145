//! Temporary credentials through the whole pipeline, with the server's clock injected
//! ([`Pipeline::handle_at`]): a session works until the second before its Expiration and answers
//! `ExpiredToken` from that second on; its token must be presented exactly.

mod common;
use common::{call_at as call, Keys};

use std::sync::Arc;

use rampart_server::pipeline::{Pipeline, RawResponse};
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
