//! Lake queries: run on an embedded SQLite engine (in memory, per query) over the events of the
//! event data stores a statement names, loaded from the store (SQLite or PostgreSQL alike).
//!
//! A query is a record in the store (`trail_lake_queries`) that moves QUEUED → RUNNING →
//! FINISHED / FAILED / CANCELLED / TIMED_OUT; its results are kept with it for seven days. Queries
//! run on their own threads, a few at a time; each has a deadline and can be cancelled, both of
//! which interrupt the engine mid-statement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rampart_store::{ReadExt, Store, StoreError, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sql::{Translated, COLUMNS};
use super::{Lake, LAKE_TABLE};
use crate::audit::StoredEvent;

/// Queries: key `{account}/{query id}`.
pub const QUERIES_TABLE: &str = "trail_lake_queries";
/// Query results: key `{account}/{query id}`.
pub const RESULTS_TABLE: &str = "trail_lake_results";
/// How long queries and their results are kept (AWS: seven days).
pub const QUERY_KEEP_SECS: i64 = 7 * 86_400;

/// The limits every query runs under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A query running longer is stopped (TIMED_OUT).
    pub timeout: Duration,
    /// Result rows at most (more: FAILED).
    pub max_rows: usize,
    /// Result size at most, bytes of values.
    pub max_result_bytes: usize,
    /// Event bytes a query may scan at most (more: FAILED).
    pub max_scan_bytes: u64,
    /// Queries running at once in this process; more wait QUEUED.
    pub parallel: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        timeout: Duration::from_secs(300),
        max_rows: 100_000,
        max_result_bytes: 64 * 1024 * 1024,
        max_scan_bytes: 256 * 1024 * 1024,
        parallel: 2,
    };

    /// [`Limits::DEFAULT`] with `RAMPART_LAKE_QUERY_TIMEOUT_SECONDS` applied.
    pub fn from_env() -> Limits {
        let mut l = Limits::DEFAULT;
        if let Some(s) = std::env::var("RAMPART_LAKE_QUERY_TIMEOUT_SECONDS").ok().and_then(|v| v.parse::<u64>().ok()) {
            if s > 0 {
                l.timeout = Duration::from_secs(s);
            }
        }
        l
    }
}

/// A query, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QueryDoc {
    pub id: String,
    pub account: String,
    pub region: String,
    pub statement: String,
    /// The event data store IDs it reads.
    pub stores: Vec<String>,
    /// The account owning those event data stores when it is not `account` (a cross-account
    /// query their resource policy allowed).
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub params: Vec<String>,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    /// Unix seconds (fractional).
    pub created: f64,
    #[serde(default)]
    pub events_scanned: u64,
    #[serde(default)]
    pub events_matched: u64,
    #[serde(default)]
    pub bytes_scanned: u64,
    #[serde(default)]
    pub exec_ms: u64,
    #[serde(default)]
    pub results: u64,
}

impl QueryDoc {
    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.id)
    }

    /// The account owning the event data stores it reads.
    pub fn store_account(&self) -> &str {
        self.owner.as_deref().unwrap_or(&self.account)
    }

    pub fn active(&self) -> bool {
        matches!(self.status.as_str(), "QUEUED" | "RUNNING")
    }
}

/// A finished query's results.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub columns: Vec<String>,
    /// Values as strings (`None`: SQL NULL).
    pub rows: Vec<Vec<Option<String>>>,
}

/// Why a query stopped early.
const GO: u8 = 0;
const CANCEL: u8 = 1;
const TIMEOUT: u8 = 2;
/// The query has ended (the watchdog stops).
const DONE: u8 = 3;

struct Running {
    stop: Arc<AtomicU8>,
    wake: mpsc::Sender<()>,
}

/// Runs queries: a few at a time, each cancellable.
pub struct Runner {
    store: Arc<dyn Store>,
    pub(crate) limits: Limits,
    slots: Arc<(Mutex<usize>, Condvar)>,
    running: Mutex<HashMap<String, Running>>,
}

impl Runner {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Runner {
            store,
            limits: Limits::from_env(),
            slots: Arc::new((Mutex::new(0), Condvar::new())),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Cancel a query running in this process (others stop at their next check).
    pub fn cancel(&self, id: &str) {
        let g = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = g.get(id) {
            let _ = r.stop.compare_exchange(GO, CANCEL, Ordering::AcqRel, Ordering::Acquire);
            let _ = r.wake.send(());
        }
    }

    pub fn shutdown(&self) {
        let g = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for r in g.values() {
            let _ = r.stop.compare_exchange(GO, CANCEL, Ordering::AcqRel, Ordering::Acquire);
            let _ = r.wake.send(());
        }
    }
}

/// Start `doc` (stored QUEUED) on its own thread once the current call has committed.
pub fn spawn(lake: Arc<Lake>, doc: QueryDoc, translated: Translated) {
    rampart_store::unit::after_commit(Box::new(move || {
        let _ =
            std::thread::Builder::new().name("rampart-lake-query".into()).spawn(move || run(&lake, doc, &translated));
    }));
}

/// Run a query to its end, recording the outcome.
pub fn run(lake: &Lake, doc: QueryDoc, translated: &Translated) {
    let runner = &lake.queries;
    let limits = runner.limits;
    // Wait for a slot.
    {
        let (lock, cv) = &*runner.slots;
        let mut busy = lock.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= limits.parallel {
            busy = cv.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
    }
    let release = Release(runner.slots.clone());
    let key = doc.key();
    let store = runner.store.clone();
    let stop = Arc::new(AtomicU8::new(GO));
    let (wake, woken) = mpsc::channel::<()>();
    // Registered before the status is read: a cancel from now on reaches the flag.
    runner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(doc.id.clone(), Running { stop: stop.clone(), wake: wake.clone() });
    // Running only if still queued (not cancelled meanwhile, here or on another node).
    let started_ok = rampart_store::transact(store.as_ref(), |tx| -> Result<bool, StoreError> {
        let Some(mut d) = tx.get_json::<QueryDoc>(QUERIES_TABLE, &key)? else { return Ok(false) };
        if d.status != "QUEUED" {
            return Ok(false);
        }
        d.status = "RUNNING".into();
        tx.put_json(QUERIES_TABLE, &key, &d)?;
        Ok(true)
    });
    if !matches!(started_ok, Ok(true)) {
        runner.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&doc.id);
        return;
    }
    let started = Instant::now();
    let deadline = started + limits.timeout;
    let outcome = std::thread::scope(|scope| {
        let conn = match engine() {
            Ok(c) => c,
            Err(e) => return (Err(Failure::Failed(format!("The query engine could not start: {e}"))), GO),
        };
        let interrupt = conn.get_interrupt_handle();
        let stop_w = stop.clone();
        let watch_store = store.clone();
        let watch_key = key.clone();
        // The watchdog: at the deadline, or once the query is cancelled (a signal here, or its
        // status in the store, set by any node), it interrupts the engine — again every quarter
        // second, until the query has ended (an interrupt between statements is lost).
        scope.spawn(move || loop {
            let now = Instant::now();
            if now >= deadline {
                let _ = stop_w.compare_exchange(GO, TIMEOUT, Ordering::AcqRel, Ordering::Acquire);
            } else if stop_w.load(Ordering::Acquire) == GO {
                let cancelled = watch_store
                    .get_json::<QueryDoc>(QUERIES_TABLE, &watch_key)
                    .ok()
                    .flatten()
                    .is_some_and(|d| d.status == "CANCELLED");
                if cancelled {
                    let _ = stop_w.compare_exchange(GO, CANCEL, Ordering::AcqRel, Ordering::Acquire);
                }
            }
            match stop_w.load(Ordering::Acquire) {
                DONE => return,
                GO => {}
                _ => interrupt.interrupt(),
            }
            let wait =
                deadline.saturating_duration_since(now).min(Duration::from_millis(250)).max(Duration::from_millis(1));
            if let Err(mpsc::RecvTimeoutError::Disconnected) = woken.recv_timeout(wait) {
                return;
            }
        });
        let r = execute(lake, &conn, &doc, translated, &stop, &limits);
        // Done: the reason it stopped (if it did), then let the watchdog go.
        let reason = stop.swap(DONE, Ordering::AcqRel);
        let _ = wake.send(());
        (r, reason)
    });
    let (outcome, stopped) = outcome;
    runner.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&doc.id);
    let exec_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let result = rampart_store::transact(store.as_ref(), |tx| -> Result<(), StoreError> {
        let Some(mut d) = tx.get_json::<QueryDoc>(QUERIES_TABLE, &key)? else { return Ok(()) };
        if d.status == "CANCELLED" {
            return Ok(()); // cancelled meanwhile (maybe on another node): it stays so
        }
        d.exec_ms = exec_ms;
        match &outcome {
            Ok((results, stats)) => {
                d.status = "FINISHED".into();
                d.events_scanned = stats.events;
                d.bytes_scanned = stats.bytes;
                d.results = results.rows.len() as u64;
                d.events_matched = d.results;
                tx.put_json(RESULTS_TABLE, &key, results)?;
            }
            Err(_) if stopped == CANCEL => d.status = "CANCELLED".into(),
            Err(_) if stopped == TIMEOUT => {
                d.status = "TIMED_OUT".into();
                d.error = Some(format!("Query exceeded the time limit of {} seconds.", limits.timeout.as_secs()));
            }
            Err(Failure::Failed(m)) => {
                d.status = "FAILED".into();
                d.error = Some(m.clone());
            }
            Err(Failure::Stopped) => d.status = "CANCELLED".into(),
        }
        tx.put_json(QUERIES_TABLE, &key, &d)
    });
    if let Err(e) = result {
        tracing::warn!(query = %doc.id, error = %e, "the query's outcome could not be stored");
    }
    drop(release);
}

struct Release(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Release {
    fn drop(&mut self) {
        let (lock, cv) = &*self.0;
        let mut busy = lock.lock().unwrap_or_else(|p| p.into_inner());
        *busy = busy.saturating_sub(1);
        cv.notify_one();
    }
}

#[derive(Debug)]
enum Failure {
    Failed(String),
    /// Cancelled or timed out (the flag says which).
    Stopped,
}

#[derive(Default)]
struct Scan {
    events: u64,
    bytes: u64,
}

/// A private engine: no attached databases, values (strings a query builds) of at most 16 MiB.
fn engine() -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::limits::Limit;
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 16 * 1024 * 1024)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1024 * 1024)?;
    conn.set_limit(Limit::SQLITE_LIMIT_EXPR_DEPTH, 200)?;
    Ok(conn)
}

/// The engine's table of one event data store (every column text; nested ones JSON).
pub fn create_table(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<()> {
    let cols: Vec<String> = COLUMNS.iter().map(|c| format!("\"{c}\" TEXT")).collect();
    conn.execute_batch(&format!("CREATE TABLE {table} ({})", cols.join(", ")))
}

/// A record's column values.
pub fn row_values(record: &Value) -> Vec<Option<String>> {
    COLUMNS
        .iter()
        .map(|c| match record.get(*c) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if *c == "eventTime" => Some(lake_time(s)),
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(v) => Some(v.to_string()),
        })
        .collect()
}

/// `2024-01-01T00:00:00Z` → `2024-01-01 00:00:00.000`, as Lake shows event times.
pub fn lake_time(iso: &str) -> String {
    let base: String = iso.trim_end_matches('Z').replacen('T', " ", 1);
    let (whole, frac) = base.split_once('.').unwrap_or((base.as_str(), ""));
    let mut ms: String = frac.chars().take(3).collect();
    while ms.len() < 3 {
        ms.push('0');
    }
    format!("{whole}.{ms}")
}

/// Prepare `translated` against empty tables: the statement's errors, before it is queued.
pub fn check(translated: &Translated) -> Result<(), String> {
    let conn = engine().map_err(|e| e.to_string())?;
    for i in 0..translated.stores.len() {
        create_table(&conn, &format!("eds_{i}")).map_err(|e| e.to_string())?;
    }
    conn.execute_batch("PRAGMA query_only = ON").map_err(|e| e.to_string())?;
    let stmt = conn.prepare(&translated.sql).map_err(|e| engine_message(&e))?;
    if !stmt.readonly() {
        return Err("Only SELECT statements are supported by CloudTrail Lake queries.".into());
    }
    if stmt.parameter_count() != translated.params {
        return Err("The query's parameters do not match its placeholders.".into());
    }
    Ok(())
}

/// An engine error as a message for the caller (bounded).
fn engine_message(e: &rusqlite::Error) -> String {
    let m = match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        other => other.to_string(),
    };
    let m: String = m.chars().take(300).collect();
    format!("Query statement is not valid: {m}")
}

fn execute(
    lake: &Lake,
    conn: &rusqlite::Connection,
    doc: &QueryDoc,
    translated: &Translated,
    stop: &AtomicU8,
    limits: &Limits,
) -> Result<(Results, Scan), Failure> {
    let fail = |e: rusqlite::Error| {
        if stop.load(Ordering::Acquire) != GO {
            Failure::Stopped
        } else {
            Failure::Failed(engine_message(&e))
        }
    };
    let store = lake.store();
    let mut scan = Scan::default();
    let placeholders = vec!["?"; COLUMNS.len()].join(", ");
    for (i, id) in translated.stores.iter().enumerate() {
        // Everything recorded before the query started.
        if let Err(e) = lake.ingest(&format!("{}/{id}", doc.store_account())) {
            return Err(Failure::Failed(format!("The event data store could not be read: {e}")));
        }
        let table = format!("eds_{i}");
        create_table(conn, &table).map_err(fail)?;
        conn.execute_batch("BEGIN").map_err(fail)?;
        {
            let mut insert = conn.prepare(&format!("INSERT INTO {table} VALUES ({placeholders})")).map_err(fail)?;
            let prefix = format!("{id}/");
            let mut after: Option<String> = None;
            loop {
                if stop.load(Ordering::Acquire) != GO {
                    return Err(Failure::Stopped);
                }
                let rows = store
                    .scan(LAKE_TABLE, &prefix, after.as_deref(), 1000)
                    .map_err(|e| Failure::Failed(format!("The event data store could not be read: {e}")))?;
                if rows.is_empty() {
                    break;
                }
                for (_, v) in &rows {
                    let Some(e) = StoredEvent::from_row(v) else { continue };
                    scan.events += 1;
                    scan.bytes += e.event.len() as u64;
                    if scan.bytes > limits.max_scan_bytes {
                        return Err(Failure::Failed(format!(
                            "The query would scan more than {} bytes of events; narrow it to fewer event data stores.",
                            limits.max_scan_bytes
                        )));
                    }
                    let vals = row_values(&e.record());
                    insert.execute(rusqlite::params_from_iter(vals.iter())).map_err(fail)?;
                }
                after = rows.last().map(|(k, _)| k.clone());
            }
        }
        conn.execute_batch("COMMIT").map_err(fail)?;
    }
    conn.execute_batch("PRAGMA query_only = ON").map_err(fail)?;
    let mut stmt = conn.prepare(&translated.sql).map_err(fail)?;
    if stop.load(Ordering::Acquire) != GO {
        return Err(Failure::Stopped);
    }
    if !stmt.readonly() {
        return Err(Failure::Failed("Only SELECT statements are supported by CloudTrail Lake queries.".into()));
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let n = columns.len();
    let mut rows = stmt.query(rusqlite::params_from_iter(doc.params.iter())).map_err(fail)?;
    let mut out = Results { columns, rows: Vec::new() };
    let mut size = 0usize;
    while let Some(row) = rows.next().map_err(fail)? {
        if out.rows.len() >= limits.max_rows {
            return Err(Failure::Failed(format!(
                "The query returned more than {} rows; add a LIMIT.",
                limits.max_rows
            )));
        }
        let mut vals = Vec::with_capacity(n);
        for c in 0..n {
            let v = match row.get_ref(c).map_err(fail)? {
                rusqlite::types::ValueRef::Null => None,
                rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                rusqlite::types::ValueRef::Real(f) => Some(f.to_string()),
                rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                rusqlite::types::ValueRef::Blob(b) => Some(hex::encode(b)),
            };
            size += v.as_ref().map_or(0, String::len);
            vals.push(v);
        }
        if size > limits.max_result_bytes {
            return Err(Failure::Failed(format!(
                "The query's results exceed {} bytes; add a LIMIT.",
                limits.max_result_bytes
            )));
        }
        out.rows.push(vals);
    }
    Ok((out, scan))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::lake::{current_seq, uuid, EventDataStoreDoc, EDS_TABLE};
    use crate::record::test_record as record;

    fn setup(events: &[&str]) -> (Arc<Lake>, String, Arc<AuditLog>) {
        let store: Arc<dyn Store> = Arc::new(rampart_store::MemStore::new());
        let log = AuditLog::start(store.clone()).unwrap();
        let d = EventDataStoreDoc {
            id: uuid(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            name: "lake".into(),
            status: "ENABLED".into(),
            advanced_event_selectors: crate::lake::selectors::default_selectors(),
            multi_region: true,
            retention_days: 7,
            termination_protection: false,
            billing_mode: "EXTENDABLE_RETENTION_PRICING".into(),
            tags: vec![],
            created: 0,
            updated: 0,
            ingesting: true,
            checkpoint: current_seq(store.as_ref()).unwrap(),
            paused_at: None,
            skip: vec![],
            deleted_at: None,
            large_events: false,
        };
        rampart_store::transact(store.as_ref(), |tx| tx.put_json(EDS_TABLE, &d.key(), &d)).unwrap();
        for e in events {
            log.submit(record("111111111111", e)).wait().unwrap();
        }
        (Lake::new(store), d.id, log)
    }

    fn query(lake: &Lake, statement: &str) -> (QueryDoc, Option<Results>) {
        let t = crate::lake::sql::translate(statement).unwrap();
        check(&t).unwrap();
        let doc = QueryDoc {
            id: uuid(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            statement: statement.into(),
            stores: t.stores.clone(),
            owner: None,
            params: vec![],
            status: "QUEUED".into(),
            error: None,
            created: 0.0,
            events_scanned: 0,
            events_matched: 0,
            bytes_scanned: 0,
            exec_ms: 0,
            results: 0,
        };
        rampart_store::transact(lake.store().as_ref(), |tx| tx.put_json(QUERIES_TABLE, &doc.key(), &doc)).unwrap();
        run(lake, doc.clone(), &t);
        let d: QueryDoc = lake.store().get_json(QUERIES_TABLE, &doc.key()).unwrap().unwrap();
        let r = lake.store().get_json(RESULTS_TABLE, &doc.key()).unwrap();
        (d, r)
    }

    #[test]
    fn a_query_counts_events_by_name() {
        let (lake, id, _log) = setup(&["CreateUser", "GetUser", "GetUser", "DeleteUser"]);
        let (d, r) = query(
            &lake,
            &format!("SELECT eventName, count(*) FROM {id} WHERE eventTime > '2000-01-01 00:00:00' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2"),
        );
        assert_eq!(d.status, "FINISHED", "{:?}", d.error);
        assert_eq!(d.events_scanned, 4);
        let r = r.unwrap();
        assert_eq!(r.columns, ["eventName", "_col1"]);
        assert_eq!(r.rows, [[Some("GetUser".into()), Some("2".into())], [Some("CreateUser".into()), Some("1".into())]]);
        let (_, r) =
            query(&lake, &format!("SELECT userIdentity.type, readOnly FROM {id} WHERE eventName = 'CreateUser'"));
        assert_eq!(r.unwrap().rows, [[Some("Root".into()), Some("false".into())]]);
    }

    #[test]
    fn runaway_queries_time_out_and_limits_hold() {
        let names: Vec<String> = (0..40).map(|i| format!("Op{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (mut lake, id, _log) = setup(&refs);
        let l = Arc::get_mut(&mut lake).unwrap();
        l.queries.limits.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let (d, _) = query(
            &lake,
            &format!("SELECT count(*) FROM {id} a CROSS JOIN {id} b CROSS JOIN {id} c CROSS JOIN {id} d CROSS JOIN {id} e CROSS JOIN {id} f"),
        );
        assert_eq!(d.status, "TIMED_OUT");
        assert!(started.elapsed() < Duration::from_secs(10));
        let l = Arc::get_mut(&mut lake).unwrap();
        l.queries.limits.max_rows = 10;
        let (d, _) = query(&lake, &format!("SELECT eventName FROM {id}"));
        assert_eq!(d.status, "FAILED");
        assert!(d.error.unwrap().contains("more than 10 rows"));
    }

    #[test]
    fn a_query_cancelled_in_the_store_stops_running() {
        // As a CancelQuery on another node does it: only the stored status changes.
        let names: Vec<String> = (0..40).map(|i| format!("Op{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (lake, id, _log) = setup(&refs);
        let statement = format!("SELECT count(*) FROM {id} a CROSS JOIN {id} b CROSS JOIN {id} c CROSS JOIN {id} d CROSS JOIN {id} e CROSS JOIN {id} f");
        let t = crate::lake::sql::translate(&statement).unwrap();
        let doc = QueryDoc {
            id: uuid(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            statement,
            stores: t.stores.clone(),
            owner: None,
            params: vec![],
            status: "QUEUED".into(),
            error: None,
            created: 0.0,
            events_scanned: 0,
            events_matched: 0,
            bytes_scanned: 0,
            exec_ms: 0,
            results: 0,
        };
        let key = doc.key();
        let store = lake.store().clone();
        rampart_store::transact(store.as_ref(), |tx| tx.put_json(QUERIES_TABLE, &key, &doc)).unwrap();
        let worker = {
            let lake = lake.clone();
            std::thread::spawn(move || run(&lake, doc, &t))
        };
        let status = || store.get_json::<QueryDoc>(QUERIES_TABLE, &key).unwrap().unwrap().status;
        let deadline = Instant::now() + Duration::from_secs(10);
        while status() != "RUNNING" {
            assert!(Instant::now() < deadline, "never started");
            std::thread::yield_now();
        }
        let mut d = store.get_json::<QueryDoc>(QUERIES_TABLE, &key).unwrap().unwrap();
        d.status = "CANCELLED".into();
        rampart_store::transact(store.as_ref(), |tx| tx.put_json(QUERIES_TABLE, &key, &d)).unwrap();
        let cancelled_at = Instant::now();
        worker.join().unwrap();
        assert!(cancelled_at.elapsed() < Duration::from_secs(5), "stopped within the watchdog's period");
        assert_eq!(status(), "CANCELLED");
        assert!(lake.queries.running.lock().unwrap().is_empty());
    }

    #[test]
    fn values_a_query_builds_are_bounded() {
        let (lake, id, _log) = setup(&["CreateUser"]);
        let (d, _) = query(&lake, &format!("SELECT length(replace(replace(replace(replace(replace(eventName || eventName, 'e', eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName), 'e', eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName), 'e', eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName), 'e', eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName), 'e', eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName || eventName)) FROM {id}"));
        assert_eq!(d.status, "FAILED");
        assert!(d.error.unwrap().contains("too big"));
    }

    #[test]
    fn engine_errors_are_statement_errors() {
        let t = crate::lake::sql::translate("SELECT nosuchcolumn FROM abc").unwrap();
        assert!(check(&t).unwrap_err().contains("no such column"));
        assert_eq!(lake_time("2024-01-02T03:04:05Z"), "2024-01-02 03:04:05.000");
    }
}
