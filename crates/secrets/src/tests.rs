//! Service-level tests with an injected clock, an in-memory store, a test KMS and inline rotation.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use rampart_protocol::AwsError;
use rampart_service::{Authorizer, AuthzCheck, AuthzPlan, Caller, ContextValue, Input, RequestContext, Service};
use rampart_store::{SqliteStore, Store};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::keys::{decrypt_value, encrypt_value, DataKey, EnvelopeKeys};
use crate::rotation::{RotationEvent, Rotator, Rotators};
use crate::{Clock, SecretsManager};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

struct ManualClock(Mutex<OffsetDateTime>);

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

/// A KMS stand-in: one master key per key ARN; can refuse Decrypt like a key policy would.
#[derive(Default)]
struct TestKeys {
    deny_decrypt: Mutex<bool>,
    calls: Mutex<Vec<(String, String)>>,
}

impl TestKeys {
    fn arn(key_id: Option<&str>) -> String {
        match key_id {
            None | Some("alias/aws/secretsmanager") => format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-secretsmanager"),
            Some(k) if k.starts_with("arn:") => k.to_string(),
            Some(k) => format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{k}"),
        }
    }
    fn master(arn: &str) -> [u8; 32] {
        let mut k = [0u8; 32];
        for (i, b) in arn.bytes().enumerate() {
            k[i % 32] ^= b;
        }
        k
    }
    fn aad(ec: &[(String, String)]) -> Vec<u8> {
        format!("{ec:?}").into_bytes()
    }
}

impl EnvelopeKeys for TestKeys {
    fn key_arn(&self, _ctx: &RequestContext, key_id: Option<&str>) -> Result<String, AwsError> {
        match key_id {
            Some("missing") => Err(AwsError::new("ResourceNotFoundException", "key not found", 400)),
            k => Ok(Self::arn(k)),
        }
    }
    fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: Option<&str>,
        ec: &[(String, String)],
        via: &str,
    ) -> Result<DataKey, AwsError> {
        self.calls.lock().unwrap().push(("GenerateDataKey".into(), via.into()));
        let arn = self.key_arn(ctx, key_id)?;
        let dk: [u8; 32] = rand::random();
        let mut blob = arn.clone().into_bytes();
        blob.push(0);
        blob.extend(encrypt_value(&Self::master(&arn), &dk, &Self::aad(ec))?);
        Ok(DataKey { plaintext: Zeroizing::new(dk.to_vec()), ciphertext_blob: blob, key_arn: arn })
    }
    fn decrypt(
        &self,
        _ctx: &RequestContext,
        blob: &[u8],
        ec: &[(String, String)],
        via: &str,
    ) -> Result<Zeroizing<Vec<u8>>, AwsError> {
        self.calls.lock().unwrap().push(("Decrypt".into(), via.into()));
        if *self.deny_decrypt.lock().unwrap() {
            return Err(AwsError::new("AccessDeniedException", "not authorized to perform: kms:Decrypt", 400));
        }
        let pos = blob.iter().position(|b| *b == 0).unwrap();
        let arn = std::str::from_utf8(&blob[..pos]).unwrap();
        decrypt_value(&Self::master(arn), &blob[pos + 1..], &Self::aad(ec))
    }
}

/// Denies GetSecretValue on the listed ARNs.
#[derive(Default)]
struct TestAuthorizer {
    deny: Mutex<HashSet<String>>,
}

impl Authorizer for TestAuthorizer {
    fn check(&self, _ctx: &RequestContext, _svc: &str, check: AuthzCheck) -> Result<(), AwsError> {
        if self.deny.lock().unwrap().contains(&check.resource) {
            return Err(AwsError::new("AccessDeniedException", format!("denied {}", check.resource), 400));
        }
        Ok(())
    }
}

type StepFn = dyn Fn(&Arc<SecretsManager>, &RotationEvent) -> Result<(), String> + Send + Sync;

struct FnRotator(Box<StepFn>);

impl Rotator for FnRotator {
    fn run(&self, sm: &Arc<SecretsManager>, e: &RotationEvent) -> Result<(), String> {
        (self.0)(sm, e)
    }
}

struct Env {
    sm: Arc<SecretsManager>,
    svc: Arc<dyn Service>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    keys: Arc<TestKeys>,
    authz: Arc<TestAuthorizer>,
    fail_step: Arc<Mutex<Option<&'static str>>>,
}

fn ctx() -> RequestContext {
    RequestContext {
        request_id: crate::ops::new_uuid(),
        caller: Caller::root(ACCOUNT, "AKIDEXAMPLE"),
        region: REGION.into(),
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        user_agent: "test".into(),
        time: OffsetDateTime::now_utc(),
        secure_transport: true,
    }
}

/// One call as a rotation Lambda makes it: through the operations table (parse, plan, run), with
/// every check allowed (the rotator acts as the service).
fn invoke(sm: &Arc<SecretsManager>, c: &RequestContext, op: &str, body: Value) -> Result<Value, AwsError> {
    match crate::api::OPERATIONS.call(sm, c, op, &Input::Json(body), &mut |_| Ok(())).expect(op)? {
        rampart_service::Output::Json(v) => Ok(v),
        o => panic!("unexpected output {o:?}"),
    }
}

/// A Lambda-like rotator: stores a new value in createSecret, moves AWSCURRENT in finishSecret;
/// fails at `fail_step` when set.
fn lambda(fail: Arc<Mutex<Option<&'static str>>>) -> Arc<dyn Rotator> {
    Arc::new(FnRotator(Box::new(move |sm, e| {
        if *fail.lock().unwrap() == Some(e.step) {
            return Err(format!("{} failed", e.step));
        }
        let c = ctx();
        match e.step {
            "createSecret" => {
                let r = invoke(
                    sm,
                    &c,
                    "PutSecretValue",
                    json!({"SecretId": e.secret_arn, "ClientRequestToken": e.token,
                        "SecretString": format!("rotated-{}", e.token), "VersionStages": ["AWSPENDING"]}),
                );
                r.map(|_| ()).map_err(|e| e.message)
            }
            "finishSecret" => {
                let d = invoke(sm, &c, "DescribeSecret", json!({"SecretId": e.secret_arn})).unwrap();
                let current = d["VersionIdsToStages"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, s)| s.as_array().unwrap().iter().any(|x| x == "AWSCURRENT"))
                    .map(|(k, _)| k.clone())
                    .unwrap();
                invoke(
                    sm,
                    &c,
                    "UpdateSecretVersionStage",
                    json!({"SecretId": e.secret_arn, "VersionStage": "AWSCURRENT",
                        "MoveToVersionId": e.token, "RemoveFromVersionId": current}),
                )
                .map(|_| ())
                .map_err(|e| e.message)
            }
            _ => Ok(()),
        }
    })))
}

fn env() -> Env {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let clock = Arc::new(ManualClock(Mutex::new(time::macros::datetime!(2026-01-01 00:00 UTC))));
    let keys = Arc::new(TestKeys::default());
    let fail_step = Arc::new(Mutex::new(None));
    let mut rotators = Rotators::new();
    rotators.register("rot", lambda(fail_step.clone()));
    let sm = SecretsManager::with_clock(store.clone(), keys.clone(), rotators, clock.clone(), false);
    let authz = Arc::new(TestAuthorizer::default());
    sm.set_authorizer(authz.clone());
    let svc = sm.service();
    Env { sm, svc, store, clock, keys, authz, fail_step }
}

impl Env {
    fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        self.call_in(REGION, op, body)
    }
    fn call_in(&self, region: &str, op: &str, body: Value) -> Result<Value, AwsError> {
        let mut c = ctx();
        c.region = region.into();
        // As the SDKs and the CLI do: a ClientRequestToken when the caller gave none.
        let mut body = body;
        if matches!(op, "CreateSecret" | "PutSecretValue" | "UpdateSecret" | "RotateSecret") {
            if let Some(m) = body.as_object_mut() {
                m.entry("ClientRequestToken").or_insert_with(|| json!(rampart_protocol::new_uuid()));
            }
        }
        let input = Input::Json(body);
        assert!(self.svc.has_operation(op), "{op}");
        match self.svc.call(&c, op, &input, &mut |_| Ok(()))? {
            rampart_service::Output::Json(v) => Ok(v),
            o => panic!("unexpected output {o:?}"),
        }
    }
    fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body).unwrap_or_else(|e| panic!("{op}: {e}"))
    }
    fn err(&self, op: &str, body: Value) -> AwsError {
        self.call(op, body).expect_err(op)
    }
    fn stages(&self, id: &str) -> Value {
        self.ok("DescribeSecret", json!({"SecretId": id}))["VersionIdsToStages"].clone()
    }
    fn value(&self, id: &str) -> String {
        self.ok("GetSecretValue", json!({"SecretId": id}))["SecretString"].as_str().unwrap().to_string()
    }
}

const T1: &str = "11111111-1111-4111-8111-111111111111";
const T2: &str = "22222222-2222-4222-8222-222222222222";
const T3: &str = "33333333-3333-4333-8333-333333333333";

#[test]
fn labels_move_like_aws() {
    let e = env();
    let c = e.ok("CreateSecret", json!({"Name": "app/db", "SecretString": "v1", "ClientRequestToken": T1}));
    assert_eq!(c["VersionId"], T1);
    let arn = c["ARN"].as_str().unwrap();
    assert!(arn.starts_with(&format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/db-")));
    assert_eq!(arn.len(), format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/db-").len() + 6);
    e.ok("PutSecretValue", json!({"SecretId": "app/db", "SecretString": "v2", "ClientRequestToken": T2}));
    assert_eq!(e.stages("app/db"), json!({T1: ["AWSPREVIOUS"], T2: ["AWSCURRENT"]}));
    e.ok("PutSecretValue", json!({"SecretId": "app/db", "SecretString": "v3", "ClientRequestToken": T3}));
    assert_eq!(e.stages("app/db"), json!({T2: ["AWSPREVIOUS"], T3: ["AWSCURRENT"]}));
    assert_eq!(e.value("app/db"), "v3");
    let prev = e.ok("GetSecretValue", json!({"SecretId": "app/db", "VersionStage": "AWSPREVIOUS"}));
    assert_eq!(prev["SecretString"], "v2");
    let old = e.ok("GetSecretValue", json!({"SecretId": "app/db", "VersionId": T1}));
    assert_eq!(old["SecretString"], "v1");
    assert_eq!(old["VersionStages"], json!([]));
    let listed = e.ok("ListSecretVersionIds", json!({"SecretId": "app/db"}));
    assert_eq!(listed["Versions"].as_array().unwrap().len(), 2);
    let listed = e.ok("ListSecretVersionIds", json!({"SecretId": "app/db", "IncludeDeprecated": true}));
    assert_eq!(listed["Versions"].as_array().unwrap().len(), 3);
    // Moving AWSCURRENT back by hand: must name where it comes from; AWSPREVIOUS follows.
    let err = e.err(
        "UpdateSecretVersionStage",
        json!({"SecretId": "app/db", "VersionStage": "AWSCURRENT", "MoveToVersionId": T1}),
    );
    assert_eq!(err.code, "InvalidParameterException");
    e.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "app/db", "VersionStage": "AWSCURRENT", "MoveToVersionId": T1, "RemoveFromVersionId": T3}),
    );
    assert_eq!(e.stages("app/db"), json!({T1: ["AWSCURRENT"], T3: ["AWSPREVIOUS"]}));
    // A custom label: attach, then remove.
    e.ok("UpdateSecretVersionStage", json!({"SecretId": "app/db", "VersionStage": "blue", "MoveToVersionId": T2}));
    assert_eq!(e.stages("app/db")[T2], json!(["blue"]));
    e.ok("UpdateSecretVersionStage", json!({"SecretId": "app/db", "VersionStage": "blue", "RemoveFromVersionId": T2}));
    assert!(e.stages("app/db").get(T2).is_none());
    let err = e.err(
        "UpdateSecretVersionStage",
        json!({"SecretId": "app/db", "VersionStage": "AWSCURRENT", "RemoveFromVersionId": T1}),
    );
    assert_eq!(err.code, "InvalidParameterException");
}

#[test]
fn client_request_token_is_idempotent() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "idem", "SecretString": "a", "ClientRequestToken": T1}));
    let again = e.ok("PutSecretValue", json!({"SecretId": "idem", "SecretString": "a", "ClientRequestToken": T1}));
    assert_eq!(again["VersionId"], T1);
    assert_eq!(e.stages("idem"), json!({T1: ["AWSCURRENT"]}));
    let err = e.err("PutSecretValue", json!({"SecretId": "idem", "SecretString": "b", "ClientRequestToken": T1}));
    assert_eq!(err.code, "ResourceExistsException");
    let err = e.err("PutSecretValue", json!({"SecretId": "idem", "SecretBinary": "YQ==", "ClientRequestToken": T1}));
    assert_eq!(err.code, "ResourceExistsException");
    let err = e.err("CreateSecret", json!({"Name": "idem", "SecretString": "a"}));
    assert_eq!(err.code, "ResourceExistsException");
    assert_eq!(err.message, "The operation failed because the secret idem already exists.");
}

#[test]
fn lookups_by_name_full_and_partial_arn() {
    let e = env();
    let arn =
        e.ok("CreateSecret", json!({"Name": "look/up", "SecretString": "x"}))["ARN"].as_str().unwrap().to_string();
    let partial = &arn[..arn.len() - 7];
    for id in ["look/up", arn.as_str(), partial] {
        assert_eq!(e.value(id), "x", "{id}");
    }
    let wrong = format!("{partial}-AAAAAA");
    let err = e.err("GetSecretValue", json!({"SecretId": wrong}));
    assert_eq!(
        (err.code.as_ref(), err.message.as_str()),
        ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    );
    let other_account = arn.replace(ACCOUNT, "999999999999");
    assert_eq!(e.err("DescribeSecret", json!({"SecretId": other_account})).code, "ResourceNotFoundException");
}

#[test]
fn deletion_window_restore_and_purge() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "gone", "SecretString": "x"}));
    for bad in [
        json!({"SecretId": "gone", "RecoveryWindowInDays": 6}),
        json!({"SecretId": "gone", "RecoveryWindowInDays": 31}),
        json!({"SecretId": "gone", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
    ] {
        assert_eq!(e.err("DeleteSecret", bad).code, "InvalidParameterException");
    }
    let d = e.ok("DeleteSecret", json!({"SecretId": "gone", "RecoveryWindowInDays": 7}));
    let now = e.clock.now().unix_timestamp() as f64;
    assert_eq!(d["DeletionDate"].as_f64().unwrap(), now + 7.0 * 86400.0);
    let err = e.err("GetSecretValue", json!({"SecretId": "gone"}));
    assert_eq!(err.code, "InvalidRequestException");
    assert_eq!(err.message, "You can't perform this operation on the secret because it was marked for deletion.");
    assert_eq!(e.err("CreateSecret", json!({"Name": "gone"})).code, "InvalidRequestException");
    assert!(e.ok("DescribeSecret", json!({"SecretId": "gone"}))["DeletedDate"].is_number());
    let listed =
        |inc: bool| e.ok("ListSecrets", json!({"IncludePlannedDeletion": inc}))["SecretList"].as_array().unwrap().len();
    assert_eq!((listed(false), listed(true)), (0, 1));
    e.ok("RestoreSecret", json!({"SecretId": "gone"}));
    assert_eq!(e.value("gone"), "x");
    e.ok("DeleteSecret", json!({"SecretId": "gone", "RecoveryWindowInDays": 7}));
    e.clock.advance(Duration::days(7) - Duration::seconds(1));
    assert!(e.call("DescribeSecret", json!({"SecretId": "gone"})).is_ok());
    e.clock.advance(Duration::seconds(1));
    assert_eq!(e.err("DescribeSecret", json!({"SecretId": "gone"})).code, "ResourceNotFoundException");
    assert!(e.store.scan(crate::model::VALUES, "", None, 0).unwrap().is_empty());
    // The name is free again.
    e.ok("CreateSecret", json!({"Name": "gone", "SecretString": "new"}));
    assert_eq!(e.value("gone"), "new");
}

#[test]
fn sweep_purges_and_force_delete_is_immediate() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "swept", "SecretString": "x"}));
    e.ok("CreateSecret", json!({"Name": "forced", "SecretString": "y"}));
    e.ok("DeleteSecret", json!({"SecretId": "swept", "RecoveryWindowInDays": 30}));
    e.ok("DeleteSecret", json!({"SecretId": "forced", "ForceDeleteWithoutRecovery": true}));
    assert_eq!(e.store.scan(crate::model::SECRETS, "", None, 0).unwrap().len(), 1);
    e.clock.advance(Duration::days(31));
    e.sm.tick().unwrap();
    assert!(e.store.scan(crate::model::SECRETS, "", None, 0).unwrap().is_empty());
    assert!(e.store.scan(crate::model::VALUES, "", None, 0).unwrap().is_empty());
}

#[test]
fn nothing_in_plaintext_at_rest_and_kms_is_asked_via_service() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "plain", "SecretString": "correct-horse-battery-staple"}));
    e.ok("PutSecretValue", json!({"SecretId": "plain", "SecretBinary": "c2VjcmV0LWJpbmFyeS12YWx1ZQ=="}));
    for table in [crate::model::SECRETS, crate::model::VALUES] {
        for (_, v) in e.store.scan(table, "", None, 0).unwrap() {
            let text = String::from_utf8_lossy(&v);
            assert!(!text.contains("correct-horse"), "{table}");
            assert!(!text.contains("secret-binary-value") && !text.contains("c2VjcmV0LWJpbmFyeS12YWx1ZQ"), "{table}");
        }
    }
    let b = e.ok("GetSecretValue", json!({"SecretId": "plain"}));
    assert_eq!(b["SecretBinary"], "c2VjcmV0LWJpbmFyeS12YWx1ZQ==");
    assert!(b.get("SecretString").is_none());
    let calls = e.keys.calls.lock().unwrap().clone();
    assert!(calls.iter().all(|(_, via)| via == "secretsmanager.us-east-1.amazonaws.com"));
    assert!(calls.iter().any(|(op, _)| op == "Decrypt"));
}

#[test]
fn kms_decrypt_denied_is_access_denied() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "kms", "SecretString": "x", "KmsKeyId": "alias/custom"}));
    assert_eq!(e.ok("DescribeSecret", json!({"SecretId": "kms"}))["KmsKeyId"], "alias/custom");
    *e.keys.deny_decrypt.lock().unwrap() = true;
    assert_eq!(e.err("GetSecretValue", json!({"SecretId": "kms"})).code, "AccessDeniedException");
    assert_eq!(
        e.err("CreateSecret", json!({"Name": "k2", "SecretString": "x", "KmsKeyId": "missing"})).code,
        "ResourceNotFoundException"
    );
}

#[test]
fn rotation_success_moves_labels() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "rot", "SecretString": "v1", "ClientRequestToken": T1}));
    let lambda = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:rot");
    let r = e.ok(
        "RotateSecret",
        json!({"SecretId": "rot", "RotationLambdaARN": lambda, "ClientRequestToken": T2,
        "RotationRules": {"AutomaticallyAfterDays": 30}}),
    );
    assert_eq!(r["VersionId"], T2);
    assert_eq!(e.stages("rot"), json!({T1: ["AWSPREVIOUS"], T2: ["AWSCURRENT"]}));
    assert_eq!(e.value("rot"), format!("rotated-{T2}"));
    let d = e.ok("DescribeSecret", json!({"SecretId": "rot"}));
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(d["RotationLambdaARN"], lambda);
    assert_eq!(d["RotationRules"]["AutomaticallyAfterDays"], 30);
    let now = e.clock.now().unix_timestamp() as f64;
    assert_eq!(d["LastRotatedDate"].as_f64().unwrap(), now);
    assert_eq!(d["NextRotationDate"].as_f64().unwrap(), now + 30.0 * 86400.0);
    assert!(d.get("RampartRotationStatus").is_none());
}

#[test]
fn rotation_failure_keeps_current_and_pending_for_retry() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "rotf", "SecretString": "v1", "ClientRequestToken": T1}));
    let lambda = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:rot");
    *e.fail_step.lock().unwrap() = Some("testSecret");
    e.ok("RotateSecret", json!({"SecretId": "rotf", "RotationLambdaARN": lambda, "ClientRequestToken": T2}));
    assert_eq!(e.stages("rotf"), json!({T1: ["AWSCURRENT"], T2: ["AWSPENDING"]}));
    assert_eq!(e.value("rotf"), "v1");
    let d = e.ok("DescribeSecret", json!({"SecretId": "rotf"}));
    assert_eq!(d["RampartRotationStatus"]["Step"], "testSecret");
    assert_eq!(d["RampartRotationStatus"]["VersionId"], T2);
    assert!(d.get("LastRotatedDate").is_none());
    // A new RotateSecret while AWSPENDING is outstanding: AWS's error, and the old rotation is retried.
    *e.fail_step.lock().unwrap() = None;
    let err = e.err("RotateSecret", json!({"SecretId": "rotf", "ClientRequestToken": T3}));
    assert_eq!(err.code, "InvalidRequestException");
    assert_eq!(err.message, "A previous rotation isn't complete. That rotation will be reattempted.");
    assert_eq!(e.stages("rotf"), json!({T1: ["AWSPREVIOUS"], T2: ["AWSCURRENT"]}));
    assert!(e.ok("DescribeSecret", json!({"SecretId": "rotf"})).get("RampartRotationStatus").is_none());
}

#[test]
fn unknown_rotator_and_cancel() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "rotx", "SecretString": "v1"}));
    let err = e.err(
        "RotateSecret",
        json!({"SecretId": "rotx", "RotationLambdaARN": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope")}),
    );
    assert_eq!(err.code, "AccessDeniedException");
    assert_eq!(e.err("RotateSecret", json!({"SecretId": "rotx"})).code, "InvalidRequestException");
    let lambda = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:rot");
    let bad_rules = json!({"SecretId": "rotx", "RotationLambdaARN": lambda, "RotationRules": {"AutomaticallyAfterDays": 2, "ScheduleExpression": "rate(2 days)"}});
    assert_eq!(e.err("RotateSecret", bad_rules).code, "InvalidParameterException");
    e.ok(
        "RotateSecret",
        json!({"SecretId": "rotx", "RotationLambdaARN": lambda, "RotateImmediately": false,
        "RotationRules": {"ScheduleExpression": "rate(10 days)"}}),
    );
    let d = e.ok("DescribeSecret", json!({"SecretId": "rotx"}));
    assert_eq!(d["RotationEnabled"], true);
    assert!(d.get("LastRotatedDate").is_none());
    e.ok("CancelRotateSecret", json!({"SecretId": "rotx"}));
    let d = e.ok("DescribeSecret", json!({"SecretId": "rotx"}));
    assert_eq!(d["RotationEnabled"], false);
    assert!(d.get("NextRotationDate").is_none());
}

#[test]
fn scheduled_rotation_runs_when_due() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "sched", "SecretString": "v1", "ClientRequestToken": T1}));
    let lambda = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:rot");
    e.ok(
        "RotateSecret",
        json!({"SecretId": "sched", "RotationLambdaARN": lambda, "RotateImmediately": false,
        "RotationRules": {"AutomaticallyAfterDays": 1}}),
    );
    e.clock.advance(Duration::hours(23));
    e.sm.tick().unwrap();
    assert_eq!(e.value("sched"), "v1");
    e.clock.advance(Duration::hours(1));
    e.sm.tick().unwrap();
    assert_ne!(e.value("sched"), "v1");
    let d = e.ok("DescribeSecret", json!({"SecretId": "sched"}));
    let now = e.clock.now().unix_timestamp() as f64;
    assert_eq!(d["LastRotatedDate"].as_f64().unwrap(), now);
    assert_eq!(d["NextRotationDate"].as_f64().unwrap(), now + 86400.0);
}

#[test]
fn list_filters_sorting_and_pages() {
    let e = env();
    for (i, (name, desc, tag)) in
        [("prod/db", "Main Database", "team"), ("prod/api", "api key", "owner"), ("dev/db", "test DB", "team")]
            .iter()
            .enumerate()
    {
        e.clock.advance(Duration::seconds(i as i64 + 1));
        e.ok("CreateSecret", json!({"Name": name, "Description": desc, "Tags": [{"Key": tag, "Value": "blue"}]}));
    }
    let names = |body: Value| -> Vec<String> {
        e.ok("ListSecrets", body)["SecretList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(json!({})), vec!["prod/db", "prod/api", "dev/db"]);
    assert_eq!(names(json!({"SortOrder": "desc"})), vec!["dev/db", "prod/api", "prod/db"]);
    assert_eq!(names(json!({"Filters": [{"Key": "name", "Values": ["prod/"]}]})), vec!["prod/db", "prod/api"]);
    assert_eq!(names(json!({"Filters": [{"Key": "name", "Values": ["Prod/"]}]})), Vec::<String>::new());
    assert_eq!(names(json!({"Filters": [{"Key": "name", "Values": ["!prod/"]}]})), vec!["dev/db"]);
    assert_eq!(names(json!({"Filters": [{"Key": "description", "Values": ["database"]}]})), vec!["prod/db"]);
    assert_eq!(
        names(json!({"Filters": [{"Key": "tag-key", "Values": ["team"]}, {"Key": "name", "Values": ["dev"]}]})),
        vec!["dev/db"]
    );
    assert_eq!(names(json!({"Filters": [{"Key": "all", "Values": ["DB"]}]})), vec!["prod/db", "dev/db"]);
    assert_eq!(
        e.err("ListSecrets", json!({"Filters": [{"Key": "bogus", "Values": ["x"]}]})).code,
        "ValidationException"
    );
    let p1 = e.ok("ListSecrets", json!({"MaxResults": 2}));
    assert_eq!(p1["SecretList"].as_array().unwrap().len(), 2);
    let p2 = e.ok("ListSecrets", json!({"MaxResults": 2, "NextToken": p1["NextToken"]}));
    assert_eq!(p2["SecretList"][0]["Name"], "dev/db");
    assert!(p2.get("NextToken").is_none());
    assert_eq!(e.err("ListSecrets", json!({"NextToken": "garbage!"})).code, "InvalidNextTokenException");
}

#[test]
fn batch_get_reports_per_secret_errors() {
    let e = env();
    let a = e.ok("CreateSecret", json!({"Name": "b1", "SecretString": "one"}))["ARN"].as_str().unwrap().to_string();
    let b = e.ok("CreateSecret", json!({"Name": "b2", "SecretString": "two"}))["ARN"].as_str().unwrap().to_string();
    e.authz.deny.lock().unwrap().insert(b.clone());
    let r = e.ok("BatchGetSecretValue", json!({"SecretIdList": ["b1", "b2", "b3"]}));
    assert_eq!(r["SecretValues"].as_array().unwrap().len(), 1);
    assert_eq!(r["SecretValues"][0]["ARN"], a);
    let errors: Vec<(String, String)> = r["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["SecretId"].as_str().unwrap().into(), x["ErrorCode"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        errors,
        vec![("b2".into(), "AccessDeniedException".into()), ("b3".into(), "ResourceNotFoundException".into())]
    );
    assert_eq!(e.err("BatchGetSecretValue", json!({})).code, "InvalidParameterException");
    let r = e.ok("BatchGetSecretValue", json!({"Filters": [{"Key": "name", "Values": ["b1"]}]}));
    assert_eq!(r["SecretValues"][0]["SecretString"], "one");
}

#[test]
fn authorization_plans_carry_condition_keys() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "cond", "SecretString": "x", "Tags": [{"Key": "env", "Value": "prod"}]}));
    e.ok("PutResourcePolicy", json!({"SecretId": "cond", "ResourcePolicy": r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#}));
    let c = ctx();
    let plan = e
        .svc
        .plan(&c, "GetSecretValue", &Input::Json(json!({"SecretId": "cond", "VersionStage": "AWSCURRENT"})))
        .unwrap();
    let AuthzPlan::Checks(checks) = plan else { panic!() };
    let check = &checks[0];
    assert_eq!(check.action, "secretsmanager:GetSecretValue");
    assert!(check.resource.contains(":secret:cond-"));
    assert!(check.resource_policy.as_ref().is_some_and(|p| !p.required));
    let has = |k: &str, v: &str| check.context.iter().any(|(ck, cv)| ck == k && *cv == ContextValue::String(v.into()));
    assert!(has("secretsmanager:ResourceTag/env", "prod"));
    assert!(has("aws:ResourceTag/env", "prod"));
    assert!(has("secretsmanager:VersionStage", "AWSCURRENT"));
    assert!(has("secretsmanager:SecretId", &check.resource));
    let plan = e
        .svc
        .plan(
            &c,
            "CreateSecret",
            &Input::Json(
                json!({"Name": "n", "Description": "d", "KmsKeyId": "k1", "Tags": [{"Key": "a", "Value": "b"}]}),
            ),
        )
        .unwrap();
    let AuthzPlan::Checks(checks) = plan else { panic!() };
    assert_eq!(
        checks.iter().map(|c| c.action.as_str()).collect::<Vec<_>>(),
        vec!["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
    );
    let has =
        |k: &str, v: &str| checks[0].context.iter().any(|(ck, cv)| ck == k && *cv == ContextValue::String(v.into()));
    assert!(has("secretsmanager:Name", "n") && has("secretsmanager:Description", "d") && has("aws:RequestTag/a", "b"));
    assert!(has("secretsmanager:KmsKeyArn", &format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/k1")));
    assert!(checks[0].context.iter().any(|(k, v)| k == "aws:TagKeys" && *v == ContextValue::List(vec!["a".into()])));
}

#[test]
fn resource_policies_and_tags() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "pol", "SecretString": "x"}));
    let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    // "By default, public policies aren't blocked." (API reference, BlockPublicPolicy)
    assert_eq!(
        e.err("PutResourcePolicy", json!({"SecretId": "pol", "ResourcePolicy": public, "BlockPublicPolicy": true}))
            .code,
        "PublicPolicyException"
    );
    e.ok("PutResourcePolicy", json!({"SecretId": "pol", "ResourcePolicy": public}));
    e.ok("PutResourcePolicy", json!({"SecretId": "pol", "ResourcePolicy": public, "BlockPublicPolicy": false}));
    assert_eq!(e.ok("GetResourcePolicy", json!({"SecretId": "pol"}))["ResourcePolicy"], public);
    assert_eq!(
        e.err("PutResourcePolicy", json!({"SecretId": "pol", "ResourcePolicy": "{nope"})).code,
        "MalformedPolicyDocumentException"
    );
    let v = e.ok("ValidateResourcePolicy", json!({"ResourcePolicy": public}));
    assert_eq!(v["PolicyValidationPassed"], false);
    e.ok("DeleteResourcePolicy", json!({"SecretId": "pol"}));
    assert!(e.ok("GetResourcePolicy", json!({"SecretId": "pol"})).get("ResourcePolicy").is_none());
    e.ok("TagResource", json!({"SecretId": "pol", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}));
    e.ok("TagResource", json!({"SecretId": "pol", "Tags": [{"Key": "a", "Value": "3"}]}));
    e.ok("UntagResource", json!({"SecretId": "pol", "TagKeys": ["b"]}));
    assert_eq!(e.ok("DescribeSecret", json!({"SecretId": "pol"}))["Tags"], json!([{"Key": "a", "Value": "3"}]));
    assert_eq!(
        e.err("TagResource", json!({"SecretId": "pol", "Tags": [{"Key": "aws:x", "Value": "1"}]})).code,
        "InvalidParameterException"
    );
}

#[test]
fn input_validation() {
    let e = env();
    assert_eq!(e.err("CreateSecret", json!({"Name": "bad name!"})).code, "ValidationException");
    assert_eq!(
        e.err("CreateSecret", json!({"Name": "x", "SecretString": "a", "SecretBinary": "YQ=="})).code,
        "InvalidParameterException"
    );
    assert_eq!(e.err("CreateSecret", json!({"Name": "x", "ClientRequestToken": "short"})).code, "ValidationException");
    assert_eq!(e.err("CreateSecret", json!({"Name": 5})).code, "SerializationException");
    assert_eq!(e.err("GetSecretValue", json!({})).code, "ValidationException");
    let created = e.ok("CreateSecret", json!({"Name": "novalue"}));
    assert!(created.get("VersionId").is_none());
    let err = e.err("GetSecretValue", json!({"SecretId": "novalue"}));
    assert_eq!(err.code, "ResourceNotFoundException");
    assert_eq!(err.message, "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT");
    assert_eq!(e.err("PutSecretValue", json!({"SecretId": "novalue"})).code, "InvalidRequestException");
    let p = e.ok("GetRandomPassword", json!({"PasswordLength": 12, "ExcludePunctuation": true}));
    assert_eq!(p["RandomPassword"].as_str().unwrap().len(), 12);
    assert!(!e.svc.has_operation("AssociateCrossAccountReplica"));
}

#[test]
fn replicas_read_their_primary_and_refuse_changes() {
    let e = env();
    let west = "us-west-2";
    let c = e.ok("CreateSecret", json!({"Name": "dup", "SecretString": "s1", "AddReplicaRegions": [{"Region": west}]}));
    assert_eq!(c["ReplicationStatus"], json!([{"Region": west, "Status": "InSync"}]));
    let primary = c["ARN"].as_str().unwrap().to_string();
    let replica = primary.replace(REGION, west);
    let d = e.call_in(west, "DescribeSecret", json!({"SecretId": replica})).unwrap();
    assert_eq!(d["ARN"], json!(replica));
    assert_eq!(d["PrimaryRegion"], json!(REGION));
    assert_eq!(d["VersionIdsToStages"], e.stages("dup"));
    let v = e.call_in(west, "GetSecretValue", json!({"SecretId": "dup"})).unwrap();
    assert_eq!((v["ARN"].as_str(), v["SecretString"].as_str()), (Some(replica.as_str()), Some("s1")));
    // New values reach the replica; changes through the replica are refused.
    e.ok("PutSecretValue", json!({"SecretId": "dup", "SecretString": "s2"}));
    assert_eq!(e.call_in(west, "GetSecretValue", json!({"SecretId": replica})).unwrap()["SecretString"], "s2");
    for (op, body) in [
        ("PutSecretValue", json!({"SecretId": replica, "SecretString": "x"})),
        ("TagResource", json!({"SecretId": replica, "Tags": [{"Key": "k", "Value": "v"}]})),
        ("GetResourcePolicy", json!({"SecretId": replica})),
        ("DeleteSecret", json!({"SecretId": replica})),
    ] {
        let err = e.call_in(west, op, body).unwrap_err();
        assert_eq!(err.code, "InvalidParameterException", "{op}");
        assert!(err.message.starts_with("Operation not permitted on a replica secret"), "{op}");
    }
    let listed = e.call_in(west, "ListSecrets", json!({"Filters": [{"Key": "primary-region", "Values": [REGION]}]}));
    assert_eq!(listed.unwrap()["SecretList"][0]["ARN"], json!(replica));
    // The primary can't be deleted while replicated; removing the Region removes the replica.
    assert_eq!(e.err("DeleteSecret", json!({"SecretId": primary})).code, "InvalidParameterException");
    e.ok("RemoveRegionsFromReplication", json!({"SecretId": primary, "RemoveReplicaRegions": [west]}));
    assert_eq!(
        e.call_in(west, "DescribeSecret", json!({"SecretId": replica})).unwrap_err().code,
        "ResourceNotFoundException"
    );
    assert!(e.ok("DescribeSecret", json!({"SecretId": primary})).get("ReplicationStatus").is_none());
    e.ok("DeleteSecret", json!({"SecretId": primary}));
}

#[test]
fn replication_to_a_region_holding_the_name() {
    let e = env();
    let west = "us-west-2";
    let primary =
        e.ok("CreateSecret", json!({"Name": "dup", "SecretString": "s1"}))["ARN"].as_str().unwrap().to_string();
    let other = e.call_in(west, "CreateSecret", json!({"Name": "dup", "SecretString": "s2"})).unwrap();
    let same =
        e.err("ReplicateSecretToRegions", json!({"SecretId": primary, "AddReplicaRegions": [{"Region": REGION}]}));
    assert_eq!((&*same.code, &*same.message), ("InvalidParameterException", "Invalid replica region."));
    let r = e.ok("ReplicateSecretToRegions", json!({"SecretId": primary, "AddReplicaRegions": [{"Region": west}]}));
    assert_eq!(r["ReplicationStatus"][0]["Status"], "Failed");
    assert_eq!(e.call_in(west, "GetSecretValue", json!({"SecretId": "dup"})).unwrap()["SecretString"], "s2");
    let r = e.ok(
        "ReplicateSecretToRegions",
        json!({"SecretId": primary, "AddReplicaRegions": [{"Region": west}], "ForceOverwriteReplicaSecret": true}),
    );
    assert_eq!(r["ReplicationStatus"], json!([{"Region": west, "Status": "InSync"}]));
    assert_eq!(e.call_in(west, "GetSecretValue", json!({"SecretId": "dup"})).unwrap()["SecretString"], "s1");
    let gone = e.call_in(west, "GetSecretValue", json!({"SecretId": other["ARN"]})).unwrap_err();
    assert_eq!(gone.code, "ResourceNotFoundException");
}

#[test]
fn list_filters_search_words_and_negations() {
    let e = env();
    for (name, desc) in
        [("foo", "one two"), ("bar", "one and two"), ("baz", "one"), ("qux", "two"), ("none", "unrelated")]
    {
        e.clock.advance(Duration::seconds(1));
        e.ok("CreateSecret", json!({"Name": name, "Description": desc}));
    }
    let names = |filters: Value| -> Vec<String> {
        let r = e.ok("ListSecrets", json!({ "Filters": filters }));
        r["SecretList"].as_array().unwrap().iter().map(|s| s["Name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(json!([{"Key": "description", "Values": ["o t"]}])), vec!["foo", "bar"]);
    assert_eq!(names(json!([{"Key": "description", "Values": ["t"]}])), vec!["foo", "bar", "qux"]);
    // Values of one filter are OR'ed, a negated value included.
    assert_eq!(names(json!([{"Key": "description", "Values": ["one", "!two"]}])), vec!["foo", "bar", "baz", "none"]);
    assert_eq!(names(json!([{"Key": "description", "Values": ["!o"]}])), vec!["qux", "none"]);
    let no_key = e.err("ListSecrets", json!({"Filters": [{"Values": ["foo"]}]}));
    assert_eq!((&*no_key.code, &*no_key.message), ("InvalidParameterException", "Invalid filter key"));
    let no_values = e.err("ListSecrets", json!({"Filters": [{"Key": "name"}]}));
    assert_eq!(no_values.message, "Invalid filter values for key: name");
}

#[test]
fn secrets_without_value_and_forced_deletes() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "empty"}));
    assert!(e.ok("DescribeSecret", json!({"SecretId": "empty"})).get("VersionIdsToStages").is_none());
    // Forcing the deletion of a secret that does not exist succeeds, as on AWS.
    let d = e.ok("DeleteSecret", json!({"SecretId": "never", "ForceDeleteWithoutRecovery": true}));
    assert_eq!(d["Name"], "never");
    assert_eq!(e.err("DeleteSecret", json!({"SecretId": "never"})).code, "ResourceNotFoundException");
    let w = e.err(
        "DeleteSecret",
        json!({"SecretId": "never", "ForceDeleteWithoutRecovery": true, "RecoveryWindowInDays": 3}),
    );
    assert!(w.message.contains("RecoveryWindowInDays value must be between 7 and 30 days"));
}

#[test]
fn first_version_gets_awscurrent_and_tokens_are_idempotent() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "first"}));
    let p = e.ok("PutSecretValue", json!({"SecretId": "first", "SecretString": "x", "VersionStages": ["AWSPENDING"]}));
    assert_eq!(p["VersionStages"], json!(["AWSPENDING", "AWSCURRENT"]));
    // Retrying CreateSecret with the same token and value answers as the first call did.
    let body = json!({"Name": "idem-create", "SecretString": "a", "ClientRequestToken": T1});
    let first = e.ok("CreateSecret", body.clone());
    assert_eq!(e.ok("CreateSecret", body), first);
    let other = e.err("CreateSecret", json!({"Name": "idem-create", "SecretString": "b", "ClientRequestToken": T1}));
    assert_eq!(other.code, "ResourceExistsException");
    assert!(other.message.starts_with(&format!("You can't use ClientRequestToken {T1} because")));
    // CancelRotateSecret on a secret that never had a rotation function.
    assert_eq!(e.err("CancelRotateSecret", json!({"SecretId": "first"})).code, "InvalidRequestException");
}

#[test]
fn list_secrets_keeps_creation_order_within_one_millisecond() {
    // The clock does not move: every secret is created in the same millisecond. AWS lists by
    // creation; names in reverse order show that the tie is not broken by name.
    let e = env();
    let names = ["zeta", "yotta", "xray", "whiskey", "victor"];
    for n in names {
        e.ok("CreateSecret", json!({"Name": n, "SecretString": "s"}));
    }
    let listed = e.ok("ListSecrets", json!({}));
    let got: Vec<&str> = listed["SecretList"].as_array().unwrap().iter().map(|s| s["Name"].as_str().unwrap()).collect();
    assert_eq!(got, names);
    let desc = e.ok("ListSecrets", json!({"SortOrder": "desc"}));
    let got: Vec<&str> = desc["SecretList"].as_array().unwrap().iter().map(|s| s["Name"].as_str().unwrap()).collect();
    assert_eq!(got, names.iter().rev().copied().collect::<Vec<_>>());
}

/// Lists over their bound are refused by the plan (before authorization), by their length alone.
#[test]
fn huge_tag_and_replica_lists_are_refused_before_authorization() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "lim", "SecretString": "x"}));
    let tags: Vec<Value> = (0..40_000).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
    let regions: Vec<Value> = (0..40_000).map(|i| json!({"Region": format!("xx-test-{i}")})).collect();
    let c = ctx();
    let plan = |op: &str, body: Value| e.svc.plan(&c, op, &Input::Json(body)).map(|_| ()).unwrap_err();
    let too_many_tags = "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50";
    for (op, body) in [
        ("CreateSecret", json!({"Name": "n", "SecretString": "x", "Tags": tags})),
        ("TagResource", json!({"SecretId": "lim", "Tags": tags})),
    ] {
        let err = plan(op, body);
        assert_eq!((err.code.as_ref(), err.message.as_ref()), ("ValidationException", too_many_tags), "{op}");
    }
    let too_many_regions = "1 validation error detected: Value at 'addReplicaRegions' failed to satisfy constraint: Member must have length less than or equal to 64";
    for (op, body) in [
        ("CreateSecret", json!({"Name": "n", "SecretString": "x", "AddReplicaRegions": regions})),
        ("ReplicateSecretToRegions", json!({"SecretId": "lim", "AddReplicaRegions": regions})),
    ] {
        let err = plan(op, body);
        assert_eq!((err.code.as_ref(), err.message.as_ref()), ("ValidationException", too_many_regions), "{op}");
    }
    // Repeated Regions within the bound count once.
    let west = "us-west-2";
    let r = e.ok(
        "ReplicateSecretToRegions",
        json!({"SecretId": "lim", "AddReplicaRegions": [{"Region": west}, {"Region": west}, {"Region": west}]}),
    );
    assert_eq!(r["ReplicationStatus"].as_array().unwrap().len(), 1);
}

#[test]
fn stop_replication_promotes_the_replica() {
    let e = env();
    let west = "us-west-2";
    let c = e.ok(
        "CreateSecret",
        json!({"Name": "promo", "SecretString": "s1", "Description": "d", "AddReplicaRegions": [{"Region": west}]}),
    );
    e.ok("PutSecretValue", json!({"SecretId": "promo", "SecretString": "s2"}));
    let replica = c["ARN"].as_str().unwrap().replace(REGION, west);
    let err = e.err("StopReplicationToReplica", json!({"SecretId": "promo"}));
    assert_eq!(err.code, "InvalidRequestException");
    let out = e.call_in(west, "StopReplicationToReplica", json!({"SecretId": replica})).unwrap();
    assert_eq!(out, json!({"ARN": replica}));
    let d = e.call_in(west, "DescribeSecret", json!({"SecretId": "promo"})).unwrap();
    assert!(d.get("PrimaryRegion").is_none());
    assert_eq!((d["ARN"].as_str(), d["Description"].as_str()), (Some(replica.as_str()), Some("d")));
    assert_eq!(d["VersionIdsToStages"], e.stages("promo"));
    let prev = e.call_in(west, "GetSecretValue", json!({"SecretId": "promo", "VersionStage": "AWSPREVIOUS"})).unwrap();
    assert_eq!(prev["SecretString"], "s1");
    assert!(e.ok("DescribeSecret", json!({"SecretId": "promo"})).get("ReplicationStatus").is_none());
    // Standalone: the primary's changes no longer reach it, and its own are allowed.
    e.ok("PutSecretValue", json!({"SecretId": "promo", "SecretString": "s3"}));
    assert_eq!(e.call_in(west, "GetSecretValue", json!({"SecretId": "promo"})).unwrap()["SecretString"], "s2");
    e.call_in(west, "PutSecretValue", json!({"SecretId": "promo", "SecretString": "w"})).unwrap();
    assert_eq!(e.call_in(west, "GetSecretValue", json!({"SecretId": "promo"})).unwrap()["SecretString"], "w");
    // The primary can now be deleted; the promoted secret stays.
    e.ok("DeleteSecret", json!({"SecretId": "promo", "ForceDeleteWithoutRecovery": true}));
    assert_eq!(e.call_in(west, "GetSecretValue", json!({"SecretId": "promo"})).unwrap()["SecretString"], "w");
}

#[test]
fn every_operation_is_listed_once() {
    let names = crate::api::OPERATIONS.names();
    assert_eq!(
        names,
        vec![
            "BatchGetSecretValue",
            "CancelRotateSecret",
            "CreateSecret",
            "DeleteResourcePolicy",
            "DeleteSecret",
            "DescribeSecret",
            "GetRandomPassword",
            "GetResourcePolicy",
            "GetSecretValue",
            "ListResourcePolicies",
            "ListSecretVersionIds",
            "ListSecrets",
            "PutResourcePolicy",
            "PutSecretValue",
            "RemoveRegionsFromReplication",
            "ReplicateSecretToRegions",
            "RestoreSecret",
            "RotateSecret",
            "StopReplicationToReplica",
            "TagResource",
            "UntagResource",
            "UpdateSecret",
            "UpdateSecretVersionStage",
            "ValidateResourcePolicy",
        ]
    );
    let e = env();
    assert!(names.iter().all(|n| e.svc.has_operation(n)));
    let err = e.svc.plan(&ctx(), "AssociateCrossAccountReplica", &Input::Json(json!({}))).unwrap_err();
    assert_eq!(err.code, "UnknownOperationException");
}

/// Input is read and validated once, before anything is authorized.
#[test]
fn bad_input_is_refused_before_the_decision() {
    let e = env();
    e.ok("CreateSecret", json!({"Name": "valid", "SecretString": "x"}));
    for (op, body, code) in [
        ("CreateSecret", json!({"Name": "bad name!"}), "ValidationException"),
        ("PutSecretValue", json!({"SecretId": "valid"}), "InvalidRequestException"),
        ("DeleteSecret", json!({"SecretId": "valid", "RecoveryWindowInDays": 3}), "InvalidParameterException"),
        ("TagResource", json!({"SecretId": "valid"}), "ValidationException"),
        ("RotateSecret", json!({"SecretId": "valid", "ClientRequestToken": "short"}), "InvalidParameterException"),
        ("GetSecretValue", json!({"SecretId": "valid", "VersionStage": 5}), "SerializationException"),
    ] {
        let mut decided = false;
        let err = e
            .svc
            .call(&ctx(), op, &Input::Json(body), &mut |_| {
                decided = true;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.code, code, "{op}");
        assert!(!decided, "{op}: refused before authorization");
    }
}

/// The run answers with the secret the plan found and authorized: it is read once per call.
#[test]
fn the_run_uses_the_secret_the_plan_authorized() {
    use rampart_store::{ReadExt, TransactionExt};
    let e = env();
    e.ok("CreateSecret", json!({"Name": "once", "SecretString": "v1", "Description": "planned"}));
    let key = crate::model::secret_key(ACCOUNT, REGION, "once");
    // A change landing between the decision and the run is not read again.
    let change_behind_the_plan = |_: Vec<AuthzCheck>| {
        let mut rec: crate::model::SecretRec = e.store.get_json(crate::model::SECRETS, &key).unwrap().unwrap();
        rec.description = Some("changed".into());
        rampart_store::transact(e.store.as_ref(), |tx| tx.put_json(crate::model::SECRETS, &key, &rec)).unwrap();
        Ok(())
    };
    let mut decide = change_behind_the_plan;
    let out = e.svc.call(&ctx(), "DescribeSecret", &Input::Json(json!({"SecretId": "once"})), &mut decide).unwrap();
    assert_eq!(out.json_value()["Description"], "planned");
    assert_eq!(e.ok("DescribeSecret", json!({"SecretId": "once"}))["Description"], "changed");
    // GetSecretValue too: labels moved behind the plan do not change which version it answers.
    let mut unlabel = |_: Vec<AuthzCheck>| {
        let mut rec: crate::model::SecretRec = e.store.get_json(crate::model::SECRETS, &key).unwrap().unwrap();
        rec.versions.iter_mut().for_each(|v| v.stages.clear());
        rampart_store::transact(e.store.as_ref(), |tx| tx.put_json(crate::model::SECRETS, &key, &rec)).unwrap();
        Ok(())
    };
    let out = e.svc.call(&ctx(), "GetSecretValue", &Input::Json(json!({"SecretId": "once"})), &mut unlabel).unwrap();
    assert_eq!(out.json_value()["SecretString"], "v1");
    assert_eq!(e.err("GetSecretValue", json!({"SecretId": "once"})).code, "ResourceNotFoundException");
}
