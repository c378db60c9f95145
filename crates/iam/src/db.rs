//! Typed access to IAM's tables over the shared store.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

use rampart_store::{ReadExt, Store, StoreError, Transaction, TransactionExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::model::{entity_key, tables, GroupRec, PolicyRec, ProfileRec, RoleRec, UserRec};

/// A stored, per-account, name-keyed entity.
pub trait Entity: Serialize + DeserializeOwned + Clone + 'static {
    const TABLE: &'static str;
}

impl Entity for UserRec {
    const TABLE: &'static str = tables::USERS;
}
impl Entity for GroupRec {
    const TABLE: &'static str = tables::GROUPS;
}
impl Entity for RoleRec {
    const TABLE: &'static str = tables::ROLES;
}
impl Entity for PolicyRec {
    const TABLE: &'static str = tables::POLICIES;
}
impl Entity for ProfileRec {
    const TABLE: &'static str = tables::PROFILES;
}

/// Point reads, the same inside and outside transactions.
pub trait Lookup {
    fn get<T: DeserializeOwned>(&self, table: &str, key: &str) -> Result<Option<T>>;

    /// An entity by account and name (case-insensitive).
    fn entity<T: Entity>(&self, account: &str, name: &str) -> Result<Option<T>> {
        self.get(T::TABLE, &entity_key(account, name))
    }
}

impl Lookup for Db {
    fn get<T: DeserializeOwned>(&self, table: &str, key: &str) -> Result<Option<T>> {
        Ok(self.store.get_json(table, key)?)
    }

    fn entity<T: Entity>(&self, account: &str, name: &str) -> Result<Option<T>> {
        let key = entity_key(account, name);
        match self.store.get(T::TABLE, &key)? {
            None => Ok(None),
            Some(raw) => decode_entity(&key, raw).map(Some),
        }
    }
}

/// The last entity this thread decoded, with the stored bytes it came from. A call's plan and its
/// run read the same entity; the bytes are compared, so the value is always the stored row's.
struct Decoded {
    table: &'static str,
    key: String,
    raw: Vec<u8>,
    value: Box<dyn Any>,
}

thread_local! {
    static LAST_DECODED: RefCell<Option<Decoded>> = const { RefCell::new(None) };
}

/// `raw` (the row `T::TABLE/key`) as a `T`, decoded again only when it differs from the last one.
fn decode_entity<T: Entity>(key: &str, raw: Vec<u8>) -> Result<T> {
    LAST_DECODED.with(|last| {
        let mut last = last.borrow_mut();
        if let Some(d) = last.as_ref().filter(|d| d.table == T::TABLE && d.key == key && d.raw == raw) {
            if let Some(v) = d.value.downcast_ref::<T>() {
                return Ok(v.clone());
            }
        }
        let value: T = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
            table: T::TABLE.into(),
            key: key.into(),
            reason: e.to_string(),
        })?;
        *last = Some(Decoded { table: T::TABLE, key: key.to_string(), raw, value: Box::new(value.clone()) });
        Ok(value)
    })
}

impl Lookup for Tx<'_> {
    fn get<T: DeserializeOwned>(&self, table: &str, key: &str) -> Result<Option<T>> {
        Ok(self.inner.get_json(table, key)?)
    }
}

/// IAM's view of the store.
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
}

impl Db {
    pub fn new(store: Arc<dyn Store>) -> Self {
        // Read on every call (caches check them): kept in memory where the store can.
        store.cache_table(tables::GENERATION);
        store.cache_table(crate::org::model::tables::GENERATION);
        // Read by most calls (GetUser, AssumeRole's role, the caller's own user).
        store.cache_table(tables::USERS);
        store.cache_table(tables::ROLES);
        Db { store }
    }

    /// Every entity of an account, ordered by lower-case name.
    pub fn entities<T: Entity>(&self, account: &str) -> Result<Vec<T>> {
        Ok(self.store.scan_json::<T>(T::TABLE, &format!("{account}/"))?.into_iter().map(|(_, v)| v).collect())
    }

    /// Rows under a prefix.
    pub fn scan<T: DeserializeOwned>(&self, table: &str, prefix: &str) -> Result<Vec<(String, T)>> {
        Ok(self.store.scan_json(table, prefix)?)
    }

    /// Number of rows under a prefix.
    pub fn count(&self, table: &str, prefix: &str) -> Result<usize> {
        Ok(self.store.scan(table, prefix, None, 0)?.len())
    }

    /// The account's IAM generation: changes whenever anything of the account's IAM state does.
    pub fn generation(&self, account: &str) -> Result<u64> {
        Ok(self.store.get(tables::GENERATION, account)?.as_deref().map(parse_generation).unwrap_or(0))
    }

    /// A write transaction on `account`'s IAM state; commits when `f` succeeds and bumps the
    /// generation so caches built from older state are dropped.
    pub fn write<T>(&self, account: &str, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut inner = self.store.begin()?;
        let out = {
            let mut tx = Tx { inner: inner.as_mut() };
            let out = f(&mut tx)?;
            let next = tx.inner.get(tables::GENERATION, account)?.as_deref().map(parse_generation).unwrap_or(0) + 1;
            tx.inner.put(tables::GENERATION, account, next.to_string().as_bytes())?;
            out
        };
        inner.commit()?;
        Ok(out)
    }

    /// A write that does not change authorization state (e.g. last-used times): no generation bump.
    pub fn write_untracked<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut inner = self.store.begin()?;
        let out = f(&mut Tx { inner: inner.as_mut() })?;
        inner.commit()?;
        Ok(out)
    }
}

fn parse_generation(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A write transaction.
pub struct Tx<'a> {
    inner: &'a mut dyn Transaction,
}

impl Tx<'_> {
    pub fn put<T: Serialize>(&mut self, table: &str, key: &str, value: &T) -> Result<()> {
        Ok(self.inner.put_json(table, key, value)?)
    }

    pub fn delete(&mut self, table: &str, key: &str) -> Result<bool> {
        Ok(self.inner.delete(table, key)?)
    }

    pub fn scan<T: DeserializeOwned>(&self, table: &str, prefix: &str) -> Result<Vec<(String, T)>> {
        Ok(self.inner.scan_json(table, prefix)?)
    }

    pub fn count(&self, table: &str, prefix: &str) -> Result<usize> {
        Ok(self.inner.scan(table, prefix, None, 0)?.len())
    }

    /// The first `limit` keys under a prefix, in key order.
    pub fn keys(&self, table: &str, prefix: &str, limit: usize) -> Result<Vec<String>> {
        Ok(self.inner.scan(table, prefix, None, limit)?.into_iter().map(|(k, _)| k).collect())
    }

    /// Store a new row of a per-account table (providers, server certificates): `exists()` when
    /// `key` is taken, AWS's quota error when the account already has `max` rows named `quota`.
    pub fn insert_new<T: Serialize>(
        &mut self,
        table: &str,
        account: &str,
        key: &str,
        value: &T,
        exists: impl FnOnce() -> crate::error::IamError,
        (quota, max): (&str, usize),
    ) -> Result<()> {
        if self.inner.get(table, key)?.is_some() {
            return Err(exists());
        }
        if self.count(table, &format!("{account}/"))? >= max {
            return Err(crate::error::IamError::quota(quota, max));
        }
        self.put(table, key, value)
    }

    /// Store an entity under its name (a new one is counted: [`Tx::count_entities`]).
    pub fn put_entity<T: Entity>(&mut self, account: &str, name: &str, value: &T) -> Result<()> {
        let key = entity_key(account, name);
        if self.inner.get(T::TABLE, &key)?.is_some() {
            return self.put(T::TABLE, &key, value);
        }
        let n = self.count_entities::<T>(account)?;
        self.put(T::TABLE, &key, value)?;
        self.set_count::<T>(account, n + 1)
    }

    pub fn delete_entity<T: Entity>(&mut self, account: &str, name: &str) -> Result<bool> {
        let n = self.count_entities::<T>(account)?;
        let existed = self.delete(T::TABLE, &entity_key(account, name))?;
        if existed {
            self.set_count::<T>(account, n.saturating_sub(1))?;
        }
        Ok(existed)
    }

    /// How many `T`s the account has: one row kept with every [`Tx::put_entity`] and
    /// [`Tx::delete_entity`], so a quota check does not read every entity of the account. State
    /// from before the counts existed is counted once, here.
    pub fn count_entities<T: Entity>(&mut self, account: &str) -> Result<usize> {
        let key = format!("{}/{account}", T::TABLE);
        if let Some(raw) = self.inner.get(tables::ENTITY_COUNTS, &key)? {
            if let Some(n) = std::str::from_utf8(&raw).ok().and_then(|t| t.parse().ok()) {
                return Ok(n);
            }
        }
        let n = self.inner.scan(T::TABLE, &format!("{account}/"), None, 0)?.len();
        self.set_count::<T>(account, n)?;
        Ok(n)
    }

    fn set_count<T: Entity>(&mut self, account: &str, n: usize) -> Result<()> {
        let key = format!("{}/{account}", T::TABLE);
        Ok(self.inner.put(tables::ENTITY_COUNTS, &key, n.to_string().as_bytes())?)
    }

    pub fn entities<T: Entity>(&self, account: &str) -> Result<Vec<T>> {
        Ok(self.scan::<T>(T::TABLE, &format!("{account}/"))?.into_iter().map(|(_, v)| v).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tag;
    use rampart_store::MemStore;

    fn user(name: &str, tag: &str) -> UserRec {
        UserRec {
            name: name.into(),
            id: format!("AIDA{name}"),
            path: "/".into(),
            created: 1,
            tags: vec![Tag { key: "team".into(), value: tag.into() }],
            boundary: None,
            inline: Default::default(),
            attached: Vec::new(),
            groups: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Reads after any write see the written row, never the previously decoded one.
    #[test]
    fn entity_reads_follow_every_write() {
        let db = Db::new(Arc::new(MemStore::new()));
        let other = Db::new(Arc::new(MemStore::new()));
        db.write("1", |tx| tx.put_entity("1", "ann", &user("ann", "a"))).unwrap();
        other.write("1", |tx| tx.put_entity("1", "ann", &user("ann", "other"))).unwrap();
        assert_eq!(db.entity::<UserRec>("1", "ANN").unwrap(), Some(user("ann", "a")));
        assert_eq!(db.entity::<UserRec>("1", "ann").unwrap(), Some(user("ann", "a")));
        // Same key in another store: its own row.
        assert_eq!(other.entity::<UserRec>("1", "ann").unwrap(), Some(user("ann", "other")));
        db.write_untracked(|tx| tx.put_entity("1", "ann", &user("ann", "b"))).unwrap();
        assert_eq!(db.entity::<UserRec>("1", "ann").unwrap(), Some(user("ann", "b")));
        // Same key, another table: decoded as that table's type.
        assert_eq!(db.entity::<GroupRec>("1", "ann").unwrap(), None);
        db.write("1", |tx| tx.delete_entity::<UserRec>("1", "ann")).unwrap();
        assert_eq!(db.entity::<UserRec>("1", "ann").unwrap(), None);
        db.write_untracked(|tx| tx.put(tables::USERS, &entity_key("1", "bad"), &"not a user")).unwrap();
        assert!(db.entity::<UserRec>("1", "bad").is_err());
    }

    /// The per-account counts follow creates, renames (delete + put) and deletes, count state
    /// written before they existed once, and ignore other accounts.
    #[test]
    fn entity_counts_follow_every_change() {
        let db = Db::new(Arc::new(MemStore::new()));
        // Rows from before counts were kept (no count row).
        db.write_untracked(|tx| {
            tx.put(tables::USERS, &entity_key("1", "old1"), &user("old1", "x"))?;
            tx.put(tables::USERS, &entity_key("1", "old2"), &user("old2", "x"))
        })
        .unwrap();
        let count = |acct: &str| db.write(acct, |tx| tx.count_entities::<UserRec>(acct)).unwrap();
        assert_eq!(count("1"), 2);
        db.write("1", |tx| tx.put_entity("1", "ann", &user("ann", "a"))).unwrap();
        db.write("1", |tx| tx.put_entity("1", "ann", &user("ann", "b"))).unwrap();
        assert_eq!(count("1"), 3, "an update is not a new entity");
        db.write("1", |tx| {
            tx.delete_entity::<UserRec>("1", "ann")?;
            tx.put_entity("1", "anne", &user("anne", "b"))
        })
        .unwrap();
        assert_eq!(count("1"), 3, "a rename keeps the count");
        assert!(!db.write("1", |tx| tx.delete_entity::<UserRec>("1", "nobody")).unwrap());
        db.write("1", |tx| tx.delete_entity::<UserRec>("1", "old1").map(|_| ())).unwrap();
        assert_eq!(count("1"), 2);
        assert_eq!(count("2"), 0);
        assert_eq!(db.write("1", |tx| tx.count_entities::<GroupRec>("1")).unwrap(), 0);
        assert_eq!(db.count(tables::USERS, "1/").unwrap(), 2, "the count is the rows' count");
    }
}
