//! SQL injection and XSS detection: libinjection's algorithms (the pure-Rust `libinjectionrs`, pinned),
//! plus, for SensitivityLevel HIGH, a few patterns libinjection leaves to rule sets.
//! Calls are guarded: a panic in the young detector must not take a request (or the process) down;
//! such an input counts as a match (fail closed) and is logged.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::LazyLock;

use regex::bytes::RegexSet;

/// Inputs longer than this are inspected in overlapping windows: libinjection's work is linear, but a
/// bounded window keeps one request's cost bounded too.
const WINDOW: usize = 16 * 1024;

fn guarded(f: impl FnOnce() -> bool) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            tracing::warn!("injection detector panicked on an input; treating it as a match");
            true
        }
    }
}

fn windows(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let step = WINDOW - 512;
    let n = if input.len() <= WINDOW { 1 } else { input.len().div_ceil(step) };
    (0..n).map(move |k| {
        let s = k * step;
        &input[s.min(input.len())..(s + WINDOW).min(input.len())]
    })
}

pub fn libinjection_sqli(input: &[u8]) -> bool {
    windows(input).any(|w| guarded(|| libinjectionrs::detect_sqli(w).is_injection()))
}

pub fn libinjection_xss(input: &[u8]) -> bool {
    windows(input).any(|w| guarded(|| libinjectionrs::detect_xss(w).is_injection()))
}

static SQLI_HIGH: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bunion\b[\s\S]{0,40}\bselect\b",
        r"(?i)\b(?:sleep|benchmark|pg_sleep|waitfor\s+delay)\s*\(?",
        r#"(?i)['"`]\s*(?:or|and|xor|\|\||&&)\s*['"`]?\w+['"`]?\s*(?:=|<|>|like\b|is\b)"#,
        r"(?i)\b(?:or|and)\s+\d+\s*(?:=|<|>)\s*\d+",
        r"(?i);\s*(?:drop|delete|insert|update|alter|create|shutdown|exec)\b",
        r"(?i)\b(?:information_schema|sysobjects|pg_catalog|sqlite_master)\b",
        r"(?i)\b(?:load_file|into\s+(?:out|dump)file|xp_cmdshell)\b",
        r"(?i)'\s*(?:--|#|/\*)",
    ])
    .unwrap_or_else(|_| RegexSet::empty())
});

static XSS_EXTRA: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)<\s*/?\s*(?:script|iframe|object|embed|applet|svg|math|base|form|meta|link|style)\b",
        r"(?i)\bon[a-z]{3,20}\s*=",
        r"(?i)(?:java|vb|live)script\s*:",
        r"(?i)\bsrcdoc\s*=|\bformaction\s*=",
        r"(?i)\bexpression\s*\(",
        r"(?i)data\s*:\s*text/html",
    ])
    .unwrap_or_else(|_| RegexSet::empty())
});

/// SqliMatchStatement: LOW is libinjection alone; HIGH adds patterns (more detections, more false positives).
pub fn is_sqli(input: &[u8], high: bool) -> bool {
    if input.len() < 2 {
        return false;
    }
    libinjection_sqli(input) || (high && SQLI_HIGH.is_match(input))
}

/// XssMatchStatement: libinjection, plus tag/handler/URL-scheme patterns it is known to miss.
pub fn is_xss(input: &[u8]) -> bool {
    if input.len() < 3 {
        return false;
    }
    libinjection_xss(input) || XSS_EXTRA.is_match(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqli_known_attacks() {
        for a in [
            "1' OR '1'='1",
            "1 OR 1=1",
            "' UNION SELECT username, password FROM users--",
            "1; DROP TABLE users",
            "admin'--",
            "1' AND SLEEP(5)#",
            "-1 UNION ALL SELECT NULL,NULL,NULL",
            "1) or (1=1",
            "' or ''='",
            "1 AND 1=CONVERT(int,(SELECT @@version))",
        ] {
            assert!(is_sqli(a.as_bytes(), false), "missed sqli: {a}");
        }
    }

    #[test]
    fn sqli_benign() {
        for b in [
            "hello world",
            "John O'Brien",
            "select a product",
            "2024-01-01",
            "user@example.com",
            "The union of two sets",
            "search?q=rust+async",
            "Don't stop me now",
            "12345",
        ] {
            assert!(!is_sqli(b.as_bytes(), false), "false positive: {b}");
        }
    }

    #[test]
    fn xss_known_attacks() {
        for a in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "javascript:alert(document.cookie)",
            "<iframe src=\"javascript:alert(1)\">",
            "\"><script>alert(1)</script>",
            "<body onload=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
        ] {
            assert!(is_xss(a.as_bytes()), "missed xss: {a}");
        }
    }

    #[test]
    fn xss_benign() {
        for b in ["hello world", "a < b and c > d", "I <3 Rust", "price: 5 > 3", "email me at a@b.c", "x=1&y=2"] {
            assert!(!is_xss(b.as_bytes()), "false positive: {b}");
        }
    }

    #[test]
    fn long_inputs_are_windowed() {
        let mut s = "a".repeat(40_000);
        s.push_str("' UNION SELECT password FROM users--");
        assert!(is_sqli(s.as_bytes(), false));
        let benign = "lorem ipsum ".repeat(5000);
        assert!(!is_sqli(benign.as_bytes(), false));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The detector must never panic (guarded anyway) nor hang on arbitrary bytes.
        #[test]
        fn detectors_total_on_arbitrary_bytes(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = libinjectionrs::detect_sqli(&v).is_injection();
            let _ = libinjectionrs::detect_xss(&v).is_injection();
        }

        #[test]
        fn detectors_total_on_sqlish_text(s in "[ -~]{0,120}") {
            let _ = libinjectionrs::detect_sqli(s.as_bytes()).is_injection();
            let _ = libinjectionrs::detect_xss(s.as_bytes()).is_injection();
        }
    }
}
