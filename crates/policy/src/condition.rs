//! Condition operators: value parsing (numbers, dates, IPs, booleans, binary) and the compiled form
//! the fast evaluator runs.
//!
//! Semantics (IAM User Guide, "Condition operators" and "Single-valued vs. multivalued context keys"):
//! - several values for one key: OR; several keys or operators: AND.
//! - a negated operator (`StringNotEquals`, `NotIpAddress`, …) is true when the positive form matches
//!   none of the values.
//! - missing key: false, except negated operators (true), `...IfExists` (true) and `ForAllValues:` (true);
//!   `ForAnyValue:` is false. An empty multi-valued key counts as missing.
//! - `ForAllValues:` every context value must match; `ForAnyValue:` at least one.
//! - a context value or policy value that does not parse as the operator's type never matches.

use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;

use crate::ast::{Condition, ConditionOperator, Operator, SetQualifier, Version};
use crate::matching::{arn_match, atoms_of, glob_match, Atom, Glob};
use crate::variables::{self, Piece};
use crate::{Context, ContextValue};

/// A number as numeric operators read it.
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')) {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date as date operators read it: ISO 8601 (date; optional `Thh[:mm[:ss[.fff]]]`; `Z` or `±hh[:mm]`)
/// or epoch seconds. Returns nanoseconds since the epoch.
pub fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: i128 = whole.parse().ok()?;
        return secs.checked_mul(1_000_000_000)?.checked_add(frac_nanos(frac)?);
    }
    let (date, time) = s.split_once(['T', 't']).unwrap_or((s, ""));
    let mut dp = date.split('-');
    let year: i64 = dp.next()?.parse().ok()?;
    // IAM's own limits (java.util.Date); also keeps the arithmetic below in range.
    if !(-292_275_054..=292_278_993).contains(&year) {
        return None;
    }
    let month: u32 = dp.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: u32 = dp.next().map_or(Some(1), |d| d.parse().ok())?;
    if dp.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Split off the zone.
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else if let Some((c, z)) = time.rfind(['+', '-']).and_then(|i| time.split_at_checked(i)) {
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = z.get(1..).unwrap_or_default();
        let (h, m) = match z.split_once(':') {
            Some((h, m)) => (h, m),
            None if z.len() == 4 && z.is_ascii() => z.split_at_checked(2).unwrap_or((z, "0")),
            None => (z, "0"),
        };
        let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
        if h > 23 || m > 59 {
            return None;
        }
        (c, sign * (i64::from(h) * 3600 + i64::from(m) * 60))
    } else {
        (time, 0)
    };
    let mut cp = clock.split(':');
    let hour: u8 = match cp.next() {
        Some("") | None => 0,
        Some(h) => h.parse().ok()?,
    };
    let minute: u8 = cp.next().map_or(Some(0), |m| m.parse().ok())?;
    let (sec, nanos): (u8, i128) = match cp.next() {
        None => (0, 0),
        Some(sv) => {
            let (w, f) = sv.split_once('.').unwrap_or((sv, ""));
            (w.parse().ok()?, frac_nanos(f)?)
        }
    };
    if cp.next().is_some() || hour > 23 || minute > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(sec) - offset_secs;
    Some(secs as i128 * 1_000_000_000 + nanos)
}

fn frac_nanos(f: &str) -> Option<i128> {
    if f.is_empty() {
        return Some(0);
    }
    if f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i128 = f.parse().ok()?;
    Some(n * 10i128.pow(9 - f.len() as u32))
}

/// Days since 1970-01-01 (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A policy IP value: a CIDR block or a single address.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A context IP value (an address; a CIDR's network address is accepted too).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<IpNet>().ok().map(|n| n.addr()))
}

pub fn decode_binary(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()
}

/// Case-insensitive comparison for `StringEqualsIgnoreCase` (Unicode-aware, cheap for ASCII).
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// A string value that may hold policy variables.
#[derive(Clone, Debug)]
enum Str {
    Static(Box<str>),
    Dynamic(Vec<Piece>),
}

/// A pattern value (StringLike, Arn*) that may hold policy variables.
#[derive(Clone, Debug)]
enum Pat {
    Static(Glob),
    StaticArn(Box<[Atom]>),
    Dynamic(Vec<Piece>),
}

#[derive(Clone, Debug)]
enum Values {
    Strings(Vec<Str>),
    Patterns(Vec<Pat>),
    Numbers(Vec<Option<f64>>),
    Dates(Vec<Option<i128>>),
    Bools(Vec<Box<str>>),
    Binary(Vec<Option<Vec<u8>>>),
    Nets(Vec<Option<IpNet>>),
    Null(Vec<Option<bool>>),
}

/// A condition compiled for evaluation.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub op: ConditionOperator,
    /// As written (for explanations and missing-key reports).
    pub key: Box<str>,
    pub key_lower: Box<str>,
    values: Values,
}

impl Compiled {
    pub fn new(c: &Condition, version: Version) -> Compiled {
        let base = c.operator.base;
        let vals = &c.values;
        let values = match base {
            Operator::StringEquals
            | Operator::StringNotEquals
            | Operator::StringEqualsIgnoreCase
            | Operator::StringNotEqualsIgnoreCase => Values::Strings(
                vals.iter()
                    .map(|v| match variables::parse(v, version) {
                        Some(p) => Str::Dynamic(p),
                        None => Str::Static(v.as_str().into()),
                    })
                    .collect(),
            ),
            Operator::StringLike | Operator::StringNotLike => Values::Patterns(
                vals.iter()
                    .map(|v| match variables::parse(v, version) {
                        Some(p) => Pat::Dynamic(p),
                        None => Pat::Static(Glob::new(v, false)),
                    })
                    .collect(),
            ),
            Operator::ArnEquals | Operator::ArnLike | Operator::ArnNotEquals | Operator::ArnNotLike => {
                Values::Patterns(
                    vals.iter()
                        .map(|v| match variables::parse(v, version) {
                            Some(p) => Pat::Dynamic(p),
                            None => {
                                let mut a = Vec::new();
                                atoms_of(v, &mut a);
                                Pat::StaticArn(a.into())
                            }
                        })
                        .collect(),
                )
            }
            Operator::NumericEquals
            | Operator::NumericNotEquals
            | Operator::NumericLessThan
            | Operator::NumericLessThanEquals
            | Operator::NumericGreaterThan
            | Operator::NumericGreaterThanEquals => Values::Numbers(vals.iter().map(|v| parse_number(v)).collect()),
            Operator::DateEquals
            | Operator::DateNotEquals
            | Operator::DateLessThan
            | Operator::DateLessThanEquals
            | Operator::DateGreaterThan
            | Operator::DateGreaterThanEquals => Values::Dates(vals.iter().map(|v| parse_date(v)).collect()),
            Operator::Bool => Values::Bools(vals.iter().map(|v| v.to_ascii_lowercase().into()).collect()),
            Operator::BinaryEquals => Values::Binary(vals.iter().map(|v| decode_binary(v)).collect()),
            Operator::IpAddress | Operator::NotIpAddress => Values::Nets(vals.iter().map(|v| parse_net(v)).collect()),
            Operator::Null => Values::Null(
                vals.iter()
                    .map(|v| match v.to_ascii_lowercase().as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        Compiled { op: c.operator, key: c.key.as_str().into(), key_lower: c.key.to_ascii_lowercase().into(), values }
    }

    /// Evaluate against `ctx`; `missing` is set when the key is absent.
    pub fn eval(&self, ctx: &Context, missing: &mut bool) -> bool {
        let value = ctx.get_lower(&self.key_lower);
        let present: Option<&ContextValue> = match value {
            Some(ContextValue::List(l)) if l.is_empty() => None,
            v => v,
        };
        *missing = value.is_none();
        if let Values::Null(flags) = &self.values {
            let is_null = present.is_none();
            return flags.contains(&Some(is_null));
        }
        let negated = self.op.base.is_negated();
        let Some(value) = present else {
            return match self.op.set {
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => self.op.if_exists,
                SetQualifier::None => self.op.if_exists || negated,
            };
        };
        let one = |v: &str| self.positive(v, ctx) != negated;
        match (value, self.op.set) {
            (ContextValue::String(s), _) => one(s),
            (ContextValue::List(l), SetQualifier::ForAllValues) => l.iter().all(|v| one(v)),
            (ContextValue::List(l), SetQualifier::ForAnyValue) => l.iter().any(|v| one(v)),
            // A list without a set qualifier: the positive form matches if any value matches.
            (ContextValue::List(l), SetQualifier::None) => l.iter().any(|v| self.positive(v, ctx)) != negated,
        }
    }

    /// Whether the positive form of the operator matches context value `v` against any policy value.
    fn positive(&self, v: &str, ctx: &Context) -> bool {
        use Operator as O;
        let base = self.op.base;
        match &self.values {
            Values::Strings(vals) => {
                let ci = matches!(base, O::StringEqualsIgnoreCase | O::StringNotEqualsIgnoreCase);
                vals.iter().any(|p| match p {
                    Str::Static(s) => {
                        if ci {
                            eq_ignore_case(s, v)
                        } else {
                            **s == *v
                        }
                    }
                    Str::Dynamic(pieces) => variables::resolve_string(pieces, ctx).is_some_and(|s| {
                        if ci {
                            eq_ignore_case(&s, v)
                        } else {
                            s == v
                        }
                    }),
                })
            }
            Values::Patterns(vals) => {
                let arn = matches!(base, O::ArnEquals | O::ArnLike | O::ArnNotEquals | O::ArnNotLike);
                vals.iter().any(|p| match p {
                    Pat::Static(g) => g.matches(v),
                    Pat::StaticArn(a) => arn_match(a, v),
                    Pat::Dynamic(pieces) => {
                        let mut atoms = Vec::new();
                        variables::resolve_atoms(pieces, ctx, &mut atoms)
                            && if arn { arn_match(&atoms, v) } else { glob_match(&atoms, v.as_bytes(), false) }
                    }
                })
            }
            Values::Numbers(vals) => {
                let Some(n) = parse_number(v) else { return false };
                vals.iter().flatten().any(|p| compare(base, n.partial_cmp(p)))
            }
            Values::Dates(vals) => {
                let Some(d) = parse_date(v) else { return false };
                vals.iter().flatten().any(|p| compare(base, Some(d.cmp(p))))
            }
            Values::Bools(vals) => vals.iter().any(|p| p.eq_ignore_ascii_case(v)),
            Values::Binary(vals) => {
                let Some(b) = decode_binary(v) else { return false };
                vals.iter().flatten().any(|p| *p == b)
            }
            Values::Nets(vals) => {
                let Some(ip) = parse_ip(v) else { return false };
                vals.iter().flatten().any(|n| n.contains(&ip))
            }
            Values::Null(_) => false,
        }
    }
}

/// Numeric/date comparison by operator (negated forms compare as their positive form).
pub fn compare(op: Operator, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    let Some(ord) = ord else { return false };
    match op {
        Operator::NumericEquals | Operator::NumericNotEquals | Operator::DateEquals | Operator::DateNotEquals => {
            ord == Equal
        }
        Operator::NumericLessThan | Operator::DateLessThan => ord == Less,
        Operator::NumericLessThanEquals | Operator::DateLessThanEquals => ord != Greater,
        Operator::NumericGreaterThan | Operator::DateGreaterThan => ord == Greater,
        Operator::NumericGreaterThanEquals | Operator::DateGreaterThanEquals => ord != Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = |s| parse_date(s).map(|n| (n / 1_000_000_000) as i64);
        assert_eq!(d("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(d("2019-07-16T12:00:00Z"), Some(1_563_278_400));
        assert_eq!(d("2019-07-16T13:00:00+01:00"), Some(1_563_278_400));
        assert_eq!(d("2019-07-16T07:00:00-0500"), Some(1_563_278_400));
        assert_eq!(d("2019-07-16"), Some(1_563_235_200));
        assert_eq!(d("1563278400"), Some(1_563_278_400));
        assert_eq!(d("2000-02-29T00:00:00.5Z"), Some(951_782_400));
        assert_eq!(d("nope"), None);
        // Hostile context values must not overflow.
        assert_eq!(parse_date("99999999999999999999999999999999999999"), None);
        assert_eq!(parse_date("9999999999999999-01-01T00:00:00Z"), None);
        assert_eq!(parse_date("2020-01-01T00:00:-9223372036854775808Z"), None);
        assert_eq!(parse_date("2020-01-01T00:00+aé0"), None);
        assert_eq!(d("2019-13-01"), None);
    }

    #[test]
    fn numbers_and_ips() {
        assert_eq!(parse_number(" 10 "), Some(10.0));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("inf"), None);
        assert!(parse_net("203.0.113.0/24").unwrap().contains(&parse_ip("203.0.113.7").unwrap()));
        assert!(parse_net("2001:db8::/32").unwrap().contains(&parse_ip("2001:db8::1").unwrap()));
        assert!(parse_net("10.0.0.1").unwrap().contains(&parse_ip("10.0.0.1").unwrap()));
        // Case-insensitive is character by character (simple case mapping), not full case
        // folding: `ß` has no one-character capital, so "Straße" and "STRASSE" (six characters
        // against seven) differ, as a Java-style equalsIgnoreCase finds; the same word in either
        // case with `ß` kept matches.
        assert!(!eq_ignore_case("Straße", "STRASSE"));
        assert!(!eq_ignore_case("STRASSE", "Straße"));
        assert!(eq_ignore_case("straße", "STRAßE"));
        assert!(eq_ignore_case("ÉTÉ", "été"));
        assert!(!eq_ignore_case("ÉTÉ", "ETE"));
    }
}
