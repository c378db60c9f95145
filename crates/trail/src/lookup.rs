//! LookupEvents over the stored records: one account, newest first, 90 days of history.

use rampart_service::AwsError;
use rampart_store::Read;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::audit::{StoredEvent, EVENTS_TABLE};

/// How far back LookupEvents sees.
pub const HISTORY_DAYS: i64 = 90;
const PAGE: usize = 256;

/// The attribute keys LookupEvents accepts.
pub const ATTRIBUTE_KEYS: &[&str] =
    &["EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"];

/// A LookupEvents request, validated.
#[derive(Debug, Default)]
pub struct Query {
    pub attribute: Option<(String, String)>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub max_results: usize,
    pub next_token: Option<String>,
    /// `EventCategory=insight`: Insights events instead of API calls.
    pub insight: bool,
}

fn err(code: &'static str, msg: impl Into<String>) -> AwsError {
    AwsError::new(code, msg, 400)
}

pub(crate) fn time_of(v: &Value) -> Result<Option<i64>, AwsError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .map(|f| Some(f.floor() as i64))
            .ok_or_else(|| AwsError::new("SerializationException", "Timestamp must be a number of seconds", 400)),
        Value::String(s) => OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(t.unix_timestamp()))
            .or_else(|_| s.parse::<f64>().map(|f| Some(f.floor() as i64)))
            .map_err(|_| AwsError::new("SerializationException", format!("Invalid timestamp: {s}"), 400)),
        _ => Err(AwsError::new("SerializationException", "Invalid timestamp", 400)),
    }
}

impl Query {
    /// Validate the request body as CloudTrail does.
    pub fn parse(body: &Value) -> Result<Query, AwsError> {
        let mut q = Query { max_results: 50, ..Default::default() };
        if let Some(attrs) = body.get("LookupAttributes").filter(|v| !v.is_null()) {
            let list = attrs
                .as_array()
                .ok_or_else(|| err("InvalidLookupAttributesException", "LookupAttributes must be a list"))?;
            if list.len() > 1 {
                return Err(err(
                    "InvalidLookupAttributesException",
                    "You cannot specify more than one lookup attribute.",
                ));
            }
            if let Some(a) = list.first() {
                let key = a.get("AttributeKey").and_then(Value::as_str).unwrap_or_default();
                if !ATTRIBUTE_KEYS.contains(&key) {
                    return Err(err(
                        "InvalidLookupAttributesException",
                        format!(
                            "Lookup attribute key {key:?} is not valid. Valid keys: {}.",
                            ATTRIBUTE_KEYS.join(", ")
                        ),
                    ));
                }
                let value = a.get("AttributeValue").and_then(Value::as_str).unwrap_or_default();
                if value.is_empty() || value.chars().count() > 2000 {
                    return Err(err(
                        "InvalidLookupAttributesException",
                        "Lookup attribute value must be between 1 and 2000 characters.",
                    ));
                }
                q.attribute = Some((key.to_string(), value.to_string()));
            }
        }
        q.start = time_of(body.get("StartTime").unwrap_or(&Value::Null))?;
        q.end = time_of(body.get("EndTime").unwrap_or(&Value::Null))?;
        if let (Some(s), Some(e)) = (q.start, q.end) {
            if s > e {
                return Err(err("InvalidTimeRangeException", "Start time must be before end time."));
            }
        }
        if let Some(m) = body.get("MaxResults").filter(|v| !v.is_null()) {
            let m = m.as_i64().unwrap_or(0);
            if !(1..=50).contains(&m) {
                return Err(err("InvalidMaxResultsException", "MaxResults must be between 1 and 50."));
            }
            q.max_results = m as usize;
        }
        if let Some(ec) = body.get("EventCategory").filter(|v| !v.is_null()) {
            if ec.as_str() != Some("insight") {
                return Err(err("InvalidEventCategoryException", "EventCategory must be insight."));
            }
            q.insight = true;
        }
        if let Some(t) = body.get("NextToken").filter(|v| !v.is_null()) {
            q.next_token = Some(t.as_str().unwrap_or_default().to_string());
        }
        Ok(q)
    }
}

fn matches(e: &StoredEvent, attr: &Option<(String, String)>) -> bool {
    let Some((k, v)) = attr else { return true };
    match k.as_str() {
        "EventId" => &e.id == v,
        "EventName" => &e.name == v,
        "ReadOnly" => e.ro.to_string() == *v,
        "Username" => e.user.as_deref() == Some(v.as_str()),
        "ResourceType" => e.res.iter().any(|(t, _)| t == v),
        "ResourceName" => e.res.iter().any(|(_, n)| n == v),
        "EventSource" => &e.source == v,
        "AccessKeyId" => e.key.as_deref() == Some(v.as_str()),
        _ => false,
    }
}

/// The API form of one event.
pub fn event_json(e: &StoredEvent) -> Value {
    let mut v = json!({
        "EventId": e.id,
        "EventName": e.name,
        "ReadOnly": e.ro.to_string(),
        "EventTime": e.t,
        "EventSource": e.source,
        "Resources": e.res.iter().map(|(t, n)| json!({"ResourceType": t, "ResourceName": n})).collect::<Vec<_>>(),
        "CloudTrailEvent": e.event,
    });
    if let Some(k) = &e.key {
        v["AccessKeyId"] = json!(k);
    }
    if let Some(u) = &e.user {
        v["Username"] = json!(u);
    }
    v
}

/// Run a lookup for `account`.
pub fn lookup(store: &dyn Read, account: &str, q: &Query, now: OffsetDateTime) -> Result<Value, AwsError> {
    let table = if q.insight { crate::insights::INSIGHT_EVENTS_TABLE } else { EVENTS_TABLE };
    lookup_in(store, table, account, q, now, &|_, _| true)
}

/// A lookup in `table` (records, or Insights events) of `account`, of the rows `keep` keeps.
pub fn lookup_in(
    store: &dyn Read,
    table: &str,
    account: &str,
    q: &Query,
    now: OffsetDateTime,
    keep: &dyn Fn(&[u8], &StoredEvent) -> bool,
) -> Result<Value, AwsError> {
    let prefix = format!("{account}/");
    let mut after = match &q.next_token {
        None => None,
        Some(t) => {
            let key = decode_token(t)
                .filter(|k| k.starts_with(&prefix))
                .ok_or_else(|| err("InvalidNextTokenException", "Invalid NextToken."))?;
            Some(key)
        }
    };
    let oldest_visible = now.unix_timestamp() - HISTORY_DAYS * 86_400;
    let floor = q.start.unwrap_or(i64::MIN).max(oldest_visible);
    let mut events = Vec::new();
    let mut more = false;
    // Records commit within moments of their event time; Insights events a while after the
    // minute they name (up to a delivery interval or an Insights event's duration).
    let slack = if table == EVENTS_TABLE { 60 } else { 86_400 };
    if q.max_results == 0 {
        return Ok(json!({"Events": []}));
    }
    'pages: loop {
        let rows = store.scan(table, &prefix, after.as_deref(), PAGE).map_err(|e| AwsError::internal(e.to_string()))?;
        if rows.is_empty() {
            break;
        }
        for (k, v) in &rows {
            let Some(e) = StoredEvent::from_row(v) else { continue };
            // Records are newest first by commit; event times may lag commits by a little.
            if e.t < floor - slack {
                break 'pages;
            }
            if e.t < floor || q.end.is_some_and(|end| e.t > end) || !matches(&e, &q.attribute) || !keep(v, &e) {
                continue;
            }
            if events.len() == q.max_results {
                more = true;
                break 'pages;
            }
            events.push((k.clone(), event_json(&e)));
        }
        after = rows.last().map(|(k, _)| k.clone());
    }
    // The token resumes after the last event returned.
    let next = if more { events.last().map(|(k, _)| encode_token(k)) } else { None };
    let mut out = json!({"Events": events.into_iter().map(|(_, v)| v).collect::<Vec<_>>()});
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

fn encode_token(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_token(t: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok()?;
    String::from_utf8(bytes).ok()
}
