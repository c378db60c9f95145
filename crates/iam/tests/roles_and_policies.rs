//! Roles, instance profiles, managed policies and versions, inline policies
//! (these parse documents with the policy engine).

mod common;
use common::*;

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

fn doc_with(action: &str) -> String {
    DOC.replace("s3:GetObject", action)
}

#[test]
fn roles() {
    let h = H::new();
    let r = h.ok(
        "CreateRole",
        &[
            ("RoleName", "App"),
            ("Path", "/svc/"),
            ("AssumeRolePolicyDocument", TRUST_EC2),
            ("Description", "app role"),
            ("MaxSessionDuration", "7200"),
            ("Tags.member.1.Key", "env"),
            ("Tags.member.1.Value", "dev"),
        ],
    );
    assert!(r.text("Role/RoleId").starts_with("AROA"));
    assert_eq!(r.text("Role/Arn"), format!("arn:aws:iam::{ACCT}:role/svc/App"));
    assert_eq!(url_decode(&r.text("Role/AssumeRolePolicyDocument")), TRUST_EC2);
    // CreateRole answers neither Description, MaxSessionDuration nor RoleLastUsed; GetRole does
    // (recorded AWS responses, localstack tests/aws/services/iam/test_iam_roles.snapshot.json).
    assert!(!r.has("Role/MaxSessionDuration") && !r.has("Role/Description") && !r.has("Role/RoleLastUsed"));
    let g = h.ok("GetRole", &[("RoleName", "app")]);
    assert_eq!(g.text("Role/MaxSessionDuration"), "7200");
    assert_eq!(g.text("Role/Description"), "app role");
    assert_eq!(g.member_texts("Role/Tags", "Key"), vec!["env"]);
    assert!(g.has("Role/RoleLastUsed"));
    assert_err(
        &h.err("CreateRole", &[("RoleName", "APP"), ("AssumeRolePolicyDocument", TRUST_EC2)]),
        "EntityAlreadyExists",
        409,
    );

    let e = h.err(
        "CreateRole",
        &[("RoleName", "x"), ("AssumeRolePolicyDocument", TRUST_EC2), ("MaxSessionDuration", "100")],
    );
    assert_err(&e, "ValidationError", 400);
    assert!(e.message.contains("Value '100' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600"));
    assert_err(&h.err("UpdateRole", &[("RoleName", "app"), ("MaxSessionDuration", "43201")]), "ValidationError", 400);
    // A trust policy must name a principal.
    let e = h.err("CreateRole", &[("RoleName", "x"), ("AssumeRolePolicyDocument", DOC)]);
    assert_err(&e, "MalformedPolicyDocument", 400);

    let u = h.ok("UpdateRole", &[("RoleName", "app"), ("Description", "new"), ("MaxSessionDuration", "43200")]);
    assert!(u.children.is_empty());
    let g = h.ok("GetRole", &[("RoleName", "app")]);
    assert_eq!(g.text("Role/Description"), "new");
    assert_eq!(g.text("Role/MaxSessionDuration"), "43200");
    let d = h.ok("UpdateRoleDescription", &[("RoleName", "app"), ("Description", "third")]);
    assert_eq!(d.text("Role/Description"), "third");
    let trust2 = TRUST_EC2.replace("ec2.amazonaws.com", "lambda.amazonaws.com");
    h.ok("UpdateAssumeRolePolicy", &[("RoleName", "app"), ("PolicyDocument", &trust2)]);
    assert_eq!(url_decode(&h.ok("GetRole", &[("RoleName", "app")]).text("Role/AssumeRolePolicyDocument")), trust2);
    assert_err(
        &h.err("UpdateAssumeRolePolicy", &[("RoleName", "app"), ("PolicyDocument", DOC)]),
        "MalformedPolicyDocument",
        400,
    );
    assert_err(
        &h.err("UpdateAssumeRolePolicy", &[("RoleName", "nope"), ("PolicyDocument", &trust2)]),
        "NoSuchEntity",
        404,
    );

    h.ok("TagRole", &[("RoleName", "app"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "x")]);
    assert_eq!(h.ok("ListRoleTags", &[("RoleName", "app")]).member_texts("Tags", "Key"), vec!["env", "team"]);
    h.ok("UntagRole", &[("RoleName", "app"), ("TagKeys.member.1", "env")]);
    assert_eq!(h.ok("ListRoleTags", &[("RoleName", "app")]).member_texts("Tags", "Key"), vec!["team"]);

    let b = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    h.ok("PutRolePermissionsBoundary", &[("RoleName", "app"), ("PermissionsBoundary", b)]);
    assert_eq!(h.ok("GetRole", &[("RoleName", "app")]).text("Role/PermissionsBoundary/PermissionsBoundaryArn"), b);
    h.ok("DeleteRolePermissionsBoundary", &[("RoleName", "app")]);
    assert!(!h.ok("GetRole", &[("RoleName", "app")]).has("Role/PermissionsBoundary"));

    let l = h.ok("ListRoles", &[("PathPrefix", "/svc/")]);
    assert_eq!(l.member_texts("Roles", "RoleName"), vec!["App"]);
    assert!(!l.members("Roles")[0].has("Tags"), "ListRoles omits tags as AWS does");

    h.ok("PutRolePolicy", &[("RoleName", "app"), ("PolicyName", "inl"), ("PolicyDocument", DOC)]);
    let e = h.err("DeleteRole", &[("RoleName", "app")]);
    assert_err(&e, "DeleteConflict", 409);
    assert_eq!(e.message, "Cannot delete entity, must delete policies first.");
    h.ok("DeleteRolePolicy", &[("RoleName", "app"), ("PolicyName", "inl")]);
    h.ok("DeleteRole", &[("RoleName", "app")]);
    let e = h.err("GetRole", &[("RoleName", "app")]);
    assert_eq!(e.message, "The role with name app cannot be found.");
}

#[test]
fn instance_profiles() {
    let h = H::new();
    h.ok("CreateRole", &[("RoleName", "r1"), ("AssumeRolePolicyDocument", TRUST_EC2)]);
    h.ok("CreateRole", &[("RoleName", "r2"), ("AssumeRolePolicyDocument", TRUST_EC2)]);
    let p = h.ok("CreateInstanceProfile", &[("InstanceProfileName", "web"), ("Path", "/a/")]);
    assert!(p.text("InstanceProfile/InstanceProfileId").starts_with("AIPA"));
    assert_eq!(p.text("InstanceProfile/Arn"), format!("arn:aws:iam::{ACCT}:instance-profile/a/web"));
    assert!(p.members("InstanceProfile/Roles").is_empty());
    assert_err(&h.err("CreateInstanceProfile", &[("InstanceProfileName", "WEB")]), "EntityAlreadyExists", 409);
    h.ok("AddRoleToInstanceProfile", &[("InstanceProfileName", "web"), ("RoleName", "r1")]);
    let e = h.err("AddRoleToInstanceProfile", &[("InstanceProfileName", "web"), ("RoleName", "r2")]);
    assert_err(&e, "LimitExceeded", 409);
    assert_eq!(e.message, "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1");
    let g = h.ok("GetInstanceProfile", &[("InstanceProfileName", "web")]);
    assert_eq!(g.member_texts("InstanceProfile/Roles", "RoleName"), vec!["r1"]);
    let l = h.ok("ListInstanceProfilesForRole", &[("RoleName", "r1")]);
    assert_eq!(l.member_texts("InstanceProfiles", "InstanceProfileName"), vec!["web"]);
    assert!(h.ok("ListInstanceProfilesForRole", &[("RoleName", "r2")]).members("InstanceProfiles").is_empty());
    assert_eq!(h.ok("ListInstanceProfiles", &[]).member_texts("InstanceProfiles", "InstanceProfileName"), vec!["web"]);
    let e = h.err("DeleteRole", &[("RoleName", "r1")]);
    assert_eq!(e.message, "Cannot delete entity, must remove roles from instance profile first.");
    let e = h.err("DeleteInstanceProfile", &[("InstanceProfileName", "web")]);
    assert_err(&e, "DeleteConflict", 409);
    assert_err(
        &h.err("RemoveRoleFromInstanceProfile", &[("InstanceProfileName", "web"), ("RoleName", "r2")]),
        "NoSuchEntity",
        404,
    );
    h.ok("RemoveRoleFromInstanceProfile", &[("InstanceProfileName", "web"), ("RoleName", "r1")]);
    h.ok(
        "TagInstanceProfile",
        &[("InstanceProfileName", "web"), ("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v")],
    );
    assert_eq!(
        h.ok("ListInstanceProfileTags", &[("InstanceProfileName", "web")]).member_texts("Tags", "Key"),
        vec!["k"]
    );
    h.ok("UntagInstanceProfile", &[("InstanceProfileName", "web"), ("TagKeys.member.1", "k")]);
    h.ok("DeleteInstanceProfile", &[("InstanceProfileName", "web")]);
    let e = h.err("GetInstanceProfile", &[("InstanceProfileName", "web")]);
    assert_eq!(e.message, "Instance Profile web cannot be found.");
    h.ok("DeleteRole", &[("RoleName", "r1")]);
}

#[test]
fn managed_policies_and_versions() {
    let h = H::new();
    let p = h.ok(
        "CreatePolicy",
        &[("PolicyName", "Reader"), ("Path", "/team/"), ("PolicyDocument", DOC), ("Description", "reads")],
    );
    let arn = p.text("Policy/Arn");
    assert_eq!(arn, format!("arn:aws:iam::{ACCT}:policy/team/Reader"));
    assert!(p.text("Policy/PolicyId").starts_with("ANPA"));
    assert_eq!(p.text("Policy/DefaultVersionId"), "v1");
    assert_eq!(p.text("Policy/AttachmentCount"), "0");
    let e = h.err("CreatePolicy", &[("PolicyName", "reader"), ("PolicyDocument", DOC)]);
    assert_err(&e, "EntityAlreadyExists", 409);
    assert_eq!(e.message, "A policy called reader already exists. Duplicate names are not allowed.");
    let with_principal =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    let e = h.err("CreatePolicy", &[("PolicyName", "bad"), ("PolicyDocument", with_principal)]);
    assert_err(&e, "MalformedPolicyDocument", 400);
    assert_eq!(e.message, "Policy document should not specify a principal.");
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
        (0..400).map(|i| format!("\"s3:Action{i:04}\"")).collect::<Vec<_>>().join(",")
    );
    assert_err(&h.err("CreatePolicy", &[("PolicyName", "big"), ("PolicyDocument", &big)]), "LimitExceeded", 409);

    let g = h.ok("GetPolicy", &[("PolicyArn", &arn)]);
    assert_eq!(g.text("Policy/Description"), "reads");
    for i in 2..=5 {
        let v =
            h.ok("CreatePolicyVersion", &[("PolicyArn", &arn), ("PolicyDocument", &doc_with(&format!("s3:Get{i}")))]);
        assert_eq!(v.text("PolicyVersion/VersionId"), format!("v{i}"));
        assert_eq!(v.text("PolicyVersion/IsDefaultVersion"), "false");
    }
    let e = h.err("CreatePolicyVersion", &[("PolicyArn", &arn), ("PolicyDocument", DOC)]);
    assert_err(&e, "LimitExceeded", 409);
    assert!(e.message.starts_with("A managed policy can have up to 5 versions."));
    let l = h.ok("ListPolicyVersions", &[("PolicyArn", &arn)]);
    assert_eq!(l.member_texts("Versions", "VersionId"), vec!["v5", "v4", "v3", "v2", "v1"]);
    h.ok("SetDefaultPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v3")]);
    assert_eq!(h.ok("GetPolicy", &[("PolicyArn", &arn)]).text("Policy/DefaultVersionId"), "v3");
    let e = h.err("DeletePolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v3")]);
    assert_err(&e, "DeleteConflict", 409);
    assert_eq!(e.message, "Cannot delete the default version of a policy.");
    h.ok("DeletePolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v1")]);
    let v = h.ok("CreatePolicyVersion", &[("PolicyArn", &arn), ("PolicyDocument", DOC), ("SetAsDefault", "true")]);
    assert_eq!(v.text("PolicyVersion/VersionId"), "v6", "version numbers are not reused");
    assert_eq!(v.text("PolicyVersion/IsDefaultVersion"), "true");
    let gv = h.ok("GetPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v6")]);
    assert_eq!(url_decode(&gv.text("PolicyVersion/Document")), DOC);
    assert_err(&h.err("GetPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v1")]), "NoSuchEntity", 404);
    assert_err(&h.err("SetDefaultPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v1")]), "NoSuchEntity", 404);
    assert_err(&h.err("GetPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "x1")]), "ValidationError", 400);

    h.ok("TagPolicy", &[("PolicyArn", &arn), ("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v")]);
    assert_eq!(h.ok("ListPolicyTags", &[("PolicyArn", &arn)]).member_texts("Tags", "Key"), vec!["k"]);
    h.ok("UntagPolicy", &[("PolicyArn", &arn), ("TagKeys.member.1", "k")]);

    h.ok("CreateUser", &[("UserName", "u")]);
    h.ok("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", &arn)]);
    let l = h.ok("ListPolicies", &[("Scope", "Local")]);
    assert_eq!(l.member_texts("Policies", "AttachmentCount"), vec!["1"]);
    assert_eq!(
        h.ok("ListAttachedUserPolicies", &[("UserName", "u"), ("PathPrefix", "/team/")])
            .members("AttachedPolicies")
            .len(),
        1
    );
    assert!(h
        .ok("ListAttachedUserPolicies", &[("UserName", "u"), ("PathPrefix", "/other/")])
        .members("AttachedPolicies")
        .is_empty());
    let e = h.err("DeletePolicy", &[("PolicyArn", &arn)]);
    assert_eq!(e.message, "Cannot delete a policy attached to entities.");
    h.ok("DetachUserPolicy", &[("UserName", "u"), ("PolicyArn", &arn)]);
    let e = h.err("DeletePolicy", &[("PolicyArn", &arn)]);
    assert_err(&e, "DeleteConflict", 409);
    for v in ["v2", "v4", "v5"] {
        h.ok("DeletePolicyVersion", &[("PolicyArn", &arn), ("VersionId", v)]);
    }
    h.ok("SetDefaultPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v6")]);
    h.ok("DeletePolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v3")]);
    h.ok("DeletePolicy", &[("PolicyArn", &arn)]);
    assert_err(&h.err("GetPolicy", &[("PolicyArn", &arn)]), "NoSuchEntity", 404);
}

#[test]
fn inline_policies() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "u")]);
    h.ok("CreateGroup", &[("GroupName", "g")]);
    h.ok("CreateRole", &[("RoleName", "r"), ("AssumeRolePolicyDocument", TRUST_EC2)]);
    for (kind, name) in [("User", "u"), ("Group", "g"), ("Role", "r")] {
        let key = format!("{kind}Name");
        h.ok(&format!("Put{kind}Policy"), &[(&key, name), ("PolicyName", "b"), ("PolicyDocument", DOC)]);
        h.ok(&format!("Put{kind}Policy"), &[(&key, name), ("PolicyName", "a"), ("PolicyDocument", DOC)]);
        let g = h.ok(&format!("Get{kind}Policy"), &[(&key, name), ("PolicyName", "a")]);
        assert_eq!(g.text(&key), name);
        assert_eq!(g.text("PolicyName"), "a");
        assert_eq!(url_decode(&g.text("PolicyDocument")), DOC);
        let l = h.ok(&format!("List{kind}Policies"), &[(&key, name)]);
        assert_eq!(l.member_texts("PolicyNames", ""), vec!["a", "b"]);
        let l = h.ok(&format!("List{kind}Policies"), &[(&key, name), ("MaxItems", "1")]);
        assert_eq!(l.text("IsTruncated"), "true");
        h.ok(&format!("Delete{kind}Policy"), &[(&key, name), ("PolicyName", "a")]);
        let e = h.err(&format!("Get{kind}Policy"), &[(&key, name), ("PolicyName", "a")]);
        assert_err(&e, "NoSuchEntity", 404);
        assert_eq!(e.message, format!("The {} policy with name a cannot be found.", kind.to_lowercase()));
        assert_err(&h.err(&format!("Delete{kind}Policy"), &[(&key, name), ("PolicyName", "a")]), "NoSuchEntity", 404);
        let e =
            h.err(&format!("Put{kind}Policy"), &[(&key, name), ("PolicyName", "p"), ("PolicyDocument", "{not json")]);
        assert_err(&e, "MalformedPolicyDocument", 400);
    }
    let e = h.err("DeleteUser", &[("UserName", "u")]);
    assert_eq!(e.message, "Cannot delete entity, must delete policies first.");
    // Aggregate inline size per user: 2048 non-whitespace characters.
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
        (0..150).map(|i| format!("\"s3:Action{i:04}\"")).collect::<Vec<_>>().join(",")
    );
    let e = h.err("PutUserPolicy", &[("UserName", "u"), ("PolicyName", "big"), ("PolicyDocument", &big)]);
    assert_err(&e, "LimitExceeded", 409);
    assert_eq!(e.message, "Maximum policy size of 2048 bytes exceeded for user u");
    h.ok("PutRolePolicy", &[("RoleName", "r"), ("PolicyName", "big"), ("PolicyDocument", &big)]);
    assert_err(
        &h.err("PutUserPolicy", &[("UserName", "nobody"), ("PolicyName", "p"), ("PolicyDocument", DOC)]),
        "NoSuchEntity",
        404,
    );
}
