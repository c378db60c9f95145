//! The PostgreSQL backend: several stateless `rampart serve` nodes sharing one database.
//!
//! * One table `rampart_kv (tbl, key, value)` with `COLLATE "C"` keys, so scans order bytewise
//!   exactly like the SQLite backend; `rampart_leases` for [`Store::try_lease`];
//!   `rampart_schema` records the migration version. Migrations run at open under an advisory
//!   lock, so nodes starting together do not race.
//! * Write transactions take one transaction-scoped advisory lock (per schema) before anything
//!   else: writers are serialized across every node, as SQLite's single writer is, so
//!   read-modify-write inside a transaction needs no retry and cannot hit serialization
//!   failures. Reads outside transactions are single statements on committed data.
//! * Durability: each session sets `synchronous_commit = on`; `COMMIT` returns once the WAL is
//!   flushed. A session idle inside a transaction for a minute is ended by the server, so a
//!   hung node cannot hold the writer lock forever (a killed node's session ends at once).
//! * Connections: a small pool (default 16, `?pool_size=N`), opened lazily, checked on checkout.
//! * Threads: the sync `postgres` client drives its own tiny runtime. Every call here is safe
//!   from any thread — on a Tokio worker it runs under `block_in_place` (multi-threaded
//!   runtime) or on a scoped helper thread (current-thread runtime).
//!
//! URL: `postgres://user:password@host:port/dbname?schema=NAME&pool_size=N` plus any libpq-style
//! parameter the `postgres` crate understands. `schema` (default: the search path, normally
//! `public`) lets several deployments — or test servers — share one database; it is created
//! when missing.

use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, Statement};

use crate::durable::Syncer;
use crate::{Durability, Read, Row, Store, StoreError, Transaction};

/// Schema migrations, in order; `{s}` is the schema qualifier (`"name".` or empty).
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {s}rampart_kv (
        tbl   TEXT COLLATE \"C\" NOT NULL,
        key   TEXT COLLATE \"C\" NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (tbl, key)
    )",
    "CREATE TABLE IF NOT EXISTS {s}rampart_leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )",
];

/// Advisory lock classes (first key of the two-int form): "RAMP" + 0/1.
const LOCK_WRITE: i32 = 0x5241_4d50;
const LOCK_MIGRATE: i32 = 0x5241_4d51;

const DEFAULT_POOL: usize = 16;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// PostgreSQL-backed [`Store`].
pub struct PgStore {
    config: postgres::Config,
    /// `"name".` or empty (the connection's search path).
    qualifier: String,
    schema: Option<String>,
    lock_key: i32,
    pool: Mutex<PoolState>,
    available: Condvar,
    max: usize,
    node_id: String,
    sql: Sql,
    /// Group commit: commits return before the WAL flush; the syncer flushes for all of them.
    durability: Arc<Durability>,
    syncer: Option<Syncer>,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

/// The SQL texts, qualified with the schema.
struct Sql {
    get: String,
    scan_from: String,
    scan_after: String,
    put: String,
    delete: String,
    lease: String,
    release: String,
    begin: String,
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    get: Statement,
    scan_from: Statement,
    scan_after: Statement,
    put: Statement,
    delete: Statement,
}

fn pg_err(e: postgres::Error) -> StoreError {
    StoreError::Backend(format!("postgres: {e}"))
}

/// Run `f` where blocking is allowed (see the module docs).
fn off_async<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if crate::blocking_allowed() {
        return f();
    }
    match Handle::try_current() {
        Err(_) => f(),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// FNV-1a, so every node derives the same lock key from the schema name.
fn fnv32(s: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// Split Rampart's own parameters (`schema`, `pool_size`) off a `postgres://` URL.
fn split_params(url: &str) -> Result<(String, Option<String>, usize), StoreError> {
    let bad = |m: String| StoreError::Backend(format!("invalid store URL: {m}"));
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), None, DEFAULT_POOL)) };
    let mut schema = None;
    let mut pool = DEFAULT_POOL;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) => {
                if !valid_schema(v) {
                    return Err(bad(format!("schema must be 1-63 letters, digits or underscores, got {v:?}")));
                }
                schema = Some(v.to_string());
            }
            Some(("pool_size", v)) => {
                pool = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad(format!("pool_size must be 1-1000, got {v:?}")))?;
            }
            _ => rest.push(pair),
        }
    }
    let base = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    Ok((base, schema, pool))
}

/// `url` with any password replaced, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let head = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => head.to_string(),
                },
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    match query {
        None => head,
        Some(q) => {
            let q: Vec<&str> = q
                .split('&')
                .map(|p| if p.to_ascii_lowercase().starts_with("password=") { "password=***" } else { p })
                .collect();
            format!("{head}?{}", q.join("&"))
        }
    }
}

impl PgStore {
    /// Connect to `url`, create the schema if asked for and missing, and migrate it.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let (base, schema, max) = split_params(url)?;
        let mut config = postgres::Config::from_str(&base)
            .map_err(|e| StoreError::Backend(format!("invalid store URL {}: {e}", redact_url(url))))?;
        if config.get_application_name().is_none() {
            config.application_name("rampart");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let qualifier = schema.as_ref().map(|s| format!("\"{s}\".")).unwrap_or_default();
        let q = &qualifier;
        let sql = Sql {
            get: format!("SELECT value FROM {q}rampart_kv WHERE tbl = $1 AND key = $2"),
            scan_from: format!(
                "SELECT key, value FROM {q}rampart_kv WHERE tbl = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4"
            ),
            scan_after: format!(
                "SELECT key, value FROM {q}rampart_kv WHERE tbl = $1 AND key > $2 AND key < $3 ORDER BY key LIMIT $4"
            ),
            put: format!(
                "INSERT INTO {q}rampart_kv (tbl, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value"
            ),
            delete: format!("DELETE FROM {q}rampart_kv WHERE tbl = $1 AND key = $2"),
            lease: format!(
                "INSERT INTO {q}rampart_leases (name, holder, expires_at)
                 VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE {q}rampart_leases.holder = excluded.holder OR {q}rampart_leases.expires_at <= clock_timestamp()
                 RETURNING holder"
            ),
            release: format!("DELETE FROM {q}rampart_leases WHERE name = $1 AND holder = $2"),
            begin: String::new(),
        };
        let lock_key = fnv32(schema.as_deref().unwrap_or(""));
        let sql = Sql { begin: format!("BEGIN; SELECT pg_advisory_xact_lock({LOCK_WRITE}, {lock_key})"), ..sql };
        let store = PgStore {
            config,
            qualifier,
            schema,
            lock_key,
            pool: Mutex::new(PoolState { idle: Vec::new(), open: 0 }),
            available: Condvar::new(),
            max,
            node_id: crate::new_node_id(),
            sql,
            durability: Arc::new(Durability::default()),
            syncer: None,
        };
        off_async(|| store.migrate())?;
        let mut store = store;
        store.syncer = Some(store.durability.start(
            "rampart-pg-sync",
            wal_flush(store.config.clone()),
            None,
            Duration::from_secs(3600),
        )?);
        Ok(store)
    }

    /// The schema given in the URL, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    fn raw_connect(&self) -> Result<Client, StoreError> {
        let mut client = self.config.connect(NoTls).map_err(pg_err)?;
        // Acknowledged means durable, whatever the server's default; a session stuck inside a
        // transaction (a hung node holding the writer lock) is ended by the server.
        client
            .batch_execute(
                "SET synchronous_commit = on; SET idle_in_transaction_session_timeout = '60s'; \
                 SET lock_timeout = '60s'",
            )
            .map_err(pg_err)?;
        Ok(client)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.raw_connect()?;
        let q = &self.qualifier;
        let mut tx = client.transaction().map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_MIGRATE, &self.lock_key]).map_err(pg_err)?;
        if let Some(s) = &self.schema {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\"")).map_err(pg_err)?;
        }
        tx.batch_execute(&format!("CREATE TABLE IF NOT EXISTS {q}rampart_schema (version INTEGER NOT NULL)"))
            .map_err(pg_err)?;
        let current: Option<i32> =
            tx.query_opt(&format!("SELECT version FROM {q}rampart_schema"), &[]).map_err(pg_err)?.map(|r| r.get(0));
        let version = match current {
            Some(v) => v,
            None => {
                tx.execute(&format!("INSERT INTO {q}rampart_schema (version) VALUES (0)"), &[]).map_err(pg_err)?;
                0
            }
        };
        let known = MIGRATIONS.len() as i32;
        if version > known {
            return Err(StoreError::Backend(format!(
                "the database schema is at version {version}, newer than this rampart knows ({known}): upgrade rampart"
            )));
        }
        for sql in &MIGRATIONS[version.max(0) as usize..] {
            tx.batch_execute(&sql.replace("{s}", q)).map_err(pg_err)?;
        }
        tx.execute(&format!("UPDATE {q}rampart_schema SET version = $1"), &[&known]).map_err(pg_err)?;
        tx.commit().map_err(pg_err)?;
        let conn = self.prepare(client)?;
        self.checkin_new(conn);
        Ok(())
    }

    fn prepare(&self, mut client: Client) -> Result<Conn, StoreError> {
        let s = &self.sql;
        Ok(Conn {
            get: client.prepare(&s.get).map_err(pg_err)?,
            scan_from: client.prepare(&s.scan_from).map_err(pg_err)?,
            scan_after: client.prepare(&s.scan_after).map_err(pg_err)?,
            put: client.prepare(&s.put).map_err(pg_err)?,
            delete: client.prepare(&s.delete).map_err(pg_err)?,
            client,
        })
    }

    fn lock_pool(&self) -> MutexGuard<'_, PoolState> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection from the pool (opening one when below the limit). Call off async threads.
    fn checkout(&self) -> Result<Conn, StoreError> {
        let deadline = Instant::now() + ACQUIRE_TIMEOUT;
        let mut st = self.lock_pool();
        loop {
            if let Some(c) = st.idle.pop() {
                if c.client.is_closed() {
                    st.open -= 1;
                    drop(st);
                    drop(c);
                    st = self.lock_pool();
                    continue;
                }
                return Ok(c);
            }
            if st.open < self.max {
                st.open += 1;
                drop(st);
                return match self.raw_connect().and_then(|c| self.prepare(c)) {
                    Ok(c) => Ok(c),
                    Err(e) => {
                        self.lock_pool().open -= 1;
                        self.available.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Backend("timed out waiting for a free database connection".into()));
            }
            st = self.available.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Return a connection that was counted as open; a closed one is dropped.
    fn checkin(&self, conn: Conn) {
        if conn.client.is_closed() {
            self.discard(conn);
            return;
        }
        self.lock_pool().idle.push(conn);
        self.available.notify_one();
    }

    fn checkin_new(&self, conn: Conn) {
        self.lock_pool().open += 1;
        self.checkin(conn);
    }

    /// Drop a connection in an unknown state. Call off async threads.
    fn discard(&self, conn: Conn) {
        drop(conn);
        self.lock_pool().open -= 1;
        self.available.notify_one();
    }

    /// Run one auto-commit statement; retried once on a fresh connection when the pooled one
    /// turns out to be closed (a database restart), which is safe for reads and idempotent writes.
    fn with_conn<R: Send>(
        &self,
        f: impl Fn(&mut Conn) -> Result<R, postgres::Error> + Send + Sync,
    ) -> Result<R, StoreError> {
        off_async(|| {
            let mut retried = false;
            loop {
                let mut conn = self.checkout()?;
                match f(&mut conn) {
                    Ok(r) => {
                        self.checkin(conn);
                        return Ok(r);
                    }
                    Err(e) => {
                        let closed = conn.client.is_closed();
                        self.checkin(conn);
                        if closed && !retried {
                            retried = true;
                            continue;
                        }
                        return Err(pg_err(e));
                    }
                }
            }
        })
    }

    /// `true` when the store holds no rows (the target check of `rampart store migrate`).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {}rampart_kv)", self.qualifier);
        self.with_conn(|c| c.client.query_one(&sql, &[]).map(|r| !r.get::<_, bool>(0)))
    }
}

fn get(c: &mut Conn, table: &str, key: &str) -> Result<Option<Vec<u8>>, postgres::Error> {
    Ok(c.client.query_opt(&c.get, &[&table, &key])?.map(|r| r.get(0)))
}

fn scan(
    c: &mut Conn,
    table: &str,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> Result<Vec<Row>, postgres::Error> {
    let upper = format!("{prefix}\u{10FFFF}");
    let limit: Option<i64> = (limit > 0).then(|| i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = match start_after {
        Some(s) if s >= prefix => c.client.query(&c.scan_after, &[&table, &s, &upper, &limit])?,
        _ => c.client.query(&c.scan_from, &[&table, &prefix, &upper, &limit])?,
    };
    Ok(rows
        .into_iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
        .filter(|(k, _)| k.starts_with(prefix))
        .collect())
}

impl Read for PgStore {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_conn(|c| get(c, table, key))
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        self.with_conn(|c| scan(c, table, prefix, start_after, limit))
    }
}

impl Store for PgStore {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>, StoreError> {
        let conn = off_async(|| -> Result<Conn, StoreError> {
            let mut conn = self.checkout()?;
            match conn.client.batch_execute(&self.sql.begin) {
                Ok(()) => Ok(conn),
                Err(e) => {
                    let _ = conn.client.batch_execute("ROLLBACK");
                    self.discard(conn);
                    Err(pg_err(e))
                }
            }
        })?;
        Ok(Box::new(PgTxn { store: self, state: Mutex::new(TxnState { conn: Some(conn), failed: false }) }))
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn is_local(&self) -> bool {
        false
    }

    fn durability(&self) -> Option<&Durability> {
        Some(&self.durability)
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        let q = &self.qualifier;
        let sql = format!(
            "SELECT (pg_total_relation_size('{q}rampart_kv') + pg_total_relation_size('{q}rampart_leases'))::BIGINT"
        );
        self.with_conn(|c| c.client.query_one(&sql, &[]).map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    fn try_lease(&self, name: &str, ttl: Duration) -> Result<bool, StoreError> {
        let secs = ttl.as_secs_f64();
        let sql = &self.sql.lease;
        let holder = &self.node_id;
        self.with_conn(|c| Ok(c.client.query_opt(sql, &[&name, holder, &secs])?.is_some()))
    }

    fn release_lease(&self, name: &str) -> Result<(), StoreError> {
        let sql = &self.sql.release;
        let holder = &self.node_id;
        self.with_conn(|c| c.client.execute(sql, &[&name, holder]).map(|_| ()))
    }
}

/// Flushes the WAL up to now: one transaction with an XID committed with
/// `synchronous_commit = on` waits for the WAL to be flushed up to its own commit record, which
/// follows every commit this node made before it.
fn wal_flush(config: postgres::Config) -> crate::durable::SyncFn {
    let mut client: Option<Client> = None;
    Box::new(move || {
        let run = |c: &mut Client| c.batch_execute("SET synchronous_commit = on; BEGIN; SELECT txid_current(); COMMIT");
        if let Some(c) = client.as_mut().filter(|c| !c.is_closed()) {
            if run(c).is_ok() {
                return Ok(None);
            }
        }
        // (Re)connect once: a lost connection is not a lost flush.
        let mut c = config.connect(NoTls).map_err(pg_err)?;
        let r = run(&mut c).map_err(pg_err);
        client = Some(c);
        r.map(|()| None)
    })
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.syncer.take();
        let idle = std::mem::take(&mut self.lock_pool().idle);
        // Each client owns a small runtime, which must not be dropped on an async thread.
        off_async(move || drop(idle));
    }
}

struct TxnState {
    /// `None` once committed or rolled back.
    conn: Option<Conn>,
    /// A statement failed: PostgreSQL aborted the transaction, so it must not report a commit.
    failed: bool,
}

struct PgTxn<'a> {
    store: &'a PgStore,
    state: Mutex<TxnState>,
}

impl PgTxn<'_> {
    fn run<R: Send>(&self, f: impl FnOnce(&mut Conn) -> Result<R, postgres::Error> + Send) -> Result<R, StoreError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *st;
        if st.failed {
            return Err(StoreError::Backend("the transaction was aborted by an earlier error".into()));
        }
        let Some(conn) = st.conn.as_mut() else {
            return Err(StoreError::Backend("the transaction is finished".into()));
        };
        let r = off_async(|| f(conn));
        r.map_err(|e| {
            st.failed = true;
            pg_err(e)
        })
    }
}

impl Read for PgTxn<'_> {
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(|c| get(c, table, key))
    }

    fn scan(&self, table: &str, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<Row>, StoreError> {
        self.run(|c| scan(c, table, prefix, start_after, limit))
    }
}

impl Transaction for PgTxn<'_> {
    fn put(&mut self, table: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.run(|c| c.client.execute(&c.put, &[&table, &key, &value]).map(|_| ()))
    }

    fn delete(&mut self, table: &str, key: &str) -> Result<bool, StoreError> {
        self.run(|c| c.client.execute(&c.delete, &[&table, &key]).map(|n| n > 0))
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let durability = self.store.durability.clone();
        let pos = self.commit_deferred()?;
        off_async(|| durability.wait_blocking(pos))
    }

    fn commit_deferred(self: Box<Self>) -> Result<u64, StoreError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.failed {
            return Err(StoreError::Backend("the transaction was aborted by an earlier error; not committed".into()));
        }
        let Some(mut conn) = st.conn.take() else {
            return Err(StoreError::Backend("the transaction is finished".into()));
        };
        let store = self.store;
        // Still under the writer lock until COMMIT returns: positions follow commit order.
        off_async(move || match conn.client.batch_execute("SET LOCAL synchronous_commit = off; COMMIT") {
            Ok(()) => {
                let pos = store.durability.note_commit();
                store.checkin(conn);
                Ok(pos)
            }
            Err(e) => {
                // The outcome of a COMMIT whose answer was lost is unknown: report failure, and
                // drop the connection rather than reuse it in an unknown state.
                store.discard(conn);
                Err(pg_err(e))
            }
        })
    }
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        let conn = self.state.get_mut().unwrap_or_else(|p| p.into_inner()).conn.take();
        if let Some(mut conn) = conn {
            let store = self.store;
            off_async(move || match conn.client.batch_execute("ROLLBACK") {
                Ok(()) => store.checkin(conn),
                Err(e) => {
                    tracing::error!(error = %e, "rollback failed; dropping the connection");
                    store.discard(conn);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters() {
        let (base, schema, pool) = split_params("postgres://u@h/db?schema=abc_1&pool_size=3&sslmode=disable").unwrap();
        assert_eq!(base, "postgres://u@h/db?sslmode=disable");
        assert_eq!(schema.as_deref(), Some("abc_1"));
        assert_eq!(pool, 3);
        assert_eq!(split_params("postgres://h/db").unwrap(), ("postgres://h/db".into(), None, DEFAULT_POOL));
        assert!(split_params("postgres://h/db?schema=a;drop").is_err());
        assert!(split_params("postgres://h/db?schema=1a").is_err());
        assert!(split_params("postgres://h/db?pool_size=0").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db?schema=x"), "postgres://u:***@h:5432/db?schema=x");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db?password=secret"), "postgres://h/db?password=***");
        assert_eq!(fnv32("a"), fnv32("a"));
        assert_ne!(fnv32("a"), fnv32("b"));
    }
}
