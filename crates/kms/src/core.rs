//! The KMS core: keys in the store, their lifecycle (lazy deletion and rotation), key
//! resolution (ID, ARN, alias), and the authorization checks each use of a key needs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rampart_service::{Authorizer, AuthzCheck, ContextKey, ContextValue, RequestContext, ResourcePolicy};
use rampart_store::{transact, ReadExt, Sealer, Store, TransactionExt};
use rand::RngCore;
use serde_json::{json, Value};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::crypto::{self, KeySpec, KeyUsage};
use crate::error::{KmsError, Result};
use crate::model::*;

/// The clock KMS uses for key lifecycles (deletion windows, rotation). Injectable for tests.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

const MAX_CACHED_KEYS: usize = 100_000;
const USAGE_SHARDS: usize = 16;

/// GetKeyLastUsage: a key's last use is kept in memory on every successful cryptographic call
/// and written to the store at most once per this interval per key, so a restart (or another
/// node of a cluster) sees a use at most this much older than the last one.
pub const USAGE_PERSIST_INTERVAL_MS: i64 = 60_000;

/// A key's last successful cryptographic use.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct LastUse {
    pub operation: String,
    /// Milliseconds since the epoch.
    pub at: i64,
    pub request_id: String,
    /// When this use was written to the store (0: not yet).
    #[serde(default, skip)]
    pub persisted_at: i64,
}

/// A key as loaded: the record, its opened material versions and its effective policy
/// (the key policy with one statement per grant).
pub(crate) struct Loaded {
    raw: Vec<u8>,
    pub rec: KeyRec,
    pub arn: String,
    /// Per version; `None` where imported material was deleted or expired.
    materials: Vec<Option<Zeroizing<Vec<u8>>>>,
    /// The effective policy, compiled once per load and shared by every call's check; named
    /// `<arn>/policy/default` in authorization explanations.
    policy: ResourcePolicy,
}

impl Loaded {
    pub fn current_version(&self) -> u32 {
        self.rec.current_index().unwrap_or(0) as u32
    }

    pub fn material(&self, version: u32) -> Option<&[u8]> {
        self.materials.get(version as usize).and_then(|m| m.as_deref()).map(|m| m.as_slice())
    }

    pub fn current_material(&self) -> Result<&[u8]> {
        self.rec
            .current_index()
            .and_then(|i| self.material(i as u32))
            .ok_or_else(|| KmsError::InvalidState(format!("{} is pending import.", self.arn)))
    }

    /// Every material version, oldest first (multi-Region replicas copy them all); `None` where
    /// imported material is absent.
    pub fn materials(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.materials.iter().map(|m| m.as_deref().map(|m| m.as_slice()))
    }

    pub fn public_key(&self) -> Result<Vec<u8>> {
        self.rec
            .public_key
            .as_deref()
            .and_then(|p| B64.decode(p).ok())
            .ok_or_else(|| KmsError::Internal("asymmetric key without public key".into()))
    }

    /// Cryptographic use requires the Enabled state.
    pub fn require_enabled(&self) -> Result<()> {
        match self.rec.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", self.arn))),
            KeyState::PendingDeletion => Err(pending(&self.arn)),
            KeyState::PendingImport => Err(KmsError::InvalidState(format!("{} is pending import.", self.arn))),
        }
    }

    /// Management calls are refused while the key is pending deletion.
    pub fn require_not_pending(&self) -> Result<()> {
        if self.rec.state == KeyState::PendingDeletion {
            Err(pending(&self.arn))
        } else {
            Ok(())
        }
    }
}

pub fn pending(arn: &str) -> KmsError {
    KmsError::InvalidState(format!("{arn} is pending deletion."))
}

/// KMS over one store. Build once with [`Kms::new`]; [`Kms::service`] is the pipeline service,
/// and the `pub` methods in `api.rs` are the envelope-encryption API for other services.
pub struct Kms {
    pub(crate) store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    pub(crate) authorizer: Arc<dyn Authorizer>,
    clock: RwLock<Clock>,
    cache: RwLock<HashMap<String, Arc<Loaded>>>,
    /// GetKeyLastUsage: each key's last successful cryptographic use (by store key).
    /// Sharded by key so concurrent calls on different keys rarely share a lock; keyed by ARN.
    usage: [Mutex<HashMap<String, LastUse>>; USAGE_SHARDS],
    /// When this deployment began tracking key use (stored once, first use).
    tracking_start: OnceLock<i64>,
    /// Accept `http://` external key store proxies (and explicit ports): `--dev` or
    /// `RAMPART_KMS_XKS_ALLOW_HTTP=1`.
    pub(crate) xks_allow_http: AtomicBool,
    /// A custom key store exists (or a key in one was loaded): calls may reach a proxy.
    pub(crate) xks_in_use: AtomicBool,
}

impl Kms {
    pub fn new(store: Arc<dyn Store>, sealer: Arc<Sealer>, authorizer: Arc<dyn Authorizer>) -> Arc<Kms> {
        // Every cryptographic call reads its key record: kept in memory where the store can
        // (the rows hold sealed material only).
        store.cache_table(KEYS);
        let stores_exist = store.scan(STORES, "", None, 1).map(|r| !r.is_empty()).unwrap_or(true);
        Arc::new(Kms {
            store,
            sealer,
            authorizer,
            clock: RwLock::new(Arc::new(OffsetDateTime::now_utc)),
            cache: RwLock::new(HashMap::new()),
            usage: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            tracking_start: OnceLock::new(),
            xks_allow_http: AtomicBool::new(false),
            xks_in_use: AtomicBool::new(stores_exist),
        })
    }

    /// Replace the clock (tests: deletion windows and rotation periods without waiting).
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.write().unwrap_or_else(|p| p.into_inner()) = clock;
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock.read().unwrap_or_else(|p| p.into_inner()))()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    fn material_aad(arn: &str, material_id: &str) -> Vec<u8> {
        format!("kms/key/{arn}/{material_id}").into_bytes()
    }

    /// A new material version, sealed.
    pub(crate) fn new_version(
        &self,
        arn: &str,
        material: &[u8],
        rotation_type: Option<&str>,
        now: i64,
    ) -> Result<MaterialVersion> {
        let mut id = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        self.seal_version(arn, material, &hex::encode(id), rotation_type, now)
    }

    /// A material version with a given ID, sealed for the key `arn` (multi-Region copies share IDs).
    pub(crate) fn seal_version(
        &self,
        arn: &str,
        material: &[u8],
        material_id: &str,
        rotation_type: Option<&str>,
        created: i64,
    ) -> Result<MaterialVersion> {
        let sealed = self
            .sealer
            .seal(material, &Self::material_aad(arn, material_id))
            .map_err(|e| KmsError::Internal(format!("sealing key material of {arn}: {e}")))?;
        Ok(MaterialVersion {
            material_id: material_id.to_string(),
            created,
            rotation_type: rotation_type.map(str::to_string),
            sealed: B64.encode(sealed),
            expiration_model: None,
            valid_to: None,
            description: None,
            pending_rotation: false,
        })
    }

    /// Seal `plaintext` under the master key for `purpose` (import tokens).
    pub(crate) fn seal_aux(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.sealer
            .seal(plaintext, format!("kms/{purpose}").as_bytes())
            .map_err(|e| KmsError::Internal(format!("sealing {purpose}: {e}")))
    }

    /// Open what [`Kms::seal_aux`] sealed; `None` if it does not open (not ours, or tampered).
    pub(crate) fn open_aux(&self, purpose: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.sealer.open(sealed, format!("kms/{purpose}").as_bytes()).ok()
    }

    fn open(&self, rec: &KeyRec, raw: Vec<u8>) -> Result<Loaded> {
        let arn = rec.arn();
        let materials = rec
            .versions
            .iter()
            .map(|v| {
                if !v.present() {
                    return Ok(None);
                }
                let sealed =
                    B64.decode(&v.sealed).map_err(|_| KmsError::Internal("sealed material is not base64".into()))?;
                self.sealer
                    .open(&sealed, &Self::material_aad(&arn, &v.material_id))
                    .map(Some)
                    .map_err(|e| KmsError::Internal(format!("key material of {arn} does not open: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let policy = ResourcePolicy::compiled(format!("{arn}/policy/default"), effective_policy(rec), true);
        Ok(Loaded { raw, policy, rec: rec.clone(), arn, materials })
    }

    /// Load a key, applying its lifecycle first: a key whose deletion window has ended is deleted
    /// (material included) and reported absent; a key whose rotation is due is rotated.
    pub(crate) fn load(&self, account: &str, region: &str, key_id: &str) -> Result<Option<Arc<Loaded>>> {
        let sk = key_store_key(account, region, key_id);
        for _ in 0..3 {
            let Some(raw) = self.store.get(KEYS, &sk)? else {
                self.cache.write().unwrap_or_else(|p| p.into_inner()).remove(&sk);
                return Ok(None);
            };
            let cached =
                self.cache.read().unwrap_or_else(|p| p.into_inner()).get(&sk).filter(|l| l.raw == raw).cloned();
            let loaded = match cached {
                Some(l) => l,
                None => {
                    let rec: KeyRec = serde_json::from_slice(&raw)
                        .map_err(|e| KmsError::Internal(format!("key record {sk} is corrupt: {e}")))?;
                    let l = Arc::new(self.open(&rec, raw)?);
                    let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
                    if cache.len() >= MAX_CACHED_KEYS {
                        cache.clear();
                    }
                    cache.insert(sk.clone(), l.clone());
                    l
                }
            };
            let now = self.now_ms();
            let rec = &loaded.rec;
            if rec.state == KeyState::PendingDeletion && rec.deletion_date.is_some_and(|d| d <= now) {
                if self.delete_key_now(rec)? {
                    continue;
                }
                // A multi-Region primary waits for its replicas to be deleted.
                return Ok(Some(loaded));
            }
            if rec.versions.iter().any(|v| v.present() && v.valid_to.is_some_and(|t| t <= now)) {
                self.expire_material(rec, now)?;
                continue;
            }
            if rec.rotation_enabled && rec.state == KeyState::Enabled && rec.next_rotation.is_some_and(|t| t <= now) {
                // A multi-Region key rotates as one, from its primary.
                let rotating_region = match rec.multi_region_primary {
                    Some(false) => self
                        .multi_region_copies(account, key_id)?
                        .into_iter()
                        .find(|c| c.multi_region_primary == Some(true))
                        .map(|c| c.region)
                        .unwrap_or_else(|| region.to_string()),
                    _ => region.to_string(),
                };
                self.rotate(account, &rotating_region, key_id, "AUTOMATIC")?;
                continue;
            }
            if rec.xks_key_id.is_some() {
                self.mark_xks_in_use();
            }
            return Ok(Some(loaded));
        }
        Err(KmsError::Internal(format!("key {sk} keeps changing")))
    }

    /// The end of a deletion window: the record, its sealed material, its aliases are gone.
    /// Returns false when the key stays: a multi-Region primary whose replicas still exist
    /// (AWS's `PendingReplicaDeletion`).
    fn delete_key_now(&self, rec: &KeyRec) -> Result<bool> {
        let sk = rec.store_key();
        let now = self.now_ms();
        let deleted = transact(self.store.as_ref(), |tx| -> Result<bool> {
            let Some(current) = tx.get_json::<KeyRec>(KEYS, &sk)? else { return Ok(true) };
            if current.state != KeyState::PendingDeletion || current.deletion_date.is_none_or(|d| d > now) {
                return Ok(true);
            }
            if current.multi_region_primary == Some(true) {
                let suffix = format!("/{}", current.key_id);
                let replicas = tx
                    .scan_json::<KeyRec>(KEYS, &format!("{}/", current.account))?
                    .into_iter()
                    .any(|(k, r)| k.ends_with(&suffix) && r.multi_region_primary == Some(false));
                if replicas {
                    return Ok(false);
                }
            }
            tx.delete(KEYS, &sk)?;
            let prefix = format!("{}/{}/", rec.account, rec.region);
            for (k, a) in tx.scan_json::<AliasRec>(ALIASES, &prefix)? {
                if a.target_key_id == rec.key_id {
                    tx.delete(ALIASES, &k)?;
                }
            }
            Ok(true)
        })?;
        if deleted {
            self.cache.write().unwrap_or_else(|p| p.into_inner()).remove(&sk);
            tracing::info!(key = %rec.arn(), "kms key deleted at the end of its waiting period");
        }
        Ok(deleted)
    }

    /// Imported key material whose `ValidTo` has passed is deleted; the key is PendingImport
    /// (unless pending deletion) until the same material is imported again.
    fn expire_material(&self, rec: &KeyRec, now: i64) -> Result<()> {
        self.update(&rec.account, &rec.region, &rec.key_id, |r| {
            for v in r.versions.iter_mut().filter(|v| v.present() && v.valid_to.is_some_and(|t| t <= now)) {
                v.sealed.clear();
                v.valid_to = None;
            }
            r.versions.retain(|v| v.present() || !v.pending_rotation);
            if r.state != KeyState::PendingDeletion && !r.all_imported() {
                r.state = KeyState::PendingImport;
            }
            Ok(())
        })?;
        tracing::info!(key = %rec.arn(), "imported key material expired");
        Ok(())
    }

    /// Every Region's copy of a multi-Region key (the primary and its replicas).
    pub(crate) fn multi_region_copies(&self, account: &str, key_id: &str) -> Result<Vec<KeyRec>> {
        let suffix = format!("/{key_id}");
        Ok(self
            .store
            .scan_json::<KeyRec>(KEYS, &format!("{account}/"))?
            .into_iter()
            .filter(|(k, r)| k.ends_with(&suffix) && r.key_id == key_id)
            .map(|(_, r)| r)
            .collect())
    }

    /// DescribeKey's `KeyMetadata`: the record's, plus `MultiRegionConfiguration` for multi-Region
    /// keys and `PendingReplicaDeletion` for a primary waiting for its replicas.
    pub(crate) fn key_metadata(&self, rec: &KeyRec) -> Result<Value> {
        let mut m = rec.metadata();
        // A key in a custom key store that is not connected is Unavailable.
        if rec.state != KeyState::PendingDeletion && !self.key_store_connected(rec)? {
            put(&mut m, "KeyState", json!("Unavailable"));
        }
        let Some(kind) = rec.multi_region_type() else { return Ok(m) };
        let copies = self.multi_region_copies(&rec.account, &rec.key_id)?;
        let entry = |c: &KeyRec| json!({"Arn": c.arn(), "Region": c.region});
        let mut config = json!({
            "MultiRegionKeyType": kind,
            "ReplicaKeys": copies.iter().filter(|c| c.multi_region_primary == Some(false)).map(entry).collect::<Vec<_>>(),
        });
        if let Some(p) = copies.iter().find(|c| c.multi_region_primary == Some(true)) {
            put(&mut config, "PrimaryKey", entry(p));
        }
        let has_replicas = copies.iter().any(|c| c.multi_region_primary == Some(false));
        if kind == "PRIMARY" && rec.state == KeyState::PendingDeletion && has_replicas {
            put(&mut m, "KeyState", json!("PendingReplicaDeletion"));
            if let Some(obj) = m.as_object_mut() {
                obj.remove("DeletionDate");
            }
        }
        put(&mut m, "MultiRegionConfiguration", config);
        Ok(m)
    }

    /// Add a key material version (symmetric keys).
    /// A multi-Region key rotates as one: the new version goes to every Region's copy (same
    /// material ID, same index), with the primary's rotation schedule.
    pub(crate) fn rotate(&self, account: &str, region: &str, key_id: &str, rotation_type: &str) -> Result<()> {
        let now = self.now_ms();
        let (material, _) = crypto::generate(KeySpec::SYMMETRIC_DEFAULT)?;
        let mut id = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        let material_id = hex::encode(id);
        let rec = self.update(account, region, key_id, |rec| {
            let arn = rec.arn();
            rec.versions.push(self.seal_version(&arn, &material, &material_id, Some(rotation_type), now)?);
            if rec.rotation_enabled {
                let period = rec.rotation_period_days.unwrap_or(365) as i64;
                let mut next = rec.next_rotation.unwrap_or(now);
                while next <= now {
                    next += period * 86_400_000;
                }
                rec.next_rotation = Some(next);
            }
            Ok(rec.clone())
        })?;
        if rec.multi_region_primary.is_some() {
            for copy in self.multi_region_copies(account, key_id)? {
                if copy.region == region {
                    continue;
                }
                self.update(account, &copy.region, key_id, |r| {
                    if !r.versions.iter().any(|v| v.material_id == material_id) {
                        let arn = r.arn();
                        r.versions.push(self.seal_version(&arn, &material, &material_id, Some(rotation_type), now)?);
                    }
                    r.rotation_enabled = rec.rotation_enabled;
                    r.rotation_period_days = rec.rotation_period_days;
                    r.next_rotation = rec.next_rotation;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// RotateKeyOnDemand on a key with imported material: the material imported with
    /// `ImportType=NEW_KEY_MATERIAL` becomes current.
    pub(crate) fn rotate_to_imported(&self, key: &Loaded) -> Result<()> {
        let now = self.now_ms();
        self.update(&key.rec.account, &key.rec.region, &key.rec.key_id, |r| {
            let Some(v) = r.versions.last_mut().filter(|v| v.pending_rotation) else {
                // AWS's answer (recorded: LocalStack's test_kms.snapshot.json,
                // test_rotate_key_on_demand_raises_for_no_pending_key_material).
                return Err(KmsError::InvalidState(format!(
                    "No available key material pending rotation for the key: {}.",
                    key.arn
                )));
            };
            v.pending_rotation = false;
            v.rotation_type = Some("ON_DEMAND".into());
            v.created = now;
            Ok(())
        })
    }

    /// Copy a multi-Region primary's rotation settings to its replicas.
    pub(crate) fn sync_rotation_settings(&self, primary: &KeyRec) -> Result<()> {
        for copy in self.multi_region_copies(&primary.account, &primary.key_id)? {
            if copy.region != primary.region {
                self.update(&primary.account, &copy.region, &primary.key_id, |r| {
                    r.rotation_enabled = primary.rotation_enabled;
                    r.rotation_period_days = primary.rotation_period_days;
                    r.next_rotation = primary.next_rotation;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// Read-modify-write one key record in a transaction.
    pub(crate) fn update<T>(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        f: impl FnOnce(&mut KeyRec) -> Result<T>,
    ) -> Result<T> {
        let sk = key_store_key(account, region, key_id);
        let out = transact(self.store.as_ref(), |tx| -> Result<T> {
            let mut rec: KeyRec = tx.get_json(KEYS, &sk)?.ok_or_else(|| {
                KmsError::NotFound(format!("Key '{}' does not exist", key_arn(region, account, key_id)))
            })?;
            let out = f(&mut rec)?;
            tx.put_json(KEYS, &sk, &rec)?;
            Ok(out)
        })?;
        Ok(out)
    }

    /// Resolve a `KeyId` parameter (key ID, key ARN, alias name, alias ARN) to a key.
    pub(crate) fn resolve(&self, ctx: &RequestContext, key_id: &str) -> Result<Arc<Loaded>> {
        // A bare key ID names a key of the caller's account in the request's Region (no lookup
        // to resolve, so no owned copies of the parts).
        if valid_key_id(key_id) {
            let (account, region) = (ctx.caller.account_id.as_str(), ctx.region.as_str());
            return self.load(account, region, key_id)?.ok_or_else(|| {
                KmsError::NotFound(format!("Key '{}' does not exist", key_arn(region, account, key_id)))
            });
        }
        let (account, region, id) = self.resolve_ref(ctx, key_id)?;
        self.load(&account, &region, &id)?
            .ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", key_arn(&region, &account, &id))))
    }

    /// `(account, region, key id)` named by a `KeyId` parameter (aliases looked up).
    pub(crate) fn resolve_ref(&self, ctx: &RequestContext, key_id: &str) -> Result<(String, String, String)> {
        let caller_account = ctx.caller.account_id.as_str();
        let (account, region, rest) = if let Some(arn) = key_id.strip_prefix("arn:") {
            let parts: Vec<&str> = arn.splitn(5, ':').collect();
            match parts.as_slice() {
                [_, "kms", region, account, rest]
                    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    if *region != ctx.region {
                        return Err(KmsError::NotFound(format!("Invalid arn {region}")));
                    }
                    (account.to_string(), region.to_string(), rest.to_string())
                }
                _ => return Err(KmsError::NotFound(format!("Invalid arn {key_id}"))),
            }
        } else {
            (caller_account.to_string(), ctx.region.clone(), key_id.to_string())
        };
        if let Some(id) = rest.strip_prefix("key/") {
            if key_id.starts_with("arn:") && valid_key_id(id) {
                return Ok((account, region, id.to_string()));
            }
        } else if rest.starts_with("alias/") {
            let alias = self.alias(&account, &region, &rest)?.ok_or_else(|| {
                KmsError::NotFound(format!("Alias {} is not found.", alias_arn(&region, &account, &rest)))
            })?;
            return Ok((account, region, alias.target_key_id));
        } else if valid_key_id(&rest) {
            return Ok((account, region, rest));
        }
        Err(KmsError::NotFound(format!("Invalid keyId '{key_id}'")))
    }

    pub(crate) fn alias(&self, account: &str, region: &str, alias: &str) -> Result<Option<AliasRec>> {
        Ok(self.store.get_json(ALIASES, &alias_store_key(account, region, alias))?)
    }

    /// The authorization check for using `key` with `action`. Fixed condition key names are
    /// written in lower case (keys are case-insensitive) so the policy context takes them as is.
    pub(crate) fn key_check(
        &self,
        ctx: &RequestContext,
        key: &Loaded,
        action: &str,
        extra: Vec<(ContextKey, ContextValue)>,
    ) -> AuthzCheck {
        let rec = &key.rec;
        let mut context = Vec::with_capacity(7 + rec.tags.len() + extra.len());
        context.push(("kms:calleraccount".into(), s(&ctx.caller.account_id)));
        context.push(("kms:keyspec".into(), s(rec.spec.as_str())));
        context.push(("kms:customermasterkeyspec".into(), s(rec.spec.as_str())));
        context.push(("kms:keyusage".into(), s(rec.usage.as_str())));
        context.push(("kms:keyorigin".into(), s(rec.origin())));
        context.push(("kms:multiregion".into(), s(if rec.multi_region_primary.is_some() { "true" } else { "false" })));
        if let Some(t) = rec.multi_region_type() {
            context.push(("kms:multiregionkeytype".into(), s(t)));
        }
        for t in &rec.tags {
            context.push((["aws:ResourceTag/", t.key.as_str()].concat().into(), s(&t.value)));
        }
        context.extend(extra);
        AuthzCheck {
            action: action.to_string(),
            resource: key.arn.clone(),
            resource_account: Some(rec.account.clone()),
            resource_policy: Some(key.policy.clone()),
            context,
        }
    }

    /// Decide checks directly (the Rust API for other services; the pipeline does this for HTTP calls).
    pub(crate) fn authorize_checks(&self, ctx: &RequestContext, checks: Vec<AuthzCheck>) -> Result<()> {
        for c in checks {
            self.authorizer.check(ctx, "kms", c)?;
        }
        Ok(())
    }

    /// Insert a new key record.
    pub(crate) fn insert_key(&self, rec: &KeyRec) -> Result<()> {
        transact(self.store.as_ref(), |tx| -> Result<()> {
            tx.put_json(KEYS, &rec.store_key(), rec)?;
            Ok(())
        })
    }

    /// Build a new key record with fresh material (not yet stored).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build_key(
        &self,
        account: &str,
        region: &str,
        spec: KeySpec,
        usage: KeyUsage,
        description: String,
        policy: String,
        manager: &str,
        tags: Vec<Tag>,
        multi_region: bool,
        external: bool,
    ) -> Result<KeyRec> {
        // Use tracking starts no later than the first key this deployment creates, so a key made
        // since then reads as "not used" rather than "maybe used before tracking began".
        self.tracking_start()?;
        let key_id = if multi_region { new_mrk_id() } else { new_uuid() };
        let arn = key_arn(region, account, &key_id);
        let now = self.now_ms();
        // A key for imported material starts without any (PendingImport).
        let (versions, public) = if external {
            (Vec::new(), None)
        } else {
            let (material, public) = crypto::generate(spec)?;
            (vec![self.new_version(&arn, &material, None, now)?], public)
        };
        let aws_managed = manager == "AWS";
        Ok(KeyRec {
            account: account.to_string(),
            region: region.to_string(),
            key_id,
            created: now,
            description,
            spec,
            usage,
            manager: manager.to_string(),
            state: if external { KeyState::PendingImport } else { KeyState::Enabled },
            deletion_date: None,
            pending_window_days: None,
            policy,
            tags,
            rotation_enabled: aws_managed,
            rotation_period_days: aws_managed.then_some(365),
            next_rotation: aws_managed.then_some(now + 365 * 86_400_000),
            on_demand_rotation_start: None,
            versions,
            public_key: public.map(|p| B64.encode(p)),
            grants: Vec::new(),
            multi_region_primary: multi_region.then_some(true),
            origin: external.then(|| "EXTERNAL".to_string()),
            custom_key_store_id: None,
            xks_key_id: None,
        })
    }

    /// Encrypt under a symmetric key's current version; a key in an external key store has the
    /// proxy encrypt KMS's ciphertext again (double encryption).
    pub(crate) fn encrypt_symmetric(
        &self,
        ctx: &RequestContext,
        op: &str,
        key: &Loaded,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>> {
        let header = crypto::BlobHeader {
            account: key.rec.account.clone(),
            key_id: key.rec.key_id.clone(),
            version: key.current_version(),
        };
        let inner = crypto::seal_blob(key.current_material()?, &header, plaintext, context)?;
        if key.rec.xks_key_id.is_none() {
            return Ok(inner);
        }
        let (_, header_len) = crypto::parse_blob(&inner)?;
        let header = inner.get(..header_len).ok_or_else(|| KmsError::Internal("blob header".into()))?;
        self.xks_wrap(ctx, op, key, header, &inner, context)
    }

    /// The key a symmetric ciphertext blob names (absent keys look like bad ciphertext).
    pub(crate) fn key_of_blob(&self, ctx: &RequestContext, blob: &[u8]) -> Result<Arc<Loaded>> {
        let (h, _) = crypto::parse_blob(blob)?;
        self.load(&h.account, &ctx.region, &h.key_id)?.ok_or_else(|| KmsError::InvalidCiphertext(String::new()))
    }

    /// Decrypt a symmetric blob with `key` (which must be the blob's key); a key in an external
    /// key store has the proxy take its layer off first.
    pub(crate) fn decrypt_symmetric(
        &self,
        ctx: &RequestContext,
        op: &str,
        key: &Loaded,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<(Zeroizing<Vec<u8>>, String)> {
        let (h, len) = crypto::parse_blob(blob)?;
        if h.account != key.rec.account || h.key_id != key.rec.key_id {
            return Err(KmsError::IncorrectKey(
                "The key ID in the request does not identify a CMK that can perform this operation.".into(),
            ));
        }
        let material = key.material(h.version).ok_or_else(|| KmsError::InvalidCiphertext(String::new()))?;
        let plaintext = if key.rec.xks_key_id.is_some() {
            let inner = self.xks_unwrap(ctx, op, key, blob, len, context)?;
            let (ih, ilen) = crypto::parse_blob(&inner)?;
            if ih.account != h.account || ih.key_id != h.key_id || ih.version != h.version {
                return Err(KmsError::InvalidCiphertext(String::new()));
            }
            crypto::open_blob(material, &inner, ilen, context)?
        } else {
            crypto::open_blob(material, blob, len, context)?
        };
        let material_id = key.rec.versions.get(h.version as usize).map(|v| v.material_id.clone()).unwrap_or_default();
        Ok((plaintext, material_id))
    }

    /// Every key record in `account`/`region` (lifecycle applied).
    pub(crate) fn list_keys(&self, account: &str, region: &str) -> Result<Vec<Arc<Loaded>>> {
        let prefix = format!("{account}/{region}/");
        let ids: Vec<String> = self
            .store
            .scan(KEYS, &prefix, None, 0)?
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(k) = self.load(account, region, &id)? {
                out.push(k);
            }
        }
        Ok(out)
    }

    /// Every key in `region` of any account (ListRetirableGrants).
    pub(crate) fn all_keys_in_region(&self, region: &str) -> Result<Vec<Arc<Loaded>>> {
        let mut out = Vec::new();
        for (k, _) in self.store.scan(KEYS, "", None, 0)? {
            let mut parts = k.splitn(3, '/');
            if let (Some(a), Some(r), Some(id)) = (parts.next(), parts.next(), parts.next()) {
                if r == region {
                    if let Some(l) = self.load(a, r, id)? {
                        out.push(l);
                    }
                }
            }
        }
        Ok(out)
    }

    /// When this deployment began recording key use: read from the store once, written there
    /// at the first call that needs it.
    pub(crate) fn tracking_start(&self) -> Result<i64> {
        if let Some(t) = self.tracking_start.get() {
            return Ok(*t);
        }
        let now = self.now_ms();
        let t = transact(self.store.as_ref(), |tx| -> Result<i64> {
            if let Some(t) = tx.get_json::<i64>(USAGE, "tracking-start")? {
                return Ok(t);
            }
            tx.put_json(USAGE, "tracking-start", &now)?;
            Ok(now)
        })?;
        Ok(*self.tracking_start.get_or_init(|| t))
    }

    /// Record a successful cryptographic use of `key` (cheap: memory always, the store at
    /// most once per [`USAGE_PERSIST_INTERVAL_MS`] per key). Failures to persist are logged, not
    /// the call's: the call has succeeded.
    pub(crate) fn record_use(&self, key: &Loaded, operation: &str, request_id: &str) {
        let now = self.now_ms();
        let persist = {
            let mut usage = self.usage_shard(key).lock().unwrap_or_else(|p| p.into_inner());
            if !usage.contains_key(&key.arn) {
                if usage.len() >= MAX_CACHED_KEYS / USAGE_SHARDS {
                    usage.clear();
                }
                let fresh = LastUse { operation: String::new(), at: 0, request_id: String::new(), persisted_at: 0 };
                usage.insert(key.arn.clone(), fresh);
            }
            let Some(entry) = usage.get_mut(&key.arn) else { return };
            let due = entry.persisted_at + USAGE_PERSIST_INTERVAL_MS <= now;
            entry.operation.clear();
            entry.operation.push_str(operation);
            entry.at = now;
            entry.request_id.clear();
            entry.request_id.push_str(request_id);
            if due {
                entry.persisted_at = now;
                Some(entry.clone())
            } else {
                None
            }
        };
        if let Some(u) = persist {
            if self.tracking_start().is_err() {
                return;
            }
            let sk = key.rec.store_key();
            let written = transact(self.store.as_ref(), |tx| -> Result<()> {
                tx.put_json(USAGE, &sk, &u)?;
                Ok(())
            });
            if let Err(e) = written {
                tracing::warn!(key = %key.arn, error = %e, "recording key use failed");
            }
        }
    }

    fn usage_shard(&self, key: &Loaded) -> &Mutex<HashMap<String, LastUse>> {
        let b = key.rec.key_id.as_bytes().last().copied().unwrap_or(0) as usize;
        // The index is reduced modulo the array's length, so `get` always finds a shard.
        let [first, ..] = &self.usage;
        self.usage.get(b % USAGE_SHARDS).unwrap_or(first)
    }

    /// A key's last recorded use: this node's memory, else the store.
    pub(crate) fn last_use(&self, key: &Loaded) -> Result<Option<LastUse>> {
        let sk = key.rec.store_key();
        let mem = self.usage_shard(key).lock().unwrap_or_else(|p| p.into_inner()).get(&key.arn).cloned();
        let stored: Option<LastUse> = self.store.get_json(USAGE, &sk)?;
        Ok(match (mem, stored) {
            (Some(m), Some(s)) if s.at > m.at => Some(s),
            (Some(m), _) => Some(m),
            (None, s) => s,
        })
        .map(|u| u.filter(|u| u.at >= key.rec.created))
    }

    /// Sweep every key whose deletion window has ended (optional: access deletes lazily too).
    pub fn sweep(&self) -> std::result::Result<usize, rampart_protocol::AwsError> {
        let now = self.now_ms();
        let mut deleted = 0;
        for (_, raw) in self.store.scan(KEYS, "", None, 0).map_err(KmsError::from)? {
            if let Ok(rec) = serde_json::from_slice::<KeyRec>(&raw) {
                if rec.state == KeyState::PendingDeletion
                    && rec.deletion_date.is_some_and(|d| d <= now)
                    && self.delete_key_now(&rec)?
                {
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

pub(crate) fn s(v: &str) -> ContextValue {
    ContextValue::String(v.to_string())
}

/// `kms:EncryptionContext:<k>` and `kms:EncryptionContextKeys` for a request.
pub(crate) fn context_keys(prefix: &str, ec: &BTreeMap<String, String>) -> Vec<(ContextKey, ContextValue)> {
    let mut v: Vec<(ContextKey, ContextValue)> = Vec::with_capacity(ec.len() + 2);
    v.extend(ec.iter().map(|(k, val)| ([prefix, "EncryptionContext:", k.as_str()].concat().into(), s(val))));
    if !ec.is_empty() {
        v.push(([prefix, "EncryptionContextKeys"].concat().into(), ContextValue::List(ec.keys().cloned().collect())));
    }
    v
}

/// The key policy plus one Allow statement per grant: a grant allows its grantee its operations,
/// under its encryption-context constraints, as if the key policy named it.
pub(crate) fn effective_policy(rec: &KeyRec) -> String {
    if rec.grants.is_empty() {
        return rec.policy.clone();
    }
    let Ok(mut doc) = serde_json::from_str::<Value>(&rec.policy) else { return rec.policy.clone() };
    let mut statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    };
    for g in &rec.grants {
        let actions: Vec<String> = g.operations.iter().map(|o| format!("kms:{o}")).collect();
        let mut st = json!({
            "Sid": format!("Grant{}", g.grant_id),
            "Effect": "Allow",
            "Principal": {"AWS": g.grantee},
            "Action": actions,
            "Resource": "*",
        });
        if let Some(c) = &g.constraints {
            let mut cond = serde_json::Map::new();
            let mut eq = serde_json::Map::new();
            for (k, v) in c.subset.iter().chain(c.equals.iter()).flatten() {
                eq.insert(format!("kms:EncryptionContext:{k}"), json!(v));
            }
            if !eq.is_empty() {
                cond.insert("StringEquals".into(), Value::Object(eq));
            }
            if let Some(e) = &c.equals {
                let keys: Vec<&String> = e.keys().collect();
                cond.insert("ForAllValues:StringEquals".into(), json!({"kms:EncryptionContextKeys": keys}));
                if e.is_empty() {
                    cond.insert("Null".into(), json!({"kms:EncryptionContextKeys": "true"}));
                }
            }
            if !cond.is_empty() {
                put(&mut st, "Condition", Value::Object(cond));
            }
        }
        statements.push(st);
    }
    put(&mut doc, "Statement", Value::Array(statements));
    doc.to_string()
}

/// AWS's default key policy: the account (root) may do everything, which delegates to IAM policies.
pub fn default_key_policy(account: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    }))
    .unwrap_or_default()
}

/// The key policy of an AWS managed key (`alias/aws/<service>`), as AWS writes it.
pub fn aws_managed_key_policy(account: &str, region: &str, service: &str) -> String {
    let via = format!("{service}.{region}.amazonaws.com");
    serde_json::to_string_pretty(&json!({
        "Version": "2012-10-17",
        "Id": format!("auto-{service}-2"),
        "Statement": [
            {
                "Sid": format!("Allow access through {service} for all principals in the account that are authorized to use {service}"),
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:CreateGrant", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": via}}
            },
            {
                "Sid": format!("Allow access through {service} for all principals in the account that are authorized to use {service} (data keys)"),
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account}, "StringLike": {"kms:ViaService": via}}
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*"
            }
        ]
    }))
    .unwrap_or_default()
}

/// A key ID is a UUID (lowercase hex with dashes) or a multi-Region `mrk-` ID.
pub fn valid_key_id(id: &str) -> bool {
    let uuid =
        |s: &str| {
            let b = s.as_bytes();
            b.len() == 36
                && b.iter().enumerate().all(|(i, c)| {
                    if matches!(i, 8 | 13 | 18 | 23) {
                        *c == b'-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                })
        };
    uuid(id) || id.strip_prefix("mrk-").is_some_and(|h| h.len() == 32 && h.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// A multi-Region key ID: `mrk-` and 32 lowercase hex digits.
pub fn new_mrk_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!("mrk-{}", hex::encode(b))
}

pub use rampart_protocol::new_uuid;
