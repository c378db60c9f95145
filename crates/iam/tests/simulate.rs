//! The policy simulator and context-key discovery.

mod common;
use common::*;

const S3_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}]}"#;
const DENY_SECRET: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/secret"}]}"#;
const IP_COND: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringLike":{"s3:prefix":"home/*"}}}]}"#;

#[test]
fn custom_policy_decisions() {
    let h = H::new();
    let r = h.ok(
        "SimulateCustomPolicy",
        &[
            ("PolicyInputList.member.1", S3_READ),
            ("PolicyInputList.member.2", DENY_SECRET),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ActionNames.member.2", "s3:PutObject"),
            ("ResourceArns.member.1", "arn:aws:s3:::bucket/a"),
            ("ResourceArns.member.2", "arn:aws:s3:::bucket/secret"),
        ],
    );
    let results = r.members("EvaluationResults");
    assert_eq!(results.len(), 4);
    let decisions: Vec<(String, String, String)> = results
        .iter()
        .map(|m| (m.text("EvalActionName"), m.text("EvalResourceName"), m.text("EvalDecision")))
        .collect();
    assert_eq!(
        decisions,
        vec![
            ("s3:GetObject".into(), "arn:aws:s3:::bucket/a".into(), "allowed".into()),
            ("s3:GetObject".into(), "arn:aws:s3:::bucket/secret".into(), "explicitDeny".into()),
            ("s3:PutObject".into(), "arn:aws:s3:::bucket/a".into(), "implicitDeny".into()),
            ("s3:PutObject".into(), "arn:aws:s3:::bucket/secret".into(), "implicitDeny".into()),
        ]
    );
    assert_eq!(results[0].text("ResourceSpecificResults/member/EvalResourceDecision"), "allowed");
    assert_eq!(r.text("IsTruncated"), "false");

    let page = h.ok(
        "SimulateCustomPolicy",
        &[
            ("PolicyInputList.member.1", S3_READ),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ActionNames.member.2", "s3:PutObject"),
            ("MaxItems", "1"),
        ],
    );
    assert_eq!(page.members("EvaluationResults").len(), 1);
    assert_eq!(page.text("IsTruncated"), "true");
    let next = h.ok(
        "SimulateCustomPolicy",
        &[
            ("PolicyInputList.member.1", S3_READ),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ActionNames.member.2", "s3:PutObject"),
            ("MaxItems", "1"),
            ("Marker", &page.text("Marker")),
        ],
    );
    assert_eq!(next.members("EvaluationResults")[0].text("EvalActionName"), "s3:PutObject");
}

#[test]
fn context_entries_and_boundaries() {
    let h = H::new();
    let base = [("PolicyInputList.member.1", IP_COND), ("ActionNames.member.1", "s3:ListBucket")];
    let r = h.ok("SimulateCustomPolicy", &base);
    assert_eq!(r.members("EvaluationResults")[0].text("EvalDecision"), "implicitDeny");
    let mut missing = r.members("EvaluationResults")[0].member_texts("MissingContextValues", "");
    missing.sort();
    assert_eq!(missing, vec!["aws:SourceIp", "s3:prefix"]);
    let mut with_ctx = base.to_vec();
    with_ctx.extend([
        ("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
        ("ContextEntries.member.1.ContextKeyType", "ip"),
        ("ContextEntries.member.1.ContextKeyValues.member.1", "10.1.2.3"),
        ("ContextEntries.member.2.ContextKeyName", "s3:prefix"),
        ("ContextEntries.member.2.ContextKeyType", "string"),
        ("ContextEntries.member.2.ContextKeyValues.member.1", "home/alice"),
    ]);
    let r = h.ok("SimulateCustomPolicy", &with_ctx);
    assert_eq!(r.members("EvaluationResults")[0].text("EvalDecision"), "allowed");
    assert!(r.members("EvaluationResults")[0].members("MissingContextValues").is_empty());
    let mut bounded = with_ctx.clone();
    bounded.push(("PermissionsBoundaryPolicyInputList.member.1", S3_READ));
    let r = h.ok("SimulateCustomPolicy", &bounded);
    let m = r.members("EvaluationResults")[0].clone();
    assert_eq!(m.text("EvalDecision"), "implicitDeny");
    assert_eq!(m.text("PermissionsBoundaryDecisionDetail/AllowedByPermissionsBoundary"), "false");

    let mut bad = base.to_vec();
    bad.extend([
        ("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
        ("ContextEntries.member.1.ContextKeyType", "ipv9"),
    ]);
    assert_err(&h.err("SimulateCustomPolicy", &bad), "ValidationError", 400);
    assert_err(
        &h.err(
            "SimulateCustomPolicy",
            &[("PolicyInputList.member.1", "{nope"), ("ActionNames.member.1", "s3:GetObject")],
        ),
        "InvalidInput",
        400,
    );
    assert_err(&h.err("SimulateCustomPolicy", &[("PolicyInputList.member.1", S3_READ)]), "ValidationError", 400);
}

#[test]
fn principal_policy() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "sim")]);
    h.ok("CreateGroup", &[("GroupName", "readers")]);
    h.ok("PutGroupPolicy", &[("GroupName", "readers"), ("PolicyName", "read"), ("PolicyDocument", S3_READ)]);
    h.ok("AddUserToGroup", &[("GroupName", "readers"), ("UserName", "sim")]);
    let arn = format!("arn:aws:iam::{ACCT}:user/sim");
    let r = h.ok(
        "SimulatePrincipalPolicy",
        &[
            ("PolicySourceArn", &arn),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ResourceArns.member.1", "arn:aws:s3:::bucket/x"),
        ],
    );
    let m = r.members("EvaluationResults")[0].clone();
    assert_eq!(m.text("EvalDecision"), "allowed");
    assert_eq!(m.member_texts("MatchedStatements", "SourcePolicyType"), vec!["group"]);
    assert_eq!(m.member_texts("MatchedStatements", "SourcePolicyId"), vec!["read"]);
    // Positions of the statement in its document (1-based line and column).
    let stmt = m.members("MatchedStatements")[0];
    assert_eq!(stmt.text("StartPosition/Line"), "1");
    let (start, end): (u32, u32) =
        (stmt.text("StartPosition/Column").parse().unwrap(), stmt.text("EndPosition/Column").parse().unwrap());
    assert!(start > 1 && end > start, "{start}..{end}");
    // Extra input policies are added to the principal's.
    let r = h.ok(
        "SimulatePrincipalPolicy",
        &[
            ("PolicySourceArn", &arn),
            ("PolicyInputList.member.1", DENY_SECRET),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ResourceArns.member.1", "arn:aws:s3:::bucket/secret"),
        ],
    );
    assert_eq!(r.members("EvaluationResults")[0].text("EvalDecision"), "explicitDeny");
    let group_arn = format!("arn:aws:iam::{ACCT}:group/readers");
    let r = h.ok(
        "SimulatePrincipalPolicy",
        &[
            ("PolicySourceArn", &group_arn),
            ("ActionNames.member.1", "s3:GetObject"),
            ("ResourceArns.member.1", "arn:aws:s3:::bucket/x"),
        ],
    );
    assert_eq!(r.members("EvaluationResults")[0].text("EvalDecision"), "allowed");
    let ghost = format!("arn:aws:iam::{ACCT}:user/ghost");
    assert_err(
        &h.err("SimulatePrincipalPolicy", &[("PolicySourceArn", &ghost), ("ActionNames.member.1", "s3:GetObject")]),
        "NoSuchEntity",
        404,
    );
    assert_err(
        &h.err(
            "SimulatePrincipalPolicy",
            &[("PolicySourceArn", "arn:aws:s3:::bucket-name-x"), ("ActionNames.member.1", "s3:GetObject")],
        ),
        "InvalidInput",
        400,
    );
}

#[test]
fn context_keys() {
    let h = H::new();
    let r = h.ok(
        "GetContextKeysForCustomPolicy",
        &[("PolicyInputList.member.1", IP_COND), ("PolicyInputList.member.2", S3_READ)],
    );
    let mut keys = r.member_texts("ContextKeyNames", "");
    keys.sort();
    assert_eq!(keys, vec!["aws:SourceIp", "s3:prefix"]);
    h.ok("CreateUser", &[("UserName", "k")]);
    h.ok("PutUserPolicy", &[("UserName", "k"), ("PolicyName", "p"), ("PolicyDocument", IP_COND)]);
    let r = h.ok("GetContextKeysForPrincipalPolicy", &[("PolicySourceArn", &format!("arn:aws:iam::{ACCT}:user/k"))]);
    let mut keys = r.member_texts("ContextKeyNames", "");
    keys.sort();
    assert_eq!(keys, vec!["aws:SourceIp", "s3:prefix"]);
}
