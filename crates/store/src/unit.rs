//! Units of work: everything one API call writes, plus its audit record, in one transaction.
//!
//! Services are written against [`Store`] and open their own short transactions. The request
//! pipeline wants a call's changes and the audit record that describes them to commit together
//! (both or neither) — but the record can only be written once the handler has answered. So the
//! services' store is a [`UnitStore`]: while the pipeline runs a call inside a [`CallUnit`] on a
//! thread, every transaction the call begins on that thread joins one backend transaction (opened
//! at the first write, holding the writer from then on): the call's own commits only move its
//! writes into that transaction, and its rollbacks discard just their own writes. The pipeline then
//! adds the record and commits the whole unit once ([`CallUnit::finish`]), without waiting for the
//! disk; the answer waits for durability (group commit, [`crate::Durability`]).
//!
//! Calls that write nothing never open a backend transaction. Threads without a unit (background
//! jobs) get ordinary transactions.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use self_cell::self_cell;

use crate::overlay::Overlay;
use crate::{Durability, Read, Row, Store, StoreError, Transaction};

type BoxedTxn<'a> = Option<Box<dyn Transaction + 'a>>;

self_cell!(
    /// A backend transaction together with the store it borrows.
    struct OwnedTxn {
        owner: Arc<dyn Store>,
        #[covariant]
        dependent: BoxedTxn,
    }
);

impl OwnedTxn {
    fn open(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        OwnedTxn::try_new(store, |s| s.begin().map(Some))
    }

    fn read<R>(&self, f: impl FnOnce(&dyn Transaction) -> Result<R, StoreError>) -> Result<R, StoreError> {
        match self.borrow_dependent() {
            Some(tx) => f(tx.as_ref()),
            None => Err(finished()),
        }
    }

    fn write<R>(&mut self, f: impl FnOnce(&mut dyn Transaction) -> Result<R, StoreError>) -> Result<R, StoreError> {
        self.with_dependent_mut(|_, tx| match tx {
            Some(tx) => f(tx.as_mut()),
            None => Err(finished()),
        })
    }

    fn commit_deferred(mut self) -> Result<u64, StoreError> {
        self.with_dependent_mut(|_, tx| match tx.take() {
            Some(tx) => tx.commit_deferred(),
            None => Err(finished()),
        })
    }
}

fn finished() -> StoreError {
    StoreError::Backend("the unit of work's transaction is finished".into())
}

/// The unit entered on this thread.
struct Slot {
    store_id: usize,
    /// The unit's backend transaction, once the call first wrote; `None` while a joined
    /// transaction has it out (see [`UnitTxn`]) or before the first write.
    outer: Option<OwnedTxn>,
    /// A joined transaction holds `outer` right now.
    lent: bool,
    /// Work to start once the unit has committed ([`after_commit`]).
    after: Vec<AfterCommit>,
}

/// Work that must see a call's changes: started once they are committed.
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// Run `f` once the current thread's unit of work has committed and its changes are durable (at
/// once when no unit is active; on another thread when it has to wait):
/// background work a call starts (a rotation, a delivery) must read what the call wrote. Dropped
/// when the unit rolls back.
pub fn after_commit(f: AfterCommit) {
    let f = UNIT.with(|u| match u.borrow_mut().as_mut() {
        Some(slot) => {
            slot.after.push(f);
            None
        }
        None => Some(f),
    });
    if let Some(f) = f {
        f();
    }
}

thread_local! {
    static UNIT: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The store services are given: a [`Store`] whose transactions join the current thread's
/// [`CallUnit`], if any.
pub struct UnitStore {
    inner: Arc<dyn Store>,
    id: usize,
}

impl UnitStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(UnitStore { inner, id: NEXT_ID.fetch_add(1, Ordering::Relaxed) })
    }

    /// The backend underneath.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Start a unit of work on this thread. Units do not nest: entering one while another is
    /// active on the thread is refused.
    pub fn enter(&self) -> Result<CallUnit<'_>, StoreError> {
        UNIT.with(|u| {
            let mut u = u.borrow_mut();
            if u.is_some() {
                return Err(StoreError::Backend("a unit of work is already active on this thread".into()));
            }
            *u = Some(Slot { store_id: self.id, outer: None, lent: false, after: Vec::new() });
            Ok(CallUnit { store: self, done: false })
        })
    }

    /// Run `f` on this thread's unit slot when a unit of this store is active.
    fn with_slot<R>(&self, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
        UNIT.with(|u| {
            let mut u = u.borrow_mut();
            match u.as_mut() {
                Some(slot) if slot.store_id == self.id => Some(f(slot)),
                _ => None,
            }
        })
    }

    /// Read through the unit's transaction when it has one (the call sees its own writes).
    fn read<R>(&self, f: impl Fn(&dyn Read) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let through_unit = self.with_slot(|slot| slot.outer.as_ref().map(|outer| outer.read(|tx| f(tx as &dyn Read))));
        match through_unit.flatten() {
            Some(r) => r,
            None => f(self.inner.as_ref()),
        }
    }
}

impl Read for UnitStore {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|r| r.get(table, key))
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        self.read(|r| r.scan(table, prefix, start_after, limit))
    }
}

impl Store for UnitStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let joined = self.with_slot(|slot| -> Result<Option<OwnedTxn>, StoreError> {
            if slot.lent {
                // A second transaction while one is open on this thread would wait for itself.
                return Err(StoreError::Backend("a transaction is already open in this unit of work".into()));
            }
            let outer = match slot.outer.take() {
                Some(o) => o,
                None => OwnedTxn::open(self.inner.clone())?,
            };
            slot.lent = true;
            Ok(Some(outer))
        });
        match joined {
            Some(outer) => Ok(Box::new(UnitTxn { store: self, outer: outer?, writes: Overlay::default() })),
            None => self.inner.begin(),
        }
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn is_local(&self) -> bool {
        self.inner.is_local()
    }

    fn in_memory(&self) -> bool {
        self.inner.in_memory()
    }

    fn durability(&self) -> Option<&Durability> {
        self.inner.durability()
    }

    fn try_lease(&self, name: &str, ttl: std::time::Duration) -> Result<bool, StoreError> {
        self.inner.try_lease(name, ttl)
    }

    fn release_lease(&self, name: &str) -> Result<(), StoreError> {
        self.inner.release_lease(name)
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.inner.size_bytes()
    }

    fn cache_table(&self, table: &'static str) {
        self.inner.cache_table(table)
    }
}

/// A transaction joined to the thread's unit: its writes stay in an overlay until it commits,
/// which moves them into the unit's backend transaction (so a rollback drops only its own).
struct UnitTxn<'a> {
    store: &'a UnitStore,
    outer: Option<OwnedTxn>,
    writes: Overlay,
}

impl UnitTxn<'_> {
    fn base<R>(&self, f: impl FnOnce(&dyn Read) -> Result<R, StoreError>) -> Result<R, StoreError> {
        match &self.outer {
            Some(outer) => outer.read(|tx| f(tx as &dyn Read)),
            None => Err(finished()),
        }
    }

    /// Hand the unit's transaction back to the slot.
    fn give_back(&mut self) {
        let outer = self.outer.take();
        self.store.with_slot(|slot| {
            slot.outer = outer;
            slot.lent = false;
        });
    }
}

impl Read for UnitTxn<'_> {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(w) = self.writes.pending(table, key) {
            return Ok(w.clone());
        }
        self.base(|b| b.get(table, key))
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        self.base(|b| self.writes.scan(b, table, prefix, start_after, limit))
    }
}

impl Transaction for UnitTxn<'_> {
    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writes.put(table, key.to_string(), value.to_vec());
        Ok(())
    }

    fn put_owned(&mut self, table: &str, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.writes.put(table, key, value);
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &str) -> Result<bool, StoreError> {
        let existed = self.get(table, key)?.is_some();
        self.writes.delete(table, key);
        Ok(existed)
    }

    /// Moves the writes into the unit; they become durable with the unit (see [`CallUnit`]).
    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let writes = std::mem::take(&mut self.writes);
        let applied = match self.outer.as_mut() {
            Some(outer) => outer.write(|tx| writes.apply_to(tx)),
            None => Err(finished()),
        };
        if applied.is_err() {
            // Half-applied writes must not commit with the unit.
            self.outer = None;
        }
        self.give_back();
        applied
    }

    fn commit_deferred(self: Box<Self>) -> Result<u64, StoreError> {
        self.commit().map(|()| 0)
    }
}

impl Drop for UnitTxn<'_> {
    fn drop(&mut self) {
        if self.outer.is_some() {
            self.give_back();
        }
    }
}

/// One call's unit of work on this thread (see the module docs). Dropped without
/// [`CallUnit::finish`], everything it wrote is rolled back.
pub struct CallUnit<'s> {
    store: &'s UnitStore,
    done: bool,
}

impl CallUnit<'_> {
    /// Whether the call has written anything so far.
    pub fn has_writes(&self) -> bool {
        self.store.with_slot(|slot| slot.outer.is_some() || slot.lent).unwrap_or(false)
    }

    /// End the unit. When the call wrote, `last` adds to the same transaction (the audit record)
    /// and the whole unit commits without waiting for the disk: returns the commit's position to
    /// wait for ([`Durability::wait`]). When it wrote nothing, returns `Ok(None)` without calling `last`.
    pub fn finish(
        mut self,
        last: impl FnOnce(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        self.done = true;
        let Some(slot) = UNIT.with(|u| u.borrow_mut().take()) else { return Ok(None) };
        let committed = match slot.outer {
            None => None,
            Some(mut outer) => {
                outer.write(last)?;
                Some(outer.commit_deferred()?)
            }
        };
        let store = self.store.inner.clone();
        match (committed, slot.after.is_empty()) {
            (_, true) => {}
            // Deferred work must see the call's changes: start it once they are durable (and so
            // visible to every connection), off this thread.
            (Some(pos), false) if store.durability().is_some() => {
                let after = slot.after;
                let spawned =
                    std::thread::Builder::new().name("rampart-after-commit".into()).spawn(move || {
                        match store.durability().map(|d| d.wait_blocking(pos)) {
                            Some(Err(e)) => {
                                tracing::error!(error = %e, "deferred work dropped: its call's changes are not durable")
                            }
                            _ => after.into_iter().for_each(|f| f()),
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start deferred work");
                }
            }
            (_, false) => slot.after.into_iter().for_each(|f| f()),
        }
        Ok(committed)
    }
}

impl Drop for CallUnit<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Rolls back: the backend transaction is dropped uncommitted.
            UNIT.with(|u| u.borrow_mut().take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{transact, MemStore, SqliteStore};

    fn backends() -> Vec<(Arc<dyn Store>, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let file: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite")).unwrap());
        vec![(Arc::new(MemStore::new()), None), (file, Some(dir))]
    }

    #[test]
    fn a_unit_commits_its_writes_and_the_last_record_together() {
        for (inner, _dir) in backends() {
            let store = UnitStore::new(inner.clone());
            let unit = store.enter().unwrap();
            transact(store.as_ref(), |tx| tx.put("users", "alice", b"1")).unwrap();
            // Not yet committed: another connection does not see it, the call itself does.
            assert_eq!(store.get("users", "alice").unwrap().as_deref(), Some(&b"1"[..]));
            // A failed transaction inside the unit rolls back only its own writes.
            let r: Result<(), StoreError> = transact(store.as_ref(), |tx| {
                tx.put("users", "bob", b"2")?;
                Err(StoreError::Backend("boom".into()))
            });
            assert!(r.is_err());
            assert!(store.get("users", "bob").unwrap().is_none());
            let pos = unit.finish(|tx| tx.put("trail", "1", b"record")).unwrap();
            assert!(pos.is_some());
            if let Some(d) = inner.durability() {
                d.wait_blocking(pos.unwrap()).unwrap();
            }
            assert_eq!(inner.get("users", "alice").unwrap().as_deref(), Some(&b"1"[..]));
            assert_eq!(inner.get("trail", "1").unwrap().as_deref(), Some(&b"record"[..]));
            assert!(inner.get("users", "bob").unwrap().is_none());
        }
    }

    #[test]
    fn a_unit_dropped_or_failing_at_the_end_leaves_nothing() {
        for (inner, _dir) in backends() {
            let store = UnitStore::new(inner.clone());
            {
                let _unit = store.enter().unwrap();
                transact(store.as_ref(), |tx| tx.put("users", "alice", b"1")).unwrap();
            }
            assert!(inner.get("users", "alice").unwrap().is_none(), "dropped unit rolled back");
            let unit = store.enter().unwrap();
            transact(store.as_ref(), |tx| tx.put("users", "carol", b"1")).unwrap();
            let r = unit.finish(|_| Err(StoreError::Backend("audit record refused".into())));
            assert!(r.is_err());
            assert!(inner.get("users", "carol").unwrap().is_none(), "no change without its record");
            // The writer is free again.
            transact(inner.as_ref(), |tx| tx.put("users", "dave", b"1")).unwrap();
        }
    }

    #[test]
    fn work_after_commit_starts_only_once_the_unit_committed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let started = Arc::new(AtomicUsize::new(0));
        let store = UnitStore::new(Arc::new(MemStore::new()));
        let bump = |n: &Arc<AtomicUsize>| {
            let n = n.clone();
            Box::new(move || {
                n.fetch_add(1, Ordering::SeqCst);
            })
        };
        {
            let _unit = store.enter().unwrap();
            transact(store.as_ref(), |tx| tx.put("t", "k", b"v")).unwrap();
            after_commit(bump(&started));
        }
        assert_eq!(started.load(Ordering::SeqCst), 0, "rolled back: never started");
        let unit = store.enter().unwrap();
        transact(store.as_ref(), |tx| tx.put("t", "k", b"v")).unwrap();
        after_commit(bump(&started));
        assert_eq!(started.load(Ordering::SeqCst), 0, "not before the commit");
        unit.finish(|_| Ok(())).unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 1, "in memory: committed is final");
        let unit = store.enter().unwrap();
        after_commit(bump(&started));
        unit.finish(|_| Ok(())).unwrap();
        assert_eq!(started.load(Ordering::SeqCst), 2, "a unit without writes starts it at its end");
        after_commit(bump(&started));
        assert_eq!(started.load(Ordering::SeqCst), 3, "no unit: at once");
    }

    #[test]
    fn a_unit_without_writes_opens_no_transaction_and_other_threads_are_unaffected() {
        for (inner, _dir) in backends() {
            let store = UnitStore::new(inner.clone());
            let unit = store.enter().unwrap();
            assert!(store.get("users", "x").unwrap().is_none());
            assert!(!unit.has_writes());
            // Another thread (a background job) writes with an ordinary transaction meanwhile.
            std::thread::scope(|s| {
                s.spawn(|| transact(store.as_ref(), |tx| tx.put("users", "bg", b"1")).unwrap()).join().unwrap();
            });
            assert_eq!(unit.finish(|_| panic!("not called without writes")).unwrap(), None);
            assert!(store.enter().is_ok(), "the slot is free again");
        }
    }
}
