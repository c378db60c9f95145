//! Trails and their delivery: gzipped log files and the signed digest chain, in a local directory.
//!
//! S3 is not offered, so a trail's `S3BucketName` names a directory under the server's trail
//! directory (`--trail-dir`, default `<data-dir>/trails`), and objects keep AWS's key layout:
//!
//! ```text
//! <trail-dir>/<bucket>/[<prefix>/]AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<rand>.json.gz
//! <trail-dir>/<bucket>/[<prefix>/]AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<home>_<YYYYMMDDTHHmmssZ>.json.gz
//! <trail-dir>/public-keys/<fingerprint>.der
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rampart_store::{transact, ReadExt, Sealer, Store, StoreError, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::audit::{seq_of_key, StoredEvent, EVENTS_TABLE};
use crate::digest::{
    self, DigestFile, LogFileEntry, SignatureMetadata, SigningKey, METADATA_SUFFIX, SIGNATURE_ALGORITHM,
};
use crate::insights::{self, Clock, InsightsConfig, SystemClock, INSIGHT_EVENTS_TABLE};
use crate::record::iso_time;

/// Trails: key `{account}/{name}`.
pub const TRAILS_TABLE: &str = "trail_trails";
/// The digest signing key(s): key `current`.
pub const KEYS_TABLE: &str = "trail_keys";
const KEY_AAD: &[u8] = b"rampart-trail-digest-key";
/// Records per log file at most.
const MAX_RECORDS_PER_FILE: usize = 5000;

/// Per-region digest chain state.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Chain {
    pub last_object: Option<String>,
    pub last_bucket: Option<String>,
    pub last_hash: Option<String>,
    pub last_signature: Option<String>,
    /// Unix seconds.
    pub last_end: Option<i64>,
}

/// A trail, as stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrailDoc {
    pub name: String,
    pub account: String,
    pub home_region: String,
    pub bucket: String,
    #[serde(default)]
    pub prefix: Option<String>,
    pub include_global: bool,
    pub multi_region: bool,
    pub validation: bool,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// `EventSelectors` as given (JSON); empty = the default (all management events).
    #[serde(default)]
    pub event_selectors: Vec<Value>,
    #[serde(default)]
    pub advanced_event_selectors: Option<Vec<Value>>,
    pub logging: bool,
    pub start_logging: Option<i64>,
    pub stop_logging: Option<i64>,
    /// The last record sequence number considered for delivery.
    pub delivered_seq: u64,
    pub latest_delivery: Option<i64>,
    pub latest_delivery_error: Option<String>,
    pub latest_digest_delivery: Option<i64>,
    pub latest_digest_error: Option<String>,
    #[serde(default)]
    pub chains: BTreeMap<String, Chain>,
    /// The organization (`o-…`) of an organization trail: it logs every account of it.
    #[serde(default)]
    pub organization: Option<String>,
    /// `InsightSelectors` as given; empty = Insights off.
    #[serde(default)]
    pub insight_selectors: Vec<Value>,
    /// The last Insights event sequence number considered for delivery.
    #[serde(default)]
    pub insights_delivered_seq: u64,
    /// `AggregationConfigurations` (PutEventConfiguration) as given. They aggregate data
    /// events, which Rampart does not record, so they produce no events.
    #[serde(default)]
    pub aggregation: Vec<Value>,
}

impl TrailDoc {
    pub fn arn(&self) -> String {
        format!("arn:aws:cloudtrail:{}:{}:trail/{}", self.home_region, self.account, self.name)
    }

    fn key_prefix(&self) -> String {
        match &self.prefix {
            Some(p) if !p.is_empty() => format!("{}/", p.trim_end_matches('/')),
            _ => String::new(),
        }
    }

    /// Whether the trail takes `e` (region scope and event selectors).
    pub fn selects(&self, e: &StoredEvent) -> bool {
        let region_ok = self.multi_region
            || e.region == self.home_region
            || (self.include_global && GLOBAL_SOURCES.contains(&e.source.as_str()));
        if !region_ok {
            return false;
        }
        if let Some(adv) = &self.advanced_event_selectors {
            return adv.iter().any(|s| advanced_selects(s, e));
        }
        if self.event_selectors.is_empty() {
            return true;
        }
        self.event_selectors.iter().any(|s| {
            let include = s.get("IncludeManagementEvents").and_then(Value::as_bool).unwrap_or(true);
            let rw = s.get("ReadWriteType").and_then(Value::as_str).unwrap_or("All");
            let rw_ok = match rw {
                "ReadOnly" => e.ro,
                "WriteOnly" => !e.ro,
                _ => true,
            };
            let excluded = s
                .get("ExcludeManagementEventSources")
                .and_then(Value::as_array)
                .is_some_and(|l| l.iter().any(|x| x.as_str() == Some(e.source.as_str())));
            include && rw_ok && !excluded
        })
    }
}

/// Services whose events are global (delivered to single-region trails with IncludeGlobalServiceEvents).
const GLOBAL_SOURCES: &[&str] = &["iam.amazonaws.com", "sts.amazonaws.com"];

/// Advanced selectors: the management-event fields (`eventCategory`, `readOnly`, `eventSource`,
/// `eventName`) with `Equals` / `NotEquals` / `StartsWith` / `NotStartsWith`.
fn advanced_selects(selector: &Value, e: &StoredEvent) -> bool {
    let Some(fields) = selector.get("FieldSelectors").and_then(Value::as_array) else { return false };
    fields.iter().all(|f| {
        let field = f.get("Field").and_then(Value::as_str).unwrap_or_default();
        let actual = match field {
            "eventCategory" => "Management".to_string(),
            "readOnly" => e.ro.to_string(),
            "eventSource" => e.source.clone(),
            "eventName" => e.name.clone(),
            _ => return true,
        };
        let list = |k: &str| -> Vec<String> {
            f.get(k)
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let (eq, ne, sw, nsw) = (list("Equals"), list("NotEquals"), list("StartsWith"), list("NotStartsWith"));
        (eq.is_empty() || eq.iter().any(|v| v == &actual))
            && !ne.iter().any(|v| v == &actual)
            && (sw.is_empty() || sw.iter().any(|v| actual.starts_with(v.as_str())))
            && !nsw.iter().any(|v| actual.starts_with(v.as_str()))
    })
}

/// Delivery failures.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the digest signing key: {0}")]
    Key(String),
    #[error("no trail directory is configured (ephemeral server without --trail-dir)")]
    NoDirectory,
}

/// Delivers trails' files; owns the digest signing key.
pub struct Delivery {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    root: Option<PathBuf>,
    key: Mutex<Option<Arc<SigningKey>>>,
    /// One delivery at a time.
    lock: Mutex<()>,
    /// What time it is (a test's clock in tests).
    clock: Arc<dyn Clock>,
    /// The Insights detector's settings.
    insights: InsightsConfig,
    /// Organizations (the accounts an organization trail logs), once wired.
    orgs: Arc<std::sync::OnceLock<Arc<dyn rampart_service::Organizations>>>,
}

/// The public key, as ListPublicKeys shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    pub der: Vec<u8>,
    pub fingerprint: String,
    pub created: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    sealed_pkcs8: String,
    created: i64,
}

impl Delivery {
    pub fn new(store: Arc<dyn Store>, sealer: Arc<Sealer>, root: Option<PathBuf>) -> Self {
        Self::with_clock(store, sealer, root, Arc::new(SystemClock), InsightsConfig::default())
    }

    /// [`Delivery::new`] with the clock and the Insights detector's settings.
    pub fn with_clock(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        root: Option<PathBuf>,
        clock: Arc<dyn Clock>,
        insights: InsightsConfig,
    ) -> Self {
        Delivery {
            store,
            sealer,
            root,
            key: Mutex::new(None),
            lock: Mutex::new(()),
            clock,
            insights,
            orgs: Arc::default(),
        }
    }

    /// Read organizations (for organization trails) through `orgs`, once it is set.
    pub fn with_organizations(
        mut self,
        orgs: Arc<std::sync::OnceLock<Arc<dyn rampart_service::Organizations>>>,
    ) -> Self {
        self.orgs = orgs;
        self
    }

    /// The accounts a trail logs, each with its key part under `AWSLogs/`: its own account, or
    /// for an organization trail every account of the organization (`<org-id>/<account>`).
    fn logged_accounts(&self, t: &TrailDoc) -> Vec<(String, String)> {
        let Some(org) = &t.organization else { return vec![(t.account.clone(), t.account.clone())] };
        let view = self.orgs.get().and_then(|o| o.organization_of(&t.account).ok().flatten());
        match view {
            Some(v) if &v.id == org => v.accounts.into_iter().map(|a| (a.clone(), format!("{org}/{a}"))).collect(),
            // The organization is gone: the management account's own events, as a plain trail.
            _ => vec![(t.account.clone(), format!("{org}/{}", t.account))],
        }
    }

    /// The current time, by the service's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Run the Insights detector of one trail now (a logging trail with Insights on).
    pub fn analyze(&self, trail_key: &str) -> Result<usize, DeliveryError> {
        let now = self.clock.now();
        let cfg = self.insights;
        Ok(transact(self.store.as_ref(), |tx| insights::analyze(tx, trail_key, now, &cfg))?)
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The digest signing key: loaded from the store (sealed), or made and kept at first use.
    pub fn signing_key(&self) -> Result<(Arc<SigningKey>, i64), DeliveryError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut guard = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let stored: Option<StoredKey> = self.store.get_json(KEYS_TABLE, "current")?;
        if let (Some(k), Some(s)) = (guard.as_ref(), stored.as_ref()) {
            return Ok((k.clone(), s.created));
        }
        let (key, created) = match stored {
            Some(s) => {
                let sealed = b64.decode(&s.sealed_pkcs8).map_err(|e| DeliveryError::Key(e.to_string()))?;
                let der = self.sealer.open(&sealed, KEY_AAD).map_err(|e| DeliveryError::Key(e.to_string()))?;
                (SigningKey::from_pkcs8_der(&der).map_err(|e| DeliveryError::Key(e.to_string()))?, s.created)
            }
            None => {
                let key = SigningKey::generate().map_err(|e| DeliveryError::Key(e.to_string()))?;
                let der = key.to_pkcs8_der().map_err(|e| DeliveryError::Key(e.to_string()))?;
                let created = OffsetDateTime::now_utc().unix_timestamp();
                let sealed = self.sealer.seal(&der, KEY_AAD).map_err(|e| DeliveryError::Key(e.to_string()))?;
                let s = StoredKey { sealed_pkcs8: b64.encode(sealed), created };
                // Another process start may race; the first committed key wins.
                let won = transact(self.store.as_ref(), |tx| -> Result<bool, StoreError> {
                    if tx.get(KEYS_TABLE, "current")?.is_some() {
                        return Ok(false);
                    }
                    tx.put_json(KEYS_TABLE, "current", &s)?;
                    Ok(true)
                })?;
                if !won {
                    drop(guard);
                    return self.signing_key();
                }
                (key, created)
            }
        };
        let key = Arc::new(key);
        if let Some(root) = &self.root {
            let path = root.join("public-keys").join(format!("{}.der", key.fingerprint()));
            if !path.exists() {
                write_durably(&path, key.public_der())?;
            }
        }
        *guard = Some(key.clone());
        Ok((key, created))
    }

    /// Deliver every logging trail (all accounts). Errors are kept on each trail (GetTrailStatus).
    pub fn deliver_all(&self) -> Result<(), DeliveryError> {
        // Several servers may share one store: one of them delivers at a time.
        if !self.store.try_lease("cloudtrail-delivery", std::time::Duration::from_secs(600))? {
            return Ok(());
        }
        let trails: Vec<(String, TrailDoc)> = self.store.scan_json(TRAILS_TABLE, "")?;
        for (key, t) in trails {
            if t.logging {
                if let Err(e) = self.deliver(&key) {
                    tracing::warn!(trail = %t.arn(), error = %e, "trail delivery failed");
                }
            }
        }
        Ok(())
    }

    /// Deliver one trail (by store key `{account}/{name}`) now.
    pub fn deliver(&self, trail_key: &str) -> Result<(), DeliveryError> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = self.store.get_json::<TrailDoc>(TRAILS_TABLE, trail_key)? else { return Ok(()) };
        // Insights first, so the events they find go out with this delivery.
        if t.logging && !t.insight_selectors.is_empty() {
            if let Err(e) = self.analyze(trail_key) {
                tracing::warn!(trail = %t.arn(), error = %e, "insights analysis failed");
            }
        }
        let Some(mut t) = self.store.get_json::<TrailDoc>(TRAILS_TABLE, trail_key)? else { return Ok(()) };
        let now = self.clock.now();
        let result = self.deliver_inner(&mut t, now);
        let now_s = now.unix_timestamp();
        match &result {
            Ok(_) => t.latest_delivery_error = None,
            Err(e) => t.latest_delivery_error = Some(e.to_string()),
        }
        if let Ok(digests) = &result {
            if *digests {
                t.latest_digest_delivery = Some(now_s);
                t.latest_digest_error = None;
            }
        }
        // Keep the API's fields (tags, selectors, logging) as they are now; ours are delivery state.
        transact(self.store.as_ref(), |tx| -> Result<(), StoreError> {
            if let Some(mut current) = tx.get_json::<TrailDoc>(TRAILS_TABLE, trail_key)? {
                current.delivered_seq = t.delivered_seq.max(current.delivered_seq);
                current.insights_delivered_seq = t.insights_delivered_seq.max(current.insights_delivered_seq);
                current.chains = t.chains.clone();
                current.latest_delivery = t.latest_delivery;
                current.latest_delivery_error = t.latest_delivery_error.clone();
                current.latest_digest_delivery = t.latest_digest_delivery;
                current.latest_digest_error = t.latest_digest_error.clone();
                tx.put_json(TRAILS_TABLE, trail_key, &current)?;
            }
            Ok(())
        })?;
        result.map(|_| ())
    }

    /// Returns whether digests were written.
    fn deliver_inner(&self, t: &mut TrailDoc, now: OffsetDateTime) -> Result<bool, DeliveryError> {
        let root = self.root.clone().ok_or(DeliveryError::NoDirectory)?;
        // New records of the accounts the trail logs, oldest first, per account and Region.
        let mut max_seq = t.delivered_seq;
        // (account, its part of the key under AWSLogs/, Region) → records.
        let mut groups: BTreeMap<(String, String, String), Vec<StoredEvent>> = BTreeMap::new();
        for (account, path) in self.logged_accounts(t) {
            let prefix = format!("{account}/");
            let mut fresh: Vec<StoredEvent> = Vec::new();
            let mut after: Option<String> = None;
            'scan: loop {
                let rows = self.store.scan(EVENTS_TABLE, &prefix, after.as_deref(), 500)?;
                if rows.is_empty() {
                    break;
                }
                for (k, v) in &rows {
                    let seq = seq_of_key(k).unwrap_or(0);
                    if seq <= t.delivered_seq {
                        break 'scan;
                    }
                    max_seq = max_seq.max(seq);
                    if let Some(e) = StoredEvent::from_row(v) {
                        if t.selects(&e) {
                            fresh.push(e);
                        }
                    }
                }
                after = rows.last().map(|(k, _)| k.clone());
            }
            fresh.reverse();
            for e in fresh {
                groups.entry((account.clone(), path.clone(), e.region.clone())).or_default().push(e);
            }
        }
        let bucket_dir = root.join(&t.bucket);
        let kp = t.key_prefix();
        // Chain key (the Region; `account/Region` for organization trails) → log files.
        let mut delivered: BTreeMap<String, (String, String, String, Vec<LogFileEntry>)> = BTreeMap::new();
        let (y, m, d) = (now.year(), now.month() as u8, now.day());
        let minute = format!("{y:04}{m:02}{d:02}T{:02}{:02}Z", now.hour(), now.minute());
        for ((acct, path, region), events) in &groups {
            let chain_key = if t.organization.is_some() { format!("{acct}/{region}") } else { region.clone() };
            for chunk in events.chunks(MAX_RECORDS_PER_FILE) {
                let mut body = String::with_capacity(chunk.iter().map(|e| e.event.len() + 1).sum::<usize>() + 16);
                body.push_str("{\"Records\":[");
                for (i, e) in chunk.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&e.event);
                }
                body.push_str("]}");
                let rand: String = random_token(16);
                let object = format!(
                    "{kp}AWSLogs/{path}/CloudTrail/{region}/{y:04}/{m:02}/{d:02}/{acct}_CloudTrail_{region}_{minute}_{rand}.json.gz"
                );
                let gz = digest::gzip(body.as_bytes()).map_err(|e| io_err(&bucket_dir, e))?;
                write_durably(&bucket_dir.join(&object), &gz)?;
                let times: Vec<i64> = chunk.iter().map(|e| e.t).collect();
                let oldest = times.iter().min().copied().unwrap_or(0);
                let newest = times.iter().max().copied().unwrap_or(0);
                delivered
                    .entry(chain_key.clone())
                    .or_insert_with(|| (acct.clone(), path.clone(), region.clone(), Vec::new()))
                    .3
                    .push(LogFileEntry {
                        s3_bucket: t.bucket.clone(),
                        s3_object: object,
                        hash_value: digest::sha256_hex(body.as_bytes()),
                        hash_algorithm: "SHA-256".into(),
                        newest_event_time: iso_time(unix(newest)),
                        oldest_event_time: iso_time(unix(oldest)),
                    });
            }
        }
        let insight_files = self.deliver_insights(t, &bucket_dir, &kp, now)?;
        if !delivered.is_empty() || insight_files > 0 {
            t.latest_delivery = Some(now.unix_timestamp());
        }
        t.delivered_seq = max_seq;
        if !t.validation || delivered.is_empty() {
            return Ok(false);
        }
        let (key, _) = self.signing_key()?;
        for (chain_key, (acct, path, region, files)) in delivered {
            let chain = t.chains.entry(chain_key).or_default();
            let start = chain.last_end.or(t.start_logging).unwrap_or(now.unix_timestamp());
            // Strictly after the previous digest, so digest names never collide.
            let end = now.unix_timestamp().max(chain.last_end.map_or(i64::MIN, |e| e + 1));
            let end_t = unix(end);
            let stamp = format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                end_t.year(),
                end_t.month() as u8,
                end_t.day(),
                end_t.hour(),
                end_t.minute(),
                end_t.second()
            );
            let object = format!(
                "{kp}AWSLogs/{path}/CloudTrail-Digest/{region}/{:04}/{:02}/{:02}/{acct}_CloudTrail-Digest_{region}_{name}_{home}_{stamp}.json.gz",
                end_t.year(),
                end_t.month() as u8,
                end_t.day(),
                name = t.name,
                home = t.home_region,
            );
            let newest = files.iter().map(|f| f.newest_event_time.clone()).max();
            let oldest = files.iter().map(|f| f.oldest_event_time.clone()).min();
            let doc = DigestFile {
                aws_account_id: acct.clone(),
                digest_start_time: iso_time(unix(start)),
                digest_end_time: iso_time(end_t),
                digest_s3_bucket: t.bucket.clone(),
                digest_s3_object: object.clone(),
                digest_public_key_fingerprint: key.fingerprint().to_string(),
                digest_signature_algorithm: SIGNATURE_ALGORITHM.into(),
                newest_event_time: newest,
                oldest_event_time: oldest,
                previous_digest_s3_bucket: chain.last_bucket.clone(),
                previous_digest_s3_object: chain.last_object.clone(),
                previous_digest_hash_value: chain.last_hash.clone(),
                previous_digest_hash_algorithm: chain.last_hash.as_ref().map(|_| "SHA-256".to_string()),
                previous_digest_signature: chain.last_signature.clone(),
                log_files: files,
            };
            let content = serde_json::to_vec(&doc).map_err(|e| DeliveryError::Key(e.to_string()))?;
            let to_sign = digest::string_to_sign(
                &doc.digest_end_time,
                &t.bucket,
                &object,
                &content,
                chain.last_signature.as_deref(),
            );
            let signature = key.sign_hex(to_sign.as_bytes());
            let gz = digest::gzip(&content).map_err(|e| io_err(&bucket_dir, e))?;
            let path = bucket_dir.join(&object);
            let meta =
                SignatureMetadata { signature: signature.clone(), signature_algorithm: SIGNATURE_ALGORITHM.into() };
            let meta_json = serde_json::to_vec(&meta).map_err(|e| DeliveryError::Key(e.to_string()))?;
            write_durably(&PathBuf::from(format!("{}{METADATA_SUFFIX}", path.display())), &meta_json)?;
            write_durably(&path, &gz)?;
            *chain = Chain {
                last_object: Some(object),
                last_bucket: Some(t.bucket.clone()),
                last_hash: Some(digest::sha256_hex(&content)),
                last_signature: Some(signature),
                last_end: Some(end),
            };
        }
        Ok(true)
    }
}

impl Delivery {
    /// Write the trail's new Insights events, one file per Region, under `CloudTrail-Insight/`.
    /// Returns how many files were written.
    fn deliver_insights(
        &self,
        t: &mut TrailDoc,
        bucket_dir: &Path,
        kp: &str,
        now: OffsetDateTime,
    ) -> Result<usize, DeliveryError> {
        let prefix = format!("{}/", t.account);
        let arn = t.arn();
        let mut fresh: Vec<StoredEvent> = Vec::new();
        let mut after: Option<String> = None;
        let mut max_seq = t.insights_delivered_seq;
        'scan: loop {
            let rows = self.store.scan(INSIGHT_EVENTS_TABLE, &prefix, after.as_deref(), 500)?;
            if rows.is_empty() {
                break;
            }
            for (k, v) in &rows {
                let seq = seq_of_key(k).unwrap_or(0);
                if seq <= t.insights_delivered_seq {
                    break 'scan;
                }
                max_seq = max_seq.max(seq);
                if insights::trail_of_row(v).as_deref() == Some(arn.as_str()) {
                    if let Some(e) = StoredEvent::from_row(v) {
                        fresh.push(e);
                    }
                }
            }
            after = rows.last().map(|(k, _)| k.clone());
        }
        fresh.reverse();
        let mut by_region: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
        for e in fresh {
            by_region.entry(e.region.clone()).or_default().push(e);
        }
        let (y, m, d) = (now.year(), now.month() as u8, now.day());
        let minute = format!("{y:04}{m:02}{d:02}T{:02}{:02}Z", now.hour(), now.minute());
        let mut files = 0;
        for (region, events) in &by_region {
            for chunk in events.chunks(MAX_RECORDS_PER_FILE) {
                let mut body = String::from("{\"Records\":[");
                for (i, e) in chunk.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&e.event);
                }
                body.push_str("]}");
                let object = format!(
                    "{kp}AWSLogs/{acct}/CloudTrail-Insight/{region}/{y:04}/{m:02}/{d:02}/{acct}_CloudTrail-Insight_{region}_{minute}_{rand}.json.gz",
                    acct = t.account,
                    rand = random_token(16),
                );
                let gz = digest::gzip(body.as_bytes()).map_err(|e| io_err(bucket_dir, e))?;
                write_durably(&bucket_dir.join(&object), &gz)?;
                files += 1;
            }
        }
        t.insights_delivered_seq = max_seq;
        Ok(files)
    }
}

fn unix(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn io_err(path: &Path, source: std::io::Error) -> DeliveryError {
    DeliveryError::Io { path: path.to_path_buf(), source }
}

/// `[A-Za-z0-9]{n}`.
pub fn random_token(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// Directories the delivery creates: owner-only (`0700`), as the data directory is. Trail files
/// are audit records (principals, source IPs, request parameters): with `--trail-dir` outside the
/// data directory they must not become readable by every local user. Directories that already
/// exist keep their mode.
pub const DIR_MODE: u32 = 0o700;
/// Files the delivery writes (log files, digests, public keys): owner read/write only (`0600`).
pub const FILE_MODE: u32 = 0o600;

fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir)
}

fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o.open(path)
}

/// Write via a temp file (created `0600`) + fsync + rename + directory fsync; missing directories
/// are created `0700`.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), DeliveryError> {
    let err = |e| io_err(path, e);
    let parent = path.parent().ok_or_else(|| err(std::io::Error::other("no parent directory")))?;
    create_private_dir_all(parent).map_err(err)?;
    let tmp = parent.join(format!(".{}.tmp", random_token(8)));
    {
        let mut f = create_private_file(&tmp).map_err(err)?;
        if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
            let _ = fs::remove_file(&tmp);
            return Err(err(e));
        }
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    fs::File::open(parent).and_then(|d| d.sync_all()).map_err(err)?;
    Ok(())
}
