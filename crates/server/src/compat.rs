//! Conventions of other emulators, so existing test setups switch to Rampart with a URL change.
//!
//! * LocalStack: `GET /_localstack/health` (always on) and `--dev` defaults (resolved by the CLI).
//! * moto's server mode (`--compat moto`): account 123456789012, `POST /moto-api/reset`,
//!   `POST /moto-api/reset-auth` and the `INITIAL_NO_AUTH_ACTION_COUNT` protocol implemented by
//!   [`NoAuthBudget`]: until the budget is spent, calls skip authentication and authorization and
//!   unknown access keys act as the account root; afterwards every call is enforced as usual.

use std::sync::Mutex;

/// Which emulator's conventions `rampart serve` follows besides its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompatMode {
    Moto,
}

/// The account moto's server mode uses.
pub const MOTO_ACCOUNT_ID: &str = "123456789012";

/// moto's `INITIAL_NO_AUTH_ACTION_COUNT`: how many calls run before enforcement starts
/// (`None` = never, moto's default "inf").
#[derive(Debug)]
pub struct NoAuthBudget {
    state: Mutex<Budget>,
}

#[derive(Debug)]
struct Budget {
    /// The configured count, as `reset-auth` reports it back.
    configured: Option<u64>,
    /// Calls left before enforcement (ignored when `configured` is `None`).
    remaining: u64,
}

impl NoAuthBudget {
    pub fn new(count: Option<u64>) -> Self {
        NoAuthBudget { state: Mutex::new(Budget { configured: count, remaining: count.unwrap_or(0) }) }
    }

    /// Start counting again with `count`; returns the previous configured count.
    pub fn reset(&self, count: Option<u64>) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let previous = s.configured;
        *s = Budget { configured: count, remaining: count.unwrap_or(0) };
        previous
    }

    /// Spend one call of the budget: `true` when this call skips authentication and authorization.
    pub fn take(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.configured {
            None => true,
            Some(_) if s.remaining > 0 => {
                s.remaining -= 1;
                true
            }
            Some(_) => false,
        }
    }
}

/// Parse a `reset-auth` body or the `INITIAL_NO_AUTH_ACTION_COUNT` variable: a number or `inf`.
pub fn parse_no_auth_count(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim().trim_matches('"');
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Ok(None);
    }
    t.parse::<u64>().map(Some).map_err(|_| format!("expected a number or \"inf\", got {t:?}"))
}

/// How moto writes the count back: the number, or `inf`.
pub fn format_no_auth_count(count: Option<u64>) -> String {
    count.map_or_else(|| "inf".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_down_then_enforces() {
        let b = NoAuthBudget::new(Some(2));
        assert!(b.take());
        assert!(b.take());
        assert!(!b.take());
        assert!(!b.take());
        assert_eq!(b.reset(None), Some(2));
        assert!((0..1000).all(|_| b.take()));
        assert_eq!(b.reset(Some(0)), None);
        assert!(!b.take());
    }

    #[test]
    fn counts_parse_like_moto() {
        assert_eq!(parse_no_auth_count("inf"), Ok(None));
        assert_eq!(parse_no_auth_count(" 4\n"), Ok(Some(4)));
        assert_eq!(parse_no_auth_count("\"7\""), Ok(Some(7)));
        assert!(parse_no_auth_count("-1").is_err());
        assert!(parse_no_auth_count("many").is_err());
        assert_eq!(format_no_auth_count(None), "inf");
        assert_eq!(format_no_auth_count(Some(3)), "3");
    }
}
