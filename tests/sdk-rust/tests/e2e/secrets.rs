//! Secrets Manager (awsJson1.1): create, get, put, describe, list, delete / restore, binary values.

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use rampart_sdk_rust_tests::{all_bytes, code_message, status, Server, NON_ASCII};

const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";

#[tokio::test]
async fn secret_lifecycle_with_string_and_binary_values() {
    let srv = Server::start();
    let sm = Client::new(&srv.root_config().await);
    let tag = Tag::builder().key("owner").value(NON_ASCII).build();
    let created = sm
        .create_secret()
        .name("app/db")
        .description(NON_ASCII)
        .secret_string(NON_ASCII)
        .tags(tag.clone())
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    let prefix = format!("arn:aws:secretsmanager:us-east-1:{}:secret:app/db-", srv.account_id);
    assert!(arn.starts_with(&prefix) && arn.len() == prefix.len() + 6, "{arn}");
    assert_eq!(created.name(), Some("app/db"));
    let v1 = created.version_id().unwrap().to_string();

    let got = sm.get_secret_value().secret_id("app/db").send().await.unwrap();
    assert_eq!(got.secret_string(), Some(NON_ASCII));
    assert!(got.secret_binary().is_none());
    assert_eq!(got.arn(), Some(arn.as_str()));
    assert_eq!(got.version_id(), Some(v1.as_str()));
    assert_eq!(got.version_stages(), ["AWSCURRENT"]);
    assert!(got.created_date().is_some());

    // A binary version (every byte value) becomes AWSCURRENT; the string one AWSPREVIOUS.
    let put = sm.put_secret_value().secret_id(&arn).secret_binary(Blob::new(all_bytes())).send().await.unwrap();
    let v2 = put.version_id().unwrap().to_string();
    assert_eq!(put.version_stages(), ["AWSCURRENT"]);
    let got = sm.get_secret_value().secret_id("app/db").send().await.unwrap();
    assert_eq!(got.secret_binary().unwrap().as_ref(), all_bytes().as_slice());
    assert!(got.secret_string().is_none());
    assert_eq!(got.version_id(), Some(v2.as_str()));
    let prev = sm.get_secret_value().secret_id("app/db").version_stage("AWSPREVIOUS").send().await.unwrap();
    assert_eq!(prev.secret_string(), Some(NON_ASCII));
    let by_id = sm.get_secret_value().secret_id("app/db").version_id(&v1).send().await.unwrap();
    assert_eq!(by_id.secret_string(), Some(NON_ASCII));

    let d = sm.describe_secret().secret_id("app/db").send().await.unwrap();
    assert_eq!(d.arn(), Some(arn.as_str()));
    assert_eq!(d.description(), Some(NON_ASCII));
    assert_eq!(d.tags(), [tag]);
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[&v1], ["AWSPREVIOUS"]);
    assert_eq!(stages[&v2], ["AWSCURRENT"]);
    assert!(d.deleted_date().is_none());

    let listed = sm.list_secrets().send().await.unwrap();
    let listed: Vec<_> = listed.secret_list().iter().map(|s| (s.name(), s.description())).collect();
    assert_eq!(listed, [(Some("app/db"), Some(NON_ASCII))]);

    // Deletion with a recovery window: the secret is kept, but its value cannot be read.
    let del = sm.delete_secret().secret_id("app/db").recovery_window_in_days(7).send().await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let in_days = del.deletion_date().unwrap().secs() - now;
    assert!((7 * 86400 - 120..=7 * 86400 + 120).contains(&in_days), "{in_days}");
    let err = sm.get_secret_value().secret_id("app/db").send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    match err.into_service_error() {
        GetSecretValueError::InvalidRequestException(e) => assert_eq!(
            e.message(),
            Some("You can't perform this operation on the secret because it was marked for deletion.")
        ),
        other => panic!("expected InvalidRequestException, got {other:?}"),
    }
    assert!(sm.describe_secret().secret_id("app/db").send().await.unwrap().deleted_date().is_some());
    sm.restore_secret().secret_id("app/db").send().await.unwrap();
    let got = sm.get_secret_value().secret_id("app/db").send().await.unwrap();
    assert_eq!(got.secret_binary().unwrap().as_ref(), all_bytes().as_slice());

    // Forced deletion purges it at once.
    sm.delete_secret().secret_id(&arn).force_delete_without_recovery(true).send().await.unwrap();
    let err = sm.describe_secret().secret_id(&arn).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DescribeSecretError::ResourceNotFoundException(_)));
    srv.stop();
}

#[tokio::test]
async fn binary_secret_created_as_binary() {
    let srv = Server::start();
    let sm = Client::new(&srv.root_config().await);
    // A lone NUL, and bytes that are not UTF-8.
    for (name, bytes) in [("nul", vec![0u8]), ("high", vec![0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28])] {
        sm.create_secret().name(name).secret_binary(Blob::new(bytes.clone())).send().await.unwrap();
        let got = sm.get_secret_value().secret_id(name).send().await.unwrap();
        assert_eq!(got.secret_binary().unwrap().as_ref(), bytes.as_slice());
        assert!(got.secret_string().is_none());
    }
    // A JSON secret string with escapes and non-ASCII text round-trips byte for byte.
    let json = "{\"user\":\"zoë\",\"password\":\"p\\\"w\\\\d\\n\",\"note\":\"日本語 ✓ \u{1F512}\"}";
    sm.create_secret().name("json").secret_string(json).send().await.unwrap();
    assert_eq!(sm.get_secret_value().secret_id("json").send().await.unwrap().secret_string(), Some(json));
    srv.stop();
}

#[tokio::test]
async fn list_secrets_paginator() {
    let srv = Server::start();
    let sm = Client::new(&srv.root_config().await);
    let mut names: Vec<String> = (0..5).map(|i| format!("page/{i}")).collect();
    for n in &names {
        sm.create_secret().name(n).secret_string("v").send().await.unwrap();
    }
    let mut pages = sm.list_secrets().max_results(2).into_paginator().send();
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        sizes.push(page.secret_list().len());
        seen.extend(page.secret_list().iter().map(|s| s.name().unwrap().to_string()));
    }
    assert_eq!(sizes, [2, 2, 1]);
    seen.sort();
    names.sort();
    assert_eq!(seen, names);
    srv.stop();
}

#[tokio::test]
async fn user_without_policies_is_denied() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let arn = Client::new(&root)
        .create_secret()
        .name("s")
        .secret_string("v")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let user = srv.make_user(&aws_sdk_iam::Client::new(&root), &[]).await;
    let sm = Client::new(&srv.user_config(&user).await);

    let err = sm.get_secret_value().secret_id(&arn).send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!(
            "User: {} is not authorized to perform: secretsmanager:GetSecretValue on resource: {arn} because no \
             identity-based policy allows the secretsmanager:GetSecretValue action",
            user.arn
        )
    );
    let err = sm.list_secrets().send().await.unwrap_err();
    assert_eq!(code_message(&err).0, "AccessDeniedException");
    srv.stop();
}

#[tokio::test]
async fn not_found_is_a_typed_error() {
    let srv = Server::start();
    let sm = Client::new(&srv.root_config().await);
    let err = sm.get_secret_value().secret_id("missing").send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    match err.into_service_error() {
        GetSecretValueError::ResourceNotFoundException(e) => assert_eq!(e.message(), Some(NOT_FOUND)),
        other => panic!("expected ResourceNotFoundException, got {other:?}"),
    }
    let err = sm.describe_secret().secret_id("missing").send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DescribeSecretError::ResourceNotFoundException(_)));
    // A secret with no value yet: not found for the AWSCURRENT label.
    sm.create_secret().name("empty").send().await.unwrap();
    let err = sm.get_secret_value().secret_id("empty").send().await.unwrap_err();
    match err.into_service_error() {
        GetSecretValueError::ResourceNotFoundException(e) => assert_eq!(
            e.message(),
            Some("Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
        ),
        other => panic!("expected ResourceNotFoundException, got {other:?}"),
    }
    srv.stop();
}

#[tokio::test]
async fn stop_replication_promotes_a_replica() {
    use aws_sdk_secretsmanager::operation::stop_replication_to_replica::StopReplicationToReplicaError;
    use aws_sdk_secretsmanager::types::ReplicaRegionType;
    let srv = Server::start();
    let root = srv.root_config().await;
    let sm = Client::new(&root);
    let west = Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&root)
            .region(aws_sdk_secretsmanager::config::Region::new("us-west-2"))
            .build(),
    );
    let name = rampart_sdk_rust_tests::unique("promote");
    let created = sm
        .create_secret()
        .name(&name)
        .secret_string(NON_ASCII)
        .add_replica_regions(ReplicaRegionType::builder().region("us-west-2").build())
        .send()
        .await
        .unwrap();
    let replica = created.arn().unwrap().replace(":us-east-1:", ":us-west-2:");
    let out = west.stop_replication_to_replica().secret_id(&replica).send().await.unwrap();
    assert_eq!(out.arn(), Some(replica.as_str()));
    let d = west.describe_secret().secret_id(&name).send().await.unwrap();
    assert_eq!(d.primary_region(), None);
    assert_eq!(west.get_secret_value().secret_id(&name).send().await.unwrap().secret_string(), Some(NON_ASCII));
    let err = sm.stop_replication_to_replica().secret_id(&name).send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(err.into_service_error(), StopReplicationToReplicaError::InvalidRequestException(_)));

    // ListResourcePolicies is newer than this suite's aws-sdk-secretsmanager: boto3 and the JS SDK
    // cover it.
    srv.stop();
}
