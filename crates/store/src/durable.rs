//! Group commit: a commit returns as soon as it is written; making it durable is a separate,
//! shared step.
//!
//! Backends that support it ([`crate::SqliteStore`], [`crate::PgStore`]) commit without waiting
//! for the disk ([`crate::Transaction::commit_deferred`]) and count each commit. One syncer thread
//! per store makes everything committed so far durable in one step (SQLite: `fdatasync` of the
//! WAL; PostgreSQL: one synchronous commit, which flushes the WAL up to it) and publishes how far
//! it got. A caller that must not acknowledge before durability waits for its commit's position
//! ([`Durability::wait`] asynchronously, [`Durability::wait_blocking`] on a thread): however many
//! callers wait at once, one sync serves them all.
//!
//! A failed sync is sticky: what was written may or may not be on disk, so every later wait
//! fails too and the server answers errors instead of unverifiable successes.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::StoreError;

/// How far the syncer got, as published to waiters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Synced {
    durable: u64,
    failed: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Commits counted so far (the position of the newest).
    committed: u64,
    /// The highest position a waiter asked for.
    requested: u64,
    durable: u64,
    failed: bool,
    stopped: bool,
}

/// Commit positions and the syncer's progress for one store.
#[derive(Debug)]
pub struct Durability {
    state: Mutex<State>,
    /// Wakes the syncer (a request) and blocking waiters (progress).
    changed: Condvar,
    synced: tokio::sync::watch::Sender<Synced>,
    /// Time spent in syncs and how many, for metrics.
    stats: Mutex<SyncStats>,
}

/// Counters of the syncer's work.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SyncStats {
    pub syncs: u64,
    pub commits_synced: u64,
    pub sync_seconds: f64,
}

impl Default for Durability {
    fn default() -> Self {
        Durability {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            synced: tokio::sync::watch::channel(Synced { durable: 0, failed: false }).0,
            stats: Mutex::new(SyncStats::default()),
        }
    }
}

/// A background sync step: make every write completed so far durable. Returns the position it
/// made durable when it committed itself (SQLite's group), `None` for "every commit counted
/// before the step began".
pub type SyncFn = Box<dyn FnMut() -> Result<Option<u64>, StoreError> + Send>;
/// A maintenance step run after syncs (a WAL checkpoint).
pub type IdleFn = Box<dyn FnMut() -> Result<(), StoreError> + Send>;

impl Durability {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a commit that has just been written; call while still holding the store's writer
    /// lock, so positions follow commit order. Returns the commit's position.
    pub fn note_commit(&self) -> u64 {
        let mut st = self.lock();
        st.committed += 1;
        st.committed
    }

    /// The position of the newest commit counted so far.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    fn request(&self, pos: u64) -> Result<bool, StoreError> {
        let mut st = self.lock();
        if st.failed {
            return Err(sync_failed());
        }
        if st.durable >= pos {
            return Ok(true);
        }
        if st.stopped {
            return Err(StoreError::Backend("the store is closed; the commit's durability is unknown".into()));
        }
        if pos > st.requested {
            st.requested = pos;
            self.changed.notify_all();
        }
        Ok(false)
    }

    /// Wait (asynchronously) until the commit at `pos` is durable.
    pub async fn wait(&self, pos: u64) -> Result<(), StoreError> {
        if self.request(pos)? {
            return Ok(());
        }
        let mut rx = self.synced.subscribe();
        let outcome = rx
            .wait_for(|s| s.failed || s.durable >= pos)
            .await
            .map(|s| *s)
            .map_err(|_| StoreError::Backend("the store's syncer stopped".into()))?;
        if outcome.durable >= pos {
            Ok(())
        } else {
            Err(sync_failed())
        }
    }

    /// Wait (blocking this thread) until the commit at `pos` is durable.
    pub fn wait_blocking(&self, pos: u64) -> Result<(), StoreError> {
        if self.request(pos)? {
            return Ok(());
        }
        let mut st = self.lock();
        loop {
            if st.durable >= pos {
                return Ok(());
            }
            if st.failed {
                return Err(sync_failed());
            }
            if st.stopped {
                return Err(StoreError::Backend("the store is closed; the commit's durability is unknown".into()));
            }
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The syncer's counters so far.
    pub fn stats(&self) -> SyncStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start the syncer thread: it runs `sync` whenever a waiter asks for a position not yet
    /// durable, and `idle` (e.g. a WAL checkpoint) after syncs, at most every `idle_every`.
    pub(crate) fn start(
        self: &Arc<Self>,
        name: &str,
        mut sync: SyncFn,
        mut idle: Option<IdleFn>,
        idle_every: Duration,
    ) -> Result<Syncer, StoreError> {
        let me = self.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut last_idle = Instant::now();
                loop {
                    let target = {
                        let mut st = me.lock();
                        while st.requested <= st.durable && !st.stopped && !st.failed {
                            st = me.changed.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                        if st.failed || (st.stopped && st.requested <= st.durable) {
                            return;
                        }
                        st.committed
                    };
                    let started = Instant::now();
                    let result = sync();
                    let took = started.elapsed();
                    {
                        let mut st = me.lock();
                        match &result {
                            Ok(made) => st.durable = st.durable.max(made.unwrap_or(target)),
                            Err(e) => {
                                tracing::error!(error = %e, "store sync failed: no further write is acknowledged");
                                st.failed = true;
                            }
                        }
                        me.synced.send_replace(Synced { durable: st.durable, failed: st.failed });
                        me.changed.notify_all();
                        let mut stats = me.stats.lock().unwrap_or_else(|p| p.into_inner());
                        stats.syncs += 1;
                        stats.commits_synced = st.durable;
                        stats.sync_seconds += took.as_secs_f64();
                    }
                    if let Some(idle) = idle.as_mut() {
                        if last_idle.elapsed() >= idle_every {
                            last_idle = Instant::now();
                            if let Err(e) = idle() {
                                tracing::warn!(error = %e, "store maintenance step failed");
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the store syncer: {e}")))?;
        Ok(Syncer { durability: self.clone(), thread: Some(thread) })
    }

    fn stop(&self) {
        let mut st = self.lock();
        st.stopped = true;
        self.changed.notify_all();
    }
}

fn sync_failed() -> StoreError {
    StoreError::Backend("an earlier sync to disk failed; no write is acknowledged until restart".into())
}

/// The running syncer thread; stops (after serving every pending request) when dropped.
pub(crate) struct Syncer {
    durability: Arc<Durability>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.durability.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn one_sync_serves_every_waiter_up_to_the_commits_it_saw() {
        let d = Arc::new(Durability::default());
        let syncs = Arc::new(AtomicU64::new(0));
        let counter = syncs.clone();
        let _syncer = d
            .start(
                "test-syncer",
                Box::new(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(None)
                }),
                None,
                Duration::from_secs(60),
            )
            .unwrap();
        let positions: Vec<u64> = (0..10).map(|_| d.note_commit()).collect();
        d.wait_blocking(*positions.last().unwrap()).unwrap();
        // Everything committed before the sync started is durable with it.
        for p in positions {
            d.wait_blocking(p).unwrap();
        }
        assert_eq!(syncs.load(Ordering::SeqCst), 1, "one sync for ten commits");
        let p = d.note_commit();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(d.wait(p)).unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_sync_fails_every_later_wait() {
        let d = Arc::new(Durability::default());
        let _syncer = d
            .start("test-syncer", Box::new(|| Err(StoreError::Backend("EIO".into()))), None, Duration::from_secs(60))
            .unwrap();
        let p = d.note_commit();
        assert!(d.wait_blocking(p).is_err());
        let q = d.note_commit();
        assert!(d.wait_blocking(q).is_err());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(rt.block_on(d.wait(q)).is_err());
    }
}
