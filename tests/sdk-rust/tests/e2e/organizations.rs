//! AWS Organizations (awsJson1.1): the organization, accounts, service control policies.

use aws_sdk_organizations::operation::describe_account::DescribeAccountError;
use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
use aws_sdk_organizations::operation::describe_policy::DescribePolicyError;
use aws_sdk_organizations::types::{
    AccountJoinedMethod, AccountStatus, CreateAccountState, OrganizationFeatureSet, PolicyType, PolicyTypeStatus, Tag,
    TargetType,
};
use aws_sdk_organizations::Client;
use rampart_sdk_rust_tests::{code_message, status, Server, NON_ASCII, NON_ASCII_WORDS};

const SCP_CONTENT: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoKms","Effect":"Deny","Action":"kms:*","Resource":"*"}]}"#;

#[tokio::test]
async fn organization_accounts_and_policies() {
    let srv = Server::start();
    let mgmt = &srv.account_id;
    let org = Client::new(&srv.root_config().await);

    let created = org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let info = created.organization().unwrap();
    let org_id = info.id().unwrap().to_string();
    assert!(org_id.starts_with("o-") && org_id.len() == 12, "{org_id}");
    assert_eq!(info.arn(), Some(format!("arn:aws:organizations::{mgmt}:organization/{org_id}").as_str()));
    assert_eq!(info.feature_set(), Some(&OrganizationFeatureSet::All));
    assert_eq!(info.master_account_id(), Some(mgmt.as_str()));
    let described = org.describe_organization().send().await.unwrap();
    assert_eq!(described.organization().unwrap().id(), Some(org_id.as_str()));

    let roots = org.list_roots().send().await.unwrap();
    let root = &roots.roots()[0];
    let root_id = root.id().unwrap().to_string();
    assert!(root_id.starts_with("r-"));
    let types: Vec<_> = root.policy_types().iter().map(|t| (t.r#type().cloned(), t.status().cloned())).collect();
    assert_eq!(types, [(Some(PolicyType::ServiceControlPolicy), Some(PolicyTypeStatus::Enabled))]);

    let accounts = org.list_accounts().send().await.unwrap();
    let accounts = accounts.accounts();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id(), Some(mgmt.as_str()));
    assert_eq!(accounts[0].status(), Some(&AccountStatus::Active));
    assert_eq!(accounts[0].joined_method(), Some(&AccountJoinedMethod::Invited));

    // A member account, tagged with non-ASCII values.
    let tag = Tag::builder().key("team").value(NON_ASCII_WORDS).build().unwrap();
    let status =
        org.create_account().email("dev@example.com").account_name("dev").tags(tag.clone()).send().await.unwrap();
    let status = status.create_account_status().unwrap();
    assert_eq!(status.state(), Some(&CreateAccountState::Succeeded));
    let acct = status.account_id().unwrap().to_string();
    assert!(acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) && acct != *mgmt);
    let a = org.describe_account().account_id(&acct).send().await.unwrap();
    let a = a.account().unwrap();
    assert_eq!((a.name(), a.email()), (Some("dev"), Some("dev@example.com")));
    assert_eq!(a.joined_method(), Some(&AccountJoinedMethod::Created));
    assert_eq!(a.arn(), Some(format!("arn:aws:organizations::{mgmt}:account/{org_id}/{acct}").as_str()));
    assert_eq!(org.list_tags_for_resource().resource_id(&acct).send().await.unwrap().tags(), [tag.clone()]);

    // A service control policy with a non-ASCII description, attached to the member account.
    let policy = org
        .create_policy()
        .name("no-kms")
        .description(NON_ASCII)
        .content(SCP_CONTENT)
        .r#type(PolicyType::ServiceControlPolicy)
        .tags(tag.clone())
        .send()
        .await
        .unwrap();
    let summary = policy.policy().unwrap().policy_summary().unwrap();
    let pid = summary.id().unwrap().to_string();
    assert!(pid.starts_with("p-") && pid.len() == 10, "{pid}");
    assert_eq!(summary.description(), Some(NON_ASCII));
    assert!(!summary.aws_managed());
    let described = org.describe_policy().policy_id(&pid).send().await.unwrap();
    let described = described.policy().unwrap();
    assert_eq!(described.content(), Some(SCP_CONTENT));
    assert_eq!(described.policy_summary().unwrap().name(), Some("no-kms"));
    assert_eq!(described.policy_summary().unwrap().description(), Some(NON_ASCII));

    org.attach_policy().policy_id(&pid).target_id(&acct).send().await.unwrap();
    let attached =
        org.list_policies_for_target().target_id(&acct).filter(PolicyType::ServiceControlPolicy).send().await.unwrap();
    let mut ids: Vec<_> = attached.policies().iter().filter_map(|p| p.id()).collect();
    ids.sort();
    // Policy IDs are random: compare as sets (both sides sorted).
    let mut want = vec!["p-FullAWSAccess", pid.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let targets = org.list_targets_for_policy().policy_id(&pid).send().await.unwrap();
    let targets: Vec<_> = targets.targets().iter().map(|t| (t.target_id(), t.r#type().cloned())).collect();
    assert_eq!(targets, [(Some(acct.as_str()), Some(TargetType::Account))]);
    org.detach_policy().policy_id(&pid).target_id(&acct).send().await.unwrap();
    org.delete_policy().policy_id(&pid).send().await.unwrap();
    let err = org.describe_policy().policy_id(&pid).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DescribePolicyError::PolicyNotFoundException(_)));
    srv.stop();
}

#[tokio::test]
async fn list_accounts_paginator() {
    let srv = Server::start();
    let org = Client::new(&srv.root_config().await);
    org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let mut ids = vec![srv.account_id.clone()];
    for i in 0..4 {
        let st = org.create_account().email(format!("a{i}@example.com")).account_name(format!("a{i}")).send().await;
        ids.push(st.unwrap().create_account_status().unwrap().account_id().unwrap().to_string());
    }
    let mut pages = org.list_accounts().max_results(2).into_paginator().send();
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        sizes.push(page.accounts().len());
        seen.extend(page.accounts().iter().map(|a| a.id().unwrap().to_string()));
    }
    assert_eq!(sizes, [2, 2, 1]);
    // Every account once (AWS documents no order).
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    srv.stop();
}

#[tokio::test]
async fn user_without_policies_is_denied() {
    let srv = Server::start();
    let root = srv.root_config().await;
    Client::new(&root).create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let user = srv.make_user(&aws_sdk_iam::Client::new(&root), &[]).await;
    let org = Client::new(&srv.user_config(&user).await);

    let err = org.describe_organization().send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDeniedException");
    // The resource named (here the organization's ARN) is left out of the comparison.
    let prefix =
        format!("User: {} is not authorized to perform: organizations:DescribeOrganization on resource: ", user.arn);
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.ends_with(" because no identity-based policy allows the organizations:DescribeOrganization action"),
        "{message}"
    );
    // AccessDeniedException is modeled by Organizations: a typed variant.
    assert!(matches!(err.into_service_error(), DescribeOrganizationError::AccessDeniedException(_)));
    srv.stop();
}

#[tokio::test]
async fn not_found_is_a_typed_error() {
    let srv = Server::start();
    let org = Client::new(&srv.root_config().await);
    // Before the organization exists.
    let err = org.describe_organization().send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DescribeOrganizationError::AwsOrganizationsNotInUseException(_)));

    org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let err = org.describe_account().account_id("000000000000").send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    match err.into_service_error() {
        DescribeAccountError::AccountNotFoundException(e) => assert!(e.message().is_some()),
        other => panic!("expected AccountNotFoundException, got {other:?}"),
    }
    let err = org.describe_policy().policy_id("p-abcdefgh").send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DescribePolicyError::PolicyNotFoundException(_)));
    srv.stop();
}

#[tokio::test]
async fn organizations_access_report() {
    use aws_sdk_iam::types::{JobStatusType, SortKeyType};
    let srv = Server::start();
    let root = srv.root_config().await;
    let org = Client::new(&root);
    let iam = aws_sdk_iam::Client::new(&root);
    let org_id = org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let org_id = org_id.organization().unwrap().id().unwrap().to_string();
    let root_id = org.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_string();
    iam.list_users().send().await.unwrap();
    let path = format!("{org_id}/{root_id}");
    let job = iam.generate_organizations_access_report().entity_path(&path).send().await.unwrap();
    let job = job.job_id().unwrap().to_string();
    let mut report = None;
    for _ in 0..100 {
        let r = iam
            .get_organizations_access_report()
            .job_id(&job)
            .sort_key(SortKeyType::LastAuthenticatedTimeDescending)
            .send()
            .await
            .unwrap();
        if r.job_status() != &JobStatusType::InProgress {
            report = Some(r);
            break;
        }
    }
    let report = report.expect("the job completes");
    assert_eq!(report.job_status(), &JobStatusType::Completed);
    let details = report.access_details();
    let iam_row = details.iter().find(|d| d.service_namespace() == "iam").unwrap();
    assert_eq!(iam_row.total_authenticated_entities(), Some(1));
    assert_eq!(iam_row.entity_path(), Some(format!("{path}/{}", srv.account_id).as_str()));
    // Most recent first: services never accessed come last.
    let accessed = details.iter().take_while(|d| d.last_authenticated_time().is_some()).count();
    assert!(details[accessed..].iter().all(|d| d.last_authenticated_time().is_none()));
    assert_eq!(report.number_of_services_not_accessed(), Some((details.len() - accessed) as i32));
    srv.stop();
}
