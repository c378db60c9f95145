//! STS (awsQuery): GetCallerIdentity, AssumeRole and calls signed with the session's credentials.

use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_sdk_sts::types::Tag;
use aws_sdk_sts::Client;
use rampart_sdk_rust_tests::{allow, code_message, status, Server};

#[tokio::test]
async fn caller_identity_of_root_and_of_a_user() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let me = Client::new(&root).get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some(srv.account_id.as_str()));
    assert_eq!(me.arn(), Some(format!("arn:aws:iam::{}:root", srv.account_id).as_str()));
    assert_eq!(me.user_id(), Some(srv.account_id.as_str()));

    // GetCallerIdentity needs no permission: a user without policies may call it.
    let user = srv.make_user(&aws_sdk_iam::Client::new(&root), &[]).await;
    let me = Client::new(&srv.user_config(&user).await).get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some(user.arn.as_str()));
    assert_eq!(me.account(), Some(srv.account_id.as_str()));
    assert!(me.user_id().unwrap().starts_with("AIDA"));
    srv.stop();
}

#[tokio::test]
async fn assume_role_then_call_as_the_session() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let iam = aws_sdk_iam::Client::new(&root);
    let acct = &srv.account_id;
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{acct}:root"}},"Action":["sts:AssumeRole","sts:TagSession"]}}]}}"#
    );
    let role = iam.create_role().role_name("reader").assume_role_policy_document(&trust).send().await.unwrap();
    let role_arn = role.role().unwrap().arn().to_string();
    iam.put_role_policy()
        .role_name("reader")
        .policy_name("list-roles")
        .policy_document(allow(&["iam:ListRoles"], "*"))
        .send()
        .await
        .unwrap();
    // AWS refuses AssumeRole with root credentials: a user allowed to assume the role calls it.
    let user = srv.make_user(&iam, &[&allow(&["sts:AssumeRole", "sts:TagSession"], &role_arn)]).await;
    let sts = Client::new(&srv.user_config(&user).await);

    let resp = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("sdk-rust")
        .duration_seconds(900)
        .tags(Tag::builder().key("project").value("naïve").build().unwrap())
        .send()
        .await
        .unwrap();
    let creds = resp.credentials().unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"), "{}", creds.access_key_id());
    assert!(!creds.session_token().is_empty());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let left = creds.expiration().secs() - now;
    assert!((850..=905).contains(&left), "expires in {left}s");
    let session_arn = format!("arn:aws:sts::{acct}:assumed-role/reader/sdk-rust");
    let assumed = resp.assumed_role_user().unwrap();
    assert_eq!(assumed.arn(), session_arn);
    assert!(assumed.assumed_role_id().starts_with("AROA") && assumed.assumed_role_id().ends_with(":sdk-rust"));

    // Signed with the session credentials (access key, secret, session token).
    let session = srv.config(creds.access_key_id(), creds.secret_access_key(), Some(creds.session_token())).await;
    let me = Client::new(&session).get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some(session_arn.as_str()));
    assert_eq!(me.user_id(), Some(assumed.assumed_role_id()));
    let session_iam = aws_sdk_iam::Client::new(&session);
    let roles = session_iam.list_roles().send().await.unwrap();
    assert!(roles.roles().iter().any(|r| r.role_name() == "reader"));
    // What the role does not allow is denied, naming the session.
    let err = session_iam.list_users().send().await.unwrap_err();
    assert_eq!(status(&err), 403);
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDenied");
    assert!(
        message.starts_with(&format!("User: {session_arn} is not authorized to perform: iam:ListUsers")),
        "{message}"
    );
    srv.stop();
}

#[tokio::test]
async fn assume_role_errors_are_typed() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let iam = aws_sdk_iam::Client::new(&root);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
        srv.account_id
    );
    let role = iam.create_role().role_name("r").assume_role_policy_document(&trust).send().await.unwrap();
    let role_arn = role.role().unwrap().arn().to_string();
    let user = srv.make_user(&iam, &[&allow(&["sts:AssumeRole"], "*")]).await;
    let sts = Client::new(&srv.user_config(&user).await);

    // A malformed session policy: the modeled MalformedPolicyDocumentException (awsQuery code
    // MalformedPolicyDocument).
    let err = sts.assume_role().role_arn(&role_arn).role_session_name("sdk").policy(r#"{"Statement": 3}"#).send().await;
    let err = err.unwrap_err();
    assert_eq!(status(&err), 400);
    match err.into_service_error() {
        AssumeRoleError::MalformedPolicyDocumentException(_) => {}
        other => panic!("expected MalformedPolicyDocumentException, got {other:?}"),
    }

    // A role that does not exist: AccessDenied, as AWS answers (not a not-found).
    let missing = format!("arn:aws:iam::{}:role/missing", srv.account_id);
    let err = sts.assume_role().role_arn(&missing).role_session_name("sdk").send().await.unwrap_err();
    assert_eq!(code_message(&err).0, "AccessDenied");
    srv.stop();
}
