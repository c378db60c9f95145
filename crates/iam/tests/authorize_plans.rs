//! Each operation names the IAM action, resource ARN and context keys of AWS's Service
//! Authorization Reference.

mod common;
use common::*;
use rampart_policy::ContextValue;
use rampart_service::{AuthzCheck, AuthzPlan};

fn checks(plan: AuthzPlan) -> Vec<AuthzCheck> {
    match plan {
        AuthzPlan::Checks(c) => c,
        AuthzPlan::AlwaysAllowed => panic!("IAM operations always need authorization"),
    }
}

fn single(h: &H, op: &str, params: &[(&str, &str)]) -> AuthzCheck {
    let c = checks(h.plan(op, params));
    assert_eq!(c.len(), 1, "{op}: {c:?}");
    c.into_iter().next().unwrap()
}

fn ctx<'a>(c: &'a AuthzCheck, key: &str) -> Option<&'a ContextValue> {
    c.context.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn actions_and_resources() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "bob"), ("Path", "/eng/")]);
    h.ok("CreateGroup", &[("GroupName", "devs"), ("Path", "/g/")]);
    h.ok("CreateInstanceProfile", &[("InstanceProfileName", "ip")]);
    let a = |kind: &str, rest: &str| format!("arn:aws:iam::{ACCT}:{kind}{rest}");
    let bob = a("user", "/eng/bob");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, String);
    let cases: Vec<Case> = vec![
        ("CreateUser", vec![("UserName", "x"), ("Path", "/p/")], "iam:CreateUser", a("user", "/p/x")),
        ("GetUser", vec![("UserName", "bob")], "iam:GetUser", a("user", "/eng/bob")),
        ("GetUser", vec![("UserName", "ghost")], "iam:GetUser", a("user", "/ghost")),
        ("ListUsers", vec![], "iam:ListUsers", a("user", "/")),
        ("ListUsers", vec![("PathPrefix", "/eng/")], "iam:ListUsers", a("user", "/eng/")),
        ("DeleteUser", vec![("UserName", "bob")], "iam:DeleteUser", a("user", "/eng/bob")),
        ("CreateAccessKey", vec![("UserName", "bob")], "iam:CreateAccessKey", a("user", "/eng/bob")),
        ("ListAccessKeys", vec![], "iam:ListAccessKeys", a("root", "")),
        ("ListGroupsForUser", vec![("UserName", "bob")], "iam:ListGroupsForUser", a("user", "/eng/bob")),
        ("CreateGroup", vec![("GroupName", "g2")], "iam:CreateGroup", a("group", "/g2")),
        (
            "AddUserToGroup",
            vec![("GroupName", "devs"), ("UserName", "bob")],
            "iam:AddUserToGroup",
            a("group", "/g/devs"),
        ),
        ("ListGroups", vec![], "iam:ListGroups", a("group", "/")),
        (
            "CreateRole",
            vec![("RoleName", "r"), ("AssumeRolePolicyDocument", TRUST_EC2)],
            "iam:CreateRole",
            a("role", "/r"),
        ),
        ("ListRoles", vec![], "iam:ListRoles", a("role", "/")),
        ("GetRole", vec![("RoleName", "r")], "iam:GetRole", a("role", "/r")),
        ("CreatePolicy", vec![("PolicyName", "p"), ("PolicyDocument", "{}")], "iam:CreatePolicy", a("policy", "/p")),
        ("ListPolicies", vec![], "iam:ListPolicies", a("policy", "/")),
        (
            "GetPolicy",
            vec![("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess")],
            "iam:GetPolicy",
            "arn:aws:iam::aws:policy/ReadOnlyAccess".into(),
        ),
        (
            "PutUserPolicy",
            vec![("UserName", "bob"), ("PolicyName", "p"), ("PolicyDocument", "{}")],
            "iam:PutUserPolicy",
            a("user", "/eng/bob"),
        ),
        ("ListRolePolicies", vec![("RoleName", "r")], "iam:ListRolePolicies", a("role", "/r")),
        (
            "GetGroupPolicy",
            vec![("GroupName", "devs"), ("PolicyName", "p")],
            "iam:GetGroupPolicy",
            a("group", "/g/devs"),
        ),
        (
            "CreateInstanceProfile",
            vec![("InstanceProfileName", "i2")],
            "iam:CreateInstanceProfile",
            a("instance-profile", "/i2"),
        ),
        (
            "GetInstanceProfile",
            vec![("InstanceProfileName", "ip")],
            "iam:GetInstanceProfile",
            a("instance-profile", "/ip"),
        ),
        ("ListInstanceProfiles", vec![], "iam:ListInstanceProfiles", a("instance-profile", "/")),
        ("GetAccountSummary", vec![], "iam:GetAccountSummary", "*".into()),
        ("ListAccountAliases", vec![], "iam:ListAccountAliases", "*".into()),
        ("CreateAccountAlias", vec![("AccountAlias", "abc")], "iam:CreateAccountAlias", "*".into()),
        (
            "SimulateCustomPolicy",
            vec![("PolicyInputList.member.1", "{}"), ("ActionNames.member.1", "s3:Get")],
            "iam:SimulateCustomPolicy",
            "*".into(),
        ),
        (
            "SimulatePrincipalPolicy",
            vec![("PolicySourceArn", bob.as_str()), ("ActionNames.member.1", "s3:Get")],
            "iam:SimulatePrincipalPolicy",
            a("user", "/eng/bob"),
        ),
        (
            "GetContextKeysForCustomPolicy",
            vec![("PolicyInputList.member.1", "{}")],
            "iam:GetContextKeysForCustomPolicy",
            "*".into(),
        ),
    ];
    for (op, params, action, resource) in cases {
        let c = single(&h, op, &params);
        assert_eq!((c.action.as_str(), c.resource.as_str()), (action, resource.as_str()), "{op}");
    }
}

#[test]
fn tag_and_boundary_context() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "t"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "red")]);
    let c = single(&h, "GetUser", &[("UserName", "t")]);
    assert_eq!(ctx(&c, "aws:ResourceTag/team"), Some(&ContextValue::String("red".into())));
    assert_eq!(ctx(&c, "iam:ResourceTag/team"), Some(&ContextValue::String("red".into())));

    let c = single(&h, "TagUser", &[("UserName", "t"), ("Tags.member.1.Key", "env"), ("Tags.member.1.Value", "prod")]);
    assert_eq!(ctx(&c, "aws:RequestTag/env"), Some(&ContextValue::String("prod".into())));
    assert_eq!(ctx(&c, "aws:TagKeys"), Some(&ContextValue::List(vec!["env".into()])));
    let c = single(&h, "UntagUser", &[("UserName", "t"), ("TagKeys.member.1", "team")]);
    assert_eq!(ctx(&c, "aws:TagKeys"), Some(&ContextValue::List(vec!["team".into()])));

    let b = "arn:aws:iam::aws:policy/PowerUserAccess";
    let c = single(&h, "CreateUser", &[("UserName", "n"), ("PermissionsBoundary", b)]);
    assert_eq!(ctx(&c, "iam:PermissionsBoundary"), Some(&ContextValue::String(b.into())));
    let c = single(&h, "AttachUserPolicy", &[("UserName", "t"), ("PolicyArn", b)]);
    assert_eq!(ctx(&c, "iam:PolicyARN"), Some(&ContextValue::String(b.into())));
    h.ok("PutUserPermissionsBoundary", &[("UserName", "t"), ("PermissionsBoundary", b)]);
    let c = single(&h, "PutUserPolicy", &[("UserName", "t"), ("PolicyName", "p"), ("PolicyDocument", "{}")]);
    assert_eq!(ctx(&c, "iam:PermissionsBoundary"), Some(&ContextValue::String(b.into())));
}

#[test]
fn add_role_to_instance_profile_needs_pass_role() {
    let h = H::new();
    let c = checks(h.plan("AddRoleToInstanceProfile", &[("InstanceProfileName", "ip"), ("RoleName", "r")]));
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].action, "iam:AddRoleToInstanceProfile");
    assert_eq!(c[1].action, "iam:PassRole");
    assert_eq!(c[1].resource, format!("arn:aws:iam::{ACCT}:role/r"));
    assert_eq!(ctx(&c[1], "iam:PassedToService"), Some(&ContextValue::String("ec2.amazonaws.com".into())));
}

#[test]
fn validation_happens_before_authorization() {
    let h = H::new();
    let mut pairs = vec![("UserName".to_string(), "bad name".to_string())];
    pairs.push(("Action".into(), "GetUser".into()));
    let input = rampart_service::Input::Query(rampart_protocol::query::QueryParams::from_pairs(pairs));
    let e = h.svc.plan(&h.root(), "GetUser", &input).unwrap_err();
    assert_err(&e, "ValidationError", 400);
}
