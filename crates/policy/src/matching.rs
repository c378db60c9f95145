//! Wildcard patterns (`*` any run of characters, `?` exactly one character), precompiled.
//!
//! A pattern is a sequence of atoms: a literal byte, `*` or `?`. Literal `*`/`?` (from `${*}`, `${?}` or a
//! substituted variable value) are plain bytes, so they never act as wildcards. `?` consumes one whole
//! UTF-8 character. Matching is the classic linear-time-in-practice greedy algorithm with one backtrack
//! point, and it never allocates.

/// One atom: 0..=255 a literal byte, or [`STAR`] / [`ONE`].
pub type Atom = u16;
pub const STAR: Atom = 256;
pub const ONE: Atom = 257;

/// Atoms of `s` where `*` and `?` are wildcards.
pub fn atoms_of(s: &str, out: &mut Vec<Atom>) {
    for b in s.bytes() {
        out.push(match b {
            b'*' => STAR,
            b'?' => ONE,
            b => b as Atom,
        });
    }
}

/// Atoms of `s` taken literally.
pub fn literal_atoms(s: &str, out: &mut Vec<Atom>) {
    out.extend(s.bytes().map(Atom::from));
}

/// A compiled pattern with fast paths for the common shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Glob {
    /// `*`
    Any,
    /// No wildcards.
    Exact(Box<[u8]>),
    /// `literal*`
    Prefix(Box<[u8]>),
    General(Box<[Atom]>),
}

impl Glob {
    /// Compile atoms; `lower` lower-cases literal ASCII letters (case-insensitive patterns).
    pub fn from_atoms(atoms: &[Atom], lower: bool) -> Glob {
        let lit = |a: &[Atom]| -> Box<[u8]> {
            a.iter().map(|&x| if lower { (x as u8).to_ascii_lowercase() } else { x as u8 }).collect()
        };
        let wild = |a: &Atom| *a == STAR || *a == ONE;
        match atoms {
            [STAR] => Glob::Any,
            a if !a.iter().any(wild) => Glob::Exact(lit(a)),
            [head @ .., STAR] if !head.iter().any(wild) => Glob::Prefix(lit(head)),
            a => Glob::General(
                a.iter().map(|&x| if lower && x < 256 { (x as u8).to_ascii_lowercase() as Atom } else { x }).collect(),
            ),
        }
    }

    pub fn new(pattern: &str, lower: bool) -> Glob {
        let mut a = Vec::with_capacity(pattern.len());
        atoms_of(pattern, &mut a);
        Glob::from_atoms(&a, lower)
    }

    /// Case-sensitive match.
    pub fn matches(&self, text: &str) -> bool {
        self.matches_with(text.as_bytes(), false)
    }

    /// Case-insensitive (ASCII) match; the pattern must have been compiled with `lower`.
    pub fn matches_ci(&self, text: &str) -> bool {
        self.matches_with(text.as_bytes(), true)
    }

    /// Whether some text that starts with `prefix` and goes on past it matches (ASCII
    /// case-insensitively; the pattern must have been compiled with `lower`). `s3*:Get*` can
    /// match a text starting `s3:`; `ec2:*` cannot.
    pub fn can_match_after_ci(&self, prefix: &str) -> bool {
        let prefix = prefix.as_bytes();
        match self {
            Glob::Any => true,
            Glob::Exact(e) => {
                e.len() > prefix.len() && e.get(..prefix.len()).is_some_and(|h| h.eq_ignore_ascii_case(prefix))
            }
            Glob::Prefix(p) => {
                let n = p.len().min(prefix.len());
                p.get(..n).zip(prefix.get(..n)).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
            }
            Glob::General(a) => glob_can_continue(a, prefix),
        }
    }

    fn matches_with(&self, text: &[u8], ci: bool) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(e) => {
                if ci {
                    e.eq_ignore_ascii_case(text)
                } else {
                    **e == *text
                }
            }
            Glob::Prefix(p) => {
                text.get(..p.len()).is_some_and(|head| if ci { p.eq_ignore_ascii_case(head) } else { **p == *head })
            }
            Glob::General(a) => glob_match(a, text, ci),
        }
    }
}

/// Byte length of the UTF-8 character starting with `b` (1 for stray continuation bytes).
fn char_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Whether the atoms can match some text that begins with `prefix` and has more after it: the
/// pattern's positions reachable after reading `prefix` (a set of states, as an NFA runs), one of
/// them not at the pattern's end. Any rest of a pattern is matched by some text, so that suffices.
fn glob_can_continue(pat: &[Atom], prefix: &[u8]) -> bool {
    let mut states = vec![false; pat.len() + 1];
    let close = |states: &mut Vec<bool>| {
        for p in 0..pat.len() {
            if states.get(p) == Some(&true) && pat.get(p) == Some(&STAR) {
                if let Some(s) = states.get_mut(p + 1) {
                    *s = true;
                }
            }
        }
    };
    if let Some(s) = states.first_mut() {
        *s = true;
    }
    close(&mut states);
    for &byte in prefix {
        let mut next = vec![false; pat.len() + 1];
        for (p, &on) in states.iter().enumerate() {
            if !on {
                continue;
            }
            let to = match pat.get(p) {
                Some(&STAR) => Some(p),
                Some(&ONE) => Some(p + 1),
                Some(&lit) if lit as u8 == byte.to_ascii_lowercase() => Some(p + 1),
                _ => None,
            };
            if let Some(s) = to.and_then(|t| next.get_mut(t)) {
                *s = true;
            }
        }
        states = next;
        close(&mut states);
    }
    states.iter().enumerate().any(|(p, &on)| on && (p < pat.len() || pat.last() == Some(&STAR)))
}

/// Match atoms against text. `ci`: compare ASCII letters case-insensitively (atoms already lower-cased).
pub fn glob_match(pat: &[Atom], text: &[u8], ci: bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&byte) = text.get(t) {
        if let Some(&atom) = pat.get(p) {
            match atom {
                STAR => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                ONE => {
                    t = (t + char_len(byte)).min(text.len());
                    p += 1;
                    continue;
                }
                lit => {
                    let c = if ci { byte.to_ascii_lowercase() } else { byte };
                    if lit as u8 == c {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                let next = (st + text.get(st).map_or(1, |&b| char_len(b))).min(text.len());
                star = Some((sp, next));
                p = sp + 1;
                t = next;
            }
            None => return false,
        }
    }
    while pat.get(p) == Some(&STAR) {
        p += 1;
    }
    p == pat.len()
}

/// ARN matching as ArnEquals/ArnLike do it: the six colon-separated parts are matched separately
/// (the last part keeps any further colons). `pattern` is given as atoms.
pub fn arn_match(pattern: &[Atom], arn: &str) -> bool {
    let mut pat_parts = pattern.splitn(6, |&a| a == b':' as Atom);
    let mut arn_parts = arn.splitn(6, ':');
    let mut n = 0;
    loop {
        match (pat_parts.next(), arn_parts.next()) {
            (Some(p), Some(a)) => {
                if !glob_match(p, a.as_bytes(), false) {
                    return false;
                }
                n += 1;
            }
            (None, None) => return n == 6,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = |p: &str, t: &str| Glob::new(p, false).matches(t);
        assert!(g("*", ""));
        assert!(g("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b"));
        assert!(!g("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket"));
        assert!(g("arn:aws:s3:::b?cket", "arn:aws:s3:::bücket"));
        assert!(!g("a?", "a"));
        assert!(g("*a*b*c", "xxaxxbxxc"));
        assert!(!g("*a*b*c", "xxaxxbxxcd"));
        assert!(g("arn:aws:iam::*", "arn:aws:iam::123:user/x"));
        assert!(!g("Arn", "arn"));
        assert!(Glob::new("S3:Get*", true).matches_ci("s3:GETOBJECT"));
        assert!(Glob::new("s3:*Object", true).matches_ci("s3:GetObject"));
        assert!(Glob::new("s3:G?tObject", true).matches_ci("S3:GETOBJECT"));
    }

    #[test]
    fn literal_star() {
        let mut a = Vec::new();
        literal_atoms("a*", &mut a);
        assert!(glob_match(&a, b"a*", false));
        assert!(!glob_match(&a, b"ab", false));
    }

    #[test]
    fn arns() {
        let m = |p: &str, a: &str| {
            let mut v = Vec::new();
            atoms_of(p, &mut v);
            arn_match(&v, a)
        };
        assert!(m("arn:aws:iam::*:role/*", "arn:aws:iam::123456789012:role/x/y"));
        assert!(m("arn:aws:sns:*:*:topic:sub", "arn:aws:sns:us-east-1:1:topic:sub"));
        assert!(!m("arn:aws:*", "arn:aws:iam::1:role/x"));
        assert!(!m("arn:aws:iam::1:role/x", "not-an-arn"));
    }
}

#[cfg(test)]
mod continue_tests {
    use super::Glob;

    #[test]
    fn patterns_that_can_name_an_action_of_a_service() {
        let yes = ["*", "s3*", "s*:Get*", "*:*", "?3:*", "s3:GetObject", "*Object", "s3?*"];
        let no = ["ec2:*", "s3", "s4*", "?4:*", "s3:", "iam*:x"];
        for p in yes {
            assert!(Glob::new(p, true).can_match_after_ci("s3:"), "{p}");
        }
        for p in no {
            assert!(!Glob::new(p, true).can_match_after_ci("s3:"), "{p}");
        }
        assert!(Glob::new("S3:*", true).can_match_after_ci("s3:"));
    }
}
