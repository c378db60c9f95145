//! Secrets Manager (awsJson1_1, `X-Amz-Target: secretsmanager.<Operation>`).
//!
//! * Secrets live in the store as [`model::SecretRec`]; every version's value is encrypted with its
//!   own data key from KMS ([`keys::EnvelopeKeys`]), never stored in plaintext.
//! * Staging labels (AWSCURRENT / AWSPREVIOUS / AWSPENDING) move exactly as AWS moves them.
//! * Deleted secrets are purged once their recovery window ends: lazily when touched and by
//!   [`SecretsManager::tick`], which the server runs periodically (also for scheduled rotations).
//! * Rotation runs the four Lambda steps through a rotator configured on the server
//!   ([`rotation::Rotators`]).
//!
//! Authorization is declared per operation ([`Service::authorize`]): the action, the secret ARN,
//! the secret's resource policy and the `secretsmanager:*` / `aws:*` condition keys.
#![deny(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

pub mod error;
mod input;
pub mod keys;
pub mod model;
mod ops;
pub mod password;
mod replication;
pub mod rotation;
pub mod schedule;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};

use rampart_protocol::{AwsError, Protocol};
use rampart_service::{
    Authorizer, AuthzCheck, AuthzPlan, Caller, ContextValue, Input, Output, RequestContext, ResourcePolicy, Service,
};
use rampart_store::{transact, ReadExt, Store};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::{Result, SmError};
use crate::input::In;
use crate::keys::EnvelopeKeys;
use crate::model::{secret_key, SecretRec, SECRETS, VALUES};
use crate::rotation::Rotators;

/// Time source; tests inject their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The operations Rampart implements (replication between the Regions of one server; not
/// StopReplicationToReplica).
pub const OPERATIONS: &[&str] = &[
    "BatchGetSecretValue",
    "RemoveRegionsFromReplication",
    "ReplicateSecretToRegions",
    "CancelRotateSecret",
    "CreateSecret",
    "DeleteResourcePolicy",
    "DeleteSecret",
    "DescribeSecret",
    "GetRandomPassword",
    "GetResourcePolicy",
    "GetSecretValue",
    "ListSecretVersionIds",
    "ListSecrets",
    "PutResourcePolicy",
    "PutSecretValue",
    "RestoreSecret",
    "RotateSecret",
    "TagResource",
    "UntagResource",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "ValidateResourcePolicy",
];

/// The store lease that makes one node of a cluster the sweeper.
const SWEEPER_LEASE: &str = "secretsmanager/sweeper";

/// The Secrets Manager domain: store, keys, rotators, clock.
pub struct SecretsManager {
    store: Arc<dyn Store>,
    keys: Arc<dyn EnvelopeKeys>,
    rotators: Rotators,
    clock: Arc<dyn Clock>,
    authorizer: OnceLock<Arc<dyn Authorizer>>,
    /// Secrets (ARNs) with a rotation running now.
    rotating: Mutex<HashSet<String>>,
    /// Run rotations on a background thread (the server) or inline (deterministic unit tests).
    background_rotation: bool,
    /// The last creation time handed out (Unix ms): ListSecrets orders by creation, so two secrets
    /// created in the same millisecond get distinct, increasing times.
    last_created: std::sync::atomic::AtomicI64,
}

impl SecretsManager {
    pub fn new(store: Arc<dyn Store>, keys: Arc<dyn EnvelopeKeys>, rotators: Rotators) -> Arc<Self> {
        Self::with_clock(store, keys, rotators, Arc::new(SystemClock), true)
    }

    /// With an injected clock; `background_rotation = false` runs rotations inline.
    pub fn with_clock(
        store: Arc<dyn Store>,
        keys: Arc<dyn EnvelopeKeys>,
        rotators: Rotators,
        clock: Arc<dyn Clock>,
        background_rotation: bool,
    ) -> Arc<Self> {
        Arc::new(SecretsManager {
            store,
            keys,
            rotators,
            clock,
            authorizer: OnceLock::new(),
            rotating: Mutex::new(HashSet::new()),
            background_rotation,
            last_created: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// The authorizer for per-secret checks inside BatchGetSecretValue.
    pub fn set_authorizer(&self, authorizer: Arc<dyn Authorizer>) {
        let _ = self.authorizer.set(authorizer);
    }

    /// The pipeline service.
    pub fn service(self: &Arc<Self>) -> Arc<dyn Service> {
        Arc::new(SecretsService { sm: self.clone() })
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// A creation time for a new secret: now, or 1 ms after the previous one if that is later.
    pub(crate) fn creation_ms(&self) -> i64 {
        use std::sync::atomic::Ordering;
        let now = self.now_ms();
        let prev = self
            .last_created
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(now.max(last + 1)))
            .unwrap_or(now);
        now.max(prev + 1)
    }

    /// Find a secret by name, full ARN or partial ARN (no suffix), in the caller's account
    /// unless an ARN names another. Secrets past their recovery window are purged here.
    pub(crate) fn find(&self, ctx: &RequestContext, id: &str) -> Result<Option<SecretRec>> {
        let (account, region, candidates) = match parse_secret_arn(id) {
            Some((region, account, rest)) => {
                let mut c = Vec::new();
                if let Some((name, suffix)) = rest.len().checked_sub(7).and_then(|n| rest.split_at_checked(n)) {
                    if !name.is_empty() && suffix.starts_with('-') {
                        c.push((name.to_string(), true));
                    }
                }
                c.push((rest.to_string(), false));
                (account, region, c)
            }
            None => (ctx.caller.account_id.clone(), ctx.region.clone(), vec![(id.to_string(), false)]),
        };
        for (name, full) in candidates {
            let Some(rec) = self.store.get_json::<SecretRec>(SECRETS, &secret_key(&account, &region, &name))? else {
                continue;
            };
            if full && rec.arn != id {
                continue;
            }
            if rec.is_replica() {
                return self.replica_view(rec);
            }
            if rec.deletion_date.is_some_and(|d| d <= self.now_ms()) {
                self.purge(&rec)?;
                return Ok(None);
            }
            return Ok(Some(rec));
        }
        Ok(None)
    }

    /// Remove a secret and all its values for good.
    pub(crate) fn purge(&self, rec: &SecretRec) -> Result<()> {
        transact(self.store.as_ref(), |tx| -> Result<()> {
            // Only purge the record we saw (a secret of the same name may have been created since).
            if let Some(cur) = tx.get_json::<SecretRec>(SECRETS, &rec.key())? {
                if cur.arn == rec.arn {
                    tx.delete(SECRETS, &rec.key())?;
                }
            }
            for (k, _) in tx.scan(VALUES, &format!("{}#", rec.arn), None, 0)? {
                tx.delete(VALUES, &k)?;
            }
            Ok(())
        })?;
        tracing::info!(secret = %rec.arn, "secret purged after its recovery window");
        Ok(())
    }

    /// Every secret of one account and region (replicas as views of their primaries).
    pub(crate) fn all(&self, account: &str, region: &str) -> Result<Vec<SecretRec>> {
        let mut out = Vec::new();
        for (_, r) in self.store.scan_json::<SecretRec>(SECRETS, &format!("{account}/{region}/"))? {
            if r.is_replica() {
                out.extend(self.replica_view(r)?);
            } else {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Periodic work: purge secrets past their recovery window, start due scheduled rotations.
    pub fn tick(self: &Arc<Self>) -> Result<()> {
        let now = self.now_ms();
        for (_, rec) in self.store.scan_json::<SecretRec>(SECRETS, "")? {
            if rec.deletion_date.is_some_and(|d| d <= now) {
                self.purge(&rec)?;
                continue;
            }
            if rec.is_deleted() || !rec.rotation.enabled {
                continue;
            }
            if rec.rotation.next_rotation.is_some_and(|n| n <= now) {
                if let Err(e) = self.start_scheduled_rotation(&rec) {
                    tracing::warn!(secret = %rec.arn, error = %AwsError::from(e), "scheduled rotation did not start");
                }
            }
        }
        Ok(())
    }

    /// Run [`SecretsManager::tick`] now and then every `interval` on a background thread, for as
    /// long as the service lives.
    pub fn start_sweeper(self: &Arc<Self>, interval: std::time::Duration) {
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("secrets-sweeper".into()).spawn(move || loop {
            match weak.upgrade() {
                // One node of a cluster sweeps at a time: purges and scheduled rotations run once.
                Some(sm) => match sm.store.try_lease(SWEEPER_LEASE, interval.saturating_mul(3)) {
                    Ok(true) => {
                        if let Err(e) = sm.tick() {
                            tracing::warn!(error = %AwsError::from(e), "secrets sweep failed");
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "secrets sweeper lease unavailable"),
                },
                None => return,
            }
            std::thread::sleep(interval);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the secrets sweeper");
        }
    }

    /// A request context for work the service does on its own (scheduled rotations, built-in
    /// rotators): the account's root identity, from loopback.
    pub(crate) fn service_context(&self, account: &str, region: &str) -> RequestContext {
        RequestContext {
            request_id: format!("rampart-secretsmanager-{}", self.now_ms()),
            caller: Caller::root(account, ""),
            region: region.to_string(),
            source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            user_agent: "rampart-secretsmanager".into(),
            time: self.clock.now(),
            secure_transport: true,
        }
    }
}

/// `arn:aws:secretsmanager:REGION:ACCOUNT:secret:REST` → (region, account, rest).
pub(crate) fn parse_secret_arn(s: &str) -> Option<(String, String, &str)> {
    let rest = s.strip_prefix("arn:")?;
    let mut parts = rest.splitn(6, ':');
    let _partition = parts.next()?;
    if parts.next()? != "secretsmanager" {
        return None;
    }
    let region = parts.next()?.to_string();
    let account = parts.next()?.to_string();
    if parts.next()? != "secret" {
        return None;
    }
    let name = parts.next()?;
    Some((region, account, name))
}

/// A secret ARN for a new secret. The 6-character suffix is derived from the request ID, so
/// authorization and the handler of one CreateSecret call see the same ARN; it is random across calls.
pub(crate) fn new_secret_arn(ctx: &RequestContext, name: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let digest = Sha256::digest(format!("{}\0{}", ctx.request_id, name).as_bytes());
    let suffix: String =
        digest.iter().take(6).filter_map(|b| ALPHABET.get(*b as usize % ALPHABET.len()).map(|&c| c as char)).collect();
    format!("arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}", ctx.region, ctx.caller.account_id)
}

struct SecretsService {
    sm: Arc<SecretsManager>,
}

fn s(v: impl Into<String>) -> ContextValue {
    ContextValue::String(v.into())
}

impl SecretsService {
    /// The check for an operation on one (existing or not) secret.
    fn secret_check(&self, ctx: &RequestContext, action: &str, id: &str) -> Result<AuthzCheck> {
        let action = format!("secretsmanager:{action}");
        let Some(rec) = self.sm.find(ctx, id)? else {
            // AWS authorizes against what was asked for; the handler then reports it missing.
            let mut c = AuthzCheck::new(action, id);
            c.context.push(("secretsmanager:SecretId".into(), s(id)));
            return Ok(c);
        };
        let mut c = AuthzCheck::new(action, rec.arn.clone());
        if rec.account != ctx.caller.account_id {
            c.resource_account = Some(rec.account.clone());
        }
        if let Some(p) = &rec.policy {
            c.resource_policy = Some(ResourcePolicy::new(rec.arn.as_str(), p.as_str(), false));
        }
        c.context.push(("secretsmanager:SecretId".into(), s(rec.arn.clone())));
        for (k, v) in &rec.tags {
            c.context.push((format!("aws:ResourceTag/{k}").into(), s(v.clone())));
            c.context.push((format!("secretsmanager:ResourceTag/{k}").into(), s(v.clone())));
        }
        if let Some(l) = &rec.rotation.lambda_arn {
            c.context.push(("secretsmanager:resource/AllowRotationLambdaArn".into(), s(l.clone())));
        }
        Ok(c)
    }

    fn plan(&self, ctx: &RequestContext, op: &str, body: In<'_>) -> Result<AuthzPlan> {
        let request_tags = |c: &mut AuthzCheck, tags: &[(String, String)]| {
            for (k, v) in tags {
                c.context.push((format!("aws:RequestTag/{k}").into(), s(v.clone())));
            }
            c.context.push(("aws:TagKeys".into(), ContextValue::List(tags.iter().map(|(k, _)| k.clone()).collect())));
        };
        let kms_arn = |key: Option<&str>| -> Option<String> {
            key.map(|k| self.sm.keys.key_arn(ctx, Some(k)).unwrap_or_else(|_| k.to_string()))
        };
        let checks = match op {
            "ListSecrets" | "GetRandomPassword" | "BatchGetSecretValue" => {
                vec![AuthzCheck::new(format!("secretsmanager:{op}"), "*")]
            }
            "ValidateResourcePolicy" => match body.str("SecretId")? {
                Some(id) => vec![self.secret_check(ctx, op, id)?],
                None => vec![AuthzCheck::new("secretsmanager:ValidateResourcePolicy", "*")],
            },
            "CreateSecret" => {
                let name = body.req_str("Name")?;
                let arn = new_secret_arn(ctx, name);
                let mut c = AuthzCheck::new("secretsmanager:CreateSecret", arn.clone());
                c.context.push(("secretsmanager:Name".into(), s(name)));
                if let Some(d) = body.str("Description")? {
                    c.context.push(("secretsmanager:Description".into(), s(d)));
                }
                if let Some(k) = kms_arn(body.str("KmsKeyId")?) {
                    c.context.push(("secretsmanager:KmsKeyArn".into(), s(k)));
                }
                let tags = body.tags("Tags")?.unwrap_or_default();
                let mut checks = Vec::new();
                if !tags.is_empty() {
                    request_tags(&mut c, &tags);
                    let mut t = AuthzCheck::new("secretsmanager:TagResource", arn.clone());
                    request_tags(&mut t, &tags);
                    checks.push(c);
                    checks.push(t);
                } else {
                    checks.push(c);
                }
                // Replicating on creation also needs permission to replicate (as AWS requires).
                if !replication::replica_regions(body)?.is_empty() {
                    checks.push(AuthzCheck::new("secretsmanager:ReplicateSecretToRegions", arn));
                }
                checks
            }
            _ => {
                let id = body.req_str("SecretId")?;
                if op == "ReplicateSecretToRegions" {
                    // The list's bound before the secret is read and the call authorized.
                    replication::replica_regions(body)?;
                }
                let mut c = self.secret_check(ctx, op, id)?;
                match op {
                    "GetSecretValue" => {
                        if let Some(v) = body.str("VersionId")? {
                            c.context.push(("secretsmanager:VersionId".into(), s(v)));
                        }
                        if let Some(v) = body.str("VersionStage")? {
                            c.context.push(("secretsmanager:VersionStage".into(), s(v)));
                        }
                    }
                    "UpdateSecret" => {
                        if let Some(d) = body.str("Description")? {
                            c.context.push(("secretsmanager:Description".into(), s(d)));
                        }
                        if let Some(k) = kms_arn(body.str("KmsKeyId")?) {
                            c.context.push(("secretsmanager:KmsKeyArn".into(), s(k)));
                        }
                    }
                    "UpdateSecretVersionStage" => {
                        if let Some(v) = body.str("VersionStage")? {
                            c.context.push(("secretsmanager:VersionStage".into(), s(v)));
                        }
                    }
                    "RotateSecret" => {
                        if let Some(l) = body.str("RotationLambdaARN")? {
                            c.context.push(("secretsmanager:RotationLambdaARN".into(), s(l)));
                        }
                        c.context.push((
                            "secretsmanager:RotateImmediately".into(),
                            s(body.bool("RotateImmediately")?.unwrap_or(true).to_string()),
                        ));
                        c.context.push((
                            "secretsmanager:ModifyRotationRules".into(),
                            s(body.get("RotationRules").is_some().to_string()),
                        ));
                    }
                    "DeleteSecret" => {
                        if let Some(d) = body.int("RecoveryWindowInDays")? {
                            c.context.push(("secretsmanager:RecoveryWindowInDays".into(), s(d.to_string())));
                        }
                        if let Some(f) = body.bool("ForceDeleteWithoutRecovery")? {
                            c.context.push(("secretsmanager:ForceDeleteWithoutRecovery".into(), s(f.to_string())));
                        }
                    }
                    "PutResourcePolicy" => {
                        c.context.push((
                            "secretsmanager:BlockPublicPolicy".into(),
                            s(body.bool("BlockPublicPolicy")?.unwrap_or(true).to_string()),
                        ));
                    }
                    "TagResource" => {
                        let tags = body.tags("Tags")?.unwrap_or_default();
                        request_tags(&mut c, &tags);
                    }
                    "UntagResource" => {
                        let keys = body.str_list("TagKeys")?.unwrap_or_default();
                        c.context.push((
                            "aws:TagKeys".into(),
                            ContextValue::List(keys.iter().map(|k| k.to_string()).collect()),
                        ));
                    }
                    _ => {}
                }
                vec![c]
            }
        };
        Ok(AuthzPlan::Checks(checks))
    }
}

impl Service for SecretsService {
    fn signing_name(&self) -> &'static str {
        "secretsmanager"
    }

    fn event_source(&self) -> &'static str {
        "secretsmanager.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsJson1_1
    }

    fn json_target_prefix(&self) -> &'static str {
        "secretsmanager"
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        // Families not yet moved to typed operations: plan, decide, run.
        if let AuthzPlan::Checks(checks) = self.legacy_authorize(ctx, operation, input)? {
            decide(checks)?;
        }
        self.legacy_invoke(ctx, operation, input)
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.legacy_authorize(ctx, operation, input)
    }
}

impl SecretsService {
    fn legacy_authorize(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.plan(ctx, operation, In(input.json())).map_err(AwsError::from)
    }

    fn legacy_invoke(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<Output, AwsError> {
        self.sm.invoke(ctx, operation, In(input.json())).map(Output::Json).map_err(AwsError::from)
    }
}

impl SecretsManager {
    fn invoke(self: &Arc<Self>, ctx: &RequestContext, op: &str, body: In<'_>) -> Result<serde_json::Value> {
        self.refuse_on_replica(ctx, op, body)?;
        match op {
            "CreateSecret" => self.create_secret(ctx, body),
            "DescribeSecret" => self.describe_secret(ctx, body),
            "ListSecrets" => self.list_secrets(ctx, body),
            "GetSecretValue" => self.get_secret_value(ctx, body),
            "BatchGetSecretValue" => self.batch_get_secret_value(ctx, body),
            "PutSecretValue" => self.put_secret_value(ctx, body),
            "UpdateSecret" => self.update_secret(ctx, body),
            "UpdateSecretVersionStage" => self.update_secret_version_stage(ctx, body),
            "ListSecretVersionIds" => self.list_secret_version_ids(ctx, body),
            "DeleteSecret" => self.delete_secret(ctx, body),
            "RestoreSecret" => self.restore_secret(ctx, body),
            "RotateSecret" => self.rotate_secret(ctx, body),
            "CancelRotateSecret" => self.cancel_rotate_secret(ctx, body),
            "GetRandomPassword" => self.get_random_password(body),
            "PutResourcePolicy" => self.put_resource_policy(ctx, body),
            "GetResourcePolicy" => self.get_resource_policy(ctx, body),
            "DeleteResourcePolicy" => self.delete_resource_policy(ctx, body),
            "ValidateResourcePolicy" => self.validate_resource_policy(ctx, body),
            "TagResource" => self.tag_resource(ctx, body),
            "UntagResource" => self.untag_resource(ctx, body),
            "ReplicateSecretToRegions" => self.replicate_secret_to_regions(ctx, body),
            "RemoveRegionsFromReplication" => self.remove_regions_from_replication(ctx, body),
            _ => Err(SmError::Aws(AwsError::unknown_operation("secretsmanager", op))),
        }
    }
}

#[cfg(test)]
mod tests;
