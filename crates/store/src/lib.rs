//! One storage trait for all of Rampart's state, and its backends: embedded SQLite (the
//! default), PostgreSQL (several stateless `rampart serve` nodes on one database) and an
//! in-memory store for `--ephemeral`.
//!
//! The model is deliberately small: named tables of `key → bytes`, ordered by key (bytewise),
//! read directly or inside serializable write transactions. Services keep their domain objects
//! as JSON values and maintain their own secondary indexes in the same transaction, so every
//! backend only has to provide these few primitives.
//!
//! Guarantees every backend gives (and services may rely on):
//! * A write transaction sees every write committed before it began, and write transactions
//!   are serialized — across all nodes sharing a PostgreSQL database too. Read-modify-write
//!   inside one transaction is therefore safe without retries.
//! * A read outside a transaction sees every write acknowledged before it started, whichever
//!   node made it (no caching in the store: "read your writes" across nodes).
//! * [`Transaction::commit`] returns only once the write is durable.
//! * [`Store::try_lease`]: a named, time-limited lease for background work that must run on one
//!   node at a time (rotation schedules, trail delivery, pending deletions).

mod durable;
mod mem;
mod overlay;
mod pg;
mod sealed;
mod sqlite;
pub mod unit;

use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

pub use durable::{Durability, SyncStats};
pub use mem::MemStore;
pub use pg::PgStore;
pub use sealed::{SealError, Sealer};
pub use sqlite::SqliteStore;
pub use unit::{CallUnit, UnitStore};

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
    /// [`Transaction::put`] handing over the key and value (the in-memory store keeps them
    /// without copying).
    fn put_owned(&mut self, table: &str, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.put(table, &key, &value)
    }
    /// Delete `table/key`; returns whether it existed.
    fn delete(&mut self, table: &str, key: &str) -> Result<bool, StoreError>;
    /// Make every write durable, then return. Only then is a write acknowledged.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
    /// Commit without waiting for the disk (group commit): the writes are visible at once and
    /// durable once [`Store::durability`]'s syncer reaches the returned position
    /// ([`Durability::wait`]). Nothing may be acknowledged before that. Stores without a
    /// syncer (in memory) commit as [`Transaction::commit`] and return 0.
    fn commit_deferred(self: Box<Self>) -> Result<u64, StoreError> {
        self.commit().map(|()| 0)
    }
}

/// The storage backend. Every method may be called from any thread, including a Tokio worker
/// thread (a remote backend then blocks it for a network round trip; see [`Store::is_local`]).
pub trait Store: Read + Send + Sync {
    /// Start a write transaction. Writers are serialized (across nodes, for shared backends).
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError>;

    /// `"sqlite"`, `"postgres"` or `"memory"`: for logs and the health endpoint.
    fn backend(&self) -> &'static str;

    /// `true` when reads are in-process (no network round trip), so cheap enough to run inline on
    /// an async worker thread. `false` for PostgreSQL: run calls on the blocking pool.
    fn is_local(&self) -> bool;

    /// `true` when a commit does no I/O at all (the in-memory store): writers gain nothing from
    /// grouping commits and may commit inline.
    fn in_memory(&self) -> bool {
        false
    }

    /// The group-commit state of stores that defer durability ([`Transaction::commit_deferred`]);
    /// `None` when every commit is durable (or, in memory, final) as it returns.
    fn durability(&self) -> Option<&Durability> {
        None
    }

    /// Keep `table` (small, read on every call: generation counters) in memory, so reads outside
    /// transactions skip the backend. Only stores that see every write (one process over a
    /// local file) do; others ignore it. Reads inside transactions always go to the backend.
    fn cache_table(&self, _table: &'static str) {}

    /// Bytes the store takes on disk (or, in memory, about that much of RAM), for metrics.
    fn size_bytes(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Take or renew the lease `name` for `ttl` on behalf of this node (this store instance).
    /// Returns `true` when this node holds the lease until `ttl` from now, `false` when another
    /// node holds an unexpired one. Leases expire on their own: a node that dies loses its
    /// leases after `ttl`. Background jobs call this before each run (renewing well within
    /// `ttl`) and still make their state changes in a transaction that re-checks what is due,
    /// so a job that outlives its lease cannot apply twice.
    fn try_lease(&self, name: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Give up the lease `name` if this node holds it (e.g. at shutdown), so another node can
    /// take over without waiting for expiry.
    fn release_lease(&self, name: &str) -> Result<(), StoreError>;
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

thread_local! {
    static BLOCKING_OK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` on a thread where blocking is known to be fine (a runtime's blocking pool): store
/// calls inside it block this thread directly, instead of moving off what looks like an async
/// worker (Tokio's blocking-pool threads see the runtime's handle too).
pub fn blocking_section<R>(f: impl FnOnce() -> R) -> R {
    let before = BLOCKING_OK.with(|b| b.replace(true));
    let out = f();
    BLOCKING_OK.with(|b| b.set(before));
    out
}

fn blocking_allowed() -> bool {
    BLOCKING_OK.with(std::cell::Cell::get)
}

/// A fresh lease-holder name for one store instance: host-independent, unique enough.
fn new_node_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    let mut s = format!("{}-", std::process::id());
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Milliseconds since the Unix epoch on this machine's clock.
fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
