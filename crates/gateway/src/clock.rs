//! The gateway's one source of time: rate windows, Shield's read deadlines and attack events, token
//! and challenge timestamps all read it. [`SystemClock`] is the real one (Unix milliseconds advancing
//! monotonically from the wall clock at start); [`ManualClock`] only moves when told to, so tests can
//! assert behaviour (what is cut, counted, expired) without depending on how fast the machine is.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

pub trait Clock: Send + Sync + Debug + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;
    /// Resolves once `now_ms() >= at_ms`.
    fn sleep_until(&self, at_ms: u64) -> Sleep;
    /// Whole seconds since the Unix epoch.
    fn now_s(&self) -> u64 {
        self.now_ms() / 1000
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time at construction, then advancing with the monotonic clock (a wall-clock step does
/// not cut connections or distort rate windows).
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
    base_ms: u64,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        let base_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        SystemClock { origin: Instant::now(), base_ms }
    }

    pub fn shared() -> SharedClock {
        Arc::new(SystemClock::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.origin.elapsed().as_millis() as u64
    }

    fn sleep_until(&self, at_ms: u64) -> Sleep {
        let wait = Duration::from_millis(at_ms.saturating_sub(self.now_ms()));
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that stands still until [`ManualClock::advance`]; sleepers wake when it passes their time.
#[derive(Debug)]
pub struct ManualClock {
    now: tokio::sync::watch::Sender<u64>,
}

impl ManualClock {
    /// Starts at `start_ms` (Unix milliseconds).
    pub fn new(start_ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock { now: tokio::sync::watch::Sender::new(start_ms) })
    }

    /// Starts at the current wall-clock time.
    pub fn starting_now() -> Arc<ManualClock> {
        ManualClock::new(SystemClock::new().now_ms())
    }

    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|t| *t = t.saturating_add(by.as_millis() as u64));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, at_ms: u64) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // Err: the clock is gone, nothing will ever wake this sleeper; resolve.
            let _ = rx.wait_for(|t| *t >= at_ms).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_only_when_advanced_past_their_time() {
        let c = ManualClock::new(1_000);
        let mut s = c.sleep_until(1_500);
        let waker = futures_noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(s.as_mut().poll(&mut cx).is_pending());
        c.advance(Duration::from_millis(400));
        assert!(s.as_mut().poll(&mut cx).is_pending());
        c.advance(Duration::from_millis(100));
        s.await;
        assert_eq!(c.now_ms(), 1_500);
        assert_eq!(c.now_s(), 1);
    }

    fn futures_noop_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
