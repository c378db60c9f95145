//! Per-rule counters (allowed / blocked / counted / captcha / challenge), kept across ACL reloads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct RuleMetrics {
    pub allowed: AtomicU64,
    pub blocked: AtomicU64,
    pub counted: AtomicU64,
    pub captcha: AtomicU64,
    pub challenge: AtomicU64,
}

impl RuleMetrics {
    pub fn record(&self, action: &str) {
        let c = match action {
            "ALLOW" => &self.allowed,
            "BLOCK" => &self.blocked,
            "COUNT" => &self.counted,
            "CAPTCHA" => &self.captcha,
            "CHALLENGE" => &self.challenge,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
pub struct WafMetrics {
    rules: Mutex<BTreeMap<String, Arc<RuleMetrics>>>,
}

impl WafMetrics {
    /// The counters of one rule (`<web ACL or group>#<rule>`), made on first use.
    pub fn rule(&self, key: &str) -> Arc<RuleMetrics> {
        let mut m = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    pub fn snapshot(&self) -> Vec<(String, [u64; 5])> {
        let m = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    [
                        r.allowed.load(Ordering::Relaxed),
                        r.blocked.load(Ordering::Relaxed),
                        r.counted.load(Ordering::Relaxed),
                        r.captcha.load(Ordering::Relaxed),
                        r.challenge.load(Ordering::Relaxed),
                    ],
                )
            })
            .collect()
    }
}
