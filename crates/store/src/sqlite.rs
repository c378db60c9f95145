//! The embedded SQLite backend: WAL, `synchronous=FULL`, one writer, a few readers.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::{Read, Row, Store, StoreError, Transaction};

/// Schema migrations, applied in order; the index is the schema version they lead to - 1.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS kv (
        tbl   TEXT NOT NULL,
        key   TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (tbl, key)
    ) WITHOUT ROWID;",
    "CREATE TABLE IF NOT EXISTS leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_ms INTEGER NOT NULL
    );",
];

const READERS: usize = 4;

/// Receives `(table, key, value)` rows from [`SqliteStore::export`].
pub type ExportFn<'a> = dyn FnMut(&str, &str, &[u8]) -> Result<(), StoreError> + 'a;

/// SQLite-backed [`Store`]. `open` for a file, `in_memory` for `--ephemeral`.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Read connections (file mode only; in-memory mode reads through the writer).
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// This instance's lease holder name.
    node_id: String,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and migrate it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate(&writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(10))?;
            readers.push(Mutex::new(r));
        }
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            node_id: crate::new_node_id(),
        })
    }

    /// A private in-memory database (nothing touches disk).
    pub fn in_memory() -> Result<Self, StoreError> {
        let writer = Connection::open_in_memory()?;
        migrate(&writer)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            node_id: crate::new_node_id(),
        })
    }

    /// Every row of every table, in `(table, key)` order (for `rampart store migrate`).
    pub fn export(&self, f: &mut ExportFn<'_>) -> Result<u64, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare("SELECT tbl, key, value FROM kv ORDER BY tbl, key")?;
        let mut rows = stmt.query([])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let (t, k, v): (String, String, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
            f(&t, &k, &v)?;
            n += 1;
        }
        Ok(n)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return lock(&self.writer);
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Ok(g) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return g;
            }
        }
        lock(&self.readers[start % self.readers.len()])
    }
}

/// A poisoned lock only means another request panicked mid-read; the connection is still usable.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        conn.execute_batch(&format!("BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;", i + 1))?;
    }
    Ok(())
}

fn get(conn: &Connection, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT value FROM kv WHERE tbl = ?1 AND key = ?2")?;
    Ok(stmt.query_row(params![table, key], |r| r.get(0)).optional()?)
}

fn scan(
    conn: &Connection,
    table: &str,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> Result<Vec<Row>, StoreError> {
    // Keys are compared bytewise (BINARY collation), so a prefix range is [prefix, prefix+U+10FFFF).
    let lower = match start_after {
        Some(s) if s > prefix => s,
        _ => prefix,
    };
    let inclusive = start_after.is_none_or(|s| s <= prefix);
    let upper = format!("{prefix}\u{10FFFF}");
    let sql = if inclusive {
        "SELECT key, value FROM kv WHERE tbl = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4"
    } else {
        "SELECT key, value FROM kv WHERE tbl = ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT ?4"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let limit = if limit == 0 { -1 } else { limit as i64 };
    let rows = stmt.query_map(params![table, lower, upper, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let rows: Result<Vec<Row>, _> = rows.collect();
    Ok(rows?.into_iter().filter(|(k, _): &Row| k.starts_with(prefix)).collect())
}

impl Read for SqliteStore {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get(&self.reader(), table, key)
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        scan(&self.reader(), table, prefix, start_after, limit)
    }
}

impl Store for SqliteStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let conn = lock(&self.writer);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Box::new(SqliteTxn { conn, done: false }))
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn is_local(&self) -> bool {
        true
    }

    fn try_lease(&self, name: &str, ttl: std::time::Duration) -> Result<bool, StoreError> {
        let now = crate::unix_millis();
        let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let conn = lock(&self.writer);
        let mut stmt = conn.prepare_cached(
            "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
             WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?4",
        )?;
        Ok(stmt.execute(params![name, self.node_id, expires, now])? > 0)
    }

    fn release_lease(&self, name: &str) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        let mut stmt = conn.prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?;
        stmt.execute(params![name, self.node_id])?;
        Ok(())
    }
}

struct SqliteTxn<'a> {
    conn: MutexGuard<'a, Connection>,
    done: bool,
}

impl Read for SqliteTxn<'_> {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        get(&self.conn, table, key)
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        scan(&self.conn, table, prefix, start_after, limit)
    }
}

impl Transaction for SqliteTxn<'_> {
    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO kv (tbl, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value",
        )?;
        stmt.execute(params![table, key, value])?;
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &str) -> Result<bool, StoreError> {
        let mut stmt = self.conn.prepare_cached("DELETE FROM kv WHERE tbl = ?1 AND key = ?2")?;
        Ok(stmt.execute(params![table, key])? > 0)
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        self.done = true;
        Ok(())
    }
}

impl Drop for SqliteTxn<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rollback failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{transact, ReadExt, TransactionExt};

    fn stores() -> Vec<(SqliteStore, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        vec![(SqliteStore::in_memory().unwrap(), None), (file, Some(dir))]
    }

    #[test]
    fn put_get_scan_delete() {
        for (s, _dir) in stores() {
            transact(&s, |tx| -> Result<(), StoreError> {
                tx.put("users", "111/bob", b"b")?;
                tx.put("users", "111/alice", b"a")?;
                tx.put("users", "222/carol", b"c")?;
                tx.put_json("groups", "111/g", &serde_json::json!({"n": 1}))
            })
            .unwrap();
            assert_eq!(s.get("users", "111/bob").unwrap().as_deref(), Some(&b"b"[..]));
            let rows = s.scan("users", "111/", None, 0).unwrap();
            assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec!["111/alice", "111/bob"]);
            let rows = s.scan("users", "111/", Some("111/alice"), 0).unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(s.scan("users", "", None, 2).unwrap().len(), 2);
            let g: Option<serde_json::Value> = s.get_json("groups", "111/g").unwrap();
            assert_eq!(g.unwrap()["n"], 1);
            let existed = transact(&s, |tx| tx.delete("users", "111/bob")).unwrap();
            assert!(existed);
            assert!(s.get("users", "111/bob").unwrap().is_none());
        }
    }

    #[test]
    fn failed_transaction_rolls_back() {
        for (s, _dir) in stores() {
            let r: Result<(), StoreError> = transact(&s, |tx| {
                tx.put("t", "k", b"v")?;
                Err(StoreError::Backend("boom".into()))
            });
            assert!(r.is_err());
            assert!(s.get("t", "k").unwrap().is_none());
        }
    }

    #[test]
    fn leases_are_exclusive_until_expiry_or_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let a = SqliteStore::open(&path).unwrap();
        let b = SqliteStore::open(&path).unwrap();
        let long = std::time::Duration::from_secs(60);
        assert!(a.try_lease("job", long).unwrap());
        assert!(a.try_lease("job", long).unwrap(), "the holder renews");
        assert!(!b.try_lease("job", long).unwrap(), "another holder is refused");
        assert!(b.try_lease("other", long).unwrap(), "leases are per name");
        b.release_lease("job").unwrap();
        assert!(!b.try_lease("job", long).unwrap(), "releasing someone else's lease does nothing");
        a.release_lease("job").unwrap();
        assert!(b.try_lease("job", std::time::Duration::ZERO).unwrap());
        assert!(a.try_lease("job", long).unwrap(), "an expired lease is taken over");
    }

    #[test]
    fn export_lists_every_row() {
        let s = SqliteStore::in_memory().unwrap();
        transact(&s, |tx| -> Result<(), StoreError> {
            tx.put("b", "1", b"x")?;
            tx.put("a", "2", b"y")
        })
        .unwrap();
        let mut rows = Vec::new();
        let n = s
            .export(&mut |t, k, v| {
                rows.push((t.to_string(), k.to_string(), v.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(rows[0], ("a".to_string(), "2".to_string(), b"y".to_vec()));
    }

    #[test]
    fn file_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let s = SqliteStore::open(&path).unwrap();
            transact(&s, |tx| tx.put("t", "k", b"v")).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.get("t", "k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
