//! Uncommitted writes kept beside a base that is read through: the in-memory store's
//! transactions, and the transactions a call makes inside its unit of work ([`crate::unit`]).

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{Read, Row, StoreError, Transaction};

/// table → key → new value (`None` = deleted). A transaction writes few tables: an ordered map
/// finds them with a comparison or two, no hashing.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    writes: BTreeMap<String, BTreeMap<String, Option<Vec<u8>>>>,
}

/// The keys of a table in scan order: start after `start_after` (exclusive) or at `prefix`.
pub(crate) fn lower_bound<'k>(prefix: &'k str, start_after: Option<&'k str>) -> Bound<&'k str> {
    match start_after {
        Some(s) if s >= prefix => Bound::Excluded(s),
        _ => Bound::Included(prefix),
    }
}

impl Overlay {
    /// The pending write at `table/key`: `Some(None)` for a deletion, `None` when untouched.
    pub(crate) fn pending(&self, table: &str, key: &str) -> Option<&Option<Vec<u8>>> {
        self.writes.get(table).and_then(|t| t.get(key))
    }

    pub(crate) fn get(&self, base: &dyn Read, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending(table, key) {
            Some(w) => Ok(w.clone()),
            None => base.get(table, key),
        }
    }

    /// `base`'s scan with the pending writes applied.
    pub(crate) fn scan(
        &self,
        base: &dyn Read,
        table: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let Some(overlay) = self.writes.get(table) else { return base.scan(table, prefix, start_after, limit) };
        let pending: Vec<(&String, &Option<Vec<u8>>)> = overlay
            .range::<str, _>((lower_bound(prefix, start_after), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .collect();
        if pending.is_empty() {
            return base.scan(table, prefix, start_after, limit);
        }
        // Each pending write can hide at most one committed row: read that many more.
        let extra = if limit == 0 { 0 } else { limit + pending.len() };
        let mut merged: BTreeMap<String, Vec<u8>> = base.scan(table, prefix, start_after, extra)?.into_iter().collect();
        for (k, v) in pending {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        let rows = merged.into_iter();
        Ok(if limit == 0 { rows.collect() } else { rows.take(limit).collect() })
    }

    /// The pending writes of `table`, its name copied only the first time it is written.
    fn table(&mut self, table: &str) -> &mut BTreeMap<String, Option<Vec<u8>>> {
        if !self.writes.contains_key(table) {
            self.writes.insert(table.to_string(), BTreeMap::new());
        }
        #[allow(clippy::expect_used)]
        self.writes.get_mut(table).expect("inserted above")
    }

    pub(crate) fn put(&mut self, table: &str, key: String, value: Vec<u8>) {
        self.table(table).insert(key, Some(value));
    }

    pub(crate) fn delete(&mut self, table: &str, key: &str) {
        self.table(table).insert(key.to_string(), None);
    }

    /// Every pending write, table by table, in key order.
    pub(crate) fn into_writes(self) -> impl Iterator<Item = (String, BTreeMap<String, Option<Vec<u8>>>)> {
        self.writes.into_iter()
    }

    /// Apply every pending write to `tx`.
    pub(crate) fn apply_to(self, tx: &mut dyn Transaction) -> Result<(), StoreError> {
        for (table, writes) in self.writes {
            for (k, v) in writes {
                match v {
                    Some(v) => tx.put_owned(&table, k, v)?,
                    None => {
                        tx.delete(&table, &k)?;
                    }
                }
            }
        }
        Ok(())
    }
}
