//! Request lists over AWS's limits are refused by their count, before authorization and before
//! any per-member work, with errors that do not repeat the list.

mod common;
use common::*;

fn numbered(prefix: &str, n: usize, value: impl Fn(usize) -> String) -> Vec<(String, String)> {
    (1..=n).map(|i| (format!("{prefix}.{i}"), value(i))).collect()
}

fn call_as(h: &H, key: &str, op: &str, params: &[(String, String)]) -> Result<Node, rampart_protocol::AwsError> {
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.call(&h.ctx_for(key), op, &p)
}

#[test]
fn forty_thousand_client_ids_hit_the_quota_before_authorization() {
    let h = H::new();
    let mallory = h.user_with_key("mallory");
    let mut params = numbered("ClientIDList.member", 40_000, |i| format!("client-{i}"));
    params.push(("Url".into(), "https://idp.example.com".into()));
    let e = call_as(&h, &mallory, "CreateOpenIDConnectProvider", &params).unwrap_err();
    assert_err(&e, "LimitExceeded", 409);
    assert_eq!(e.message, "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100");
    // 101 distinct IDs: over; repeats do not count.
    let mut params = numbered("ClientIDList.member", 101, |i| format!("client-{i}"));
    params.push(("Url".into(), "https://idp.example.com".into()));
    assert_err(&call_as(&h, ROOT_KEY, "CreateOpenIDConnectProvider", &params).unwrap_err(), "LimitExceeded", 409);
    let mut params = numbered("ClientIDList.member", 300, |i| format!("client-{}", i % 100));
    params.push(("Url".into(), "https://idp.example.com".into()));
    // Within the quota, a user without policies is refused by authorization as before …
    assert_err(&call_as(&h, &mallory, "CreateOpenIDConnectProvider", &params).unwrap_err(), "AccessDenied", 403);
    // … and the root creates the provider with the 100 distinct IDs, in order.
    let arn = call_as(&h, ROOT_KEY, "CreateOpenIDConnectProvider", &params).unwrap().text("OpenIDConnectProviderArn");
    let got = h.ok("GetOpenIDConnectProvider", &[("OpenIDConnectProviderArn", &arn)]);
    let ids: Vec<String> = got.members("ClientIDList").iter().map(|n| n.text.clone()).collect();
    assert_eq!(ids.len(), 100);
    assert_eq!(ids[0], "client-1");
    assert_eq!(ids[99], "client-0");
}

#[test]
fn forty_thousand_tags_are_one_bounded_validation_error() {
    let h = H::new();
    let mallory = h.user_with_key("mallory");
    let mut params: Vec<(String, String)> = Vec::new();
    for i in 1..=40_000 {
        // Invalid characters in every tag: still one error, not 40,000.
        params.push((format!("Tags.member.{i}.Key"), format!("bad*key{i}")));
        params.push((format!("Tags.member.{i}.Value"), "v".into()));
    }
    params.push(("UserName".into(), "victim".into()));
    let e = call_as(&h, &mallory, "CreateUser", &params).unwrap_err();
    assert_err(&e, "ValidationError", 400);
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"
    );
    h.ok("CreateUser", &[("UserName", "victim")]);
    let mut params = numbered("TagKeys.member", 40_000, |i| format!("key-{i}"));
    params.push(("UserName".into(), "victim".into()));
    let e = call_as(&h, &mallory, "UntagUser", &params).unwrap_err();
    assert_err(&e, "ValidationError", 400);
    assert!(e.message.len() < 300, "the error repeats the list: {} bytes", e.message.len());
    assert!(e.message.contains("Member must have length less than or equal to 50"), "{}", e.message);
    // A short list over the limit is named, not echoed, as AWS answers (recorded AWS responses,
    // localstack tests/aws/services/iam/test_iam_roles.snapshot.json, untag-role-too-many-keys).
    let mut params = numbered("TagKeys.member", 51, |i| format!("k{i}"));
    params.push(("UserName".into(), "victim".into()));
    let e = call_as(&h, ROOT_KEY, "UntagUser", &params).unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50"
    );
}

#[test]
fn forty_thousand_session_policy_arns_are_one_bounded_validation_error() {
    let h = H::new();
    let mallory = h.user_with_key("mallory");
    let mut params = numbered("PolicyArns.member", 40_000, |i| format!("arn:aws:iam::aws:policy/P{i}"))
        .into_iter()
        .map(|(k, v)| (format!("{k}.arn"), v))
        .collect::<Vec<_>>();
    params.push(("RoleArn".into(), format!("arn:aws:iam::{ACCT}:role/r")));
    params.push(("RoleSessionName".into(), "session".into()));
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let e = h.call_on(h.sts.as_ref(), &h.ctx_for(&mallory), "AssumeRole", &p).unwrap_err();
    assert_err(&e, "ValidationError", 400);
    assert_eq!(
        e.message,
        "1 validation error detected: Value '[...]' at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10"
    );
}

#[test]
fn forty_thousand_organizations_tags_hit_the_tag_limit_before_authorization() {
    use rampart_service::Input;
    use serde_json::json;
    let h = H::new();
    let mallory = h.user_with_key("mallory");
    let org = h.iam.organizations_service();
    let call = |key: &str, op: &str, body: serde_json::Value| -> Result<(), rampart_protocol::AwsError> {
        let ctx = h.ctx_for(key);
        let input = Input::Json(body);
        let mut decide = |checks: Vec<rampart_service::AuthzCheck>| {
            for c in checks {
                h.authz.check(&ctx, org.signing_name(), c)?;
            }
            Ok(())
        };
        org.call(&ctx, op, &input, &mut decide).map(|_| ())
    };
    call(ROOT_KEY, "CreateOrganization", json!({"FeatureSet": "ALL"})).unwrap();
    // Every tag a duplicate of the first: the count is checked before the (per-tag) duplicate check.
    let tags: Vec<serde_json::Value> = (0..40_000).map(|_| json!({"Key": "k", "Value": "v"})).collect();
    let e = call(&mallory, "CreateAccount", json!({"Email": "m@example.com", "AccountName": "m", "Tags": tags}))
        .unwrap_err();
    assert_err(&e, "ConstraintViolationException", 400);
    let e = call(&mallory, "CreateAccount", json!({"Email": "m@example.com", "AccountName": "m"})).unwrap_err();
    assert_err(&e, "AccessDeniedException", 400);
}
