//! Organizations through the Service contract: SCPs bind every principal of a member account,
//! its root user included (which the compat suite cannot reach: created accounts' roots have no keys).

mod common;
use common::*;
use rampart_protocol::AwsError;
use rampart_service::{AuthzCheck, Caller, Input, Output, RequestContext};
use serde_json::{json, Value};

fn org_call(h: &H, ctx: &RequestContext, op: &str, body: Value) -> Result<Value, AwsError> {
    let svc = h.iam.organizations_service();
    assert!(svc.has_operation(op), "{op} not advertised");
    let input = Input::Json(body);
    let mut decide = |checks: Vec<AuthzCheck>| {
        for c in checks {
            h.authz.check(ctx, svc.signing_name(), c)?;
        }
        Ok(())
    };
    match svc.call(ctx, op, &input, &mut decide)? {
        Output::Json(v) => Ok(v),
        text @ Output::JsonText(_) => Ok(text.json_value()),
        Output::Xml(_) => panic!("Organizations answers JSON"),
    }
}

fn as_root_of(h: &H, account: &str) -> RequestContext {
    let mut ctx = h.root();
    ctx.caller = Caller::root(account, "");
    ctx
}

#[test]
fn scps_bind_the_member_root_but_not_the_management_account() {
    let h = H::new();
    let mgmt = h.root();
    let org = org_call(&h, &mgmt, "CreateOrganization", json!({"FeatureSet": "ALL"})).unwrap();
    assert_eq!(org["Organization"]["MasterAccountId"], ACCT);
    let st = org_call(&h, &mgmt, "CreateAccount", json!({"Email": "m@example.com", "AccountName": "m"})).unwrap();
    let member = st["CreateAccountStatus"]["AccountId"].as_str().unwrap().to_string();
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:CreateUser","Resource":"*"}]}"#;
    let p = org_call(
        &h,
        &mgmt,
        "CreatePolicy",
        json!({"Content": deny, "Description": "", "Name": "no-users", "Type": "SERVICE_CONTROL_POLICY"}),
    )
    .unwrap();
    let pid = p["Policy"]["PolicySummary"]["Id"].as_str().unwrap().to_string();

    let member_root = as_root_of(&h, &member);
    h.call(&member_root, "CreateUser", &[("UserName", "before")]).unwrap();
    for target in [member.as_str(), ACCT] {
        org_call(&h, &mgmt, "AttachPolicy", json!({"PolicyId": pid, "TargetId": target})).unwrap();
    }
    let e = h.call(&member_root, "CreateUser", &[("UserName", "after")]).unwrap_err();
    assert_err(&e, "AccessDenied", 403);
    assert!(e.message.contains("with an explicit deny in a service control policy"), "{}", e.message);
    // Everything else stays allowed for the member root; the management root is never bound.
    h.call(&member_root, "CreateGroup", &[("GroupName", "g")]).unwrap();
    h.ok("CreateUser", &[("UserName", "mgmt-user")]);

    // The member root cannot manage the organization.
    let e = org_call(&h, &member_root, "ListAccounts", json!({})).unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        ("AccessDeniedException", "You don't have permissions to access this resource.")
    );

    // Changes apply on the next call.
    org_call(&h, &mgmt, "DetachPolicy", json!({"PolicyId": pid, "TargetId": member})).unwrap();
    h.call(&member_root, "CreateUser", &[("UserName", "after")]).unwrap();
}

#[test]
fn ou_depth_and_reason_field() {
    let h = H::new();
    let mgmt = h.root();
    org_call(&h, &mgmt, "CreateOrganization", json!({})).unwrap();
    let mut parent =
        org_call(&h, &mgmt, "ListRoots", json!({})).unwrap()["Roots"][0]["Id"].as_str().unwrap().to_string();
    for i in 0..5 {
        let ou = org_call(&h, &mgmt, "CreateOrganizationalUnit", json!({"ParentId": parent, "Name": format!("l{i}")}))
            .unwrap();
        parent = ou["OrganizationalUnit"]["Id"].as_str().unwrap().to_string();
    }
    let e = org_call(&h, &mgmt, "CreateOrganizationalUnit", json!({"ParentId": parent, "Name": "l5"})).unwrap_err();
    assert_eq!(e.code, "ConstraintViolationException");
    assert_eq!(e.fields, vec![("Reason", "OU_DEPTH_LIMIT_EXCEEDED".to_string())]);
    let (_, body) = e.render(rampart_protocol::Protocol::AwsJson1_1, "", "rid");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["Reason"], "OU_DEPTH_LIMIT_EXCEEDED");
    assert_eq!(v["__type"], "ConstraintViolationException");
}

/// Tag keys whose fourth byte falls inside a multi-byte character: no panic, ordinary keys.
#[test]
fn tag_keys_with_multibyte_characters_near_the_prefix() {
    let h = H::new();
    let mgmt = h.root();
    org_call(&h, &mgmt, "CreateOrganization", json!({"FeatureSet": "ALL"})).unwrap();
    let tags = json!({"ResourceId": ACCT, "Tags": [{"Key": "ab日c", "Value": "v"}]});
    org_call(&h, &mgmt, "TagResource", tags).unwrap();
    let listed = org_call(&h, &mgmt, "ListTagsForResource", json!({"ResourceId": ACCT})).unwrap();
    assert_eq!(listed["Tags"], json!([{"Key": "ab日c", "Value": "v"}]));
    let e = org_call(&h, &mgmt, "TagResource", json!({"ResourceId": ACCT, "Tags": [{"Key": "aWs:日", "Value": "v"}]}))
        .unwrap_err();
    assert_eq!(e.status, 400, "{e:?}");
}

/// A member account reading why it was denied (DecodeAuthorizationMessage) learns that a
/// service control policy denied, but not the organization's policy names, IDs or statement IDs.
#[test]
fn decoded_denials_do_not_reveal_the_organizations_policies() {
    let h = H::new();
    let mgmt = h.root();
    org_call(&h, &mgmt, "CreateOrganization", json!({"FeatureSet": "ALL"})).unwrap();
    let st = org_call(&h, &mgmt, "CreateAccount", json!({"Email": "m@example.com", "AccountName": "m"})).unwrap();
    let member = st["CreateAccountStatus"]["AccountId"].as_str().unwrap().to_string();
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Sid":"SecretSidOfTheOrg","Effect":"Deny","Action":"iam:CreateUser","Resource":"*"}]}"#;
    let p = org_call(
        &h,
        &mgmt,
        "CreatePolicy",
        json!({"Content": deny, "Description": "", "Name": "org-internal-guardrail", "Type": "SERVICE_CONTROL_POLICY"}),
    )
    .unwrap();
    let pid = p["Policy"]["PolicySummary"]["Id"].as_str().unwrap().to_string();
    org_call(&h, &mgmt, "AttachPolicy", json!({"PolicyId": pid, "TargetId": member})).unwrap();
    let member_root = as_root_of(&h, &member);
    let e = h.call(&member_root, "CreateUser", &[("UserName", "u")]).unwrap_err();
    assert_err(&e, "AccessDenied", 403);

    let r = h
        .call_on(
            h.sts.as_ref(),
            &member_root,
            "DecodeAuthorizationMessage",
            &[("EncodedMessage", &member_root.request_id)],
        )
        .unwrap();
    let decoded = r.text("DecodedMessage");
    let v: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(v["explicitDeny"], true, "{decoded}");
    assert_eq!(v["matchedStatements"]["items"][0]["effect"], "DENY", "{decoded}");
    assert_eq!(v["matchedStatements"]["items"][0]["policyType"], "service control policy", "{decoded}");
    assert_eq!(v["rampart"]["denyingPolicyType"], "service control policy", "{decoded}");
    for secret in ["org-internal-guardrail", "SecretSidOfTheOrg", pid.as_str()] {
        assert!(!decoded.contains(secret), "{secret} in {decoded}");
    }
}

/// The caller's own policies stay named in its explanations.
#[test]
fn decoded_denials_name_the_callers_own_policies() {
    let h = H::new();
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Sid":"OwnSid","Effect":"Deny","Action":"iam:CreateGroup","Resource":"*"}]}"#;
    let key = h.user_with_key("alice");
    h.ok("PutUserPolicy", &[("UserName", "alice"), ("PolicyName", "own-policy"), ("PolicyDocument", deny)]);
    let ctx = h.ctx_for(&key);
    assert_err(&h.call(&ctx, "CreateGroup", &[("GroupName", "g")]).unwrap_err(), "AccessDenied", 403);
    let r = h
        .call_on(h.sts.as_ref(), &h.root(), "DecodeAuthorizationMessage", &[("EncodedMessage", &ctx.request_id)])
        .unwrap();
    let decoded = r.text("DecodedMessage");
    assert!(decoded.contains("own-policy") && decoded.contains("OwnSid"), "{decoded}");
}
