//! GetRandomPassword: AWS's character classes and options.

use rand::seq::IndexedRandom;
use rand::Rng;
use zeroize::Zeroizing;

use crate::error::{Result, SmError};

pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

#[derive(Clone, Debug, Default)]
pub struct PasswordSpec {
    pub length: Option<i64>,
    pub exclude_characters: String,
    pub exclude_numbers: bool,
    pub exclude_punctuation: bool,
    pub exclude_uppercase: bool,
    pub exclude_lowercase: bool,
    pub include_space: bool,
    /// Defaults to true.
    pub require_each_included_type: Option<bool>,
}

/// A password as GetRandomPassword makes it (cryptographically random; `rand::rng()` is a CSPRNG).
pub fn generate(spec: &PasswordSpec) -> Result<Zeroizing<String>> {
    let length = spec.length.unwrap_or(32);
    if !(1..=4096).contains(&length) {
        return Err(SmError::Validation(format!(
            "1 validation error detected: Value '{length}' at 'passwordLength' failed to satisfy constraint: Member must have value {}",
            if length < 1 { "greater than or equal to 1" } else { "less than or equal to 4096" }
        )));
    }
    let length = length as usize;
    let excluded = |c: char| spec.exclude_characters.contains(c);
    let mut classes: Vec<Vec<char>> = Vec::new();
    let mut push = |on: bool, chars: &mut dyn Iterator<Item = char>| {
        if on {
            let v: Vec<char> = chars.filter(|c| !excluded(*c)).collect();
            if !v.is_empty() {
                classes.push(v);
            }
        }
    };
    push(!spec.exclude_lowercase, &mut ('a'..='z'));
    push(!spec.exclude_uppercase, &mut ('A'..='Z'));
    push(!spec.exclude_numbers, &mut ('0'..='9'));
    push(!spec.exclude_punctuation, &mut PUNCTUATION.chars());
    push(spec.include_space, &mut std::iter::once(' '));
    if classes.is_empty() {
        return Err(SmError::InvalidParameter(
            "The password can't be generated because every character type is excluded.".into(),
        ));
    }
    let require_each = spec.require_each_included_type.unwrap_or(true);
    if require_each && length < classes.len() {
        return Err(SmError::InvalidParameter(format!(
            "The password length {length} is too short to include a character from each of the {} included character types.",
            classes.len()
        )));
    }
    let all: Vec<char> = classes.iter().flatten().copied().collect();
    let mut rng = rand::rng();
    let mut out: Vec<char> = Vec::with_capacity(length);
    if require_each {
        for class in &classes {
            if let Some(c) = class.choose(&mut rng) {
                out.push(*c);
            }
        }
    }
    while out.len() < length {
        if let Some(c) = all.choose(&mut rng) {
            out.push(*c);
        }
    }
    // Fisher–Yates, so the required characters are not always first.
    for i in (1..out.len()).rev() {
        let j = rng.random_range(0..=i);
        out.swap(i, j);
    }
    let s: String = out.iter().collect();
    out.iter_mut().for_each(|c| *c = '\0');
    Ok(Zeroizing::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults() {
        let p = generate(&PasswordSpec::default()).unwrap();
        assert_eq!(p.chars().count(), 32);
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(|c| PUNCTUATION.contains(c)));
        assert!(!p.contains(' '));
    }

    #[test]
    fn errors() {
        let all_out = PasswordSpec {
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_numbers: true,
            exclude_punctuation: true,
            ..Default::default()
        };
        assert!(matches!(generate(&all_out), Err(SmError::InvalidParameter(_))));
        assert!(matches!(
            generate(&PasswordSpec { length: Some(3), ..Default::default() }),
            Err(SmError::InvalidParameter(_))
        ));
        assert!(matches!(
            generate(&PasswordSpec { length: Some(0), ..Default::default() }),
            Err(SmError::Validation(_))
        ));
        assert!(matches!(
            generate(&PasswordSpec { length: Some(4097), ..Default::default() }),
            Err(SmError::Validation(_))
        ));
        let p =
            generate(&PasswordSpec { length: Some(3), require_each_included_type: Some(false), ..Default::default() });
        assert_eq!(p.unwrap().len(), 3);
    }

    proptest! {
        #[test]
        fn respects_options(len in 5i64..200, nl: bool, nu: bool, nn: bool, np: bool, sp: bool, excl in "[a-f0-5!#]{0,6}") {
            let spec = PasswordSpec {
                length: Some(len), exclude_characters: excl.clone(), exclude_lowercase: nl, exclude_uppercase: nu,
                exclude_numbers: nn, exclude_punctuation: np, include_space: sp, require_each_included_type: None,
            };
            match generate(&spec) {
                Ok(p) => {
                    prop_assert_eq!(p.chars().count() as i64, len);
                    for c in p.chars() {
                        prop_assert!(!excl.contains(c));
                        prop_assert!(!(nl && c.is_ascii_lowercase()));
                        prop_assert!(!(nu && c.is_ascii_uppercase()));
                        prop_assert!(!(nn && c.is_ascii_digit()));
                        prop_assert!(!(np && PUNCTUATION.contains(c)));
                        prop_assert!(sp || c != ' ');
                    }
                    if !nl { prop_assert!(p.chars().any(|c| c.is_ascii_lowercase())); }
                    if !nn && !"012345".chars().all(|d| excl.contains(d)) { prop_assert!(p.chars().any(|c| c.is_ascii_digit())); }
                    if sp { prop_assert!(p.contains(' ')); }
                }
                Err(_) => prop_assert!(nl && nu && nn && np && !sp),
            }
        }
    }
}
