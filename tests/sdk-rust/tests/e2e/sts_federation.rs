//! STS GetWebIdentityToken (outbound web identity federation) and AssumeRoot (root sessions in
//! member accounts), with the IAM and Organizations calls that enable them.

use aws_sdk_organizations::types::OrganizationFeatureSet;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};
use aws_sdk_sts::Client;
use rampart_sdk_rust_tests::{status, Server};

/// base64url (no padding) → bytes.
fn b64url(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test]
async fn web_identity_tokens_after_enabling_outbound_federation() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let sts = Client::new(&root);
    let iam = aws_sdk_iam::Client::new(&root);

    let err = sts.get_web_identity_token().audience("https://api.example.com").signing_algorithm("RS256").send().await;
    let err = err.unwrap_err();
    assert_eq!(status(&err), 403);
    assert!(err.as_service_error().unwrap().is_outbound_web_identity_federation_disabled_exception());

    let issuer = iam.enable_outbound_web_identity_federation().send().await.unwrap();
    let issuer = issuer.issuer_identifier().unwrap().to_string();
    assert!(issuer.starts_with(&format!("{}/_rampart/oidc/", srv.endpoint)), "{issuer}");
    let info = iam.get_outbound_web_identity_federation_info().send().await.unwrap();
    assert_eq!((info.issuer_identifier(), info.jwt_vending_enabled()), (Some(issuer.as_str()), true));

    let out = sts
        .get_web_identity_token()
        .audience("a")
        .audience("b")
        .signing_algorithm("ES384")
        .duration_seconds(600)
        .tags(Tag::builder().key("job").value("naïve").build().unwrap())
        .send()
        .await
        .unwrap();
    let token = out.web_identity_token().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = String::from_utf8(b64url(parts[0])).unwrap();
    assert!(header.contains(r#""alg":"ES384""#) && header.contains(r#""kid":"#), "{header}");
    assert_eq!(b64url(parts[2]).len(), 96, "ES384 signature: r || s");
    let claims = String::from_utf8(b64url(parts[1])).unwrap();
    assert!(claims.contains(&format!(r#""iss":"{issuer}""#)), "{claims}");
    assert!(claims.contains(r#""aud":["a","b"]"#), "{claims}");
    assert!(claims.contains(&format!(r#""sub":"arn:aws:iam::{}:root""#, srv.account_id)), "{claims}");
    assert!(claims.contains(r#""request_tags":{"job":"naïve"}"#), "{claims}");
    let exp = out.expiration().unwrap().secs();
    assert!(claims.contains(&format!(r#""exp":{exp}"#)), "{claims}");

    // Validation comes first: an unsupported algorithm.
    let err = sts.get_web_identity_token().audience("a").signing_algorithm("HS256").send().await.unwrap_err();
    assert_eq!((status(&err), err.code()), (400, Some("ValidationError")));
    srv.stop();
}

#[tokio::test]
async fn assume_root_into_a_member_account() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let iam = aws_sdk_iam::Client::new(&root);
    let admin = srv
        .make_user(&iam, &[r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#])
        .await;
    let admin_cfg = srv.user_config(&admin).await;
    let org = aws_sdk_organizations::Client::new(&admin_cfg);
    org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let member = org.create_account().email("m@example.com").account_name("m").send().await.unwrap();
    let member = member.create_account_status().unwrap().account_id().unwrap().to_string();
    org.enable_aws_service_access().service_principal("iam.amazonaws.com").send().await.unwrap();
    let admin_iam = aws_sdk_iam::Client::new(&admin_cfg);
    let features = admin_iam.enable_organizations_root_sessions().send().await.unwrap();
    assert_eq!(features.enabled_features().len(), 1);
    assert_eq!(
        admin_iam.list_organizations_features().send().await.unwrap().enabled_features(),
        features.enabled_features()
    );

    let audit =
        PolicyDescriptorType::builder().arn("arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials").build();
    let sts = Client::new(&admin_cfg);
    let out = sts.assume_root().target_principal(&member).task_policy_arn(audit.clone()).send().await.unwrap();
    let c = out.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    let session = srv.config(c.access_key_id(), c.secret_access_key(), Some(c.session_token())).await;
    let me = Client::new(&session).get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some(format!("arn:aws:iam::{member}:root").as_str()));
    let root_iam = aws_sdk_iam::Client::new(&session);
    assert!(root_iam.list_access_keys().send().await.unwrap().access_key_metadata().is_empty());
    let err = root_iam.list_users().send().await.unwrap_err();
    assert_eq!((status(&err), err.code()), (403, Some("AccessDenied")));

    // Root user credentials may not call AssumeRoot.
    let err = Client::new(&root).assume_root().target_principal(&member).task_policy_arn(audit).send().await;
    assert_eq!(status(&err.unwrap_err()), 403);
    srv.stop();
}
