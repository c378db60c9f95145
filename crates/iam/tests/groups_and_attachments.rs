//! Groups, membership, attaching AWS managed policies, account aliases and summary.

mod common;
use common::*;

const RO: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

#[test]
fn groups_and_membership() {
    let h = H::new();
    let g = h.ok("CreateGroup", &[("GroupName", "Devs"), ("Path", "/x/")]);
    assert!(g.text("Group/GroupId").starts_with("AGPA"));
    assert_eq!(g.text("Group/Arn"), format!("arn:aws:iam::{ACCT}:group/x/Devs"));
    let e = h.err("CreateGroup", &[("GroupName", "devs")]);
    assert_err(&e, "EntityAlreadyExists", 409);
    assert_eq!(e.message, "Group with name devs already exists.");
    h.ok("CreateUser", &[("UserName", "u1")]);
    h.ok("CreateUser", &[("UserName", "u2")]);
    h.ok("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "u2")]);
    h.ok("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "u1")]);
    h.ok("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "u1")]);
    let g = h.ok("GetGroup", &[("GroupName", "devs")]);
    assert_eq!(g.text("Group/GroupName"), "Devs");
    assert_eq!(g.member_texts("Users", "UserName"), vec!["u1", "u2"]);
    let g = h.ok("GetGroup", &[("GroupName", "devs"), ("MaxItems", "1")]);
    assert_eq!(g.text("IsTruncated"), "true");
    let l = h.ok("ListGroupsForUser", &[("UserName", "u1")]);
    assert_eq!(l.member_texts("Groups", "GroupName"), vec!["Devs"]);
    assert_err(&h.err("AddUserToGroup", &[("GroupName", "nope"), ("UserName", "u1")]), "NoSuchEntity", 404);
    assert_err(&h.err("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "nope")]), "NoSuchEntity", 404);
    // With neither present, IAM reports the user.
    let e = h.err("AddUserToGroup", &[("GroupName", "nope"), ("UserName", "nobody")]);
    assert_eq!(e.message, "The user with name nobody cannot be found.");

    let e = h.err("DeleteGroup", &[("GroupName", "devs")]);
    assert_err(&e, "DeleteConflict", 409);
    assert_eq!(e.message, "Cannot delete entity, must remove users from group first.");
    h.ok("RemoveUserFromGroup", &[("GroupName", "devs"), ("UserName", "u1")]);
    assert_err(&h.err("RemoveUserFromGroup", &[("GroupName", "devs"), ("UserName", "u1")]), "NoSuchEntity", 404);
    h.ok("UpdateGroup", &[("GroupName", "devs"), ("NewGroupName", "Ops"), ("NewPath", "/y/")]);
    assert_eq!(h.ok("ListGroupsForUser", &[("UserName", "u2")]).member_texts("Groups", "GroupName"), vec!["Ops"]);
    assert_eq!(h.ok("ListGroups", &[("PathPrefix", "/y/")]).member_texts("Groups", "GroupName"), vec!["Ops"]);
    assert!(h.ok("ListGroups", &[("PathPrefix", "/x/")]).members("Groups").is_empty());
    h.ok("RemoveUserFromGroup", &[("GroupName", "ops"), ("UserName", "u2")]);
    h.ok("DeleteGroup", &[("GroupName", "ops")]);
    assert_err(&h.err("GetGroup", &[("GroupName", "ops")]), "NoSuchEntity", 404);
}

#[test]
fn groups_per_user_quota() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "u")]);
    for i in 0..10 {
        h.ok("CreateGroup", &[("GroupName", &format!("g{i}"))]);
        h.ok("AddUserToGroup", &[("GroupName", &format!("g{i}")), ("UserName", "u")]);
    }
    h.ok("CreateGroup", &[("GroupName", "g10")]);
    let e = h.err("AddUserToGroup", &[("GroupName", "g10"), ("UserName", "u")]);
    assert_err(&e, "LimitExceeded", 409);
    assert_eq!(e.message, "Cannot exceed quota for GroupsPerUser: 10");
}

#[test]
fn attach_aws_managed_policies() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "u")]);
    h.ok("CreateGroup", &[("GroupName", "g")]);
    h.ok("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", RO)]);
    h.ok("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", RO)]);
    h.ok("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", ADMIN)]);
    h.ok("AttachGroupPolicy", &[("GroupName", "g"), ("PolicyArn", RO)]);
    let l = h.ok("ListAttachedUserPolicies", &[("UserName", "u")]);
    assert_eq!(l.member_texts("AttachedPolicies", "PolicyName"), vec!["AdministratorAccess", "ReadOnlyAccess"]);
    assert_eq!(l.member_texts("AttachedPolicies", "PolicyArn"), vec![ADMIN, RO]);
    let p = h.ok("GetPolicy", &[("PolicyArn", RO)]);
    assert_eq!(p.text("Policy/AttachmentCount"), "2");
    assert_eq!(p.text("Policy/IsAttachable"), "true");
    assert_eq!(h.ok("GetPolicy", &[("PolicyArn", ADMIN)]).text("Policy/PolicyId"), "ANPAIWMBCKSKIEE64ZLYK");
    let e = h.ok("ListEntitiesForPolicy", &[("PolicyArn", RO)]);
    assert_eq!(e.member_texts("PolicyUsers", "UserName"), vec!["u"]);
    assert_eq!(e.member_texts("PolicyGroups", "GroupName"), vec!["g"]);
    assert!(e.members("PolicyRoles").is_empty());
    let e = h.ok("ListEntitiesForPolicy", &[("PolicyArn", RO), ("EntityFilter", "Group")]);
    assert!(e.members("PolicyUsers").is_empty());
    let l = h.ok("ListPolicies", &[("OnlyAttached", "true")]);
    assert_eq!(l.member_texts("Policies", "PolicyName"), vec!["AdministratorAccess", "ReadOnlyAccess"]);
    let l = h.ok("ListPolicies", &[("Scope", "AWS"), ("MaxItems", "3")]);
    assert_eq!(l.members("Policies").len(), 3);
    assert_eq!(l.text("IsTruncated"), "true");
    assert!(h.ok("ListPolicies", &[("Scope", "Local")]).members("Policies").is_empty());

    let v = h.ok("GetPolicyVersion", &[("PolicyArn", ADMIN), ("VersionId", "v1")]);
    assert_eq!(v.text("PolicyVersion/IsDefaultVersion"), "true");
    assert!(v.text("PolicyVersion/Document").starts_with("%7B%22Version%22%3A%222012-10-17%22"));
    assert_err(&h.err("GetPolicyVersion", &[("PolicyArn", ADMIN), ("VersionId", "v9")]), "NoSuchEntity", 404);
    assert_err(&h.err("DeletePolicy", &[("PolicyArn", ADMIN)]), "AccessDenied", 403);

    let e = h.err("DetachGroupPolicy", &[("GroupName", "g"), ("PolicyArn", ADMIN)]);
    assert_err(&e, "NoSuchEntity", 404);
    h.ok("DetachGroupPolicy", &[("GroupName", "g"), ("PolicyArn", RO)]);
    let e = h.err("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", "arn:aws:iam::aws:policy/NoSuchPolicy")]);
    assert_err(&e, "NoSuchEntity", 404);
    assert_eq!(e.message, "Policy arn:aws:iam::aws:policy/NoSuchPolicy does not exist or is not attachable.");
    // ValidationError for Attach*/Detach* (recorded AWS responses, localstack
    // tests/aws/services/iam/test_iam_roles.snapshot.json, test_role_managed_policy_errors).
    assert_err(
        &h.err("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", "not-an-arn-at-all-xx")]),
        "ValidationError",
        400,
    );
    assert_err(&h.err("AttachUserPolicy", &[("UserName", "ghost"), ("PolicyArn", RO)]), "NoSuchEntity", 404);
    let e = h.err("GetPolicy", &[("PolicyArn", &format!("arn:aws:iam::{ACCT}:policy/none"))]);
    assert_err(&e, "NoSuchEntity", 404);
    assert_eq!(e.message, format!("Policy arn:aws:iam::{ACCT}:policy/none was not found."));
}

#[test]
fn attached_policies_quota() {
    let h = H::new();
    h.ok("CreateGroup", &[("GroupName", "g")]);
    let all: Vec<String> = h.ok("ListPolicies", &[("Scope", "AWS")]).member_texts("Policies", "Arn");
    for arn in &all[..10] {
        h.ok("AttachGroupPolicy", &[("GroupName", "g"), ("PolicyArn", arn)]);
    }
    let e = h.err("AttachGroupPolicy", &[("GroupName", "g"), ("PolicyArn", &all[10])]);
    assert_err(&e, "LimitExceeded", 409);
    assert_eq!(e.message, "Cannot exceed quota for PoliciesPerGroup: 10");
    let e = h.err("DeleteGroup", &[("GroupName", "g")]);
    assert_eq!(e.message, "Cannot delete entity, must detach all policies first.");
}

#[test]
fn account_aliases_and_summary() {
    let h = H::new();
    assert!(h.ok("ListAccountAliases", &[]).members("AccountAliases").is_empty());
    h.ok("CreateAccountAlias", &[("AccountAlias", "my-corp")]);
    h.ok("CreateAccountAlias", &[("AccountAlias", "my-corp")]);
    assert_eq!(h.ok("ListAccountAliases", &[]).member_texts("AccountAliases", ""), vec!["my-corp"]);
    h.ok("CreateAccountAlias", &[("AccountAlias", "other-name")]);
    assert_eq!(h.ok("ListAccountAliases", &[]).member_texts("AccountAliases", ""), vec!["other-name"]);
    assert_err(&h.err("CreateAccountAlias", &[("AccountAlias", "Bad--Alias")]), "ValidationError", 400);
    let e = h.err("DeleteAccountAlias", &[("AccountAlias", "my-corp")]);
    assert_err(&e, "NoSuchEntity", 404);
    h.ok("DeleteAccountAlias", &[("AccountAlias", "other-name")]);
    assert!(h.ok("ListAccountAliases", &[]).members("AccountAliases").is_empty());

    h.ok("CreateUser", &[("UserName", "a")]);
    h.ok("CreateUser", &[("UserName", "b")]);
    h.ok("CreateGroup", &[("GroupName", "g")]);
    h.ok("AttachUserPolicy", &[("UserName", "a"), ("PolicyArn", RO)]);
    let s = h.ok("GetAccountSummary", &[]);
    let entries: std::collections::HashMap<String, String> =
        s.get("SummaryMap").children.iter().map(|e| (e.text("key"), e.text("value"))).collect();
    assert_eq!(entries["Users"], "2");
    assert_eq!(entries["Groups"], "1");
    assert_eq!(entries["Roles"], "0");
    assert_eq!(entries["PolicyVersionsInUse"], "1");
    assert_eq!(entries["AccessKeysPerUserQuota"], "2");
    assert_eq!(entries["AccountAccessKeysPresent"], "1");
}

#[test]
fn alias_is_unique_across_accounts() {
    let h = H::new();
    h.iam.bootstrap_account("444455556666", "AKIAOTHERACCOUNT0001", "s").unwrap();
    h.ok("CreateAccountAlias", &[("AccountAlias", "taken")]);
    let other = h.ctx_for("AKIAOTHERACCOUNT0001");
    let e = h.call(&other, "CreateAccountAlias", &[("AccountAlias", "taken")]).unwrap_err();
    assert_err(&e, "EntityAlreadyExists", 409);
    // Entities of one account are invisible to the other.
    h.ok("CreateUser", &[("UserName", "mine")]);
    let e = h.call(&other, "GetUser", &[("UserName", "mine")]).unwrap_err();
    assert_err(&e, "NoSuchEntity", 404);
}

#[test]
fn unknown_operations_are_not_advertised() {
    let h = H::new();
    for op in ["AssumeRoleWithSAML", "GetHumanReadableSummary", "Nope"] {
        assert!(!h.svc.has_operation(op), "{op}");
    }
    assert!(rampart_iam::Iam::operations().len() >= 85, "{}", rampart_iam::Iam::operations().len());
    assert_eq!(h.svc.xml_namespace(), "https://iam.amazonaws.com/doc/2010-05-08/");
    assert_eq!(h.svc.event_source(), "iam.amazonaws.com");
}
