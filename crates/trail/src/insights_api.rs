//! The Insights operations: PutInsightSelectors, GetInsightSelectors, ListInsightsData,
//! ListInsightsMetricData (the detector is [`crate::insights`]).

use rampart_service::{op, AuthzCheck, AuthzPlan, AwsError, Entry, Input, Operation, Output, RequestContext};
use rampart_store::{transact, ReadExt, TransactionExt};
use serde_json::{json, Value};

use crate::audit::{StoredEvent, META_TABLE};
use crate::delivery::{TrailDoc, TRAILS_TABLE};
use crate::insights::{self, State, CALL_RATE, ERROR_RATE, INSIGHT_EVENTS_TABLE, STATE_TABLE};
use crate::lookup::{self, time_of};
use crate::service::{e400, in_home_region, one, required, store_err, Api, Trail, TrailRef};

pub const OPS: &[Entry<Api>] = &[
    op::<Api, PutInsightSelectors>(),
    op::<Api, GetInsightSelectors>(),
    op::<Api, ListInsightsData>(),
    op::<Api, ListInsightsMetricData>(),
];

const TYPES: [&str; 2] = [CALL_RATE, ERROR_RATE];

fn invalid_param(msg: impl Into<String>) -> AwsError {
    e400("InvalidParameterException", msg)
}

fn not_enum(value: &str, member: &str, allowed: &[&str]) -> AwsError {
    invalid_param(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        value.chars().take(64).collect::<String>(),
        allowed.join(", ")
    ))
}

/// `EventDataStoreArn`: 3–256 of `[a-zA-Z0-9._/\-:]`.
fn eds_arn_ok(v: &str) -> bool {
    (3..=256).contains(&v.len()) && v.bytes().all(|c| c.is_ascii_alphanumeric() || b"._/-:".contains(&c))
}

fn opt_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(e400("SerializationException", format!("{key} must be a string"))),
    }
}

/// The event data store members, which Rampart's trails-only Insights do not take.
fn no_event_data_store(body: &Value, with_trail: bool) -> Result<(), AwsError> {
    for k in ["EventDataStore", "InsightsDestination"] {
        if let Some(v) = opt_str(body, k)? {
            if !eds_arn_ok(v) {
                return Err(invalid_param(format!(
                    "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:]+$",
                    lower_first(k)
                )));
            }
            if with_trail {
                return Err(e400(
                    "InvalidParameterCombinationException",
                    "You cannot specify TrailName together with EventDataStore or InsightsDestination.",
                ));
            }
            return Err(e400(
                "UnsupportedOperationException",
                "Insights on event data stores are not offered by Rampart; enable Insights on a trail.",
            ));
        }
    }
    Ok(())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// The selectors, validated: `(types, selectors as stored)`.
fn parse_selectors(body: &Value) -> Result<(Vec<String>, Vec<Value>), AwsError> {
    let list = match body.get("InsightSelectors") {
        None | Some(Value::Null) => {
            return Err(invalid_param(
                "1 validation error detected: Value null at 'insightSelectors' failed to satisfy constraint: Member must not be null",
            ))
        }
        Some(Value::Array(l)) => l,
        Some(_) => return Err(e400("InvalidInsightSelectorsException", "InsightSelectors must be a list.")),
    };
    let mut types = Vec::new();
    let mut stored = Vec::new();
    for sel in list {
        let ty = sel.get("InsightType").and_then(Value::as_str).ok_or_else(|| {
            e400("InvalidInsightSelectorsException", "Each Insights selector must specify an InsightType.")
        })?;
        if !TYPES.contains(&ty) {
            return Err(e400(
                "InvalidInsightSelectorsException",
                format!(
                    "The Insights selector is not valid: InsightType {} is not one of ApiCallRateInsight, ApiErrorRateInsight.",
                    ty.chars().take(64).collect::<String>()
                ),
            ));
        }
        if types.iter().any(|t| t == ty) {
            return Err(e400("InvalidInsightSelectorsException", format!("Duplicate InsightType {ty}.")));
        }
        let mut out = json!({"InsightType": ty});
        if let Some(cats) = sel.get("EventCategories").filter(|v| !v.is_null()) {
            let cats = cats
                .as_array()
                .ok_or_else(|| e400("InvalidInsightSelectorsException", "EventCategories must be a list."))?;
            for c in cats {
                match c.as_str() {
                    Some("Management") => {}
                    Some("Data") => {
                        // No data events exist here, so no trail logs them.
                        return Err(e400(
                            "InvalidInsightSelectorsException",
                            "Insights on data events need a trail that logs data events; this trail does not.",
                        ));
                    }
                    other => {
                        return Err(not_enum(
                            other.unwrap_or_default(),
                            "insightSelectors.member.eventCategories.member",
                            &["Management", "Data"],
                        ))
                    }
                }
            }
            out["EventCategories"] = json!(cats);
        }
        types.push(ty.to_string());
        stored.push(out);
    }
    Ok((types, stored))
}

/// Whether the trail logs management events of this kind (a write, or any).
fn logs_management(t: &TrailDoc, write: bool) -> bool {
    let probe = |ro: bool| StoredEvent {
        seq: 0,
        id: String::new(),
        t: 0,
        name: "PutInsightSelectors".into(),
        source: "cloudtrail.amazonaws.com".into(),
        region: t.home_region.clone(),
        ro,
        user: None,
        key: None,
        res: Vec::new(),
        event: String::new(),
    };
    t.selects(&probe(false)) || (!write && t.selects(&probe(true)))
}

/// `InsightSelectors` of a trail, with its ARN.
fn selectors_json(t: &TrailDoc) -> Value {
    json!({"TrailARN": t.arn(), "InsightSelectors": t.insight_selectors})
}

pub struct PutInsightSelectors {
    trail: Trail,
    /// The selectors, or what is wrong with them (reported once the trail is found).
    selectors: Result<(Vec<String>, Vec<Value>), AwsError>,
}

impl Operation<Api> for PutInsightSelectors {
    const NAME: &'static str = "PutInsightSelectors";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let with_trail = opt_str(body, "TrailName")?.is_some();
        no_event_data_store(body, with_trail)?;
        let trail = Trail::parse(body, "TrailName")?;
        Ok(PutInsightSelectors { trail, selectors: parse_selectors(body) })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.trail.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let (key, t) = self.trail.load(api, ctx)?;
        in_home_region(ctx, &t)?;
        let (types, stored) = self.selectors?;
        if types.iter().any(|ty| ty == CALL_RATE) && !logs_management(&t, true) {
            return Err(e400(
                "InvalidInsightSelectorsException",
                "ApiCallRateInsight needs a trail that logs write management events.",
            ));
        }
        if types.iter().any(|ty| ty == ERROR_RATE) && !logs_management(&t, false) {
            return Err(e400(
                "InvalidInsightSelectorsException",
                "ApiErrorRateInsight needs a trail that logs read or write management events.",
            ));
        }
        let now = ctx.time;
        let t = crate::service::atomically(api.store(), |tx| -> Result<TrailDoc, AwsError> {
            let mut t: TrailDoc = tx
                .get_json(TRAILS_TABLE, &key)
                .map_err(store_err)?
                .ok_or_else(|| Api::not_found(ctx, &t.account, &t.name))?;
            t.insight_selectors = stored;
            tx.put_json(TRAILS_TABLE, &key, &t).map_err(store_err)?;
            if types.is_empty() {
                tx.delete(STATE_TABLE, &key).map_err(store_err)?;
                insights::prune_counts(tx, &key, i64::MAX).map_err(store_err)?;
            } else {
                let state = match tx.get_json::<State>(STATE_TABLE, &key).map_err(store_err)? {
                    Some(mut s) => {
                        s.series.retain(|_, x| types.contains(&x.insight_type));
                        s.types = types;
                        s
                    }
                    None => {
                        // Counting starts with the records after this call.
                        let seq: u64 = tx.get_json(META_TABLE, "seq").map_err(store_err)?.unwrap_or(0);
                        insights::fresh_state(now, seq, types)
                    }
                };
                tx.put_json(STATE_TABLE, &key, &state).map_err(store_err)?;
            }
            Ok(t)
        })?;
        Ok(Output::Json(selectors_json(&t)))
    }
}

pub struct GetInsightSelectors {
    trail: Trail,
}

impl Operation<Api> for GetInsightSelectors {
    const NAME: &'static str = "GetInsightSelectors";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let with_trail = opt_str(body, "TrailName")?.is_some();
        no_event_data_store(body, with_trail)?;
        Ok(GetInsightSelectors { trail: Trail::parse(body, "TrailName")? })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.trail.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let (_, t) = self.trail.load(api, ctx)?;
        if t.insight_selectors.is_empty() {
            return Err(e400(
                "InsightNotEnabledException",
                format!("Trail {} does not have Insights enabled.", t.arn()),
            ));
        }
        Ok(Output::Json(selectors_json(&t)))
    }
}

/// A trail ARN (`InsightSource`) as ListInsightsData takes it.
fn insight_source(body: &Value) -> Result<TrailRef, AwsError> {
    let v = required(body, "InsightSource")?;
    if !eds_arn_ok(v) {
        return Err(invalid_param(
            "1 validation error detected: Value at 'insightSource' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:]+$",
        ));
    }
    if !v.starts_with("arn:") {
        return Err(invalid_param("InsightSource must be the ARN of a trail."));
    }
    TrailRef::parse(v).map_err(|e| invalid_param(e.message))
}

pub struct ListInsightsData {
    trail: Trail,
    query: lookup::Query,
}

impl Operation<Api> for ListInsightsData {
    const NAME: &'static str = "ListInsightsData";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let trail = Trail::new(insight_source(body)?);
        let ty = required(body, "DataType")?;
        if ty != "InsightsEvents" {
            return Err(not_enum(ty, "dataType", &["InsightsEvents"]));
        }
        let mut query = lookup::Query { max_results: 50, insight: true, ..Default::default() };
        if let Some(d) = body.get("Dimensions").filter(|v| !v.is_null()) {
            let map = d.as_object().ok_or_else(|| invalid_param("Dimensions must be a map."))?;
            if map.len() != 1 {
                return Err(invalid_param(
                    "1 validation error detected: Value at 'dimensions' failed to satisfy constraint: Member must have length less than or equal to 1",
                ));
            }
            for (k, v) in map {
                let attr = match k.as_str() {
                    "EventId" | "EventName" | "EventSource" => k.clone(),
                    other => return Err(not_enum(other, "dimensions.key", &["EventId", "EventName", "EventSource"])),
                };
                let v = v.as_str().unwrap_or_default();
                if v.is_empty() || v.chars().count() > 2000 {
                    return Err(invalid_param("Dimension values must be 1 to 2000 characters."));
                }
                query.attribute = Some((attr, v.to_string()));
            }
        }
        query.start = time_of(body.get("StartTime").unwrap_or(&Value::Null))?;
        query.end = time_of(body.get("EndTime").unwrap_or(&Value::Null))?;
        if let (Some(s), Some(e)) = (query.start, query.end) {
            if s > e {
                return Err(invalid_param("Start time must be before end time."));
            }
        }
        if let Some(m) = body.get("MaxResults").filter(|v| !v.is_null()) {
            let m = m.as_i64().unwrap_or(0);
            if !(1..=50).contains(&m) {
                return Err(invalid_param(format!(
                    "1 validation error detected: Value '{m}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 50"
                )));
            }
            query.max_results = m as usize;
        }
        if let Some(t) = body.get("NextToken").filter(|v| !v.is_null()) {
            let t = t.as_str().unwrap_or_default();
            if !(4..=1000).contains(&t.len()) {
                return Err(invalid_param("NextToken is not valid."));
            }
            query.next_token = Some(t.to_string());
        }
        Ok(ListInsightsData { trail, query })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.trail.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let (_, t) = self.trail.load(api, ctx)?;
        let arn = t.arn();
        let keep = |row: &[u8], _: &StoredEvent| insights::trail_of_row(row).as_deref() == Some(arn.as_str());
        lookup::lookup_in(api.store(), INSIGHT_EVENTS_TABLE, &t.account, &self.query, ctx.time, &keep)
            .map_err(|e| if e.code == "InvalidNextTokenException" { invalid_param(e.message) } else { e })
            .map(Output::Json)
    }
}

pub struct ListInsightsMetricData {
    /// Planned on its ARN when given.
    trail: Option<Trail>,
    source: String,
    name: String,
    insight_type: String,
    error_code: Option<String>,
    start: Option<i64>,
    end: Option<i64>,
    period: i64,
    fill: bool,
    max: usize,
    /// Data points to skip (from `NextToken`).
    skip: usize,
}

fn token_of(skip: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("point:{skip}"))
}

fn skip_of(token: &str) -> Option<usize> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("point:")?.parse().ok()
}

impl Operation<Api> for ListInsightsMetricData {
    const NAME: &'static str = "ListInsightsMetricData";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let trail = opt_str(body, "TrailName")?.map(TrailRef::parse).transpose()?.map(Trail::new);
        let source = required(body, "EventSource")?;
        let source_ok = source.len() <= 256
            && source.strip_suffix(".amazonaws.com").is_some_and(|p| {
                !p.is_empty()
                    && p.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
            });
        if !source_ok {
            return Err(invalid_param(
                "1 validation error detected: Value at 'eventSource' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z0-9_-]+\\.amazonaws\\.com$",
            ));
        }
        let name = required(body, "EventName")?;
        if name.is_empty() || name.len() > 128 || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(invalid_param(
                "1 validation error detected: Value at 'eventName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[A-Za-z0-9_]+$",
            ));
        }
        let insight_type = required(body, "InsightType")?;
        if !TYPES.contains(&insight_type) {
            return Err(not_enum(insight_type, "insightType", &TYPES));
        }
        let error_code = opt_str(body, "ErrorCode")?;
        if let Some(c) = error_code {
            let ok = !c.is_empty()
                && c.len() <= 128
                && c.chars().all(|ch| ch.is_alphanumeric() || " \t_.,-:[]".contains(ch));
            if !ok {
                return Err(invalid_param(
                    "1 validation error detected: Value at 'errorCode' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w\\d\\s_.,\\-:\\[\\]]+$",
                ));
            }
        }
        if insight_type == ERROR_RATE && error_code.is_none() {
            return Err(invalid_param("ErrorCode is required when InsightType is ApiErrorRateInsight."));
        }
        let start = time_of(body.get("StartTime").unwrap_or(&Value::Null))?;
        let end = time_of(body.get("EndTime").unwrap_or(&Value::Null))?;
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(invalid_param("Start time must be before end time."));
            }
        }
        let period = match body.get("Period").filter(|v| !v.is_null()) {
            None => 3600,
            Some(p) => match p.as_i64() {
                Some(p @ (60 | 300 | 3600)) => p,
                _ => return Err(invalid_param("Period must be 60, 300 or 3600 seconds.")),
            },
        };
        let fill = match opt_str(body, "DataType")? {
            None | Some("NonZeroData") => false,
            Some("FillWithZeros") => true,
            Some(other) => return Err(not_enum(other, "dataType", &["FillWithZeros", "NonZeroData"])),
        };
        let max = match body.get("MaxResults").filter(|v| !v.is_null()) {
            None => 21_600,
            Some(m) => match m.as_i64() {
                Some(m @ 1..=21_600) => m as usize,
                _ => {
                    return Err(invalid_param(
                        "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 21600",
                    ))
                }
            },
        };
        let skip = match opt_str(body, "NextToken")? {
            None => 0,
            Some(t) => skip_of(t).ok_or_else(|| invalid_param("NextToken is not valid."))?,
        };
        Ok(ListInsightsMetricData {
            trail,
            source: source.to_string(),
            name: name.to_string(),
            insight_type: insight_type.to_string(),
            error_code: error_code.filter(|_| insight_type == ERROR_RATE).map(str::to_string),
            start,
            end,
            period,
            fill,
            max,
            skip,
        })
    }

    /// With a trail: `cloudtrail:LookupEvents` and `cloudtrail:ListInsightsData` on it; without,
    /// `cloudtrail:LookupEvents` (as AWS documents the operation's access).
    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        match &mut self.trail {
            Some(t) => {
                let lookup = t.check(api, ctx, "LookupEvents")?;
                let list = t.check(api, ctx, "ListInsightsData")?;
                Ok(AuthzPlan::Checks(vec![lookup, list]))
            }
            None => one(AuthzCheck::new("cloudtrail:LookupEvents", "*")),
        }
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let trail = match self.trail {
            Some(t) => Some(t.load(api, ctx)?.1),
            None => {
                // The caller's first trail in this Region with this Insights type on.
                let all: Vec<(String, TrailDoc)> =
                    api.store().scan_json(TRAILS_TABLE, &format!("{}/", ctx.caller.account_id)).map_err(store_err)?;
                all.into_iter().map(|(_, t)| t).find(|t| {
                    (t.multi_region || t.home_region == ctx.region)
                        && t.insight_selectors.iter().any(|s| s["InsightType"] == self.insight_type.as_str())
                })
            }
        };
        let state: Option<State> = match &trail {
            Some(t) => api.store().get_json(STATE_TABLE, &format!("{}/{}", t.account, t.name)).map_err(store_err)?,
            None => None,
        };
        let key =
            insights::series_key(&self.insight_type, &ctx.region, &self.source, &self.name, self.error_code.as_deref());
        // Data points exist for as long as AWS keeps them per period (1-minute points 15 days,
        // 5-minute 63 days, 1-hour 90 days) and not beyond now: the answer stays bounded.
        let now = ctx.time.unix_timestamp();
        let kept_days = match self.period {
            60 => 15,
            300 => 63,
            _ => 90,
        };
        // Exclusive, in seconds: the current second counts, so a minute that began this second
        // (`now` = its first second) is not cut off — its calls are already counted.
        let end = self.end.unwrap_or(now + 1).min(now + 1);
        let start = self.start.unwrap_or(now - 90 * 86_400).max(now - kept_days * 86_400);
        let counts = match (&trail, state.as_ref().filter(|s| s.series.contains_key(&key))) {
            (Some(t), Some(_)) if end > start => insights::load_counts(
                api.store(),
                &insights::counts_prefix(&format!("{}/{}", t.account, t.name), &key),
                start.div_euclid(60),
                (end + 59).div_euclid(60),
            )
            .map_err(store_err)?,
            _ => Default::default(),
        };
        let points = insights::metric_points(&counts, start, end, self.period, self.fill);
        let page: Vec<&(i64, f64)> = points.iter().skip(self.skip).take(self.max).collect();
        let mut out = json!({
            "EventSource": self.source,
            "EventName": self.name,
            "InsightType": self.insight_type,
            "Timestamps": page.iter().map(|(t, _)| json!(t)).collect::<Vec<_>>(),
            "Values": page.iter().map(|(_, v)| json!(v)).collect::<Vec<_>>(),
        });
        if let Some(t) = &trail {
            out["TrailARN"] = json!(t.arn());
        }
        if let Some(c) = &self.error_code {
            out["ErrorCode"] = json!(c);
        }
        if self.skip + page.len() < points.len() {
            out["NextToken"] = json!(token_of(self.skip + page.len()));
        }
        Ok(Output::Json(out))
    }
}

/// StartLogging: Insights count the records from now on (not those of the stopped time).
pub(crate) fn resume(api: &Api, key: &str, seq: u64) -> Result<(), AwsError> {
    transact(api.store(), |tx| {
        if let Some(mut s) = tx.get_json::<State>(STATE_TABLE, key)? {
            s.seq = s.seq.max(seq);
            tx.put_json(STATE_TABLE, key, &s)?;
        }
        Ok(())
    })
    .map_err(store_err)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rampart_service::{Caller, Service};
    use rampart_store::{Sealer, Store};
    use time::OffsetDateTime;

    use super::*;
    use crate::insights::{Clock, InsightsConfig};
    use crate::record::Record;
    use crate::{AuditLog, CloudTrail, TrailConfig};

    const ACCOUNT: &str = "111122223333";
    /// An hour boundary a day ago: recent, or the audit log's retention (real time) would
    /// delete the records the test makes.
    static T0: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        now - now % 3600 - 86_400
    });

    struct TestClock(Mutex<i64>);

    impl Clock for TestClock {
        fn now(&self) -> OffsetDateTime {
            OffsetDateTime::from_unix_timestamp(*self.0.lock().unwrap()).unwrap()
        }
    }

    struct World {
        clock: Arc<TestClock>,
        ct: Arc<CloudTrail>,
        svc: Arc<dyn Service>,
        log: Arc<AuditLog>,
        dir: tempfile::TempDir,
    }

    impl World {
        fn new() -> World {
            let store: Arc<dyn Store> = Arc::new(rampart_store::SqliteStore::in_memory().unwrap());
            let sealer = Arc::new(Sealer::new(&Sealer::generate_key()));
            let dir = tempfile::tempdir().unwrap();
            let clock = Arc::new(TestClock(Mutex::new(*T0)));
            let config = TrailConfig {
                root: Some(dir.path().into()),
                interval: Duration::from_secs(3600),
                insights: InsightsConfig { min_baseline_minutes: 60, ..Default::default() },
            };
            let ct = CloudTrail::start_with_clock(store.clone(), sealer, config, clock.clone());
            let svc = ct.service();
            let log = AuditLog::start(store).unwrap();
            World { clock, ct, svc, log, dir }
        }

        fn set(&self, minutes: i64, seconds: i64) {
            *self.clock.0.lock().unwrap() = *T0 + minutes * 60 + seconds;
        }

        fn ctx(&self) -> RequestContext {
            RequestContext {
                request_id: "r".into(),
                caller: Caller::root(ACCOUNT, "AKIA"),
                region: "us-east-1".into(),
                source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
                user_agent: String::new(),
                time: self.clock.now(),
                secure_transport: false,
            }
        }

        fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
            self.svc.call(&self.ctx(), op, &Input::Json(body), &mut |_| Ok(())).map(|o| o.json_value())
        }

        /// One recorded call at minute `m` (+5 s).
        fn record(&self, m: i64, name: &str, who: &str, error: Option<&str>) {
            let t = *T0 + m * 60 + 5;
            let mut rec = json!({
                "eventTime": crate::record::iso_time(OffsetDateTime::from_unix_timestamp(t).unwrap()),
                "eventName": name, "eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1",
                "userAgent": "aws-cli/2.15", "userIdentity": {"arn": format!("arn:aws:iam::{ACCOUNT}:user/{who}")},
            });
            if let Some(e) = error {
                rec["errorCode"] = json!(e);
            }
            let event = StoredEvent {
                seq: 0,
                id: crate::record::new_uuid(),
                t,
                name: name.into(),
                source: "iam.amazonaws.com".into(),
                region: "us-east-1".into(),
                ro: crate::record::is_read_only(name),
                user: Some(who.into()),
                key: None,
                res: Vec::new(),
                event: rec.to_string(),
            };
            self.log.submit(Record { recipient_account_id: ACCOUNT.into(), event }).wait().unwrap();
        }

        fn insight_records(&self) -> Vec<Value> {
            let out = self.call("LookupEvents", json!({"EventCategory": "insight"})).unwrap();
            let mut v: Vec<Value> = out["Events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
                .collect();
            v.reverse();
            v
        }
    }

    #[test]
    fn a_burst_of_writes_and_errors_becomes_start_and_end_insights_events_delivered_and_listed() {
        let w = World::new();
        w.call("CreateTrail", json!({"Name": "watch", "S3BucketName": "watch-bucket"})).unwrap();
        w.call("StartLogging", json!({"Name": "watch"})).unwrap();
        let put = w
            .call(
                "PutInsightSelectors",
                json!({"TrailName": "watch", "InsightSelectors": [
                    {"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]}),
            )
            .unwrap();
        assert_eq!(put["TrailARN"], format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/watch"));
        assert_eq!(put["InsightSelectors"].as_array().unwrap().len(), 2);
        assert_eq!(w.call("GetTrail", json!({"Name": "watch"})).unwrap()["Trail"]["HasInsightSelectors"], true);
        // Two hours of one CreateUser a minute and a NoSuchEntity every ten minutes.
        for m in 0..120 {
            w.record(m, "CreateUser", "ops", None);
            if m % 10 == 0 {
                w.record(m, "GetUser", "ops", Some("NoSuchEntity"));
            }
        }
        w.set(119, 50);
        w.ct.deliver_now();
        assert!(w.insight_records().is_empty(), "normal activity raises nothing");
        // Minute 120: 30 CreateUser (25 by mallory) and 12 NoSuchEntity.
        for i in 0..30 {
            w.record(120, "CreateUser", if i < 25 { "mallory" } else { "ops" }, None);
        }
        for _ in 0..12 {
            w.record(120, "GetUser", "mallory", Some("NoSuchEntity"));
        }
        w.set(120, 40);
        w.ct.deliver_now();
        let start = w.insight_records();
        assert_eq!(start.len(), 2, "{start:#?}");
        let call = start.iter().find(|r| r["insightDetails"]["insightType"] == CALL_RATE).unwrap();
        assert_eq!(call["eventType"], "AwsCloudTrailInsight");
        assert_eq!(call["eventCategory"], "Insight");
        assert_eq!(call["recipientAccountId"], ACCOUNT);
        assert_eq!(
            call["eventTime"],
            crate::record::iso_time(OffsetDateTime::from_unix_timestamp(*T0 + 7200).unwrap())
        );
        let d = &call["insightDetails"];
        assert_eq!((d["state"].as_str(), d["eventName"].as_str()), (Some("Start"), Some("CreateUser")));
        assert_eq!(d["eventSource"], "iam.amazonaws.com");
        let stats = &d["insightContext"]["statistics"];
        assert_eq!(stats["baseline"]["average"], 1.0);
        assert_eq!(stats["insight"]["average"], 30.0);
        assert_eq!(stats["baselineDuration"], 120);
        let attr = &d["insightContext"]["attributions"];
        assert_eq!(attr[0]["attribute"], "userIdentityArn");
        assert_eq!(attr[0]["insight"][0]["value"], format!("arn:aws:iam::{ACCOUNT}:user/mallory"));
        assert_eq!(attr[0]["insight"][0]["average"], 25.0);
        assert_eq!(attr[0]["baseline"][0]["value"], format!("arn:aws:iam::{ACCOUNT}:user/ops"));
        assert_eq!(attr[0]["baseline"][0]["average"], 1.0, "the burst is not part of its own baseline");
        assert_eq!(attr[2]["attribute"], "errorCode");
        assert_eq!(attr[2]["insight"][0]["value"], "null");
        let err = start.iter().find(|r| r["insightDetails"]["insightType"] == ERROR_RATE).unwrap();
        assert_eq!(err["insightDetails"]["eventName"], "GetUser");
        assert_eq!(err["insightDetails"]["errorCode"], "NoSuchEntity");
        assert_eq!(err["insightDetails"]["insightContext"]["statistics"]["baseline"]["average"], 0.1);
        assert_eq!(err["insightDetails"]["insightContext"]["attributions"].as_array().unwrap().len(), 2);
        // Minute 121 is back to normal; once it is over, both end.
        w.record(121, "CreateUser", "ops", None);
        w.set(122, 1);
        w.ct.deliver_now();
        let all = w.insight_records();
        assert_eq!(all.len(), 4, "{all:#?}");
        let end =
            all.iter().find(|r| r["insightDetails"]["state"] == "End" && r["sharedEventID"] == call["sharedEventID"]);
        let end = end.expect("the call rate Insights event ends with the same sharedEventID");
        assert_eq!(end["insightDetails"]["insightContext"]["statistics"]["insightDuration"], 1);
        assert_eq!(
            end["eventTime"],
            crate::record::iso_time(OffsetDateTime::from_unix_timestamp(*T0 + 121 * 60).unwrap())
        );
        // The per-minute counts live in day rows, not in the detector's state.
        let state = w.ct.store.get(STATE_TABLE, &format!("{ACCOUNT}/watch")).unwrap().unwrap();
        assert!(state.len() < 8192, "the state stays small: {} bytes", state.len());
        let rows = w.ct.store.scan(insights::COUNTS_TABLE, &format!("{ACCOUNT}/watch/"), None, 0).unwrap();
        assert!(!rows.is_empty() && rows.len() <= 4, "one row per series and day: {}", rows.len());
        // Delivered with the trail, under CloudTrail-Insight/.
        let insight_dir = w.dir.path().join(format!("watch-bucket/AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1"));
        let mut delivered = 0;
        for day in walk(&insight_dir) {
            let name = day.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                name.starts_with(&format!("{ACCOUNT}_CloudTrail-Insight_us-east-1_")) && name.ends_with(".json.gz")
            );
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(std::fs::File::open(&day).unwrap()),
                &mut text,
            )
            .unwrap();
            let doc: Value = serde_json::from_str(&text).unwrap();
            delivered += doc["Records"].as_array().unwrap().len();
        }
        assert_eq!(delivered, 4, "each Insights event delivered once");
        // ListInsightsData on the trail, by dimension.
        let arn = format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/watch");
        let listed = w
            .call(
                "ListInsightsData",
                json!({"InsightSource": arn, "DataType": "InsightsEvents", "Dimensions": {"EventName": "GetUser"}}),
            )
            .unwrap();
        assert_eq!(listed["Events"].as_array().unwrap().len(), 2);
        assert!(listed["Events"].as_array().unwrap().iter().all(|e| e["EventName"] == "GetUser"));
        // The metric the detector counted.
        let metric = w
            .call(
                "ListInsightsMetricData",
                json!({"EventSource": "iam.amazonaws.com", "EventName": "CreateUser", "InsightType": CALL_RATE,
                       "Period": 60, "StartTime": *T0 + 118 * 60, "EndTime": *T0 + 122 * 60}),
            )
            .unwrap();
        assert_eq!(metric["TrailARN"], arn.as_str());
        assert_eq!(metric["Values"], json!([1.0, 1.0, 30.0, 1.0]));
        assert_eq!(metric["Timestamps"][2], *T0 + 7200);
        // Without EndTime, at the very first second of a counted minute: that minute is in the
        // answer (it was cut off when the end bound was `now`, exclusive).
        let saved = *w.clock.0.lock().unwrap();
        w.set(120, 0);
        let at_boundary = w
            .call(
                "ListInsightsMetricData",
                json!({"EventSource": "iam.amazonaws.com", "EventName": "CreateUser", "InsightType": CALL_RATE,
                       "Period": 60, "StartTime": *T0 + 118 * 60}),
            )
            .unwrap();
        assert_eq!(at_boundary["Values"], json!([1.0, 1.0, 30.0]));
        *w.clock.0.lock().unwrap() = saved;
        let err_metric = w
            .call(
                "ListInsightsMetricData",
                json!({"TrailName": "watch", "EventSource": "iam.amazonaws.com", "EventName": "GetUser",
                       "InsightType": ERROR_RATE, "ErrorCode": "NoSuchEntity", "Period": 3600, "StartTime": *T0,
                       "EndTime": *T0 + 3 * 3600, "DataType": "FillWithZeros", "MaxResults": 2}),
            )
            .unwrap();
        assert_eq!(err_metric["Values"], json!([6.0, 6.0]));
        let rest = w
            .call(
                "ListInsightsMetricData",
                json!({"TrailName": "watch", "EventSource": "iam.amazonaws.com", "EventName": "GetUser",
                       "InsightType": ERROR_RATE, "ErrorCode": "NoSuchEntity", "Period": 3600, "StartTime": *T0,
                       "EndTime": *T0 + 3 * 3600, "DataType": "FillWithZeros", "NextToken": err_metric["NextToken"]}),
            )
            .unwrap();
        assert_eq!(rest["Values"], json!([12.0]));
        // However wide the range asked for, the points are those AWS keeps (1-minute: 15 days).
        let wide = w
            .call(
                "ListInsightsMetricData",
                json!({"TrailName": "watch", "EventSource": "iam.amazonaws.com", "EventName": "CreateUser",
                       "InsightType": CALL_RATE, "Period": 60, "StartTime": 0, "EndTime": 32_503_680_000i64,
                       "DataType": "FillWithZeros", "MaxResults": 21_600}),
            )
            .unwrap();
        assert_eq!(wide["Values"].as_array().unwrap().len(), 15 * 1440);
        let next = w
            .call(
                "ListInsightsMetricData",
                json!({"TrailName": "watch", "EventSource": "iam.amazonaws.com", "EventName": "CreateUser",
                       "InsightType": CALL_RATE, "Period": 60, "StartTime": 0, "EndTime": 32_503_680_000i64,
                       "DataType": "FillWithZeros", "NextToken": wide["NextToken"]}),
            )
            .unwrap();
        assert!(next["Values"].as_array().unwrap().len() <= 2, "the partial first minute and the running one");
        // Turned off: GetInsightSelectors says so, and nothing more is counted.
        w.call("PutInsightSelectors", json!({"TrailName": "watch", "InsightSelectors": []})).unwrap();
        let off = w.call("GetInsightSelectors", json!({"TrailName": "watch"})).unwrap_err();
        assert_eq!(off.code, "InsightNotEnabledException");
        assert!(w.ct.store.scan(insights::COUNTS_TABLE, &format!("{ACCOUNT}/watch/"), None, 0).unwrap().is_empty());
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn selectors_are_validated_as_aws_does() {
        let w = World::new();
        w.call("CreateTrail", json!({"Name": "sel", "S3BucketName": "sel-bucket"})).unwrap();
        for (body, code) in [
            (json!({"TrailName": "sel"}), "InvalidParameterException"),
            (
                json!({"TrailName": "sel", "InsightSelectors": [{"InsightType": "Nope"}]}),
                "InvalidInsightSelectorsException",
            ),
            (
                json!({"TrailName": "sel", "InsightSelectors": [{"InsightType": "ApiCallRateInsight", "EventCategories": ["Data"]}]}),
                "InvalidInsightSelectorsException",
            ),
            (
                json!({"TrailName": "sel", "InsightSelectors": [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiCallRateInsight"}]}),
                "InvalidInsightSelectorsException",
            ),
            (
                json!({"TrailName": "sel", "EventDataStore": "eds-1234", "InsightSelectors": []}),
                "InvalidParameterCombinationException",
            ),
            (json!({"TrailName": "nope", "InsightSelectors": []}), "TrailNotFoundException"),
        ] {
            let err = w.call("PutInsightSelectors", body.clone()).unwrap_err();
            assert_eq!(err.code, code, "{body}");
        }
        // A trail that logs only read events cannot watch write call rates, but can watch errors.
        w.call("PutEventSelectors", json!({"TrailName": "sel", "EventSelectors": [{"ReadWriteType": "ReadOnly"}]}))
            .unwrap();
        let err = w
            .call("PutInsightSelectors", json!({"TrailName": "sel", "InsightSelectors": [{"InsightType": CALL_RATE}]}))
            .unwrap_err();
        assert_eq!(err.code, "InvalidInsightSelectorsException");
        w.call("PutInsightSelectors", json!({"TrailName": "sel", "InsightSelectors": [{"InsightType": ERROR_RATE}]}))
            .unwrap();
        let got = w.call("GetInsightSelectors", json!({"TrailName": "sel"})).unwrap();
        assert_eq!(got["InsightSelectors"], json!([{"InsightType": ERROR_RATE}]));
        for (body, code) in [
            (
                json!({"EventSource": "iam.amazonaws.com", "EventName": "GetUser", "InsightType": ERROR_RATE}),
                "InvalidParameterException",
            ),
            (
                json!({"EventSource": "iam", "EventName": "GetUser", "InsightType": CALL_RATE}),
                "InvalidParameterException",
            ),
            (
                json!({"EventSource": "iam.amazonaws.com", "EventName": "GetUser", "InsightType": CALL_RATE, "Period": 120}),
                "InvalidParameterException",
            ),
        ] {
            assert_eq!(w.call("ListInsightsMetricData", body.clone()).unwrap_err().code, code, "{body}");
        }
    }
}
