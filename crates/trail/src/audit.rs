//! The audit writer: one dedicated thread that commits records to the store in groups.
//!
//! A handler's response is released only once its record is committed: [`AuditLog::submit`] hands
//! the record to the writer and returns a [`Receipt`] to await. The writer takes every record that
//! is waiting, writes them in one transaction (one fsync for the group), then wakes each caller.
//! A record that cannot be committed fails its call (no unaudited success).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rampart_store::{ReadExt, Store, StoreError, Transaction};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::json::{write_str, write_u64, ObjectWriter};
use crate::record::Record;

/// Table of records: key `{account}/{inverted sequence}` so a forward scan is newest first;
/// rows compressed (see `rows`).
pub const EVENTS_TABLE: &str = "trail_events";
/// Writer bookkeeping: `seq` = the last sequence number given out.
pub const META_TABLE: &str = "trail_meta";

/// The most records one transaction takes.
const MAX_GROUP: usize = 1024;
/// Records waiting for the writer before submitters block (back-pressure).
const QUEUE: usize = 8192;

/// Why a record could not be committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("the audit record could not be committed: {0}")]
    Store(String),
    #[error("the audit writer is not running")]
    WriterGone,
}

/// A record as stored: the CloudTrail JSON plus the fields LookupEvents filters on.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct StoredEvent {
    /// Sequence number (per server, increasing in commit order).
    #[serde(default)]
    pub seq: u64,
    pub id: String,
    /// eventTime, Unix seconds.
    pub t: i64,
    pub name: String,
    pub source: String,
    pub region: String,
    pub ro: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub res: Vec<(String, String)>,
    /// The record, as CloudTrail writes it (a JSON object in text form). Rows hold it as a JSON
    /// object; rows of earlier versions hold this text as a JSON string. Both are read.
    #[serde(deserialize_with = "event_in_either_form")]
    pub event: String,
}

impl StoredEvent {
    /// A stored row (compressed, or plain JSON as earlier versions wrote it).
    pub fn from_row(row: &[u8]) -> Option<StoredEvent> {
        serde_json::from_slice(&crate::rows::decode(row)?).ok()
    }

    /// The row as stored: [`StoredEvent::write_row`]'s JSON, compressed.
    pub fn encode_row(&self) -> Vec<u8> {
        let mut json = Vec::with_capacity(self.event.len() + 256);
        self.write_row(&mut json);
        crate::rows::encode(&json)
    }

    /// The record as a JSON value.
    pub fn record(&self) -> Value {
        serde_json::from_str(&self.event).unwrap_or(Value::Null)
    }

    /// The store row: the lookup fields, then the record itself as a JSON object (written as
    /// is, not escaped into a string).
    pub fn write_row(&self, out: &mut Vec<u8>) {
        let mut row = ObjectWriter::start(out);
        row.u64("seq", self.seq);
        row.str("id", &self.id);
        row.i64("t", self.t);
        row.str("name", &self.name);
        row.str("source", &self.source);
        row.str("region", &self.region);
        row.bool("ro", self.ro);
        row.opt_str("user", self.user.as_deref());
        row.opt_str("key", self.key.as_deref());
        if !self.res.is_empty() {
            // `[["type","name"],…]`, as serde_json writes the pairs.
            let out = row.member_value("res");
            for (i, (ty, name)) in self.res.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b"[[" } else { b",[" });
                write_str(out, ty);
                out.push(b',');
                write_str(out, name);
                out.push(b']');
            }
            out.push(b']');
        }
        row.raw("event", self.event.as_bytes());
        row.end();
    }
}

/// `event` as an object (its text taken as is) or, as earlier versions stored it, as a string
/// holding that text.
fn event_in_either_form<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    if raw.get().starts_with('"') {
        serde_json::from_str(raw.get()).map_err(D::Error::custom)
    } else {
        Ok(Box::<str>::from(raw).into_string())
    }
}

/// The store key of sequence number `seq` in `account`: `{account}/{u64::MAX - seq:020}`.
pub fn event_key(account: &str, seq: u64) -> String {
    let mut digits = [b'0'; 20];
    let mut n = u64::MAX - seq;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut key = String::with_capacity(account.len() + 21);
    key.push_str(account);
    key.push('/');
    // ASCII digits only.
    key.push_str(std::str::from_utf8(&digits).unwrap_or_default());
    key
}

/// The sequence number of a store key.
pub fn seq_of_key(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.parse::<u64>().ok().map(|inv| u64::MAX - inv)
}

struct Job {
    account: String,
    event: StoredEvent,
    done: oneshot::Sender<Result<u64, AuditError>>,
}

/// Awaits the durable commit of one record.
pub struct Receipt {
    inner: ReceiptInner,
    /// The store whose syncer makes the commit durable (group commit).
    store: Option<Arc<dyn Store>>,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum ReceiptInner {
    /// Waiting for the writer thread's commit (its position, once written).
    Pending(oneshot::Receiver<Result<u64, AuditError>>),
    /// Committed at this position (or failed).
    Ready(Result<u64, AuditError>),
}

impl Receipt {
    fn ready(result: Result<u64, AuditError>) -> Self {
        Receipt { inner: ReceiptInner::Ready(result), store: None }
    }

    /// A record committed at `pos` of `store` (with the change it records, by the pipeline's
    /// unit of work), durable once the store's syncer gets there.
    pub fn committed_at(store: Arc<dyn Store>, pos: u64) -> Self {
        Receipt { inner: ReceiptInner::Ready(Ok(pos)), store: Some(store) }
    }

    /// A record that could not be committed.
    pub fn failed(e: AuditError) -> Self {
        Receipt::ready(Err(e))
    }

    /// Wait (asynchronously) until the record is durable.
    pub async fn committed(self) -> Result<(), AuditError> {
        let pos = match self.inner {
            ReceiptInner::Pending(rx) => rx.await.unwrap_or(Err(AuditError::WriterGone))?,
            ReceiptInner::Ready(r) => r?,
        };
        match self.store.as_ref().and_then(|s| s.durability()) {
            Some(d) => d.wait(pos).await.map_err(|e| AuditError::Store(e.to_string())),
            None => Ok(()),
        }
    }

    /// Wait (blocking this thread) until the record is durable. Not for async worker threads.
    pub fn wait(self) -> Result<(), AuditError> {
        let pos = match self.inner {
            ReceiptInner::Pending(rx) => rx.blocking_recv().unwrap_or(Err(AuditError::WriterGone))?,
            ReceiptInner::Ready(r) => r?,
        };
        match self.store.as_ref().and_then(|s| s.durability()) {
            Some(d) => d.wait_blocking(pos).map_err(|e| AuditError::Store(e.to_string())),
            None => Ok(()),
        }
    }
}

/// The audit log: submit records; the writer thread commits them in groups.
pub struct AuditLog {
    tx: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    store: Arc<dyn Store>,
    /// In-memory store: no writer thread; each record commits in the submitting thread (a commit
    /// costs less than handing the record to another thread and waking the caller back).
    inline: Option<Inline>,
    retention: Retention,
    /// Records deleted by retention (age or count bound).
    pruned: AtomicU64,
    /// In memory: prune again once the sequence number reaches this.
    next_prune: AtomicU64,
    /// The retention thread (durable stores).
    pruner: Mutex<Option<(SyncSender<()>, JoinHandle<()>)>>,
}

/// How long records are kept, and (in memory) how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Records older than this are deleted (LookupEvents shows 90 days, as CloudTrail's event
    /// history does). Trail files already delivered keep their own retention.
    pub max_age: std::time::Duration,
    /// At most this many records are kept (the newest); `None`: no count bound.
    pub max_records: Option<u64>,
}

impl Retention {
    /// CloudTrail's event history: 90 days.
    pub const DURABLE: Retention =
        Retention { max_age: std::time::Duration::from_secs(90 * 86_400), max_records: None };
    /// `--ephemeral`: 90 days and at most 200,000 records (memory stays bounded).
    pub const EPHEMERAL: Retention =
        Retention { max_age: std::time::Duration::from_secs(90 * 86_400), max_records: Some(200_000) };
}

/// How often the durable store's retention runs.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);
/// Records deleted per transaction.
const PRUNE_BATCH: usize = 512;

/// The inline writer's state.
struct Inline {
    open: AtomicBool,
    /// The last sequence number given out. An in-memory store belongs to this process alone, so
    /// the counter need not be read back from the store on every commit.
    last: AtomicU64,
}

impl AuditLog {
    /// Start the writer over `store`, with the default retention for its kind.
    pub fn start(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let retention = if store.in_memory() { Retention::EPHEMERAL } else { Retention::DURABLE };
        Self::start_with(store, retention)
    }

    /// Start the writer over `store`, keeping records as `retention` says.
    pub fn start_with(store: Arc<dyn Store>, retention: Retention) -> Result<Arc<Self>, StoreError> {
        let last: u64 = store.get_json::<u64>(META_TABLE, "seq")?.unwrap_or(0);
        let mut log = AuditLog {
            tx: Mutex::new(None),
            thread: Mutex::new(None),
            store: store.clone(),
            inline: None,
            retention,
            pruned: AtomicU64::new(0),
            next_prune: AtomicU64::new(0),
            pruner: Mutex::new(None),
        };
        if store.in_memory() {
            log.inline = Some(Inline { open: AtomicBool::new(true), last: AtomicU64::new(last) });
            return Ok(Arc::new(log));
        }
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let writer_store = store.clone();
        let thread = std::thread::Builder::new()
            .name("rampart-audit".into())
            .spawn(move || writer_loop(writer_store, rx, last))
            .map_err(|e| StoreError::Backend(format!("cannot start the audit writer: {e}")))?;
        log.tx = Mutex::new(Some(tx));
        log.thread = Mutex::new(Some(thread));
        let log = Arc::new(log);
        // Retention: now and then, on one node at a time.
        let (stop, stopped) = mpsc::sync_channel::<()>(1);
        let weak = Arc::downgrade(&log);
        let pruner = std::thread::Builder::new()
            .name("rampart-audit-retention".into())
            .spawn(move || loop {
                let Some(log) = weak.upgrade() else { return };
                if let Ok(true) = log.store.try_lease("trail/retention", PRUNE_EVERY * 2) {
                    if let Err(e) = log.prune(time::OffsetDateTime::now_utc().unix_timestamp()) {
                        tracing::warn!(error = %e, "trail retention failed; will retry");
                    }
                }
                drop(log);
                match stopped.recv_timeout(PRUNE_EVERY) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => return,
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the audit retention: {e}")))?;
        *log.pruner.lock().unwrap_or_else(|p| p.into_inner()) = Some((stop, pruner));
        Ok(log)
    }

    /// Records deleted by retention so far (for metrics).
    pub fn pruned_total(&self) -> u64 {
        self.pruned.load(Ordering::Relaxed)
    }

    /// The retention in force.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Write `record` into `tx` (the transaction of the change it records: both commit or
    /// neither). The caller commits `tx`.
    pub fn append_in(&self, tx: &mut dyn Transaction, record: Record) -> Result<(), StoreError> {
        let Record { recipient_account_id: account, mut event } = record;
        let counter = match &self.inline {
            Some(inline) => Counter::Local(&inline.last),
            None => Counter::Shared(0),
        };
        write_events(tx, std::iter::once((account, &mut event)), &counter)?;
        Ok(())
    }

    /// Delete the records retention no longer keeps (older than `max_age` before `now`, Unix
    /// seconds; beyond `max_records`). Returns how many were deleted.
    pub fn prune(&self, now: i64) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(i64::try_from(self.retention.max_age.as_secs()).unwrap_or(i64::MAX));
        let last = match &self.inline {
            Some(inline) => inline.last.load(Ordering::Acquire),
            None => self.store.get_json::<u64>(META_TABLE, "seq")?.unwrap_or(0),
        };
        let keep_from = self.retention.max_records.map_or(0, |n| last.saturating_add(1).saturating_sub(n));
        let mut deleted = 0;
        let mut after: Option<String> = None;
        // Each account in turn (keys are `{account}/…`, accounts all 12 digits).
        while let Some((key, _)) = self.store.scan(EVENTS_TABLE, "", after.as_deref(), 1)?.into_iter().next() {
            let Some((account, _)) = key.split_once('/') else { break };
            let account = account.to_string();
            let boundary = age_boundary(self.store.as_ref(), &account, last, cutoff)?.max(keep_from);
            deleted += delete_below(self.store.as_ref(), &account, boundary)?;
            after = Some(format!("{account}/\u{10FFFF}"));
        }
        self.pruned.fetch_add(deleted, Ordering::Relaxed);
        if deleted > 0 {
            tracing::info!(deleted, "trail retention deleted records");
        }
        Ok(deleted)
    }

    /// In memory: prune every so many records, so the store stays within the bound.
    fn prune_inline(&self) {
        let Some(inline) = &self.inline else { return };
        let last = inline.last.load(Ordering::Acquire);
        let next = self.next_prune.load(Ordering::Relaxed);
        if last < next {
            return;
        }
        // Every 1/16 of the bound (at most 4096 records): at most that much above it.
        let every = self.retention.max_records.map_or(4096, |n| (n / 16).clamp(1, 4096));
        if self.next_prune.compare_exchange(next, last + every, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return; // another thread prunes
        }
        if let Err(e) = self.prune(time::OffsetDateTime::now_utc().unix_timestamp()) {
            tracing::warn!(error = %e, "trail retention failed");
        }
    }

    /// The store the records live in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Hand a record to the writer.
    pub fn submit(&self, record: Record) -> Receipt {
        let Record { recipient_account_id: account, mut event } = record;
        if let Some(inline) = &self.inline {
            if !inline.open.load(Ordering::Acquire) {
                return Receipt::ready(Err(AuditError::WriterGone));
            }
            let one = std::iter::once((account, &mut event));
            let result = commit_events(self.store.as_ref(), one, Counter::Local(&inline.last)).map(|_| 0);
            if let Err(e) = &result {
                tracing::error!(error = %e, "audit record could not be committed");
            }
            self.prune_inline();
            return Receipt::ready(result);
        }
        let (done, rx) = oneshot::channel();
        let job = Job { account, event, done };
        let tx = match self.tx.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let gone = || Receipt::ready(Err(AuditError::WriterGone));
        let Some(tx) = tx else { return gone() };
        // The writer answers once the record is durable: nothing more to wait for.
        let pending = || Receipt { inner: ReceiptInner::Pending(rx), store: None };
        match tx.try_send(job) {
            Ok(()) => pending(),
            Err(TrySendError::Full(job)) => match tx.send(job) {
                Ok(()) => pending(),
                Err(_) => gone(),
            },
            Err(TrySendError::Disconnected(_)) => gone(),
        }
    }

    /// Stop taking records, commit what is queued, and stop the writer.
    pub fn shutdown(&self) {
        let pruner = self.pruner.lock().ok().and_then(|mut g| g.take());
        if let Some((stop, thread)) = pruner {
            let _ = stop.try_send(());
            drop(stop);
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
        if let Some(inline) = &self.inline {
            inline.open.store(false, Ordering::Release);
        }
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The lowest sequence number whose record `account` keeps by age: every record numbered below
/// it is older than `cutoff` (records are numbered in about time order). Binary search over the
/// numbers, each probe one short scan.
fn age_boundary(store: &dyn Store, account: &str, last: u64, cutoff: i64) -> Result<u64, StoreError> {
    // The newest record numbered below `s`, if it is older than the cutoff (or there is none).
    let all_old_below = |s: u64| -> Result<bool, StoreError> {
        let rows = store.scan(EVENTS_TABLE, &format!("{account}/"), Some(&event_key(account, s)), 1)?;
        Ok(match rows.first() {
            None => true,
            Some((_, row)) => StoredEvent::from_row(row).is_none_or(|e| e.t < cutoff),
        })
    };
    let (mut lo, mut hi) = (0u64, last.saturating_add(1));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if all_old_below(mid)? {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo)
}

/// Delete `account`'s records numbered below `boundary`, a batch per transaction.
fn delete_below(store: &dyn Store, account: &str, boundary: u64) -> Result<u64, StoreError> {
    let prefix = format!("{account}/");
    let from = event_key(account, boundary);
    let mut deleted = 0;
    loop {
        let rows = store.scan(EVENTS_TABLE, &prefix, Some(&from), PRUNE_BATCH)?;
        if rows.is_empty() {
            return Ok(deleted);
        }
        let mut tx = store.begin()?;
        for (key, _) in &rows {
            tx.delete(EVENTS_TABLE, key)?;
        }
        tx.commit()?;
        deleted += rows.len() as u64;
    }
}

fn writer_loop(store: Arc<dyn Store>, rx: Receiver<Job>, mut last: u64) {
    let mut group: Vec<Job> = Vec::with_capacity(64);
    loop {
        match rx.recv() {
            Ok(job) => group.push(job),
            Err(_) => return,
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let result = commit_group(store.as_ref(), &mut group, last);
        let outcome = match result {
            Ok((new_last, pos)) => {
                last = new_last;
                // Durable before anyone is told: the next group gathers meanwhile (group commit),
                // and each caller is woken once, by its receipt.
                match store.durability().map(|d| d.wait_blocking(pos)) {
                    Some(Err(e)) => Err(AuditError::Store(e.to_string())),
                    _ => Ok(0),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, records = group.len(), "audit records could not be committed");
                Err(e)
            }
        };
        for job in group.drain(..) {
            let _ = job.done.send(outcome.clone());
        }
    }
}

/// Commit a group (without waiting for the disk): the last sequence number and the commit's position.
fn commit_group(store: &dyn Store, group: &mut [Job], last: u64) -> Result<(u64, u64), AuditError> {
    commit_events(store, group.iter_mut().map(|j| (j.account.as_str(), &mut j.event)), Counter::Shared(last))
}

/// Where the last sequence number given out is kept.
enum Counter<'a> {
    /// In the store (`trail_meta/seq`), read inside each transaction: several servers may share
    /// one store (PostgreSQL). Never below the given number (this writer's last).
    Shared(u64),
    /// In this process (the in-memory store); still written to the store for readers of
    /// `trail_meta/seq` (StartLogging).
    Local(&'a AtomicU64),
}

/// Commit `(recipient account, event)` pairs in one transaction, numbering them in order, without
/// waiting for the disk. Returns the last sequence number and the commit's position.
fn commit_events<'e, A: AsRef<str>>(
    store: &dyn Store,
    events: impl Iterator<Item = (A, &'e mut StoredEvent)>,
    counter: Counter<'_>,
) -> Result<(u64, u64), AuditError> {
    let err = |e: StoreError| AuditError::Store(e.to_string());
    let mut tx: Box<dyn Transaction + '_> = store.begin().map_err(err)?;
    let seq = write_events(tx.as_mut(), events, &counter).map_err(err)?;
    let pos = tx.commit_deferred().map_err(err)?;
    Ok((seq, pos))
}

/// Write `(recipient account, event)` pairs into `tx`, numbering them after the last number
/// given out. Returns the last number.
fn write_events<'e, A: AsRef<str>>(
    tx: &mut dyn Transaction,
    events: impl Iterator<Item = (A, &'e mut StoredEvent)>,
    counter: &Counter<'_>,
) -> Result<u64, StoreError> {
    // Transactions are serialized, so the local counter cannot move until this one ends.
    let mut seq = match counter {
        Counter::Shared(last) => tx.get_json::<u64>(META_TABLE, "seq")?.unwrap_or(0).max(*last),
        Counter::Local(last) => last.load(Ordering::Acquire),
    };
    for (account, event) in events {
        seq += 1;
        event.seq = seq;
        tx.put_owned(EVENTS_TABLE, event_key(account.as_ref(), seq), event.encode_row())?;
    }
    // What `put_json` writes for a u64, without serde.
    let mut digits = Vec::with_capacity(20);
    write_u64(&mut digits, seq);
    tx.put_owned(META_TABLE, "seq".to_string(), digits)?;
    if let Counter::Local(last) = counter {
        // Before the commit ends the transaction: the next one must see it. (Should the commit
        // fail, these numbers are skipped, never given out twice.)
        last.store(seq, Ordering::Release);
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_record as record;
    use rampart_store::{Read, Row, SqliteStore};

    #[test]
    fn records_commit_in_order_and_survive_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
            let log = AuditLog::start(store.clone()).unwrap();
            let receipts: Vec<_> = (0..50).map(|i| log.submit(record("111111111111", &format!("Op{i}")))).collect();
            for r in receipts {
                r.wait().unwrap();
            }
            log.shutdown();
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let rows = store.scan(EVENTS_TABLE, "111111111111/", None, 0).unwrap();
        assert_eq!(rows.len(), 50);
        let first: StoredEvent = StoredEvent::from_row(&rows[0].1).unwrap();
        assert_eq!(first.name, "Op49", "newest first");
        assert_eq!(seq_of_key(&rows[0].0), Some(50));
        let log = AuditLog::start(store.clone()).unwrap();
        log.submit(record("111111111111", "After")).wait().unwrap();
        let rows = store.scan(EVENTS_TABLE, "111111111111/", None, 1).unwrap();
        assert_eq!(seq_of_key(&rows[0].0), Some(51));
    }

    struct Broken;
    impl Read for Broken {
        fn get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
        fn scan(&self, _: &str, _: &str, _: Option<&str>, _: usize) -> Result<Vec<Row>, StoreError> {
            Ok(Vec::new())
        }
    }
    impl Store for Broken {
        fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
            Err(StoreError::Backend("disk full".into()))
        }
        fn backend(&self) -> &'static str {
            "broken"
        }
        fn is_local(&self) -> bool {
            true
        }
        fn try_lease(&self, _: &str, _: std::time::Duration) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn release_lease(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[test]
    fn a_record_that_cannot_be_committed_fails_its_receipt() {
        let log = AuditLog::start(Arc::new(Broken)).unwrap();
        let err = log.submit(record("111111111111", "CreateUser")).wait().unwrap_err();
        assert!(matches!(err, AuditError::Store(m) if m.contains("disk full")));
        log.shutdown();
        assert!(matches!(log.submit(record("111111111111", "X")).wait(), Err(AuditError::WriterGone)));
    }

    #[test]
    fn in_memory_store_commits_inline_in_order() {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let log = AuditLog::start(store.clone()).unwrap();
        assert!(log.thread.lock().unwrap().is_none(), "no writer thread for an in-memory store");
        for i in 0..20 {
            let receipt = log.submit(record("111111111111", &format!("Op{i}")));
            assert!(matches!(receipt.inner, ReceiptInner::Ready(Ok(_))), "committed before submit returns");
        }
        let rows = store.scan(EVENTS_TABLE, "111111111111/", None, 0).unwrap();
        assert_eq!(rows.len(), 20);
        let newest: StoredEvent = StoredEvent::from_row(&rows[0].1).unwrap();
        assert_eq!((newest.name.as_str(), newest.seq), ("Op19", 20));
        // The counter stays readable in the store (StartLogging reads it), as put_json wrote it.
        assert_eq!(store.get(META_TABLE, "seq").unwrap().unwrap(), serde_json::to_vec(&20u64).unwrap());
        log.shutdown();
        assert!(matches!(log.submit(record("111111111111", "X")).wait(), Err(AuditError::WriterGone)));
        // A new log over the same store carries on from the stored counter.
        let log = AuditLog::start(store.clone()).unwrap();
        log.submit(record("222222222222", "Next")).wait().unwrap();
        let rows = store.scan(EVENTS_TABLE, "222222222222/", None, 0).unwrap();
        assert_eq!(seq_of_key(&rows[0].0), Some(21));
        assert_eq!(store.get_json::<u64>(META_TABLE, "seq").unwrap(), Some(21));
    }

    #[test]
    fn in_memory_store_numbers_concurrent_records_uniquely() {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let log = AuditLog::start(store.clone()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..200 {
                        log.submit(record("111111111111", &format!("Op{t}-{i}"))).wait().unwrap();
                    }
                });
            }
        });
        let rows = store.scan(EVENTS_TABLE, "111111111111/", None, 0).unwrap();
        assert_eq!(rows.len(), 800, "no record overwrote another");
        let seqs: Vec<u64> = rows.iter().map(|(k, _)| seq_of_key(k).unwrap()).collect();
        assert_eq!(seqs, (1..=800).rev().collect::<Vec<_>>());
        assert_eq!(store.get_json::<u64>(META_TABLE, "seq").unwrap(), Some(800));
    }

    #[test]
    fn event_keys_are_the_zero_padded_inverted_sequence_number() {
        for seq in [0, 1, 9, 10, 12_345, 1 << 40, u64::MAX - 10_000_000_000_000_000_000, u64::MAX - 1, u64::MAX] {
            let key = event_key("111111111111", seq);
            assert_eq!(key, format!("111111111111/{:020}", u64::MAX - seq));
            assert_eq!(seq_of_key(&key), Some(seq));
        }
    }

    #[test]
    fn events_are_stored_as_objects_and_rows_of_earlier_versions_still_read() {
        let mut r = record("111111111111", "CreateUser");
        r.event.seq = 3;
        r.event.res = vec![("AWS::IAM::User".into(), "b\"ob".into())];
        let text = r.event.event.clone();
        // Now: the record is a JSON object inside the row, not escaped a second time.
        let mut row = Vec::new();
        r.event.write_row(&mut row);
        let as_value: Value = serde_json::from_slice(&row).unwrap();
        assert!(as_value["event"].is_object());
        assert_eq!(as_value["event"], r.json());
        let read: StoredEvent = serde_json::from_slice(&row).unwrap();
        assert_eq!(read, r.event, "a row reads back as the event written");
        // Earlier versions: the same fields (serde's derive), the record's text as a JSON string.
        let old_row = serde_json::json!({
            "seq": 3, "id": r.event.id, "t": r.event.t, "name": "CreateUser", "source": "iam.amazonaws.com",
            "region": "us-east-1", "ro": false, "user": "root", "key": "AKIAROOT",
            "res": [["AWS::IAM::User", "b\"ob"]], "event": text,
        })
        .to_string();
        assert!(old_row.contains("\"event\":\"{\\\""), "{old_row}");
        let old: StoredEvent = serde_json::from_slice(old_row.as_bytes()).unwrap();
        assert_eq!(old, r.event, "the same event in either form");
        assert_eq!(crate::lookup::event_json(&old), crate::lookup::event_json(&read));
        // Rows without the optional members.
        let mut bare = r.event.clone();
        (bare.user, bare.key, bare.res) = (None, None, Vec::new());
        let mut row = Vec::new();
        bare.write_row(&mut row);
        assert_eq!(serde_json::from_slice::<StoredEvent>(&row).unwrap(), bare);
        assert!(!String::from_utf8(row).unwrap().contains("\"res\""));
    }

    #[test]
    fn retention_deletes_records_older_than_the_age_bound_in_every_account() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
        let log = AuditLog::start(store.clone()).unwrap();
        let now = 2_000_000_000;
        let day = 86_400;
        for (i, age_days) in [200, 120, 95, 91, 89, 10, 0].iter().enumerate() {
            for account in ["111111111111", "222222222222"] {
                let mut r = record(account, &format!("Op{i}"));
                r.event.t = now - age_days * day;
                log.submit(r).wait().unwrap();
            }
        }
        assert_eq!(log.prune(now).unwrap(), 8, "four records older than 90 days in each account");
        for account in ["111111111111", "222222222222"] {
            let rows = store.scan(EVENTS_TABLE, &format!("{account}/"), None, 0).unwrap();
            let names: Vec<String> = rows.iter().map(|(_, v)| StoredEvent::from_row(v).unwrap().name).collect();
            assert_eq!(names, ["Op6", "Op5", "Op4"], "newest first, the three within 90 days");
        }
        assert_eq!(log.prune(now).unwrap(), 0, "nothing more to delete");
        assert_eq!(log.pruned_total(), 8);
    }

    #[test]
    fn in_memory_records_stay_within_the_count_bound() {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let bound = Retention { max_records: Some(64), ..Retention::EPHEMERAL };
        let log = AuditLog::start_with(store.clone(), bound).unwrap();
        for i in 0..1000 {
            log.submit(record("111111111111", &format!("Op{i}"))).wait().unwrap();
            let kept = store.scan(EVENTS_TABLE, "", None, 0).unwrap().len();
            assert!(kept <= 64 + 4, "{kept} records kept after {i}");
        }
        let rows = store.scan(EVENTS_TABLE, "111111111111/", None, 0).unwrap();
        assert_eq!(StoredEvent::from_row(&rows[0].1).unwrap().name, "Op999", "the newest are kept");
        assert!(log.pruned_total() >= 1000 - 68);
    }

    #[test]
    fn a_record_appended_in_a_transaction_commits_with_it() {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let log = AuditLog::start(store.clone()).unwrap();
        log.submit(record("111111111111", "Before")).wait().unwrap();
        let mut tx = store.begin().unwrap();
        tx.put("users", "alice", b"1").unwrap();
        log.append_in(tx.as_mut(), record("111111111111", "CreateUser")).unwrap();
        drop(tx); // rolled back: neither the change nor its record
        assert_eq!(store.scan(EVENTS_TABLE, "", None, 0).unwrap().len(), 1);
        let mut tx = store.begin().unwrap();
        tx.put("users", "alice", b"1").unwrap();
        log.append_in(tx.as_mut(), record("111111111111", "CreateUser")).unwrap();
        tx.commit().unwrap();
        let rows = store.scan(EVENTS_TABLE, "111111111111/", None, 0).unwrap();
        let newest = StoredEvent::from_row(&rows[0].1).unwrap();
        assert_eq!((newest.name.as_str(), rows.len()), ("CreateUser", 2));
        assert!(newest.seq > 1, "numbered after the records before it");
    }
}
