//! Console passwords: Argon2id hashing (PHC strings; the password itself is never stored) and the
//! account password policy's rules, with IAM's `PasswordPolicyViolation` wording.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The symbols IAM counts for `RequireSymbols`.
pub const SYMBOLS: &str = "!@#$%^&*()_+-=[]{}|'";

/// An account password policy (UpdateAccountPasswordPolicy). Unset members take IAM's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    pub minimum_length: u32,
    pub require_symbols: bool,
    pub require_numbers: bool,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub allow_users_to_change: bool,
    /// Days a password is valid; `None` = never expires.
    #[serde(default)]
    pub max_age_days: Option<u32>,
    /// How many previous passwords cannot be reused.
    #[serde(default)]
    pub reuse_prevention: Option<u32>,
    #[serde(default)]
    pub hard_expiry: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            minimum_length: 6,
            require_symbols: false,
            require_numbers: false,
            require_uppercase: false,
            require_lowercase: false,
            allow_users_to_change: false,
            max_age_days: None,
            reuse_prevention: None,
            hard_expiry: false,
        }
    }
}

/// Character classes present in a password.
struct Classes {
    upper: bool,
    lower: bool,
    number: bool,
    symbol: bool,
}

fn classes(password: &str) -> Classes {
    Classes {
        upper: password.chars().any(|c| c.is_ascii_uppercase()),
        lower: password.chars().any(|c| c.is_ascii_lowercase()),
        number: password.chars().any(|c| c.is_ascii_digit()),
        symbol: password.chars().any(|c| SYMBOLS.contains(c)),
    }
}

/// The first rule of `policy` that `password` breaks, in IAM's words. With no custom policy
/// (`None`), AWS's default policy applies: at least 8 characters and at least three of the four
/// character types.
pub fn violation(policy: Option<&PasswordPolicy>, password: &str) -> Option<String> {
    let len = password.chars().count();
    let c = classes(password);
    match policy {
        Some(p) => {
            if len < p.minimum_length as usize {
                return Some(format!("Password should have a minimum length of {}", p.minimum_length));
            }
            if p.require_uppercase && !c.upper {
                return Some("Password should have at least one uppercase letter".into());
            }
            if p.require_lowercase && !c.lower {
                return Some("Password should have at least one lowercase letter".into());
            }
            if p.require_numbers && !c.number {
                return Some("Password should have at least one number".into());
            }
            if p.require_symbols && !c.symbol {
                return Some("Password should have at least one symbol".into());
            }
            None
        }
        None => {
            if len < 8 {
                return Some("Password should have a minimum length of 8".into());
            }
            let kinds = [c.upper, c.lower, c.number, c.symbol].iter().filter(|b| **b).count();
            if kinds < 3 {
                return Some(
                    "Password should have at least three of the following character types: uppercase letters, \
                     lowercase letters, numbers, and symbols"
                        .into(),
                );
            }
            None
        }
    }
}

/// The message for a password that is one of the last `n`.
pub fn reuse_violation(n: u32) -> String {
    format!("Password should not be one of the previous {n} passwords")
}

/// An Argon2id PHC hash of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Whether `password` matches a PHC hash made by [`hash`] (false for malformed hashes).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_hide_the_password() {
        let h = hash("Corr3ct-Horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("Corr3ct-Horse"));
        assert!(verify("Corr3ct-Horse", &h));
        assert!(!verify("corr3ct-horse", &h));
        assert!(!verify("Corr3ct-Horse", "not a hash"));
        // Salted: the same password hashes differently each time.
        assert_ne!(h, hash("Corr3ct-Horse").unwrap());
    }

    #[test]
    fn custom_policy_rules_in_order() {
        let p = PasswordPolicy {
            minimum_length: 10,
            require_symbols: true,
            require_numbers: true,
            require_uppercase: true,
            require_lowercase: true,
            ..Default::default()
        };
        let v = |pw: &str| violation(Some(&p), pw);
        assert_eq!(v("Ab1!").as_deref(), Some("Password should have a minimum length of 10"));
        assert_eq!(v("abcdefghij1!").as_deref(), Some("Password should have at least one uppercase letter"));
        assert_eq!(v("ABCDEFGHIJ1!").as_deref(), Some("Password should have at least one lowercase letter"));
        assert_eq!(v("ABCDEfghij!!").as_deref(), Some("Password should have at least one number"));
        assert_eq!(v("ABCDEfghij12").as_deref(), Some("Password should have at least one symbol"));
        assert_eq!(v("ABCDEfghij1."), Some("Password should have at least one symbol".into()));
        assert_eq!(v("ABCDEfghij1|"), None);
        // Length counts characters, not bytes.
        let p6 = PasswordPolicy::default();
        assert_eq!(violation(Some(&p6), "ééééé").as_deref(), Some("Password should have a minimum length of 6"));
        assert_eq!(violation(Some(&p6), "éééééé"), None);
    }

    #[test]
    fn default_policy() {
        assert_eq!(violation(None, "Ab1!").as_deref(), Some("Password should have a minimum length of 8"));
        assert!(violation(None, "abcdefgh12").unwrap().starts_with("Password should have at least three"));
        assert!(violation(None, "ABCDEFGH!!").unwrap().starts_with("Password should have at least three"));
        assert_eq!(violation(None, "abcdefgh1A"), None);
        assert_eq!(violation(None, "abcdefgh-A"), None);
    }
}
