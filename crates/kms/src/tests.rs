//! Lifecycle, Rust API and at-rest tests over a real store and the real IAM authorizer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rampart_service::{Caller, CallerKind, RequestContext};
use rampart_store::{Sealer, SqliteStore, Store};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::Kms;

const ACCOUNT: &str = "111122223333";

struct Env {
    kms: Arc<Kms>,
    now: Arc<Mutex<OffsetDateTime>>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("rampart.sqlite")).unwrap());
    let sealer = Arc::new(Sealer::new(&Sealer::generate_key()));
    let iam = rampart_iam::Iam::new(store.clone(), sealer.clone());
    iam.bootstrap_account(ACCOUNT, "AKIAROOTROOTROOTROOT", "secret").unwrap();
    let kms = Kms::new(store.clone(), sealer, iam.authorizer());
    let now = Arc::new(Mutex::new(OffsetDateTime::now_utc()));
    let clock = now.clone();
    kms.set_clock(Arc::new(move || *clock.lock().unwrap()));
    Env { kms, now, store, _dir: dir }
}

fn root() -> RequestContext {
    ctx(Caller::root(ACCOUNT, "AKIAROOTROOTROOTROOT"))
}

fn ctx(caller: Caller) -> RequestContext {
    RequestContext {
        request_id: "r".into(),
        caller,
        region: "us-east-1".into(),
        source_ip: "127.0.0.1".parse().unwrap(),
        user_agent: "test".into(),
        time: OffsetDateTime::now_utc(),
        secure_transport: false,
    }
}

/// One call as the pipeline makes it: plan, decide every check, run on the planned keys.
fn call(e: &Env, c: &RequestContext, op: &str, input: Value) -> Result<Value, rampart_protocol::AwsError> {
    let mut decide = |checks: Vec<rampart_service::AuthzCheck>| {
        checks.into_iter().try_for_each(|check| e.kms.authorizer.check(c, "kms", check))
    };
    match e.kms.service().call(c, op, &rampart_service::Input::Json(input), &mut decide)? {
        rampart_service::Output::Json(v) => Ok(v),
        text @ rampart_service::Output::JsonText(_) => Ok(text.json_value()),
        rampart_service::Output::Xml(_) => panic!("KMS answers JSON"),
    }
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
}

impl Env {
    fn advance(&self, d: Duration) {
        *self.now.lock().unwrap() += d;
    }
}

#[test]
fn deletion_window_end_deletes_key_material_and_aliases() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    call(&e, &r, "CreateAlias", json!({"AliasName": "alias/doomed", "TargetKeyId": key})).unwrap();
    let out = call(&e, &r, "ScheduleKeyDeletion", json!({"KeyId": key, "PendingWindowInDays": 7})).unwrap();
    assert_eq!(out["KeyState"], "PendingDeletion");
    e.advance(Duration::days(6) + Duration::hours(23));
    let md = call(&e, &r, "DescribeKey", json!({"KeyId": key})).unwrap();
    assert_eq!(md["KeyMetadata"]["KeyState"], "PendingDeletion");
    e.advance(Duration::hours(2));
    let err = call(&e, &r, "DescribeKey", json!({"KeyId": key})).unwrap_err();
    assert_eq!(err.code, "NotFoundException");
    assert!(e.store.scan(crate::model::KEYS, "", None, 0).unwrap().is_empty(), "the record and its material are gone");
    assert!(e.store.scan(crate::model::ALIASES, "", None, 0).unwrap().is_empty());
    let list = call(&e, &r, "ListKeys", json!({})).unwrap();
    assert_eq!(list["Keys"], json!([]));
}

#[test]
fn background_sweep_deletes_expired_keys() {
    let e = env();
    let r = root();
    let a = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let _b = call(&e, &r, "CreateKey", json!({})).unwrap();
    call(&e, &r, "ScheduleKeyDeletion", json!({"KeyId": a, "PendingWindowInDays": 30})).unwrap();
    assert_eq!(e.kms.sweep().unwrap(), 0);
    e.advance(Duration::days(31));
    assert_eq!(e.kms.sweep().unwrap(), 1);
    assert_eq!(e.store.scan(crate::model::KEYS, "", None, 0).unwrap().len(), 1);
}

#[test]
fn cancelled_deletion_survives_the_window() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    call(&e, &r, "ScheduleKeyDeletion", json!({"KeyId": key, "PendingWindowInDays": 7})).unwrap();
    call(&e, &r, "CancelKeyDeletion", json!({"KeyId": key})).unwrap();
    e.advance(Duration::days(40));
    let md = call(&e, &r, "DescribeKey", json!({"KeyId": key})).unwrap();
    assert_eq!(md["KeyMetadata"]["KeyState"], "Disabled");
}

#[test]
fn automatic_rotation_keeps_old_versions() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let old = call(&e, &r, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"v0")})).unwrap();
    call(&e, &r, "EnableKeyRotation", json!({"KeyId": key, "RotationPeriodInDays": 90})).unwrap();
    e.advance(Duration::days(89));
    let rot = call(&e, &r, "ListKeyRotations", json!({"KeyId": key})).unwrap();
    assert_eq!(rot["Rotations"], json!([]));
    e.advance(Duration::days(2));
    let rot = call(&e, &r, "ListKeyRotations", json!({"KeyId": key})).unwrap();
    assert_eq!(rot["Rotations"].as_array().unwrap().len(), 1);
    assert_eq!(rot["Rotations"][0]["RotationType"], "AUTOMATIC");
    let new = call(&e, &r, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"v1")})).unwrap();
    assert_ne!(unb64(&old["CiphertextBlob"])[..60], unb64(&new["CiphertextBlob"])[..60]);
    for (blob, pt) in [(&old, b"v0"), (&new, b"v1")] {
        let d = call(&e, &r, "Decrypt", json!({"CiphertextBlob": blob["CiphertextBlob"]})).unwrap();
        assert_eq!(unb64(&d["Plaintext"]), pt);
    }
    let status = call(&e, &r, "GetKeyRotationStatus", json!({"KeyId": key})).unwrap();
    let next = status["NextRotationDate"].as_f64().unwrap();
    let now = e.kms.now().unix_timestamp() as f64;
    assert!(next > now && next < now + 90.0 * 86400.0);
}

fn user(name: &str) -> Caller {
    Caller {
        account_id: ACCOUNT.into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
        principal_id: "AIDAEXAMPLE".into(),
        access_key_id: "AKIAUSER".into(),
        kind: CallerKind::IamUser { user_name: name.into(), user_id: "AIDAEXAMPLE".into() },
        session: None,
    }
}

#[test]
fn envelope_api_with_the_aws_managed_key() {
    let e = env();
    let r = root();
    let via = Some("secretsmanager.us-east-1.amazonaws.com");
    let ec = BTreeMap::from([("SecretARN".to_string(), "arn:aws:secretsmanager:us-east-1:1:secret:x".to_string())]);
    // Any principal of the account may use the managed key through the service, without IAM policies.
    let alice = ctx(user("alice"));
    let dk = e.kms.generate_data_key(&alice, "alias/aws/secretsmanager", &ec, via).unwrap();
    assert_eq!(dk.plaintext.len(), 32);
    let arn = e.kms.aws_managed_key(ACCOUNT, "us-east-1", "secretsmanager").unwrap();
    assert_eq!(dk.key_arn, arn, "created once, found afterwards");
    let opened = e.kms.decrypt(&alice, &dk.ciphertext_blob, &ec, via).unwrap();
    assert_eq!(*opened.plaintext, *dk.plaintext);
    assert_eq!(opened.key_arn, arn);
    // Directly (not via the service), the managed key's policy does not allow it.
    let err = e.kms.decrypt(&alice, &dk.ciphertext_blob, &ec, None).unwrap_err();
    assert_eq!(err.code, "AccessDeniedException");
    let err = e.kms.generate_data_key(&alice, &arn, &ec, Some("s3.us-east-1.amazonaws.com")).unwrap_err();
    assert_eq!(err.code, "AccessDeniedException");
    // Wrong context → InvalidCiphertextException.
    let err = e.kms.decrypt(&alice, &dk.ciphertext_blob, &BTreeMap::new(), via).unwrap_err();
    assert_eq!(err.code, "InvalidCiphertextException");
    // The managed key is AWS's: described as such, and customers cannot delete it.
    let md = call(&e, &r, "DescribeKey", json!({"KeyId": "alias/aws/secretsmanager"})).unwrap();
    assert_eq!(md["KeyMetadata"]["KeyManager"], "AWS");
    let err = call(&e, &r, "ScheduleKeyDeletion", json!({"KeyId": arn})).unwrap_err();
    assert_eq!(err.code, "AccessDeniedException");
    // A customer key with a policy requiring kms:ViaService.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringNotEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}}]});
    let key = call(&e, &r, "CreateKey", json!({"Policy": policy.to_string()})).unwrap();
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap();
    let enc = e.kms.encrypt(&r, key_arn, b"hello", &ec, None).unwrap();
    assert!(e.kms.decrypt(&r, &enc.ciphertext_blob, &ec, via).is_ok());
    assert_eq!(e.kms.decrypt(&r, &enc.ciphertext_blob, &ec, None).unwrap_err().code, "AccessDeniedException");
    assert_eq!(e.kms.key_arn(&r, key_arn).unwrap(), key_arn);
    assert_eq!(e.kms.key_arn(&r, "alias/nope").unwrap_err().code, "NotFoundException");
}

#[test]
fn no_key_material_in_the_data_directory() {
    let e = env();
    let r = root();
    let mut materials: Vec<Vec<u8>> = Vec::new();
    let mut ids = Vec::new();
    for (spec, usage) in [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("ECC_SECG_P256K1", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ] {
        let out = call(&e, &r, "CreateKey", json!({"KeySpec": spec, "KeyUsage": usage})).unwrap();
        ids.push(out["KeyMetadata"]["KeyId"].as_str().unwrap().to_string());
    }
    call(&e, &r, "RotateKeyOnDemand", json!({"KeyId": ids[0]})).unwrap();
    for id in &ids {
        let k = e.kms.load(ACCOUNT, "us-east-1", id).unwrap().unwrap();
        for v in 0..=k.current_version() {
            materials.push(k.material(v).unwrap().to_vec());
        }
    }
    assert_eq!(materials.len(), 5);
    drop(e.kms);
    let mut files = 0;
    for entry in std::fs::read_dir(e._dir.path()).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        files += 1;
        for m in &materials {
            // Any 16-byte window of the material (raw or hex) would betray it.
            let window = &m[m.len() / 2..m.len() / 2 + 16];
            assert!(!data.windows(16).any(|w| w == window), "raw key material on disk");
            let hex = hex::encode(window);
            assert!(!data.windows(hex.len()).any(|w| w == hex.as_bytes()), "hex key material on disk");
            let b = b64(m);
            assert!(!data.windows(24).any(|w| w == &b.as_bytes()[8..32]), "base64 key material on disk");
        }
    }
    assert!(files >= 1);
}

#[test]
fn grants_for_roles_and_retire_by_retiring_principal() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/app");
    let session = Caller {
        account_id: ACCOUNT.into(),
        arn: format!("arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"),
        principal_id: "AROAEXAMPLE:s1".into(),
        access_key_id: "ASIAEXAMPLE".into(),
        kind: CallerKind::AssumedRole {
            role_name: "app".into(),
            role_arn: role_arn.clone(),
            role_id: "AROAEXAMPLE".into(),
            session_name: "s1".into(),
        },
        session: Some(Default::default()),
    };
    let s = ctx(session);
    assert_eq!(
        call(&e, &s, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")})).unwrap_err().code,
        "AccessDeniedException"
    );
    let g = call(
        &e,
        &r,
        "CreateGrant",
        json!({"KeyId": key, "GranteePrincipal": role_arn, "RetiringPrincipal": role_arn, "Operations": ["Encrypt"]}),
    )
    .unwrap();
    call(&e, &s, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")})).unwrap();
    call(&e, &s, "RetireGrant", json!({"GrantToken": g["GrantToken"]})).unwrap();
    assert_eq!(
        call(&e, &s, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")})).unwrap_err().code,
        "AccessDeniedException"
    );
}

fn err(e: &Env, c: &RequestContext, op: &str, input: Value) -> (String, String) {
    let err = call(e, c, op, input).unwrap_err();
    (err.code.to_string(), err.message.to_string())
}

#[test]
fn alias_names_are_checked_in_aws_order() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let create = |name: &str| err(&e, &r, "CreateAlias", json!({"AliasName": name, "TargetKeyId": key}));
    // The model's pattern first, naming the value.
    assert_eq!(
        create("alias/my-alias!"),
        (
            "ValidationException".into(),
            "1 validation error detected: Value 'alias/my-alias!' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$".into()
        )
    );
    // Then the service's rules (the prefix message as recorded from AWS).
    const PREFIX: &str = "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html";
    assert_eq!(create("wrongprefix/my-alias"), ("ValidationException".into(), PREFIX.into()));
    assert_eq!(create("alias/aws/ebs"), ("NotAuthorizedException".into(), String::new()));
    assert_eq!(
        create("alias/my:alias"),
        ("ValidationException".into(), "alias/my:alias contains invalid characters for an alias".into())
    );
    call(&e, &r, "CreateAlias", json!({"AliasName": "alias/ok_/-", "TargetKeyId": key})).unwrap();
    assert_eq!(
        err(&e, &r, "CreateAlias", json!({"AliasName": "alias/other", "TargetKeyId": "alias/ok_/-"})),
        ("ValidationException".into(), "Aliases must refer to keys. Not aliases".into())
    );
    assert_eq!(
        err(&e, &r, "DeleteAlias", json!({"AliasName": "wrongprefix/my-alias"})),
        ("ValidationException".into(), PREFIX.into())
    );
    assert_eq!(err(&e, &r, "DeleteAlias", json!({"AliasName": "alias/missing"})).0, "NotFoundException");
}

#[test]
fn key_only_operations_refuse_aliases() {
    let e = env();
    let r = root();
    let md = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"].clone();
    let key = md["KeyId"].as_str().unwrap();
    call(&e, &r, "CreateAlias", json!({"AliasName": "alias/mine", "TargetKeyId": key})).unwrap();
    let alias_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:alias/mine");
    for (op, extra) in [
        ("EnableKeyRotation", json!({})),
        ("GetKeyPolicy", json!({"PolicyName": "default"})),
        ("PutKeyPolicy", json!({"Policy": crate::default_key_policy(ACCOUNT)})),
        ("TagResource", json!({"Tags": [{"TagKey": "a", "TagValue": "b"}]})),
        ("ScheduleKeyDeletion", json!({})),
        ("DisableKey", json!({})),
    ] {
        for id in ["alias/mine", alias_arn.as_str()] {
            let mut input = extra.clone();
            input["KeyId"] = json!(id);
            assert_eq!(err(&e, &r, op, input), ("NotFoundException".into(), format!("Invalid keyId '{id}'")), "{op}");
        }
    }
    // Operations documented to take aliases still do.
    assert_eq!(call(&e, &r, "DescribeKey", json!({"KeyId": "alias/mine"})).unwrap()["KeyMetadata"]["KeyId"], key);
    call(&e, &r, "Encrypt", json!({"KeyId": alias_arn, "Plaintext": b64(b"x")})).unwrap();
    // Not a key ID at all: AWS's wording, the value quoted (as recorded from AWS: "Invalid keyId
    // 'fake-key-id'").
    assert_eq!(
        err(&e, &r, "ListResourceTags", json!({"KeyId": "unknown"})),
        ("NotFoundException".into(), "Invalid keyId 'unknown'".into())
    );
}

#[test]
fn signing_algorithm_outside_the_enum_is_a_validation_error() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})).unwrap()
        ["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, msg) = err(&e, &r, "Sign", json!({"KeyId": key, "Message": b64(b"m"), "SigningAlgorithm": "INVALID"}));
    assert_eq!(code, "ValidationException");
    assert!(msg.starts_with("1 validation error detected: Value 'INVALID' at 'signingAlgorithm'"), "{msg}");
    // A real algorithm the key does not support is InvalidKeyUsageException.
    let (code, _) =
        err(&e, &r, "Sign", json!({"KeyId": key, "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_384"}));
    assert_eq!(code, "InvalidKeyUsageException");
    let (code, msg) = err(
        &e,
        &r,
        "Verify",
        json!({"KeyId": key, "Message": b64(b"m"), "Signature": b64(b"s"), "SigningAlgorithm": "ECDSA_SHA_256", "MessageType": "HASHED"}),
    );
    assert_eq!(code, "ValidationException");
    assert!(msg.contains("Value 'HASHED' at 'messageType'"), "{msg}");
    let (code, msg) = err(&e, &r, "CreateKey", json!({"KeySpec": "NotSupportedKeySpec"}));
    assert_eq!(code, "ValidationException");
    assert!(msg.contains("Value 'NotSupportedKeySpec' at 'keySpec'"), "{msg}");
}

#[test]
fn key_states_follow_aws_table_for_pending_deletion() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    call(&e, &r, "ScheduleKeyDeletion", json!({"KeyId": key, "PendingWindowInDays": 7})).unwrap();
    // Allowed while pending deletion (AWS's "Key states" table).
    call(&e, &r, "PutKeyPolicy", json!({"KeyId": key, "Policy": crate::default_key_policy(ACCOUNT)})).unwrap();
    call(&e, &r, "GetKeyPolicy", json!({"KeyId": key})).unwrap();
    assert_eq!(call(&e, &r, "GetKeyRotationStatus", json!({"KeyId": key})).unwrap()["KeyRotationEnabled"], false);
    call(&e, &r, "ListResourceTags", json!({"KeyId": key})).unwrap();
    // Refused with KMSInvalidStateException "<arn> is pending deletion.".
    let arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{key}");
    for (op, extra) in [
        ("TagResource", json!({"Tags": [{"TagKey": "a", "TagValue": "b"}]})),
        ("UntagResource", json!({"TagKeys": ["a"]})),
        ("UpdateKeyDescription", json!({"Description": "d"})),
        ("EnableKey", json!({})),
        ("EnableKeyRotation", json!({})),
    ] {
        let mut input = extra;
        input["KeyId"] = json!(key);
        assert_eq!(
            err(&e, &r, op, input),
            ("KMSInvalidStateException".into(), format!("{arn} is pending deletion.")),
            "{op}"
        );
    }
}

fn in_region(region: &str) -> RequestContext {
    let mut c = root();
    c.region = region.into();
    c
}

#[test]
fn multi_region_keys_replicate_rotate_and_move_their_primary() {
    let e = env();
    let east = root();
    let west = in_region("us-west-2");
    let md = call(&e, &east, "CreateKey", json!({"MultiRegion": true})).unwrap()["KeyMetadata"].clone();
    let id = md["KeyId"].as_str().unwrap().to_string();
    assert!(id.starts_with("mrk-") && id.len() == 36, "{id}");
    assert_eq!(md["MultiRegion"], true);
    assert_eq!(md["MultiRegionConfiguration"]["MultiRegionKeyType"], "PRIMARY");
    assert_eq!(md["MultiRegionConfiguration"]["ReplicaKeys"], json!([]));
    let plain = call(&e, &east, "CreateKey", json!({})).unwrap()["KeyMetadata"].clone();
    assert_eq!(plain["MultiRegion"], false);
    assert!(plain.get("MultiRegionConfiguration").is_none());
    let blob =
        call(&e, &east, "Encrypt", json!({"KeyId": id, "Plaintext": b64(b"v0")})).unwrap()["CiphertextBlob"].clone();

    // Not there until replicated; then the same key ID decrypts the primary's ciphertexts.
    assert_eq!(err(&e, &west, "DescribeKey", json!({"KeyId": id})).0, "NotFoundException");
    let out = call(
        &e,
        &east,
        "ReplicateKey",
        json!({"KeyId": id, "ReplicaRegion": "us-west-2", "Description": "west", "Tags": [{"TagKey": "t", "TagValue": "v"}]}),
    )
    .unwrap();
    let rmd = &out["ReplicaKeyMetadata"];
    assert_eq!(rmd["Arn"], format!("arn:aws:kms:us-west-2:{ACCOUNT}:key/{id}"));
    assert_eq!(rmd["Description"], "west");
    assert_eq!(rmd["MultiRegionConfiguration"]["MultiRegionKeyType"], "REPLICA");
    assert_eq!(rmd["MultiRegionConfiguration"]["PrimaryKey"]["Region"], "us-east-1");
    assert_eq!(out["ReplicaTags"], json!([{"TagKey": "t", "TagValue": "v"}]));
    let d = call(&e, &west, "Decrypt", json!({"CiphertextBlob": blob})).unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"v0");
    assert_eq!(d["KeyId"], format!("arn:aws:kms:us-west-2:{ACCOUNT}:key/{id}"));
    let primary = call(&e, &east, "DescribeKey", json!({"KeyId": id})).unwrap()["KeyMetadata"].clone();
    assert_eq!(primary["MultiRegionConfiguration"]["ReplicaKeys"][0]["Region"], "us-west-2");
    // One replica per Region; only a primary replicates; only multi-Region keys do.
    let again = json!({"KeyId": id, "ReplicaRegion": "us-west-2"});
    assert_eq!(err(&e, &east, "ReplicateKey", again).0, "AlreadyExistsException");
    let from_replica = json!({"KeyId": id, "ReplicaRegion": "eu-west-1"});
    assert_eq!(err(&e, &west, "ReplicateKey", from_replica).0, "UnsupportedOperationException");
    let not_mrk = json!({"KeyId": plain["KeyId"], "ReplicaRegion": "us-west-2"});
    assert_eq!(err(&e, &east, "ReplicateKey", not_mrk).0, "UnsupportedOperationException");
    let bad_region = json!({"KeyId": id, "ReplicaRegion": "moon"});
    assert_eq!(err(&e, &east, "ReplicateKey", bad_region).0, "ValidationException");

    // Rotation is the primary's and reaches every replica.
    assert_eq!(err(&e, &west, "RotateKeyOnDemand", json!({"KeyId": id})).0, "UnsupportedOperationException");
    call(&e, &east, "RotateKeyOnDemand", json!({"KeyId": id})).unwrap();
    let blob1 =
        call(&e, &east, "Encrypt", json!({"KeyId": id, "Plaintext": b64(b"v1")})).unwrap()["CiphertextBlob"].clone();
    assert_eq!(unb64(&call(&e, &west, "Decrypt", json!({"CiphertextBlob": blob1})).unwrap()["Plaintext"]), b"v1");
    call(&e, &east, "EnableKeyRotation", json!({"KeyId": id, "RotationPeriodInDays": 90})).unwrap();
    assert_eq!(call(&e, &west, "GetKeyRotationStatus", json!({"KeyId": id})).unwrap()["KeyRotationEnabled"], true);

    // The primary moves to us-west-2.
    call(&e, &east, "UpdatePrimaryRegion", json!({"KeyId": id, "PrimaryRegion": "us-west-2"})).unwrap();
    let w = call(&e, &west, "DescribeKey", json!({"KeyId": id})).unwrap()["KeyMetadata"].clone();
    assert_eq!(w["MultiRegionConfiguration"]["MultiRegionKeyType"], "PRIMARY");
    assert_eq!(w["MultiRegionConfiguration"]["ReplicaKeys"][0]["Region"], "us-east-1");

    // A primary with replicas waits for them (PendingReplicaDeletion), then goes.
    call(&e, &west, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7})).unwrap();
    let w = call(&e, &west, "DescribeKey", json!({"KeyId": id})).unwrap()["KeyMetadata"].clone();
    assert_eq!(w["KeyState"], "PendingReplicaDeletion");
    e.advance(Duration::days(8));
    assert_eq!(
        call(&e, &west, "DescribeKey", json!({"KeyId": id})).unwrap()["KeyMetadata"]["KeyState"],
        "PendingReplicaDeletion"
    );
    call(&e, &east, "ScheduleKeyDeletion", json!({"KeyId": id, "PendingWindowInDays": 7})).unwrap();
    e.advance(Duration::days(8));
    assert_eq!(err(&e, &east, "DescribeKey", json!({"KeyId": id})).0, "NotFoundException");
    assert_eq!(err(&e, &west, "DescribeKey", json!({"KeyId": id})).0, "NotFoundException");
}

/// The opened-key cache follows every change of the key record on the very next call.
#[test]
fn cached_keys_follow_state_rotation_and_policy_changes() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let encrypt = |c: &RequestContext| call(&e, c, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"secret")}));
    let decrypt = |c: &RequestContext, blob: &Value| call(&e, c, "Decrypt", json!({"CiphertextBlob": blob}));
    let old = encrypt(&r).unwrap()["CiphertextBlob"].clone();

    call(&e, &r, "DisableKey", json!({"KeyId": key})).unwrap();
    assert_eq!(encrypt(&r).unwrap_err().code, "DisabledException");
    call(&e, &r, "EnableKey", json!({"KeyId": key})).unwrap();

    call(&e, &r, "RotateKeyOnDemand", json!({"KeyId": key})).unwrap();
    let new = encrypt(&r).unwrap()["CiphertextBlob"].clone();
    let version = |blob: &Value| crate::crypto::parse_blob(&unb64(blob)).unwrap().0.version;
    assert_ne!(version(&old), version(&new));
    for blob in [&old, &new] {
        assert_eq!(unb64(&decrypt(&r, blob).unwrap()["Plaintext"]), b"secret");
    }

    // A user allowed only by the key policy: allowed, then denied as soon as the policy changes.
    let alice = ctx(user("alice"));
    let policy = |principal: &str| {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "kms:Encrypt", "Resource": "*"}
        ]})
        .to_string()
    };
    let put = |p: String| call(&e, &r, "PutKeyPolicy", json!({"KeyId": key, "PolicyName": "default", "Policy": p}));
    put(policy(&format!("arn:aws:iam::{ACCOUNT}:user/alice"))).unwrap();
    encrypt(&alice).unwrap();
    put(policy(&format!("arn:aws:iam::{ACCOUNT}:user/bob"))).unwrap();
    assert_eq!(encrypt(&alice).unwrap_err().code, "AccessDeniedException");

    call(&e, &r, "ScheduleKeyDeletion", json!({"KeyId": key, "PendingWindowInDays": 7})).unwrap();
    assert_eq!(encrypt(&r).unwrap_err().code, "KMSInvalidStateException");
}

#[test]
fn bare_key_ids_arns_and_aliases_name_the_same_key() {
    let e = env();
    let c = root();
    let meta = call(&e, &c, "CreateKey", json!({})).unwrap()["KeyMetadata"].clone();
    let (id, arn) = (meta["KeyId"].as_str().unwrap(), meta["Arn"].as_str().unwrap());
    call(&e, &c, "CreateAlias", json!({"AliasName": "alias/same", "TargetKeyId": id})).unwrap();
    for name in [id, arn, "alias/same"] {
        let out = call(&e, &c, "Encrypt", json!({"KeyId": name, "Plaintext": b64(b"x")})).unwrap();
        assert_eq!(out["KeyId"], json!(arn), "{name}");
    }
    // A bare key ID names a key of the caller's account in the request's Region only.
    let missing = "00000000-0000-0000-0000-000000000000";
    let (code, msg) = err(&e, &c, "DescribeKey", json!({"KeyId": missing}));
    assert_eq!(code, "NotFoundException");
    assert_eq!(msg, format!("Key 'arn:aws:kms:us-east-1:{ACCOUNT}:key/{missing}' does not exist"));
    let (code, _) = err(&e, &in_region("eu-west-1"), "DescribeKey", json!({"KeyId": id}));
    assert_eq!(code, "NotFoundException");
}

#[test]
fn key_store_keys_are_account_region_and_key_id() {
    assert_eq!(crate::model::key_store_key(ACCOUNT, "us-east-1", "mrk-0123"), format!("{ACCOUNT}/us-east-1/mrk-0123"));
}

#[test]
fn encryption_context_condition_keys() {
    use rampart_service::ContextValue;
    let ec: BTreeMap<String, String> = [("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())].into();
    let keys = crate::core::context_keys("kms:", &ec);
    assert_eq!(
        keys,
        vec![
            ("kms:EncryptionContext:a".into(), ContextValue::String("1".into())),
            ("kms:EncryptionContext:b".into(), ContextValue::String("2".into())),
            ("kms:EncryptionContextKeys".into(), ContextValue::List(vec!["a".into(), "b".into()])),
        ]
    );
    assert!(crate::core::context_keys("kms:", &BTreeMap::new()).is_empty());
}

#[test]
fn direct_answers_are_the_bytes_a_value_gives() {
    use crate::ops::Answer;
    use base64::Engine;
    let cases: &[&[(&str, &str)]] = &[
        &[],
        &[("A", "plain"), ("B", "")],
        &[("EncryptionAlgorithm", "SYMMETRIC_DEFAULT"), ("KeyId", "arn:aws:kms:us-east-1:111122223333:key/k")],
        &[("Q", "quote\" back\\slash"), ("U", "caf\u{e9} \u{1}\n\t")],
    ];
    for members in cases {
        let mut a = Answer::new();
        let mut v = serde_json::Map::new();
        for (k, val) in members.iter() {
            a.str(k, val);
            v.insert(k.to_string(), json!(val));
        }
        a.b64("Z", b"\x00\xffbytes");
        v.insert("Z".into(), json!(base64::engine::general_purpose::STANDARD.encode(b"\x00\xffbytes")));
        match a.finish() {
            rampart_service::Output::JsonText(t) => assert_eq!(t, Value::Object(v).to_string()),
            o => panic!("{o:?}"),
        }
    }
}

#[test]
fn plaintext_too_long_for_an_rsa_destination_is_a_validation_error() {
    let e = env();
    let c = root();
    let sym = call(&e, &c, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let rsa = call(&e, &c, "CreateKey", json!({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"})).unwrap()
        ["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    // RSAES_OAEP_SHA_256 with a 2048-bit key takes at most 190 bytes.
    let long = b64(&[7u8; 191]);
    let (code, msg) =
        err(&e, &c, "Encrypt", json!({"KeyId": rsa, "Plaintext": long, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}));
    assert_eq!(code, "ValidationException", "{msg}");
    let blob = call(&e, &c, "Encrypt", json!({"KeyId": sym, "Plaintext": long})).unwrap()["CiphertextBlob"].clone();
    let input = json!({"CiphertextBlob": blob, "DestinationKeyId": rsa, "DestinationEncryptionAlgorithm": "RSAES_OAEP_SHA_256"});
    let (code, msg) = err(&e, &c, "ReEncrypt", input);
    assert_eq!(code, "ValidationException", "{msg}");
    assert!(msg.contains("cannot encrypt data larger than 190 bytes"), "{msg}");
    // At the limit both work.
    let ok = b64(&[7u8; 190]);
    call(&e, &c, "Encrypt", json!({"KeyId": rsa, "Plaintext": ok, "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}))
        .unwrap();
}

/// A huge `Tags` list is refused by its count before anything else reads it, and before
/// authorization: a user without policies gets the tag-limit error, not a slow AccessDenied.
#[test]
fn tag_lists_over_the_limit_are_refused_before_authorization() {
    let e = env();
    let alice = ctx(user("alice"));
    let tags = |n: usize| -> Value {
        Value::Array((0..n).map(|i| json!({"TagKey": format!("k{i}"), "TagValue": "v"})).collect())
    };
    let huge = tags(40_000);
    let (code, msg) = err(&e, &alice, "CreateKey", json!({"Tags": huge}));
    assert_eq!((code.as_str(), msg.as_str()), ("TagException", "Too many tags"));
    let key = call(&e, &root(), "CreateKey", json!({"Tags": tags(50)})).unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let (code, _) = err(&e, &alice, "TagResource", json!({"KeyId": key_id, "Tags": huge}));
    assert_eq!(code, "TagException");
    let (code, _) = err(&e, &root(), "TagResource", json!({"KeyId": key_id, "Tags": tags(51)}));
    assert_eq!(code, "TagException");
    // Within the limit, the user is refused by authorization as before.
    let (code, _) = err(&e, &alice, "TagResource", json!({"KeyId": key_id, "Tags": tags(3)}));
    assert_eq!(code, "AccessDeniedException");
    // Members are still checked after the count: a reserved key in a short list.
    let (code, _) = err(&e, &root(), "CreateKey", json!({"Tags": [{"TagKey": "aws:x", "TagValue": "v"}]}));
    assert_eq!(code, "TagException");
}

/// Every operation is listed once in the one table, which is what the service advertises; an
/// operation outside it answers UnknownOperationException (as the pipeline does), planned or called.
#[test]
fn operations_are_listed_once_and_others_are_unknown() {
    let names = crate::OPERATIONS.names();
    assert_eq!(names.len(), 56, "{names:?}");
    let mut deduped = names.clone();
    deduped.dedup();
    assert_eq!(deduped, names);
    let e = env();
    let svc = e.kms.service();
    for n in &names {
        assert!(svc.has_operation(n), "{n}");
    }
    // Every operation of KMS's model is implemented: a name outside it is unknown.
    assert!(!svc.has_operation("CreateKeyStoreOfNoSuchKind"));
    let input = rampart_service::Input::Json(json!({}));
    let plan = svc.plan(&root(), "CreateKeyStoreOfNoSuchKind", &input).unwrap_err();
    assert_eq!(plan.code, "UnknownOperationException");
    let (code, _) = err(&e, &root(), "CreateKeyStoreOfNoSuchKind", json!({}));
    assert_eq!(code, "UnknownOperationException");
}

/// RetireGrant is decided by the grant, not by policies: its plan has no checks.
#[test]
fn retire_grant_plan_needs_no_policy_check() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let grant = call(
        &e,
        &r,
        "CreateGrant",
        json!({"KeyId": key, "GranteePrincipal": format!("arn:aws:iam::{ACCOUNT}:user/bob"), "Operations": ["Decrypt"]}),
    )
    .unwrap();
    let input = rampart_service::Input::Json(json!({"KeyId": key, "GrantId": grant["GrantId"]}));
    let plan = e.kms.service().plan(&r, "RetireGrant", &input).unwrap();
    assert_eq!(plan, rampart_service::AuthzPlan::AlwaysAllowed);
}

// -- imported key material, shared secrets, last usage ----------------------------------------

/// The client side of RSAES_OAEP_SHA_256 wrapping: GetParametersForImport, wrap, ImportKeyMaterial.
fn import(
    e: &Env,
    r: &RequestContext,
    key: &str,
    material: &[u8],
    extra: Value,
) -> Result<Value, rampart_protocol::AwsError> {
    use rsa::pkcs8::DecodePublicKey;
    let p = call(
        e,
        r,
        "GetParametersForImport",
        json!({"KeyId": key, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
    )?;
    let public = rsa::RsaPublicKey::from_public_key_der(&unb64(&p["PublicKey"])).unwrap();
    let wrapped = public.encrypt(&mut rand_core::OsRng, rsa::Oaep::new::<sha2::Sha256>(), material).unwrap();
    let mut input = json!({"KeyId": key, "ImportToken": p["ImportToken"], "EncryptedKeyMaterial": b64(&wrapped)});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    call(e, r, "ImportKeyMaterial", input)
}

#[test]
fn imported_material_expires_at_valid_to_and_comes_back_on_reimport() {
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({"Origin": "EXTERNAL"})).unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let material = [7u8; 32];
    let valid_to = (e.kms.now() + Duration::days(2)).unix_timestamp();
    import(&e, &r, &key, &material, json!({"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": valid_to})).unwrap();
    let md = call(&e, &r, "DescribeKey", json!({"KeyId": key})).unwrap()["KeyMetadata"].clone();
    assert_eq!(md["KeyState"], "Enabled");
    assert_eq!(md["ValidTo"], json!(valid_to as f64));
    let blob =
        call(&e, &r, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"data")})).unwrap()["CiphertextBlob"].clone();
    e.advance(Duration::days(1));
    call(&e, &r, "Decrypt", json!({"CiphertextBlob": blob})).unwrap();
    e.advance(Duration::days(1) + Duration::seconds(1));
    let err = call(&e, &r, "Decrypt", json!({"CiphertextBlob": blob})).unwrap_err();
    assert_eq!(err.code, "KMSInvalidStateException");
    let md = call(&e, &r, "DescribeKey", json!({"KeyId": key})).unwrap()["KeyMetadata"].clone();
    assert_eq!(md["KeyState"], "PendingImport");
    assert!(md.get("ValidTo").is_none());
    // The sealed material is gone from the store, not just hidden.
    let raw = e.store.scan(crate::model::KEYS, "", None, 0).unwrap();
    let rec: crate::model::KeyRec = serde_json::from_slice(&raw[0].1).unwrap();
    assert!(rec.versions.iter().all(|v| v.sealed.is_empty()));
    assert_eq!(
        import(&e, &r, &key, &[8u8; 32], json!({"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})).unwrap_err().code,
        "IncorrectKeyMaterialException"
    );
    import(&e, &r, &key, &material, json!({"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})).unwrap();
    let out = call(&e, &r, "Decrypt", json!({"CiphertextBlob": blob})).unwrap();
    assert_eq!(unb64(&out["Plaintext"]), b"data");
}

#[test]
fn import_token_is_valid_for_24_hours() {
    use rsa::pkcs8::DecodePublicKey;
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({"Origin": "EXTERNAL"})).unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let p = call(
        &e,
        &r,
        "GetParametersForImport",
        json!({"KeyId": key, "WrappingAlgorithm": "RSAES_OAEP_SHA_1", "WrappingKeySpec": "RSA_2048"}),
    )
    .unwrap();
    let public = rsa::RsaPublicKey::from_public_key_der(&unb64(&p["PublicKey"])).unwrap();
    let wrapped = public.encrypt(&mut rand_core::OsRng, rsa::Oaep::new::<sha1::Sha1>(), &[1u8; 32]).unwrap();
    let input = json!({"KeyId": key, "ImportToken": p["ImportToken"], "EncryptedKeyMaterial": b64(&wrapped), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"});
    e.advance(Duration::hours(24) + Duration::seconds(1));
    assert_eq!(call(&e, &r, "ImportKeyMaterial", input.clone()).unwrap_err().code, "ExpiredImportTokenException");
    *e.now.lock().unwrap() -= Duration::hours(1);
    call(&e, &r, "ImportKeyMaterial", input).unwrap();
    // The token holds the wrapping private key sealed: it is not in the store at all.
    assert!(e.store.scan("kms_import_tokens", "", None, 0).map(|v| v.is_empty()).unwrap_or(true));
}

#[test]
fn key_last_usage_is_persisted_at_most_once_per_interval() {
    let e = env();
    let mut r = root();
    let key = call(&e, &r, "CreateKey", json!({})).unwrap()["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let stored = |e: &Env| -> Option<crate::core::LastUse> {
        let rows = e.store.scan(crate::model::USAGE, "", None, 0).unwrap();
        rows.iter().find(|(k, _)| k.ends_with(&key)).map(|(_, v)| serde_json::from_slice(v).unwrap())
    };
    assert!(stored(&e).is_none());
    r.request_id = "first".into();
    call(&e, &r, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")})).unwrap();
    assert_eq!(stored(&e).unwrap().request_id, "first");
    r.request_id = "second".into();
    call(&e, &r, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")})).unwrap();
    // Not written again within the interval, but answered exactly from memory.
    assert_eq!(stored(&e).unwrap().request_id, "first");
    let usage = call(&e, &r, "GetKeyLastUsage", json!({"KeyId": key})).unwrap();
    assert_eq!(usage["KeyLastUsage"]["KmsRequestId"], "second");
    assert_eq!(usage["KeyLastUsage"]["Operation"], "Encrypt");
    e.advance(Duration::seconds(61));
    r.request_id = "third".into();
    call(&e, &r, "Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")})).unwrap();
    assert_eq!(stored(&e).unwrap().request_id, "third");
    r.request_id = "fourth".into();
    call(&e, &r, "GenerateDataKey", json!({"KeyId": key, "KeySpec": "AES_256"})).unwrap();
    assert_eq!(stored(&e).unwrap().operation, "Encrypt");
    assert_eq!(
        call(&e, &r, "GetKeyLastUsage", json!({"KeyId": key})).unwrap()["KeyLastUsage"]["Operation"],
        "GenerateDataKey"
    );
}

#[test]
fn ml_kem_round_trips_through_the_public_key_der() {
    use crate::crypto::{self, KeySpec};
    for spec in [KeySpec::ML_KEM_512, KeySpec::ML_KEM_768, KeySpec::ML_KEM_1024] {
        let (seed, public) = crypto::generate(spec).unwrap();
        let public = public.unwrap();
        // A client encapsulates to the SPKI DER that GetPublicKey returns, with ml-kem's own decoder.
        let (ct, ss) = crypto::ml_kem_encapsulate(spec, &public).unwrap();
        assert_eq!(&crypto::ml_kem_decapsulate(spec, &seed, &ct).unwrap()[..], &ss[..]);
        let (other_seed, _) = crypto::generate(spec).unwrap();
        assert_ne!(&crypto::ml_kem_decapsulate(spec, &other_seed, &ct).unwrap()[..], &ss[..]);
        assert!(crypto::ml_kem_decapsulate(spec, &seed, &ct[1..]).is_err());
    }
    // Through the operations too.
    let e = env();
    let r = root();
    let key = call(&e, &r, "CreateKey", json!({"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"}))
        .unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let public = unb64(&call(&e, &r, "GetPublicKey", json!({"KeyId": key})).unwrap()["PublicKey"]);
    let (ct, ss) = crypto::ml_kem_encapsulate(KeySpec::ML_KEM_768, &public).unwrap();
    let out = call(
        &e,
        &r,
        "Decapsulate",
        json!({"KeyId": key, "EncapsulationAlgorithm": "ML_KEM", "SharedSecretCiphertextBlob": b64(&ct)}),
    )
    .unwrap();
    assert_eq!(unb64(&out["SharedSecret"]), ss.to_vec());
}

#[test]
fn ecdh_agrees_both_ways() {
    use crate::crypto::{self, KeySpec};
    for spec in [KeySpec::ECC_NIST_P256, KeySpec::ECC_NIST_P384, KeySpec::ECC_NIST_P521] {
        let (a, pa) = crypto::generate(spec).unwrap();
        let (b, pb) = crypto::generate(spec).unwrap();
        let ab = crypto::ecdh(spec, &a, &pb.unwrap()).unwrap();
        let ba = crypto::ecdh(spec, &b, &pa.clone().unwrap()).unwrap();
        assert_eq!(&ab[..], &ba[..]);
        let (_, other_curve) = crypto::generate(if spec == KeySpec::ECC_NIST_P256 {
            KeySpec::ECC_NIST_P384
        } else {
            KeySpec::ECC_NIST_P256
        })
        .unwrap();
        assert!(crypto::ecdh(spec, &a, &other_curve.unwrap()).is_err());
    }
}

#[test]
fn rsa_aes_key_wrap_unwraps() {
    use crate::crypto;
    use rsa::pkcs8::DecodePublicKey;
    let (der, public) = crypto::wrapping_key(2048).unwrap();
    let public = rsa::RsaPublicKey::from_public_key_der(&public).unwrap();
    let aes = [9u8; 32];
    let material = b"some key material of odd length".to_vec();
    let mut wrapped = public.encrypt(&mut rand_core::OsRng, rsa::Oaep::new::<sha2::Sha256>(), &aes).unwrap();
    wrapped.extend(crypto::kwp_wrap(&aes, &material).unwrap());
    assert_eq!(&crypto::unwrap_key_material(&der, "RSA_AES_KEY_WRAP_SHA_256", &wrapped).unwrap()[..], &material[..]);
    assert!(crypto::unwrap_key_material(&der, "RSA_AES_KEY_WRAP_SHA_1", &wrapped).is_err());
    let last = wrapped.len() - 1;
    wrapped[last] ^= 1;
    assert!(crypto::unwrap_key_material(&der, "RSA_AES_KEY_WRAP_SHA_256", &wrapped).is_err());
}

/// Custom key stores: input is validated before authorization; the plan is `kms:<op>` on `*`;
/// CloudHSM clusters and VPC endpoint services do not exist; http:// proxies need the switch.
#[test]
fn custom_key_store_validation_plans_and_answers() {
    let e = env();
    let r = root();
    let svc = e.kms.service();
    let good = json!({
        "CustomKeyStoreName": "s", "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyConnectivity": "PUBLIC_ENDPOINT", "XksProxyUriEndpoint": "https://xks.example.com",
        "XksProxyUriPath": "/prefix/kms/xks/v1",
        "XksProxyAuthenticationCredential": {"AccessKeyId": "ABCDEFGHIJKLMNOPQRST", "RawSecretAccessKey": "a".repeat(43)},
    });
    let plan = svc.plan(&r, "CreateCustomKeyStore", &rampart_service::Input::Json(good.clone())).unwrap();
    let rampart_service::AuthzPlan::Checks(checks) = plan else { panic!("plan") };
    assert_eq!((checks[0].action.as_str(), checks[0].resource.as_str()), ("kms:CreateCustomKeyStore", "*"));
    for op in ["ConnectCustomKeyStore", "DisconnectCustomKeyStore", "DeleteCustomKeyStore", "UpdateCustomKeyStore"] {
        let input = rampart_service::Input::Json(json!({"CustomKeyStoreId": "cks-1234567890abcdef0"}));
        let rampart_service::AuthzPlan::Checks(c) = svc.plan(&r, op, &input).unwrap() else { panic!("plan") };
        assert_eq!(c[0].action, format!("kms:{op}"));
    }
    let mutate = |member: &str, v: Value| {
        let mut x = good.clone();
        x[member] = v;
        x
    };
    for (input, at) in [
        (mutate("XksProxyUriEndpoint", json!("http://xks.example.com")), "xksProxyUriEndpoint"),
        (mutate("XksProxyUriEndpoint", json!("https://xks.example.com:8443")), "xksProxyUriEndpoint"),
        (mutate("XksProxyUriEndpoint", json!("https://xks/ex")), "xksProxyUriEndpoint"),
        (mutate("XksProxyUriPath", json!("/kms/xks/v123")), "xksProxyUriPath"),
        (mutate("XksProxyUriPath", json!("/a b/kms/xks/v1")), "xksProxyUriPath"),
        (
            mutate(
                "XksProxyAuthenticationCredential",
                json!({"AccessKeyId": "ABCDEFGHIJKLMNOPQRS1", "RawSecretAccessKey": "a".repeat(43)}),
            ),
            "xksProxyAuthenticationCredential.accessKeyId",
        ),
        (
            mutate(
                "XksProxyAuthenticationCredential",
                json!({"AccessKeyId": "ABCDEFGHIJKLMNOPQRST", "RawSecretAccessKey": "a".repeat(42)}),
            ),
            "xksProxyAuthenticationCredential.rawSecretAccessKey",
        ),
    ] {
        // A caller without any permission still gets the validation error.
        let (code, message) = err(&e, &ctx(user("nobody")), "CreateCustomKeyStore", input);
        assert_eq!(code, "ValidationException", "{at}: {message}");
        assert!(message.contains(&format!("at '{at}'")), "{message}");
        assert!(!message.contains(&"a".repeat(42)), "{message}");
    }
    // With the switch, http:// and a port pass validation (the proxy is then unreachable).
    e.kms.allow_xks_http(true);
    let (code, _) = err(
        &e,
        &r,
        "CreateCustomKeyStore",
        mutate("XksProxyUriEndpoint", json!(format!("http://127.0.0.1:{}", unused_port()))),
    );
    assert_eq!(code, "XksProxyUriUnreachableException");
    let (code, _) = err(
        &e,
        &r,
        "CreateCustomKeyStore",
        json!({"CustomKeyStoreName": "h", "CloudHsmClusterId": "cluster-234abcdefgh", "TrustAnchorCertificate": "c", "KeyStorePassword": "kmsPswd1"}),
    );
    assert_eq!(code, "CloudHsmClusterNotFoundException");
    let mut vpc = mutate("XksProxyConnectivity", json!("VPC_ENDPOINT_SERVICE"));
    vpc["XksProxyVpcEndpointServiceName"] = json!("com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0");
    assert_eq!(err(&e, &r, "CreateCustomKeyStore", vpc).0, "XksProxyVpcEndpointServiceNotFoundException");
    let none = call(&e, &r, "DescribeCustomKeyStores", json!({})).unwrap();
    assert_eq!(none, json!({"CustomKeyStores": [], "Truncated": false}));
    let (code, message) = err(&e, &r, "DescribeCustomKeyStores", json!({"CustomKeyStoreId": "cks-1234567890abcdef0"}));
    assert_eq!((code.as_str(), message.as_str()), ("CustomKeyStoreNotFoundException", ""));
    let (code, _) = err(&e, &r, "CreateKey", json!({"Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "k"}));
    assert_eq!(code, "ValidationException");
    let (code, _) = err(&e, &r, "CreateKey", json!({"XksKeyId": "k"}));
    assert_eq!(code, "ValidationException");
    let (code, _) = err(
        &e,
        &r,
        "CreateKey",
        json!({"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": "cks-1234567890abcdef0", "XksKeyId": "k"}),
    );
    assert_eq!(code, "CustomKeyStoreNotFoundException");
    let (code, _) = err(
        &e,
        &r,
        "CreateKey",
        json!({"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": "cks-1234567890abcdef0", "XksKeyId": "k", "KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}),
    );
    assert_eq!(code, "UnsupportedOperationException");
}

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
