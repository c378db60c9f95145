//! Parse arbitrary text as every policy type; whatever parses is evaluated by both evaluators, which
//! must agree (and neither may panic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::*;

const TYPES: [PolicyType; 5] = [
    PolicyType::Identity,
    PolicyType::Resource,
    PolicyType::Trust,
    PolicyType::ServiceControl,
    PolicyType::ResourceControl,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut ctx = Context::new();
    ctx.insert("aws:username", ContextValue::String("alice".into()));
    ctx.insert("aws:SourceIp", ContextValue::String("203.0.113.7".into()));
    ctx.insert("aws:TagKeys", ContextValue::List(vec!["env".into(), "team".into()]));
    ctx.insert("aws:CurrentTime", ContextValue::String("2026-06-01T12:00:00Z".into()));
    let principals = [
        Principal::iam_user("arn:aws:iam::111122223333:user/alice", "111122223333"),
        Principal::from_arn("arn:aws:sts::111122223333:assumed-role/Dev/s").expect("valid"),
        Principal::from_arn("lambda.amazonaws.com").expect("valid"),
    ];
    for ty in TYPES {
        let _ = harness::validate(text, ty);
        let Ok(policy) = Policy::parse(text, ty) else { continue };
        let _ = policy.condition_keys();
        let np = NamedPolicy::new("fuzz", &policy);
        let set = match ty {
            PolicyType::Identity => PolicySet { identity: vec![np], ..PolicySet::default() },
            PolicyType::Resource | PolicyType::Trust => {
                PolicySet { resource_policy: Some(np), resource_policy_required: true, ..PolicySet::default() }
            }
            PolicyType::ServiceControl => {
                PolicySet { service_control_policies: Some(vec![vec![np]]), ..PolicySet::default() }
            }
            PolicyType::ResourceControl => {
                PolicySet { resource_control_policies: Some(vec![vec![np]]), ..PolicySet::default() }
            }
        };
        for p in &principals {
            for (action, resource) in [("s3:GetObject", "arn:aws:s3:::bucket/alice/x"), ("iam:GetUser", "*")] {
                let req = Request { principal: p, action, resource, resource_account: None, context: &ctx };
                let fast = evaluate(&req, &set);
                let reference = reference::evaluate(&req, &set);
                assert_eq!(fast.decision, reference.decision, "{text}");
                assert_eq!(fast.explanation.statements, reference.explanation.statements, "{text}");
            }
        }
    }
});
