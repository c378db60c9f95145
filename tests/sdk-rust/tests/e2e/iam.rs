//! IAM (awsQuery, XML responses): users, access keys, roles, managed and inline policies, tags.

use aws_sdk_iam::operation::delete_user::DeleteUserError;
use aws_sdk_iam::operation::get_policy::GetPolicyError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::operation::get_user::GetUserError;
use aws_sdk_iam::types::{StatusType, Tag};
use aws_sdk_iam::Client;
use rampart_sdk_rust_tests::{allow, code_message, status, unique, url_decode, Server, NON_ASCII, NON_ASCII_WORDS};

#[tokio::test]
async fn users_tags_and_access_keys() {
    let srv = Server::start();
    let iam = Client::new(&srv.root_config().await);
    let name = unique("alice");
    let tag = Tag::builder().key("team").value(NON_ASCII_WORDS).build().unwrap();

    let created = iam.create_user().user_name(&name).path("/eng/").tags(tag.clone()).send().await.unwrap();
    let user = created.user().unwrap();
    assert_eq!(user.user_name(), name);
    assert_eq!(user.path(), "/eng/");
    assert_eq!(user.arn(), format!("arn:aws:iam::{}:user/eng/{name}", srv.account_id));
    assert!(user.user_id().starts_with("AIDA"), "{}", user.user_id());
    assert_eq!(user.tags(), [tag.clone()]);
    let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
        - user.create_date().secs();
    assert!((-5..60).contains(&age), "CreateDate {:?}", user.create_date());

    let got = iam.get_user().user_name(&name).send().await.unwrap();
    let got = got.user().unwrap();
    assert_eq!((got.user_id(), got.arn()), (user.user_id(), user.arn()));
    assert_eq!(got.tags(), [tag.clone()]);
    let tags = iam.list_user_tags().user_name(&name).send().await.unwrap();
    assert_eq!(tags.tags(), [tag.clone()]);
    assert!(!tags.is_truncated());

    // Access keys: create, list, deactivate, and the key signs requests as the user.
    let key = iam.create_access_key().user_name(&name).send().await.unwrap();
    let key = key.access_key().unwrap();
    assert_eq!(key.user_name(), name);
    assert!(key.access_key_id().starts_with("AKIA") && key.access_key_id().len() == 20, "{}", key.access_key_id());
    assert_eq!(key.secret_access_key().len(), 40);
    assert_eq!(key.status(), &StatusType::Active);
    let as_user = srv.config(key.access_key_id(), key.secret_access_key(), None).await;
    let me = aws_sdk_sts::Client::new(&as_user).get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some(user.arn()));
    assert_eq!(me.user_id(), Some(user.user_id()));

    iam.update_access_key()
        .user_name(&name)
        .access_key_id(key.access_key_id())
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let listed = iam.list_access_keys().user_name(&name).send().await.unwrap();
    let meta = listed.access_key_metadata();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].access_key_id(), Some(key.access_key_id()));
    assert_eq!(meta[0].status(), Some(&StatusType::Inactive));
    let last_used = iam.get_access_key_last_used().access_key_id(key.access_key_id()).send().await.unwrap();
    assert_eq!(last_used.user_name(), Some(name.as_str()));
    assert!(last_used.access_key_last_used().unwrap().last_used_date().is_some());

    // A user with a key cannot be deleted: a typed DeleteConflict.
    let err = iam.delete_user().user_name(&name).send().await.unwrap_err();
    assert_eq!(status(&err), 409);
    assert!(matches!(err.into_service_error(), DeleteUserError::DeleteConflictException(_)));
    iam.delete_access_key().user_name(&name).access_key_id(key.access_key_id()).send().await.unwrap();
    assert!(iam.list_access_keys().user_name(&name).send().await.unwrap().access_key_metadata().is_empty());
    iam.delete_user().user_name(&name).send().await.unwrap();
    srv.stop();
}

#[tokio::test]
async fn roles_and_policies() {
    let srv = Server::start();
    let iam = Client::new(&srv.root_config().await);
    let acct = &srv.account_id;
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{acct}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    // Role descriptions are Latin-1 only (roleDescriptionType); this one uses the upper half.
    let description = "Rôle für naïve café ©";
    let role = iam
        .create_role()
        .role_name("app")
        .path("/svc/")
        .assume_role_policy_document(&trust)
        .description(description)
        .max_session_duration(7200)
        .send()
        .await
        .unwrap();
    let role = role.role().unwrap();
    assert_eq!(role.arn(), format!("arn:aws:iam::{acct}:role/svc/app"));
    assert!(role.role_id().starts_with("AROA"));
    let got = iam.get_role().role_name("app").send().await.unwrap();
    let got = got.role().unwrap();
    assert_eq!(got.description(), Some(description));
    assert_eq!(got.max_session_duration(), Some(7200));
    // IAM returns policy documents percent-encoded (RFC 3986); decoded they are the document sent.
    assert_eq!(url_decode(got.assume_role_policy_document().unwrap()), trust);

    // A managed policy with a non-ASCII description and a non-ASCII condition value.
    let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"naïve café"}}}]}"#;
    let created = iam
        .create_policy()
        .policy_name("read")
        .path("/app/")
        .description(NON_ASCII)
        .policy_document(document)
        .send()
        .await
        .unwrap();
    let arn = created.policy().unwrap().arn().unwrap().to_string();
    assert_eq!(arn, format!("arn:aws:iam::{acct}:policy/app/read"));
    let policy = iam.get_policy().policy_arn(&arn).send().await.unwrap();
    let policy = policy.policy().unwrap();
    assert_eq!(policy.description(), Some(NON_ASCII));
    assert_eq!(policy.default_version_id(), Some("v1"));
    let version = iam.get_policy_version().policy_arn(&arn).version_id("v1").send().await.unwrap();
    let version = version.policy_version().unwrap();
    assert_eq!(url_decode(version.document().unwrap()), document);
    assert!(version.is_default_version());

    iam.attach_role_policy().role_name("app").policy_arn(&arn).send().await.unwrap();
    let attached = iam.list_attached_role_policies().role_name("app").send().await.unwrap();
    let attached: Vec<_> = attached.attached_policies().iter().map(|p| (p.policy_name(), p.policy_arn())).collect();
    assert_eq!(attached, [(Some("read"), Some(arn.as_str()))]);
    assert_eq!(iam.get_policy().policy_arn(&arn).send().await.unwrap().policy().unwrap().attachment_count(), Some(1));

    // An inline role policy.
    let inline = allow(&["iam:GetRole"], "*");
    iam.put_role_policy().role_name("app").policy_name("inline").policy_document(&inline).send().await.unwrap();
    assert_eq!(iam.list_role_policies().role_name("app").send().await.unwrap().policy_names(), ["inline"]);
    let got = iam.get_role_policy().role_name("app").policy_name("inline").send().await.unwrap();
    assert_eq!(url_decode(got.policy_document()), inline);

    // Deleting: detach, delete the inline policy, then the role and the policy.
    iam.detach_role_policy().role_name("app").policy_arn(&arn).send().await.unwrap();
    iam.delete_role_policy().role_name("app").policy_name("inline").send().await.unwrap();
    iam.delete_role().role_name("app").send().await.unwrap();
    iam.delete_policy().policy_arn(&arn).send().await.unwrap();
    let err = iam.get_policy().policy_arn(&arn).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), GetPolicyError::NoSuchEntityException(_)));
    srv.stop();
}

#[tokio::test]
async fn paginators_walk_every_page() {
    let srv = Server::start();
    let iam = Client::new(&srv.root_config().await);
    let mut names: Vec<String> = (0..5).map(|i| format!("pager-{i}")).collect();
    for n in &names {
        iam.create_user().user_name(n).path("/pager/").send().await.unwrap();
    }
    iam.create_user().user_name("elsewhere").send().await.unwrap();

    // Pages of at most 2 (MaxItems), followed by Marker until IsTruncated is false.
    let mut pages = iam.list_users().path_prefix("/pager/").max_items(2).into_paginator().send();
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        sizes.push(page.users().len());
        seen.extend(page.users().iter().map(|u| u.user_name().to_string()));
    }
    assert_eq!(sizes, [2, 2, 1]);
    seen.sort();
    names.sort();
    assert_eq!(seen, names);

    // The item paginator flattens the same pages.
    let all: Vec<_> =
        iam.list_users().max_items(2).into_paginator().items().send().collect::<Result<Vec<_>, _>>().await.unwrap();
    assert_eq!(all.len(), 6);

    // Roles too.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
        srv.account_id
    );
    for i in 0..3 {
        iam.create_role().role_name(format!("r{i}")).assume_role_policy_document(&trust).send().await.unwrap();
    }
    let pages = iam.list_roles().max_items(1).into_paginator().send().collect::<Result<Vec<_>, _>>().await.unwrap();
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(|p| p.roles().len() == 1));
    srv.stop();
}

#[tokio::test]
async fn user_without_policies_is_denied() {
    let srv = Server::start();
    let iam = Client::new(&srv.root_config().await);
    let user = srv.make_user(&iam, &[]).await;
    let as_user = Client::new(&srv.user_config(&user).await);

    let err = as_user.list_users().send().await.unwrap_err();
    assert_eq!(status(&err), 403);
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        format!(
            "User: {} is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::{}:user/ \
             because no identity-based policy allows the iam:ListUsers action",
            user.arn, srv.account_id
        )
    );
    // AccessDenied is not a modeled IAM error: the SDK gives it as unhandled, with its code.
    assert!(err.into_service_error().meta().code() == Some("AccessDenied"));

    let err = as_user.create_user().user_name("mallory").send().await.unwrap_err();
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDenied");
    assert!(
        message.contains(&format!("iam:CreateUser on resource: arn:aws:iam::{}:user/mallory", srv.account_id)),
        "{message}"
    );
    // The denied call changed nothing.
    let err = iam.get_user().user_name("mallory").send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), GetUserError::NoSuchEntityException(_)));
    srv.stop();
}

#[tokio::test]
async fn not_found_is_a_typed_error() {
    let srv = Server::start();
    let iam = Client::new(&srv.root_config().await);

    let err = iam.get_user().user_name("nobody").send().await.unwrap_err();
    assert_eq!(status(&err), 404);
    match err.into_service_error() {
        GetUserError::NoSuchEntityException(e) => {
            assert_eq!(e.message(), Some("The user with name nobody cannot be found."));
        }
        other => panic!("expected NoSuchEntityException, got {other:?}"),
    }
    let err = iam.get_role().role_name("norole").send().await.unwrap_err();
    match err.into_service_error() {
        GetRoleError::NoSuchEntityException(e) => {
            assert_eq!(e.message(), Some("The role with name norole cannot be found."));
        }
        other => panic!("expected NoSuchEntityException, got {other:?}"),
    }
    srv.stop();
}

#[tokio::test]
async fn service_specific_credentials() {
    use aws_sdk_iam::operation::create_service_specific_credential::CreateServiceSpecificCredentialError;
    let srv = Server::start();
    let iam = Client::new(&srv.root_config().await);
    let name = unique("git");
    iam.create_user().user_name(&name).send().await.unwrap();
    let out = iam
        .create_service_specific_credential()
        .user_name(&name)
        .service_name("codecommit.amazonaws.com")
        .send()
        .await
        .unwrap();
    let c = out.service_specific_credential().unwrap();
    assert!(c.service_specific_credential_id().starts_with("ACCA"), "{}", c.service_specific_credential_id());
    assert_eq!(c.service_user_name(), format!("{name}-at-{}", srv.account_id));
    assert_eq!(c.service_password().len(), 44);
    assert_eq!(c.status(), &StatusType::Active);
    let id = c.service_specific_credential_id().to_string();

    let listed = iam.list_service_specific_credentials().user_name(&name).send().await.unwrap();
    let ids: Vec<&str> =
        listed.service_specific_credentials().iter().map(|m| m.service_specific_credential_id()).collect();
    assert_eq!(ids, [id.as_str()]);
    let reset =
        iam.reset_service_specific_credential().user_name(&name).service_specific_credential_id(&id).send().await;
    let reset = reset.unwrap();
    assert_ne!(reset.service_specific_credential().unwrap().service_password(), c.service_password());
    iam.update_service_specific_credential()
        .user_name(&name)
        .service_specific_credential_id(&id)
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap();

    let err = iam
        .create_service_specific_credential()
        .user_name(&name)
        .service_name("ec2.amazonaws.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 404);
    // AWS answers NoSuchEntity here, not the modelled NotSupportedService (recorded responses).
    assert!(matches!(err.into_service_error(), CreateServiceSpecificCredentialError::NoSuchEntityException(_)));
    let err = iam.delete_user().user_name(&name).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DeleteUserError::DeleteConflictException(_)));
    iam.delete_service_specific_credential().user_name(&name).service_specific_credential_id(&id).send().await.unwrap();
    iam.delete_user().user_name(&name).send().await.unwrap();
    srv.stop();
}

#[tokio::test]
async fn service_last_accessed_report() {
    use aws_sdk_iam::types::{AccessAdvisorUsageGranularityType, JobStatusType};
    let srv = Server::start();
    let iam = Client::new(&srv.root_config().await);
    let user = srv.make_user(&iam, &[&allow(&["iam:List*", "kms:ListKeys"], "*")]).await;
    Client::new(&srv.user_config(&user).await).list_users().send().await.unwrap();
    let job = iam
        .generate_service_last_accessed_details()
        .arn(&user.arn)
        .granularity(AccessAdvisorUsageGranularityType::ActionLevel)
        .send()
        .await
        .unwrap();
    let job = job.job_id().unwrap().to_string();
    // A job: poll (bounded) until it is no longer in progress.
    let mut report = None;
    for _ in 0..100 {
        let r = iam.get_service_last_accessed_details().job_id(&job).send().await.unwrap();
        if r.job_status() != &JobStatusType::InProgress {
            report = Some(r);
            break;
        }
    }
    let report = report.expect("the job completes");
    assert_eq!(report.job_status(), &JobStatusType::Completed);
    let services: Vec<(&str, Option<i32>)> = report
        .services_last_accessed()
        .iter()
        .map(|s| (s.service_namespace(), s.total_authenticated_entities()))
        .collect();
    assert_eq!(services, [("iam", Some(1)), ("kms", Some(0))]);
    let iam_svc = &report.services_last_accessed()[0];
    assert_eq!(iam_svc.last_authenticated_entity(), Some(user.arn.as_str()));
    let actions: Vec<&str> = iam_svc.tracked_actions_last_accessed().iter().filter_map(|a| a.action_name()).collect();
    assert_eq!(actions, ["ListUsers"]);
    let ents = iam
        .get_service_last_accessed_details_with_entities()
        .job_id(&job)
        .service_namespace("iam")
        .send()
        .await
        .unwrap();
    assert_eq!(ents.entity_details_list().len(), 1);
    assert_eq!(ents.entity_details_list()[0].entity_info().map(|e| e.arn()), Some(user.arn.as_str()));
    assert!(ents.entity_details_list()[0].last_authenticated().is_some());
    srv.stop();
}
