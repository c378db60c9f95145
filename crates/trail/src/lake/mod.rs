//! CloudTrail Lake: event data stores that collect the audit records Rampart writes, and SQL
//! queries over them.
//!
//! An event data store is a durable consumer of the audit records (`trail_events`): a background
//! ingester reads each account's records in sequence order from the store's checkpoint, keeps
//! those its advanced event selectors take, and commits them together with the new checkpoint
//! (one transaction, so a crash loses or repeats nothing). Nothing runs in the request path; a
//! query drains its event data stores before it runs, so it sees every call made before it.

#![deny(clippy::string_slice, clippy::indexing_slicing)]

pub(crate) mod dashboards;
pub(crate) mod event_config;
pub mod import;
pub(crate) mod ops;
pub mod query;
pub mod samples;
pub mod selectors;
pub mod sql;

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rampart_store::{ReadExt, Store, StoreError, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{event_key, seq_of_key, StoredEvent, EVENTS_TABLE, META_TABLE};

/// Event data stores: key `{account}/{id}`.
pub const EDS_TABLE: &str = "trail_event_data_stores";
/// The events an event data store holds: key `{id}/{seq:020}` (oldest first), value the record
/// row as `trail_events` stores it.
pub const LAKE_TABLE: &str = "trail_lake_events";

/// How long a deleted event data store can be restored.
pub const RESTORE_WINDOW_SECS: i64 = 7 * 86_400;
/// Records read per ingestion transaction at most.
const INGEST_BATCH: u64 = 2_000;
/// How often the ingester looks for new records.
const INGEST_EVERY: Duration = Duration::from_secs(5);
/// How often retention runs.
const RETAIN_EVERY: Duration = Duration::from_secs(600);

/// An event data store, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EventDataStoreDoc {
    pub id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    /// `ENABLED`, `STOPPED_INGESTION` or `PENDING_DELETION`.
    pub status: String,
    pub advanced_event_selectors: Vec<Value>,
    pub multi_region: bool,
    pub retention_days: u32,
    pub termination_protection: bool,
    pub billing_mode: String,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Unix seconds.
    pub created: i64,
    pub updated: i64,
    /// Whether live events are ingested (kept across deletion, for a restore).
    pub ingesting: bool,
    /// The last audit record sequence number considered for ingestion.
    pub checkpoint: u64,
    /// The newest record taken while stopped or deleted (records up to it are still ingested).
    #[serde(default)]
    pub paused_at: Option<u64>,
    /// Ranges `(from, to]` of records not taken (made while ingestion was stopped).
    #[serde(default)]
    pub skip: Vec<(u64, u64)>,
    /// When DeleteEventDataStore ran.
    #[serde(default)]
    pub deleted_at: Option<i64>,
    /// `MaxEventSize` `Large` (1 MB) rather than `Standard` (256 KB); see [`fit_event`].
    #[serde(default)]
    pub large_events: bool,
}

impl EventDataStoreDoc {
    pub fn arn(&self) -> String {
        eds_arn(&self.region, &self.account, &self.id)
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.id)
    }

    /// Whether it takes live records now.
    pub fn live(&self) -> bool {
        self.ingesting && self.status == "ENABLED"
    }

    /// The newest record it is to take, `last` being the newest there is.
    pub fn upper(&self, last: u64) -> u64 {
        if self.live() {
            last
        } else {
            self.paused_at.unwrap_or(self.checkpoint).min(last)
        }
    }

    /// Stop taking records made from now (`now_seq` the newest).
    pub fn pause(&mut self, now_seq: u64) {
        if self.paused_at.is_none() {
            self.paused_at = Some(now_seq);
        }
    }

    /// Take records again from now on (`now_seq` the newest), skipping those of the pause.
    pub fn resume(&mut self, now_seq: u64) {
        if let Some(p) = self.paused_at.take() {
            if now_seq > p {
                self.skip.push((p, now_seq));
            }
        }
    }

    /// The largest event it keeps, in bytes of the record's JSON (`MaxEventSize`).
    pub fn max_event_bytes(&self) -> usize {
        if self.large_events {
            LARGE_EVENT_BYTES
        } else {
            STANDARD_EVENT_BYTES
        }
    }

    /// Whether the store takes `e` (Region scope and selectors).
    pub fn selects(&self, e: &StoredEvent) -> bool {
        (self.multi_region || e.region == self.region) && selectors::matches(&self.advanced_event_selectors, e)
    }
}

pub fn eds_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:eventdatastore/{id}")
}

/// `MaxEventSize` `Standard`: events of at most 256 KB.
pub const STANDARD_EVENT_BYTES: usize = 256 * 1024;
/// `MaxEventSize` `Large`: events of at most 1 MB.
pub const LARGE_EVENT_BYTES: usize = 1024 * 1024;

/// The event a store whose events may be `max` bytes keeps of `e`: `e` itself when it fits;
/// otherwise its free-form parts (`requestParameters`, `responseElements`,
/// `additionalEventData`, `serviceEventDetails`) become `{"omitted":true}`, as CloudTrail omits
/// oversized parts, and if it still does not fit it is not kept (`None`).
pub fn fit_event(e: StoredEvent, max: usize) -> Option<StoredEvent> {
    if e.event.len() <= max {
        return Some(e);
    }
    let mut v: Value = serde_json::from_str(&e.event).ok()?;
    let m = v.as_object_mut()?;
    for k in ["requestParameters", "responseElements", "additionalEventData", "serviceEventDetails"] {
        if let Some(part) = m.get_mut(k).filter(|p| !p.is_null()) {
            *part = serde_json::json!({"omitted": true});
        }
    }
    let event = serde_json::to_string(&v).ok()?;
    (event.len() <= max).then_some(StoredEvent { event, ..e })
}

/// The event data store an ARN (`arn:aws:cloudtrail:REGION:ACCOUNT:eventdatastore/ID`) names, in
/// any status (`None` for a malformed ARN or a missing store). For the CloudTrail features that
/// take event data store ARNs (channels, resource policies, dashboards).
pub fn find(store: &dyn rampart_store::Read, arn: &str) -> Result<Option<EventDataStoreDoc>, StoreError> {
    let p: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "cloudtrail", region, account, res] = p.as_slice() else { return Ok(None) };
    let Some(id) = res.strip_prefix("eventdatastore/") else { return Ok(None) };
    if id.is_empty() || id.contains('/') || account.len() != 12 {
        return Ok(None);
    }
    Ok(store.get_json::<EventDataStoreDoc>(EDS_TABLE, &format!("{account}/{id}"))?.filter(|d| d.region == *region))
}

/// A lake row's key: `{id}/{seq:020}`.
pub fn lake_key(id: &str, seq: u64) -> String {
    format!("{id}/{seq:020}")
}

/// The last audit record sequence number given out.
pub fn current_seq(store: &dyn rampart_store::Read) -> Result<u64, StoreError> {
    Ok(store.get_json::<u64>(META_TABLE, "seq")?.unwrap_or(0))
}

/// The ingester and retention of every event data store.
pub struct Lake {
    store: Arc<dyn Store>,
    /// One ingestion pass at a time in this process.
    lock: Mutex<()>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub(crate) queries: query::Runner,
}

impl Lake {
    /// The lake over `store`, without its background thread (tests drive it by hand).
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Lake {
            queries: query::Runner::new(store.clone()),
            store,
            lock: Mutex::new(()),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            thread: Mutex::new(None),
        })
    }

    /// The lake with its background ingester (every five seconds, when there is work), retention
    /// and the dashboards' scheduled refreshes.
    pub fn start(store: Arc<dyn Store>) -> Arc<Self> {
        Self::start_with_clock(store, Arc::new(crate::insights::SystemClock))
    }

    /// [`Lake::start`], with scheduled dashboard refreshes on `clock`.
    pub fn start_with_clock(store: Arc<dyn Store>, clock: Arc<dyn crate::insights::Clock>) -> Arc<Self> {
        let lake = Lake::new(store);
        let weak = Arc::downgrade(&lake);
        let stop = lake.stop.clone();
        let thread = std::thread::Builder::new()
            .name("rampart-trail-lake".into())
            .spawn(move || {
                let mut last_retention: Option<std::time::Instant> = None;
                loop {
                    {
                        let (lock, cv) = &*stop;
                        let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                        if *stopped {
                            return;
                        }
                        let (stopped, _) = cv.wait_timeout(stopped, INGEST_EVERY).unwrap_or_else(|p| p.into_inner());
                        if *stopped {
                            return;
                        }
                    }
                    let Some(lake) = weak.upgrade() else { return };
                    // Only with work to do (a lease on SQLite commits the writer's pending group).
                    let work = lake.has_backlog().unwrap_or(true);
                    let retention_due = last_retention.is_none_or(|t| t.elapsed() >= RETAIN_EVERY);
                    let now = clock.now();
                    let refresh_due =
                        dashboards::refresh_due(lake.store.as_ref(), now.unix_timestamp()).unwrap_or(false);
                    // Several servers may share one store: one ingests at a time.
                    if (work || retention_due || refresh_due)
                        && matches!(lake.store.try_lease("trail/lake", INGEST_EVERY * 6), Ok(true))
                    {
                        if refresh_due {
                            if let Err(e) = dashboards::run_scheduled(&lake, now) {
                                tracing::warn!(error = %e, "scheduled dashboard refresh failed; will retry");
                            }
                        }
                        if work {
                            if let Err(e) = lake.ingest_all() {
                                tracing::warn!(error = %e, "event data store ingestion failed; will retry");
                            }
                        }
                        if retention_due {
                            last_retention = Some(std::time::Instant::now());
                            let now = time::OffsetDateTime::now_utc().unix_timestamp();
                            if let Err(e) = lake.retain(now) {
                                tracing::warn!(error = %e, "event data store retention failed; will retry");
                            }
                        }
                    }
                }
            })
            .ok();
        *lake.thread.lock().unwrap_or_else(|p| p.into_inner()) = thread;
        lake
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stop the background thread.
    pub fn shutdown(&self) {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        let handle = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
        self.queries.shutdown();
    }

    /// Whether any event data store has records to take (reads only).
    pub fn has_backlog(&self) -> Result<bool, StoreError> {
        let all: Vec<(String, EventDataStoreDoc)> = self.store.scan_json(EDS_TABLE, "")?;
        if all.is_empty() {
            return Ok(false);
        }
        let last = current_seq(self.store.as_ref())?;
        Ok(all.iter().any(|(_, d)| d.checkpoint < d.upper(last)))
    }

    /// Ingest every ingesting event data store up to the newest record.
    pub fn ingest_all(&self) -> Result<u64, StoreError> {
        let all: Vec<(String, EventDataStoreDoc)> = self.store.scan_json(EDS_TABLE, "")?;
        let mut n = 0;
        for (key, d) in all {
            if d.live() || d.paused_at.is_some_and(|p| p > d.checkpoint) {
                n += self.ingest(&key)?;
            }
        }
        Ok(n)
    }

    /// Ingest one event data store (store key `{account}/{id}`) up to the newest record: read
    /// its account's records after the checkpoint, oldest first, a batch per transaction.
    /// Returns how many events it took.
    pub fn ingest(&self, key: &str) -> Result<u64, StoreError> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let last = current_seq(self.store.as_ref())?;
        let mut taken = 0;
        loop {
            let Some(d) = self.store.get_json::<EventDataStoreDoc>(EDS_TABLE, key)? else { return Ok(taken) };
            let upper = d.upper(last);
            if d.checkpoint >= upper {
                return Ok(taken);
            }
            let hi = upper.min(d.checkpoint.saturating_add(INGEST_BATCH));
            // Records are keyed newest first per account: start just above `hi`, stop at the checkpoint.
            let prefix = format!("{}/", d.account);
            let mut after = Some(event_key(&d.account, hi.saturating_add(1)));
            let mut fresh: Vec<(u64, Vec<u8>)> = Vec::new();
            'scan: loop {
                let rows = self.store.scan(EVENTS_TABLE, &prefix, after.as_deref(), 500)?;
                if rows.is_empty() {
                    break;
                }
                for (k, v) in &rows {
                    let seq = seq_of_key(k).unwrap_or(0);
                    if seq <= d.checkpoint {
                        break 'scan;
                    }
                    if d.skip.iter().any(|(from, to)| seq > *from && seq <= *to) {
                        continue;
                    }
                    if let Some(e) = StoredEvent::from_row(v) {
                        if d.selects(&e) {
                            let max = d.max_event_bytes();
                            if e.event.len() <= max {
                                fresh.push((seq, v.clone()));
                            } else if let Some(kept) = fit_event(e, max) {
                                fresh.push((seq, kept.encode_row()));
                            }
                        }
                    }
                }
                after = rows.last().map(|(k, _)| k.clone());
            }
            let n = fresh.len() as u64;
            let moved = rampart_store::transact(self.store.as_ref(), |tx| -> Result<bool, StoreError> {
                let Some(mut current) = tx.get_json::<EventDataStoreDoc>(EDS_TABLE, key)? else { return Ok(false) };
                // Another ingester (another node) got here first, or ingestion stopped meanwhile.
                if current.checkpoint != d.checkpoint
                    || current.live() != d.live()
                    || current.paused_at != d.paused_at
                    || current.skip != d.skip
                {
                    return Ok(false);
                }
                for (seq, row) in fresh {
                    tx.put_owned(LAKE_TABLE, lake_key(&d.id, seq), row)?;
                }
                current.checkpoint = hi;
                current.skip.retain(|(_, to)| *to > hi);
                tx.put_json(EDS_TABLE, key, &current)?;
                Ok(true)
            })?;
            if !moved {
                return Ok(taken);
            }
            taken += n;
        }
    }

    /// Retention: delete events older than each store's retention period, and the stores whose
    /// restore window has passed (with their events).
    pub fn retain(&self, now: i64) -> Result<u64, StoreError> {
        let all: Vec<(String, EventDataStoreDoc)> = self.store.scan_json(EDS_TABLE, "")?;
        let mut deleted = 0;
        for (key, d) in all {
            if d.deleted_at.is_some_and(|t| now - t >= RESTORE_WINDOW_SECS) && d.status == "PENDING_DELETION" {
                deleted += self.delete_events(&d.id, |_| true)?;
                let arn = d.arn();
                rampart_store::transact(self.store.as_ref(), |tx| {
                    tx.delete(EDS_TABLE, &key)?;
                    // Its resource-based policy goes with it.
                    crate::policies::drop_policy(tx, &arn)
                })?;
                continue;
            }
            let cutoff = now.saturating_sub(i64::from(d.retention_days) * 86_400);
            deleted += self.delete_events(&d.id, |e| e.is_some_and(|e| e.t < cutoff))?;
        }
        // Queries and their results: seven days.
        let queries: Vec<(String, query::QueryDoc)> = self.store.scan_json(query::QUERIES_TABLE, "")?;
        let old: Vec<String> = queries
            .into_iter()
            .filter(|(_, q)| (now as f64) - q.created > query::QUERY_KEEP_SECS as f64)
            .map(|(k, _)| k)
            .collect();
        for chunk in old.chunks(256) {
            rampart_store::transact(self.store.as_ref(), |tx| -> Result<(), StoreError> {
                for k in chunk {
                    tx.delete(query::QUERIES_TABLE, k)?;
                    tx.delete(query::RESULTS_TABLE, k)?;
                }
                Ok(())
            })?;
        }
        Ok(deleted)
    }

    /// Delete the store's events that `old` says are old (live and imported alike).
    fn delete_events(&self, id: &str, old: impl Fn(Option<&StoredEvent>) -> bool) -> Result<u64, StoreError> {
        let prefix = format!("{id}/");
        let mut deleted = 0;
        let mut after: Option<String> = None;
        loop {
            let rows = self.store.scan(LAKE_TABLE, &prefix, after.as_deref(), 512)?;
            let Some((last, _)) = rows.last() else { return Ok(deleted) };
            after = Some(last.clone());
            let doomed: Vec<&String> =
                rows.iter().filter(|(_, v)| old(StoredEvent::from_row(v).as_ref())).map(|(k, _)| k).collect();
            if doomed.is_empty() {
                continue;
            }
            rampart_store::transact(self.store.as_ref(), |tx| -> Result<(), StoreError> {
                for k in &doomed {
                    tx.delete(LAKE_TABLE, k)?;
                }
                Ok(())
            })?;
            deleted += doomed.len() as u64;
        }
    }
}

impl Drop for Lake {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A random UUID (version 4), as event data store and query IDs are.
pub fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let part = |r: std::ops::Range<usize>| hex::encode(b.get(r).unwrap_or_default());
    format!("{}-{}-{}-{}-{}", part(0..4), part(4..6), part(6..8), part(8..10), part(10..16))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::record::test_record as record;

    fn eds(store: &dyn Store, account: &str, selectors: Vec<Value>) -> String {
        let d = EventDataStoreDoc {
            id: uuid(),
            account: account.into(),
            region: "us-east-1".into(),
            name: "lake".into(),
            status: "ENABLED".into(),
            advanced_event_selectors: if selectors.is_empty() { selectors::default_selectors() } else { selectors },
            multi_region: true,
            retention_days: 7,
            termination_protection: false,
            billing_mode: "EXTENDABLE_RETENTION_PRICING".into(),
            tags: vec![],
            created: 0,
            updated: 0,
            ingesting: true,
            checkpoint: current_seq(store).unwrap(),
            paused_at: None,
            skip: vec![],
            deleted_at: None,
            large_events: false,
        };
        rampart_store::transact(store, |tx| tx.put_json(EDS_TABLE, &d.key(), &d)).unwrap();
        d.key()
    }

    fn names(store: &dyn Store, key: &str) -> Vec<String> {
        let id = key.rsplit('/').next().unwrap();
        store
            .scan(LAKE_TABLE, &format!("{id}/"), None, 0)
            .unwrap()
            .iter()
            .map(|(_, v)| StoredEvent::from_row(v).unwrap().name)
            .collect()
    }

    #[test]
    fn ingests_from_creation_in_order_with_a_durable_checkpoint() {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let log = AuditLog::start(store.clone()).unwrap();
        log.submit(record("111111111111", "Before")).wait().unwrap();
        let all = eds(store.as_ref(), "111111111111", vec![]);
        let writes = eds(
            store.as_ref(),
            "111111111111",
            vec![serde_json::json!({"FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Management"]},
                {"Field": "readOnly", "Equals": ["false"]}]})],
        );
        let lake = Lake::new(store.clone());
        for n in ["CreateUser", "GetUser", "DeleteUser"] {
            log.submit(record("111111111111", n)).wait().unwrap();
        }
        log.submit(record("222222222222", "OtherAccount")).wait().unwrap();
        assert_eq!(lake.ingest_all().unwrap(), 5);
        assert_eq!(names(store.as_ref(), &all), ["CreateUser", "GetUser", "DeleteUser"]);
        assert_eq!(names(store.as_ref(), &writes), ["CreateUser", "DeleteUser"]);
        let d: EventDataStoreDoc = store.get_json(EDS_TABLE, &writes).unwrap().unwrap();
        assert_eq!(find(store.as_ref(), &d.arn()).unwrap().unwrap().id, d.id);
        assert!(find(store.as_ref(), &d.arn().replace("us-east-1", "eu-west-1")).unwrap().is_none());
        assert!(find(store.as_ref(), "arn:aws:cloudtrail:us-east-1:111111111111:trail/x").unwrap().is_none());
        // Nothing new: nothing taken twice.
        assert!(!lake.has_backlog().unwrap());
        assert_eq!(lake.ingest_all().unwrap(), 0);
        log.submit(record("111111111111", "ListUsers")).wait().unwrap();
        assert_eq!(lake.ingest(&all).unwrap(), 1);
        assert_eq!(names(store.as_ref(), &all).last().unwrap(), "ListUsers");
        // Stopped: what came before the stop is still taken, what came during it never is.
        log.submit(record("111111111111", "BeforeStop")).wait().unwrap();
        let stop = |f: &dyn Fn(&mut EventDataStoreDoc)| {
            let mut d: EventDataStoreDoc = store.get_json(EDS_TABLE, &all).unwrap().unwrap();
            f(&mut d);
            rampart_store::transact(store.as_ref(), |tx| tx.put_json(EDS_TABLE, &all, &d)).unwrap();
        };
        let now = current_seq(store.as_ref()).unwrap();
        stop(&|d| {
            d.ingesting = false;
            d.status = "STOPPED_INGESTION".into();
            d.pause(now);
        });
        log.submit(record("111111111111", "WhileStopped")).wait().unwrap();
        lake.ingest_all().unwrap();
        let now = current_seq(store.as_ref()).unwrap();
        stop(&|d| {
            d.ingesting = true;
            d.status = "ENABLED".into();
            d.resume(now);
        });
        log.submit(record("111111111111", "AfterStart")).wait().unwrap();
        lake.ingest_all().unwrap();
        let got = names(store.as_ref(), &all);
        assert_eq!(&got[got.len() - 2..], ["BeforeStop", "AfterStart"]);
    }

    /// MaxEventSize: a Standard store keeps events up to 256 KB, a Large one up to 1 MB; an
    /// event over the size loses its free-form parts, or is not kept when that is not enough.
    #[test]
    fn ingestion_honours_the_maximum_event_size() {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let log = AuditLog::start(store.clone()).unwrap();
        let standard = eds(store.as_ref(), "111111111111", vec![]);
        let large = eds(store.as_ref(), "111111111111", vec![]);
        let mut d: EventDataStoreDoc = store.get_json(EDS_TABLE, &large).unwrap().unwrap();
        d.large_events = true;
        rampart_store::transact(store.as_ref(), |tx| tx.put_json(EDS_TABLE, &large, &d)).unwrap();
        // A 300 KB event whose bulk is its request parameters, and a 1.2 MB one whose bulk is a
        // field that cannot be omitted.
        let with = |name: &str, f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
            let mut r = record("111111111111", name);
            let mut v: Value = serde_json::from_str(&r.event.event).unwrap();
            f(v.as_object_mut().unwrap());
            r.event.event = v.to_string();
            r
        };
        let big = "x".repeat(300 * 1024);
        let huge = "y".repeat(1200 * 1024);
        log.submit(with("Big", &|m| {
            m.insert("requestParameters".into(), serde_json::json!({"policyDocument": big}));
        }))
        .wait()
        .unwrap();
        log.submit(with("Huge", &|m| {
            m.insert("userAgent".into(), Value::String(huge.clone()));
        }))
        .wait()
        .unwrap();
        log.submit(record("111111111111", "Small")).wait().unwrap();
        let lake = Lake::new(store.clone());
        lake.ingest_all().unwrap();
        let events = |key: &str| -> Vec<(String, Value)> {
            let id = key.rsplit('/').next().unwrap();
            store
                .scan(LAKE_TABLE, &format!("{id}/"), None, 0)
                .unwrap()
                .iter()
                .map(|(_, v)| {
                    let e = StoredEvent::from_row(v).unwrap();
                    (e.name.clone(), e.record())
                })
                .collect()
        };
        let s = events(&standard);
        assert_eq!(s.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["Big", "Small"]);
        assert_eq!(s[0].1["requestParameters"], serde_json::json!({"omitted": true}));
        let l = events(&large);
        assert_eq!(l.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["Big", "Small"]);
        assert_eq!(l[0].1["requestParameters"]["policyDocument"].as_str().unwrap().len(), 300 * 1024);
        assert!(fit_event(StoredEvent::from_row(&record("1", "x").event.encode_row()).unwrap(), 10).is_none());
    }

    #[test]
    fn retention_drops_old_events_and_expired_deleted_stores() {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let log = AuditLog::start(store.clone()).unwrap();
        let key = eds(store.as_ref(), "111111111111", vec![]);
        log.submit(record("111111111111", "CreateUser")).wait().unwrap();
        let lake = Lake::new(store.clone());
        lake.ingest_all().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(lake.retain(now).unwrap(), 0);
        assert_eq!(lake.retain(now + 8 * 86_400).unwrap(), 1, "older than 7 days");
        let mut d: EventDataStoreDoc = store.get_json(EDS_TABLE, &key).unwrap().unwrap();
        d.status = "PENDING_DELETION".into();
        d.deleted_at = Some(now);
        rampart_store::transact(store.as_ref(), |tx| tx.put_json(EDS_TABLE, &key, &d)).unwrap();
        lake.retain(now + 86_400).unwrap();
        assert!(store.get(EDS_TABLE, &key).unwrap().is_some(), "restorable for 7 days");
        lake.retain(now + RESTORE_WINDOW_SECS).unwrap();
        assert!(store.get(EDS_TABLE, &key).unwrap().is_none());
    }
}
