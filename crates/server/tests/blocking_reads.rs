//! Which calls leave the serving threads (`Pipeline::may_block`): writes always; reads by name stay,
//! except KMS's and Secrets Manager's once a KMS custom key store exists (their reads may then wait
//! on an external key store proxy).

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use rampart_server::pipeline::{Pipeline, RawRequest};
use rampart_store::{transact, Sealer, SqliteStore, Store};

const ACCT: &str = "111122223333";

fn pipeline(store: &Arc<dyn Store>) -> Pipeline {
    let sealer = Arc::new(Sealer::new(&Sealer::generate_key()));
    let iam = rampart_iam::Iam::new(store.clone(), sealer.clone());
    iam.bootstrap_account(ACCT, "AKIAROOTROOTROOT0001", "rootsecretrootsecretrootsecretrootsecret").unwrap();
    let kms = rampart_kms::Kms::new(store.clone(), sealer, iam.authorizer());
    Pipeline::new(vec![iam.iam_service(), kms.service()], iam.authorizer(), iam.credentials())
}

fn blocks(p: &Pipeline, target: &str) -> bool {
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
    // Signed (unsigned calls may fetch an identity provider's keys, so they always leave).
    headers.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIA/x"));
    p.may_block(&RawRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"{}",
        remote: SocketAddr::from(([127, 0, 0, 1], 1)),
        secure_transport: false,
    })
}

#[test]
fn kms_reads_leave_the_serving_threads_once_a_custom_key_store_exists() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let p = pipeline(&store);
    assert!(!blocks(&p, "TrentService.Encrypt"));
    assert!(!blocks(&p, "TrentService.Decrypt"));
    assert!(blocks(&p, "TrentService.CreateKey"));
    // A custom key store in the store: a KMS started on it sends its reads to the blocking pool.
    transact(store.as_ref(), |tx| -> Result<(), rampart_store::StoreError> {
        tx.put("kms_custom_key_stores", &format!("{ACCT}/us-east-1/cks-1234567890abcdef0"), b"{}")
    })
    .unwrap();
    let p = pipeline(&store);
    assert!(blocks(&p, "TrentService.Encrypt"));
    assert!(blocks(&p, "TrentService.Decrypt"));
    assert!(blocks(&p, "TrentService.GenerateDataKey"));
    // Other services' reads are not affected.
    assert!(!blocks(&p, "AWSCognitoIdentityProviderService.GetUser"));
}
