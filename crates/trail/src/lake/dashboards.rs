//! CloudTrail Lake dashboards: CreateDashboard, GetDashboard, ListDashboards, UpdateDashboard,
//! DeleteDashboard, StartDashboardRefresh.
//!
//! A custom dashboard is a list of widgets, each a Lake query (statement, parameters, view
//! properties). A refresh runs every widget's query through the Lake query runner as an ordinary
//! query of the caller's account. As in AWS, CloudTrail runs those queries itself: each event
//! data store a widget reads must carry a resource-based policy allowing the service principal
//! `cloudtrail.amazonaws.com` to `cloudtrail:StartQuery` with the dashboard's ARN as
//! `aws:SourceArn`; that is evaluated by the policy engine as a request of that principal
//! (CreateDashboard, UpdateDashboard with widgets, StartDashboardRefresh).
//!
//! Enabled refresh schedules run from the Lake's background thread ([`run_scheduled`], on the
//! service's clock), under the dashboard's own resource policy for CloudTrail
//! (`cloudtrail:StartDashboardRefresh`). Not offered: the Highlights dashboard (AWS's own managed
//! queries).

use rampart_policy::{
    evaluate, Context, ContextValue, Decision, NamedPolicy, Policy, PolicySet, PolicyType, Principal, PrincipalKind,
    Request,
};
use rampart_service::{op, AuthzCheck, AuthzPlan, AwsError, Entry, Input, Operation, Output, RequestContext};
use std::sync::Arc;

use rampart_store::{Read, ReadExt, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::ops::{
    effective_status, inactive, max_results, next_token, not_found, opt_bool, opt_int, opt_str, tag_list, token,
    untoken, validation, MAX_ACTIVE_QUERIES,
};
use super::query::{self, QueryDoc, QUERIES_TABLE};
use super::sql::{self, Translated};
use super::{eds_arn, uuid, EventDataStoreDoc, Lake, EDS_TABLE};
use crate::policies::{drop_policy, Kind, ResourceArn, DASHBOARDS_TABLE};
use crate::service::{any, atomically, e400, one, required, store_err, tags_of, Api};

pub(crate) const OPS: &[Entry<Api>] = &[
    op::<Api, CreateDashboard>(),
    op::<Api, GetDashboard>(),
    op::<Api, ListDashboards>(),
    op::<Api, UpdateDashboard>(),
    op::<Api, DeleteDashboard>(),
    op::<Api, StartDashboardRefresh>(),
];

/// Custom dashboards per account and Region, widgets per dashboard (AWS's quotas).
const MAX_DASHBOARDS: usize = 100;
const MAX_WIDGETS: usize = 10;
/// The name that creates AWS's managed Highlights dashboard.
const HIGHLIGHTS: &str = "AWSCloudTrail-Highlights";
/// The service principal that runs a dashboard's queries.
const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// One widget, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WidgetDoc {
    pub statement: String,
    #[serde(default)]
    pub params: Vec<String>,
    pub view: serde_json::Map<String, Value>,
}

/// A dashboard, as stored under `{account}/{name}` in [`DASHBOARDS_TABLE`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DashboardDoc {
    pub account: String,
    pub region: String,
    pub name: String,
    pub widgets: Vec<WidgetDoc>,
    #[serde(default)]
    pub refresh_schedule: Option<Value>,
    pub termination_protection: bool,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    pub created: i64,
    pub updated: i64,
    /// `CREATED`, or `UPDATED` once changed.
    pub status: String,
    #[serde(default)]
    pub last_refresh_id: Option<String>,
    /// The queries of the last refresh (one per widget).
    #[serde(default)]
    pub last_refresh_queries: Vec<String>,
    /// When the enabled refresh schedule next runs (Unix seconds).
    #[serde(default)]
    pub next_refresh: Option<i64>,
    /// Why the last scheduled refresh failed.
    #[serde(default)]
    pub last_refresh_failure: Option<String>,
}

impl DashboardDoc {
    pub fn arn(&self) -> String {
        dashboard_arn(&self.region, &self.account, &self.name)
    }
}

fn dashboard_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:dashboard/{name}")
}

fn name_ok(name: &str, member: &str) -> Result<(), AwsError> {
    if !(3..=128).contains(&name.len()) {
        return Err(validation(name, member, "Member must have length between 3 and 128"));
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')) {
        return Err(validation(name, member, "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-]+$"));
    }
    Ok(())
}

fn missing(name: &str) -> AwsError {
    e400("ResourceNotFoundException", format!("The dashboard {name} was not found."))
}

/// A dashboard as a call names it (`DashboardId`: its name or ARN).
struct DashboardRef {
    account: Option<String>,
    region: Option<String>,
    name: String,
}

impl DashboardRef {
    fn parse(body: &Value) -> Result<Self, AwsError> {
        let v = required(body, "DashboardId")?;
        if v.starts_with("arn:") {
            let r = ResourceArn::parse(v).map_err(|_| {
                validation(v, "dashboardId", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:]+$")
            })?;
            if r.kind != Kind::Dashboard {
                return Err(missing(v));
            }
            return Ok(DashboardRef { account: Some(r.account), region: Some(r.region), name: r.id });
        }
        // The model's pattern for DashboardId; a value that is no dashboard name names none.
        if v.is_empty()
            || !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-' | b':'))
        {
            return Err(validation(
                v,
                "dashboardId",
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:]+$",
            ));
        }
        Ok(DashboardRef { account: None, region: None, name: v.to_string() })
    }

    fn arn(&self, ctx: &RequestContext) -> String {
        dashboard_arn(
            self.region.as_deref().unwrap_or(&ctx.region),
            self.account.as_deref().unwrap_or(&ctx.caller.account_id),
            &self.name,
        )
    }

    fn check(&self, ctx: &RequestContext, action: &str) -> Result<AuthzPlan, AwsError> {
        one(AuthzCheck::new(format!("cloudtrail:{action}"), self.arn(ctx)))
    }

    fn key(&self, ctx: &RequestContext) -> String {
        format!("{}/{}", ctx.caller.account_id, self.name)
    }

    /// The caller's dashboard in the caller's Region.
    fn load(&self, api: &Api, ctx: &RequestContext) -> Result<DashboardDoc, AwsError> {
        let mine = self.account.as_deref().is_none_or(|a| a == ctx.caller.account_id)
            && self.region.as_deref().is_none_or(|r| r == ctx.region);
        let d = if mine {
            api.store()
                .get_json::<DashboardDoc>(DASHBOARDS_TABLE, &self.key(ctx))
                .map_err(store_err)?
                .filter(|d| d.region == ctx.region)
        } else {
            None
        };
        d.ok_or_else(|| missing(&self.name))
    }
}

/// A widget as parsed: its statement translated (so a bad one is refused when it is saved).
struct NewWidget {
    doc: WidgetDoc,
    translated: Translated,
}

fn widgets(body: &Value) -> Result<Option<Vec<NewWidget>>, AwsError> {
    let Some(list) = body.get("Widgets").filter(|v| !v.is_null()) else { return Ok(None) };
    let list = list.as_array().ok_or_else(|| e400("SerializationException", "Widgets must be a list"))?;
    if list.len() > MAX_WIDGETS {
        return Err(e400(
            "ServiceQuotaExceededException",
            format!("A dashboard can have at most {MAX_WIDGETS} widgets."),
        ));
    }
    let mut out = Vec::new();
    for (i, w) in list.iter().enumerate() {
        let n = i + 1;
        let statement = opt_str(w, "QueryStatement")?.ok_or_else(|| {
            e400(
                "InvalidParameterException",
                format!("1 validation error detected: Value null at 'widgets.{n}.member.queryStatement' failed to satisfy constraint: Member must not be null"),
            )
        })?;
        if statement.is_empty() || statement.chars().count() > 10_000 {
            return Err(validation(
                "…",
                &format!("widgets.{n}.member.queryStatement"),
                "Member must have length between 1 and 10000",
            ));
        }
        let params: Vec<String> = match w.get("QueryParameters").filter(|v| !v.is_null()) {
            None => Vec::new(),
            Some(v) => {
                let l = v.as_array().ok_or_else(|| e400("SerializationException", "QueryParameters must be a list"))?;
                if l.is_empty() || l.len() > 10 {
                    return Err(validation(
                        "…",
                        &format!("widgets.{n}.member.queryParameters"),
                        "Member must have length between 1 and 10",
                    ));
                }
                l.iter()
                    .map(|p| {
                        p.as_str()
                            .filter(|p| !p.is_empty() && p.chars().count() <= 1024)
                            .map(str::to_string)
                            .ok_or_else(|| {
                                validation(
                                    "…",
                                    &format!("widgets.{n}.member.queryParameters.member"),
                                    "Member must have length between 1 and 1024",
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let view = match w.get("ViewProperties") {
            Some(Value::Object(m)) => m.clone(),
            None | Some(Value::Null) => {
                return Err(e400(
                    "InvalidParameterException",
                    format!("1 validation error detected: Value null at 'widgets.{n}.member.viewProperties' failed to satisfy constraint: Member must not be null"),
                ))
            }
            Some(_) => return Err(e400("SerializationException", "ViewProperties must be a map")),
        };
        if view.values().any(|v| !v.is_string()) {
            return Err(e400("SerializationException", "ViewProperties values must be strings"));
        }
        let translated =
            sql::translate(statement).map_err(|e| e400("InvalidQueryStatementException", e.to_string()))?;
        if translated.params != params.len() {
            return Err(e400(
                "InvalidQueryStatementException",
                format!(
                    "The query has {} parameter placeholder(s) but {} QueryParameters were given.",
                    translated.params,
                    params.len()
                ),
            ));
        }
        query::check(&translated).map_err(|m| e400("InvalidQueryStatementException", m))?;
        out.push(NewWidget { doc: WidgetDoc { statement: statement.to_string(), params, view }, translated });
    }
    Ok(Some(out))
}

/// `RefreshSchedule` as the model and AWS's rules take it.
fn refresh_schedule(body: &Value) -> Result<Option<Value>, AwsError> {
    let Some(s) = body.get("RefreshSchedule").filter(|v| !v.is_null()) else { return Ok(None) };
    if !s.is_object() {
        return Err(e400("SerializationException", "RefreshSchedule must be a structure"));
    }
    let mut out = serde_json::Map::new();
    if let Some(f) = s.get("Frequency").filter(|v| !v.is_null()) {
        let unit = opt_str(f, "Unit")?;
        let value = opt_int(f, "Value")?;
        if let Some(u) = unit {
            if !matches!(u, "HOURS" | "DAYS") {
                return Err(validation(
                    u,
                    "refreshSchedule.frequency.unit",
                    "Member must satisfy enum value set: [HOURS, DAYS]",
                ));
            }
        }
        let ok = match (unit, value) {
            (Some("HOURS"), Some(v)) => [1, 6, 12, 24].contains(&v),
            (Some("DAYS"), Some(v)) => v == 1,
            _ => false,
        };
        if !ok {
            return Err(e400(
                "InvalidParameterException",
                "The refresh schedule frequency is not valid: with HOURS the value must be 1, 6, 12 or 24; with DAYS it must be 1.",
            ));
        }
        out.insert("Frequency".into(), json!({"Unit": unit, "Value": value}));
    }
    if let Some(t) = opt_str(s, "TimeOfDay")? {
        let b = t.as_bytes();
        let ok = b.len() >= 5
            && b.iter().take(5).enumerate().all(|(i, c)| if i == 2 { *c == b':' } else { c.is_ascii_digit() });
        if !ok {
            return Err(validation(
                t,
                "refreshSchedule.timeOfDay",
                "Member must satisfy regular expression pattern: ^[0-9]{2}:[0-9]{2}",
            ));
        }
        out.insert("TimeOfDay".into(), json!(t));
    }
    match opt_str(s, "Status")? {
        None | Some("DISABLED") => {
            out.insert("Status".into(), json!("DISABLED"));
        }
        Some("ENABLED") => {
            if !out.contains_key("Frequency") {
                return Err(e400("InvalidParameterException", "An enabled refresh schedule needs a Frequency."));
            }
            out.insert("Status".into(), json!("ENABLED"));
        }
        Some(v) => {
            return Err(validation(
                v,
                "refreshSchedule.status",
                "Member must satisfy enum value set: [ENABLED, DISABLED]",
            ))
        }
    }
    Ok(Some(Value::Object(out)))
}

/// A schedule's period in seconds, and the minute (or hour and minute) it runs at.
fn period_of(schedule: &Value) -> Option<(i64, i64)> {
    let f = schedule.get("Frequency")?;
    let value = f.get("Value").and_then(Value::as_i64)?;
    let (h, m) = schedule
        .get("TimeOfDay")
        .and_then(Value::as_str)
        .and_then(|t| t.split_once(':'))
        .and_then(|(h, m)| Some((h.parse::<i64>().ok()?, m.get(..2).unwrap_or(m).parse::<i64>().ok()?)))
        .unwrap_or((0, 0));
    match f.get("Unit").and_then(Value::as_str)? {
        // Hourly schedules take only the minutes of TimeOfDay, from midnight UTC.
        "HOURS" => Some((value * 3600, (m % 60) * 60)),
        "DAYS" => Some((value * 86_400, ((h % 24) * 3600) + (m % 60) * 60)),
        _ => None,
    }
}

/// When an enabled `schedule` next runs after `t` (Unix seconds): the first of midnight UTC +
/// the offset + k × the period that is later than `t`.
pub(crate) fn next_after(schedule: Option<&Value>, t: i64) -> Option<i64> {
    let s = schedule?;
    if s.get("Status").and_then(Value::as_str) != Some("ENABLED") {
        return None;
    }
    let (period, offset) = period_of(s)?;
    let day = t.div_euclid(86_400) * 86_400;
    let base = day + offset - 86_400;
    let k = (t - base).div_euclid(period) + 1;
    Some(base + k * period)
}

/// Lake's time text (`YYYY-MM-DD HH:MM:SS`, UTC), as `eventTime` compares.
fn lake_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether a scheduled refresh is due at `now` (reads only).
pub(crate) fn refresh_due(store: &dyn Read, now: i64) -> Result<bool, rampart_store::StoreError> {
    let all: Vec<(String, DashboardDoc)> = store.scan_json(DASHBOARDS_TABLE, "")?;
    Ok(all.iter().any(|(_, d)| d.next_refresh.is_some_and(|n| n <= now)))
}

/// Run the scheduled refreshes due at `now`: each is claimed (its next run moved on) before it
/// starts, so none runs twice. CloudTrail refreshes a dashboard only when the dashboard's
/// resource policy allows `cloudtrail.amazonaws.com` `cloudtrail:StartDashboardRefresh` with the
/// dashboard as `aws:SourceArn`; the widgets' stores must allow its queries as for a manual
/// refresh. `$StartTime$` / `$EndTime$` are the last period (now − the frequency, now); a failure
/// is kept as `LastRefreshFailureReason`. Returns how many refreshes started.
pub(crate) fn run_scheduled(lake: &Arc<Lake>, now: OffsetDateTime) -> Result<usize, rampart_store::StoreError> {
    let store = lake.store().clone();
    let t = now.unix_timestamp();
    let all: Vec<(String, DashboardDoc)> = store.scan_json(DASHBOARDS_TABLE, "")?;
    let mut started = 0;
    for (key, d) in all {
        let Some(due) = d.next_refresh.filter(|n| *n <= t) else { continue };
        let claimed = rampart_store::transact(store.as_ref(), |tx| -> Result<bool, rampart_store::StoreError> {
            let Some(mut current) = tx.get_json::<DashboardDoc>(DASHBOARDS_TABLE, &key)? else { return Ok(false) };
            if current.next_refresh != Some(due) {
                return Ok(false);
            }
            current.next_refresh = next_after(current.refresh_schedule.as_ref(), t);
            tx.put_json(DASHBOARDS_TABLE, &key, &current)?;
            Ok(true)
        })?;
        if !claimed {
            continue;
        }
        let arn = d.arn();
        let outcome = match cloudtrail_may(store.as_ref(), "cloudtrail:StartDashboardRefresh", &arn, &d.account, &arn) {
            Ok(true) => {
                let period = d.refresh_schedule.as_ref().and_then(period_of).map_or(3600, |(p, _)| p);
                let values = [
                    ("$StartTime$".to_string(), lake_time(now - time::Duration::seconds(period))),
                    ("$EndTime$".to_string(), lake_time(now)),
                ];
                start_refresh(lake, &key, &d, &values, now).map(|_| ())
            }
            Ok(false) => Err(e400(
                "AccessDeniedException",
                format!("CloudTrail is not allowed to refresh the dashboard: its resource-based policy must allow the service principal {CLOUDTRAIL} to perform cloudtrail:StartDashboardRefresh with aws:SourceArn {arn}."),
            )),
            Err(e) => Err(e),
        };
        if outcome.is_ok() {
            started += 1;
        }
        let failure: Option<String> = outcome.err().map(|e| e.message.chars().take(1000).collect());
        rampart_store::transact(store.as_ref(), |tx| -> Result<(), rampart_store::StoreError> {
            let Some(mut current) = tx.get_json::<DashboardDoc>(DASHBOARDS_TABLE, &key)? else { return Ok(()) };
            current.last_refresh_failure = failure.clone();
            tx.put_json(DASHBOARDS_TABLE, &key, &current)
        })?;
    }
    Ok(started)
}

/// Set member `k` of a JSON object.
fn set(out: &mut Value, k: &str, v: Value) {
    if let Value::Object(m) = out {
        m.insert(k.to_string(), v);
    }
}

fn widget_json(w: &WidgetDoc) -> Value {
    let mut v = json!({"QueryStatement": w.statement, "ViewProperties": w.view});
    if !w.params.is_empty() {
        set(&mut v, "QueryParameters", json!(w.params));
    }
    v
}

fn dashboard_json(d: &DashboardDoc) -> Value {
    let mut v = json!({
        "DashboardArn": d.arn(),
        "Name": d.name,
        "Type": "CUSTOM",
        "Widgets": d.widgets.iter().map(widget_json).collect::<Vec<_>>(),
        "TerminationProtectionEnabled": d.termination_protection,
    });
    if let Some(s) = &d.refresh_schedule {
        set(&mut v, "RefreshSchedule", s.clone());
    }
    v
}

/// Whether the resource policy of `resource` (of `owner`) lets CloudTrail
/// (`cloudtrail.amazonaws.com`) perform `action` on it for the dashboard `source_arn`: the policy
/// engine evaluates that request as the service principal's, so the resource policy alone decides.
pub(crate) fn cloudtrail_may(
    store: &dyn Read,
    action: &str,
    resource: &str,
    owner: &str,
    source_arn: &str,
) -> Result<bool, AwsError> {
    let Some(doc) = crate::policies::resource_policy(store, resource).map_err(store_err)? else { return Ok(false) };
    let Ok(policy) = Policy::parse_stored(&doc, PolicyType::Resource) else { return Ok(false) };
    let principal = Principal { arn: CLOUDTRAIL.into(), account: String::new(), kind: PrincipalKind::Service };
    let mut context = Context::new();
    context.insert("aws:SourceArn", ContextValue::String(source_arn.to_string()));
    context.insert("aws:SourceAccount", ContextValue::String(owner.to_string()));
    context.insert("aws:PrincipalServiceName", ContextValue::String(CLOUDTRAIL.into()));
    context.insert("aws:PrincipalIsAWSService", ContextValue::String("true".into()));
    let req = Request { principal: &principal, action, resource, resource_account: Some(owner), context: &context };
    let set = PolicySet { resource_policy: Some(NamedPolicy::new("resource-policy", &policy)), ..Default::default() };
    Ok(evaluate(&req, &set).decision == Decision::Allowed)
}

/// The event data store a widget's `FROM` names (an ID, or an ARN), if it is `account`'s in `region`.
fn widget_store(
    store: &dyn Read,
    account: &str,
    region: &str,
    id: &str,
) -> Result<Option<EventDataStoreDoc>, AwsError> {
    let d = if id.starts_with("arn:") {
        super::find(store, id).map_err(store_err)?
    } else {
        store.get_json::<EventDataStoreDoc>(EDS_TABLE, &format!("{account}/{id}")).map_err(store_err)?
    };
    Ok(d.filter(|d| d.account == account && d.region == region))
}

/// Every event data store the widgets read: `account`'s, in `region`, not pending deletion, and
/// open to CloudTrail's queries for the dashboard `dashboard`.
fn check_stores<'a>(
    store: &dyn Read,
    account: &str,
    region: &str,
    statements: impl Iterator<Item = &'a Translated>,
    dashboard: &str,
) -> Result<(), AwsError> {
    let mut seen: Vec<String> = Vec::new();
    for t in statements {
        for id in &t.stores {
            if seen.contains(id) {
                continue;
            }
            seen.push(id.clone());
            let d = widget_store(store, account, region, id)?.ok_or_else(not_found)?;
            if d.status == "PENDING_DELETION" {
                return Err(inactive());
            }
            if !cloudtrail_may(store, "cloudtrail:StartQuery", &d.arn(), &d.account, dashboard)? {
                return Err(e400(
                    "AccessDeniedException",
                    format!(
                        "CloudTrail is not allowed to run queries on event data store {}: its resource-based policy must allow the service principal {CLOUDTRAIL} to perform cloudtrail:StartQuery with aws:SourceArn {dashboard}.",
                        eds_arn(&d.region, &d.account, &d.id)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Start a refresh of `d` (stored under `key`): every widget's query, with `values` in place of
/// its `$StartTime$` / `$EndTime$` / `$Period$` parameters, through the Lake query runner.
/// Returns the refresh ID.
pub(crate) fn start_refresh(
    lake: &Arc<Lake>,
    key: &str,
    d: &DashboardDoc,
    values: &[(String, String)],
    now: OffsetDateTime,
) -> Result<String, AwsError> {
    let store = lake.store().as_ref();
    let arn = d.arn();
    let mut runs: Vec<(String, Translated, Vec<String>)> = Vec::new();
    for w in &d.widgets {
        let translated =
            sql::translate(&w.statement).map_err(|e| e400("InvalidQueryStatementException", e.to_string()))?;
        let mut params = Vec::new();
        for p in &w.params {
            let value = if REFRESH_PARAMS.contains(&p.as_str()) {
                values.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone()).ok_or_else(|| {
                    e400("InvalidParameterException", format!("A value for the query parameter {p} is required."))
                })?
            } else {
                p.clone()
            };
            params.push(value);
        }
        runs.push((w.statement.clone(), translated, params));
    }
    check_stores(store, &d.account, &d.region, runs.iter().map(|(_, t, _)| t), &arn)?;
    let created = now.unix_timestamp_nanos() as f64 / 1e9;
    // A refresh ID: digits, as AWS's (10–20 of them).
    let refresh_id = format!("{}", now.unix_timestamp_nanos().unsigned_abs() / 1_000);
    let docs: Vec<QueryDoc> = runs
        .iter()
        .map(|(statement, t, params)| QueryDoc {
            id: uuid(),
            account: d.account.clone(),
            region: d.region.clone(),
            statement: statement.clone(),
            stores: t.stores.clone(),
            owner: None,
            params: params.clone(),
            status: "QUEUED".into(),
            error: None,
            created,
            events_scanned: 0,
            events_matched: 0,
            bytes_scanned: 0,
            exec_ms: 0,
            results: 0,
        })
        .collect();
    let timeout = lake.queries.limits.timeout.as_secs_f64();
    let account = d.account.clone();
    atomically(store, |tx| -> Result<(), AwsError> {
        let mut current = tx
            .get_json::<DashboardDoc>(DASHBOARDS_TABLE, key)
            .map_err(store_err)?
            .filter(|x| x.region == d.region)
            .ok_or_else(|| missing(&d.name))?;
        let mine: Vec<(String, QueryDoc)> = tx.scan_json(QUERIES_TABLE, &format!("{account}/")).map_err(store_err)?;
        let active = |q: &QueryDoc| matches!(effective_status(q, created, timeout), "QUEUED" | "RUNNING");
        // One refresh of a dashboard at a time (AWS's quota).
        if mine.iter().any(|(_, q)| current.last_refresh_queries.contains(&q.id) && active(q)) {
            return Err(e400(
                "ServiceQuotaExceededException",
                "A refresh of this dashboard is already running; a dashboard has at most 1 refresh at a time.",
            ));
        }
        let running = mine.iter().filter(|(_, q)| active(q)).count();
        if running + docs.len() > MAX_ACTIVE_QUERIES {
            return Err(e400(
                "ServiceQuotaExceededException",
                "The refresh would exceed the maximum number of concurrent queries (10).",
            ));
        }
        for q in &docs {
            tx.put_json(QUERIES_TABLE, &q.key(), q).map_err(store_err)?;
        }
        current.last_refresh_id = Some(refresh_id.clone());
        current.last_refresh_queries = docs.iter().map(|q| q.id.clone()).collect();
        tx.put_json(DASHBOARDS_TABLE, key, &current).map_err(store_err)
    })?;
    for (q, (_, t, _)) in docs.into_iter().zip(runs) {
        query::spawn(lake.clone(), q, t);
    }
    Ok(refresh_id)
}

pub(crate) struct CreateDashboard {
    name: String,
    widgets: Vec<NewWidget>,
    schedule: Option<Value>,
    termination_protection: bool,
    tags: Vec<(String, Option<String>)>,
}

impl Operation<Api> for CreateDashboard {
    const NAME: &'static str = "CreateDashboard";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let name = required(body, "Name")?;
        name_ok(name, "name")?;
        if name == HIGHLIGHTS {
            return Err(e400(
                "UnsupportedOperationException",
                "The Highlights dashboard (AWS's managed queries) is not offered by Rampart; create a custom dashboard.",
            ));
        }
        let tags = tags_of(body)?;
        if tags.len() > 200 {
            return Err(validation("…", "tagsList", "Member must have length less than or equal to 200"));
        }
        Ok(CreateDashboard {
            name: name.to_string(),
            widgets: widgets(body)?.unwrap_or_default(),
            schedule: refresh_schedule(body)?,
            termination_protection: opt_bool(body, "TerminationProtectionEnabled")?.unwrap_or(false),
            tags,
        })
    }

    fn authorize(&mut self, _api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        let arn = dashboard_arn(&ctx.region, &ctx.caller.account_id, &self.name);
        one(AuthzCheck::new("cloudtrail:CreateDashboard", arn))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let account = ctx.caller.account_id.clone();
        let arn = dashboard_arn(&ctx.region, &account, &self.name);
        check_stores(api.store(), &account, &ctx.region, self.widgets.iter().map(|w| &w.translated), &arn)?;
        let now = ctx.time.unix_timestamp();
        let d = DashboardDoc {
            account: account.clone(),
            region: ctx.region.clone(),
            name: self.name,
            widgets: self.widgets.into_iter().map(|w| w.doc).collect(),
            refresh_schedule: self.schedule,
            termination_protection: self.termination_protection,
            tags: self.tags.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
            created: now,
            updated: now,
            status: "CREATED".into(),
            last_refresh_id: None,
            last_refresh_queries: Vec::new(),
            next_refresh: None,
            last_refresh_failure: None,
        };
        let d = DashboardDoc { next_refresh: next_after(d.refresh_schedule.as_ref(), now), ..d };
        let key = format!("{account}/{}", d.name);
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            if tx.get(DASHBOARDS_TABLE, &key).map_err(store_err)?.is_some() {
                return Err(e400("ConflictException", format!("A dashboard named {} already exists.", d.name)));
            }
            let here = tx
                .scan_json::<DashboardDoc>(DASHBOARDS_TABLE, &format!("{account}/"))
                .map_err(store_err)?
                .into_iter()
                .filter(|(_, x)| x.region == d.region)
                .count();
            if here >= MAX_DASHBOARDS {
                return Err(e400(
                    "ServiceQuotaExceededException",
                    format!("You can have at most {MAX_DASHBOARDS} dashboards per Region."),
                ));
            }
            tx.put_json(DASHBOARDS_TABLE, &key, &d).map_err(store_err)
        })?;
        let mut out = dashboard_json(&d);
        set(&mut out, "TagsList", tag_list(&d.tags));
        Ok(Output::Json(out))
    }
}

pub(crate) struct GetDashboard(DashboardRef);

impl Operation<Api> for GetDashboard {
    const NAME: &'static str = "GetDashboard";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        Ok(GetDashboard(DashboardRef::parse(input.json())?))
    }

    fn authorize(&mut self, _api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.0.check(ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let d = self.0.load(api, ctx)?;
        let mut out = dashboard_json(&d);
        if let Value::Object(m) = &mut out {
            m.remove("Name");
            m.insert("Status".into(), json!(d.status));
            m.insert("CreatedTimestamp".into(), json!(d.created));
            m.insert("UpdatedTimestamp".into(), json!(d.updated));
            if let Some(r) = &d.last_refresh_id {
                m.insert("LastRefreshId".into(), json!(r));
            }
            if let Some(f) = &d.last_refresh_failure {
                m.insert("LastRefreshFailureReason".into(), json!(f));
            }
        }
        Ok(Output::Json(out))
    }
}

pub(crate) struct ListDashboards {
    prefix: Option<String>,
    managed: Option<bool>,
    max: usize,
    start: usize,
}

impl Operation<Api> for ListDashboards {
    const NAME: &'static str = "ListDashboards";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let prefix = opt_str(body, "NamePrefix")?;
        if let Some(p) = prefix {
            name_ok(p, "namePrefix")?;
        }
        let managed = match opt_str(body, "Type")? {
            None => None,
            Some("MANAGED") => Some(true),
            Some("CUSTOM") => Some(false),
            Some(t) => return Err(validation(t, "type", "Member must satisfy enum value set: [MANAGED, CUSTOM]")),
        };
        let max = max_results(body, "MaxResults", 1000)?;
        let start = match next_token(body)? {
            None => 0,
            Some(t) => untoken("dashboards", t)?,
        };
        Ok(ListDashboards { prefix: prefix.map(str::to_string), managed, max, start })
    }

    fn authorize(&mut self, _api: &Api, _ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        // Rampart has no managed dashboards: every dashboard is CUSTOM.
        let all: Vec<DashboardDoc> = if self.managed == Some(true) {
            Vec::new()
        } else {
            api.store()
                .scan_json::<DashboardDoc>(DASHBOARDS_TABLE, &format!("{}/", ctx.caller.account_id))
                .map_err(store_err)?
                .into_iter()
                .map(|(_, d)| d)
                .filter(|d| d.region == ctx.region)
                .filter(|d| self.prefix.as_deref().is_none_or(|p| d.name.starts_with(p)))
                .collect()
        };
        let page: Vec<Value> = all
            .iter()
            .skip(self.start)
            .take(self.max)
            .map(|d| json!({"DashboardArn": d.arn(), "Type": "CUSTOM"}))
            .collect();
        let mut out = json!({"Dashboards": page});
        let end = self.start.saturating_add(self.max);
        if end < all.len() {
            set(&mut out, "NextToken", json!(token("dashboards", end)));
        }
        Ok(Output::Json(out))
    }
}

pub(crate) struct UpdateDashboard {
    id: DashboardRef,
    widgets: Option<Vec<NewWidget>>,
    schedule: Option<Value>,
    termination_protection: Option<bool>,
}

impl Operation<Api> for UpdateDashboard {
    const NAME: &'static str = "UpdateDashboard";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        Ok(UpdateDashboard {
            id: DashboardRef::parse(body)?,
            widgets: widgets(body)?,
            schedule: refresh_schedule(body)?,
            termination_protection: opt_bool(body, "TerminationProtectionEnabled")?,
        })
    }

    fn authorize(&mut self, _api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.id.check(ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let d = self.id.load(api, ctx)?;
        if let Some(w) = &self.widgets {
            check_stores(api.store(), &d.account, &d.region, w.iter().map(|w| &w.translated), &d.arn())?;
        }
        let key = self.id.key(ctx);
        let now = ctx.time.unix_timestamp();
        let (widgets, schedule, protection) = (self.widgets, self.schedule, self.termination_protection);
        let d = atomically(api.store(), |tx| -> Result<DashboardDoc, AwsError> {
            let mut d = tx
                .get_json::<DashboardDoc>(DASHBOARDS_TABLE, &key)
                .map_err(store_err)?
                .filter(|x| x.region == d.region)
                .ok_or_else(|| missing(&d.name))?;
            if let Some(w) = widgets {
                d.widgets = w.into_iter().map(|w| w.doc).collect();
            }
            if let Some(s) = schedule {
                d.next_refresh = next_after(Some(&s), now);
                d.refresh_schedule = Some(s);
            }
            if let Some(p) = protection {
                d.termination_protection = p;
            }
            d.updated = now;
            d.status = "UPDATED".into();
            tx.put_json(DASHBOARDS_TABLE, &key, &d).map_err(store_err)?;
            Ok(d)
        })?;
        let mut out = dashboard_json(&d);
        set(&mut out, "CreatedTimestamp", json!(d.created));
        set(&mut out, "UpdatedTimestamp", json!(d.updated));
        Ok(Output::Json(out))
    }
}

pub(crate) struct DeleteDashboard(DashboardRef);

impl Operation<Api> for DeleteDashboard {
    const NAME: &'static str = "DeleteDashboard";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        Ok(DeleteDashboard(DashboardRef::parse(input.json())?))
    }

    fn authorize(&mut self, _api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.0.check(ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let d = self.0.load(api, ctx)?;
        let key = self.0.key(ctx);
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            let Some(current) = tx
                .get_json::<DashboardDoc>(DASHBOARDS_TABLE, &key)
                .map_err(store_err)?
                .filter(|x| x.region == d.region)
            else {
                return Err(missing(&d.name));
            };
            if current.termination_protection {
                return Err(e400(
                    "ConflictException",
                    format!("Dashboard {} cannot be deleted because termination protection is enabled.", d.name),
                ));
            }
            tx.delete(DASHBOARDS_TABLE, &key).map_err(store_err)?;
            drop_policy(tx, &current.arn()).map_err(store_err)
        })?;
        Ok(Output::Json(json!({})))
    }
}

/// The query parameters a refresh fills in.
const REFRESH_PARAMS: [&str; 3] = ["$StartTime$", "$EndTime$", "$Period$"];

pub(crate) struct StartDashboardRefresh {
    id: DashboardRef,
    values: Vec<(String, String)>,
}

impl Operation<Api> for StartDashboardRefresh {
    const NAME: &'static str = "StartDashboardRefresh";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let id = DashboardRef::parse(body)?;
        let values = match body.get("QueryParameterValues").filter(|v| !v.is_null()) {
            None => Vec::new(),
            Some(Value::Object(m)) => {
                let mut out = Vec::new();
                for (k, v) in m {
                    let v = v
                        .as_str()
                        .ok_or_else(|| e400("SerializationException", "QueryParameterValues values must be strings"))?;
                    if !REFRESH_PARAMS.contains(&k.as_str()) {
                        let shown: String = k.chars().take(64).collect();
                        return Err(e400(
                            "InvalidParameterException",
                            format!("Query parameter {shown} is not valid. Valid parameters are $StartTime$, $EndTime$ and $Period$."),
                        ));
                    }
                    if v.is_empty() || v.chars().count() > 1024 {
                        return Err(validation(
                            "…",
                            "queryParameterValues",
                            "Member must have length between 1 and 1024",
                        ));
                    }
                    out.push((k.clone(), v.to_string()));
                }
                out
            }
            Some(_) => return Err(e400("SerializationException", "QueryParameterValues must be a map")),
        };
        Ok(StartDashboardRefresh { id, values })
    }

    fn authorize(&mut self, _api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.id.check(ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let d = self.id.load(api, ctx)?;
        let refresh_id = start_refresh(&api.0.lake, &self.id.key(ctx), &d, &self.values, ctx.time)?;
        Ok(Output::Json(json!({"RefreshId": refresh_id})))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn refresh_schedules_are_checked_as_modelled() {
        let ok = refresh_schedule(&json!({"RefreshSchedule": {
            "Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "DISABLED", "TimeOfDay": "05:30"}}))
        .unwrap()
        .unwrap();
        assert_eq!(ok["Frequency"], json!({"Unit": "HOURS", "Value": 6}));
        for (bad, code) in [
            (json!({"Frequency": {"Unit": "HOURS", "Value": 5}}), "InvalidParameterException"),
            (json!({"Frequency": {"Unit": "DAYS", "Value": 2}}), "InvalidParameterException"),
            (json!({"Frequency": {"Unit": "WEEKS", "Value": 1}}), "InvalidParameterException"),
            (json!({"TimeOfDay": "5:30"}), "InvalidParameterException"),
            (json!({"Status": "ENABLED"}), "InvalidParameterException"),
        ] {
            assert_eq!(refresh_schedule(&json!({"RefreshSchedule": bad})).unwrap_err().code, code, "{bad}");
        }
    }

    #[test]
    fn schedules_run_at_their_period_and_minute() {
        let at = |h: i64, m: i64| 1_700_006_400 + h * 3600 + m * 60; // a midnight UTC, + h:m
        let hourly = json!({"Frequency": {"Unit": "HOURS", "Value": 6}, "TimeOfDay": "00:30", "Status": "ENABLED"});
        assert_eq!(next_after(Some(&hourly), at(0, 40)), Some(at(6, 30)));
        assert_eq!(next_after(Some(&hourly), at(0, 10)), Some(at(0, 30)));
        assert_eq!(next_after(Some(&hourly), at(23, 59)), Some(at(24, 30)));
        let daily = json!({"Frequency": {"Unit": "DAYS", "Value": 1}, "TimeOfDay": "05:00", "Status": "ENABLED"});
        assert_eq!(next_after(Some(&daily), at(4, 0)), Some(at(5, 0)));
        assert_eq!(next_after(Some(&daily), at(5, 0)), Some(at(29, 0)));
        let off = json!({"Frequency": {"Unit": "DAYS", "Value": 1}, "Status": "DISABLED"});
        assert_eq!(next_after(Some(&off), at(4, 0)), None);
        assert_eq!(next_after(None, at(4, 0)), None);
    }

    const ACCOUNT: &str = "111111111111";

    /// An event data store and an hourly dashboard reading it, due at 01:00 (`t0` is 00:10);
    /// `allow(resource, action)` is a policy letting CloudTrail do `action` on `resource` for it.
    fn scheduled_setup(
        store: &dyn rampart_store::Store,
    ) -> (EventDataStoreDoc, DashboardDoc, String, OffsetDateTime, impl Fn(&str, &str) -> crate::policies::PolicyDoc)
    {
        use crate::policies::PolicyDoc;
        let account = ACCOUNT;
        let eds = EventDataStoreDoc {
            id: uuid(),
            account: account.into(),
            region: "us-east-1".into(),
            name: "lake".into(),
            status: "ENABLED".into(),
            advanced_event_selectors: super::super::selectors::default_selectors(),
            multi_region: true,
            retention_days: 7,
            termination_protection: false,
            billing_mode: "EXTENDABLE_RETENTION_PRICING".into(),
            tags: vec![],
            created: 0,
            updated: 0,
            ingesting: true,
            checkpoint: 0,
            paused_at: None,
            skip: vec![],
            deleted_at: None,
            large_events: false,
        };
        let schedule = json!({"Frequency": {"Unit": "HOURS", "Value": 1}, "Status": "ENABLED"});
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_006_400 + 600).unwrap(); // 00:10
        let d = DashboardDoc {
            account: account.into(),
            region: "us-east-1".into(),
            name: "ops".into(),
            widgets: vec![WidgetDoc {
                statement: format!("SELECT eventName FROM {} WHERE eventTime > '?'", eds.id),
                params: vec!["$StartTime$".into()],
                view: serde_json::Map::new(),
            }],
            refresh_schedule: Some(schedule.clone()),
            termination_protection: false,
            tags: vec![],
            created: 0,
            updated: 0,
            status: "CREATED".into(),
            last_refresh_id: None,
            last_refresh_queries: vec![],
            next_refresh: next_after(Some(&schedule), t0.unix_timestamp()),
            last_refresh_failure: None,
        };
        let key = format!("{account}/ops");
        let source = d.arn();
        let allow = move |resource: &str, action: &str| PolicyDoc {
            arn: resource.into(),
            account: account.into(),
            policy: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": action, "Resource": resource,
                "Condition": {"StringEquals": {"aws:SourceArn": source}}}]})
            .to_string(),
        };
        rampart_store::transact(store, |tx| {
            tx.put_json(EDS_TABLE, &eds.key(), &eds)?;
            tx.put_json(DASHBOARDS_TABLE, &key, &d)
        })
        .unwrap();
        (eds, d, key, t0, allow)
    }

    /// A scheduled refresh runs on the injected time, once per due time, only under the
    /// dashboard's and the stores' policies for CloudTrail; failures are kept.
    #[test]
    fn scheduled_refreshes_run_when_due_under_cloudtrails_policies() {
        use crate::policies::POLICIES_TABLE;
        let store: Arc<dyn rampart_store::Store> = Arc::new(rampart_store::MemStore::new());
        let lake = Lake::new(store.clone());
        let (eds, d, key, t0, allow) = scheduled_setup(store.as_ref());
        let account = ACCOUNT;
        let get = || store.get_json::<DashboardDoc>(DASHBOARDS_TABLE, &key).unwrap().unwrap();
        let hour = time::Duration::hours(1);
        // Not due yet (01:00 is).
        assert_eq!(run_scheduled(&lake, t0).unwrap(), 0);
        assert!(!refresh_due(store.as_ref(), t0.unix_timestamp()).unwrap());
        assert_eq!(get().next_refresh, Some(1_700_006_400 + 3600));
        // Due, but the dashboard's policy does not let CloudTrail refresh it.
        let t1 = t0 + hour;
        assert!(refresh_due(store.as_ref(), t1.unix_timestamp()).unwrap());
        assert_eq!(run_scheduled(&lake, t1).unwrap(), 0);
        let got = get();
        assert!(got.last_refresh_failure.as_deref().unwrap().contains("StartDashboardRefresh"));
        assert_eq!(got.next_refresh, Some(1_700_006_400 + 2 * 3600), "moved on, not retried at once");
        assert_eq!(run_scheduled(&lake, t1).unwrap(), 0);
        // The dashboard's policy, but not the store's: the widget's query may not run.
        let p = allow(&d.arn(), "cloudtrail:StartDashboardRefresh");
        rampart_store::transact(store.as_ref(), |tx| tx.put_json(POLICIES_TABLE, &p.arn, &p)).unwrap();
        let t2 = t1 + hour;
        assert_eq!(run_scheduled(&lake, t2).unwrap(), 0);
        assert!(get().last_refresh_failure.as_deref().unwrap().contains("cloudtrail:StartQuery"));
        // Both: the refresh runs the widget over the last hour.
        let p = allow(&eds.arn(), "cloudtrail:StartQuery");
        rampart_store::transact(store.as_ref(), |tx| tx.put_json(POLICIES_TABLE, &p.arn, &p)).unwrap();
        let t3 = t2 + hour;
        assert_eq!(run_scheduled(&lake, t3).unwrap(), 1);
        let got = get();
        assert!(got.last_refresh_failure.is_none() && got.last_refresh_id.is_some());
        assert_eq!(got.last_refresh_queries.len(), 1);
        let q: QueryDoc =
            store.get_json(QUERIES_TABLE, &format!("{account}/{}", got.last_refresh_queries[0])).unwrap().unwrap();
        assert_eq!(q.params, [lake_time(t3 - hour)]);
        assert_eq!(q.params[0], "2023-11-15 02:10:00");
    }

    /// The Lake's background thread runs a due refresh on the clock it was given.
    #[test]
    fn the_background_thread_runs_due_refreshes_on_its_clock() {
        use crate::policies::POLICIES_TABLE;
        struct At(OffsetDateTime);
        impl crate::insights::Clock for At {
            fn now(&self) -> OffsetDateTime {
                self.0
            }
        }
        let store: Arc<dyn rampart_store::Store> = Arc::new(rampart_store::MemStore::new());
        let (eds, d, key, t0, allow) = scheduled_setup(store.as_ref());
        let (p, q) = (allow(&d.arn(), "cloudtrail:StartDashboardRefresh"), allow(&eds.arn(), "cloudtrail:StartQuery"));
        rampart_store::transact(store.as_ref(), |tx| {
            tx.put_json(POLICIES_TABLE, &p.arn, &p)?;
            tx.put_json(POLICIES_TABLE, &q.arn, &q)
        })
        .unwrap();
        let lake = Lake::start_with_clock(store.clone(), Arc::new(At(t0 + time::Duration::hours(1))));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let done = loop {
            let got = store.get_json::<DashboardDoc>(DASHBOARDS_TABLE, &key).unwrap().unwrap();
            if got.last_refresh_id.is_some() || std::time::Instant::now() > deadline {
                break got;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        lake.shutdown();
        assert!(done.last_refresh_id.is_some() && done.last_refresh_failure.is_none(), "{done:?}");
        assert_eq!(done.next_refresh, Some(1_700_006_400 + 2 * 3600));
    }

    #[test]
    fn widgets_are_translated_when_saved() {
        let w = widgets(&json!({"Widgets": [{
            "QueryStatement": "SELECT eventName FROM 00000000-0000-4000-8000-000000000000 WHERE eventTime > '?'",
            "QueryParameters": ["$StartTime$"], "ViewProperties": {"View": "Table"}}]}))
        .unwrap()
        .unwrap();
        assert_eq!(w.len(), 1);
        let bad = |w: Value| widgets(&json!({"Widgets": [w]})).err().map(|e| e.code).unwrap_or_default();
        assert_eq!(
            bad(json!({"QueryStatement": "DROP TABLE x", "ViewProperties": {}})),
            "InvalidQueryStatementException"
        );
        assert_eq!(
            bad(json!({"QueryStatement": "SELECT 1", "ViewProperties": {}, "QueryParameters": ["x"]})),
            "InvalidQueryStatementException"
        );
        assert_eq!(bad(json!({"QueryStatement": "SELECT 1"})), "InvalidParameterException");
        let many: Vec<Value> = (0..11).map(|_| json!({"QueryStatement": "SELECT 1", "ViewProperties": {}})).collect();
        assert_eq!(
            widgets(&json!({"Widgets": many})).err().map(|e| e.code).unwrap_or_default(),
            "ServiceQuotaExceededException"
        );
    }
}
