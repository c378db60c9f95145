//! Sliding-window request counters for rate-based rules and Shield, local or shared through Redis.
//!
//! Each (counter, key) keeps two fixed windows (current and previous) and estimates the sliding count as
//! `current + previous × (1 − elapsed fraction)`. Counting is synchronous and local (no network on the
//! request path); with Redis, a background task pushes local increments every `SYNC_EVERY` and pulls the
//! totals of every gateway, so a flood spread over nodes is counted as one.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{SharedClock, SystemClock};

pub const SYNC_EVERY: Duration = Duration::from_millis(100);
const SHARDS: usize = 16;
/// Upper bound of (counter, key) pairs kept; beyond it new keys are still counted but the oldest go.
const MAX_ENTRIES: usize = 1_000_000;

#[derive(Debug, Default, Clone)]
struct Entry {
    window: u64,
    idx: u64,
    cur_local: u64,
    prev_local: u64,
    cur_remote: u64,
    prev_remote: u64,
    unsynced: u64,
    last_seen_ms: u64,
}

impl Entry {
    fn roll(&mut self, idx: u64) {
        if idx == self.idx {
            return;
        }
        if idx == self.idx + 1 {
            self.prev_local = self.cur_local;
            self.prev_remote = self.cur_remote + self.unsynced;
        } else {
            self.prev_local = 0;
            self.prev_remote = 0;
        }
        self.idx = idx;
        self.cur_local = 0;
        self.cur_remote = 0;
        self.unsynced = 0;
    }

    fn estimate(&self, now_ms: u64) -> u64 {
        let cur = self.cur_local.max(self.cur_remote + self.unsynced);
        let prev = self.prev_local.max(self.prev_remote);
        let win_ms = self.window * 1000;
        let elapsed = now_ms.saturating_sub(self.idx * win_ms);
        let weight = 1.0 - (elapsed as f64 / win_ms as f64).min(1.0);
        cur + (prev as f64 * weight).ceil() as u64
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub struct RateCounters {
    shards: [Mutex<HashMap<String, Entry>>; SHARDS],
    hasher: std::collections::hash_map::RandomState,
    clock: SharedClock,
}

impl Default for RateCounters {
    fn default() -> Self {
        RateCounters::with_clock(SystemClock::shared())
    }
}

impl RateCounters {
    pub fn new() -> Arc<RateCounters> {
        Arc::new(RateCounters::default())
    }

    /// Counters whose windows follow `clock`.
    pub fn with_clock(clock: SharedClock) -> RateCounters {
        RateCounters { shards: Default::default(), hasher: Default::default(), clock }
    }

    fn shard(&self, k: &str) -> &Mutex<HashMap<String, Entry>> {
        &self.shards[(self.hasher.hash_one(k) as usize) % SHARDS]
    }

    fn full_key(counter: &str, key: &str) -> String {
        let mut s = String::with_capacity(counter.len() + key.len() + 1);
        s.push_str(counter);
        s.push('\u{0}');
        s.push_str(key);
        s
    }

    /// Counts one request for `key` of `counter`; returns the sliding-window count including it.
    pub fn hit(&self, counter: &str, key: &str, window_sec: u64) -> u64 {
        self.hit_n(counter, key, window_sec, 1)
    }

    pub fn hit_n(&self, counter: &str, key: &str, window_sec: u64, n: u64) -> u64 {
        let now = self.clock.now_ms();
        let fk = Self::full_key(counter, key);
        let window = window_sec.max(1);
        let idx = now / (window * 1000);
        let mut shard = self.shard(&fk).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= MAX_ENTRIES / SHARDS && !shard.contains_key(&fk) {
            evict_oldest(&mut shard);
        }
        let e = shard.entry(fk).or_insert_with(|| Entry { window, idx, ..Entry::default() });
        e.roll(idx);
        e.cur_local += n;
        e.unsynced += n;
        e.last_seen_ms = now;
        e.estimate(now)
    }

    /// The current sliding count without counting a request.
    pub fn peek(&self, counter: &str, key: &str) -> u64 {
        let now = self.clock.now_ms();
        let fk = Self::full_key(counter, key);
        let mut shard = self.shard(&fk).lock().unwrap_or_else(|p| p.into_inner());
        match shard.get_mut(&fk) {
            Some(e) => {
                let idx = now / (e.window * 1000);
                e.roll(idx);
                e.estimate(now)
            }
            None => 0,
        }
    }

    /// Drops entries idle for more than two windows.
    pub fn sweep(&self) {
        let now = self.clock.now_ms();
        for s in &self.shards {
            let mut m = s.lock().unwrap_or_else(|p| p.into_inner());
            m.retain(|_, e| now.saturating_sub(e.last_seen_ms) < 2 * e.window * 1000 + 1000);
        }
    }

    /// Entries to sync: (full key, window, idx, delta), taking the unsynced deltas.
    fn take_deltas(&self, limit: usize) -> Vec<(String, u64, u64, u64)> {
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        for s in &self.shards {
            let mut m = s.lock().unwrap_or_else(|p| p.into_inner());
            for (k, e) in m.iter_mut() {
                if out.len() >= limit {
                    return out;
                }
                if now.saturating_sub(e.last_seen_ms) > e.window * 1000 {
                    continue;
                }
                let idx = now / (e.window * 1000);
                e.roll(idx);
                out.push((k.clone(), e.window, e.idx, e.unsynced));
                e.unsynced = 0;
            }
        }
        out
    }

    fn apply_remote(&self, fk: &str, idx: u64, cur_total: u64, prev_total: u64) {
        let mut shard = self.shard(fk).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = shard.get_mut(fk) {
            if e.idx == idx {
                e.cur_remote = cur_total;
                e.prev_remote = e.prev_remote.max(prev_total);
            } else if e.idx == idx + 1 {
                e.prev_remote = e.prev_remote.max(cur_total);
            }
        }
    }

    /// Gives deltas back after a failed sync so they are not lost.
    fn restore(&self, deltas: &[(String, u64, u64, u64)]) {
        for (fk, _, idx, d) in deltas {
            let mut shard = self.shard(fk).lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = shard.get_mut(fk) {
                if e.idx == *idx {
                    e.unsynced += d;
                }
            }
        }
    }
}

fn evict_oldest(m: &mut HashMap<String, Entry>) {
    if let Some(k) = m.iter().min_by_key(|(_, e)| e.last_seen_ms).map(|(k, _)| k.clone()) {
        m.remove(&k);
    }
}

fn redis_key(prefix: &str, fk: &str, idx: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + fk.len() + 24);
    k.extend_from_slice(prefix.as_bytes());
    k.extend_from_slice(fk.as_bytes());
    k.extend_from_slice(format!("\u{0}{idx}").as_bytes());
    k
}

fn as_u64(v: &redis::Value) -> u64 {
    match v {
        redis::Value::Int(i) => (*i).max(0) as u64,
        redis::Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        redis::Value::SimpleString(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// One push/pull round with Redis.
pub async fn sync_once(
    counters: &RateCounters,
    con: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Result<(), redis::RedisError> {
    let deltas = counters.take_deltas(20_000);
    if deltas.is_empty() {
        return Ok(());
    }
    for chunk in deltas.chunks(500) {
        let mut pipe = redis::pipe();
        for (fk, window, idx, d) in chunk {
            let k = redis_key(prefix, fk, *idx);
            pipe.cmd("INCRBY").arg(&k).arg(*d);
            pipe.cmd("EXPIRE").arg(&k).arg(window * 3).ignore();
            pipe.cmd("GET").arg(redis_key(prefix, fk, idx.saturating_sub(1)));
        }
        let res: Result<Vec<redis::Value>, _> = pipe.query_async(con).await;
        match res {
            Ok(vals) => {
                for (i, (fk, _, idx, _)) in chunk.iter().enumerate() {
                    let cur = vals.get(2 * i).map(as_u64).unwrap_or(0);
                    let prev = vals.get(2 * i + 1).map(as_u64).unwrap_or(0);
                    counters.apply_remote(fk, *idx, cur, prev);
                }
            }
            Err(e) => {
                counters.restore(chunk);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Keeps the counters in sync with Redis until the task is dropped; reconnects after errors.
pub async fn redis_sync_loop(counters: Arc<RateCounters>, client: redis::Client, prefix: String) {
    let mut con: Option<redis::aio::MultiplexedConnection> = None;
    let mut tick = tokio::time::interval(SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweeps = 0u32;
    loop {
        tick.tick().await;
        sweeps += 1;
        if sweeps.is_multiple_of(100) {
            counters.sweep();
        }
        if con.is_none() {
            match client.get_multiplexed_async_connection().await {
                Ok(c) => con = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "redis: cannot connect; counting locally meanwhile");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        if let Some(c) = con.as_mut() {
            if let Err(e) = sync_once(&counters, c, &prefix).await {
                tracing::warn!(error = %e, "redis: sync failed; counting locally meanwhile");
                con = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_window() {
        let c = RateCounters::default();
        for i in 1..=20 {
            assert!(c.hit("r", "1.2.3.4", 60) >= i);
        }
        assert_eq!(c.hit("r", "5.6.7.8", 60), 1);
        assert!(c.peek("r", "1.2.3.4") >= 20);
        assert_eq!(c.peek("other", "1.2.3.4"), 0);
    }

    #[test]
    fn previous_window_weighs_in() {
        let mut e = Entry { window: 60, idx: 10, cur_local: 100, ..Entry::default() };
        e.roll(11);
        assert_eq!(e.prev_local, 100);
        // At the start of window 11 the previous window counts fully, at its end not at all.
        assert_eq!(e.estimate(11 * 60_000), 100);
        assert_eq!(e.estimate(12 * 60_000), 0);
        e.roll(13);
        assert_eq!(e.prev_local, 0);
    }
}
