//! AWS Organizations (awsJson1.1): the organization, accounts, service control policies.

use aws_sdk_organizations::operation::accept_handshake::AcceptHandshakeError;
use aws_sdk_organizations::operation::describe_account::DescribeAccountError;
use aws_sdk_organizations::operation::describe_handshake::DescribeHandshakeError;
use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
use aws_sdk_organizations::operation::describe_policy::DescribePolicyError;
use aws_sdk_organizations::types::{
    AccountJoinedMethod, AccountStatus, ActionType, CreateAccountState, EffectivePolicyType, HandshakeFilter,
    HandshakeParty, HandshakePartyType, HandshakeResourceType, HandshakeState, OrganizationFeatureSet, PolicyType,
    PolicyTypeStatus, Tag, TargetType,
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

/// A standalone account to invite: one the organization created and removed (it keeps its
/// `OrganizationAccountAccessRole`), and an Organizations client of a session in it.
async fn standalone(srv: &Server, org: &Client, admin: &aws_sdk_sts::Client, name: &str) -> (String, Client) {
    let st = org.create_account().email(format!("{name}@example.com")).account_name(name).send().await.unwrap();
    let account = st.create_account_status().unwrap().account_id().unwrap().to_string();
    org.remove_account_from_organization().account_id(&account).send().await.unwrap();
    let creds = admin
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"))
        .role_session_name("sdk")
        .send()
        .await
        .unwrap();
    let c = creds.credentials().unwrap();
    let cfg = srv.config(c.access_key_id(), c.secret_access_key(), Some(c.session_token())).await;
    (account, Client::new(&cfg))
}

#[tokio::test]
async fn invitations_and_handshakes() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let admin = srv.make_user(&aws_sdk_iam::Client::new(&root), &[&rampart_sdk_rust_tests::allow(&["*"], "*")]).await;
    let admin_cfg = srv.user_config(&admin).await;
    let org = Client::new(&admin_cfg);
    let sts = aws_sdk_sts::Client::new(&admin_cfg);
    let org_id = org.create_organization().send().await.unwrap().organization().unwrap().id().unwrap().to_string();
    let (account, invited) = standalone(&srv, &org, &sts, "wanderer").await;

    let target = HandshakeParty::builder().id(&account).r#type(HandshakePartyType::Account).build().unwrap();
    let sent = org.invite_account_to_organization().target(target).notes(NON_ASCII).send().await.unwrap();
    let h = sent.handshake().unwrap();
    let hid = h.id().unwrap().to_string();
    assert!(hid.starts_with("h-"), "{hid}");
    assert_eq!(h.action(), Some(&ActionType::InviteAccountToOrganization));
    assert_eq!(h.state(), Some(&HandshakeState::Open));
    let mgmt = &srv.account_id;
    assert_eq!(h.arn(), Some(format!("arn:aws:organizations::{mgmt}:handshake/{org_id}/invite/{hid}").as_str()));
    let parties: Vec<_> = h.parties().iter().map(|p| (p.id(), p.r#type().clone())).collect();
    assert_eq!(
        parties,
        [(org_id.as_str(), HandshakePartyType::Organization), (account.as_str(), HandshakePartyType::Account)]
    );
    let notes = h.resources().iter().find(|r| r.r#type() == Some(&HandshakeResourceType::Notes)).unwrap();
    assert_eq!(notes.value(), Some(NON_ASCII));
    let (requested, expires) = (h.requested_timestamp().unwrap(), h.expiration_timestamp().unwrap());
    assert_eq!(expires.secs() - requested.secs(), 15 * 86_400);

    // The invited account lists and accepts it.
    let filter = HandshakeFilter::builder().action_type(ActionType::InviteAccountToOrganization).build();
    let received = invited.list_handshakes_for_account().filter(filter).send().await.unwrap();
    assert_eq!(received.handshakes().iter().map(|h| h.id().unwrap()).collect::<Vec<_>>(), [hid.as_str()]);
    // The sender cannot accept it.
    let err = org.accept_handshake().handshake_id(&hid).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), AcceptHandshakeError::AccessDeniedException(_)));
    let accepted = invited.accept_handshake().handshake_id(&hid).send().await.unwrap();
    assert_eq!(accepted.handshake().unwrap().state(), Some(&HandshakeState::Accepted));
    let err = invited.accept_handshake().handshake_id(&hid).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), AcceptHandshakeError::HandshakeAlreadyInStateException(_)));
    let member = org.describe_account().account_id(&account).send().await.unwrap();
    assert_eq!(member.account().unwrap().joined_method(), Some(&AccountJoinedMethod::Invited));

    // Two more invitations (declined, canceled), listed page by page.
    let (other, other_client) = standalone(&srv, &org, &sts, "drifter").await;
    for _ in 0..2 {
        let target = HandshakeParty::builder().id(&other).r#type(HandshakePartyType::Account).build().unwrap();
        let h = org.invite_account_to_organization().target(target).send().await.unwrap();
        let id = h.handshake().unwrap().id().unwrap().to_string();
        let declined = other_client.decline_handshake().handshake_id(&id).send().await.unwrap();
        assert_eq!(declined.handshake().unwrap().state(), Some(&HandshakeState::Declined));
    }
    let mut pages = org.list_handshakes_for_organization().max_results(1).into_paginator().send();
    let mut states = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert_eq!(page.handshakes().len(), 1);
        states.extend(page.handshakes().iter().map(|h| h.state().unwrap().clone()));
    }
    assert_eq!(states, [HandshakeState::Accepted, HandshakeState::Declined, HandshakeState::Declined]);

    let err = org.describe_handshake().handshake_id("h-0123456789").send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(err.into_service_error(), DescribeHandshakeError::HandshakeNotFoundException(_)));
    srv.stop();
}

#[tokio::test]
async fn effective_tag_policy() {
    let srv = Server::start();
    let org = Client::new(&srv.root_config().await);
    org.create_organization().send().await.unwrap();
    let root_id = org.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_string();
    org.enable_policy_type().root_id(&root_id).policy_type(PolicyType::TagPolicy).send().await.unwrap();
    let content = r#"{"tags":{"team":{"tag_key":{"@@assign":"Team"},"tag_value":{"@@assign":["a"]}}}}"#;
    let p = org.create_policy().name("tags").description("").content(content).r#type(PolicyType::TagPolicy);
    let pid = p.send().await.unwrap().policy().unwrap().policy_summary().unwrap().id().unwrap().to_string();
    org.attach_policy().policy_id(&pid).target_id(&root_id).send().await.unwrap();
    let eff = org.describe_effective_policy().policy_type(EffectivePolicyType::TagPolicy).send().await.unwrap();
    let eff = eff.effective_policy().unwrap();
    assert_eq!(eff.target_id(), Some(srv.account_id.as_str()));
    assert_eq!(eff.policy_content(), Some(r#"{"tags":{"team":{"tag_key":"Team","tag_value":["a"]}}}"#));
    srv.stop();
}

/// 00:00:00 UTC on the first day of next month, in Unix seconds (civil-from-days arithmetic).
fn next_month_start() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = now.div_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    // days_from_civil for (y, m, 1).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

#[tokio::test]
async fn billing_transfer_between_organizations() {
    use aws_sdk_organizations::primitives::DateTime;
    use aws_sdk_organizations::types::{ResponsibilityTransferStatus, ResponsibilityTransferType};

    let srv = Server::start();
    let root = srv.root_config().await;
    let admin = srv.make_user(&aws_sdk_iam::Client::new(&root), &[&rampart_sdk_rust_tests::allow(&["*"], "*")]).await;
    let admin_cfg = srv.user_config(&admin).await;
    let payer = Client::new(&admin_cfg);
    payer.create_organization().send().await.unwrap();
    // The other organization: an account this one created and let go, now a management account.
    let (other, source) = standalone(&srv, &payer, &aws_sdk_sts::Client::new(&admin_cfg), "billing-src").await;
    source.create_organization().send().await.unwrap();

    let start = DateTime::from_secs(next_month_start());
    let target = HandshakeParty::builder().id(&other).r#type(HandshakePartyType::Account).build().unwrap();
    let sent = payer
        .invite_organization_to_transfer_responsibility()
        .r#type(ResponsibilityTransferType::Billing)
        .target(target)
        .start_timestamp(start)
        .source_name("acme")
        .send()
        .await
        .unwrap();
    let h = sent.handshake().unwrap();
    assert_eq!(h.action(), Some(&ActionType::TransferResponsibility));
    let tid = h.resources()[0].value().unwrap().to_string();
    assert!(tid.starts_with("rt-"), "{tid}");

    let inbound = payer.list_inbound_responsibility_transfers().r#type(ResponsibilityTransferType::Billing).send();
    let inbound = inbound.await.unwrap();
    let t = &inbound.responsibility_transfers()[0];
    assert_eq!((t.id(), t.status()), (Some(tid.as_str()), Some(&ResponsibilityTransferStatus::Requested)));
    assert_eq!(t.start_timestamp(), Some(&start));

    source.accept_handshake().handshake_id(h.id().unwrap()).send().await.unwrap();
    let out = source.list_outbound_responsibility_transfers().r#type(ResponsibilityTransferType::Billing).send();
    let out = out.await.unwrap();
    let t = &out.responsibility_transfers()[0];
    assert_eq!(t.status(), Some(&ResponsibilityTransferStatus::Accepted));
    assert_eq!(t.source().unwrap().management_account_id(), Some(other.as_str()));
    assert_eq!(t.target().unwrap().management_account_id(), Some(srv.account_id.as_str()));

    let renamed = payer.update_responsibility_transfer().id(&tid).name(NON_ASCII_WORDS).send().await;
    // Names are printable ASCII: a non-ASCII name is refused.
    assert!(renamed.is_err());
    let renamed = payer.update_responsibility_transfer().id(&tid).name("acme billing").send().await.unwrap();
    assert_eq!(renamed.responsibility_transfer().unwrap().name(), Some("acme billing"));
    let ended = source.terminate_responsibility_transfer().id(&tid).send().await;
    // Withdrawn before it started: the end (this month) would precede the start.
    assert_eq!(code_message(&ended.unwrap_err()).0, "InvalidInputException");
    let ended = source.terminate_responsibility_transfer().id(&tid).end_timestamp(start).send().await.unwrap();
    let ended = ended.responsibility_transfer().unwrap();
    assert_eq!(ended.status(), Some(&ResponsibilityTransferStatus::Withdrawn));
    assert!(ended.end_timestamp().unwrap().secs() > start.secs());
    let described = payer.describe_responsibility_transfer().id(&tid).send().await.unwrap();
    assert_eq!(described.responsibility_transfer().unwrap().status(), Some(&ResponsibilityTransferStatus::Withdrawn));

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
