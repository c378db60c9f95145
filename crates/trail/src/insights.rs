//! CloudTrail Insights for trails: the detector behind `PutInsightSelectors`.
//!
//! For a logging trail with Insights selectors, every recorded event the trail selects is counted
//! once, per UTC minute of its `eventTime`, in a *series*:
//!
//! - `ApiCallRateInsight`: write management events (`readOnly: false`), per Region, event source
//!   and event name;
//! - `ApiErrorRateInsight`: events with an `errorCode` (read or write), per Region, event source,
//!   event name and error code.
//!
//! A minute `m` of a series is **unusual** when its count `c` satisfies all of
//! `c ≥ min_count`, `c > μ + sigmas·σ` and `c ≥ factor·μ`, where `μ` and `σ` are the mean and the
//! standard deviation of the series' per-minute counts (zero minutes included) over the
//! **baseline window**: the `baseline_minutes` (7 days, as AWS) before `m`, cut at the minute
//! Insights were turned on. No minute is judged before the window holds `min_baseline_minutes`.
//! The first unusual minute starts an Insights event (`state: Start`, written at once, even while
//! the minute is still running: a count only grows). The baseline is then frozen; the Insights
//! event ends at the first *complete* minute that is no longer unusual against it (`state: End`,
//! `insightDuration` = minutes from start to end). See docs/cloudtrail.md.
//!
//! The time is the [`Clock`] the service was started with, so tests drive detection without
//! waiting.

use std::collections::BTreeMap;

use rampart_store::{Read, ReadExt, StoreError, Transaction, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::audit::{event_key, seq_of_key, StoredEvent, EVENTS_TABLE, META_TABLE};
use crate::delivery::TrailDoc;
use crate::record::{iso_time, new_uuid};

/// Detector state per trail: key `{account}/{trail}`.
pub const STATE_TABLE: &str = "trail_insights";
/// Insights events: key `{account}/{inverted sequence}` (newest first), rows as
/// [`StoredEvent`] plus `trail` (the ARN of the trail that logged it).
pub const INSIGHT_EVENTS_TABLE: &str = "trail_insight_events";
/// Per-minute counts of a series, one row per UTC day: key
/// `{account}/{trail}/{series}/{day:08}`, value `{minute of the day: events}` (non-zero only).
/// Kept out of [`State`] so the state stays small however long the history.
pub const COUNTS_TABLE: &str = "trail_insight_counts";
/// In [`META_TABLE`]: the last Insights event sequence number given out.
const SEQ_KEY: &str = "insight_seq";

/// The two Insights types.
pub const CALL_RATE: &str = "ApiCallRateInsight";
pub const ERROR_RATE: &str = "ApiErrorRateInsight";

/// Per-minute counts are kept this long (ListInsightsMetricData's 90 days).
const KEEP_MINUTES: i64 = 90 * 1440;
/// Attributions in the baseline are tallied per day; days older than this are dropped.
const KEEP_DAYS: i64 = 8;
/// At most this many values per attribution list (AWS's top five).
const TOP: usize = 5;

/// Where time comes from: the system clock, or a test's.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The detector's window sizes and thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InsightsConfig {
    /// The baseline window before a minute (AWS: seven days).
    pub baseline_minutes: i64,
    /// No minute is judged before the baseline window holds this many minutes.
    pub min_baseline_minutes: i64,
    /// An unusual minute has at least this many events.
    pub min_count: u32,
    /// … more than `μ + sigmas·σ` …
    pub sigmas: f64,
    /// … and at least `factor·μ`.
    pub factor: f64,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        InsightsConfig {
            baseline_minutes: 7 * 1440,
            min_baseline_minutes: 1440,
            min_count: 5,
            sigmas: 3.0,
            factor: 2.0,
        }
    }
}

impl InsightsConfig {
    /// The defaults, with `RAMPART_TRAIL_INSIGHTS_MIN_BASELINE_MINUTES` (0 … 10080) and
    /// `RAMPART_TRAIL_INSIGHTS_MIN_COUNT` (≥ 1) when set.
    pub fn from_env() -> Result<Self, String> {
        let mut c = InsightsConfig::default();
        if let Ok(v) = std::env::var("RAMPART_TRAIL_INSIGHTS_MIN_BASELINE_MINUTES") {
            c.min_baseline_minutes =
                v.parse::<i64>().ok().filter(|n| (0..=c.baseline_minutes).contains(n)).ok_or_else(|| {
                    format!("RAMPART_TRAIL_INSIGHTS_MIN_BASELINE_MINUTES must be 0 to 10080, got {v:?}")
                })?;
        }
        if let Ok(v) = std::env::var("RAMPART_TRAIL_INSIGHTS_MIN_COUNT") {
            c.min_count = v
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("RAMPART_TRAIL_INSIGHTS_MIN_COUNT must be a positive integer, got {v:?}"))?;
        }
        Ok(c)
    }
}

/// An Insights event in progress.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Open {
    pub shared_id: String,
    /// The minute it started.
    pub start: i64,
    /// The baseline it is judged against (frozen at the start).
    pub mean: f64,
    pub sd: f64,
    pub baseline_minutes: i64,
}

/// One series: an Insights type on one API (and, for error rates, one error code).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Series {
    pub insight_type: String,
    pub region: String,
    pub source: String,
    pub name: String,
    #[serde(default)]
    pub error_code: Option<String>,
    /// Events per minute (minute = Unix seconds / 60), non-zero minutes only: the working set
    /// loaded from [`COUNTS_TABLE`] for judging.
    #[serde(skip)]
    pub counts: BTreeMap<i64, u32>,
    /// Events counted in this analysis, not yet stored.
    #[serde(skip)]
    pub fresh: BTreeMap<i64, u32>,
    /// The newest minute with events.
    #[serde(default)]
    pub last_minute: i64,
    /// Every minute up to this one has been judged.
    pub judged: i64,
    #[serde(default)]
    pub open: Option<Open>,
    /// Per day (Unix seconds / 86400): `attribute\tvalue` → events.
    #[serde(default)]
    pub days: BTreeMap<i64, BTreeMap<String, u32>>,
}

/// The detector's state for one trail.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// The minute Insights were turned on: the baseline window starts here at the earliest.
    pub since: i64,
    /// The last audit record sequence number counted.
    pub seq: u64,
    /// The Insights types on.
    pub types: Vec<String>,
    /// The last day count rows were pruned.
    #[serde(default)]
    pub pruned_day: i64,
    /// Keyed by [`series_key`].
    #[serde(default)]
    pub series: BTreeMap<String, Series>,
}

/// The key of a series.
pub fn series_key(insight_type: &str, region: &str, source: &str, name: &str, error: Option<&str>) -> String {
    format!("{insight_type}|{region}|{source}|{name}|{}", error.unwrap_or(""))
}

/// A new state for a trail whose Insights are turned on at `now`, counting records after `seq`.
pub fn fresh_state(now: OffsetDateTime, seq: u64, types: Vec<String>) -> State {
    let since = minute_of(now.unix_timestamp());
    State { since, seq, types, pruned_day: since.div_euclid(1440), series: BTreeMap::new() }
}

fn minute_of(t: i64) -> i64 {
    t.div_euclid(60)
}

/// What the detector needs of a record beyond the stored lookup fields.
#[derive(Default, Deserialize)]
struct Facts {
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "userAgent", default)]
    user_agent: Option<String>,
    #[serde(rename = "userIdentity", default)]
    identity: Option<IdentityArn>,
}

#[derive(Default, Deserialize)]
struct IdentityArn {
    #[serde(default)]
    arn: Option<String>,
}

impl Facts {
    fn of(e: &StoredEvent) -> Facts {
        serde_json::from_str(&e.event).unwrap_or_default()
    }

    fn attributes(&self, insight_type: &str) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("userIdentityArn", self.identity.as_ref().and_then(|i| i.arn.clone()).unwrap_or_else(|| "null".into())),
            ("userAgent", self.user_agent.clone().unwrap_or_else(|| "null".into())),
        ];
        // Error rate Insights need no error code attribution (AWS shows it for call rates only).
        if insight_type == CALL_RATE {
            out.push(("errorCode", self.error_code.clone().unwrap_or_else(|| "null".into())));
        }
        out
    }
}

/// The series an event counts in, with the trail's types on.
fn series_of(types: &[String], e: &StoredEvent, f: &Facts) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for ty in types {
        match ty.as_str() {
            CALL_RATE if !e.ro => {
                out.push((series_key(CALL_RATE, &e.region, &e.source, &e.name, None), ty.clone(), None))
            }
            ERROR_RATE => {
                if let Some(code) = &f.error_code {
                    out.push((
                        series_key(ERROR_RATE, &e.region, &e.source, &e.name, Some(code)),
                        ty.clone(),
                        Some(code.clone()),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

impl State {
    /// Count one record (already selected by the trail).
    pub fn count(&mut self, e: &StoredEvent) {
        let minute = minute_of(e.t);
        if minute < self.since {
            return;
        }
        let f = Facts::of(e);
        for (key, ty, code) in series_of(&self.types, e, &f) {
            let s = self.series.entry(key).or_insert_with(|| Series {
                insight_type: ty.clone(),
                region: e.region.clone(),
                source: e.source.clone(),
                name: e.name.clone(),
                error_code: code,
                judged: self.since - 1,
                ..Default::default()
            });
            *s.fresh.entry(minute).or_default() += 1;
            s.last_minute = s.last_minute.max(minute);
            let day = s.days.entry(e.t.div_euclid(86_400)).or_default();
            for (attr, value) in f.attributes(&ty) {
                *day.entry(format!("{attr}\t{value}")).or_default() += 1;
            }
        }
    }
}

/// A change of an Insights event: started, or ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub series: String,
    pub shared_id: String,
    pub start: i64,
    /// `None` for a start.
    pub end: Option<i64>,
    /// Events per minute: over the first minute (start) or the whole duration (end).
    pub insight_average: f64,
    pub baseline_average: f64,
    pub baseline_minutes: i64,
}

/// Mean and standard deviation of the per-minute counts in `[from, to)`.
fn stats(counts: &BTreeMap<i64, u32>, from: i64, to: i64) -> (f64, f64) {
    let n = to - from;
    if n <= 0 {
        return (0.0, 0.0);
    }
    let (mut sum, mut sq) = (0f64, 0f64);
    for (_, c) in counts.range(from..to) {
        let c = f64::from(*c);
        sum += c;
        sq += c * c;
    }
    let n = n as f64;
    let mean = sum / n;
    (mean, (sq / n - mean * mean).max(0.0).sqrt())
}

impl InsightsConfig {
    fn unusual(&self, c: u32, mean: f64, sd: f64) -> bool {
        let c = f64::from(c);
        c >= f64::from(self.min_count) && c > mean + self.sigmas * sd && c >= self.factor * mean
    }
}

impl Series {
    /// Judge the minutes up to `now`: a start may be seen in the running minute, an end only in
    /// a complete one. Returns the transitions, oldest first.
    pub fn judge(&mut self, key: &str, since: i64, now: i64, cfg: &InsightsConfig) -> Vec<Transition> {
        let current = minute_of(now);
        let mut out = Vec::new();
        loop {
            match self.open.clone() {
                None => {
                    // Only a minute with events can start an Insights event.
                    let next = self.counts.range(self.judged + 1..=current).next().map(|(m, c)| (*m, *c));
                    let Some((m, c)) = next else {
                        self.judged = self.judged.max(current - 1);
                        break;
                    };
                    let from = since.max(m - cfg.baseline_minutes);
                    let enough = m - from >= cfg.min_baseline_minutes;
                    let (mean, sd) = stats(&self.counts, from, m);
                    if enough && cfg.unusual(c, mean, sd) {
                        let open = Open { shared_id: new_uuid(), start: m, mean, sd, baseline_minutes: m - from };
                        out.push(Transition {
                            series: key.to_string(),
                            shared_id: open.shared_id.clone(),
                            start: m,
                            end: None,
                            insight_average: f64::from(c),
                            baseline_average: mean,
                            baseline_minutes: m - from,
                        });
                        self.open = Some(open);
                        self.judged = m - 1;
                    } else if m < current {
                        self.judged = m;
                    } else {
                        break;
                    }
                }
                Some(open) => {
                    let m = self.judged + 1;
                    if m >= current {
                        break;
                    }
                    self.judged = m;
                    let c = self.counts.get(&m).copied().unwrap_or(0);
                    if m == open.start || cfg.unusual(c, open.mean, open.sd) {
                        continue;
                    }
                    let duration = m - open.start;
                    let total: u64 = self.counts.range(open.start..m).map(|(_, c)| u64::from(*c)).sum();
                    out.push(Transition {
                        series: key.to_string(),
                        shared_id: open.shared_id.clone(),
                        start: open.start,
                        end: Some(m),
                        insight_average: total as f64 / duration.max(1) as f64,
                        baseline_average: open.mean,
                        baseline_minutes: open.baseline_minutes,
                    });
                    self.open = None;
                }
            }
        }
        out
    }

    /// The baseline attributions: per attribute, the top values' events per minute over the
    /// baseline window, tallied by whole days (AWS rounds its baseline to days too), less
    /// `from_start` (the series' records from the start minute on, which the start's day holds).
    fn baseline_attributions(&self, start: i64, baseline_minutes: i64, from_start: &Tally) -> Attributions {
        let mut totals: Tally = BTreeMap::new();
        let (first_day, last_day) = ((start - baseline_minutes).div_euclid(1440), start.div_euclid(1440));
        for (_, tally) in self.days.range(first_day..=last_day) {
            for (k, n) in tally {
                if let Some((attr, value)) = k.split_once('\t') {
                    *totals.entry(attr.to_string()).or_default().entry(value.to_string()).or_default() += n;
                }
            }
        }
        for (attr, values) in from_start {
            if let Some(t) = totals.get_mut(attr) {
                for (value, n) in values {
                    if let Some(x) = t.get_mut(value) {
                        *x = x.saturating_sub(*n);
                    }
                }
                t.retain(|_, n| *n > 0);
            }
        }
        let minutes = baseline_minutes.max(1) as f64;
        totals.into_iter().map(|(attr, values)| (attr, top(values, minutes))).collect()
    }

    fn prune(&mut self, now: i64) {
        let keep_day = now.div_euclid(86_400) - KEEP_DAYS;
        self.days = self.days.split_off(&keep_day);
    }
}

/// The top values by count, as events per minute over `minutes`.
fn top(values: BTreeMap<String, u32>, minutes: f64) -> Vec<(String, f64)> {
    let mut v: Vec<(String, u32)> = values.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter().take(TOP).map(|(k, n)| (k, round(f64::from(n) / minutes))).collect()
}

fn round(x: f64) -> f64 {
    (x * 1e10).round() / 1e10
}

fn unix(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The records of the trail's account with sequence numbers above `after`, oldest first, with
/// the highest sequence number seen.
fn new_records(db: &dyn Read, account: &str, after: u64) -> Result<(Vec<StoredEvent>, u64), StoreError> {
    let prefix = format!("{account}/");
    let mut out = Vec::new();
    let mut max = after;
    let mut cursor: Option<String> = None;
    'scan: loop {
        let rows = db.scan(EVENTS_TABLE, &prefix, cursor.as_deref(), 500)?;
        if rows.is_empty() {
            break;
        }
        for (k, v) in &rows {
            let seq = seq_of_key(k).unwrap_or(0);
            if seq <= after {
                break 'scan;
            }
            max = max.max(seq);
            if let Some(e) = StoredEvent::from_row(v) {
                out.push(e);
            }
        }
        cursor = rows.last().map(|(k, _)| k.clone());
    }
    out.reverse();
    Ok((out, max))
}

/// Per attribute, per value: events.
type Tally = BTreeMap<String, BTreeMap<String, u32>>;
/// Per attribute, the top values with their events per minute.
type Attributions = BTreeMap<String, Vec<(String, f64)>>;

/// The account's records of `series` from minute `start` on: those in `[start, end)`, and all.
fn tally_from(
    db: &dyn Read,
    account: &str,
    series: &Series,
    start: i64,
    end: i64,
) -> Result<(Tally, Tally), StoreError> {
    let prefix = format!("{account}/");
    let (mut within, mut all): (Tally, Tally) = (BTreeMap::new(), BTreeMap::new());
    let mut cursor: Option<String> = None;
    // Newest first; records commit within moments of their event time.
    'scan: loop {
        let rows = db.scan(EVENTS_TABLE, &prefix, cursor.as_deref(), 500)?;
        if rows.is_empty() {
            break;
        }
        for (_, v) in &rows {
            let Some(e) = StoredEvent::from_row(v) else { continue };
            let m = minute_of(e.t);
            if m < start - 1 {
                break 'scan;
            }
            if m < start {
                continue;
            }
            let f = Facts::of(&e);
            let same = e.region == series.region
                && e.source == series.source
                && e.name == series.name
                && match series.insight_type.as_str() {
                    CALL_RATE => !e.ro,
                    _ => f.error_code.is_some() && f.error_code == series.error_code,
                };
            if same {
                for (attr, value) in f.attributes(&series.insight_type) {
                    if m < end {
                        *within.entry(attr.to_string()).or_default().entry(value.clone()).or_default() += 1;
                    }
                    *all.entry(attr.to_string()).or_default().entry(value).or_default() += 1;
                }
            }
        }
        cursor = rows.last().map(|(k, _)| k.clone());
    }
    Ok((within, all))
}

fn averages(list: &[(String, f64)]) -> Value {
    Value::Array(list.iter().map(|(v, a)| json!({"value": v, "average": a})).collect())
}

/// The Insights event record of a transition, as AWS writes it.
fn record(
    t: &TrailDoc,
    s: &Series,
    tr: &Transition,
    insight_attr: &Attributions,
    baseline_attr: &Attributions,
) -> (String, i64, Value) {
    let minute = tr.end.unwrap_or(tr.start);
    let event_time = minute * 60;
    let duration = tr.end.map_or(1, |e| e - tr.start);
    let order: &[&str] = if s.insight_type == CALL_RATE {
        &["userIdentityArn", "userAgent", "errorCode"]
    } else {
        &["userIdentityArn", "userAgent"]
    };
    let attributions: Vec<Value> = order
        .iter()
        .map(|a| {
            json!({
                "attribute": a,
                "insight": averages(insight_attr.get(*a).map_or(&[][..], Vec::as_slice)),
                "baseline": averages(baseline_attr.get(*a).map_or(&[][..], Vec::as_slice)),
            })
        })
        .collect();
    let mut details = json!({
        "state": if tr.end.is_some() { "End" } else { "Start" },
        "eventSource": s.source,
        "eventName": s.name,
        "insightType": s.insight_type,
        "insightContext": {
            "statistics": {
                "baseline": {"average": round(tr.baseline_average)},
                "insight": {"average": round(tr.insight_average)},
                "insightDuration": duration,
                "baselineDuration": tr.baseline_minutes,
            },
            "attributions": attributions,
        },
    });
    if let Some(code) = &s.error_code {
        details["errorCode"] = json!(code);
    }
    let id = new_uuid();
    let rec = json!({
        "eventVersion": "1.08",
        "eventTime": iso_time(unix(event_time)),
        "awsRegion": s.region,
        "eventID": id,
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": t.account,
        "sharedEventID": tr.shared_id,
        "insightDetails": details,
        "eventCategory": "Insight",
    });
    (id, event_time, rec)
}

/// Store one Insights event of trail `t`.
fn put_event(
    tx: &mut dyn Transaction,
    t: &TrailDoc,
    s: &Series,
    id: &str,
    at: i64,
    rec: &Value,
) -> Result<(), StoreError> {
    let seq = tx.get_json::<u64>(META_TABLE, SEQ_KEY)?.unwrap_or(0) + 1;
    tx.put_json(META_TABLE, SEQ_KEY, &seq)?;
    let row = json!({
        "seq": seq, "id": id, "t": at, "name": s.name, "source": s.source, "region": s.region,
        "ro": false, "event": rec, "trail": t.arn(),
    });
    tx.put_json(INSIGHT_EVENTS_TABLE, &event_key(&t.account, seq), &row)
}

/// The trail an Insights event row belongs to.
pub fn trail_of_row(row: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Of {
        trail: String,
    }
    serde_json::from_slice::<Of>(row).ok().map(|o| o.trail)
}

/// Count the trail's new records and judge its series at `now`, in `tx`: Insights events
/// found are stored ([`INSIGHT_EVENTS_TABLE`]). Returns how many were written.
pub fn analyze(
    tx: &mut dyn Transaction,
    trail_key: &str,
    now: OffsetDateTime,
    cfg: &InsightsConfig,
) -> Result<usize, StoreError> {
    let Some(t) = tx.get_json::<TrailDoc>(crate::delivery::TRAILS_TABLE, trail_key)? else { return Ok(0) };
    let Some(mut state) = tx.get_json::<State>(STATE_TABLE, trail_key)? else { return Ok(0) };
    let (records, max_seq) = new_records(tx, &t.account, state.seq)?;
    for e in records.iter().filter(|e| t.selects(e)) {
        state.count(e);
    }
    state.seq = max_seq;
    let now_s = now.unix_timestamp();
    let since = state.since;
    let mut written = 0;
    let keys: Vec<String> = state.series.keys().cloned().collect();
    let current = minute_of(now_s);
    for key in keys {
        let Some(series) = state.series.get_mut(&key) else { continue };
        series.prune(now_s);
        // Only minutes with events start an Insights event, and an open one needs judging: a
        // series with neither has nothing to judge, and nothing is read for it.
        if series.fresh.is_empty() && series.open.is_none() {
            series.judged = series.judged.max(current - 1);
            continue;
        }
        let prefix = counts_prefix(trail_key, &key);
        let first_fresh = series.fresh.keys().next().copied().unwrap_or(current);
        let from = (series.judged + 1).min(first_fresh) - cfg.baseline_minutes;
        series.counts = load_counts(tx, &prefix, from.max(since), current + 1)?;
        let fresh = std::mem::take(&mut series.fresh);
        let mut days: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
        for (m, c) in fresh {
            *series.counts.entry(m).or_default() += c;
            days.insert(m.div_euclid(1440));
        }
        for day in days {
            let row: BTreeMap<i64, u32> =
                series.counts.range(day * 1440..(day + 1) * 1440).map(|(m, c)| (m - day * 1440, *c)).collect();
            tx.put_json(COUNTS_TABLE, &format!("{prefix}{day:08}"), &row)?;
        }
        let transitions = series.judge(&key, since, now_s, cfg);
        series.counts.clear();
        let series = series.clone();
        for tr in transitions {
            let end = tr.end.unwrap_or(tr.start + 1);
            let (within, from_start) = tally_from(tx, &t.account, &series, tr.start, end)?;
            let minutes = (end - tr.start).max(1) as f64;
            let insight_attr: Attributions =
                within.into_iter().map(|(attr, values)| (attr, top(values, minutes))).collect();
            let baseline_attr = series.baseline_attributions(tr.start, tr.baseline_minutes, &from_start);
            let (id, at, rec) = record(&t, &series, &tr, &insight_attr, &baseline_attr);
            put_event(tx, &t, &series, &id, at, &rec)?;
            written += 1;
        }
    }
    // Once a day: count rows past the 90 days go, and series with nothing left to say.
    let today = now_s.div_euclid(86_400);
    if state.pruned_day < today {
        prune_counts(tx, trail_key, today - KEEP_MINUTES / 1440)?;
        state.series.retain(|_, s| s.open.is_some() || s.last_minute >= current - KEEP_MINUTES);
        state.pruned_day = today;
    }
    tx.put_json(STATE_TABLE, trail_key, &state)?;
    prune_events(tx, &t.account, now_s - HISTORY_SECS)?;
    Ok(written)
}

/// The key prefix of a series' count rows.
pub fn counts_prefix(trail_key: &str, series_key: &str) -> String {
    format!("{trail_key}/{series_key}/")
}

/// The per-minute counts under `prefix` for minutes in `[from, to)`.
pub fn load_counts(db: &dyn Read, prefix: &str, from: i64, to: i64) -> Result<BTreeMap<i64, u32>, StoreError> {
    let (first_day, last_day) = (from.div_euclid(1440), (to - 1).div_euclid(1440));
    let after = format!("{prefix}{:08}", first_day - 1);
    let mut out = BTreeMap::new();
    for (k, v) in db.scan(COUNTS_TABLE, prefix, Some(&after), 0)? {
        let Some(day) = k.rsplit('/').next().and_then(|d| d.parse::<i64>().ok()) else { continue };
        if day > last_day {
            break;
        }
        let row: BTreeMap<i64, u32> = serde_json::from_slice(&v).unwrap_or_default();
        for (m, c) in row {
            let minute = day * 1440 + m;
            if (from..to).contains(&minute) {
                out.insert(minute, c);
            }
        }
    }
    Ok(out)
}

/// Delete a trail's count rows of days before `keep_day` (all of them with `i64::MAX`).
pub fn prune_counts(tx: &mut dyn Transaction, trail_key: &str, keep_day: i64) -> Result<(), StoreError> {
    let old: Vec<String> = tx
        .scan(COUNTS_TABLE, &format!("{trail_key}/"), None, 0)?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.rsplit('/').next().and_then(|d| d.parse::<i64>().ok()).is_some_and(|d| d < keep_day))
        .collect();
    for k in old {
        tx.delete(COUNTS_TABLE, &k)?;
    }
    Ok(())
}

/// Insights events are kept as long as the event history (90 days).
const HISTORY_SECS: i64 = crate::lookup::HISTORY_DAYS * 86_400;

/// Delete the account's Insights events older than `cutoff` (the oldest are at the end of the
/// account's keys).
fn prune_events(tx: &mut dyn Transaction, account: &str, cutoff: i64) -> Result<(), StoreError> {
    let old: Vec<String> = tx
        .scan(INSIGHT_EVENTS_TABLE, &format!("{account}/"), None, 0)?
        .into_iter()
        .rev()
        .take_while(|(_, v)| StoredEvent::from_row(v).is_some_and(|e| e.t < cutoff))
        .map(|(k, _)| k)
        .collect();
    for k in old {
        tx.delete(INSIGHT_EVENTS_TABLE, &k)?;
    }
    Ok(())
}

/// One point of ListInsightsMetricData: the period's start (Unix seconds) and its events.
pub fn metric_points(counts: &BTreeMap<i64, u32>, start: i64, end: i64, period: i64, fill: bool) -> Vec<(i64, f64)> {
    let period_min = (period / 60).max(1);
    let first = start.div_euclid(period) * period;
    let mut sums: BTreeMap<i64, u64> = BTreeMap::new();
    {
        for (m, c) in counts.range(minute_of(first)..) {
            let at = m * 60;
            if at >= end {
                break;
            }
            if at < start {
                continue;
            }
            *sums.entry((m.div_euclid(period_min)) * period).or_default() += u64::from(*c);
        }
    }
    if !fill {
        return sums.into_iter().map(|(t, n)| (t, n as f64)).collect();
    }
    let mut out = Vec::new();
    let mut t = first.max(start.div_euclid(period) * period);
    while t < end {
        out.push((t, sums.get(&t).copied().unwrap_or(0) as f64));
        t += period;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000 / 60 * 60; // a minute boundary

    fn cfg() -> InsightsConfig {
        InsightsConfig { min_baseline_minutes: 60, ..Default::default() }
    }

    fn series(counts: &[(i64, u32)]) -> Series {
        Series {
            insight_type: CALL_RATE.into(),
            counts: counts.iter().map(|(m, c)| (minute_of(T0) + m, *c)).collect(),
            judged: minute_of(T0) - 1,
            ..Default::default()
        }
    }

    fn at(minutes: i64, seconds: i64) -> i64 {
        T0 + minutes * 60 + seconds
    }

    #[test]
    fn stats_count_the_zero_minutes_of_the_window() {
        let counts: BTreeMap<i64, u32> = [(0, 2), (1, 2)].into_iter().collect();
        let (mean, sd) = stats(&counts, 0, 4);
        assert_eq!(mean, 1.0);
        assert_eq!(sd, 1.0);
        assert_eq!(stats(&counts, 5, 5), (0.0, 0.0));
    }

    #[test]
    fn nothing_is_judged_before_the_baseline_window_holds_its_minimum() {
        let since = minute_of(T0);
        let mut s = series(&[(30, 50)]);
        assert!(s.judge("k", since, at(31, 0), &cfg()).is_empty(), "30 minutes of baseline < 60");
        let mut s = series(&[(61, 50)]);
        let tr = s.judge("k", since, at(62, 0), &cfg());
        assert_eq!(tr.len(), 1);
        assert_eq!((tr[0].start, tr[0].baseline_minutes, tr[0].baseline_average), (minute_of(T0) + 61, 61, 0.0));
    }

    #[test]
    fn a_burst_over_a_steady_baseline_starts_then_ends_at_the_first_normal_complete_minute() {
        let since = minute_of(T0);
        // Two calls a minute for two hours, then 20, 25 and back to 2.
        let mut counts: Vec<(i64, u32)> = (0..120).map(|m| (m, 2)).collect();
        counts.extend([(120, 20), (121, 25), (122, 2), (123, 2)]);
        let mut s = series(&counts);
        // During minute 120 (running): the start is seen at once.
        let tr = s.judge("k", since, at(120, 10), &cfg());
        assert_eq!(tr.len(), 1, "{tr:?}");
        assert_eq!(tr[0].end, None);
        assert_eq!(tr[0].start, since + 120);
        assert_eq!(tr[0].insight_average, 20.0);
        assert_eq!(tr[0].baseline_average, 2.0);
        assert_eq!(tr[0].baseline_minutes, 120);
        // Minute 121 still unusual; minute 122 is running: no end yet.
        assert!(s.judge("k", since, at(122, 30), &cfg()).is_empty());
        // Minute 122 complete and normal: the end, duration 2, average (20 + 25) / 2.
        let end = s.judge("k", since, at(123, 0), &cfg());
        assert_eq!(end.len(), 1, "{end:?}");
        assert_eq!(end[0].end, Some(since + 122));
        assert_eq!(end[0].shared_id, tr[0].shared_id);
        assert_eq!(end[0].insight_average, 22.5);
        assert_eq!(end[0].baseline_average, 2.0, "the baseline frozen at the start");
        assert!(s.open.is_none());
        assert!(s.judge("k", since, at(130, 0), &cfg()).is_empty(), "judged once");
    }

    #[test]
    fn thresholds_need_the_minimum_count_three_sigmas_and_twice_the_mean() {
        let since = minute_of(T0);
        let c = cfg();
        // Below the minimum count, however quiet the baseline.
        assert!(series(&[(100, 4)]).judge("k", since, at(101, 0), &c).is_empty());
        assert_eq!(series(&[(100, 5)]).judge("k", since, at(101, 0), &c).len(), 1);
        // A noisy baseline (0 and 10 alternating: mean 5, sd 5): 19 is within 3 sd, 21 is not.
        let noisy: Vec<(i64, u32)> = (0..100).map(|m| (m, if m % 2 == 0 { 10 } else { 0 })).collect();
        let mut s = series(&[noisy.clone(), vec![(100, 19)]].concat());
        assert!(s.judge("k", since, at(101, 0), &c).is_empty());
        let mut s = series(&[noisy, vec![(100, 21)]].concat());
        assert_eq!(s.judge("k", since, at(101, 0), &c).len(), 1);
        // A steady high baseline (100 a minute, sd 0): 150 is above 3 sd but under twice the mean.
        let steady: Vec<(i64, u32)> = (0..100).map(|m| (m, 100)).collect();
        let mut s = series(&[steady.clone(), vec![(100, 150)]].concat());
        assert!(s.judge("k", since, at(101, 0), &c).is_empty());
        let mut s = series(&[steady, vec![(100, 200)]].concat());
        assert_eq!(s.judge("k", since, at(101, 0), &c).len(), 1);
    }

    #[test]
    fn the_baseline_window_is_the_seven_days_before_the_minute() {
        let since = minute_of(T0);
        let week = 7 * 1440;
        // A busy first day, then quiet for more than a week: the busy day leaves the window.
        let mut counts: Vec<(i64, u32)> = (0..1440).map(|m| (m, 30)).collect();
        counts.push((week + 2000, 25));
        let mut s = series(&counts);
        let tr = s.judge("k", since, at(week + 2000, 5), &cfg());
        assert_eq!(tr.len(), 1);
        assert_eq!(tr[0].baseline_minutes, week);
        assert_eq!(tr[0].baseline_average, 0.0, "the busy day is outside the window");
        // Inside the window it would have hidden the burst (mean 30·1440/2000 ≈ 21.6, 25 < 2·mean).
        let mut counts: Vec<(i64, u32)> = (0..1440).map(|m| (m, 30)).collect();
        counts.push((2000, 25));
        assert!(series(&counts).judge("k", since, at(2000, 5), &cfg()).is_empty());
    }

    #[test]
    fn insights_events_older_than_the_history_are_pruned() {
        use rampart_store::Store;
        let store = rampart_store::MemStore::new();
        let t = TrailDoc {
            name: "t".into(),
            account: "111122223333".into(),
            home_region: "us-east-1".into(),
            ..Default::default()
        };
        let s = Series {
            name: "CreateUser".into(),
            source: "iam.amazonaws.com".into(),
            region: "us-east-1".into(),
            ..Default::default()
        };
        let mut tx = store.begin().unwrap();
        for (i, at) in [T0 - 100 * 86_400, T0 - 91 * 86_400, T0 - 89 * 86_400, T0].iter().enumerate() {
            put_event(tx.as_mut(), &t, &s, &format!("e{i}"), *at, &json!({})).unwrap();
        }
        prune_events(tx.as_mut(), "111122223333", T0 - HISTORY_SECS).unwrap();
        tx.commit().unwrap();
        let left: Vec<String> = store
            .scan(INSIGHT_EVENTS_TABLE, "111122223333/", None, 0)
            .unwrap()
            .iter()
            .map(|(_, v)| StoredEvent::from_row(v).unwrap().id)
            .collect();
        assert_eq!(left, ["e3", "e2"]);
    }

    #[test]
    fn metric_points_sum_per_period_and_fill_with_zeros_on_request() {
        let s = series(&[(0, 3), (1, 4), (7, 1)]);
        let five = metric_points(&s.counts, T0 - T0 % 300, T0 - T0 % 300 + 900, 300, false);
        let sum: f64 = five.iter().map(|(_, v)| v).sum();
        assert_eq!(sum, 8.0);
        let filled = metric_points(&s.counts, T0, T0 + 600, 60, true);
        assert_eq!(filled.len(), 10);
        assert_eq!(filled[0], (T0, 3.0));
        assert_eq!(filled[2], (T0 + 120, 0.0));
        assert_eq!(filled[7], (T0 + 420, 1.0));
        assert_eq!(metric_points(&BTreeMap::new(), T0, T0 + 120, 60, false), vec![]);
    }
}
