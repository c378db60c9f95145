//! MFA devices, login profiles, the password policy and the credential report through the IAM
//! service: the actions and resources they are authorized on, and their AWS-shaped errors.

mod common;
use common::*;
use rampart_policy::ContextValue;
use rampart_service::{AuthzCheck, AuthzPlan};

fn single(h: &H, op: &str, params: &[(&str, &str)]) -> AuthzCheck {
    match h.plan(op, params) {
        AuthzPlan::Checks(c) if c.len() == 1 => c.into_iter().next().unwrap(),
        other => panic!("{op}: {other:?}"),
    }
}

#[test]
fn actions_and_resources() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "bob"), ("Path", "/eng/")]);
    let dev = h.ok(
        "CreateVirtualMFADevice",
        &[("VirtualMFADeviceName", "bobs"), ("Path", "/m/"), ("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v")],
    );
    let serial = dev.text("VirtualMFADevice/SerialNumber");
    assert_eq!(serial, format!("arn:aws:iam::{ACCT}:mfa/m/bobs"));
    let bob = format!("arn:aws:iam::{ACCT}:user/eng/bob");
    let codes = [("AuthenticationCode1", "123456"), ("AuthenticationCode2", "654321")];
    let user_serial = [("UserName", "bob"), ("SerialNumber", serial.as_str())];
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        ("CreateVirtualMFADevice", vec![("VirtualMFADeviceName", "x")], format!("arn:aws:iam::{ACCT}:mfa/x")),
        (
            "CreateVirtualMFADevice",
            vec![("VirtualMFADeviceName", "x"), ("Path", "/p/")],
            format!("arn:aws:iam::{ACCT}:mfa/p/x"),
        ),
        ("EnableMFADevice", [&user_serial[..], &codes[..]].concat(), bob.clone()),
        ("ResyncMFADevice", [&user_serial[..], &codes[..]].concat(), bob.clone()),
        ("DeactivateMFADevice", user_serial.to_vec(), bob.clone()),
        ("GetMFADevice", user_serial.to_vec(), bob.clone()),
        ("ListMFADevices", vec![("UserName", "bob")], bob.clone()),
        ("ListMFADevices", vec![], format!("arn:aws:iam::{ACCT}:root")),
        ("ListVirtualMFADevices", vec![("AssignmentStatus", "Any")], "*".into()),
        ("DeleteVirtualMFADevice", vec![("SerialNumber", serial.as_str())], serial.clone()),
        ("ListMFADeviceTags", vec![("SerialNumber", serial.as_str())], serial.clone()),
        (
            "TagMFADevice",
            vec![("SerialNumber", serial.as_str()), ("Tags.member.1.Key", "a"), ("Tags.member.1.Value", "b")],
            serial.clone(),
        ),
        ("UntagMFADevice", vec![("SerialNumber", serial.as_str()), ("TagKeys.member.1", "k")], serial.clone()),
        ("CreateLoginProfile", vec![("UserName", "bob"), ("Password", "x")], bob.clone()),
        ("GetLoginProfile", vec![("UserName", "bob")], bob.clone()),
        ("UpdateLoginProfile", vec![("UserName", "bob")], bob.clone()),
        ("DeleteLoginProfile", vec![("UserName", "bob")], bob.clone()),
        ("UpdateAccountPasswordPolicy", vec![], "*".into()),
        ("GetAccountPasswordPolicy", vec![], "*".into()),
        ("DeleteAccountPasswordPolicy", vec![], "*".into()),
        ("GenerateCredentialReport", vec![], "*".into()),
        ("GetCredentialReport", vec![], "*".into()),
    ];
    for (op, params, resource) in cases {
        let c = single(&h, op, &params);
        assert_eq!(c.action, format!("iam:{op}"), "{op}");
        assert_eq!(c.resource, resource, "{op}");
    }
    // The device's tags are resource tags; requested tags are request tags.
    let c = single(&h, "DeleteVirtualMFADevice", &[("SerialNumber", serial.as_str())]);
    assert!(c.context.contains(&("aws:ResourceTag/k".into(), ContextValue::String("v".into()))));
    let c = single(
        &h,
        "CreateVirtualMFADevice",
        &[("VirtualMFADeviceName", "y"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "red")],
    );
    assert!(c.context.contains(&("aws:RequestTag/team".into(), ContextValue::String("red".into()))));
    assert!(c.context.iter().any(|(k, _)| k == "aws:TagKeys"));
}

#[test]
fn errors_are_aws_shaped() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "carol")]);
    let serial = h.ok("CreateVirtualMFADevice", &[("VirtualMFADeviceName", "c")]).text("VirtualMFADevice/SerialNumber");
    // Codes that are not the device's: 403 InvalidAuthenticationCode, device stays unassigned.
    let e = h.err(
        "EnableMFADevice",
        &[
            ("UserName", "carol"),
            ("SerialNumber", serial.as_str()),
            ("AuthenticationCode1", "000000"),
            ("AuthenticationCode2", "000000"),
        ],
    );
    assert_err(&e, "InvalidAuthenticationCode", 403);
    assert_eq!(e.message, "Authentication code for device is not valid.");
    let listed = h.ok("ListVirtualMFADevices", &[("AssignmentStatus", "Unassigned")]);
    assert_eq!(listed.member_texts("VirtualMFADevices", "SerialNumber"), vec![serial.clone()]);
    // Seeds are never listed.
    assert!(!listed.members("VirtualMFADevices")[0].has("Base32StringSeed"));

    let e = h.err("GetAccountPasswordPolicy", &[]);
    assert_err(&e, "NoSuchEntity", 404);
    assert_eq!(e.message, format!("The Password Policy with domain name {ACCT} cannot be found."));
    let e = h.err("DeleteAccountPasswordPolicy", &[]);
    assert_err(&e, "NoSuchEntity", 404);
    assert_eq!(e.message, "The account policy with name PasswordPolicy cannot be found.");
    assert_err(&h.err("GetCredentialReport", &[]), "ReportNotPresent", 410);
    let e = h.err("CreateLoginProfile", &[("UserName", "carol"), ("Password", "short")]);
    assert_err(&e, "PasswordPolicyViolation", 400);
    assert_eq!(e.message, "Password should have a minimum length of 8");
    // Validation errors never echo a password.
    let long = "Z".repeat(129);
    let e = h.err("CreateLoginProfile", &[("UserName", "carol"), ("Password", long.as_str())]);
    assert_err(&e, "ValidationError", 400);
    assert!(!e.message.contains(&long), "{}", e.message);
    // ChangePassword is for IAM users; root gets InvalidUserType.
    let e = h.err("ChangePassword", &[("OldPassword", "a"), ("NewPassword", "b")]);
    assert_err(&e, "InvalidUserType", 400);
}

#[test]
fn report_lists_root_then_users() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "zed")]);
    h.ok("CreateUser", &[("UserName", "amy")]);
    h.ok("CreateLoginProfile", &[("UserName", "amy"), ("Password", "Lower-UPPER-1")]);
    assert_eq!(h.ok("GenerateCredentialReport", &[]).text("State"), "STARTED");
    assert_eq!(h.ok("GenerateCredentialReport", &[]).text("State"), "COMPLETE");
    let r = h.ok("GetCredentialReport", &[]);
    assert_eq!(r.text("ReportFormat"), "text/csv");
    let csv = String::from_utf8(base64_decode(&r.text("Content"))).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("user,arn,user_creation_time,password_enabled,"));
    assert_eq!(lines[0].split(',').count(), 22);
    assert!(lines[1].starts_with(&format!("<root_account>,arn:aws:iam::{ACCT}:root,")));
    assert!(lines[2].starts_with(&format!("amy,arn:aws:iam::{ACCT}:user/amy,")));
    let amy: Vec<&str> = lines[2].split(',').collect();
    assert_eq!((amy[3], amy[4], amy[6], amy[7]), ("true", "no_information", "N/A", "false"));
    assert!(lines[3].starts_with("zed,"));
    assert!(lines.iter().all(|l| l.split(',').count() == 22));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).expect("base64")
}

/// A looked-up credential (long-term or session) prints neither its secret nor its session token.
#[test]
fn credential_debug_hides_the_secret_and_token() {
    let h = H::new();
    // Twice: the second lookup answers from the cache.
    for _ in 0..2 {
        let c = h.creds.lookup(ROOT_KEY).unwrap().unwrap();
        assert_eq!(c.secret_access_key.expose(), ROOT_SECRET);
        let shown = format!("{c:?}");
        assert!(!shown.contains(ROOT_SECRET), "{shown}");
    }
    let r = h.call_on(h.sts.as_ref(), &h.root(), "GetSessionToken", &[]).unwrap();
    let (key, secret, token) =
        (r.text("Credentials/AccessKeyId"), r.text("Credentials/SecretAccessKey"), r.text("Credentials/SessionToken"));
    for _ in 0..2 {
        let c = h.creds.lookup(&key).unwrap().unwrap();
        assert_eq!(
            (c.secret_access_key.expose(), c.session_token.as_ref().map(|t| t.expose())),
            (secret.as_str(), Some(token.as_str()))
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains(&secret) && !shown.contains(&token), "{shown}");
    }
}
