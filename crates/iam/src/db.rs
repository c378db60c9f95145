//! Typed access to IAM's tables over the shared store.

use std::sync::Arc;

use rampart_store::{ReadExt, Store, Transaction, TransactionExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Result;
use crate::model::{entity_key, tables, GroupRec, PolicyRec, ProfileRec, RoleRec, UserRec};

/// A stored, per-account, name-keyed entity.
pub trait Entity: Serialize + DeserializeOwned {
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

    /// Store an entity under its name.
    pub fn put_entity<T: Entity>(&mut self, account: &str, name: &str, value: &T) -> Result<()> {
        self.put(T::TABLE, &entity_key(account, name), value)
    }

    pub fn delete_entity<T: Entity>(&mut self, account: &str, name: &str) -> Result<bool> {
        self.delete(T::TABLE, &entity_key(account, name))
    }

    pub fn entities<T: Entity>(&self, account: &str) -> Result<Vec<T>> {
        Ok(self.scan::<T>(T::TABLE, &format!("{account}/"))?.into_iter().map(|(_, v)| v).collect())
    }
}
