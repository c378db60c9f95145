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

/// Table of records: key `{account}/{inverted sequence}` so a forward scan is newest first.
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
    done: oneshot::Sender<Result<(), AuditError>>,
}

/// Awaits the commit of one record.
#[derive(Debug)]
pub struct Receipt(ReceiptInner);

#[derive(Debug)]
enum ReceiptInner {
    Pending(oneshot::Receiver<Result<(), AuditError>>),
    Ready(Result<(), AuditError>),
}

impl Receipt {
    /// Wait (asynchronously) for the commit.
    pub async fn committed(self) -> Result<(), AuditError> {
        match self.0 {
            ReceiptInner::Pending(rx) => rx.await.unwrap_or(Err(AuditError::WriterGone)),
            ReceiptInner::Ready(r) => r,
        }
    }

    /// Wait (blocking this thread) for the commit. Not for use on an async worker thread.
    pub fn wait(self) -> Result<(), AuditError> {
        match self.0 {
            ReceiptInner::Pending(rx) => rx.blocking_recv().unwrap_or(Err(AuditError::WriterGone)),
            ReceiptInner::Ready(r) => r,
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
}

/// The inline writer's state.
struct Inline {
    open: AtomicBool,
    /// The last sequence number given out. An in-memory store belongs to this process alone, so
    /// the counter need not be read back from the store on every commit.
    last: AtomicU64,
}

impl AuditLog {
    /// Start the writer over `store`.
    pub fn start(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let last: u64 = store.get_json::<u64>(META_TABLE, "seq")?.unwrap_or(0);
        if store.in_memory() {
            return Ok(Arc::new(AuditLog {
                tx: Mutex::new(None),
                thread: Mutex::new(None),
                store,
                inline: Some(Inline { open: AtomicBool::new(true), last: AtomicU64::new(last) }),
            }));
        }
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let writer_store = store.clone();
        let thread = std::thread::Builder::new()
            .name("rampart-audit".into())
            .spawn(move || writer_loop(writer_store, rx, last))
            .map_err(|e| StoreError::Backend(format!("cannot start the audit writer: {e}")))?;
        Ok(Arc::new(AuditLog { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)), store, inline: None }))
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
                return Receipt(ReceiptInner::Ready(Err(AuditError::WriterGone)));
            }
            let one = std::iter::once((account, &mut event));
            let result = commit_events(self.store.as_ref(), one, Counter::Local(&inline.last)).map(|_| ());
            if let Err(e) = &result {
                tracing::error!(error = %e, "audit record could not be committed");
            }
            return Receipt(ReceiptInner::Ready(result));
        }
        let (done, rx) = oneshot::channel();
        let job = Job { account, event, done };
        let tx = match self.tx.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let gone = || Receipt(ReceiptInner::Ready(Err(AuditError::WriterGone)));
        let Some(tx) = tx else { return gone() };
        match tx.try_send(job) {
            Ok(()) => Receipt(ReceiptInner::Pending(rx)),
            Err(TrySendError::Full(job)) => match tx.send(job) {
                Ok(()) => Receipt(ReceiptInner::Pending(rx)),
                Err(_) => gone(),
            },
            Err(TrySendError::Disconnected(_)) => gone(),
        }
    }

    /// Stop taking records, commit what is queued, and stop the writer.
    pub fn shutdown(&self) {
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
        match &result {
            Ok(new_last) => last = *new_last,
            Err(e) => tracing::error!(error = %e, records = group.len(), "audit records could not be committed"),
        }
        let outcome = result.map(|_| ());
        for job in group.drain(..) {
            let _ = job.done.send(outcome.clone());
        }
    }
}

fn commit_group(store: &dyn Store, group: &mut [Job], last: u64) -> Result<u64, AuditError> {
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

/// Commit `(recipient account, event)` pairs in one transaction, numbering them in order.
fn commit_events<'e, A: AsRef<str>>(
    store: &dyn Store,
    events: impl Iterator<Item = (A, &'e mut StoredEvent)>,
    counter: Counter<'_>,
) -> Result<u64, AuditError> {
    let err = |e: StoreError| AuditError::Store(e.to_string());
    let mut tx: Box<dyn Transaction + '_> = store.begin().map_err(err)?;
    // Transactions are serialized, so the local counter cannot move until this one ends.
    let mut seq = match counter {
        Counter::Shared(last) => tx.get_json::<u64>(META_TABLE, "seq").map_err(err)?.unwrap_or(0).max(last),
        Counter::Local(last) => last.load(Ordering::Acquire),
    };
    let mut row = Vec::new();
    for (account, event) in events {
        seq += 1;
        event.seq = seq;
        row.clear();
        // The event text plus room for the lookup fields.
        row.reserve(event.event.len() + 256);
        event.write_row(&mut row);
        // Kept at its exact size: rows live as long as the store, and a store row with spare
        // capacity measured twice the memory per call (in-memory store, mimalloc).
        tx.put_owned(EVENTS_TABLE, event_key(account.as_ref(), seq), row.as_slice().to_vec()).map_err(err)?;
    }
    // What `put_json` writes for a u64, without serde.
    let mut digits = Vec::with_capacity(20);
    write_u64(&mut digits, seq);
    tx.put_owned(META_TABLE, "seq".to_string(), digits).map_err(err)?;
    if let Counter::Local(last) = counter {
        // Before the commit ends the transaction: the next one must see it. (Should the commit
        // fail, these numbers are skipped, never given out twice.)
        last.store(seq, Ordering::Release);
    }
    tx.commit().map_err(err)?;
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
        let first: StoredEvent = serde_json::from_slice(&rows[0].1).unwrap();
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
            assert!(matches!(receipt.0, ReceiptInner::Ready(Ok(()))), "committed before submit returns");
        }
        let rows = store.scan(EVENTS_TABLE, "111111111111/", None, 0).unwrap();
        assert_eq!(rows.len(), 20);
        let newest: StoredEvent = serde_json::from_slice(&rows[0].1).unwrap();
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
}
