//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team}`, `${key, 'default'}`, and the escapes
//! `${*}` `${?}` `${$}` (a literal `*`, `?`, `$`). Substituted only under Version 2012-10-17; under 2008-10-17
//! (or no Version) `${...}` is literal text.
//!
//! A variable whose key is absent (or multi-valued) and has no default makes the value unusable: the
//! pattern matches nothing, as AWS treats a policy variable it cannot resolve.

use crate::ast::Version;
use crate::matching::{atoms_of, literal_atoms, Atom};
use crate::{Context, ContextValue};

/// A piece of a value that may contain policy variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text; `*`/`?` in it are wildcards when the value is a pattern.
    Text(String),
    /// A character that is always literal (from `${*}`, `${?}`, `${$}`).
    Literal(char),
    /// `${key}` or `${key, 'default'}`; `key` is lower-cased for lookup.
    Var { key: String, default: Option<String> },
}

/// Split `s` into pieces. `None` when there is nothing to substitute (the common case).
pub fn parse(s: &str, version: Version) -> Option<Vec<Piece>> {
    if version != Version::V2012 || !s.contains("${") {
        return None;
    }
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some((before, after)) = rest.split_once("${") {
        let Some((inner, after_close)) = after.split_once('}') else { break };
        let piece = match inner {
            "*" => Some(Piece::Literal('*')),
            "?" => Some(Piece::Literal('?')),
            "$" => Some(Piece::Literal('$')),
            _ => var(inner),
        };
        match piece {
            Some(p) => {
                text.push_str(before);
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(p);
            }
            // Not a variable: keep the text as written.
            None => {
                text.push_str(before);
                text.push_str("${");
                text.push_str(inner);
                text.push('}');
            }
        }
        rest = after_close;
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Some(pieces)
}

/// `key` or `key, 'default'`.
fn var(inner: &str) -> Option<Piece> {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d.strip_prefix('\'')?.strip_suffix('\'')?;
            (k.trim(), Some(d.to_string()))
        }
        None => (inner.trim(), None),
    };
    let valid = !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic() && b != b'$' && b != b'{' && b != b'}');
    valid.then(|| Piece::Var { key: key.to_ascii_lowercase(), default })
}

/// The value of a variable's key in `ctx`: a single string; multi-valued keys cannot be substituted.
fn lookup<'c>(ctx: &'c Context, key: &str, default: &'c Option<String>) -> Option<&'c str> {
    match ctx.get_lower(key) {
        Some(ContextValue::String(s)) => Some(s),
        Some(ContextValue::List(_)) | None => default.as_deref(),
    }
}

/// Substitute into a pattern's atoms (`*`/`?` in text are wildcards, substituted values are literal).
pub fn resolve_atoms(pieces: &[Piece], ctx: &Context, out: &mut Vec<Atom>) -> bool {
    for p in pieces {
        match p {
            Piece::Text(t) => atoms_of(t, out),
            Piece::Literal(c) => literal_atoms(c.encode_utf8(&mut [0u8; 4]), out),
            Piece::Var { key, default } => match lookup(ctx, key, default) {
                Some(v) => literal_atoms(v, out),
                None => return false,
            },
        }
    }
    true
}

/// Substitute into a plain string value.
pub fn resolve_string(pieces: &[Piece], ctx: &Context) -> Option<String> {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => s.push_str(t),
            Piece::Literal(c) => s.push(*c),
            Piece::Var { key, default } => s.push_str(lookup(ctx, key, default)?),
        }
    }
    Some(s)
}

/// The keys a value's variables reference (lower-cased).
pub fn keys(pieces: &[Piece]) -> impl Iterator<Item = &str> {
    pieces.iter().filter_map(|p| match p {
        Piece::Var { key, .. } => Some(key.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let p = parse("arn:aws:s3:::b/${aws:username}/*", Version::V2012).unwrap();
        let mut ctx = Context::new();
        ctx.insert("AWS:UserName", ContextValue::String("al*ce".into()));
        assert_eq!(resolve_string(&p, &ctx).unwrap(), "arn:aws:s3:::b/al*ce/*");
        let mut atoms = Vec::new();
        assert!(resolve_atoms(&p, &ctx, &mut atoms));
        assert!(crate::matching::glob_match(&atoms, b"arn:aws:s3:::b/al*ce/x", false));
        assert!(!crate::matching::glob_match(&atoms, b"arn:aws:s3:::b/alXce/x", false));
        assert!(parse("${aws:username}", Version::V2008).is_none());
        let p = parse("${aws:PrincipalTag/team, 'none'}-${*}${$}", Version::V2012).unwrap();
        assert_eq!(resolve_string(&p, &Context::new()).unwrap(), "none-*$");
        let p = parse("${aws:missing}", Version::V2012).unwrap();
        assert!(resolve_string(&p, &Context::new()).is_none());
        let p = parse("a${b", Version::V2012).unwrap();
        assert_eq!(resolve_string(&p, &Context::new()).unwrap(), "a${b");
    }
}
