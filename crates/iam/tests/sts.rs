//! STS through the Service contract: cross-account AssumeRole (both sides must allow), session
//! credentials as the pipeline sees them (exact expiry, death with the role), and session policies.

mod common;

use common::*;
use rampart_service::CallerKind;

const B: &str = "444455556666";
const B_ROOT_KEY: &str = "AKIABROOTBROOTB00001";

fn trust(principal: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

/// A role in account B trusting `principal`.
fn role_in_b(h: &H, name: &str, principal: &str) -> String {
    let b_root = h.ctx_for(B_ROOT_KEY);
    h.call(&b_root, "CreateRole", &[("RoleName", name), ("AssumeRolePolicyDocument", &trust(principal))])
        .unwrap()
        .text("Role/Arn")
}

fn h2() -> H {
    let h = H::new();
    h.iam.bootstrap_account(B, B_ROOT_KEY, ROOT_SECRET).unwrap();
    h
}

fn assume(h: &H, key: &str, role: &str) -> Result<Node, rampart_protocol::AwsError> {
    h.call_on(h.sts.as_ref(), &h.ctx_for(key), "AssumeRole", &[("RoleArn", role), ("RoleSessionName", "x-acct")])
}

#[test]
fn cross_account_needs_both_sides() {
    let h = h2();
    let key = h.user_with_key("alice");
    let alice = format!("arn:aws:iam::{ACCT}:user/alice");
    // B trusts account A: A's identity policies must allow too.
    let role = role_in_b(&h, "Shared", &format!("arn:aws:iam::{ACCT}:root"));
    let e = assume(&h, &key, &role).unwrap_err();
    assert_err(&e, "AccessDenied", 403);
    assert!(e.message.ends_with("because no identity-based policy allows the sts:AssumeRole action"), "{}", e.message);
    let allow_assume = allow(&["sts:AssumeRole"]);
    h.ok("PutUserPolicy", &[("UserName", "alice"), ("PolicyName", "p"), ("PolicyDocument", &allow_assume)]);
    let r = assume(&h, &key, &role).unwrap();
    assert_eq!(r.text("AssumedRoleUser/Arn"), format!("arn:aws:sts::{B}:assumed-role/Shared/x-acct"));
    // The session belongs to account B.
    let session_key = r.text("Credentials/AccessKeyId");
    let cred = h.creds.lookup(&session_key).unwrap().unwrap();
    assert_eq!(cred.caller.account_id, B);
    assert!(matches!(cred.caller.kind, CallerKind::AssumedRole { ref role_name, .. } if role_name == "Shared"));
    // Even naming alice herself, a cross-account trust still needs her own permission: here she
    // has it; a user without it is denied.
    let role2 = role_in_b(&h, "Named", &alice);
    assume(&h, &key, &role2).unwrap();
    let bob_key = h.user_with_key("bob");
    let role3 = role_in_b(&h, "NamedBob", &format!("arn:aws:iam::{ACCT}:user/bob"));
    assert_err(&assume(&h, &bob_key, &role3).unwrap_err(), "AccessDenied", 403);
    // Identity permission without the trust side: denied by the resource (trust) policy.
    let role4 = role_in_b(&h, "Closed", &format!("arn:aws:iam::{B}:root"));
    let e = assume(&h, &key, &role4).unwrap_err();
    assert!(e.message.ends_with("because no resource-based policy allows the sts:AssumeRole action"), "{}", e.message);
}

#[test]
fn session_credentials_expire_exactly_and_die_with_the_role() {
    let h = H::new();
    let key = h.user_with_key("carol");
    let carol = format!("arn:aws:iam::{ACCT}:user/carol");
    h.ok("CreateRole", &[("RoleName", "R"), ("AssumeRolePolicyDocument", &trust(&carol))]);
    let ctx = h.ctx_for(&key);
    let r = h
        .call_on(
            h.sts.as_ref(),
            &ctx,
            "AssumeRole",
            &[
                ("RoleArn", &format!("arn:aws:iam::{ACCT}:role/R")),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "900"),
            ],
        )
        .unwrap();
    let id = r.text("Credentials/AccessKeyId");
    let cred = h.creds.lookup(&id).unwrap().unwrap();
    // The pipeline refuses a credential once `expires_at <= now`: exactly request time + 900 s.
    let exp = cred.expires_at.unwrap();
    assert_eq!(exp.unix_timestamp(), ctx.time.unix_timestamp() + 900);
    assert_eq!(r.text("Credentials/Expiration"), rampart_iam_iso(exp.unix_timestamp()));
    assert_eq!(cred.session_token.as_ref().map(|t| t.expose()), Some(r.text("Credentials/SessionToken").as_str()));
    h.ok("DeleteRole", &[("RoleName", "R")]);
    assert!(h.creds.lookup(&id).unwrap().is_none());
}

fn rampart_iam_iso(t: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(t).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}
