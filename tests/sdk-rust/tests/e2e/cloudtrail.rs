//! CloudTrail (awsJson1.1, the Smithy SDKs' short X-Amz-Target prefix): LookupEvents finds the
//! calls the SDK just made; trails.

use aws_sdk_cloudtrail::operation::get_trail::GetTrailError;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey, Tag};
use aws_sdk_cloudtrail::Client;
use rampart_sdk_rust_tests::{allow, code_message, status, Server, NON_ASCII};

fn attr(key: LookupAttributeKey, value: &str) -> LookupAttribute {
    LookupAttribute::builder().attribute_key(key).attribute_value(value).build().unwrap()
}

#[tokio::test]
async fn lookup_events_finds_the_calls_just_made() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let ct = Client::new(&root);
    let iam = aws_sdk_iam::Client::new(&root);
    let created = iam.create_user().user_name("traced").send().await.unwrap();
    let request_id = {
        use aws_sdk_iam::operation::RequestId;
        created.request_id().unwrap().to_string()
    };
    let key = aws_sdk_kms::Client::new(&root).create_key().description(NON_ASCII).send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();

    let events =
        ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, "traced")).send().await.unwrap();
    let events: Vec<_> = events.events().iter().filter(|e| e.event_name() == Some("CreateUser")).collect();
    assert_eq!(events.len(), 1);
    let e = events[0];
    assert_eq!(e.event_source(), Some("iam.amazonaws.com"));
    assert_eq!(e.username(), Some("root"));
    assert_eq!(e.access_key_id(), Some(srv.access_key_id.as_str()));
    assert_eq!(e.read_only(), Some("false"));
    let resources: Vec<_> = e.resources().iter().map(|r| (r.resource_type(), r.resource_name())).collect();
    assert!(resources.contains(&(Some("AWS::IAM::User"), Some("traced"))), "{resources:?}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - e.event_time().unwrap().secs()).abs() < 60);
    // The record (a JSON document): the SDK's user agent and the request ID the SDK saw.
    let record = e.cloud_trail_event().unwrap();
    assert!(record.contains("\"eventName\":\"CreateUser\""), "{record}");
    assert!(record.contains("aws-sdk-rust"), "{record}");
    assert!(record.contains(&format!("\"requestID\":\"{request_id}\"")), "{record}");
    assert!(record.contains(&format!("\"recipientAccountId\":\"{}\"", srv.account_id)), "{record}");

    // The KMS call, by event name; its non-ASCII description is in the record's requestParameters.
    let events =
        ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventName, "CreateKey")).send().await.unwrap();
    assert_eq!(events.events().len(), 1);
    let e = &events.events()[0];
    assert_eq!(e.event_source(), Some("kms.amazonaws.com"));
    let record = e.cloud_trail_event().unwrap();
    assert!(record.contains(&key_id), "{record}");
    assert!(record.contains(NON_ASCII) || record.contains("na\\u00efve"), "{record}");
    srv.stop();
}

#[tokio::test]
async fn lookup_events_paginator() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let user = srv.make_user(&aws_sdk_iam::Client::new(&root), &[&allow(&["iam:GetUser"], "*")]).await;
    let as_user = aws_sdk_iam::Client::new(&srv.user_config(&user).await);
    for _ in 0..5 {
        as_user.get_user().user_name(&user.name).send().await.unwrap();
    }
    let ct = Client::new(&root);
    let mut pages = ct
        .lookup_events()
        .lookup_attributes(attr(LookupAttributeKey::AccessKeyId, &user.access_key_id))
        .max_results(2)
        .into_paginator()
        .send();
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        sizes.push(page.events().len());
        ids.extend(page.events().iter().map(|e| e.event_id().unwrap().to_string()));
        assert!(page.events().iter().all(|e| e.event_name() == Some("GetUser") && e.username() == Some(&user.name)));
    }
    assert_eq!(sizes, [2, 2, 1]);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
    srv.stop();
}

#[tokio::test]
async fn trails() {
    let srv = Server::start();
    let ct = Client::new(&srv.root_config().await);
    let arn = format!("arn:aws:cloudtrail:us-east-1:{}:trail/audit", srv.account_id);
    let tag = Tag::builder().key("owner").value(NON_ASCII).build().unwrap();
    let created = ct
        .create_trail()
        .name("audit")
        .s3_bucket_name("audit-bucket")
        .enable_log_file_validation(true)
        .tags_list(tag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(created.trail_arn(), Some(arn.as_str()));
    assert_eq!(created.log_file_validation_enabled(), Some(true));

    let trail = ct.get_trail().name("audit").send().await.unwrap();
    let trail = trail.trail().unwrap();
    assert_eq!(trail.name(), Some("audit"));
    assert_eq!(trail.s3_bucket_name(), Some("audit-bucket"));
    assert_eq!(trail.home_region(), Some("us-east-1"));
    assert_eq!(trail.is_multi_region_trail(), Some(false));
    assert_eq!(trail.include_global_service_events(), Some(true));
    assert_eq!(ct.get_trail().name(&arn).send().await.unwrap().trail().unwrap().name(), Some("audit"));
    let listed = ct.list_trails().send().await.unwrap();
    assert!(listed.trails().iter().any(|t| t.trail_arn() == Some(arn.as_str())));
    let described = ct.describe_trails().trail_name_list("audit").send().await.unwrap();
    assert_eq!(described.trail_list().len(), 1);

    assert_eq!(ct.get_trail_status().name("audit").send().await.unwrap().is_logging(), Some(false));
    ct.start_logging().name("audit").send().await.unwrap();
    let st = ct.get_trail_status().name("audit").send().await.unwrap();
    assert_eq!(st.is_logging(), Some(true));
    assert!(st.start_logging_time().is_some());
    ct.stop_logging().name("audit").send().await.unwrap();
    assert_eq!(ct.get_trail_status().name("audit").send().await.unwrap().is_logging(), Some(false));

    let tags = ct.list_tags().resource_id_list(&arn).send().await.unwrap();
    let tags = tags.resource_tag_list();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].resource_id(), Some(arn.as_str()));
    assert_eq!(tags[0].tags_list(), [tag]);

    ct.delete_trail().name("audit").send().await.unwrap();
    let err = ct.get_trail().name("audit").send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    match err.into_service_error() {
        GetTrailError::TrailNotFoundException(e) => assert!(e.message().unwrap_or_default().contains("audit")),
        other => panic!("expected TrailNotFoundException, got {other:?}"),
    }
    srv.stop();
}

#[tokio::test]
async fn user_without_policies_is_denied() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let user = srv.make_user(&aws_sdk_iam::Client::new(&root), &[]).await;
    let ct = Client::new(&srv.user_config(&user).await);
    let err = ct.lookup_events().send().await.unwrap_err();
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDeniedException", "{message}");
    assert_eq!(
        message,
        format!(
            "User: {} is not authorized to perform: cloudtrail:LookupEvents on resource: * because no identity-based \
             policy allows the cloudtrail:LookupEvents action",
            user.arn
        )
    );
    let err = ct.create_trail().name("denied-trail").s3_bucket_name("denied-bucket").send().await.unwrap_err();
    assert_eq!(code_message(&err).0, "AccessDeniedException");
    srv.stop();
}

/// CloudTrail Lake: an event data store collects the calls made after its creation; a query
/// counts them; the results paginator pages through the rows.
#[tokio::test]
async fn lake_event_data_store_query_and_results() {
    use aws_sdk_cloudtrail::operation::get_event_data_store::GetEventDataStoreError;
    use aws_sdk_cloudtrail::operation::start_query::StartQueryError;
    let srv = Server::start();
    let root = srv.root_config().await;
    let ct = Client::new(&root);
    let iam = aws_sdk_iam::Client::new(&root);
    let created =
        ct.create_event_data_store().name("lake-rust").termination_protection_enabled(false).send().await.unwrap();
    let arn = created.event_data_store_arn().unwrap().to_string();
    assert!(arn.starts_with(&format!("arn:aws:cloudtrail:us-east-1:{}:eventdatastore/", srv.account_id)), "{arn}");
    assert_eq!(created.retention_period(), Some(366));
    let id = arn.rsplit('/').next().unwrap().to_string();
    for i in 0..3 {
        iam.create_user().user_name(format!("lake-{i}")).send().await.unwrap();
    }
    let q = ct
        .start_query()
        .query_statement(format!(
            "SELECT element_at(requestParameters, 'userName') AS u, count(*) AS n FROM {id} \
             WHERE eventName = 'CreateUser' GROUP BY 1 ORDER BY 1"
        ))
        .send()
        .await
        .unwrap();
    let qid = q.query_id().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let d = ct.describe_query().query_id(&qid).send().await.unwrap();
        let s = d.query_status().unwrap().as_str().to_string();
        if ["FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"].contains(&s.as_str()) {
            assert_eq!(s, "FINISHED", "{:?}", d.error_message());
            assert!(d.query_statistics().unwrap().events_scanned().unwrap_or(0) >= 3);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "query still {s}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut rows = Vec::new();
    let mut pages = ct.get_query_results().query_id(&qid).max_query_results(2).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert_eq!(page.query_statistics().unwrap().total_results_count(), Some(3));
        for row in page.query_result_rows() {
            rows.push((row[0].get("u").cloned().unwrap(), row[1].get("n").cloned().unwrap()));
        }
    }
    assert_eq!(
        rows,
        [("lake-0".to_string(), "1".to_string()), ("lake-1".into(), "1".into()), ("lake-2".into(), "1".into())]
    );

    let err = ct.start_query().query_statement("DELETE FROM x").send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), StartQueryError::InvalidQueryStatementException(_)));
    let err =
        ct.get_event_data_store().event_data_store("00000000-0000-4000-8000-000000000000").send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), GetEventDataStoreError::EventDataStoreNotFoundException(_)));
    ct.delete_event_data_store().event_data_store(&arn).send().await.unwrap();
    srv.stop();
}

/// Insights: selectors on a trail, the per-minute counts the detector keeps (read through
/// ListInsightsMetricData after StopLogging, the flush), typed errors; delegated administrators
/// need an organization.
#[tokio::test]
async fn insights_selectors_metric_and_delegated_admin() {
    use aws_sdk_cloudtrail::operation::get_insight_selectors::GetInsightSelectorsError;
    use aws_sdk_cloudtrail::operation::register_organization_delegated_admin::RegisterOrganizationDelegatedAdminError;
    use aws_sdk_cloudtrail::types::{InsightSelector, InsightType, InsightsMetricDataType};
    let srv = Server::start();
    let root = srv.root_config().await;
    let ct = Client::new(&root);
    let iam = aws_sdk_iam::Client::new(&root);
    let arn = format!("arn:aws:cloudtrail:us-east-1:{}:trail/watch", srv.account_id);
    ct.create_trail().name("watch").s3_bucket_name("watch-bucket").send().await.unwrap();
    let err = ct.get_insight_selectors().trail_name("watch").send().await.unwrap_err();
    assert!(
        matches!(err.into_service_error(), GetInsightSelectorsError::InsightNotEnabledException(_)),
        "InsightNotEnabledException"
    );
    ct.start_logging().name("watch").send().await.unwrap();
    let call = InsightSelector::builder().insight_type(InsightType::ApiCallRateInsight).build();
    let put = ct.put_insight_selectors().trail_name("watch").insight_selectors(call).send().await.unwrap();
    assert_eq!(put.trail_arn(), Some(arn.as_str()));
    let got = ct.get_insight_selectors().trail_name(&arn).send().await.unwrap();
    assert_eq!(got.insight_selectors()[0].insight_type(), Some(&InsightType::ApiCallRateInsight));
    let described = ct.get_trail().name("watch").send().await.unwrap();
    assert_eq!(described.trail().unwrap().has_insight_selectors(), Some(true));
    for i in 0..4 {
        iam.create_group().group_name(format!("insight-{i}")).send().await.unwrap();
    }
    ct.stop_logging().name("watch").send().await.unwrap();
    let start = aws_sdk_cloudtrail::primitives::DateTime::from_secs(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 3600,
    );
    let metric = ct
        .list_insights_metric_data()
        .trail_name("watch")
        .event_source("iam.amazonaws.com")
        .event_name("CreateGroup")
        .insight_type(InsightType::ApiCallRateInsight)
        .period(300)
        .data_type(InsightsMetricDataType::NonZeroData)
        .start_time(start)
        .send()
        .await
        .unwrap();
    assert_eq!(metric.trail_arn(), Some(arn.as_str()));
    assert_eq!(metric.values().iter().sum::<f64>(), 4.0);
    assert_eq!(metric.timestamps().len(), metric.values().len());
    let data = ct
        .list_insights_data()
        .insight_source(&arn)
        .data_type(aws_sdk_cloudtrail::types::ListInsightsDataType::InsightsEvents)
        .send()
        .await
        .unwrap();
    assert!(data.events().is_empty(), "one minute of history is no baseline yet");
    let err = ct.register_organization_delegated_admin().member_account_id("210987654321").send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(
        matches!(err.into_service_error(), RegisterOrganizationDelegatedAdminError::OrganizationsNotInUseException(_)),
        "OrganizationsNotInUseException"
    );
    srv.stop();
}

/// CloudTrail Lake integrations: an event data store of ActivityAuditLog events, a channel into
/// it (paginated list, typed not-found), and its resource-based policy.
#[tokio::test]
async fn channels_and_resource_policies() {
    use aws_sdk_cloudtrail::operation::get_channel::GetChannelError;
    use aws_sdk_cloudtrail::operation::get_resource_policy::GetResourcePolicyError;
    use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector, Destination, DestinationType};
    let srv = Server::start();
    let root = srv.root_config().await;
    let ct = Client::new(&root);
    let selector = AdvancedEventSelector::builder()
        .field_selectors(
            AdvancedFieldSelector::builder().field("eventCategory").equals("ActivityAuditLog").build().unwrap(),
        )
        .build()
        .unwrap();
    let store = ct
        .create_event_data_store()
        .name("ext-rust")
        .termination_protection_enabled(false)
        .advanced_event_selectors(selector)
        .send()
        .await
        .unwrap();
    let store_arn = store.event_data_store_arn().unwrap().to_string();
    let dest = Destination::builder().r#type(DestinationType::EventDataStore).location(&store_arn).build().unwrap();
    let mut arns = Vec::new();
    for i in 0..3 {
        let c = ct
            .create_channel()
            .name(format!("chan-{i}"))
            .source("Custom")
            .destinations(dest.clone())
            .tags(Tag::builder().key("k").value(NON_ASCII).build().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(c.tags()[0].value(), Some(NON_ASCII));
        arns.push(c.channel_arn().unwrap().to_string());
    }
    let mut listed = Vec::new();
    let mut pages = ct.list_channels().max_results(2).into_paginator().send();
    while let Some(page) = pages.next().await {
        listed.extend(page.unwrap().channels().iter().map(|c| c.channel_arn().unwrap().to_string()));
    }
    // Every channel once, across pages (AWS documents no order).
    listed.sort();
    let mut want = arns.clone();
    want.sort();
    assert_eq!(listed, want);
    let got = ct.get_channel().channel(&arns[0]).send().await.unwrap();
    assert_eq!(got.name(), Some("chan-0"));
    assert_eq!(got.destinations()[0].location(), store_arn);

    let err = ct.get_resource_policy().resource_arn(&arns[0]).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), GetResourcePolicyError::ResourcePolicyNotFoundException(_)));
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"123456789012"}},"Action":"cloudtrail-data:PutAuditEvents","Resource":"{}"}}]}}"#,
        arns[0]
    );
    ct.put_resource_policy().resource_arn(&arns[0]).resource_policy(&policy).send().await.unwrap();
    let got = ct.get_resource_policy().resource_arn(&arns[0]).send().await.unwrap();
    assert_eq!(got.resource_policy(), Some(policy.as_str()));

    ct.delete_channel().channel(&arns[0]).send().await.unwrap();
    let err = ct.get_channel().channel(&arns[0]).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), GetChannelError::ChannelNotFoundException(_)));
    srv.stop();
}

#[tokio::test]
async fn event_configuration_and_dashboards() {
    use aws_sdk_cloudtrail::operation::get_dashboard::GetDashboardError;
    use aws_sdk_cloudtrail::operation::put_event_configuration::PutEventConfigurationError;
    use aws_sdk_cloudtrail::types::{ContextKeySelector, MaxEventSize, RequestWidget, Type};
    let srv = Server::start();
    let root = srv.root_config().await;
    let ct = Client::new(&root);
    let store = ct.create_event_data_store().name("dash-rust").termination_protection_enabled(false).send().await;
    let eds = store.unwrap().event_data_store_arn().unwrap().to_string();

    // MaxEventSize round trip; context key selectors refused, typed.
    let got = ct.get_event_configuration().event_data_store(&eds).send().await.unwrap();
    assert_eq!(got.max_event_size(), Some(&MaxEventSize::Standard));
    let put = ct.put_event_configuration().event_data_store(&eds).max_event_size(MaxEventSize::Large).send().await;
    assert_eq!(put.unwrap().max_event_size(), Some(&MaxEventSize::Large));
    let selector = ContextKeySelector::builder().r#type(Type::TagContext).equals("team").build().unwrap();
    let err = ct
        .put_event_configuration()
        .event_data_store(&eds)
        .max_event_size(MaxEventSize::Large)
        .context_key_selectors(selector)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(err.into_service_error(), PutEventConfigurationError::UnsupportedOperationException(_)));

    // A dashboard whose widget reads the store, under the store's policy for CloudTrail.
    let dashboard = format!("arn:aws:cloudtrail:us-east-1:{}:dashboard/ops-rust", srv.account_id);
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"cloudtrail.amazonaws.com"}},"Action":"cloudtrail:StartQuery","Resource":"{eds}","Condition":{{"StringEquals":{{"aws:SourceArn":"{dashboard}"}}}}}}]}}"#
    );
    ct.put_resource_policy().resource_arn(&eds).resource_policy(&policy).send().await.unwrap();
    let id = eds.rsplit('/').next().unwrap();
    let widget = RequestWidget::builder()
        .query_statement(format!("SELECT eventName, count(*) AS n FROM {id} WHERE eventTime > '?' GROUP BY 1"))
        .query_parameters("$StartTime$")
        .view_properties("View", NON_ASCII)
        .build()
        .unwrap();
    let created = ct.create_dashboard().name("ops-rust").widgets(widget).send().await.unwrap();
    assert_eq!(created.dashboard_arn(), Some(dashboard.as_str()));
    assert_eq!(created.widgets()[0].view_properties().unwrap().get("View").map(String::as_str), Some(NON_ASCII));
    let refresh = ct
        .start_dashboard_refresh()
        .dashboard_id("ops-rust")
        .query_parameter_values("$StartTime$", "2020-01-01 00:00:00")
        .send()
        .await
        .unwrap();
    let refresh_id = refresh.refresh_id().unwrap().to_string();
    assert!(refresh_id.bytes().all(|c| c.is_ascii_digit()) && (10..=20).contains(&refresh_id.len()));
    let got = ct.get_dashboard().dashboard_id(&dashboard).send().await.unwrap();
    assert_eq!(got.last_refresh_id(), Some(refresh_id.as_str()));
    let listed = ct.list_dashboards().name_prefix("ops-").send().await.unwrap();
    assert_eq!(listed.dashboards().len(), 1);
    ct.delete_dashboard().dashboard_id("ops-rust").send().await.unwrap();
    let err = ct.get_dashboard().dashboard_id("ops-rust").send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), GetDashboardError::ResourceNotFoundException(_)));
    srv.stop();
}
