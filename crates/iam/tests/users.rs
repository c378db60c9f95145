//! Users, tags and boundaries through the Service contract (as root: no policy evaluation needed).

mod common;
use common::*;

#[test]
fn create_get_list_delete() {
    let h = H::new();
    let u = h.ok("CreateUser", &[("UserName", "Alice"), ("Path", "/eng/")]);
    assert_eq!(u.text("User/UserName"), "Alice");
    assert_eq!(u.text("User/Path"), "/eng/");
    assert_eq!(u.text("User/Arn"), format!("arn:aws:iam::{ACCT}:user/eng/Alice"));
    let id = u.text("User/UserId");
    assert!(id.starts_with("AIDA") && id.len() == 21, "{id}");
    let created = u.text("User/CreateDate");
    assert!(created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T', "{created}");

    // Names are case-insensitive.
    let g = h.ok("GetUser", &[("UserName", "alice")]);
    assert_eq!(g.text("User/UserName"), "Alice");
    assert_eq!(g.text("User/UserId"), id);
    let e = h.err("CreateUser", &[("UserName", "ALICE")]);
    assert_err(&e, "EntityAlreadyExists", 409);
    assert_eq!(e.message, "User with name ALICE already exists.");

    h.ok("CreateUser", &[("UserName", "bob")]);
    let l = h.ok("ListUsers", &[]);
    assert_eq!(l.member_texts("Users", "UserName"), vec!["Alice", "bob"]);
    assert_eq!(l.text("IsTruncated"), "false");
    assert!(!l.has("Marker"));
    let l = h.ok("ListUsers", &[("PathPrefix", "/eng")]);
    assert_eq!(l.member_texts("Users", "UserName"), vec!["Alice"]);

    h.ok("DeleteUser", &[("UserName", "ALICE")]);
    let e = h.err("GetUser", &[("UserName", "Alice")]);
    assert_err(&e, "NoSuchEntity", 404);
    assert_eq!(e.message, "The user with name Alice cannot be found.");
    assert_err(&h.err("DeleteUser", &[("UserName", "Alice")]), "NoSuchEntity", 404);
}

#[test]
fn pagination() {
    let h = H::new();
    for i in 0..5 {
        h.ok("CreateUser", &[("UserName", &format!("u{i}"))]);
    }
    let p1 = h.ok("ListUsers", &[("MaxItems", "2")]);
    assert_eq!(p1.member_texts("Users", "UserName"), vec!["u0", "u1"]);
    assert_eq!(p1.text("IsTruncated"), "true");
    let m = p1.text("Marker");
    let p2 = h.ok("ListUsers", &[("MaxItems", "2"), ("Marker", &m)]);
    assert_eq!(p2.member_texts("Users", "UserName"), vec!["u2", "u3"]);
    let p3 = h.ok("ListUsers", &[("MaxItems", "2"), ("Marker", &p2.text("Marker"))]);
    assert_eq!(p3.member_texts("Users", "UserName"), vec!["u4"]);
    assert_eq!(p3.text("IsTruncated"), "false");
}

#[test]
fn validation_errors() {
    let h = H::new();
    let e = h.err("CreateUser", &[("UserName", "bad name!")]);
    assert_err(&e, "ValidationError", 400);
    assert_eq!(
        e.message,
        "1 validation error detected: Value 'bad name!' at 'userName' failed to satisfy constraint: Member must \
         satisfy regular expression pattern: [\\w+=,.@-]+"
    );
    let e = h.err("CreateUser", &[]);
    assert!(e.message.contains("Value null at 'userName' failed to satisfy constraint: Member must not be null"));
    let long = "x".repeat(65);
    assert!(h.err("CreateUser", &[("UserName", &long)]).message.contains("less than or equal to 64"));
    assert_err(&h.err("CreateUser", &[("UserName", "a"), ("Path", "noslash")]), "ValidationError", 400);
    assert_err(&h.err("ListUsers", &[("MaxItems", "0")]), "ValidationError", 400);
    assert_err(&h.err("ListUsers", &[("MaxItems", "1001")]), "ValidationError", 400);
    let e = h.err("CreateUser", &[("UserName", "t"), ("Tags.member.1.Key", "aws:x"), ("Tags.member.1.Value", "v")]);
    assert_err(&e, "InvalidInput", 400);
    let e = h.err(
        "CreateUser",
        &[
            ("UserName", "t"),
            ("Tags.member.1.Key", "Team"),
            ("Tags.member.1.Value", "a"),
            ("Tags.member.2.Key", "team"),
            ("Tags.member.2.Value", "b"),
        ],
    );
    assert_err(&e, "InvalidInput", 400);
    assert!(e.message.contains("Duplicate tag keys"));
}

#[test]
fn get_user_without_name() {
    let h = H::new();
    let r = h.ok("GetUser", &[]);
    assert_eq!(r.text("User/UserId"), ACCT);
    assert_eq!(r.text("User/Arn"), format!("arn:aws:iam::{ACCT}:root"));
    assert!(!r.has("User/UserName"));
}

#[test]
fn update_user_renames_everywhere() {
    let h = H::new();
    let key = h.user_with_key("old");
    h.ok("CreateGroup", &[("GroupName", "devs")]);
    h.ok("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "old")]);
    h.ok("AttachUserPolicy", &[("UserName", "old"), ("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess")]);
    h.ok("UpdateUser", &[("UserName", "old"), ("NewUserName", "new"), ("NewPath", "/p/")]);
    assert_err(&h.err("GetUser", &[("UserName", "old")]), "NoSuchEntity", 404);
    let u = h.ok("GetUser", &[("UserName", "new")]);
    assert_eq!(u.text("User/Arn"), format!("arn:aws:iam::{ACCT}:user/p/new"));
    let g = h.ok("GetGroup", &[("GroupName", "devs")]);
    assert_eq!(g.member_texts("Users", "UserName"), vec!["new"]);
    let k = h.ok("ListAccessKeys", &[("UserName", "new")]);
    assert_eq!(k.member_texts("AccessKeyMetadata", "UserName"), vec!["new"]);
    let e = h.ok("ListEntitiesForPolicy", &[("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess")]);
    assert_eq!(e.member_texts("PolicyUsers", "UserName"), vec!["new"]);
    // The key now authenticates as the renamed user.
    assert_eq!(h.ctx_for(&key).caller.arn, format!("arn:aws:iam::{ACCT}:user/p/new"));
    h.ok("CreateUser", &[("UserName", "other")]);
    assert_err(&h.err("UpdateUser", &[("UserName", "new"), ("NewUserName", "OTHER")]), "EntityAlreadyExists", 409);
}

#[test]
fn delete_conflicts() {
    let h = H::new();
    h.user_with_key("k");
    let e = h.err("DeleteUser", &[("UserName", "k")]);
    assert_err(&e, "DeleteConflict", 409);
    assert_eq!(e.message, "Cannot delete entity, must delete access keys first.");

    h.ok("CreateUser", &[("UserName", "g")]);
    h.ok("CreateGroup", &[("GroupName", "grp")]);
    h.ok("AddUserToGroup", &[("GroupName", "grp"), ("UserName", "g")]);
    assert_err(&h.err("DeleteUser", &[("UserName", "g")]), "DeleteConflict", 409);
    h.ok("RemoveUserFromGroup", &[("GroupName", "grp"), ("UserName", "g")]);
    h.ok("DeleteUser", &[("UserName", "g")]);

    h.ok("CreateUser", &[("UserName", "p")]);
    h.ok("AttachUserPolicy", &[("UserName", "p"), ("PolicyArn", "arn:aws:iam::aws:policy/IAMReadOnlyAccess")]);
    let e = h.err("DeleteUser", &[("UserName", "p")]);
    assert_eq!(e.message, "Cannot delete entity, must detach all policies first.");
    h.ok("DetachUserPolicy", &[("UserName", "p"), ("PolicyArn", "arn:aws:iam::aws:policy/IAMReadOnlyAccess")]);
    h.ok("DeleteUser", &[("UserName", "p")]);
}

#[test]
fn tags() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "t"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "red")]);
    let u = h.ok("GetUser", &[("UserName", "t")]);
    assert_eq!(u.member_texts("User/Tags", "Key"), vec!["team"]);
    h.ok(
        "TagUser",
        &[
            ("UserName", "t"),
            ("Tags.member.1.Key", "Team"),
            ("Tags.member.1.Value", "blue"),
            ("Tags.member.2.Key", "env"),
            ("Tags.member.2.Value", ""),
        ],
    );
    let l = h.ok("ListUserTags", &[("UserName", "t")]);
    assert_eq!(l.member_texts("Tags", "Key"), vec!["team", "env"]);
    assert_eq!(l.member_texts("Tags", "Value"), vec!["blue", ""]);
    h.ok("UntagUser", &[("UserName", "t"), ("TagKeys.member.1", "TEAM")]);
    assert_eq!(h.ok("ListUserTags", &[("UserName", "t")]).member_texts("Tags", "Key"), vec!["env"]);
    // 50 tags at most.
    let mut params: Vec<(String, String)> = vec![("UserName".into(), "t".into())];
    for i in 1..=50 {
        params.push((format!("Tags.member.{i}.Key"), format!("k{i}")));
        params.push((format!("Tags.member.{i}.Value"), "v".into()));
    }
    let refs: Vec<(&str, &str)> = params.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_err(&h.err("TagUser", &refs), "LimitExceeded", 409);
    assert_err(&h.err("ListUserTags", &[("UserName", "nobody")]), "NoSuchEntity", 404);
}

#[test]
fn permissions_boundary() {
    let h = H::new();
    let arn = "arn:aws:iam::aws:policy/PowerUserAccess";
    let u = h.ok("CreateUser", &[("UserName", "b"), ("PermissionsBoundary", arn)]);
    assert_eq!(u.text("User/PermissionsBoundary/PermissionsBoundaryArn"), arn);
    assert_eq!(u.text("User/PermissionsBoundary/PermissionsBoundaryType"), "Policy");
    let p = h.ok("GetPolicy", &[("PolicyArn", arn)]);
    assert_eq!(p.text("Policy/PermissionsBoundaryUsageCount"), "1");
    let e = h.ok("ListEntitiesForPolicy", &[("PolicyArn", arn), ("PolicyUsageFilter", "PermissionsBoundary")]);
    assert_eq!(e.member_texts("PolicyUsers", "UserName"), vec!["b"]);
    h.ok("DeleteUserPermissionsBoundary", &[("UserName", "b")]);
    assert!(!h.ok("GetUser", &[("UserName", "b")]).has("User/PermissionsBoundary"));
    assert_eq!(h.ok("GetPolicy", &[("PolicyArn", arn)]).text("Policy/PermissionsBoundaryUsageCount"), "0");
    h.ok("PutUserPermissionsBoundary", &[("UserName", "b"), ("PermissionsBoundary", arn)]);
    assert!(h.ok("GetUser", &[("UserName", "b")]).has("User/PermissionsBoundary"));
    let missing = format!("arn:aws:iam::{ACCT}:policy/nope");
    assert_err(
        &h.err("PutUserPermissionsBoundary", &[("UserName", "b"), ("PermissionsBoundary", &missing)]),
        "NoSuchEntity",
        404,
    );
    assert_err(
        &h.err("CreateUser", &[("UserName", "c"), ("PermissionsBoundary", "arn:aws:s3:::bucket/thing")]),
        "InvalidInput",
        400,
    );
}

/// A tag key whose first four bytes end inside a multi-byte character is an ordinary key: the
/// `aws:` prefix check compared a byte slice of it and panicked (a 500 with no audit record).
#[test]
fn tag_keys_with_multibyte_characters_near_the_prefix() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "t"), ("Tags.member.1.Key", "ab日c"), ("Tags.member.1.Value", "v")]);
    h.ok("TagUser", &[("UserName", "t"), ("Tags.member.1.Key", "aws日"), ("Tags.member.1.Value", "v")]);
    let r = h.ok("ListUserTags", &[("UserName", "t")]);
    assert_eq!(r.member_texts("Tags", "Key"), ["ab日c", "aws日"]);
    let e = h.err("TagUser", &[("UserName", "t"), ("Tags.member.1.Key", "AWS:日"), ("Tags.member.1.Value", "v")]);
    assert_err(&e, "InvalidInput", 400);
}
