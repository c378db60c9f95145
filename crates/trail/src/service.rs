//! The CloudTrail API (awsJson1_1, `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101`).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rampart_service::{AuthzCheck, AuthzPlan, AwsError, Input, Output, Protocol, RequestContext, Service};
use rampart_store::{transact, ReadExt, Sealer, Store, StoreError, TransactionExt};
use serde_json::{json, Value};

use crate::audit::META_TABLE;
use crate::delivery::{Delivery, TrailDoc, TRAILS_TABLE};
use crate::lookup;

/// Trails per account and region (AWS's limit).
const MAX_TRAILS: usize = 5;
/// Tags per trail.
const MAX_TAGS: usize = 50;

const OPERATIONS: &[&str] = &[
    "LookupEvents",
    "CreateTrail",
    "GetTrail",
    "DescribeTrails",
    "ListTrails",
    "UpdateTrail",
    "DeleteTrail",
    "StartLogging",
    "StopLogging",
    "GetTrailStatus",
    "PutEventSelectors",
    "GetEventSelectors",
    "AddTags",
    "RemoveTags",
    "ListTags",
    "ListPublicKeys",
];

/// Server-side settings of CloudTrail.
#[derive(Clone, Debug)]
pub struct TrailConfig {
    /// Where trail buckets live; `None` = no delivery (ephemeral server without `--trail-dir`).
    pub root: Option<PathBuf>,
    /// How often logging trails deliver.
    pub interval: Duration,
}

/// Tells the delivery timer to stop.
type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// The CloudTrail service, with its delivery timer.
pub struct CloudTrail {
    store: Arc<dyn Store>,
    delivery: Arc<Delivery>,
    timer: Mutex<Option<(StopSignal, JoinHandle<()>)>>,
}

impl CloudTrail {
    /// The service, delivering on a timer every `config.interval`.
    pub fn start(store: Arc<dyn Store>, sealer: Arc<Sealer>, config: TrailConfig) -> Arc<Self> {
        let delivery = Arc::new(Delivery::new(store.clone(), sealer, config.root.clone()));
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
        Arc::new(CloudTrail { store, delivery, timer: Mutex::new(timer) })
    }

    /// Deliver every logging trail now.
    pub fn deliver_now(&self) {
        if let Err(e) = self.delivery.deliver_all() {
            tracing::warn!(error = %e, "trail delivery failed");
        }
    }

    /// Stop the timer and deliver what is pending (server shutdown).
    pub fn shutdown(&self) {
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

struct Api(Arc<CloudTrail>);

fn e400(code: &'static str, msg: impl Into<String>) -> AwsError {
    AwsError::new(code, msg, 400)
}

/// A write transaction whose errors are AWS errors.
fn atomically<T>(
    store: &dyn Store,
    f: impl FnOnce(&mut dyn rampart_store::Transaction) -> Result<T, AwsError>,
) -> Result<T, AwsError> {
    let mut tx = store.begin().map_err(store_err)?;
    let out = f(tx.as_mut())?;
    tx.commit().map_err(store_err)?;
    Ok(out)
}

fn store_err(e: StoreError) -> AwsError {
    AwsError::internal(e.to_string())
}

fn s<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

fn b(body: &Value, key: &str) -> Option<bool> {
    body.get(key).and_then(Value::as_bool)
}

fn required<'a>(body: &'a Value, key: &str) -> Result<&'a str, AwsError> {
    s(body, key).ok_or_else(|| {
        e400(
            "InvalidParameterException",
            format!("1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null"),
        )
    })
}

/// AWS's trail name rules.
fn valid_trail_name(name: &str) -> Result<(), AwsError> {
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
    fn store(&self) -> &dyn Store {
        self.0.store.as_ref()
    }

    /// A trail name or ARN → (account, name).
    fn resolve(&self, ctx: &RequestContext, name_or_arn: &str) -> Result<(String, String), AwsError> {
        let account = ctx.caller.account_id.clone();
        if let Some(rest) = name_or_arn.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let ok =
                parts.len() == 5 && parts[1] == "cloudtrail" && parts[3].len() == 12 && parts[4].starts_with("trail/");
            if !ok {
                return Err(e400("CloudTrailARNInvalidException", format!("Invalid trail ARN: {name_or_arn}")));
            }
            let name = &parts[4]["trail/".len()..];
            valid_trail_name(name)?;
            return Ok((parts[3].to_string(), name.to_string()));
        }
        valid_trail_name(name_or_arn)?;
        Ok((account, name_or_arn.to_string()))
    }

    fn not_found(ctx: &RequestContext, account: &str, name: &str) -> AwsError {
        e400(
            "TrailNotFoundException",
            format!(
                "Unknown trail: arn:aws:cloudtrail:{}:{account}:trail/{name} for the user: {}",
                ctx.region, ctx.caller.account_id
            ),
        )
    }

    /// A trail visible from the caller's region (its home region, or any region if multi-region).
    fn load(&self, ctx: &RequestContext, name_or_arn: &str) -> Result<(String, TrailDoc), AwsError> {
        let (account, name) = self.resolve(ctx, name_or_arn)?;
        let key = format!("{account}/{name}");
        let t: Option<TrailDoc> = if account == ctx.caller.account_id {
            self.store().get_json(TRAILS_TABLE, &key).map_err(store_err)?
        } else {
            None
        };
        match t {
            Some(t) if t.multi_region || t.home_region == ctx.region => Ok((key, t)),
            _ => Err(Self::not_found(ctx, &account, &name)),
        }
    }

    /// The ARN a trail call is authorized on.
    fn trail_arn(&self, ctx: &RequestContext, name_or_arn: &str) -> Result<String, AwsError> {
        let (account, name) = self.resolve(ctx, name_or_arn)?;
        let key = format!("{account}/{name}");
        let home = self
            .store()
            .get_json::<TrailDoc>(TRAILS_TABLE, &key)
            .map_err(store_err)?
            .map_or_else(|| ctx.region.clone(), |t| t.home_region);
        Ok(format!("arn:aws:cloudtrail:{home}:{account}:trail/{name}"))
    }

    fn update(&self, key: &str, f: impl FnOnce(&mut TrailDoc) -> Result<(), AwsError>) -> Result<TrailDoc, AwsError> {
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
        "HasInsightSelectors": false,
        "IsOrganizationTrail": false,
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

fn tags_of(body: &Value) -> Result<Vec<(String, Option<String>)>, AwsError> {
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
    if b(body, "IsOrganizationTrail") == Some(true) {
        return Err(e400("UnsupportedOperationException", "Organization trails are not offered by Rampart."));
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

fn strip_nulls(mut v: Value) -> Value {
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

    fn json_target_prefix(&self) -> &'static str {
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: rampart_service::Decide<'_>,
    ) -> Result<Output, AwsError> {
        // Families not yet moved to typed operations: plan, decide, run.
        if let AuthzPlan::Checks(checks) = self.legacy_authorize(ctx, operation, input)? {
            decide(checks)?;
        }
        self.legacy_invoke(ctx, operation, input)
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        self.legacy_authorize(ctx, operation, input)
    }
}

impl Api {
    fn legacy_authorize(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        let body = input.json();
        let action = format!("cloudtrail:{operation}");
        let checks = match operation {
            "LookupEvents" | "DescribeTrails" | "ListTrails" | "ListPublicKeys" => vec![AuthzCheck::new(action, "*")],
            "CreateTrail" | "GetTrail" | "UpdateTrail" | "DeleteTrail" | "StartLogging" | "StopLogging"
            | "GetTrailStatus" => {
                let name = required(body, "Name")?;
                vec![AuthzCheck::new(action, self.trail_arn(ctx, name)?)]
            }
            "PutEventSelectors" | "GetEventSelectors" => {
                let name = required(body, "TrailName")?;
                vec![AuthzCheck::new(action, self.trail_arn(ctx, name)?)]
            }
            "AddTags" | "RemoveTags" => {
                let id = required(body, "ResourceId")?;
                vec![AuthzCheck::new(action, self.trail_arn(ctx, id)?)]
            }
            "ListTags" => {
                let ids = body
                    .get("ResourceIdList")
                    .and_then(Value::as_array)
                    .ok_or_else(|| e400("InvalidParameterException", "ResourceIdList is required"))?;
                let mut checks = Vec::new();
                for id in ids {
                    let id = id.as_str().unwrap_or_default();
                    checks.push(AuthzCheck::new(action.clone(), self.trail_arn(ctx, id)?));
                }
                if checks.is_empty() {
                    checks.push(AuthzCheck::new(action, "*"));
                }
                checks
            }
            _ => return Err(AwsError::unknown_operation("cloudtrail", operation)),
        };
        Ok(AuthzPlan::Checks(checks))
    }

    fn legacy_invoke(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<Output, AwsError> {
        let body = input.json();
        let out = match operation {
            "LookupEvents" => {
                let q = lookup::Query::parse(body)?;
                lookup::lookup(self.store(), &ctx.caller.account_id, &q, ctx.time)?
            }
            "CreateTrail" => self.create_trail(ctx, body)?,
            "GetTrail" => {
                let name = required(body, "Name")?;
                // GetTrail names the trail as the caller did (other operations name its ARN).
                let (_, t) = self.load(ctx, name).map_err(|mut e| {
                    if e.code == "TrailNotFoundException" {
                        e.message = format!("Unknown trail: {name} for the user: {}", ctx.caller.account_id);
                    }
                    e
                })?;
                json!({"Trail": trail_json(&t)})
            }
            "DescribeTrails" => self.describe_trails(ctx, body)?,
            "ListTrails" => {
                let trails = self.visible_trails(ctx)?;
                json!({"Trails": trails.iter().map(|t| json!({"TrailARN": t.arn(), "Name": t.name,
                    "HomeRegion": t.home_region})).collect::<Vec<_>>()})
            }
            "UpdateTrail" => self.update_trail(ctx, body)?,
            "DeleteTrail" => {
                let (key, t) = self.load(ctx, required(body, "Name")?)?;
                if t.home_region != ctx.region {
                    return Err(e400(
                        "InvalidHomeRegionException",
                        format!("This operation must be called from the trail's home region, {}.", t.home_region),
                    ));
                }
                // Deliver what the trail has pending before it goes.
                if t.logging {
                    let _ = self.0.delivery.deliver(&key);
                }
                transact(self.store(), |tx| tx.delete(TRAILS_TABLE, &key).map(|_| ())).map_err(store_err)?;
                json!({})
            }
            "StartLogging" => {
                let (key, t) = self.load(ctx, required(body, "Name")?)?;
                if !t.logging {
                    let now = ctx.time.unix_timestamp();
                    let seq: u64 = self.store().get_json(META_TABLE, "seq").map_err(store_err)?.unwrap_or(0);
                    self.update(&key, |t| {
                        t.logging = true;
                        t.start_logging = Some(now);
                        // Only calls from now on are delivered (AWS: events after logging starts).
                        t.delivered_seq = t.delivered_seq.max(seq);
                        Ok(())
                    })?;
                }
                json!({})
            }
            "StopLogging" => {
                let (key, t) = self.load(ctx, required(body, "Name")?)?;
                if t.logging {
                    // Deliver everything so far: StopLogging is also the deterministic flush.
                    let _ = self.0.delivery.deliver(&key);
                    let now = ctx.time.unix_timestamp();
                    self.update(&key, |t| {
                        t.logging = false;
                        t.stop_logging = Some(now);
                        Ok(())
                    })?;
                }
                json!({})
            }
            "GetTrailStatus" => {
                let (_, t) = self.load(ctx, required(body, "Name")?)?;
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
            }
            "PutEventSelectors" => {
                let (key, _) = self.load(ctx, required(body, "TrailName")?)?;
                let (sel, adv) = validate_selectors(body)?;
                let t = self.update(&key, |t| {
                    t.event_selectors = sel;
                    t.advanced_event_selectors = adv;
                    Ok(())
                })?;
                selectors_json(&t)
            }
            "GetEventSelectors" => {
                let (_, t) = self.load(ctx, required(body, "TrailName")?)?;
                selectors_json(&t)
            }
            "AddTags" => {
                let (key, _) = self.load_tag_target(ctx, required(body, "ResourceId")?)?;
                let tags = tags_of(body)?;
                self.update(&key, |t| {
                    for (k, v) in tags {
                        let v = v.unwrap_or_default();
                        match t.tags.iter_mut().find(|(tk, _)| *tk == k) {
                            Some(existing) => existing.1 = v,
                            None => t.tags.push((k, v)),
                        }
                    }
                    if t.tags.len() > MAX_TAGS {
                        return Err(e400(
                            "TagsLimitExceededException",
                            format!("The number of tags on a trail cannot exceed {MAX_TAGS}."),
                        ));
                    }
                    Ok(())
                })?;
                json!({})
            }
            "RemoveTags" => {
                let (key, _) = self.load_tag_target(ctx, required(body, "ResourceId")?)?;
                let tags = tags_of(body)?;
                self.update(&key, |t| {
                    t.tags
                        .retain(|(k, v)| !tags.iter().any(|(rk, rv)| rk == k && rv.as_ref().is_none_or(|rv| rv == v)));
                    Ok(())
                })?;
                json!({})
            }
            "ListTags" => {
                let ids = body.get("ResourceIdList").and_then(Value::as_array).cloned().unwrap_or_default();
                let mut list = Vec::new();
                for id in ids {
                    let id = id.as_str().unwrap_or_default();
                    let (_, t) = self.load_tag_target(ctx, id)?;
                    list.push(json!({"ResourceId": t.arn(),
                        "TagsList": t.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}));
                }
                json!({"ResourceTagList": list})
            }
            "ListPublicKeys" => {
                let (key, created) = self.0.delivery.signing_key().map_err(|e| AwsError::internal(e.to_string()))?;
                use base64::Engine as _;
                json!({"PublicKeyList": [{
                    "Value": base64::engine::general_purpose::STANDARD.encode(key.public_der()),
                    "ValidityStartTime": created,
                    "ValidityEndTime": created + 10 * 365 * 86_400,
                    "Fingerprint": key.fingerprint(),
                }]})
            }
            _ => return Err(AwsError::unknown_operation("cloudtrail", operation)),
        };
        Ok(Output::Json(out))
    }
}

impl Api {
    /// Tag operations take a trail ARN (AWS rejects bare names there).
    fn load_tag_target(&self, ctx: &RequestContext, id: &str) -> Result<(String, TrailDoc), AwsError> {
        if !id.starts_with("arn:") {
            return Err(e400("CloudTrailARNInvalidException", format!("Invalid trail ARN: {id}")));
        }
        let (account, name) = self.resolve(ctx, id)?;
        self.load(ctx, id).map_err(|e| {
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

    fn visible_trails(&self, ctx: &RequestContext) -> Result<Vec<TrailDoc>, AwsError> {
        let all: Vec<(String, TrailDoc)> =
            self.store().scan_json(TRAILS_TABLE, &format!("{}/", ctx.caller.account_id)).map_err(store_err)?;
        Ok(all.into_iter().map(|(_, t)| t).filter(|t| t.multi_region || t.home_region == ctx.region).collect())
    }

    fn create_trail(&self, ctx: &RequestContext, body: &Value) -> Result<Value, AwsError> {
        let name = required(body, "Name")?;
        if name.starts_with("arn:") {
            return Err(e400("InvalidTrailNameException", "Trail name cannot be an ARN when creating a trail."));
        }
        valid_trail_name(name)?;
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
        let account = ctx.caller.account_id.clone();
        let t = TrailDoc {
            name: name.to_string(),
            account: account.clone(),
            home_region: ctx.region.clone(),
            bucket: bucket.to_string(),
            prefix: prefix.map(str::to_string),
            include_global,
            multi_region,
            validation: b(body, "EnableLogFileValidation").unwrap_or(false),
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

    fn update_trail(&self, ctx: &RequestContext, body: &Value) -> Result<Value, AwsError> {
        let (key, t) = self.load(ctx, required(body, "Name")?)?;
        if t.home_region != ctx.region {
            return Err(e400(
                "InvalidHomeRegionException",
                format!("This operation must be called from the trail's home region, {}.", t.home_region),
            ));
        }
        if let Some(bucket) = s(body, "S3BucketName") {
            valid_bucket(bucket)?;
        }
        if let Some(p) = s(body, "S3KeyPrefix").filter(|p| !p.is_empty()) {
            valid_prefix(p)?;
        }
        unsupported_options(body)?;
        let t = self.update(&key, |t| {
            let changes_destination = s(body, "S3BucketName").is_some_and(|b| b != t.bucket)
                || s(body, "S3KeyPrefix").is_some_and(|p| Some(p) != t.prefix.as_deref());
            if let Some(bucket) = s(body, "S3BucketName") {
                t.bucket = bucket.to_string();
            }
            if let Some(p) = s(body, "S3KeyPrefix") {
                t.prefix = (!p.is_empty()).then(|| p.to_string());
            }
            if let Some(v) = b(body, "IncludeGlobalServiceEvents") {
                t.include_global = v;
            }
            if let Some(v) = b(body, "IsMultiRegionTrail") {
                t.multi_region = v;
            }
            if let Some(v) = b(body, "EnableLogFileValidation") {
                if v && !t.validation {
                    // A new chain starts when validation is turned (back) on.
                    t.chains.clear();
                }
                t.validation = v;
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

    fn describe_trails(&self, ctx: &RequestContext, body: &Value) -> Result<Value, AwsError> {
        let include_shadow = b(body, "includeShadowTrails").unwrap_or(true);
        let mut trails: Vec<TrailDoc> =
            self.visible_trails(ctx)?.into_iter().filter(|t| include_shadow || t.home_region == ctx.region).collect();
        if let Some(names) = body.get("trailNameList").and_then(Value::as_array).filter(|l| !l.is_empty()) {
            let mut wanted = Vec::new();
            for n in names {
                let n = n.as_str().unwrap_or_default();
                wanted.push(self.resolve(ctx, n)?);
            }
            trails.retain(|t| wanted.iter().any(|(a, n)| *a == t.account && *n == t.name));
        }
        Ok(json!({"trailList": trails.iter().map(trail_json).collect::<Vec<_>>()}))
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

    #[test]
    fn shutdown_right_after_start_returns_at_once() {
        // The timer thread may not have taken its lock yet when shutdown signals it; it must
        // still stop instead of waiting out its (hour-long) interval.
        let store: Arc<dyn Store> = Arc::new(rampart_store::SqliteStore::in_memory().unwrap());
        let sealer = Arc::new(Sealer::new(&Sealer::generate_key()));
        for _ in 0..50 {
            let config = TrailConfig { root: None, interval: Duration::from_secs(3600) };
            CloudTrail::start(store.clone(), sealer.clone(), config).shutdown();
        }
    }
}
