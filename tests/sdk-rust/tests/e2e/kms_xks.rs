//! KMS custom key stores: an external key store whose proxy (a few lines of std::net here) answers
//! KMS's signed GetHealthStatus; CloudHSM key stores answered as for a cluster that does not exist.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use aws_sdk_kms::operation::create_custom_key_store::CreateCustomKeyStoreError;
use aws_sdk_kms::operation::describe_custom_key_stores::DescribeCustomKeyStoresError;
use aws_sdk_kms::types::{
    ConnectionStateType, CustomKeyStoreType, XksProxyAuthenticationCredentialType, XksProxyConnectivityType,
};
use aws_sdk_kms::Client;
use rampart_sdk_rust_tests::{status, unique, Server, NON_ASCII};

const ACCESS_KEY_ID: &str = "XKSPROXYRUSTSDK234567ABCD";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

/// An XKS proxy on a free port: requests signed for `kms-xks-proxy` with ACCESS_KEY_ID get a
/// healthy GetHealthStatus answer (the signature itself is verified by the boto3 and JavaScript
/// suites' proxies).
fn start_proxy() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut len, mut auth, mut line) = (0usize, String::new(), String::new());
            reader.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (name, value) = h.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => len = value.trim().parse().unwrap(),
                    "authorization" => auth = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let ok = auth.contains(&format!("Credential={ACCESS_KEY_ID}/"))
                && auth.contains("/kms-xks-proxy/aws4_request")
                && path == "/kms/xks/v1/health";
            let (code, doc) = if ok {
                (
                    "200 OK",
                    r#"{"xksProxyFleetSize":1,"xksProxyVendor":"sdk-rust","xksProxyModel":"std","ekmVendor":"sdk-rust","ekmFleetDetails":[{"id":"ekm-1","model":"software","healthStatus":"ACTIVE"}]}"#,
                )
            } else {
                ("401 Unauthorized", r#"{"errorName":"AuthenticationFailedException"}"#)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {code}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                doc.len()
            );
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn external_key_store_lifecycle_and_cloudhsm_not_found() {
    let proxy = start_proxy();
    let srv = Server::start_with_env(&[("RAMPART_KMS_XKS_ALLOW_HTTP", "1")]);
    let kms = Client::new(&srv.root_config().await);

    let none = kms.describe_custom_key_stores().send().await.unwrap();
    assert!(none.custom_key_stores().is_empty());

    let name = format!("{} {NON_ASCII}", unique("xks"));
    let credential = XksProxyAuthenticationCredentialType::builder()
        .access_key_id(ACCESS_KEY_ID)
        .raw_secret_access_key(SECRET)
        .build()
        .unwrap();
    let id = kms
        .create_custom_key_store()
        .custom_key_store_name(&name)
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_uri_endpoint(&proxy)
        .xks_proxy_uri_path("/kms/xks/v1")
        .xks_proxy_authentication_credential(credential)
        .send()
        .await
        .unwrap()
        .custom_key_store_id()
        .unwrap()
        .to_string();
    assert!(id.starts_with("cks-"), "{id}");

    let listed = kms.describe_custom_key_stores().custom_key_store_id(&id).send().await.unwrap();
    let store = &listed.custom_key_stores()[0];
    assert_eq!(store.custom_key_store_name(), Some(name.as_str()));
    assert_eq!(store.custom_key_store_type(), Some(&CustomKeyStoreType::ExternalKeyStore));
    assert_eq!(store.connection_state(), Some(&ConnectionStateType::Disconnected));
    assert!(store.creation_date().is_some());
    let xks = store.xks_proxy_configuration().unwrap();
    assert_eq!(xks.uri_endpoint(), Some(proxy.as_str()));
    assert_eq!(xks.uri_path(), Some("/kms/xks/v1"));
    assert_eq!(xks.access_key_id(), Some(ACCESS_KEY_ID));
    assert_eq!(xks.connectivity(), Some(&XksProxyConnectivityType::PublicEndpoint));

    kms.connect_custom_key_store().custom_key_store_id(&id).send().await.unwrap();
    let connected = kms.describe_custom_key_stores().custom_key_store_name(&name).send().await.unwrap();
    assert_eq!(connected.custom_key_stores()[0].connection_state(), Some(&ConnectionStateType::Connected));
    kms.disconnect_custom_key_store().custom_key_store_id(&id).send().await.unwrap();
    kms.delete_custom_key_store().custom_key_store_id(&id).send().await.unwrap();
    let err = kms.describe_custom_key_stores().custom_key_store_id(&id).send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(err.into_service_error(), DescribeCustomKeyStoresError::CustomKeyStoreNotFoundException(_)));

    let err = kms
        .create_custom_key_store()
        .custom_key_store_name(unique("hsm"))
        .cloud_hsm_cluster_id("cluster-234abcdefgh")
        .trust_anchor_certificate("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----")
        .key_store_password("kmsPswd1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(err.into_service_error(), CreateCustomKeyStoreError::CloudHsmClusterNotFoundException(_)));
    srv.stop();
}
