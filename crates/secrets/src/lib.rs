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
//! Each operation is one type (module `api`), listed once: its input is read once, its plan
//! declares what to authorize (the action, the secret ARN, the secret's resource policy and the
//! `secretsmanager:*` / `aws:*` condition keys), and it runs on the secret the plan looked up.
#![deny(clippy::string_slice, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::string_slice, clippy::indexing_slicing))]

mod api;
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
use rampart_service::{Authorizer, AuthzPlan, Caller, Input, Output, RequestContext, Service};
use rampart_store::{transact, ReadExt, Store};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::Result;
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
        // GetSecretValue reads the secret and its version on every call: kept in memory where
        // the store can (values are stored encrypted).
        store.cache_table(model::SECRETS);
        store.cache_table(model::VALUES);
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

impl Service for SecretsService {
    fn signing_name(&self) -> &'static str {
        "secretsmanager"
    }

    /// GetSecretValue decrypts with KMS, which may call an external key store's proxy.
    fn reads_may_call_out(&self) -> bool {
        self.sm.keys.may_call_out()
    }

    fn event_source(&self) -> &'static str {
        "secretsmanager.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsJson1_1
    }

    fn has_operation(&self, operation: &str) -> bool {
        api::OPERATIONS.has(operation)
    }

    fn operation_names(&self) -> Vec<&'static str> {
        api::OPERATIONS.names()
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        api::OPERATIONS
            .call(&self.sm, ctx, operation, input, decide)
            .unwrap_or_else(|| Err(AwsError::unknown_operation("secretsmanager", operation)))
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        api::OPERATIONS
            .plan(&self.sm, ctx, operation, input)
            .unwrap_or_else(|| Err(AwsError::unknown_operation("secretsmanager", operation)))
    }
}

#[cfg(test)]
mod tests;
