//! The embedded SQLite backend: WAL, one writer, a few readers, group commit.
//!
//! Group commit (file mode): write transactions from every thread share one SQLite transaction,
//! a *group*, each inside its own savepoint: a transaction's commit releases its savepoint (its
//! writes join the group; a rollback undoes only its own), and returns the position the group
//! will have. When anyone waits for a position ([`crate::Durability`]), the syncer thread commits
//! the group (`synchronous=NORMAL`: an append to the WAL) and `fdatasync`s the WAL: many calls'
//! changes cost one transaction's pages and one sync, and each is acknowledged only once on disk,
//! as `synchronous=FULL` gave per commit. Readers (their own connections) see a group's writes
//! once it commits, before they are acknowledged to their writers, never before. WAL checkpoints
//! run on the syncer's own connection, never in a serving thread.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::durable::Syncer;
use crate::{Durability, Read, Row, Store, StoreError, Transaction};

/// When the WAL is checkpointed and restarted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalLimits {
    /// Checkpoint the WAL into the database (passively: readers and the writer go on) once it
    /// is larger than this.
    pub passive: u64,
    /// Restart the WAL from its beginning (truncated) once it is larger than this. Under steady
    /// load readers always hold a snapshot, so SQLite never restarts the WAL by itself and the
    /// file would grow without bound; the syncer then commits the open group and runs a
    /// TRUNCATE checkpoint on the writer, which waits for the readers' current statements (the
    /// passive checkpoints have already copied nearly everything).
    pub truncate: u64,
    /// How often the syncer considers a checkpoint.
    pub every: Duration,
}

const WAL_LIMITS: WalLimits =
    WalLimits { passive: 8 * 1024 * 1024, truncate: 64 * 1024 * 1024, every: Duration::from_millis(200) };

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
    writer: Arc<Mutex<Connection>>,
    /// The shared transaction open on the writer (file mode); locked after `writer`.
    group: Arc<Mutex<Group>>,
    /// Read connections (file mode only; in-memory mode reads through the writer).
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// This instance's lease holder name.
    node_id: String,
    /// File mode: commit positions and the syncer that makes them durable.
    durability: Option<Arc<Durability>>,
    syncer: Option<Syncer>,
    path: Option<PathBuf>,
    /// Tables kept in memory ([`Store::cache_table`]): this process makes every write.
    hot: Arc<HotTables>,
}

/// The group transaction (see the module docs).
#[derive(Default)]
struct Group {
    open: bool,
    /// Writes to hot tables made in the group, applied to their cache when it commits.
    hot: Vec<HotWrite>,
}

type HotWrite = ((String, String), Option<Vec<u8>>);

/// Commit the open group, if any, under the writer lock (`conn` is its guard).
fn commit_group(conn: &Connection, group: &Mutex<Group>, hot: &HotTables, d: &Durability) -> Result<(), StoreError> {
    let mut g = group.lock().unwrap_or_else(|p| p.into_inner());
    if !g.open {
        return Ok(());
    }
    g.open = false;
    let writes = std::mem::take(&mut g.hot);
    if conn.is_autocommit() {
        // SQLite rolled the whole transaction back (an I/O error, a full disk): writes that were
        // promised to their callers are gone.
        return Err(StoreError::Backend("the group transaction was rolled back by SQLite".into()));
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    if !writes.is_empty() {
        let mut rows = hot.rows();
        rows.version += 1;
        for (k, v) in writes {
            rows.bound();
            rows.rows.insert(k, v);
        }
    }
    d.note_commit();
    Ok(())
}

/// The rows of a few small tables, kept in step with commits: a read takes a lock and a map
/// lookup instead of a SQLite statement.
#[derive(Default)]
struct HotTables {
    tables: std::sync::RwLock<Vec<&'static str>>,
    rows: Mutex<HotRows>,
}

/// Rows (present or known absent) the hot cache keeps before it starts over: reads of names
/// that do not exist must not grow it without bound.
const MAX_HOT_ROWS: usize = 100_000;

#[derive(Default)]
struct HotRows {
    /// `(table, key)` → value (`None`: known absent).
    rows: std::collections::HashMap<(String, String), Option<Vec<u8>>>,
    /// Bumped by every commit that writes a hot table: a value read from SQLite before such a
    /// commit is not cached after it.
    version: u64,
}

impl HotRows {
    /// Make room for a row: a cache, so forgetting everything is always correct.
    fn bound(&mut self) {
        if self.rows.len() >= MAX_HOT_ROWS {
            self.rows.clear();
        }
    }
}

impl HotTables {
    fn is_hot(&self, table: &str) -> bool {
        self.tables.read().unwrap_or_else(|p| p.into_inner()).contains(&table)
    }

    fn rows(&self) -> MutexGuard<'_, HotRows> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and migrate it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, WAL_LIMITS)
    }

    pub(crate) fn open_with(path: &Path, limits: WalLimits) -> Result<Self, StoreError> {
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // Commits append to the WAL; the syncer makes them durable (see the module docs).
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate(&writer)?;
        // Everything so far (the migrations) durable before serving.
        writer.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        sync_dir(path);
        let durability = Arc::new(Durability::default());
        let writer = Arc::new(Mutex::new(writer));
        let group = Arc::new(Mutex::new(Group::default()));
        let hot = Arc::new(HotTables::default());
        let commit = {
            let (writer, group, hot, d) = (writer.clone(), group.clone(), hot.clone(), durability.clone());
            move || -> Result<u64, StoreError> {
                let conn = lock(&writer);
                commit_group(&conn, &group, &hot, &d)?;
                Ok(d.committed())
            }
        };
        let restart = {
            let (writer, group, hot, d) = (writer.clone(), group.clone(), hot.clone(), durability.clone());
            move || -> Result<(), StoreError> {
                let conn = lock(&writer);
                // The writer's open group would keep the checkpoint from finishing: commit it (the
                // next sync makes it durable, as for any group).
                commit_group(&conn, &group, &hot, &d)?;
                // Readers move to the database file as soon as their statement ends: retry often
                // rather than with SQLite's default back-off (up to 100 ms per wait).
                conn.busy_handler(Some(|tries| {
                    std::thread::sleep(Duration::from_micros(200));
                    tries < 25_000
                }))?;
                let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                conn.busy_timeout(Duration::from_secs(10))?;
                result?;
                Ok(())
            }
        };
        let syncer = durability.start(
            "rampart-sqlite-sync",
            wal_sync(path, Box::new(commit)),
            Some(checkpointer(path, limits, Box::new(restart))?),
            limits.every,
        )?;
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
            writer,
            group,
            readers,
            next_reader: AtomicUsize::new(0),
            node_id: crate::new_node_id(),
            durability: Some(durability),
            syncer: Some(syncer),
            path: Some(path.to_path_buf()),
            hot,
        })
    }

    /// A private in-memory database (nothing touches disk).
    pub fn in_memory() -> Result<Self, StoreError> {
        let writer = Connection::open_in_memory()?;
        migrate(&writer)?;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            group: Arc::new(Mutex::new(Group::default())),
            readers: Vec::new(),
            next_reader: AtomicUsize::new(0),
            node_id: crate::new_node_id(),
            durability: None,
            syncer: None,
            path: None,
            hot: Arc::new(HotTables::default()),
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
        if !self.hot.is_hot(table) {
            return get(&self.reader(), table, key);
        }
        let version = {
            let rows = self.hot.rows();
            if let Some(v) = rows.rows.get(&(table.to_string(), key.to_string())) {
                return Ok(v.clone());
            }
            rows.version
        };
        let value = get(&self.reader(), table, key)?;
        let mut rows = self.hot.rows();
        if rows.version == version {
            rows.bound();
            rows.rows.insert((table.to_string(), key.to_string()), value.clone());
        }
        Ok(value)
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        scan(&self.reader(), table, prefix, start_after, limit)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Serve every pending durability wait, then stop the syncer, before the connections close.
        self.syncer.take();
        if let Some(d) = &self.durability {
            let conn = lock(&self.writer);
            if let Err(e) = commit_group(&conn, &self.group, &self.hot, d) {
                tracing::error!(error = %e, "could not commit the last group at close");
            }
        }
    }
}

/// Syncs the WAL file (or, when there is none, the database file): every commit appended
/// before the call is then on disk. `fdatasync` on any descriptor of a file flushes all of it.
fn wal_sync(db: &Path, mut commit: Box<dyn FnMut() -> Result<u64, StoreError> + Send>) -> crate::durable::SyncFn {
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let db = db.to_path_buf();
    let mut file: Option<File> = None;
    Box::new(move || {
        // Commit the open group first: the sync then covers everything committed so far.
        let committed = commit()?;
        if file.is_none() {
            file = File::open(&wal).ok();
        }
        let result = match &file {
            Some(f) => f.sync_data(),
            None => File::open(&db).and_then(|f| f.sync_data()),
        };
        result.map_err(|e| StoreError::Backend(format!("fdatasync {}: {e}", wal.display())))?;
        Ok(Some(committed))
    })
}

/// Checkpoints the WAL into the database when it has grown (on the syncer's own connection:
/// a passive checkpoint never blocks the writer or readers), and has `restart` truncate it once
/// it is larger than `limits.truncate` (see [`WalLimits`]).
fn checkpointer(
    db: &Path,
    limits: WalLimits,
    mut restart: Box<dyn FnMut() -> Result<(), StoreError> + Send>,
) -> Result<crate::durable::IdleFn, StoreError> {
    let conn = Connection::open(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    Ok(Box::new(move || {
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size >= limits.passive {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        if size >= limits.truncate {
            restart()?;
        }
        Ok(())
    }))
}

/// Make a new file's directory entry durable (the database and its WAL).
fn sync_dir(db: &Path) {
    if let Some(dir) = db.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

impl Store for SqliteStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let conn = lock(&self.writer);
        let grouped = self.durability.is_some();
        if grouped {
            let mut g = self.group.lock().unwrap_or_else(|p| p.into_inner());
            if !g.open {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                g.open = true;
            }
            drop(g);
            conn.execute_batch("SAVEPOINT unit")?;
        } else {
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(Box::new(SqliteTxn {
            conn,
            done: false,
            grouped,
            group: &self.group,
            durability: self.durability.as_deref(),
            hot: &self.hot,
            hot_writes: Vec::new(),
        }))
    }

    fn durability(&self) -> Option<&Durability> {
        self.durability.as_deref()
    }

    fn cache_table(&self, table: &'static str) {
        let mut tables = self.hot.tables.write().unwrap_or_else(|p| p.into_inner());
        if !tables.contains(&table) {
            tables.push(table);
        }
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        let Some(path) = &self.path else {
            let conn = self.reader();
            let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
            let size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            return Ok(u64::try_from(pages.saturating_mul(size)).unwrap_or(0));
        };
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Ok(len(path) + len(Path::new(&format!("{}-wal", path.display()))))
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
        // Leases are seen by other processes on the file at once: not inside a group.
        if let Some(d) = &self.durability {
            commit_group(&conn, &self.group, &self.hot, d)?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
             WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?4",
        )?;
        Ok(stmt.execute(params![name, self.node_id, expires, now])? > 0)
    }

    fn release_lease(&self, name: &str) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        // Leases are seen by other processes on the file at once: not inside a group.
        if let Some(d) = &self.durability {
            commit_group(&conn, &self.group, &self.hot, d)?;
        }
        let mut stmt = conn.prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?;
        stmt.execute(params![name, self.node_id])?;
        Ok(())
    }
}

struct SqliteTxn<'a> {
    conn: MutexGuard<'a, Connection>,
    done: bool,
    /// A savepoint in the group transaction (file mode), not a transaction of its own.
    grouped: bool,
    group: &'a Mutex<Group>,
    durability: Option<&'a Durability>,
    hot: &'a HotTables,
    /// Writes to hot tables, applied to their cache once committed.
    hot_writes: Vec<HotWrite>,
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
        if self.hot.is_hot(table) {
            self.hot_writes.push(((table.to_string(), key.to_string()), Some(value.to_vec())));
        }
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &str) -> Result<bool, StoreError> {
        let mut stmt = self.conn.prepare_cached("DELETE FROM kv WHERE tbl = ?1 AND key = ?2")?;
        let existed = stmt.execute(params![table, key])? > 0;
        if self.hot.is_hot(table) {
            self.hot_writes.push(((table.to_string(), key.to_string()), None));
        }
        Ok(existed)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let durability = self.durability;
        let pos = self.commit_deferred()?;
        match durability {
            Some(d) => d.wait_blocking(pos),
            None => Ok(()),
        }
    }

    fn commit_deferred(mut self: Box<Self>) -> Result<u64, StoreError> {
        if self.grouped {
            self.conn.execute_batch("RELEASE unit")?;
            self.done = true;
            let mut g = self.group.lock().unwrap_or_else(|p| p.into_inner());
            g.hot.append(&mut self.hot_writes);
            // The position the group gets when the syncer commits it.
            return Ok(self.durability.map_or(0, |d| d.committed() + 1));
        }
        self.conn.execute_batch("COMMIT")?;
        self.done = true;
        if !self.hot_writes.is_empty() {
            // Still under the writer lock: the cache moves in commit order.
            let mut rows = self.hot.rows();
            rows.version += 1;
            for (k, v) in self.hot_writes.drain(..) {
                rows.bound();
                rows.rows.insert(k, v);
            }
        }
        // Counted before the writer is released: positions follow commit order.
        Ok(self.durability.map_or(0, Durability::note_commit))
    }
}

impl Drop for SqliteTxn<'_> {
    fn drop(&mut self) {
        if !self.done {
            let sql = if self.grouped { "ROLLBACK TO unit; RELEASE unit" } else { "ROLLBACK" };
            if let Err(e) = self.conn.execute_batch(sql) {
                // A group SQLite already rolled back is found and failed by its commit.
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
    fn hot_tables_read_from_memory_follow_every_commit_and_ignore_rollbacks() {
        for (s, _dir) in stores() {
            s.cache_table("gen");
            assert_eq!(s.get("gen", "a").unwrap(), None);
            transact(&s, |tx| tx.put("gen", "a", b"1")).unwrap();
            assert_eq!(s.get("gen", "a").unwrap().as_deref(), Some(&b"1"[..]));
            let r: Result<(), StoreError> = transact(&s, |tx| {
                tx.put("gen", "a", b"2")?;
                Err(StoreError::Backend("boom".into()))
            });
            assert!(r.is_err());
            assert_eq!(s.get("gen", "a").unwrap().as_deref(), Some(&b"1"[..]), "rolled back");
            transact(&s, |tx| tx.put("gen", "a", b"3")).unwrap();
            assert_eq!(s.get("gen", "a").unwrap().as_deref(), Some(&b"3"[..]));
            transact(&s, |tx| tx.delete("gen", "a").map(|_| ())).unwrap();
            assert_eq!(s.get("gen", "a").unwrap(), None);
            // Inside a transaction, reads see the transaction's own writes.
            let mut tx = s.begin().unwrap();
            tx.put("gen", "a", b"4").unwrap();
            assert_eq!(tx.get("gen", "a").unwrap().as_deref(), Some(&b"4"[..]));
        }
    }

    #[test]
    fn the_wal_stays_bounded_while_readers_always_hold_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let limits = WalLimits { passive: 64 * 1024, truncate: 256 * 1024, every: Duration::ZERO };
        let s = Arc::new(SqliteStore::open_with(&path, limits).unwrap());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Readers that never pause: SQLite alone would never restart the WAL.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (s, stop) = (s.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        s.scan("t", "", None, 10).unwrap();
                    }
                })
            })
            .collect();
        let wal = dir.path().join("db.sqlite-wal");
        let mut largest = 0;
        let value = vec![7u8; 16 * 1024];
        for i in 0..400 {
            transact(s.as_ref(), |tx| tx.put("t", &format!("k{i:05}"), &value)).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        // 400 commits of a 16 KiB row each write over 6 MB of WAL frames; restarts keep the file
        // within a few times the limit.
        assert!(largest < 2 * 1024 * 1024, "the WAL grew to {largest} bytes");
        assert_eq!(s.scan("t", "", None, 0).unwrap().len(), 400, "nothing lost");
    }

    #[test]
    fn hot_tables_stay_bounded_under_reads_of_absent_names() {
        let s = SqliteStore::in_memory().unwrap();
        s.cache_table("users");
        transact(&s, |tx| tx.put("users", "alice", b"1")).unwrap();
        for i in 0..MAX_HOT_ROWS + 10 {
            assert_eq!(s.get("users", &format!("nobody-{i}")).unwrap(), None);
        }
        assert!(s.hot.rows().rows.len() <= MAX_HOT_ROWS, "the cache starts over instead of growing");
        assert_eq!(s.get("users", "alice").unwrap().as_deref(), Some(&b"1"[..]), "and still reads right");
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
