//! The CloudTrail API (awsJson1_1, `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101`).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rampart_service::{
    op, AuthzCheck, AuthzPlan, AwsError, Entry, Input, Operation, Operations, Output, Protocol, RequestContext, Service,
};
use rampart_store::{transact, ReadExt, Sealer, Store, StoreError, TransactionExt};
use serde_json::{json, Value};

use crate::audit::META_TABLE;
use crate::delivery::{Delivery, TrailDoc, TRAILS_TABLE};
use crate::insights::{Clock, InsightsConfig, SystemClock};
use crate::lake::Lake;
use crate::lookup;

/// Trails per account and region (AWS's limit).
const MAX_TRAILS: usize = 5;
/// Tags per trail.
pub(crate) const MAX_TAGS: usize = 50;

/// Server-side settings of CloudTrail.
#[derive(Clone, Debug)]
pub struct TrailConfig {
    /// Where trail buckets live; `None` = no delivery (ephemeral server without `--trail-dir`).
    pub root: Option<PathBuf>,
    /// How often logging trails deliver.
    pub interval: Duration,
    /// The Insights detector's window sizes and thresholds.
    pub insights: InsightsConfig,
}

/// Tells the delivery timer to stop.
type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// The CloudTrail service, with its delivery timer.
pub struct CloudTrail {
    pub(crate) store: Arc<dyn Store>,
    /// CloudTrail Lake: event data stores, their ingestion, queries.
    pub(crate) lake: Arc<Lake>,
    pub(crate) delivery: Arc<Delivery>,
    /// Organizations, once the server wired it (organization trails, delegated administrators).
    pub(crate) orgs: Arc<std::sync::OnceLock<Arc<dyn rampart_service::Organizations>>>,
    timer: Mutex<Option<(StopSignal, JoinHandle<()>)>>,
}

impl CloudTrail {
    /// The service, delivering on a timer every `config.interval`.
    pub fn start(store: Arc<dyn Store>, sealer: Arc<Sealer>, config: TrailConfig) -> Arc<Self> {
        Self::start_with_clock(store, sealer, config, Arc::new(SystemClock))
    }

    /// [`CloudTrail::start`] on `clock` (Insights' minutes, delivery times).
    pub fn start_with_clock(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        config: TrailConfig,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let orgs: Arc<std::sync::OnceLock<Arc<dyn rampart_service::Organizations>>> = Arc::default();
        let delivery = Arc::new(
            Delivery::with_clock(store.clone(), sealer, config.root.clone(), clock.clone(), config.insights)
                .with_organizations(orgs.clone()),
        );
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let timer = {
            let stop_flag = stop.clone();
            let delivery = delivery.clone();
            let interval = config.interval.max(Duration::from_secs(1));
            std::thread::Builder::new()
                .name("rampart-trail-delivery".into())
                .spawn(move || {
                    let (lock, cv) = &*stop_flag;
                    let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        // A stop requested before this thread first took the lock must not wait
                        // out a whole interval (it would block whoever joins it, e.g. a reset).
                        if *stopped {
                            return;
                        }
                        let (g, _) = cv.wait_timeout(stopped, interval).unwrap_or_else(|p| p.into_inner());
                        stopped = g;
                        if *stopped {
                            return;
                        }
                        if let Err(e) = delivery.deliver_all() {
                            tracing::warn!(error = %e, "trail delivery failed");
                        }
                    }
                })
                .ok()
                .map(|h| (stop, h))
        };
        let lake = Lake::start_with_clock(store.clone(), clock.clone());
        Arc::new(CloudTrail { store, lake, delivery, orgs, timer: Mutex::new(timer) })
    }

    /// Wire Organizations in (organization trails, delegated administrators). Once.
    pub fn set_organizations(&self, orgs: Arc<dyn rampart_service::Organizations>) {
        let _ = self.orgs.set(orgs);
    }

    /// Deliver every logging trail now.
    pub fn deliver_now(&self) {
        if let Err(e) = self.delivery.deliver_all() {
            tracing::warn!(error = %e, "trail delivery failed");
        }
    }

    /// CloudTrail Lake (tests drive its ingestion by hand).
    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// Stop the timer and deliver what is pending (server shutdown).
    pub fn shutdown(&self) {
        self.lake.shutdown();
        let timer = self.timer.lock().ok().and_then(|mut g| g.take());
        if let Some((stop, handle)) = timer {
            {
                let (lock, cv) = &*stop;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
                cv.notify_all();
            }
            let _ = handle.join();
            self.deliver_now();
        }
    }

    /// The service as the pipeline sees it.
    pub fn service(self: &Arc<Self>) -> Arc<dyn Service> {
        Arc::new(Api(self.clone()))
    }
}

impl Drop for CloudTrail {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub(crate) struct Api(pub(crate) Arc<CloudTrail>);

pub(crate) fn e400(code: &'static str, msg: impl Into<String>) -> AwsError {
    AwsError::new(code, msg, 400)
}

/// A write transaction whose errors are AWS errors.
pub(crate) fn atomically<T>(
    store: &dyn Store,
    f: impl FnOnce(&mut dyn rampart_store::Transaction) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let mut tx = store.begin().map_err(store_err)?;
    let out = f(tx.as_mut())?;
    tx.commit().map_err(store_err)?;
    Ok(out)
}

pub(crate) fn store_err(e: StoreError) -> AwsError {
    AwsError::internal(e.to_string())
}

pub(crate) fn s<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

pub(crate) fn b(body: &Value, key: &str) -> Option<bool> {
    body.get(key).and_then(Value::as_bool)
}

pub(crate) fn required<'a>(body: &'a Value, key: &str) -> Result<&'a str, AwsError> {
    s(body, key).ok_or_else(|| {
        e400(
            "InvalidParameterException",
            format!("1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

/// AWS's trail name rules.
pub(crate) fn valid_trail_name(name: &str) -> Result<(), AwsError> {
    let bad = |m: &str| Err(e400("InvalidTrailNameException", m.to_string()));
    if name.len() < 3 {
        return bad(&format!(
            "Trail name too short. Minimum allowed length: 3 characters. Specified name length: {} characters.",
            name.len()
        ));
    }
    if name.len() > 128 {
        return bad(&format!(
            "Trail name too long. Maximum allowed length: 128 characters. Specified name length: {} characters.",
            name.len()
        ));
    }
    // AWS checks the first and last character before the character set ("trail!" → ends with).
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() {
        return bad("Trail name must starts with a letter or number.");
    }
    if !last.is_ascii_alphanumeric() {
        return bad("Trail name must ends with a letter or number.");
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
        return bad("Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_).");
    }
    if name.as_bytes().windows(2).any(|w| matches!(w[0], b'.' | b'_' | b'-') && matches!(w[1], b'.' | b'_' | b'-')) {
        return bad("Trail name cannot have adjacent periods, underscores or dashes.");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return bad("Trail name cannot be in an IP address format.");
    }
    Ok(())
}

/// S3 bucket naming rules (they become a directory name here).
fn valid_bucket(bucket: &str) -> Result<(), AwsError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(e400("InvalidS3BucketNameException", format!("Bucket name is not valid: {bucket}")))
    }
}

fn valid_prefix(prefix: &str) -> Result<(), AwsError> {
    let ok = prefix.len() <= 200
        && !prefix.starts_with('/')
        && !prefix.split('/').any(|seg| seg == ".." || seg == ".")
        && !prefix.contains('\0')
        && !prefix.contains('\\');
    if ok {
        Ok(())
    } else {
        Err(e400("InvalidS3PrefixException", format!("The S3 prefix is not valid: {prefix}")))
    }
}

impl Api {
    pub(crate) fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    pub(crate) fn not_found(ctx: &RequestContext, account: &str, name: &str) -> AwsError {
        e400(
            "TrailNotFoundException",
            format!(
                "Unknown trail: arn:aws:cloudtrail:{}:{account}:trail/{name} for the user: {}",
                ctx.region, ctx.caller.account_id
            ),
        )
    }

    pub(crate) fn update(
        &self,
        key: &str,
        f: impl FnOnce(&mut TrailDoc) -> Result<(), AwsError>,
    ) -> Result<TrailDoc, AwsError> {
        atomically(self.store(), |tx| -> Result<TrailDoc, AwsError> {
            let mut t: TrailDoc = tx
                .get_json(TRAILS_TABLE, key)
                .map_err(store_err)?
                .ok_or_else(|| e400("TrailNotFoundException", format!("Unknown trail: {key}")))?;
            f(&mut t)?;
            tx.put_json(TRAILS_TABLE, key, &t).map_err(store_err)?;
            Ok(t)
        })
    }
}

fn trail_json(t: &TrailDoc) -> Value {
    let mut v = json!({
        "Name": t.name,
        "S3BucketName": t.bucket,
        "IncludeGlobalServiceEvents": t.include_global,
        "IsMultiRegionTrail": t.multi_region,
        "HomeRegion": t.home_region,
        "TrailARN": t.arn(),
        "LogFileValidationEnabled": t.validation,
        "HasCustomEventSelectors": !t.event_selectors.is_empty() || t.advanced_event_selectors.is_some(),
        "HasInsightSelectors": !t.insight_selectors.is_empty(),
        "IsOrganizationTrail": t.organization.is_some(),
    });
    if let Some(p) = &t.prefix {
        v["S3KeyPrefix"] = json!(p);
    }
    v
}

fn create_update_json(t: &TrailDoc) -> Value {
    let mut v = trail_json(t);
    if let Value::Object(m) = &mut v {
        m.remove("HomeRegion");
        m.remove("HasCustomEventSelectors");
        m.remove("HasInsightSelectors");
    }
    v
}

pub(crate) fn tags_of(body: &Value) -> Result<Vec<(String, Option<String>)>, AwsError> {
    let Some(list) = body.get("TagsList").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| e400("InvalidTagParameterException", "TagsList must be a list"))?;
    let mut out = Vec::new();
    for t in list {
        let key = t.get("Key").and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 || key.starts_with("aws:") {
            return Err(e400("InvalidTagParameterException", format!("Tag key is not valid: {key:?}")));
        }
        let value = t.get("Value").and_then(Value::as_str).map(str::to_string);
        if value.as_ref().is_some_and(|v| v.chars().count() > 256) {
            return Err(e400("InvalidTagParameterException", "Tag value must be at most 256 characters"));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn unsupported_options(body: &Value) -> Result<(), AwsError> {
    for (k, what) in [
        ("SnsTopicName", "SNS notifications"),
        ("CloudWatchLogsLogGroupArn", "CloudWatch Logs delivery"),
        ("CloudWatchLogsRoleArn", "CloudWatch Logs delivery"),
        ("KmsKeyId", "SSE-KMS encryption of log files"),
    ] {
        if s(body, k).is_some_and(|v| !v.is_empty()) {
            return Err(e400(
                "UnsupportedOperationException",
                format!("{k}: Rampart's CloudTrail does not offer {what}."),
            ));
        }
    }
    Ok(())
}

fn epoch(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(t))
}

fn timestring(t: Option<i64>) -> Value {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map_or(Value::Null, |t| json!(crate::record::iso_time(t)))
}

pub(crate) fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}

fn validate_selectors(body: &Value) -> Result<(Vec<Value>, Option<Vec<Value>>), AwsError> {
    let sel = body.get("EventSelectors").filter(|v| !v.is_null());
    let adv = body.get("AdvancedEventSelectors").filter(|v| !v.is_null());
    match (sel, adv) {
        (Some(_), Some(_)) => Err(e400(
            "InvalidParameterCombinationException",
            "You cannot specify both EventSelectors and AdvancedEventSelectors.",
        )),
        (None, None) => {
            Err(e400("InvalidEventSelectorsException", "Specify EventSelectors or AdvancedEventSelectors."))
        }
        (Some(sel), None) => {
            let list = sel
                .as_array()
                .ok_or_else(|| e400("InvalidEventSelectorsException", "EventSelectors must be a list"))?;
            if list.len() > 5 {
                return Err(e400("InvalidEventSelectorsException", "You can specify at most 5 event selectors."));
            }
            for s in list {
                if let Some(rw) = s.get("ReadWriteType").filter(|v| !v.is_null()) {
                    if !matches!(rw.as_str(), Some("ReadOnly" | "WriteOnly" | "All")) {
                        return Err(e400("InvalidEventSelectorsException", format!("Invalid ReadWriteType: {rw}")));
                    }
                }
            }
            Ok((list.clone(), None))
        }
        (None, Some(adv)) => {
            let list = adv
                .as_array()
                .ok_or_else(|| e400("InvalidEventSelectorsException", "AdvancedEventSelectors must be a list"))?;
            for s in list {
                if !s.get("FieldSelectors").is_some_and(Value::is_array) {
                    return Err(e400(
                        "InvalidEventSelectorsException",
                        "Each advanced event selector needs FieldSelectors.",
                    ));
                }
            }
            Ok((Vec::new(), Some(list.clone())))
        }
    }
}

fn selectors_json(t: &TrailDoc) -> Value {
    let mut v = json!({"TrailARN": t.arn()});
    match &t.advanced_event_selectors {
        Some(adv) => v["AdvancedEventSelectors"] = json!(adv),
        None if t.event_selectors.is_empty() => {
            v["EventSelectors"] = json!([{"ReadWriteType": "All", "IncludeManagementEvents": true,
                                           "DataResources": [], "ExcludeManagementEventSources": []}]);
        }
        None => v["EventSelectors"] = json!(t.event_selectors),
    }
    v
}

impl Service for Api {
    fn signing_name(&self) -> &'static str {
        "cloudtrail"
    }

    fn event_source(&self) -> &'static str {
        "cloudtrail.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsJson1_1
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.has(operation)
    }

    fn operation_names(&self) -> Vec<&'static str> {
        OPERATIONS.names()
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        OPERATIONS
            .call(self, ctx, operation, input, decide)
            .unwrap_or_else(|| Err(AwsError::unknown_operation("cloudtrail", operation)))
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        OPERATIONS
            .plan(self, ctx, operation, input)
            .unwrap_or_else(|| Err(AwsError::unknown_operation("cloudtrail", operation)))
    }
}

/// A trail as a call names it (its name, or its ARN), checked as AWS checks either.
pub(crate) struct TrailRef {
    /// As given.
    pub(crate) given: String,
    /// The account an ARN names; a bare name is the caller's.
    pub(crate) account: Option<String>,
    pub(crate) name: String,
}

impl TrailRef {
    pub(crate) fn parse(name_or_arn: &str) -> Result<Self, AwsError> {
        let given = name_or_arn.to_string();
        if let Some(rest) = name_or_arn.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let ok =
                parts.len() == 5 && parts[1] == "cloudtrail" && parts[3].len() == 12 && parts[4].starts_with("trail/");
            if !ok {
                return Err(e400("CloudTrailARNInvalidException", format!("Invalid trail ARN: {name_or_arn}")));
            }
            let name = &parts[4]["trail/".len()..];
            valid_trail_name(name)?;
            return Ok(TrailRef { given, account: Some(parts[3].to_string()), name: name.to_string() });
        }
        valid_trail_name(name_or_arn)?;
        Ok(TrailRef { given, account: None, name: name_or_arn.to_string() })
    }

    pub(crate) fn account<'a>(&'a self, ctx: &'a RequestContext) -> &'a str {
        self.account.as_deref().unwrap_or(&ctx.caller.account_id)
    }

    /// The trail's key in [`TRAILS_TABLE`].
    pub(crate) fn key(&self, ctx: &RequestContext) -> String {
        format!("{}/{}", self.account(ctx), self.name)
    }

    /// Tag operations take a trail ARN (AWS rejects bare names there).
    fn require_arn(&self) -> Result<(), AwsError> {
        if self.given.starts_with("arn:") {
            Ok(())
        } else {
            Err(e400("CloudTrailARNInvalidException", format!("Invalid trail ARN: {}", self.given)))
        }
    }
}

/// The trail a call is about and, once planning read it, its record: the run works on the
/// record the plan authorized (read once per call).
pub(crate) struct Trail {
    pub(crate) r: TrailRef,
    /// `Some` once read: the record under the trail's key, if any.
    doc: Option<Option<TrailDoc>>,
}

impl Trail {
    pub(crate) fn new(r: TrailRef) -> Self {
        Trail { r, doc: None }
    }

    /// The trail named by the required member `member`.
    pub(crate) fn parse(body: &Value, member: &str) -> Result<Self, AwsError> {
        Ok(Trail::new(TrailRef::parse(required(body, member)?)?))
    }

    /// The record under the trail's key (read on first use).
    pub(crate) fn read(&mut self, api: &Api, ctx: &RequestContext) -> Result<Option<&TrailDoc>, AwsError> {
        if self.doc.is_none() {
            self.doc = Some(api.store().get_json(TRAILS_TABLE, &self.r.key(ctx)).map_err(store_err)?);
        }
        Ok(self.doc.as_ref().and_then(Option::as_ref))
    }

    /// `cloudtrail:{action}` on the trail's ARN, in its home Region (the caller's Region for a
    /// trail that does not exist).
    pub(crate) fn check(&mut self, api: &Api, ctx: &RequestContext, action: &str) -> Result<AuthzCheck, AwsError> {
        let home = self.read(api, ctx)?.map_or_else(|| ctx.region.clone(), |t| t.home_region.clone());
        let arn = format!("arn:aws:cloudtrail:{home}:{}:trail/{}", self.r.account(ctx), self.r.name);
        Ok(AuthzCheck::new(format!("cloudtrail:{action}"), arn))
    }

    /// The trail, if visible from the caller's Region (its home Region, or any Region if
    /// multi-Region): its key and record.
    pub(crate) fn load(self, api: &Api, ctx: &RequestContext) -> Result<(String, TrailDoc), AwsError> {
        self.load_for(api, ctx, true)
    }

    /// [`Trail::load`]; another account's trail only if it is an organization trail of the
    /// caller's organization: to `manage` it the caller must be the management account or a
    /// CloudTrail delegated administrator, to read it any account of the organization.
    pub(crate) fn load_for(
        mut self,
        api: &Api,
        ctx: &RequestContext,
        manage: bool,
    ) -> Result<(String, TrailDoc), AwsError> {
        let key = self.r.key(ctx);
        self.read(api, ctx)?;
        let t = self.doc.take().flatten();
        let t = match t {
            Some(t) if t.account != ctx.caller.account_id => {
                let role = match &t.organization {
                    Some(org) => api.org_role(ctx)?.filter(|(v, _)| &v.id == org && v.management_account == t.account),
                    None => None,
                };
                match role {
                    None => None,
                    Some((_, crate::org::Role::Member)) if manage => {
                        return Err(crate::org::not_admin(&ctx.caller.account_id))
                    }
                    Some(_) => Some(t),
                }
            }
            t => t,
        };
        match t {
            Some(t) if t.multi_region || t.home_region == ctx.region => Ok((key, t)),
            _ => Err(Api::not_found(ctx, self.r.account(ctx), &self.r.name)),
        }
    }

    /// [`Trail::load`] for tag operations, which report a missing trail as a missing resource.
    fn load_tagged(self, api: &Api, ctx: &RequestContext) -> Result<(String, TrailDoc), AwsError> {
        let (account, name) = (self.r.account(ctx).to_string(), self.r.name.clone());
        self.load(api, ctx).map_err(|e| {
            if e.code == "TrailNotFoundException" {
                e400(
                    "ResourceNotFoundException",
                    format!("Resource not found: arn:aws:cloudtrail:{}:{account}:trail/{name}", ctx.region),
                )
            } else {
                e
            }
        })
    }
}

/// Every CloudTrail operation Rampart implements, each listed once.
static OPERATIONS: Operations<Api> = Operations::new(&[
    OPS,
    crate::insights_api::OPS,
    crate::org::OPS,
    crate::lake::ops::OPS,
    crate::lake::event_config::OPS,
    crate::lake::dashboards::OPS,
    crate::policies::OPS,
    crate::channels::OPS,
]);

const OPS: &[Entry<Api>] = &[
    op::<Api, LookupEvents>(),
    op::<Api, CreateTrail>(),
    op::<Api, GetTrail>(),
    op::<Api, DescribeTrails>(),
    op::<Api, ListTrails>(),
    op::<Api, UpdateTrail>(),
    op::<Api, DeleteTrail>(),
    op::<Api, StartLogging>(),
    op::<Api, StopLogging>(),
    op::<Api, GetTrailStatus>(),
    op::<Api, PutEventSelectors>(),
    op::<Api, GetEventSelectors>(),
    op::<Api, AddTags>(),
    op::<Api, RemoveTags>(),
    op::<Api, ListTags>(),
    op::<Api, ListPublicKeys>(),
];

pub(crate) fn one(c: AuthzCheck) -> Result<AuthzPlan, AwsError> {
    Ok(AuthzPlan::Checks(vec![c]))
}

/// `cloudtrail:{action}` without a resource.
pub(crate) fn any(action: &str) -> Result<AuthzPlan, AwsError> {
    one(AuthzCheck::new(format!("cloudtrail:{action}"), "*"))
}

/// The trail operations named by one required member (`Name` or `TrailName`), planned on the
/// trail's ARN; the run gets the trail as planning read it.
macro_rules! on_trail {
    ($(#[$doc:meta])* $op:ident, $member:literal, |$api:ident, $ctx:ident, $trail:ident| $run:expr) => {
        $(#[$doc])*
        struct $op {
            trail: Trail,
        }

        impl Operation<Api> for $op {
            const NAME: &'static str = stringify!($op);
            type Error = AwsError;

            fn parse(input: &Input) -> Result<Self, AwsError> {
                Ok($op { trail: Trail::parse(input.json(), $member)? })
            }

            fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
                one(self.trail.check(api, ctx, Self::NAME)?)
            }

            fn run(self, $api: &Api, $ctx: &RequestContext) -> Result<Output, AwsError> {
                let $trail = self.trail;
                Ok(Output::Json($run))
            }
        }
    };
}

/// The home Region check of changes that only the home Region may make.
pub(crate) fn in_home_region(ctx: &RequestContext, t: &TrailDoc) -> Result<(), AwsError> {
    if t.home_region == ctx.region {
        Ok(())
    } else {
        Err(e400(
            "InvalidHomeRegionException",
            format!("This operation must be called from the trail's home region, {}.", t.home_region),
        ))
    }
}

on_trail!(
    /// GetTrail names the trail as the caller did (other operations name its ARN).
    GetTrail,
    "Name",
    |api, ctx, trail| {
        let given = trail.r.given.clone();
        let (_, t) = trail.load_for(api, ctx, false).map_err(|mut e| {
            if e.code == "TrailNotFoundException" {
                e.message = format!("Unknown trail: {given} for the user: {}", ctx.caller.account_id);
            }
            e
        })?;
        json!({"Trail": trail_json(&t)})
    }
);

on_trail!(DeleteTrail, "Name", |api, ctx, trail| {
    let (key, t) = trail.load(api, ctx)?;
    in_home_region(ctx, &t)?;
    // Deliver what the trail has pending before it goes.
    if t.logging {
        let _ = api.0.delivery.deliver(&key);
    }
    transact(api.store(), |tx| {
        tx.delete(crate::insights::STATE_TABLE, &key)?;
        crate::insights::prune_counts(tx, &key, i64::MAX)?;
        tx.delete(TRAILS_TABLE, &key).map(|_| ())
    })
    .map_err(store_err)?;
    json!({})
});

on_trail!(StartLogging, "Name", |api, ctx, trail| {
    let (key, t) = trail.load(api, ctx)?;
    if !t.logging {
        let now = ctx.time.unix_timestamp();
        let seq: u64 = api.store().get_json(META_TABLE, "seq").map_err(store_err)?.unwrap_or(0);
        api.update(&key, |t| {
            t.logging = true;
            t.start_logging = Some(now);
            // Only calls from now on are delivered (AWS: events after logging starts).
            t.delivered_seq = t.delivered_seq.max(seq);
            Ok(())
        })?;
        crate::insights_api::resume(api, &key, seq)?;
    }
    json!({})
});

on_trail!(StopLogging, "Name", |api, ctx, trail| {
    let (key, t) = trail.load(api, ctx)?;
    if t.logging {
        // Deliver everything so far: StopLogging is also the deterministic flush.
        let _ = api.0.delivery.deliver(&key);
        let now = ctx.time.unix_timestamp();
        api.update(&key, |t| {
            t.logging = false;
            t.stop_logging = Some(now);
            Ok(())
        })?;
    }
    json!({})
});

on_trail!(GetTrailStatus, "Name", |api, ctx, trail| {
    let (_, t) = trail.load_for(api, ctx, false)?;
    strip_nulls(json!({
        "IsLogging": t.logging,
        "LatestDeliveryTime": epoch(t.latest_delivery),
        "LatestDeliveryError": t.latest_delivery_error,
        "LatestDigestDeliveryTime": epoch(t.latest_digest_delivery),
        "LatestDigestDeliveryError": t.latest_digest_error,
        "StartLoggingTime": epoch(t.start_logging),
        "StopLoggingTime": epoch(t.stop_logging),
        "TimeLoggingStarted": timestring(t.start_logging),
        "TimeLoggingStopped": timestring(t.stop_logging),
        "LatestDeliveryAttemptTime": timestring(t.latest_delivery),
        "LatestDeliveryAttemptSucceeded": timestring(t.latest_delivery),
    }))
});

on_trail!(GetEventSelectors, "TrailName", |api, ctx, trail| selectors_json(&trail.load_for(api, ctx, false)?.1));

struct LookupEvents(lookup::Query);

impl Operation<Api> for LookupEvents {
    const NAME: &'static str = "LookupEvents";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        Ok(LookupEvents(lookup::Query::parse(input.json())?))
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        lookup::lookup(api.store(), &ctx.caller.account_id, &self.0, ctx.time).map(Output::Json)
    }
}

struct ListTrails;

impl Operation<Api> for ListTrails {
    const NAME: &'static str = "ListTrails";
    type Error = AwsError;

    fn parse(_: &Input) -> Result<Self, AwsError> {
        Ok(ListTrails)
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let trails = api.visible_trails(ctx)?;
        Ok(Output::Json(json!({"Trails": trails.iter().map(|t| json!({"TrailARN": t.arn(), "Name": t.name,
            "HomeRegion": t.home_region})).collect::<Vec<_>>()})))
    }
}

struct ListPublicKeys;

impl Operation<Api> for ListPublicKeys {
    const NAME: &'static str = "ListPublicKeys";
    type Error = AwsError;

    fn parse(_: &Input) -> Result<Self, AwsError> {
        Ok(ListPublicKeys)
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        any(Self::NAME)
    }

    fn run(self, api: &Api, _: &RequestContext) -> Result<Output, AwsError> {
        let (key, created) = api.0.delivery.signing_key().map_err(|e| AwsError::internal(e.to_string()))?;
        use base64::Engine as _;
        Ok(Output::Json(json!({"PublicKeyList": [{
            "Value": base64::engine::general_purpose::STANDARD.encode(key.public_der()),
            "ValidityStartTime": created,
            "ValidityEndTime": created + 10 * 365 * 86_400,
            "Fingerprint": key.fingerprint(),
        }]})))
    }
}

struct DescribeTrails {
    include_shadow: bool,
    /// `trailNameList`, when it names any trail.
    wanted: Option<Vec<TrailRef>>,
}

impl Operation<Api> for DescribeTrails {
    const NAME: &'static str = "DescribeTrails";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let include_shadow = b(body, "includeShadowTrails").unwrap_or(true);
        let wanted = match body.get("trailNameList").and_then(Value::as_array).filter(|l| !l.is_empty()) {
            Some(names) => {
                Some(names.iter().map(|n| TrailRef::parse(n.as_str().unwrap_or_default())).collect::<Result<_, _>>()?)
            }
            None => None,
        };
        Ok(DescribeTrails { include_shadow, wanted })
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let mut trails: Vec<TrailDoc> = api
            .visible_trails(ctx)?
            .into_iter()
            .filter(|t| self.include_shadow || t.home_region == ctx.region)
            .collect();
        if let Some(wanted) = &self.wanted {
            trails.retain(|t| wanted.iter().any(|w| w.account(ctx) == t.account && w.name == t.name));
        }
        Ok(Output::Json(json!({"trailList": trails.iter().map(trail_json).collect::<Vec<_>>()})))
    }
}

struct CreateTrail {
    /// Planned on its ARN (a name only: an ARN is refused).
    trail: Trail,
    bucket: String,
    prefix: Option<String>,
    tags: Vec<(String, Option<String>)>,
    include_global: bool,
    multi_region: bool,
    validation: bool,
    /// `IsOrganizationTrail`.
    organization: bool,
}

impl Operation<Api> for CreateTrail {
    const NAME: &'static str = "CreateTrail";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let trail = Trail::parse(body, "Name")?;
        if trail.r.given.starts_with("arn:") {
            return Err(e400("InvalidTrailNameException", "Trail name cannot be an ARN when creating a trail."));
        }
        let bucket = required(body, "S3BucketName")?;
        valid_bucket(bucket)?;
        let prefix = s(body, "S3KeyPrefix").filter(|p| !p.is_empty());
        if let Some(p) = prefix {
            valid_prefix(p)?;
        }
        unsupported_options(body)?;
        let tags = tags_of(body)?;
        if tags.len() > MAX_TAGS {
            return Err(e400(
                "TagsLimitExceededException",
                format!("The number of tags on a trail cannot exceed {MAX_TAGS}."),
            ));
        }
        let include_global = b(body, "IncludeGlobalServiceEvents").unwrap_or(true);
        let multi_region = b(body, "IsMultiRegionTrail").unwrap_or(false);
        if multi_region && !include_global {
            return Err(e400(
                "InvalidParameterCombinationException",
                "Multi-Region trail must include global service events.",
            ));
        }
        Ok(CreateTrail {
            trail,
            bucket: bucket.to_string(),
            prefix: prefix.map(str::to_string),
            tags,
            include_global,
            multi_region,
            validation: b(body, "EnableLogFileValidation").unwrap_or(false),
            organization: b(body, "IsOrganizationTrail").unwrap_or(false),
        })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        if self.organization {
            // A delegated administrator's organization trail belongs to the management account.
            if let Some((v, crate::org::Role::DelegatedAdmin)) = api.org_role(ctx)? {
                self.trail.r.account = Some(v.management_account);
            }
        }
        one(self.trail.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        api.create_trail(ctx, self).map(Output::Json)
    }
}

struct UpdateTrail {
    trail: Trail,
    bucket: Option<String>,
    prefix: Option<String>,
    include_global: Option<bool>,
    multi_region: Option<bool>,
    validation: Option<bool>,
    /// `IsOrganizationTrail`.
    organization: Option<bool>,
    /// What is wrong with the new settings (bucket, prefix, unsupported options), reported once
    /// the trail is found in its home Region, as always.
    invalid: Option<AwsError>,
}

impl Operation<Api> for UpdateTrail {
    const NAME: &'static str = "UpdateTrail";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let trail = Trail::parse(body, "Name")?;
        let bucket = s(body, "S3BucketName").map(str::to_string);
        let prefix = s(body, "S3KeyPrefix").map(str::to_string);
        let invalid = bucket
            .as_deref()
            .map_or(Ok(()), valid_bucket)
            .and_then(|()| prefix.as_deref().filter(|p| !p.is_empty()).map_or(Ok(()), valid_prefix))
            .and_then(|()| unsupported_options(body))
            .err();
        Ok(UpdateTrail {
            trail,
            bucket,
            prefix,
            include_global: b(body, "IncludeGlobalServiceEvents"),
            multi_region: b(body, "IsMultiRegionTrail"),
            validation: b(body, "EnableLogFileValidation"),
            organization: b(body, "IsOrganizationTrail"),
            invalid,
        })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.trail.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        api.update_trail(ctx, self).map(Output::Json)
    }
}

struct PutEventSelectors {
    trail: Trail,
    /// The selectors, or what is wrong with them (reported once the trail is found).
    selectors: Result<(Vec<Value>, Option<Vec<Value>>), AwsError>,
}

impl Operation<Api> for PutEventSelectors {
    const NAME: &'static str = "PutEventSelectors";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        Ok(PutEventSelectors { trail: Trail::parse(body, "TrailName")?, selectors: validate_selectors(body) })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.trail.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let (key, _) = self.trail.load(api, ctx)?;
        let (sel, adv) = self.selectors?;
        let t = api.update(&key, |t| {
            t.event_selectors = sel;
            t.advanced_event_selectors = adv;
            Ok(())
        })?;
        Ok(Output::Json(selectors_json(&t)))
    }
}

/// What a tag operation names: a trail, or an event data store or channel (by ARN).
enum Tagged {
    Trail(Trail),
    Store(crate::lake::ops::StoreRef),
    Channel(crate::channels::ChannelRef),
}

impl Tagged {
    fn parse(id: &str) -> Result<Self, AwsError> {
        if id.starts_with("arn:") && id.contains(":eventdatastore/") {
            return crate::lake::ops::StoreRef::parse(id).map(Tagged::Store);
        }
        if id.starts_with("arn:") && id.contains(":channel/") {
            return crate::channels::ChannelRef::parse(id, "resourceId").map(Tagged::Channel);
        }
        Ok(Tagged::Trail(Trail::new(TrailRef::parse(id)?)))
    }

    fn check(&mut self, api: &Api, ctx: &RequestContext, action: &str) -> Result<AuthzCheck, AwsError> {
        match self {
            Tagged::Trail(t) => t.check(api, ctx, action),
            Tagged::Store(s) => Ok(s.check(api, ctx, action)),
            Tagged::Channel(c) => Ok(AuthzCheck::new(format!("cloudtrail:{action}"), c.arn(ctx))),
        }
    }

    fn require_arn(&self) -> Result<(), AwsError> {
        match self {
            Tagged::Trail(t) => t.r.require_arn(),
            Tagged::Store(_) | Tagged::Channel(_) => Ok(()),
        }
    }

    /// The resource's ARN and tags now, or `ResourceNotFoundException`.
    fn tags(self, api: &Api, ctx: &RequestContext) -> Result<(String, Vec<(String, String)>), AwsError> {
        match self {
            Tagged::Trail(t) => t.load_tagged(api, ctx).map(|(_, t)| (t.arn(), t.tags)),
            Tagged::Store(s) => s.load_tagged(api, ctx).map(|d| (d.arn(), d.tags)),
            Tagged::Channel(c) => c.load_tagged(api, ctx).map(|d| (d.arn(), d.tags)),
        }
    }

    /// Change the resource's tags (in one transaction).
    fn retag(
        self,
        api: &Api,
        ctx: &RequestContext,
        f: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), AwsError>,
    ) -> Result<(), AwsError> {
        match self {
            Tagged::Trail(t) => {
                let (key, _) = t.load_tagged(api, ctx)?;
                api.update(&key, |t| f(&mut t.tags)).map(|_| ())
            }
            Tagged::Store(s) => {
                let d = s.load_tagged(api, ctx)?;
                crate::lake::ops::update_store(api, &d.key(), |d| f(&mut d.tags)).map(|_| ())
            }
            Tagged::Channel(c) => {
                let d = c.load_tagged(api, ctx)?;
                crate::channels::update_channel(api, &d.key(), |d| f(&mut d.tags)).map(|_| ())
            }
        }
    }
}

/// AddTags and RemoveTags: a trail or event data store ARN and `TagsList`.
struct TagChange {
    target: Tagged,
    /// The tags, or what is wrong with them (reported once the resource is found).
    tags: Result<Vec<(String, Option<String>)>, AwsError>,
}

impl TagChange {
    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let target = Tagged::parse(required(body, "ResourceId")?)?;
        target.require_arn()?;
        Ok(TagChange { target, tags: tags_of(body) })
    }
}

struct AddTags(TagChange);

impl Operation<Api> for AddTags {
    const NAME: &'static str = "AddTags";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        TagChange::parse(input).map(AddTags)
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.0.target.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let TagChange { target, tags } = self.0;
        let what = match target {
            Tagged::Store(_) => "event data store",
            Tagged::Channel(_) => "channel",
            Tagged::Trail(_) => "trail",
        };
        target.retag(api, ctx, |current| add_tags(current, tags?, what))?;
        Ok(Output::Json(json!({})))
    }
}

fn add_tags(
    current: &mut Vec<(String, String)>,
    tags: Vec<(String, Option<String>)>,
    what: &str,
) -> Result<(), AwsError> {
    for (k, v) in tags {
        let v = v.unwrap_or_default();
        match current.iter_mut().find(|(tk, _)| *tk == k) {
            Some(existing) => existing.1 = v,
            None => current.push((k, v)),
        }
    }
    if current.len() > MAX_TAGS {
        return Err(e400(
            "TagsLimitExceededException",
            format!("The number of tags on a {what} cannot exceed {MAX_TAGS}."),
        ));
    }
    Ok(())
}

struct RemoveTags(TagChange);

impl Operation<Api> for RemoveTags {
    const NAME: &'static str = "RemoveTags";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        TagChange::parse(input).map(RemoveTags)
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.0.target.check(api, ctx, Self::NAME)?)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let TagChange { target, tags } = self.0;
        target.retag(api, ctx, |current| {
            let tags = tags?;
            current.retain(|(k, v)| !tags.iter().any(|(rk, rv)| rk == k && rv.as_ref().is_none_or(|rv| rv == v)));
            Ok(())
        })?;
        Ok(Output::Json(json!({})))
    }
}

struct ListTags {
    targets: Vec<Tagged>,
}

impl Operation<Api> for ListTags {
    const NAME: &'static str = "ListTags";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let ids = input
            .json()
            .get("ResourceIdList")
            .and_then(Value::as_array)
            .ok_or_else(|| e400("InvalidParameterException", "ResourceIdList is required"))?;
        let targets = ids.iter().map(|id| Tagged::parse(id.as_str().unwrap_or_default())).collect::<Result<_, _>>()?;
        Ok(ListTags { targets })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        let mut checks = Vec::with_capacity(self.targets.len());
        for t in &mut self.targets {
            checks.push(t.check(api, ctx, Self::NAME)?);
        }
        if checks.is_empty() {
            checks.push(AuthzCheck::new(format!("cloudtrail:{}", Self::NAME), "*"));
        }
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let mut list = Vec::with_capacity(self.targets.len());
        for target in self.targets {
            // Each in turn, as AWS answers: a bare name after a missing trail reports the latter.
            target.require_arn()?;
            let (arn, tags) = target.tags(api, ctx)?;
            list.push(json!({"ResourceId": arn,
                "TagsList": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}));
        }
        Ok(Output::Json(json!({"ResourceTagList": list})))
    }
}

impl Api {
    /// The caller's trails and its organization's organization trails, as seen from the Region.
    fn visible_trails(&self, ctx: &RequestContext) -> Result<Vec<TrailDoc>, AwsError> {
        let mut all: Vec<(String, TrailDoc)> =
            self.store().scan_json(TRAILS_TABLE, &format!("{}/", ctx.caller.account_id)).map_err(store_err)?;
        if let Some(v) = self.organization(&ctx.caller.account_id)? {
            if v.management_account != ctx.caller.account_id {
                let org: Vec<(String, TrailDoc)> =
                    self.store().scan_json(TRAILS_TABLE, &format!("{}/", v.management_account)).map_err(store_err)?;
                all.extend(org.into_iter().filter(|(_, t)| t.organization.as_deref() == Some(v.id.as_str())));
            }
        }
        Ok(all.into_iter().map(|(_, t)| t).filter(|t| t.multi_region || t.home_region == ctx.region).collect())
    }

    fn create_trail(&self, ctx: &RequestContext, req: CreateTrail) -> Result<Value, AwsError> {
        let CreateTrail { trail, bucket, prefix, tags, include_global, multi_region, validation, organization } = req;
        let account = trail.r.account(ctx).to_string();
        let name = trail.r.name;
        let organization = match organization {
            true => {
                let view = self.org_admin(ctx)?;
                if view.management_account != account {
                    return Err(crate::org::not_admin(&ctx.caller.account_id));
                }
                Some(view.id)
            }
            false => None,
        };
        let t = TrailDoc {
            name: name.clone(),
            account: account.clone(),
            home_region: ctx.region.clone(),
            bucket,
            prefix,
            include_global,
            multi_region,
            validation,
            organization,
            tags: tags.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
            ..Default::default()
        };
        let key = format!("{account}/{name}");
        atomically(self.store(), |tx| -> Result<(), AwsError> {
            if tx.get(TRAILS_TABLE, &key).map_err(store_err)?.is_some() {
                return Err(e400(
                    "TrailAlreadyExistsException",
                    format!("Trail {name} already exists for customer: {account}"),
                ));
            }
            let in_region = tx
                .scan_json::<TrailDoc>(TRAILS_TABLE, &format!("{account}/"))
                .map_err(store_err)?
                .into_iter()
                .filter(|(_, x)| x.home_region == ctx.region)
                .count();
            if in_region >= MAX_TRAILS {
                return Err(e400(
                    "MaximumNumberOfTrailsExceededException",
                    format!("User: {account} already has {MAX_TRAILS} trails in {}.", ctx.region),
                ));
            }
            tx.put_json(TRAILS_TABLE, &key, &t).map_err(store_err)
        })?;
        Ok(create_update_json(&t))
    }

    fn update_trail(&self, ctx: &RequestContext, req: UpdateTrail) -> Result<Value, AwsError> {
        let UpdateTrail { trail, bucket, prefix, include_global, multi_region, validation, organization, invalid } =
            req;
        let (key, t) = trail.load(self, ctx)?;
        in_home_region(ctx, &t)?;
        if let Some(e) = invalid {
            return Err(e);
        }
        // Making a trail an organization trail, or back, is for the organization's administrators.
        let organization = match organization {
            Some(on) if on != t.organization.is_some() => {
                let view = self.org_admin(ctx)?;
                if view.management_account != t.account {
                    return Err(crate::org::not_admin(&ctx.caller.account_id));
                }
                Some(on.then_some(view.id))
            }
            _ => None,
        };
        let t = self.update(&key, |t| {
            let changes_destination = bucket.as_deref().is_some_and(|b| b != t.bucket)
                || prefix.as_deref().is_some_and(|p| Some(p) != t.prefix.as_deref());
            if let Some(bucket) = bucket {
                t.bucket = bucket;
            }
            if let Some(p) = prefix {
                t.prefix = (!p.is_empty()).then_some(p);
            }
            if let Some(v) = include_global {
                t.include_global = v;
            }
            if let Some(v) = multi_region {
                t.multi_region = v;
            }
            if let Some(v) = validation {
                if v && !t.validation {
                    // A new chain starts when validation is turned (back) on.
                    t.chains.clear();
                }
                t.validation = v;
            }
            if let Some(org) = organization {
                t.organization = org;
                t.chains.clear();
            }
            if changes_destination {
                t.chains.clear();
            }
            if t.multi_region && !t.include_global {
                return Err(e400(
                    "InvalidParameterCombinationException",
                    "Multi-Region trail must include global service events.",
                ));
            }
            Ok(())
        })?;
        Ok(create_update_json(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_name_errors_name_the_length_and_check_the_ends_first() {
        let msg = |n: &str| valid_trail_name(n).unwrap_err().message;
        assert!(msg("a").contains(
            "Trail name too short. Minimum allowed length: 3 characters. Specified name length: 1 characters."
        ));
        assert!(msg(&"a".repeat(129)).contains(
            "Trail name too long. Maximum allowed length: 128 characters. Specified name length: 129 characters."
        ));
        assert!(msg("trail!").contains("Trail name must ends with a letter or number."));
        assert!(msg("-trail").contains("Trail name must starts with a letter or number."));
        assert!(msg("my#trail").contains("can only contain"));
        assert!(valid_trail_name("my-trail.1").is_ok());
    }

    fn ctx() -> RequestContext {
        RequestContext {
            request_id: "r".into(),
            caller: rampart_service::Caller::root("111122223333", "AKIA"),
            region: "us-east-1".into(),
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            user_agent: String::new(),
            time: time::OffsetDateTime::UNIX_EPOCH,
            secure_transport: false,
        }
    }

    fn service() -> (Arc<CloudTrail>, Arc<dyn Service>) {
        let store: Arc<dyn Store> = Arc::new(rampart_store::SqliteStore::in_memory().unwrap());
        let sealer = Arc::new(Sealer::new(&Sealer::generate_key()));
        let ct = CloudTrail::start(
            store,
            sealer,
            TrailConfig { root: None, interval: Duration::from_secs(3600), insights: InsightsConfig::default() },
        );
        let svc = ct.service();
        (ct, svc)
    }

    #[test]
    fn every_operation_is_listed_once() {
        // The model's operations but the three not offered (docs/cloudtrail.md says why), each
        // once: derived from the generated model table rather than copied from it.
        let absent = ["DisableFederation", "EnableFederation", "GenerateQuery"];
        let expected: Vec<&str> =
            rampart_service::model_operations("cloudtrail").iter().copied().filter(|o| !absent.contains(o)).collect();
        assert_eq!(OPERATIONS.names(), expected);
        let (_ct, svc) = service();
        assert!(svc.has_operation("GetTrail") && !svc.has_operation("GenerateQuery"));
        let err = svc.plan(&ctx(), "GenerateQuery", &Input::Json(json!({}))).unwrap_err();
        assert_eq!(err.code, "UnknownOperationException");
    }

    /// StartQuery on another account's event data store carries the store's resource policy and
    /// owner in its check (the authorizer's cross-account rule decides), and the engine refuses a
    /// store of another account that has no policy.
    #[test]
    fn cross_account_start_query_plans_under_the_store_policy() {
        let (_ct, svc) = service();
        let owner = ctx();
        let allow = &mut |_: Vec<AuthzCheck>| Ok(());
        let out = svc
            .call(&owner, "CreateEventDataStore", &Input::Json(json!({"Name": "shared"})), allow)
            .unwrap()
            .json_value();
        let arn = out["EventDataStoreArn"].as_str().unwrap().to_string();
        let id = arn.rsplit('/').next().unwrap().to_string();
        let mut other = ctx();
        other.caller = rampart_service::Caller::root("444455556666", "AKIB");
        let q = json!({"QueryStatement": format!("SELECT eventName FROM {id}"),
                       "EventDataStoreOwnerAccountId": "111122223333"});
        // No policy: the check names the owner and no policy; the engine would not read the store.
        let AuthzPlan::Checks(checks) = svc.plan(&other, "StartQuery", &Input::Json(q.clone())).unwrap() else {
            panic!("checks expected")
        };
        assert_eq!(checks[0].resource, arn);
        assert_eq!(checks[0].resource_account.as_deref(), Some("111122223333"));
        assert!(checks[0].resource_policy.is_none());
        let err = svc.call(&other, "StartQuery", &Input::Json(q.clone()), allow).unwrap_err();
        assert_eq!(err.code, "EventDataStoreNotFoundException");
        // With a policy: it is in the check, and the query starts.
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "cloudtrail:StartQuery",
            "Resource": arn}]});
        svc.call(
            &owner,
            "PutResourcePolicy",
            &Input::Json(json!({"ResourceArn": arn, "ResourcePolicy": policy.to_string()})),
            allow,
        )
        .unwrap();
        let AuthzPlan::Checks(checks) = svc.plan(&other, "StartQuery", &Input::Json(q.clone())).unwrap() else {
            panic!("checks expected")
        };
        assert!(checks[0].resource_policy.as_ref().is_some_and(|p| p.document.contains("444455556666")));
        let started = svc.call(&other, "StartQuery", &Input::Json(q), allow).unwrap().json_value();
        assert_eq!(started["EventDataStoreOwnerAccountId"], "111122223333");
    }

    /// Input is read once, before anything is authorized; the run works on the trail the plan read.
    #[test]
    fn bad_input_is_refused_before_the_decision_and_the_run_uses_the_planned_trail() {
        let (ct, svc) = service();
        let c = ctx();
        let allow = &mut |_: Vec<AuthzCheck>| Ok(());
        let create = json!({"Name": "audit", "S3BucketName": "audit-bucket"});
        svc.call(&c, "CreateTrail", &Input::Json(create), allow).unwrap();
        for (op, body, code) in [
            ("CreateTrail", json!({"Name": "ok-name", "S3BucketName": "Bad_Bucket"}), "InvalidS3BucketNameException"),
            ("GetTrail", json!({"Name": "a"}), "InvalidTrailNameException"),
            ("AddTags", json!({"ResourceId": "audit", "TagsList": []}), "CloudTrailARNInvalidException"),
            ("LookupEvents", json!({"MaxResults": 51}), "InvalidMaxResultsException"),
        ] {
            let mut decided = false;
            let err = svc
                .call(&c, op, &Input::Json(body), &mut |_| {
                    decided = true;
                    Ok(())
                })
                .unwrap_err();
            assert_eq!(err.code, code, "{op}");
            assert!(!decided, "{op}: refused before authorization");
        }
        // A trail deleted between the decision and the run: the run answers with what was planned.
        let mut delete_behind = |checks: Vec<AuthzCheck>| {
            assert_eq!(checks[0].resource, "arn:aws:cloudtrail:us-east-1:111122223333:trail/audit");
            transact(ct.store.as_ref(), |tx| tx.delete(TRAILS_TABLE, "111122223333/audit").map(|_| ())).unwrap();
            Ok(())
        };
        let out = svc.call(&c, "GetTrail", &Input::Json(json!({"Name": "audit"})), &mut delete_behind).unwrap();
        assert_eq!(out.json_value()["Trail"]["S3BucketName"], "audit-bucket");
        let gone = svc.call(&c, "GetTrail", &Input::Json(json!({"Name": "audit"})), allow).unwrap_err();
        assert_eq!(gone.code, "TrailNotFoundException");
    }

    #[test]
    fn shutdown_right_after_start_returns_at_once() {
        // The timer thread may not have taken its lock yet when shutdown signals it; it must
        // still stop instead of waiting out its (hour-long) interval.
        let store: Arc<dyn Store> = Arc::new(rampart_store::SqliteStore::in_memory().unwrap());
        let sealer = Arc::new(Sealer::new(&Sealer::generate_key()));
        for _ in 0..50 {
            let config =
                TrailConfig { root: None, interval: Duration::from_secs(3600), insights: InsightsConfig::default() };
            CloudTrail::start(store.clone(), sealer.clone(), config).shutdown();
        }
    }
}
