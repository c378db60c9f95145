//! Connection-level Shield: per-IP and global connection caps (a new client preempts the slowest
//! half-open connection when the gateway is full), and read deadlines with a minimum data rate while a
//! request head is arriving (Slowloris) or the connection idles between requests.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::clock::{SharedClock, Sleep};
use crate::config::ShieldConfig;

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// One client connection; times are the gateway clock's milliseconds.
#[derive(Debug)]
pub struct ConnState {
    pub id: u64,
    pub ip: IpAddr,
    phase: AtomicU8,
    phase_start_ms: AtomicU64,
    phase_bytes: AtomicU64,
    active: AtomicUsize,
    pub cancel: Notify,
    cancelled: AtomicBool,
    /// HTTP/2 (seen from the client preface): frames such as PING arrive between requests, so only the
    /// idle deadline applies (reset by any traffic); h2's own limits govern streams.
    h2: AtomicBool,
    seen_bytes: AtomicBool,
    clock: SharedClock,
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn on_bytes(&self, data: &[u8]) {
        let n = data.len();
        if !self.seen_bytes.swap(true, Ordering::AcqRel) && data.starts_with(b"PRI * HTTP/2") {
            self.h2.store(true, Ordering::Release);
        }
        if self.h2.load(Ordering::Acquire) {
            self.phase_start_ms.store(self.now_ms(), Ordering::Release);
            return;
        }
        if self.active.load(Ordering::Acquire) > 0 {
            return;
        }
        if self.phase.load(Ordering::Acquire) == IDLE {
            self.phase_start_ms.store(self.now_ms(), Ordering::Release);
            self.phase_bytes.store(0, Ordering::Release);
            self.phase.store(HEAD, Ordering::Release);
        }
        self.phase_bytes.fetch_add(n as u64, Ordering::AcqRel);
    }

    /// A request reached the handler.
    pub fn begin_request(self: &Arc<Self>) -> ActiveGuard {
        let start_ms = self.now_ms();
        self.active.fetch_add(1, Ordering::AcqRel);
        self.phase.store(BUSY, Ordering::Release);
        ActiveGuard { conn: self.clone(), start_ms }
    }

    /// When the next read must complete by, in ms since origin; None while requests are in flight.
    fn deadline_ms(&self, cfg: &ShieldConfig) -> Option<u64> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let start = self.phase_start_ms.load(Ordering::Acquire);
        match self.phase.load(Ordering::Acquire) {
            HEAD if !self.h2.load(Ordering::Acquire) => {
                let bytes = self.phase_bytes.load(Ordering::Acquire);
                let total = start + cfg.header_timeout.as_millis() as u64;
                if cfg.min_rate_bytes_per_sec == 0 {
                    return Some(total);
                }
                // The next byte must arrive while the average rate still meets the minimum.
                let by_rate =
                    start + ((bytes + 1) * 1000 / cfg.min_rate_bytes_per_sec).max(cfg.rate_grace.as_millis() as u64);
                Some(total.min(by_rate))
            }
            _ => Some(start + cfg.idle_timeout.as_millis() as u64),
        }
    }

    /// How good a victim this connection is when the gateway is full (higher: evict first).
    fn eviction_score(&self) -> Option<u64> {
        if self.active.load(Ordering::Acquire) > 0 || self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        let age = self.now_ms().saturating_sub(self.phase_start_ms.load(Ordering::Acquire));
        match self.phase.load(Ordering::Acquire) {
            // A half-sent head: the slower, the better a victim.
            HEAD => {
                let bytes = self.phase_bytes.load(Ordering::Acquire).max(1);
                Some(1_000_000 + age * 1000 / bytes)
            }
            _ => Some(age),
        }
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.cancel.notify_one();
    }
}

/// Held while a request (and its response body) is in flight on a connection.
pub struct ActiveGuard {
    conn: Arc<ConnState>,
    start_ms: u64,
}

impl ActiveGuard {
    /// When the request's head had arrived (clock ms): its body deadlines count from here.
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let s = &self.conn;
        if s.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            s.phase_start_ms.store(s.now_ms(), Ordering::Release);
            s.phase_bytes.store(0, Ordering::Release);
            s.phase.store(IDLE, Ordering::Release);
        }
    }
}

#[derive(Debug, Default)]
pub struct ConnStats {
    pub accepted: AtomicU64,
    pub rejected_per_ip: AtomicU64,
    pub rejected_global: AtomicU64,
    pub preempted: AtomicU64,
    pub timed_out: AtomicU64,
}

pub struct Registry {
    cfg: ShieldConfig,
    clock: SharedClock,
    next_id: AtomicU64,
    inner: Mutex<RegistryInner>,
    pub stats: ConnStats,
}

#[derive(Default)]
struct RegistryInner {
    conns: HashMap<u64, Arc<ConnState>>,
    per_ip: HashMap<IpAddr, usize>,
}

pub enum Admission {
    Admitted(ConnGuard),
    RejectedPerIp,
    RejectedGlobal,
}

/// Held for a connection's lifetime; frees its slot.
pub struct ConnGuard {
    pub state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut g = self.registry.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.conns.remove(&self.state.id);
        if let Some(n) = g.per_ip.get_mut(&self.state.ip) {
            *n -= 1;
            if *n == 0 {
                g.per_ip.remove(&self.state.ip);
            }
        }
    }
}

impl Registry {
    pub fn new(cfg: ShieldConfig, clock: SharedClock) -> Arc<Registry> {
        Arc::new(Registry {
            cfg,
            clock,
            next_id: AtomicU64::new(1),
            inner: Mutex::default(),
            stats: ConnStats::default(),
        })
    }

    pub fn config(&self) -> &ShieldConfig {
        &self.cfg
    }

    pub fn open_connections(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).conns.len()
    }

    /// Connections part-way through sending a request head (HTTP/1).
    pub fn receiving_head(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.conns
            .values()
            .filter(|c| c.phase.load(Ordering::Acquire) == HEAD && c.active.load(Ordering::Acquire) == 0)
            .count()
    }

    /// Requests between their head's arrival and the end of their response.
    pub fn requests_in_flight(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.conns.values().map(|c| c.active.load(Ordering::Acquire)).sum()
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let per_ip = g.per_ip.get(&ip).copied().unwrap_or(0);
        if self.cfg.max_connections_per_ip > 0 && per_ip >= self.cfg.max_connections_per_ip {
            self.stats.rejected_per_ip.fetch_add(1, Ordering::Relaxed);
            return Admission::RejectedPerIp;
        }
        if self.cfg.max_connections > 0 && g.conns.len() >= self.cfg.max_connections {
            // Full: free the slot of the worst half-open or idle connection, if any.
            let victim = g
                .conns
                .values()
                .filter_map(|c| c.eviction_score().map(|s| (s, c.clone())))
                .max_by_key(|(s, _)| *s)
                .map(|(_, c)| c);
            match victim {
                Some(v) => {
                    v.cancel();
                    self.stats.preempted.fetch_add(1, Ordering::Relaxed);
                    // The victim's slot is released when its task ends; admit over the cap meanwhile.
                }
                None => {
                    self.stats.rejected_global.fetch_add(1, Ordering::Relaxed);
                    return Admission::RejectedGlobal;
                }
            }
        }
        let now = self.clock.now_ms();
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            ip,
            phase: AtomicU8::new(IDLE),
            phase_start_ms: AtomicU64::new(now),
            phase_bytes: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            cancel: Notify::new(),
            cancelled: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            seen_bytes: AtomicBool::new(false),
            clock: self.clock.clone(),
        });
        g.conns.insert(state.id, state.clone());
        *g.per_ip.entry(ip).or_insert(0) += 1;
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Admission::Admitted(ConnGuard { state, registry: self.clone() })
    }
}

/// The client socket with Shield's read deadlines.
pub struct ShieldedIo<T> {
    inner: T,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
    sleep: Option<(u64, Sleep)>,
}

impl<T> ShieldedIo<T> {
    pub fn new(inner: T, guard: &ConnGuard) -> Self {
        ShieldedIo { inner, state: guard.state.clone(), registry: guard.registry.clone(), sleep: None }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ShieldedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled();
                if filled.len() > before {
                    this.state.on_bytes(&filled[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.state.deadline_ms(&this.registry.cfg) else {
                    this.sleep = None;
                    return Poll::Pending;
                };
                let now = this.state.now_ms();
                if now >= deadline {
                    this.registry.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "shield: read deadline")));
                }
                let reset = !matches!(&this.sleep, Some((d, _)) if *d == deadline);
                if reset {
                    this.sleep = Some((deadline, this.state.clock.sleep_until(deadline)));
                }
                if let Some((_, s)) = this.sleep.as_mut() {
                    if s.as_mut().poll(cx).is_ready() {
                        this.sleep = None;
                        // Re-check with fresh state on the next poll.
                        cx.waker().wake_by_ref();
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ShieldedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
