//! A call's changes and its audit record commit together or not at all: when the record cannot
//! be written, the change is rolled back and the caller gets an error (never a change without
//! its record, nor a success that was not recorded).

mod common;
use common::{call_at as call, Keys};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rampart_server::pipeline::{Pipeline, RawResponse};
use rampart_store::{Read, Row, Sealer, SqliteStore, Store, StoreError, Transaction, UnitStore};
use time::OffsetDateTime;

const ACCT: &str = "111122223333";
const ROOT_KEY: &str = "AKIAROOTROOTROOT0001";
const ROOT_SECRET: &str = "rootsecretrootsecretrootsecretrootsecret";

/// A durable SQLite store whose transactions refuse audit records while `refuse` is set
/// (as a full disk or a failing database would refuse them).
struct RefusingRecords {
    inner: SqliteStore,
    refuse: AtomicBool,
}

struct Txn<'a> {
    inner: Box<dyn Transaction + 'a>,
    refuse: &'a AtomicBool,
}

impl Read for RefusingRecords {
    fn get(&self, t: &str, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(t, k)
    }
    fn scan(&self, t: &str, p: &str, a: Option<&str>, l: usize) -> Result<Vec<Row>, StoreError> {
        self.inner.scan(t, p, a, l)
    }
}

impl Read for Txn<'_> {
    fn get(&self, t: &str, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(t, k)
    }
    fn scan(&self, t: &str, p: &str, a: Option<&str>, l: usize) -> Result<Vec<Row>, StoreError> {
        self.inner.scan(t, p, a, l)
    }
}

impl Transaction for Txn<'_> {
    fn put(&mut self, t: &str, k: &str, v: &[u8]) -> Result<(), StoreError> {
        if t == rampart_trail::audit::EVENTS_TABLE && self.refuse.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("disk full".into()));
        }
        self.inner.put(t, k, v)
    }
    fn delete(&mut self, t: &str, k: &str) -> Result<bool, StoreError> {
        self.inner.delete(t, k)
    }
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.commit()
    }
    fn commit_deferred(self: Box<Self>) -> Result<u64, StoreError> {
        self.inner.commit_deferred()
    }
}

impl Store for RefusingRecords {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        Ok(Box::new(Txn { inner: self.inner.begin()?, refuse: &self.refuse }))
    }
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    fn is_local(&self) -> bool {
        true
    }
    fn durability(&self) -> Option<&rampart_store::Durability> {
        self.inner.durability()
    }
    fn try_lease(&self, n: &str, ttl: std::time::Duration) -> Result<bool, StoreError> {
        self.inner.try_lease(n, ttl)
    }
    fn release_lease(&self, n: &str) -> Result<(), StoreError> {
        self.inner.release_lease(n)
    }
}

fn create_user(p: &Pipeline, name: &str) -> RawResponse {
    let root = Keys { id: ROOT_KEY, secret: ROOT_SECRET, token: None };
    let now = OffsetDateTime::now_utc();
    call(p, "iam", &root, &format!("Action=CreateUser&Version=2010-05-08&UserName={name}"), now, now)
}

#[test]
fn a_change_whose_record_cannot_be_written_is_rolled_back_and_the_call_fails() {
    let dir = tempfile::tempdir().unwrap();
    let raw = Arc::new(RefusingRecords {
        inner: SqliteStore::open(&dir.path().join("db.sqlite")).unwrap(),
        refuse: AtomicBool::new(false),
    });
    let backend: Arc<dyn Store> = raw.clone();
    let units = UnitStore::new(backend.clone());
    let store: Arc<dyn Store> = units.clone();
    let iam = rampart_iam::Iam::new(store, Arc::new(Sealer::new(&Sealer::generate_key())));
    iam.bootstrap_account(ACCT, ROOT_KEY, ROOT_SECRET).unwrap();
    let audit = rampart_trail::AuditLog::start(backend.clone()).unwrap();
    let p = Pipeline::new(vec![iam.iam_service(), iam.sts_service()], iam.authorizer(), iam.credentials())
        .with_audit(audit, ACCT)
        .with_units(units);

    raw.refuse.store(true, Ordering::SeqCst);
    let r = create_user(&p, "alice");
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("InternalFailure"));
    raw.refuse.store(false, Ordering::SeqCst);

    // The change did not happen: the user does not exist, and creating it now works.
    let r = create_user(&p, "alice");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Exactly one record: the successful CreateUser (with its change).
    let rows = backend.scan(rampart_trail::audit::EVENTS_TABLE, &format!("{ACCT}/"), None, 0).unwrap();
    let events: Vec<_> = rows.iter().filter_map(|(_, v)| rampart_trail::StoredEvent::from_row(v)).collect();
    let creates: Vec<_> = events.iter().filter(|e| e.name == "CreateUser").collect();
    assert_eq!(creates.len(), 1, "{:?}", events.iter().map(|e| &e.name).collect::<Vec<_>>());
    assert!(!creates[0].event.contains("errorCode"));
}
