//! `GET /metrics`' series through the whole pipeline: calls by service/operation/status,
//! authorization decisions (allow, explicit and implicit deny), refusals before authentication,
//! audit commit timing.

mod common;
use common::call;

use std::sync::Arc;

use rampart_server::metrics::Metrics;
use rampart_server::pipeline::{Pipeline, RawResponse};
use rampart_store::{Sealer, SqliteStore, Store};

const ACCT: &str = "111122223333";
const ROOT_KEY: &str = "AKIAROOTROOTROOT0001";
const ROOT_SECRET: &str = "rootsecretrootsecretrootsecretrootsecret";

fn pipeline() -> Pipeline {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let iam = rampart_iam::Iam::new(store.clone(), Arc::new(Sealer::new(&Sealer::generate_key())));
    iam.bootstrap_account(ACCT, ROOT_KEY, ROOT_SECRET).unwrap();
    let audit = rampart_trail::AuditLog::start(store).unwrap();
    Pipeline::new(vec![iam.iam_service(), iam.sts_service()], iam.authorizer(), iam.credentials())
        .with_audit(audit, ACCT)
        .with_metrics(Metrics::default())
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

/// The value of the sample `series` (name with labels, exactly as rendered), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn calls_decisions_and_refusals_are_counted() {
    let p = pipeline();
    let root = (ROOT_KEY, ROOT_SECRET);
    let ok = |r: RawResponse| {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 200, "{body}");
        body
    };
    // A user denied everything explicitly, one with no policy at all.
    let mut keys = Vec::new();
    for (name, deny) in [("denied", true), ("nopolicy", false)] {
        ok(call(&p, "iam", root, &format!("Action=CreateUser&Version=2010-05-08&UserName={name}")));
        if deny {
            let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
            ok(call(
                &p,
                "iam",
                root,
                &format!(
                    "Action=PutUserPolicy&Version=2010-05-08&UserName={name}&PolicyName=d&PolicyDocument={}",
                    encode(doc)
                ),
            ));
        }
        let body = ok(call(&p, "iam", root, &format!("Action=CreateAccessKey&Version=2010-05-08&UserName={name}")));
        keys.push((between(&body, "AccessKeyId").to_string(), between(&body, "SecretAccessKey").to_string()));
    }
    let text = p.metrics().render();
    let allowed_before = sample(&text, r#"rampart_authorization_decisions_total{service="iam",decision="allow"}"#);
    assert_eq!(allowed_before, 5.0, "root's five calls were authorized\n{text}");

    for _ in 0..3 {
        ok(call(&p, "iam", root, "Action=ListUsers&Version=2010-05-08"));
    }
    let denied = call(&p, "iam", (&keys[0].0, &keys[0].1), "Action=ListUsers&Version=2010-05-08");
    assert_eq!(denied.status, 403);
    for _ in 0..2 {
        let r = call(&p, "iam", (&keys[1].0, &keys[1].1), "Action=ListUsers&Version=2010-05-08");
        assert_eq!(r.status, 403);
    }
    // Refused before authentication: a wrong secret, an unknown key.
    assert_eq!(call(&p, "iam", (ROOT_KEY, "wrongwrongwrongwrongwrongwrongwrongwrong"), "Action=ListUsers").status, 403);
    assert_eq!(call(&p, "iam", ("AKIANOSUCHKEY0000000", ROOT_SECRET), "Action=ListUsers").status, 403);
    // An operation IAM does not have: counted as `unknown`, not under its own name.
    assert_eq!(call(&p, "iam", root, "Action=NoSuchThing&Version=2010-05-08").status, 400);
    // STS: always allowed (no decision), its own service label.
    ok(call(&p, "sts", root, "Action=GetCallerIdentity&Version=2011-06-15"));

    let text = p.metrics().render();
    let s = |series: &str| sample(&text, series);
    assert_eq!(s(r#"rampart_calls_total{service="iam",operation="ListUsers",status="200"}"#), 3.0, "{text}");
    assert_eq!(s(r#"rampart_calls_total{service="iam",operation="ListUsers",status="403"}"#), 3.0, "{text}");
    assert_eq!(s(r#"rampart_calls_total{service="iam",operation="CreateUser",status="200"}"#), 2.0, "{text}");
    assert_eq!(s(r#"rampart_calls_total{service="iam",operation="unknown",status="400"}"#), 1.0, "{text}");
    assert!(!text.contains("NoSuchThing"), "unknown operations get no series of their own\n{text}");
    assert_eq!(s(r#"rampart_calls_total{service="sts",operation="GetCallerIdentity",status="200"}"#), 1.0, "{text}");
    assert_eq!(s(r#"rampart_authorization_decisions_total{service="iam",decision="allow"}"#), 8.0, "{text}");
    assert_eq!(s(r#"rampart_authorization_decisions_total{service="iam",decision="explicit_deny"}"#), 1.0, "{text}");
    assert_eq!(s(r#"rampart_authorization_decisions_total{service="iam",decision="implicit_deny"}"#), 2.0, "{text}");
    assert_eq!(s(r#"rampart_requests_refused_total{reason="bad_signature"}"#), 1.0, "{text}");
    assert_eq!(s(r#"rampart_requests_refused_total{reason="unknown_access_key"}"#), 1.0, "{text}");
    assert_eq!(s(r#"rampart_call_duration_seconds_count{service="iam",operation="ListUsers"}"#), 6.0, "{text}");
    // Every call was audited (the pipeline has an audit log), each commit timed.
    assert_eq!(s("rampart_audit_commit_duration_seconds_count"), 15.0, "{text}");
}

#[test]
fn audit_records_deleted_by_retention_are_counted() {
    let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
    let iam = rampart_iam::Iam::new(store.clone(), Arc::new(Sealer::new(&Sealer::generate_key())));
    iam.bootstrap_account(ACCT, ROOT_KEY, ROOT_SECRET).unwrap();
    let retention = rampart_trail::Retention { max_age: std::time::Duration::from_secs(86_400), max_records: Some(2) };
    let audit = rampart_trail::AuditLog::start_with(store, retention).unwrap();
    let p = Pipeline::new(vec![iam.iam_service()], iam.authorizer(), iam.credentials())
        .with_audit(audit.clone(), ACCT)
        .with_metrics(Metrics::default());
    for _ in 0..5 {
        assert_eq!(call(&p, "iam", (ROOT_KEY, ROOT_SECRET), "Action=ListUsers&Version=2010-05-08").status, 200);
    }
    // The in-memory store prunes as it records: 5 records, the newest 2 kept.
    audit.prune(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    assert_eq!(audit.pruned_total(), 3);
    // What GET /metrics does at each scrape.
    p.metrics().observe_audit_dropped_total(p.audit_pruned_total());
    let text = p.metrics().render();
    assert_eq!(sample(&text, "rampart_audit_dropped_total"), 3.0, "{text}");
    // A second scrape with nothing new deleted adds nothing.
    p.metrics().observe_audit_dropped_total(p.audit_pruned_total());
    assert_eq!(sample(&p.metrics().render(), "rampart_audit_dropped_total"), 3.0);
}
