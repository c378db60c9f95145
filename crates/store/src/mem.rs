//! The in-memory backend for `--ephemeral`: ordered maps behind a lock; nothing touches disk.
//!
//! Readers share a read lock on the committed maps; write transactions are serialized by one
//! mutex and keep their writes in an overlay until commit, which applies it under the write lock
//! (so a reader never sees half a transaction, and a dropped transaction leaves no trace).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, RwLock};

use crate::overlay::{lower_bound, Overlay};
use crate::{Read, Row, Store, StoreError, Transaction};

type Table = BTreeMap<String, Vec<u8>>;

/// In-memory [`Store`]: one process, no durability beyond the process's life.
#[derive(Default)]
pub struct MemStore {
    committed: RwLock<HashMap<String, Table>>,
    writer: Mutex<()>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Table>> {
        // A poisoned lock means a reader panicked; the maps themselves are intact.
        self.committed.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn scan_table(table: Option<&Table>, prefix: &str, start_after: Option<&str>, limit: usize) -> Vec<Row> {
    let Some(table) = table else { return Vec::new() };
    let rows = table
        .range::<str, _>((lower_bound(prefix, start_after), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()));
    if limit == 0 {
        rows.collect()
    } else {
        rows.take(limit).collect()
    }
}

impl Read for MemStore {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().get(table).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        Ok(scan_table(self.read().get(table), prefix, start_after, limit))
    }
}

impl Store for MemStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Box::new(MemTxn { store: self, _writer: writer, writes: Overlay::default() }))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    fn is_local(&self) -> bool {
        true
    }

    fn in_memory(&self) -> bool {
        true
    }

    /// The bytes of every key and value held (what the store adds to the process's memory, less
    /// the maps' own overhead).
    fn size_bytes(&self) -> Result<u64, StoreError> {
        let tables = self.read();
        Ok(tables
            .iter()
            .map(|(name, t)| name.len() + t.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())
            .sum::<usize>() as u64)
    }

    /// One process is the only node: it always holds every lease.
    fn try_lease(&self, _name: &str, _ttl: std::time::Duration) -> Result<bool, StoreError> {
        Ok(true)
    }

    fn release_lease(&self, _name: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

struct MemTxn<'a> {
    store: &'a MemStore,
    _writer: MutexGuard<'a, ()>,
    writes: Overlay,
}

impl Read for MemTxn<'_> {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.writes.get(self.store, table, key)
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        self.writes.scan(self.store, table, prefix, start_after, limit)
    }
}

impl Transaction for MemTxn<'_> {
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

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let mut committed = self.store.committed.write().unwrap_or_else(|p| p.into_inner());
        for (table, writes) in self.writes.into_writes() {
            let t = committed.entry(table).or_default();
            for (k, v) in writes {
                match v {
                    Some(v) => t.insert(k, v),
                    None => t.remove(&k),
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{transact, SqliteStore};

    #[test]
    fn transaction_sees_its_own_writes_and_readers_do_not_until_commit() {
        let s = MemStore::new();
        transact(&s, |tx| -> Result<(), StoreError> {
            tx.put("t", "a", b"1")?;
            tx.put("t", "b", b"2")
        })
        .unwrap();
        let mut tx = s.begin().unwrap();
        tx.put("t", "c", b"3").unwrap();
        assert!(tx.delete("t", "a").unwrap());
        assert!(!tx.delete("t", "zz").unwrap());
        let keys = |rows: Vec<Row>| rows.into_iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(keys(tx.scan("t", "", None, 0).unwrap()), ["b", "c"]);
        assert_eq!(keys(tx.scan("t", "", None, 1).unwrap()), ["b"]);
        assert_eq!(tx.get("t", "a").unwrap(), None);
        drop(tx); // rolled back
        assert_eq!(keys(s.scan("t", "", None, 0).unwrap()), ["a", "b"]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        Commit,
        Rollback,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            (0u8..12).prop_map(Op::Delete),
            Just(Op::Commit),
            Just(Op::Rollback),
        ]
    }

    fn key(k: u8) -> String {
        // Keys sharing prefixes ("p1", "p10", "q…") exercise prefix scans.
        format!("{}{}", if k.is_multiple_of(3) { "q" } else { "p" }, k)
    }

    proptest! {
        /// The same transactions on the in-memory and the SQLite backend leave the same rows, and
        /// every scan inside and outside a transaction agrees.
        #[test]
        fn behaves_like_sqlite(ops in proptest::collection::vec(op(), 1..60), limit in 0usize..4, after in proptest::option::of(0u8..12)) {
            let (mem, sql) = (MemStore::new(), SqliteStore::in_memory().unwrap());
            let stores: [&dyn Store; 2] = [&mem, &sql];
            let mut txs: Vec<Box<dyn Transaction + '_>> = stores.iter().map(|s| s.begin().unwrap()).collect();
            for op in &ops {
                match op {
                    Op::Put(k, v) => for tx in &mut txs { tx.put("t", &key(*k), &[*v]).unwrap() },
                    Op::Delete(k) => {
                        let d: Vec<bool> = txs.iter_mut().map(|tx| tx.delete("t", &key(*k)).unwrap()).collect();
                        prop_assert_eq!(d[0], d[1]);
                    }
                    Op::Commit | Op::Rollback => {
                        let done = std::mem::take(&mut txs);
                        for tx in done {
                            if matches!(op, Op::Commit) { tx.commit().unwrap() }
                        }
                        txs = stores.iter().map(|s| s.begin().unwrap()).collect();
                    }
                }
                let after = after.map(key);
                for prefix in ["", "p", "p1", "q"] {
                    // start_after == prefix is left out: the backends need not agree on that edge.
                    if after.as_deref() == Some(prefix) { continue; }
                    let a = txs[0].scan("t", prefix, after.as_deref(), limit).unwrap();
                    let b = txs[1].scan("t", prefix, after.as_deref(), limit).unwrap();
                    prop_assert_eq!(a, b);
                }
            }
            drop(txs);
            prop_assert_eq!(mem.scan("t", "", None, 0).unwrap(), sql.scan("t", "", None, 0).unwrap());
        }
    }
}
