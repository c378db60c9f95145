//! Property tests: the fast evaluator agrees with the reference evaluator on generated policies and
//! requests, and evaluation has the algebraic properties AWS's logic implies.

use proptest::prelude::*;
use rampart_policy::*;
use serde_json::{json, Value};

const A: &str = "111122223333";
const B: &str = "444455556666";

fn principals() -> Vec<&'static str> {
    vec![
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:user/bob",
        "arn:aws:sts::111122223333:assumed-role/Dev/s1",
        "arn:aws:sts::111122223333:federated-user/carol",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::444455556666:user/xavier",
        "arn:aws:sts::444455556666:assumed-role/Auditor/a",
        "lambda.amazonaws.com",
        "*",
        "arn:aws:iam::111122223333:role/Dev",
    ]
}

const ACTIONS: &[&str] =
    &["s3:GetObject", "s3:PutObject", "S3:getobject", "iam:GetUser", "kms:Decrypt", "ec2:RunInstances"];
const ACTION_PATTERNS: &[&str] = &[
    "*",
    "s3:*",
    "s3:Get*",
    "s3:GetObject",
    "s3:?etObject",
    "iam:*",
    "iam:Get*",
    "kms:Decrypt",
    "*:GetObject",
    "ec2:Run*",
    "S3:PUT*",
];
const RESOURCES: &[&str] = &[
    "arn:aws:s3:::bucket/key",
    "arn:aws:s3:::bucket/home/alice/x",
    "arn:aws:s3:::other/a:b",
    "arn:aws:iam::111122223333:user/alice",
    "*",
];
const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::bucket/key",
    "arn:aws:s3:::*",
    "arn:aws:s3:::bucket/home/${aws:username}/*",
    "arn:aws:s3:::bucket/home/${aws:username, 'alice'}/*",
    "arn:aws:s3:::?ther/*",
    "arn:aws:iam::*:user/*",
    "arn:aws:s3:::bucket/k${*}",
];
const PRINCIPAL_VALUES: &[&str] = &[
    "111122223333",
    "444455556666",
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:role/Dev",
    "arn:aws:sts::111122223333:assumed-role/Dev/s1",
    "arn:aws:iam::444455556666:user/xavier",
    "arn:aws:iam::444455556666:role/Auditor",
    "*",
];

/// A condition block for a key, with values of the right flavour.
fn condition() -> impl Strategy<Value = (String, String, Value)> {
    let ops = prop_oneof![
        Just(("StringEquals", "aws:username", json!(["alice", "bob"]))),
        Just(("StringNotEquals", "aws:username", json!("alice"))),
        Just(("StringEqualsIgnoreCase", "aws:username", json!("ALICE"))),
        Just(("StringLike", "aws:username", json!("a*"))),
        Just(("StringNotLike", "aws:username", json!(["b?b", "x*"]))),
        Just(("StringEquals", "aws:PrincipalArn", json!("${aws:PrincipalArn}"))),
        Just(("IpAddress", "aws:SourceIp", json!(["10.0.0.0/8", "2001:db8::/32"]))),
        Just(("NotIpAddress", "aws:SourceIp", json!("203.0.113.0/24"))),
        Just(("NumericLessThan", "s3:max-keys", json!("10"))),
        Just(("NumericGreaterThanEquals", "s3:max-keys", json!(5))),
        Just(("NumericNotEquals", "s3:max-keys", json!("7"))),
        Just(("DateLessThan", "aws:CurrentTime", json!("2026-01-01T00:00:00Z"))),
        Just(("DateGreaterThanEquals", "aws:CurrentTime", json!("1700000000"))),
        Just(("Bool", "aws:SecureTransport", json!("true"))),
        Just(("BoolIfExists", "aws:SecureTransport", json!(false))),
        Just(("Null", "aws:TagKeys", json!("true"))),
        Just(("Null", "aws:username", json!("false"))),
        Just(("ArnLike", "aws:PrincipalArn", json!("arn:aws:iam::*:user/*"))),
        Just(("ArnNotEquals", "aws:PrincipalArn", json!("arn:aws:iam::111122223333:user/alice"))),
        Just(("ForAllValues:StringEquals", "aws:TagKeys", json!(["env", "team"]))),
        Just(("ForAnyValue:StringLike", "aws:TagKeys", json!("t*"))),
        Just(("ForAnyValue:StringNotEquals", "aws:TagKeys", json!("env"))),
        Just(("StringEqualsIfExists", "aws:username", json!("alice"))),
        Just(("StringEquals", "AWS:USERNAME", json!("alice"))),
    ];
    ops.prop_map(|(o, k, v)| (o.to_string(), k.to_string(), v))
}

fn list(pool: &'static [&'static str], max: usize) -> impl Strategy<Value = Value> {
    prop::collection::vec(prop::sample::select(pool), 1..=max).prop_map(|v| {
        if v.len() == 1 {
            json!(v[0])
        } else {
            json!(v)
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Identity,
    Resource,
    Scp,
    Rcp,
}

fn statement(kind: Kind) -> impl Strategy<Value = Value> {
    (
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.2),
        list(ACTION_PATTERNS, 3),
        prop::bool::weighted(0.2),
        list(RESOURCE_PATTERNS, 2),
        prop::collection::vec(condition(), 0..2),
        (prop::bool::weighted(0.3), list(PRINCIPAL_VALUES, 3), 0u8..4),
        prop::option::of("[A-Za-z0-9]{1,6}"),
    )
        .prop_map(
            move |(allow, not_action, actions, not_resource, resources, conds, (not_principal, pvals, pstyle), sid)| {
                let mut s = serde_json::Map::new();
                if let Some(sid) = sid {
                    s.insert("Sid".into(), json!(sid));
                }
                s.insert("Effect".into(), json!(if allow { "Allow" } else { "Deny" }));
                match kind {
                    Kind::Rcp => {
                        // RCPs: Deny statements (RCPFullAWSAccess is added per level by the generator).
                        s.insert("Effect".into(), json!("Deny"));
                        s.insert("Principal".into(), json!("*"));
                        s.insert("Action".into(), actions);
                        s.insert("Resource".into(), resources);
                    }
                    _ => {
                        s.insert((if not_action { "NotAction" } else { "Action" }).into(), actions);
                        let nr = not_resource && !(kind == Kind::Scp && allow);
                        s.insert((if nr { "NotResource" } else { "Resource" }).into(), resources);
                    }
                }
                if kind == Kind::Resource {
                    let p = match pstyle {
                        0 => json!("*"),
                        _ => json!({ "AWS": pvals }),
                    };
                    s.insert((if not_principal { "NotPrincipal" } else { "Principal" }).into(), p);
                }
                if !conds.is_empty() {
                    let mut c = serde_json::Map::new();
                    for (op, key, vals) in conds {
                        let block = c.entry(op).or_insert_with(|| json!({}));
                        block[key] = vals;
                    }
                    s.insert("Condition".into(), Value::Object(c));
                }
                Value::Object(s)
            },
        )
}

fn document(kind: Kind) -> impl Strategy<Value = String> {
    prop::collection::vec(statement(kind), 1..4).prop_map(|mut stmts| {
        // Sids must be unique.
        let mut seen = std::collections::HashSet::new();
        for s in &mut stmts {
            if let Some(sid) = s.get("Sid").and_then(Value::as_str).map(str::to_string) {
                if !seen.insert(sid) {
                    s.as_object_mut().map(|o| o.remove("Sid"));
                }
            }
        }
        json!({"Version": "2012-10-17", "Statement": stmts}).to_string()
    })
}

fn context() -> impl Strategy<Value = Context> {
    (
        prop::option::of(prop::sample::select(vec!["alice", "bob", "Alice", "*"])),
        prop::option::of(prop::sample::select(vec!["10.1.2.3", "203.0.113.9", "2001:db8::1", "bogus"])),
        prop::option::of(prop::collection::vec(prop::sample::select(vec!["env", "team", "owner"]), 0..3)),
        prop::option::of(prop::sample::select(vec!["3", "10", "7.0", "x"])),
        prop::option::of(prop::sample::select(vec!["2025-06-01T00:00:00Z", "2027-01-01T00:00:00Z", "1600000000"])),
        prop::option::of(prop::sample::select(vec!["true", "false", "TRUE"])),
        prop::option::of(prop::sample::select(vec![
            "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:role/Dev",
        ])),
    )
        .prop_map(|(u, ip, tags, n, t, sec, parn)| {
            let mut c = Context::new();
            let s = |v: &str| ContextValue::String(v.to_string());
            if let Some(v) = u {
                c.insert("aws:username", s(v));
            }
            if let Some(v) = ip {
                c.insert("aws:SourceIp", s(v));
            }
            if let Some(v) = tags {
                c.insert("aws:TagKeys", ContextValue::List(v.into_iter().map(String::from).collect()));
            }
            if let Some(v) = n {
                c.insert("s3:max-keys", s(v));
            }
            if let Some(v) = t {
                c.insert("aws:CurrentTime", s(v));
            }
            if let Some(v) = sec {
                c.insert("aws:SecureTransport", s(v));
            }
            if let Some(v) = parn {
                c.insert("aws:PrincipalArn", s(v));
            }
            c
        })
}

#[derive(Debug, Clone)]
struct Scenario {
    principal: &'static str,
    action: &'static str,
    resource: &'static str,
    resource_account: Option<&'static str>,
    identity: Vec<String>,
    boundary: Option<Vec<String>>,
    session: Option<Vec<String>>,
    resource_policy: Option<String>,
    required: bool,
    scps: Option<Vec<Vec<String>>>,
    rcps: Option<Vec<Vec<String>>>,
    context: Context,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        (
            prop::sample::select(principals()),
            prop::sample::select(ACTIONS),
            prop::sample::select(RESOURCES),
            prop::sample::select(vec![None, None, Some(A), Some(B)]),
        ),
        prop::collection::vec(document(Kind::Identity), 0..4),
        prop::option::of(prop::collection::vec(document(Kind::Identity), 0..2)),
        prop::option::of(prop::collection::vec(document(Kind::Identity), 1..2)),
        prop::option::of(document(Kind::Resource)),
        any::<bool>(),
        prop::option::of(prop::collection::vec(prop::collection::vec(document(Kind::Scp), 0..2), 1..3)),
        prop::option::of(prop::collection::vec(prop::collection::vec(document(Kind::Rcp), 0..2), 1..3)),
        context(),
    )
        .prop_map(|((principal, action, resource, resource_account), identity, boundary, session, rp, required, scps, rcps, context)| {
            let full = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}).to_string();
            let rcps = rcps.map(|levels| {
                levels
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut l)| {
                        // Usually every level carries RCPFullAWSAccess, as AWS attaches it; sometimes not.
                        if i % 3 != 2 {
                            l.push(full.clone());
                        }
                        l
                    })
                    .collect()
            });
            let scp_full = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}).to_string();
            let scps = scps.map(|levels| {
                levels
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut l)| {
                        if i % 3 != 2 {
                            l.push(scp_full.clone());
                        }
                        l
                    })
                    .collect()
            });
            Scenario {
                principal,
                action,
                resource,
                resource_account,
                identity,
                boundary,
                session,
                resource_policy: rp,
                required,
                scps,
                rcps,
                context,
            }
        })
}

struct Parsed {
    principal: Principal,
    identity: Vec<Policy>,
    boundary: Option<Vec<Policy>>,
    session: Option<Vec<Policy>>,
    rp: Option<Policy>,
    scps: Option<Vec<Vec<Policy>>>,
    rcps: Option<Vec<Vec<Policy>>>,
}

fn parse_all(s: &Scenario) -> Parsed {
    let p = |d: &String, t| Policy::parse(d, t).unwrap_or_else(|e| panic!("generated policy rejected: {e}\n{d}"));
    Parsed {
        principal: Principal::from_arn(s.principal).expect("known principal"),
        identity: s.identity.iter().map(|d| p(d, PolicyType::Identity)).collect(),
        boundary: s.boundary.as_ref().map(|v| v.iter().map(|d| p(d, PolicyType::Identity)).collect()),
        session: s.session.as_ref().map(|v| v.iter().map(|d| p(d, PolicyType::Identity)).collect()),
        rp: s.resource_policy.as_ref().map(|d| p(d, PolicyType::Resource)),
        scps: s
            .scps
            .as_ref()
            .map(|ls| ls.iter().map(|l| l.iter().map(|d| p(d, PolicyType::ServiceControl)).collect()).collect()),
        rcps: s
            .rcps
            .as_ref()
            .map(|ls| ls.iter().map(|l| l.iter().map(|d| p(d, PolicyType::ResourceControl)).collect()).collect()),
    }
}

fn names(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn zip<'a>(ps: &'a [Policy], ns: &'a [String]) -> Vec<NamedPolicy<'a>> {
    ps.iter().zip(ns).map(|(p, n)| NamedPolicy::new(n.as_str(), p)).collect()
}

fn run(s: &Scenario, p: &Parsed, f: fn(&Request<'_>, &PolicySet<'_>) -> Evaluation) -> Evaluation {
    let id_names = names(p.identity.len(), "id");
    let b_names = names(p.boundary.as_ref().map_or(0, Vec::len), "pb");
    let s_names = names(p.session.as_ref().map_or(0, Vec::len), "sp");
    let scp_names: Vec<Vec<String>> = p
        .scps
        .as_ref()
        .map_or(vec![], |ls| ls.iter().enumerate().map(|(i, l)| names(l.len(), &format!("scp{i}."))).collect());
    let rcp_names: Vec<Vec<String>> = p
        .rcps
        .as_ref()
        .map_or(vec![], |ls| ls.iter().enumerate().map(|(i, l)| names(l.len(), &format!("rcp{i}."))).collect());
    let set = PolicySet {
        identity: zip(&p.identity, &id_names),
        permissions_boundaries: p.boundary.as_ref().map(|b| zip(b, &b_names)),
        session_policies: p.session.as_ref().map(|v| zip(v, &s_names)),
        resource_policy: p.rp.as_ref().map(|rp| NamedPolicy::new("rp", rp)),
        resource_policy_required: s.required,
        service_control_policies: p.scps.as_ref().map(|ls| ls.iter().zip(&scp_names).map(|(l, n)| zip(l, n)).collect()),
        resource_control_policies: p
            .rcps
            .as_ref()
            .map(|ls| ls.iter().zip(&rcp_names).map(|(l, n)| zip(l, n)).collect()),
    };
    let req = Request {
        principal: &p.principal,
        action: s.action,
        resource: s.resource,
        resource_account: s.resource_account,
        context: &s.context,
    };
    f(&req, &set)
}

fn sorted_keys(e: &Evaluation) -> Vec<String> {
    let mut k: Vec<String> = e.explanation.missing_context_keys().iter().map(|k| k.to_ascii_lowercase()).collect();
    k.sort();
    k
}

proptest! {
    // PROPTEST_CASES overrides the default (e.g. PROPTEST_CASES=20000 for a long run).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(768),
        .. ProptestConfig::default()
    })]

    /// The compiled, indexed evaluator and the step-by-step reference always agree.
    #[test]
    fn fast_agrees_with_reference(s in scenario()) {
        let p = parse_all(&s);
        let fast = run(&s, &p, evaluate);
        let reference = run(&s, &p, reference::evaluate);
        prop_assert_eq!(fast.decision, reference.decision);
        prop_assert_eq!(fast.explanation.denying_layer(), reference.explanation.denying_layer());
        prop_assert_eq!(&fast.explanation.statements, &reference.explanation.statements);
        prop_assert_eq!(&fast.explanation.layers, &reference.explanation.layers);
        prop_assert_eq!(sorted_keys(&fast), sorted_keys(&reference));
    }

    /// A set none of whose policies reads the context decides the same with an empty context
    /// (callers skip building one then); a set that does is flagged.
    #[test]
    fn context_blind_sets_ignore_the_context(s in scenario()) {
        let p = parse_all(&s);
        let all = p.identity.iter()
            .chain(p.boundary.iter().flatten())
            .chain(p.session.iter().flatten())
            .chain(p.rp.iter())
            .chain(p.scps.iter().flatten().flatten())
            .chain(p.rcps.iter().flatten().flatten());
        let mut reads = false;
        for policy in all {
            let has_conditions = policy.document().statements.iter().any(|st| !st.conditions.is_empty());
            if has_conditions {
                prop_assert!(policy.reads_context());
            }
            reads |= policy.reads_context();
        }
        let full = run(&s, &p, evaluate);
        let mut blind = s.clone();
        blind.context = Context::new();
        let empty = run(&blind, &p, evaluate);
        if !reads {
            prop_assert_eq!(full.decision, empty.decision);
            prop_assert_eq!(&full.explanation.statements, &empty.explanation.statements);
        }
    }

    /// Adding a Deny statement never turns a denial into an allow (and an allow can only become a deny).
    #[test]
    fn adding_deny_never_allows(s in scenario(), extra in document(Kind::Identity), target in 0usize..3) {
        let p = parse_all(&s);
        let before = run(&s, &p, evaluate).decision;
        let deny_only: Value = {
            let mut v: Value = serde_json::from_str(&extra).unwrap();
            for st in v["Statement"].as_array_mut().unwrap() {
                st["Effect"] = json!("Deny");
            }
            v
        };
        let mut s2 = s.clone();
        match target {
            0 => s2.identity.push(deny_only.to_string()),
            1 => if let Some(b) = &mut s2.boundary { b.push(deny_only.to_string()) } else { s2.identity.push(deny_only.to_string()) },
            _ => if let Some(sc) = &mut s2.scps { sc[0].push(deny_only.to_string()) } else { s2.identity.push(deny_only.to_string()) },
        }
        let p2 = parse_all(&s2);
        let after = run(&s2, &p2, evaluate).decision;
        if before != Decision::Allowed {
            prop_assert_ne!(after, Decision::Allowed);
        }
        if before == Decision::ExplicitlyDenied {
            prop_assert_eq!(after, Decision::ExplicitlyDenied);
        }
    }

    /// A Deny of everything denies explicitly, whatever else there is.
    #[test]
    fn deny_all_denies(s in scenario()) {
        let mut s = s;
        s.identity.push(json!({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}).to_string());
        let p = parse_all(&s);
        let e = run(&s, &p, evaluate);
        if !matches!(p.principal.kind, PrincipalKind::Service | PrincipalKind::Anonymous) {
            prop_assert_eq!(e.decision, Decision::ExplicitlyDenied);
            prop_assert!(e.explanation.matched_statements().all(|m| m.effect == Effect::Deny));
            prop_assert!(e.explanation.matched_statements().next().is_some());
        }
    }

    /// An Allow for "*" with nothing else allows any same-account IAM principal, any action, any context.
    #[test]
    fn allow_star_alone_allows(principal in 0usize..5, action in prop::sample::select(ACTIONS), resource in prop::sample::select(RESOURCES), ctx in context()) {
        let p = Principal::from_arn(principals()[principal]).unwrap();
        let policy = Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#, PolicyType::Identity).unwrap();
        let set = PolicySet { identity: vec![NamedPolicy::new("all", &policy)], ..PolicySet::default() };
        let req = Request { principal: &p, action, resource, resource_account: Some(A), context: &ctx };
        prop_assert_eq!(evaluate(&req, &set).decision, Decision::Allowed);
        prop_assert_eq!(reference::evaluate(&req, &set).decision, Decision::Allowed);
    }

    /// Decisions and explanations are consistent with each other.
    #[test]
    fn explanation_is_consistent(s in scenario()) {
        let p = parse_all(&s);
        let e = run(&s, &p, evaluate);
        match e.decision {
            Decision::Allowed => {
                prop_assert!(e.explanation.denying_layer().is_none());
                prop_assert!(e.explanation.matched_statements().all(|m| m.effect == Effect::Allow));
            }
            Decision::ExplicitlyDenied => {
                let (layer, explicit) = e.explanation.denying_layer().unwrap();
                prop_assert!(explicit);
                prop_assert!(e.explanation.matched_statements().any(|m| m.layer == layer && m.effect == Effect::Deny));
            }
            Decision::ImplicitlyDenied => {
                prop_assert_eq!(e.explanation.denying_layer().map(|l| l.1), Some(false));
                prop_assert!(e.explanation.statements.iter().all(|m| m.effect == Effect::Allow));
                prop_assert_eq!(e.explanation.matched_statements().count(), 0);
            }
        }
        // Serializable for the CLI.
        let v = serde_json::to_value(&e).unwrap();
        prop_assert!(v["explanation"]["summary"].is_string());
    }
}

/// The generator must exercise every outcome and every denying layer, or the properties prove little.
#[test]
fn generator_covers_all_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let mut decisions = std::collections::HashMap::new();
    let mut layers = std::collections::HashSet::new();
    for _ in 0..2000 {
        let s = strategy.new_tree(&mut runner).expect("tree").current();
        let p = parse_all(&s);
        let e = run(&s, &p, evaluate);
        *decisions.entry(e.decision).or_insert(0usize) += 1;
        if let Some(l) = e.explanation.denying_layer() {
            layers.insert(l);
        }
    }
    for d in [Decision::Allowed, Decision::ImplicitlyDenied, Decision::ExplicitlyDenied] {
        assert!(decisions.get(&d).copied().unwrap_or(0) >= 100, "{d:?} too rare: {decisions:?}");
        eprintln!("{d:?}: {}", decisions.get(&d).copied().unwrap_or(0));
    }
    assert!(layers.len() >= 10, "denying layers seen: {layers:?}");
}

/// Arbitrary JSON built from policy-ish pieces: the parser and validators never panic, and whatever
/// parses evaluates identically in both evaluators (a CI-sized cousin of the fuzz target).
fn jsonish() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "Version",
        "2012-10-17",
        "2008-10-17",
        "Statement",
        "Effect",
        "Allow",
        "Deny",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "AWS",
        "Service",
        "Condition",
        "Sid",
        "*",
        "s3:Get*",
        "sts:AssumeRole",
        "arn:aws:s3:::b/*",
        "111122223333",
        "StringLike",
        "DateLessThan",
        "ForAnyValue:StringEquals",
        "IpAddress",
        "aws:username",
        "${aws:username}",
        "10.0.0.0/8",
        "2020-01-01",
        "é:x",
        "",
        "Null",
        "true",
    ]);
    let leaf = prop_oneof![
        words.prop_map(|w| json!(w)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
        ".{0,12}".prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "Version",
            "Statement",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
            "Sid",
            "AWS",
            "Service",
            "StringEquals",
            "DateGreaterThan",
            "Bool",
            "ForAllValues:StringLike",
            "aws:SourceIp",
            "Id",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_documents_never_panic(v in jsonish(), raw in ".{0,40}") {
        let principal = Principal::iam_user("arn:aws:iam::111122223333:user/alice", A);
        let mut ctx = Context::new();
        ctx.insert("aws:username", ContextValue::String("alice".into()));
        for text in [v.to_string(), raw] {
            for ty in [PolicyType::Identity, PolicyType::Resource, PolicyType::Trust, PolicyType::ServiceControl, PolicyType::ResourceControl] {
                let _ = harness::validate(&text, ty);
                let Ok(p) = Policy::parse(&text, ty) else { continue };
                let set = PolicySet { identity: vec![NamedPolicy::new("p", &p)], resource_policy: Some(NamedPolicy::new("p", &p)), ..PolicySet::default() };
                let req = Request { principal: &principal, action: "s3:GetObject", resource: "arn:aws:s3:::b/alice", resource_account: None, context: &ctx };
                let fast = evaluate(&req, &set);
                let reference = reference::evaluate(&req, &set);
                prop_assert_eq!(fast.decision, reference.decision);
                prop_assert_eq!(&fast.explanation.statements, &reference.explanation.statements);
            }
        }
    }
}

/// Context keys as a model: a map from lower-cased key to the last value inserted under any case.
#[derive(Clone, Debug)]
enum ContextOp {
    Insert(String, String),
    InsertKey(String, bool, String),
}

fn context_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "aws:SourceIp",
        "aws:sourceip",
        "AWS:SOURCEIP",
        "kms:CallerAccount",
        "kms:calleraccount",
        "a",
        "A",
        "kms:EncryptionContext:Team",
        "kms:encryptioncontext:team",
    ])
    .prop_map(str::to_string)
}

proptest! {
    #[test]
    fn context_is_a_case_insensitive_map(ops in prop::collection::vec(
        prop_oneof![
            (context_key(), "[a-z]{0,3}").prop_map(|(k, v)| ContextOp::Insert(k, v)),
            (context_key(), any::<bool>(), "[a-z]{0,3}").prop_map(|(k, owned, v)| ContextOp::InsertKey(k, owned, v)),
        ],
        0..24,
    ), probe in context_key()) {
        let mut ctx = Context::new();
        let mut model = std::collections::BTreeMap::new();
        for op in ops {
            let (k, v) = match op {
                ContextOp::Insert(k, v) => {
                    ctx.insert(&k, ContextValue::String(v.clone()));
                    (k, v)
                }
                ContextOp::InsertKey(k, owned, v) => {
                    // Borrowed keys must be 'static: leak the few distinct test keys.
                    let key: std::borrow::Cow<'static, str> =
                        if owned { std::borrow::Cow::Owned(k.clone()) } else { std::borrow::Cow::Borrowed(Box::leak(k.clone().into_boxed_str())) };
                    ctx.insert_key(key, ContextValue::String(v.clone()));
                    (k, v)
                }
            };
            model.insert(k.to_ascii_lowercase(), v);
        }
        prop_assert_eq!(ctx.len(), model.len());
        let expected = model.get(&probe.to_ascii_lowercase()).map(|v| ContextValue::String(v.clone()));
        prop_assert_eq!(ctx.get(&probe), expected.as_ref());
        let mut got: Vec<(String, ContextValue)> = ctx.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let want: Vec<(String, ContextValue)> = model.into_iter().map(|(k, v)| (k, ContextValue::String(v))).collect();
        prop_assert_eq!(got, want);
    }
}
