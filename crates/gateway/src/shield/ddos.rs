//! Automatic application-layer DDoS mitigation: learns a baseline of the request rate, declares an
//! attack event when traffic exceeds it, and during the event answers the heaviest sources with 429
//! while everyone else keeps being served. Counts go through the shared rate counters, so with Redis
//! every gateway sees the fleet's traffic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::ShieldConfig;
use crate::waf::rate::RateCounters;

const GLOBAL: &str = "shield:global";
const PER_IP: &str = "shield:ip";
/// Counting window for rates (seconds); rates are count / window.
pub const WINDOW: u64 = 10;
pub const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopSource {
    pub ip: String,
    pub requests: u64,
}

/// An attack event, like Shield Advanced's: start, end, what was seen and done.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttackEvent {
    pub attack_id: String,
    /// Unix milliseconds.
    pub start_time: u64,
    pub end_time: Option<u64>,
    pub attack_vector: &'static str,
    pub baseline_rps: f64,
    pub threshold_rps: f64,
    pub peak_rps: f64,
    pub total_requests: u64,
    pub mitigated_requests: u64,
    pub top_sources: Vec<TopSource>,
}

#[derive(Default)]
struct Inner {
    baseline: f64,
    samples: u64,
    /// Clock time of the last detector step, and of the last step with attack-level traffic.
    last_step_ms: u64,
    last_loud_ms: u64,
    current: Option<AttackEvent>,
    sources: HashMap<IpAddr, u64>,
    history: Vec<AttackEvent>,
}

pub struct Mitigator {
    cfg: ShieldConfig,
    rates: Arc<RateCounters>,
    clock: SharedClock,
    under_attack: AtomicBool,
    /// Per-source rate above which a source is mitigated during an attack (requests/s, as f64 bits).
    source_limit: AtomicU64,
    mitigated: AtomicU64,
    inner: Mutex<Inner>,
}

pub enum Decision {
    Pass,
    Mitigate,
}

impl Mitigator {
    /// A mitigator counting through `rates` and stepping on `clock`'s time.
    pub fn new(cfg: ShieldConfig, rates: Arc<RateCounters>, clock: SharedClock) -> Arc<Mitigator> {
        let inner = Inner { last_step_ms: clock.now_ms(), ..Inner::default() };
        Arc::new(Mitigator {
            cfg,
            rates,
            clock,
            under_attack: AtomicBool::new(false),
            source_limit: AtomicU64::new(f64::INFINITY.to_bits()),
            mitigated: AtomicU64::new(0),
            inner: Mutex::new(inner),
        })
    }

    /// Counts a request and says whether to serve it.
    pub fn observe(&self, ip: IpAddr) -> Decision {
        if !self.cfg.auto_mitigation {
            return Decision::Pass;
        }
        self.rates.hit(GLOBAL, "", WINDOW);
        let ip_count = self.rates.hit(PER_IP, &ip.to_string(), WINDOW);
        if !self.under_attack.load(Ordering::Acquire) {
            return Decision::Pass;
        }
        {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            *g.sources.entry(ip).or_insert(0) += 1;
            if let Some(ev) = g.current.as_mut() {
                ev.total_requests += 1;
            }
        }
        let limit = f64::from_bits(self.source_limit.load(Ordering::Acquire));
        if ip_count as f64 / WINDOW as f64 > limit {
            self.mitigated.fetch_add(1, Ordering::Relaxed);
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(ev) = g.current.as_mut() {
                ev.mitigated_requests += 1;
            }
            return Decision::Mitigate;
        }
        Decision::Pass
    }

    pub fn under_attack(&self) -> bool {
        self.under_attack.load(Ordering::Acquire)
    }

    pub fn mitigated_total(&self) -> u64 {
        self.mitigated.load(Ordering::Relaxed)
    }

    pub fn baseline(&self) -> f64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).baseline
    }

    /// All events, the current one (if any) last.
    pub fn events(&self) -> Vec<AttackEvent> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = g.history.clone();
        if let Some(c) = &g.current {
            let mut c = c.clone();
            c.top_sources = top(&g.sources, 10);
            v.push(c);
        }
        v
    }

    /// The request rate the detector sees now (requests/s over the counting window; the fleet's with Redis).
    pub fn current_rps(&self) -> f64 {
        self.rates.peek(GLOBAL, "") as f64 / WINDOW as f64
    }

    /// One step of the detector. Called every TICK by a background task (and by tests); steps only
    /// when the clock has moved a TICK since the last step, so extra calls change nothing.
    pub fn tick(&self) {
        if !self.cfg.auto_mitigation {
            return;
        }
        let now = self.clock.now_ms();
        {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if now < g.last_step_ms.saturating_add(TICK.as_millis() as u64) {
                return;
            }
            g.last_step_ms = now;
        }
        self.step(self.current_rps(), now);
    }

    /// The detector's state machine for one measured rate (requests/s over the window) at `now` (ms).
    fn step(&self, rps: f64, now: u64) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let threshold = (g.baseline * self.cfg.attack_multiplier).max(self.cfg.attack_min_rps);
        match g.current.is_some() {
            false => {
                if rps > threshold {
                    let ev = AttackEvent {
                        attack_id: format!("rampart-{now}"),
                        start_time: now,
                        end_time: None,
                        attack_vector: "HTTP_FLOOD",
                        baseline_rps: g.baseline,
                        threshold_rps: threshold,
                        peak_rps: rps,
                        total_requests: 0,
                        mitigated_requests: 0,
                        top_sources: Vec::new(),
                    };
                    tracing::warn!(rps, threshold, "shield: attack event started");
                    g.current = Some(ev);
                    g.sources.clear();
                    g.last_loud_ms = now;
                    // A source sending more than its share of the normal capacity is mitigated.
                    let limit = (threshold * self.cfg.source_share).max(self.cfg.source_min_rps);
                    self.source_limit.store(limit.to_bits(), Ordering::Release);
                    self.under_attack.store(true, Ordering::Release);
                } else {
                    // Learn only from peace time: an attack must not become the new normal.
                    let alpha = if g.samples < 40 { 0.2 } else { 0.02 };
                    g.baseline = if g.samples == 0 { rps } else { g.baseline * (1.0 - alpha) + rps * alpha };
                    g.samples += 1;
                }
            }
            true => {
                let start_threshold = g.current.as_ref().map_or(threshold, |e| e.threshold_rps);
                if let Some(ev) = g.current.as_mut() {
                    ev.peak_rps = ev.peak_rps.max(rps);
                }
                if rps >= start_threshold * 0.8 {
                    g.last_loud_ms = now;
                }
                let cooldown = (self.cfg.attack_cooldown.as_millis() as u64).max(TICK.as_millis() as u64);
                if now.saturating_sub(g.last_loud_ms) >= cooldown {
                    let sources = top(&g.sources, 10);
                    if let Some(mut ev) = g.current.take() {
                        ev.end_time = Some(now);
                        ev.top_sources = sources;
                        tracing::warn!(
                            peak = ev.peak_rps,
                            mitigated = ev.mitigated_requests,
                            "shield: attack event ended"
                        );
                        g.history.push(ev);
                        if g.history.len() > 100 {
                            g.history.remove(0);
                        }
                    }
                    g.sources.clear();
                    self.under_attack.store(false, Ordering::Release);
                    self.source_limit.store(f64::INFINITY.to_bits(), Ordering::Release);
                }
            }
        }
    }
}

fn top(m: &HashMap<IpAddr, u64>, n: usize) -> Vec<TopSource> {
    let mut v: Vec<(&IpAddr, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.into_iter().take(n).map(|(ip, c)| TopSource { ip: ip.to_string(), requests: *c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    /// A mitigator on a manual clock and a `step` that moves the clock one TICK and steps at `rps`.
    fn mitigator() -> (Arc<Mitigator>, impl Fn(&Mitigator, f64)) {
        let clock = ManualClock::new(1_800_000_000_000);
        let m = Mitigator::new(cfg(), RateCounters::new(), clock.clone());
        let step = move |m: &Mitigator, rps: f64| {
            clock.advance(TICK);
            m.step(rps, clock.now_ms());
        };
        (m, step)
    }

    fn cfg() -> ShieldConfig {
        ShieldConfig {
            attack_min_rps: 10.0,
            attack_multiplier: 4.0,
            attack_cooldown: TICK * 2,
            ..ShieldConfig::default()
        }
    }

    #[test]
    fn learns_a_baseline_and_detects_relative_surges() {
        let (m, step) = mitigator();
        // Traffic grows from under the absolute floor to 100 rps, never faster than the multiplier:
        // learned as the baseline, never an attack.
        for _ in 0..40 {
            step(&m, 8.0);
        }
        let mut r: f64 = 8.0;
        while r < 100.0 {
            r = (r * 1.5).min(100.0);
            for _ in 0..200 {
                step(&m, r);
                assert!(!m.under_attack(), "growth at {r} rps is not an attack");
            }
        }
        assert!(!m.under_attack());
        assert!((m.baseline() - 100.0).abs() < 5.0, "baseline {}", m.baseline());
        // 300 rps is under 4x the baseline: no attack. 500 is over: attack.
        step(&m, 300.0);
        assert!(!m.under_attack());
        step(&m, 500.0);
        assert!(m.under_attack());
        let ev = m.events().pop().map(|e| (e.baseline_rps, e.threshold_rps, e.end_time));
        assert!(matches!(ev, Some((b, t, None)) if (b - 100.0).abs() < 20.0 && t > 300.0));
        // The attack does not become the new normal, and it ends after the cooldown's quiet ticks.
        step(&m, 900.0);
        step(&m, 100.0);
        step(&m, 100.0);
        assert!(!m.under_attack());
        assert!(m.baseline() < 150.0);
        let ev = m.events().pop().map(|e| (e.peak_rps, e.end_time.is_some()));
        assert_eq!(ev, Some((900.0, true)));
    }

    #[test]
    fn never_an_attack_below_the_floor() {
        let (m, step) = mitigator();
        for _ in 0..50 {
            step(&m, 0.5);
        }
        step(&m, 9.0);
        assert!(!m.under_attack(), "18x the baseline but under attack_min_rps");
    }
}
