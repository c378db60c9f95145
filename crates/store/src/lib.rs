//! One storage trait for all of Rampart's state, and its embedded SQLite backend.
//!
//! The model is deliberately small: named tables of `key → bytes`, ordered by key, read
//! directly or inside serializable write transactions. Services keep their domain objects as
//! JSON values and maintain their own secondary indexes in the same transaction, so every
//! backend (SQLite now, PostgreSQL later) only has to provide these few primitives.

mod sealed;
mod sqlite;

use serde::{de::DeserializeOwned, Serialize};

pub use sealed::{SealError, Sealer};
pub use sqlite::SqliteStore;

/// Storage failures. Mapped to `InternalFailure` at the edge.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("stored value for {table}/{key} is corrupt: {reason}")]
    Corrupt { table: String, key: String, reason: String },
    #[error("could not encode value: {0}")]
    Encode(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A `(key, value)` row returned by scans.
pub type Row = (String, Vec<u8>);

/// Read access, shared by the store itself (auto-commit reads) and transactions.
pub trait Read {
    /// The value at `table/key`.
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Rows of `table` whose key starts with `prefix`, in key order, after `start_after`
    /// (exclusive) when given, at most `limit` rows (`0` = no limit).
    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError>;
}

/// A write transaction: serializable; dropped without [`Transaction::commit`] it rolls back.
pub trait Transaction: Read {
    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Delete `table/key`; returns whether it existed.
    fn delete(&mut self, table: &str, key: &str) -> Result<bool, StoreError>;
    /// Make every write durable, then return. Only then is a write acknowledged.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The storage backend.
pub trait Store: Read + Send + Sync {
    /// Start a write transaction. Writers are serialized.
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError>;
}

/// Typed JSON helpers over any [`Read`] / [`Transaction`].
pub trait ReadExt: Read {
    fn get_json<T: DeserializeOwned>(&self, table: &str, key: &str) -> Result<Option<T>, StoreError> {
        match self.get(table, key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt {
                table: table.into(),
                key: key.into(),
                reason: e.to_string(),
            }),
        }
    }

    fn scan_json<T: DeserializeOwned>(&self, table: &str, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        self.scan(table, prefix, None, 0)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v).map(|t| (k.clone(), t)).map_err(|e| StoreError::Corrupt {
                    table: table.into(),
                    key: k,
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

impl<R: Read + ?Sized> ReadExt for R {}

/// Typed JSON writes.
pub trait TransactionExt: Transaction {
    fn put_json<T: Serialize>(&mut self, table: &str, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Encode(e.to_string()))?;
        self.put(table, key, &bytes)
    }
}

impl<T: Transaction + ?Sized> TransactionExt for T {}

/// Run `f` in a write transaction and commit when it returns `Ok`.
/// Errors of `f` roll back and pass through unchanged.
pub fn transact<T, E>(store: &dyn Store, f: impl FnOnce(&mut dyn Transaction) -> Result<T, E>) -> Result<T, E>
where
    E: From<StoreError>,
{
    let mut tx = store.begin()?;
    let out = f(tx.as_mut())?;
    tx.commit()?;
    Ok(out)
}
