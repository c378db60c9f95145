//! Rotation schedules: `AutomaticallyAfterDays`, `rate(…)` and AWS's six-field `cron(…)`.

use time::{Duration, OffsetDateTime, Weekday};

use crate::error::{Result, SmError};

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<Cron>),
}

fn invalid(expr: &str) -> SmError {
    SmError::InvalidParameter(format!("The schedule expression {expr} is invalid."))
}

/// Parse `rate(N hours|days)` (4 hours to 1000 days) or `cron(min hour dom month dow year)`.
pub fn parse_expression(expr: &str) -> Result<Schedule> {
    let e = expr.trim();
    if let Some(inner) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        let mut it = inner.split_whitespace();
        let n: i64 = it.next().and_then(|n| n.parse().ok()).ok_or_else(|| invalid(expr))?;
        let unit = it.next().ok_or_else(|| invalid(expr))?;
        if it.next().is_some() {
            return Err(invalid(expr));
        }
        let d = match unit {
            "hour" | "hours" => Duration::hours(n),
            "day" | "days" => Duration::days(n),
            _ => return Err(invalid(expr)),
        };
        if d < Duration::hours(4) || d > Duration::days(1000) {
            return Err(SmError::InvalidParameter(
                "The rotation interval must be between 4 hours and 1000 days.".into(),
            ));
        }
        return Ok(Schedule::Every(d));
    }
    if let Some(inner) = e.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        return Cron::parse(inner).map(|c| Schedule::Cron(Box::new(c))).ok_or_else(|| invalid(expr));
    }
    Err(invalid(expr))
}

/// `Duration` of the rotation window: `Nh` (1–24 hours) or `Nm`.
pub fn parse_window(d: &str) -> Result<Duration> {
    let bad = || SmError::InvalidParameter(format!("The rotation window duration {d} is invalid."));
    let (n, minutes_per_unit) = if let Some(n) = d.strip_suffix('h') {
        (n, 60)
    } else if let Some(n) = d.strip_suffix('m') {
        (n, 1)
    } else {
        return Err(bad());
    };
    let n: i64 = n.parse().map_err(|_| bad())?;
    let dur =
        Duration::minutes(n.checked_mul(minutes_per_unit).filter(|m| m.unsigned_abs() <= 24 * 60).ok_or_else(bad)?);
    if dur < Duration::hours(1) || dur > Duration::hours(24) {
        return Err(bad());
    }
    Ok(dur)
}

impl Schedule {
    /// The first rotation time strictly after `after`.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every(d) => Some(after + *d),
            Schedule::Cron(c) => c.next_after(after),
        }
    }
}

/// A parsed AWS cron expression (UTC). Day-of-week 1–7 = SUN–SAT.
#[derive(Clone, Debug, PartialEq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    /// `None` = `?` (any).
    days_of_month: Option<Vec<bool>>,
    months: Vec<bool>,
    days_of_week: Option<Vec<bool>>,
    years: Option<(i32, i32, i32)>,
}

fn field(s: &str, min: u32, max: u32, names: &[&str]) -> Option<Vec<bool>> {
    let mut set = vec![false; max as usize + 1];
    let value = |v: &str| -> Option<u32> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Some(i as u32 + min);
        }
        v.parse().ok().filter(|n| (min..=max).contains(n))
    };
    for part in s.split(',') {
        // An increment beyond the field's span is refused, as AWS refuses `0/60` minutes.
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, st.parse::<u32>().ok().filter(|s| (1..=max).contains(s))?),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo > hi {
            return None;
        }
        for i in (lo..=hi).step_by(step as usize) {
            *set.get_mut(i as usize)? = true;
        }
    }
    Some(set)
}

/// The years an AWS cron expression may name (EventBridge's range).
const MIN_YEAR: i32 = 1970;
const MAX_YEAR: i32 = 2199;

impl Cron {
    pub fn parse(s: &str) -> Option<Cron> {
        let f: Vec<&str> = s.split_whitespace().collect();
        let &[minutes, hours, dom, months, dow, years] = f.as_slice() else { return None };
        const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
        const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        let dom = if dom == "?" { None } else { Some(field(dom, 1, 31, &[])?) };
        let dow = if dow == "?" { None } else { Some(field(dow, 1, 7, DAYS)?) };
        // AWS requires exactly one of day-of-month / day-of-week to be `?`.
        if dom.is_some() == dow.is_some() {
            return None;
        }
        let years = if years == "*" {
            None
        } else {
            let (r, step) = match years.split_once('/') {
                Some((r, s)) => (r, s.parse().ok().filter(|s: &i32| (1..=MAX_YEAR - MIN_YEAR).contains(s))?),
                None => (years, 1),
            };
            let year = |y: &str| y.parse().ok().filter(|y: &i32| (MIN_YEAR..=MAX_YEAR).contains(y));
            let (a, b) = match r.split_once('-') {
                Some((a, b)) => (year(a)?, year(b)?),
                None if r == "*" && years.contains('/') => (MIN_YEAR, MAX_YEAR),
                None => {
                    let y = year(r)?;
                    (y, if years.contains('/') { MAX_YEAR } else { y })
                }
            };
            if a > b {
                return None;
            }
            Some((a, b, step))
        };
        Some(Cron {
            minutes: field(minutes, 0, 59, &[])?,
            hours: field(hours, 0, 23, &[])?,
            days_of_month: dom,
            months: field(months, 1, 12, MONTHS)?,
            days_of_week: dow,
            years,
        })
    }

    fn day_matches(&self, t: OffsetDateTime) -> bool {
        let year_ok =
            self.years.is_none_or(|(a, b, step)| t.year() >= a && t.year() <= b && (t.year() - a) % step == 0);
        let set = |s: &[bool], i: usize| s.get(i).copied().unwrap_or(false);
        let month_ok = set(&self.months, u8::from(t.month()) as usize);
        let dom_ok = self.days_of_month.as_ref().is_none_or(|d| set(d, t.day() as usize));
        let dow = match t.weekday() {
            Weekday::Sunday => 1,
            Weekday::Monday => 2,
            Weekday::Tuesday => 3,
            Weekday::Wednesday => 4,
            Weekday::Thursday => 5,
            Weekday::Friday => 6,
            Weekday::Saturday => 7,
        };
        let dow_ok = self.days_of_week.as_ref().is_none_or(|d| set(d, dow));
        year_ok && month_ok && dom_ok && dow_ok
    }

    /// The first matching minute strictly after `after` (searching up to ~5 years ahead).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let start = after.replace_second(0).ok()?.replace_nanosecond(0).ok()? + Duration::minutes(1);
        let mut day = start.replace_hour(0).ok()?.replace_minute(0).ok()?;
        for _ in 0..(366 * 5) {
            if self.day_matches(day) {
                for h in 0..24u8 {
                    if !self.hours.get(h as usize).copied().unwrap_or(false) {
                        continue;
                    }
                    for m in 0..60u8 {
                        if !self.minutes.get(m as usize).copied().unwrap_or(false) {
                            continue;
                        }
                        let t = day.replace_hour(h).ok()?.replace_minute(m).ok()?;
                        if t >= start {
                            return Some(t);
                        }
                    }
                }
            }
            day += Duration::days(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rates() {
        assert_eq!(parse_expression("rate(10 days)").unwrap(), Schedule::Every(Duration::days(10)));
        assert_eq!(parse_expression("rate(4 hours)").unwrap(), Schedule::Every(Duration::hours(4)));
        assert!(parse_expression("rate(3 hours)").is_err());
        assert!(parse_expression("rate(1001 days)").is_err());
        assert!(parse_expression("rate(2 weeks)").is_err());
        assert!(parse_expression("every day").is_err());
    }

    #[test]
    fn crons() {
        let c = parse_expression("cron(0 16 1,15 * ? *)").unwrap();
        let t = datetime!(2026-03-01 16:00 UTC);
        assert_eq!(c.next_after(t), Some(datetime!(2026-03-15 16:00 UTC)));
        assert_eq!(c.next_after(datetime!(2026-03-01 15:59:30 UTC)), Some(t));
        // 10:00 on the first Sunday… here: every Sunday (1 = SUN).
        let c = parse_expression("cron(0 10 ? * SUN *)").unwrap();
        assert_eq!(c.next_after(datetime!(2026-11-29 10:00 UTC)), Some(datetime!(2026-12-06 10:00 UTC)));
        let c = parse_expression("cron(0/30 8-9 ? * 2-6 *)").unwrap();
        assert_eq!(c.next_after(datetime!(2026-11-27 09:45 UTC)), Some(datetime!(2026-11-30 08:00 UTC)));
        assert!(parse_expression("cron(0 10 * * * *)").is_err());
        assert!(parse_expression("cron(0 10 ? * ? *)").is_err());
        assert!(parse_expression("cron(0 25 ? * MON *)").is_err());
        assert!(parse_expression("cron(0 10 ? *)").is_err());
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("3h").unwrap(), Duration::hours(3));
        assert!(parse_window("25h").is_err());
        assert!(parse_window("h").is_err());
        assert!(parse_window("").is_err());
        // A multi-byte last character is no unit (splitting before it by bytes panicked).
        assert!(parse_window("3日").is_err());
        assert!(parse_window("9223372036854775807h").is_err());
    }

    /// Huge increments overflowed `i += step` (a panic in debug builds, an endless loop in release);
    /// AWS refuses increments beyond the field's range and years outside 1970–2199.
    #[test]
    fn out_of_range_steps_and_years_are_invalid() {
        for expr in [
            "cron(1/4294967295 * ? * MON *)",
            "cron(0 1/4294967295 ? * MON *)",
            "cron(0/60 10 ? * MON *)",
            "cron(0 0/24 ? * MON *)",
            "cron(0 10 1/32 * ? *)",
            "cron(0 10 ? 1/13 MON *)",
            "cron(0 10 ? * 1/8 *)",
            "cron(0 10 ? * MON 2026/2147483647)",
            "cron(0 10 ? * MON -2147483648-2030)",
            "cron(0 10 ? * MON 2030-2026)",
            "cron(0 10 ? * MON 99999)",
        ] {
            assert!(
                matches!(parse_expression(expr), Err(SmError::InvalidParameter(_))),
                "{expr} should be InvalidParameter"
            );
        }
        let c = parse_expression("cron(0/59 10 ? * MON 2026/3)").unwrap();
        assert_eq!(c.next_after(datetime!(2026-11-30 10:00 UTC)), Some(datetime!(2026-11-30 10:59 UTC)));
        let c = parse_expression("cron(0 10 ? * MON */1)").unwrap();
        assert!(c.next_after(datetime!(2026-11-30 10:00 UTC)).is_some());
    }
}
