//! The embedded SQLite backend: WAL, `synchronous=FULL`, one writer, a few readers.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::{Read, Row, Store, StoreError, Transaction};

/// Schema migrations, applied in order; the index is the schema version they lead to - 1.
const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS kv (
        tbl   TEXT NOT NULL,
        key   TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (tbl, key)
    ) WITHOUT ROWID;"];

const READERS: usize = 4;

/// SQLite-backed [`Store`]. `open` for a file, `in_memory` for `--ephemeral`.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Read connections (file mode only; in-memory mode reads through the writer).
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
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
        Ok(SqliteStore { writer: Mutex::new(writer), readers, next_reader: AtomicUsize::new(0) })
    }

    /// A private in-memory database (nothing touches disk).
    pub fn in_memory() -> Result<Self, StoreError> {
        let writer = Connection::open_in_memory()?;
        migrate(&writer)?;
        Ok(SqliteStore { writer: Mutex::new(writer), readers: Vec::new(), next_reader: AtomicUsize::new(0) })
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
