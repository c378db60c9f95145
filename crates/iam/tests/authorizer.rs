//! The authorizer end to end: users' policies (inline, attached, groups), boundaries, policy
//! variables, tags, resource policies, and AWS's AccessDenied messages.

mod common;
use common::*;
use rampart_service::{AuthzCheck, ResourcePolicy};

const READ_ONLY: &str = "arn:aws:iam::aws:policy/IAMReadOnlyAccess";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

#[test]
fn no_policy_means_denied_with_aws_message() {
    let h = H::new();
    let key = h.user_with_key("bob");
    let bob = h.ctx_for(&key);
    let e = h.call(&bob, "CreateUser", &[("UserName", "x")]).unwrap_err();
    assert_err(&e, "AccessDenied", 403);
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:iam::{ACCT}:user/bob is not authorized to perform: iam:CreateUser on resource: \
             arn:aws:iam::{ACCT}:user/x because no identity-based policy allows the iam:CreateUser action"
        )
    );
    assert_err(&h.err("GetUser", &[("UserName", "x")]), "NoSuchEntity", 404);
}

#[test]
fn attached_inline_and_group_policies() {
    let h = H::new();
    let key = h.user_with_key("bob");
    let bob = h.ctx_for(&key);
    h.ok("AttachUserPolicy", &[("UserName", "bob"), ("PolicyArn", READ_ONLY)]);
    h.call(&bob, "GetUser", &[("UserName", "bob")]).unwrap();
    h.call(&bob, "ListUsers", &[]).unwrap();
    assert_err(&h.call(&bob, "CreateUser", &[("UserName", "x")]).unwrap_err(), "AccessDenied", 403);

    // A group grants CreateUser.
    h.ok("CreateGroup", &[("GroupName", "admins")]);
    h.ok(
        "PutGroupPolicy",
        &[("GroupName", "admins"), ("PolicyName", "cu"), ("PolicyDocument", &allow(&["iam:CreateUser"]))],
    );
    h.ok("AddUserToGroup", &[("GroupName", "admins"), ("UserName", "bob")]);
    h.call(&bob, "CreateUser", &[("UserName", "x")]).unwrap();

    // An inline explicit deny wins.
    let deny = allow(&["iam:CreateUser"]).replace("Allow", "Deny");
    h.ok("PutUserPolicy", &[("UserName", "bob"), ("PolicyName", "no"), ("PolicyDocument", &deny)]);
    let e = h.call(&bob, "CreateUser", &[("UserName", "y")]).unwrap_err();
    assert_err(&e, "AccessDenied", 403);
    assert!(e.message.ends_with("with an explicit deny in an identity-based policy"), "{}", e.message);

    // Changes take effect on the next call.
    h.ok("DeleteUserPolicy", &[("UserName", "bob"), ("PolicyName", "no")]);
    h.call(&bob, "CreateUser", &[("UserName", "y")]).unwrap();
    h.ok("RemoveUserFromGroup", &[("GroupName", "admins"), ("UserName", "bob")]);
    assert_err(&h.call(&bob, "CreateUser", &[("UserName", "z")]).unwrap_err(), "AccessDenied", 403);
    h.ok("DetachUserPolicy", &[("UserName", "bob"), ("PolicyArn", READ_ONLY)]);
    assert_err(&h.call(&bob, "ListUsers", &[]).unwrap_err(), "AccessDenied", 403);
}

#[test]
fn managed_policy_default_version_is_what_counts() {
    let h = H::new();
    let key = h.user_with_key("bob");
    let bob = h.ctx_for(&key);
    let arn =
        h.ok("CreatePolicy", &[("PolicyName", "p"), ("PolicyDocument", &allow(&["iam:ListUsers"]))]).text("Policy/Arn");
    h.ok("AttachUserPolicy", &[("UserName", "bob"), ("PolicyArn", &arn)]);
    h.call(&bob, "ListUsers", &[]).unwrap();
    h.ok(
        "CreatePolicyVersion",
        &[("PolicyArn", &arn), ("PolicyDocument", &allow(&["iam:ListGroups"])), ("SetAsDefault", "true")],
    );
    assert_err(&h.call(&bob, "ListUsers", &[]).unwrap_err(), "AccessDenied", 403);
    h.call(&bob, "ListGroups", &[]).unwrap();
    h.ok("SetDefaultPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v1")]);
    h.call(&bob, "ListUsers", &[]).unwrap();
}

#[test]
fn permissions_boundary_limits() {
    let h = H::new();
    let key = h.user_with_key("bob");
    let bob = h.ctx_for(&key);
    h.ok("AttachUserPolicy", &[("UserName", "bob"), ("PolicyArn", ADMIN)]);
    h.ok("PutUserPermissionsBoundary", &[("UserName", "bob"), ("PermissionsBoundary", READ_ONLY)]);
    h.call(&bob, "ListUsers", &[]).unwrap();
    let e = h.call(&bob, "CreateUser", &[("UserName", "x")]).unwrap_err();
    assert_err(&e, "AccessDenied", 403);
    assert!(e.message.ends_with("because no permissions boundary allows the iam:CreateUser action"), "{}", e.message);
    h.ok("DeleteUserPermissionsBoundary", &[("UserName", "bob")]);
    h.call(&bob, "CreateUser", &[("UserName", "x")]).unwrap();
}

#[test]
fn policy_variables_and_tags() {
    let h = H::new();
    let key = h.user_with_key("bob");
    h.ok("CreateUser", &[("UserName", "carol")]);
    let bob = h.ctx_for(&key);
    let own = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GetUser","iam:ListAccessKeys"],"Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#;
    h.ok("PutUserPolicy", &[("UserName", "bob"), ("PolicyName", "self"), ("PolicyDocument", own)]);
    h.call(&bob, "GetUser", &[("UserName", "bob")]).unwrap();
    h.call(&bob, "GetUser", &[]).unwrap();
    h.call(&bob, "ListAccessKeys", &[]).unwrap();
    assert_err(&h.call(&bob, "GetUser", &[("UserName", "carol")]).unwrap_err(), "AccessDenied", 403);

    // aws:ResourceTag and aws:PrincipalTag.
    let tagged = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:TagUser","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}]}"#;
    h.ok("PutUserPolicy", &[("UserName", "bob"), ("PolicyName", "tags"), ("PolicyDocument", tagged)]);
    h.ok("TagUser", &[("UserName", "bob"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "red")]);
    h.ok("TagUser", &[("UserName", "carol"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "blue")]);
    let tag = [("UserName", "carol"), ("Tags.member.1.Key", "x"), ("Tags.member.1.Value", "y")];
    assert_err(&h.call(&bob, "TagUser", &tag).unwrap_err(), "AccessDenied", 403);
    h.ok("TagUser", &[("UserName", "carol"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "red")]);
    h.call(&bob, "TagUser", &tag).unwrap();
}

#[test]
fn request_context_keys() {
    let h = H::new();
    let key = h.user_with_key("bob");
    let bob = h.ctx_for(&key);
    let cond = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"},"StringEquals":{"aws:RequestedRegion":"us-east-1","aws:PrincipalType":"User","aws:PrincipalAccount":"111122223333"}}}]}"#;
    h.ok("PutUserPolicy", &[("UserName", "bob"), ("PolicyName", "c"), ("PolicyDocument", cond)]);
    h.call(&bob, "ListUsers", &[]).unwrap();
    let mut other_ip = bob.clone();
    other_ip.source_ip = "198.51.100.1".parse().unwrap();
    assert_err(&h.call(&other_ip, "ListUsers", &[]).unwrap_err(), "AccessDenied", 403);
    let mut plain = bob.clone();
    plain.secure_transport = false;
    assert_err(&h.call(&plain, "ListUsers", &[]).unwrap_err(), "AccessDenied", 403);
}

#[test]
fn root_and_resource_policies() {
    let h = H::new();
    let root = h.root();
    let mut c = AuthzCheck::new("kms:Decrypt", format!("arn:aws:kms:us-east-1:{ACCT}:key/k1"));
    h.authz.check(&root, "kms", c.clone()).unwrap();
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    // The same decision whether the authorizer compiles the document or its owner did.
    for rp in [
        ResourcePolicy::new("key-policy", deny.as_str(), true),
        ResourcePolicy::compiled("key-policy", deny.as_str(), true),
    ] {
        c.resource_policy = Some(rp);
        let e = h.authz.check(&root, "kms", c.clone()).unwrap_err();
        assert_err(&e, "AccessDeniedException", 400);
        assert!(e.message.ends_with("with an explicit deny in a resource-based policy"), "{}", e.message);
    }
    // A document that does not compile is reported by the authorizer, compiled up front or not.
    for rp in [ResourcePolicy::new("bad", "{", true), ResourcePolicy::compiled("bad", "{", true)] {
        assert!(rp.compiled.is_none());
        c.resource_policy = Some(rp);
        assert!(h.authz.check(&root, "kms", c.clone()).is_err());
    }

    // A same-account resource policy naming the user grants without any identity policy.
    let key = h.user_with_key("bob");
    let bob = h.ctx_for(&key);
    let mut s =
        AuthzCheck::new("secretsmanager:GetSecretValue", format!("arn:aws:secretsmanager:us-east-1:{ACCT}:secret:s"));
    assert!(h.authz.check(&bob, "secretsmanager", s.clone()).is_err());
    let allow = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:user/bob"}},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}]}}"#
    );
    for rp in [
        ResourcePolicy::new("secret-policy", allow.as_str(), false),
        ResourcePolicy::compiled("secret-policy", allow.as_str(), false),
    ] {
        s.resource_policy = Some(rp);
        h.authz.check(&bob, "secretsmanager", s.clone()).unwrap();
    }
}

#[test]
fn deleted_user_keys_stop_working() {
    let h = H::new();
    let key = h.user_with_key("gone");
    h.ok("AttachUserPolicy", &[("UserName", "gone"), ("PolicyArn", READ_ONLY)]);
    let ctx = h.ctx_for(&key);
    h.call(&ctx, "ListUsers", &[]).unwrap();
    h.ok("DeleteAccessKey", &[("UserName", "gone"), ("AccessKeyId", &key)]);
    assert!(h.creds.lookup(&key).unwrap().is_none());
}

#[test]
fn an_assume_root_task_policy_binds_the_root_session() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "bob")]);
    let arn = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials";
    let doc = url_decode(
        &h.ok("GetPolicyVersion", &[("PolicyArn", arn), ("VersionId", "v1")]).text("PolicyVersion/Document"),
    );
    let mut root = h.root();
    root.caller.session =
        Some(rampart_service::SessionInfo { task_policy: Some((arn.to_string(), doc)), ..Default::default() });
    // The task's own actions, on the root user itself.
    h.call(&root, "ListAccessKeys", &[]).unwrap();
    h.call(&root, "ListMFADevices", &[]).unwrap();
    // Anything else, or the task's actions on another user: the task policy's explicit deny.
    for (op, params) in
        [("CreateUser", vec![("UserName", "x")]), ("ListUsers", vec![]), ("ListAccessKeys", vec![("UserName", "bob")])]
    {
        let e = h.call(&root, op, &params).unwrap_err();
        assert_err(&e, "AccessDenied", 403);
        assert!(e.message.ends_with("with an explicit deny in an identity-based policy"), "{}", e.message);
    }
    // The root without a task policy is unaffected.
    h.call(&h.root(), "CreateUser", &[("UserName", "x")]).unwrap();
}
