//! The CloudTrail Lake operations: event data stores and queries.

use rampart_service::{op, AuthzCheck, AuthzPlan, AwsError, Entry, Input, Operation, Output, RequestContext};
use rampart_store::{ReadExt, TransactionExt};
use serde_json::{json, Value};

use super::query::{self, QueryDoc, Results, QUERIES_TABLE, QUERY_KEEP_SECS, RESULTS_TABLE};
use super::sql::{self, Translated};
use super::{current_seq, eds_arn, selectors, uuid, EventDataStoreDoc, EDS_TABLE};
use crate::service::{atomically, e400, one, required, store_err, tags_of, Api, MAX_TAGS};

/// Event data stores per account and Region (AWS's quota).
const MAX_STORES: usize = 10;
/// Queries queued or running per account (AWS's quota).
pub(crate) const MAX_ACTIVE_QUERIES: usize = 10;

pub(crate) const OPS: &[Entry<Api>] = &[
    op::<Api, CreateEventDataStore>(),
    op::<Api, GetEventDataStore>(),
    op::<Api, ListEventDataStores>(),
    op::<Api, UpdateEventDataStore>(),
    op::<Api, DeleteEventDataStore>(),
    op::<Api, RestoreEventDataStore>(),
    op::<Api, StartEventDataStoreIngestion>(),
    op::<Api, StopEventDataStoreIngestion>(),
    op::<Api, StartQuery>(),
    op::<Api, DescribeQuery>(),
    op::<Api, GetQueryResults>(),
    op::<Api, CancelQuery>(),
    op::<Api, ListQueries>(),
    op::<Api, StartImport>(),
    op::<Api, GetImport>(),
    op::<Api, StopImport>(),
    op::<Api, ListImports>(),
    op::<Api, ListImportFailures>(),
    op::<Api, SearchSampleQueries>(),
];

pub(crate) fn validation(value: &str, member: &str, constraint: &str) -> AwsError {
    let shown: String = value.chars().take(64).collect();
    e400(
        "InvalidParameterException",
        format!(
            "1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

pub(crate) fn opt_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(e400("SerializationException", format!("{key} must be a string"))),
    }
}

pub(crate) fn opt_bool(body: &Value, key: &str) -> Result<Option<bool>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(e400("SerializationException", format!("{key} must be a boolean"))),
    }
}

pub(crate) fn opt_int(body: &Value, key: &str) -> Result<Option<i64>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            v.as_i64().map(Some).ok_or_else(|| e400("SerializationException", format!("{key} must be an integer")))
        }
    }
}

fn name_ok(name: &str, member: &str) -> Result<(), AwsError> {
    if !(3..=128).contains(&name.len()) {
        return Err(validation(name, member, "Member must have length between 3 and 128"));
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
        return Err(validation(name, member, "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._\\-]+$"));
    }
    Ok(())
}

/// `KmsKeyId`: a key ID, key ARN, alias name or alias ARN. Rampart's KMS is not reachable from
/// CloudTrail, so a well-formed key is then refused as unsupported (events are not re-encrypted).
fn kms_key(body: &Value) -> Result<(), AwsError> {
    let Some(k) = opt_str(body, "KmsKeyId")?.filter(|k| !k.is_empty()) else { return Ok(()) };
    let uuidish = |s: &str| s.len() == 36 && s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
    let mrk =
        |s: &str| s.strip_prefix("mrk-").is_some_and(|h| h.len() == 32 && h.bytes().all(|c| c.is_ascii_hexdigit()));
    let alias = |s: &str| s.strip_prefix("alias/").is_some_and(|a| !a.is_empty() && a.len() <= 256);
    let arn = |s: &str| {
        let p: Vec<&str> = s.splitn(6, ':').collect();
        match p.as_slice() {
            ["arn", _, "kms", _, acct, res] => {
                acct.len() == 12 && (res.strip_prefix("key/").is_some_and(|id| uuidish(id) || mrk(id)) || alias(res))
            }
            _ => false,
        }
    };
    if !(k.len() <= 350 && (uuidish(k) || mrk(k) || alias(k) || arn(k))) {
        return Err(e400("InvalidKmsKeyIdException", "The KMS key ID is not valid."));
    }
    Err(e400(
        "UnsupportedOperationException",
        "KmsKeyId: Rampart's CloudTrail Lake does not encrypt event data stores with a KMS key.",
    ))
}

fn retention(body: &Value, billing: &str) -> Result<Option<u32>, AwsError> {
    let Some(r) = opt_int(body, "RetentionPeriod")? else { return Ok(None) };
    let max = if billing == "FIXED_RETENTION_PRICING" { 2557 } else { 3653 };
    if !(7..=3653).contains(&r) {
        return Err(validation(&r.to_string(), "retentionPeriod", "Member must have value between 7 and 3653"));
    }
    if r > max {
        return Err(e400(
            "InvalidParameterException",
            format!("The retention period for event data stores with {billing} must be between 7 and {max} days."),
        ));
    }
    Ok(Some(r as u32))
}

fn billing_mode(body: &Value) -> Result<Option<String>, AwsError> {
    match opt_str(body, "BillingMode")? {
        None => Ok(None),
        Some(m @ ("EXTENDABLE_RETENTION_PRICING" | "FIXED_RETENTION_PRICING")) => Ok(Some(m.to_string())),
        Some(m) => Err(validation(
            m,
            "billingMode",
            "Member must satisfy enum value set: [EXTENDABLE_RETENTION_PRICING, FIXED_RETENTION_PRICING]",
        )),
    }
}

fn organization(body: &Value) -> Result<(), AwsError> {
    if opt_bool(body, "OrganizationEnabled")? == Some(true) {
        return Err(e400(
            "UnsupportedOperationException",
            "Organization event data stores are not offered by Rampart.",
        ));
    }
    Ok(())
}

fn store_json(d: &EventDataStoreDoc) -> Value {
    json!({
        "EventDataStoreArn": d.arn(),
        "Name": d.name,
        "Status": d.status,
        "AdvancedEventSelectors": d.advanced_event_selectors,
        "MultiRegionEnabled": d.multi_region,
        "OrganizationEnabled": false,
        "RetentionPeriod": d.retention_days,
        "TerminationProtectionEnabled": d.termination_protection,
        "CreatedTimestamp": d.created,
        "UpdatedTimestamp": d.updated,
        "BillingMode": d.billing_mode,
    })
}

/// Set member `k` of a JSON object.
fn set(out: &mut Value, k: &str, v: Value) {
    if let Value::Object(m) = out {
        m.insert(k.to_string(), v);
    }
}

pub(crate) fn tag_list(tags: &[(String, String)]) -> Value {
    json!(tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>())
}

pub(crate) fn not_found() -> AwsError {
    e400("EventDataStoreNotFoundException", "The specified event data store was not found.")
}

pub(crate) fn inactive() -> AwsError {
    e400("InactiveEventDataStoreException", "The event data store is inactive.")
}

fn bad_status() -> AwsError {
    e400("InvalidEventDataStoreStatusException", "The event data store is not in a status that supports the operation.")
}

/// An event data store as a call names it: its ARN, or the ID at the end of its ARN.
pub(crate) struct StoreRef {
    account: Option<String>,
    region: Option<String>,
    id: String,
    /// Once read: the store, if it exists where the caller can see it.
    doc: Option<Option<EventDataStoreDoc>>,
}

impl StoreRef {
    pub(crate) fn parse(v: &str) -> Result<Self, AwsError> {
        if !(3..=256).contains(&v.len()) {
            return Err(validation(v, "eventDataStore", "Member must have length between 3 and 256"));
        }
        if !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-' | b':')) {
            return Err(validation(
                v,
                "eventDataStore",
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:]+$",
            ));
        }
        if v.starts_with("arn:") {
            let p: Vec<&str> = v.splitn(6, ':').collect();
            if let ["arn", _, "cloudtrail", region, acct, res] = p.as_slice() {
                if let Some(id) = res.strip_prefix("eventdatastore/") {
                    if acct.len() == 12 && acct.bytes().all(|c| c.is_ascii_digit()) && !id.is_empty() {
                        return Ok(StoreRef {
                            account: Some(acct.to_string()),
                            region: Some(region.to_string()),
                            id: id.to_string(),
                            doc: None,
                        });
                    }
                }
            }
            return Err(e400(
                "EventDataStoreARNInvalidException",
                "The specified event data store ARN is not valid or does not map to an event data store in your account.",
            ));
        }
        Ok(StoreRef { account: None, region: None, id: v.to_string(), doc: None })
    }

    fn required(body: &Value, member: &str) -> Result<Self, AwsError> {
        StoreRef::parse(required(body, member)?)
    }

    fn arn(&self, ctx: &RequestContext) -> String {
        eds_arn(
            self.region.as_deref().unwrap_or(&ctx.region),
            self.account.as_deref().unwrap_or(&ctx.caller.account_id),
            &self.id,
        )
    }

    /// The store (read once), if it is the caller's and in the caller's Region.
    fn read(&mut self, api: &Api, ctx: &RequestContext) -> Result<Option<&EventDataStoreDoc>, AwsError> {
        if self.doc.is_none() {
            let mine = self.account.as_deref().is_none_or(|a| a == ctx.caller.account_id)
                && self.region.as_deref().is_none_or(|r| r == ctx.region);
            let d = if mine {
                api.store()
                    .get_json::<EventDataStoreDoc>(EDS_TABLE, &format!("{}/{}", ctx.caller.account_id, self.id))
                    .map_err(store_err)?
                    .filter(|d| d.region == ctx.region)
            } else {
                None
            };
            self.doc = Some(d);
        }
        Ok(self.doc.as_ref().and_then(Option::as_ref))
    }

    /// `cloudtrail:{action}` on the store's ARN.
    pub(crate) fn check(&mut self, _api: &Api, ctx: &RequestContext, action: &str) -> AuthzCheck {
        AuthzCheck::new(format!("cloudtrail:{action}"), self.arn(ctx))
    }

    pub(crate) fn load(mut self, api: &Api, ctx: &RequestContext) -> Result<EventDataStoreDoc, AwsError> {
        self.read(api, ctx)?;
        self.doc.take().flatten().ok_or_else(not_found)
    }

    /// Another account's store (a cross-account query): it must be `owner`'s, in the caller's
    /// Region, and carry a resource policy (which the authorizer found allowing the caller).
    fn load_shared(self, api: &Api, ctx: &RequestContext, owner: &str) -> Result<EventDataStoreDoc, AwsError> {
        if self.account.as_deref().is_some_and(|a| a != owner)
            || self.region.as_deref().is_some_and(|r| r != ctx.region)
        {
            return Err(not_found());
        }
        let d = api
            .store()
            .get_json::<EventDataStoreDoc>(EDS_TABLE, &format!("{owner}/{}", self.id))
            .map_err(store_err)?
            .filter(|d| d.region == ctx.region)
            .ok_or_else(not_found)?;
        if crate::policies::resource_policy(api.store(), &d.arn()).map_err(store_err)?.is_none() {
            return Err(not_found());
        }
        Ok(d)
    }

    /// For tag operations: a missing store is a missing resource.
    pub(crate) fn load_tagged(self, api: &Api, ctx: &RequestContext) -> Result<EventDataStoreDoc, AwsError> {
        let arn = self.arn(ctx);
        self.load(api, ctx).map_err(|e| {
            if e.code == "EventDataStoreNotFoundException" {
                e400("ResourceNotFoundException", format!("Resource not found: {arn}"))
            } else {
                e
            }
        })
    }
}

/// Change a store in one transaction (re-read inside it).
pub(crate) fn update_store(
    api: &Api,
    key: &str,
    f: impl FnOnce(&mut EventDataStoreDoc) -> Result<(), AwsError>,
) -> Result<EventDataStoreDoc, AwsError> {
    atomically(api.store(), |tx| -> Result<EventDataStoreDoc, AwsError> {
        let mut d: EventDataStoreDoc = tx.get_json(EDS_TABLE, key).map_err(store_err)?.ok_or_else(not_found)?;
        f(&mut d)?;
        tx.put_json(EDS_TABLE, key, &d).map_err(store_err)?;
        Ok(d)
    })
}

fn now_secs(ctx: &RequestContext) -> i64 {
    ctx.time.unix_timestamp()
}

fn seq_now(api: &Api) -> Result<u64, AwsError> {
    current_seq(api.store()).map_err(store_err)
}

struct CreateEventDataStore {
    id: String,
    name: String,
    selectors: Vec<Value>,
    multi_region: bool,
    retention: u32,
    termination_protection: bool,
    billing_mode: String,
    tags: Vec<(String, String)>,
    start_ingestion: bool,
}

impl Operation<Api> for CreateEventDataStore {
    const NAME: &'static str = "CreateEventDataStore";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let name = required(body, "Name")?;
        name_ok(name, "name")?;
        let selectors =
            selectors::validate(body.get("AdvancedEventSelectors"))?.unwrap_or_else(selectors::default_selectors);
        organization(body)?;
        let billing_mode = billing_mode(body)?.unwrap_or_else(|| "EXTENDABLE_RETENTION_PRICING".into());
        let retention = retention(body, &billing_mode)?.unwrap_or(if billing_mode == "FIXED_RETENTION_PRICING" {
            2557
        } else {
            366
        });
        kms_key(body)?;
        let tags = tags_of(body)?;
        if tags.len() > MAX_TAGS {
            return Err(e400(
                "TagsLimitExceededException",
                format!("The number of tags on an event data store cannot exceed {MAX_TAGS}."),
            ));
        }
        Ok(CreateEventDataStore {
            id: uuid(),
            name: name.to_string(),
            selectors,
            multi_region: opt_bool(body, "MultiRegionEnabled")?.unwrap_or(true),
            retention,
            termination_protection: opt_bool(body, "TerminationProtectionEnabled")?.unwrap_or(true),
            billing_mode,
            tags: tags.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
            start_ingestion: opt_bool(body, "StartIngestion")?.unwrap_or(true),
        })
    }

    fn authorize(&mut self, _: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(AuthzCheck::new(
            format!("cloudtrail:{}", Self::NAME),
            eds_arn(&ctx.region, &ctx.caller.account_id, &self.id),
        ))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let now = now_secs(ctx);
        let account = ctx.caller.account_id.clone();
        let seq = seq_now(api)?;
        let d = EventDataStoreDoc {
            id: self.id,
            account: account.clone(),
            region: ctx.region.clone(),
            name: self.name,
            status: if self.start_ingestion { "ENABLED" } else { "STOPPED_INGESTION" }.into(),
            advanced_event_selectors: self.selectors,
            multi_region: self.multi_region,
            retention_days: self.retention,
            termination_protection: self.termination_protection,
            billing_mode: self.billing_mode,
            tags: self.tags,
            created: now,
            updated: now,
            ingesting: self.start_ingestion,
            // Events from its creation onward.
            checkpoint: seq,
            paused_at: (!self.start_ingestion).then_some(seq),
            skip: Vec::new(),
            deleted_at: None,
            large_events: false,
        };
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            let mine: Vec<(String, EventDataStoreDoc)> =
                tx.scan_json(EDS_TABLE, &format!("{account}/")).map_err(store_err)?;
            let here: Vec<&EventDataStoreDoc> = mine.iter().map(|(_, x)| x).filter(|x| x.region == d.region).collect();
            if here.iter().any(|x| x.name == d.name) {
                return Err(e400(
                    "EventDataStoreAlreadyExistsException",
                    "An event data store with that name already exists.",
                ));
            }
            // Stores pending deletion do not count (restoring one may exceed the quota).
            if here.iter().filter(|x| x.status != "PENDING_DELETION").count() >= MAX_STORES {
                return Err(e400(
                    "EventDataStoreMaxLimitExceededException",
                    "Your account has used the maximum number of event data stores.",
                ));
            }
            tx.put_json(EDS_TABLE, &d.key(), &d).map_err(store_err)
        })?;
        let mut out = store_json(&d);
        set(&mut out, "Status", json!("CREATED"));
        set(&mut out, "TagsList", tag_list(&d.tags));
        Ok(Output::Json(out))
    }
}

/// The operations named by one required `EventDataStore`, planned on its ARN.
macro_rules! on_store {
    ($op:ident, |$api:ident, $ctx:ident, $store:ident| $run:expr) => {
        struct $op {
            store: StoreRef,
        }

        impl Operation<Api> for $op {
            const NAME: &'static str = stringify!($op);
            type Error = AwsError;

            fn parse(input: &Input) -> Result<Self, AwsError> {
                Ok($op { store: StoreRef::required(input.json(), "EventDataStore")? })
            }

            fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
                one(self.store.check(api, ctx, Self::NAME))
            }

            fn run(self, $api: &Api, $ctx: &RequestContext) -> Result<Output, AwsError> {
                let $store = self.store;
                Ok(Output::Json($run))
            }
        }
    };
}

on_store!(GetEventDataStore, |api, ctx, store| store_json(&store.load(api, ctx)?));

on_store!(DeleteEventDataStore, |api, ctx, store| {
    let d = store.load(api, ctx)?;
    let seq = seq_now(api)?;
    let now = now_secs(ctx);
    update_store(api, &d.key(), |d| {
        if d.status == "PENDING_DELETION" {
            return Err(inactive());
        }
        if d.termination_protection {
            return Err(e400(
                "EventDataStoreTerminationProtectedException",
                "The event data store cannot be deleted because termination protection is enabled for it.",
            ));
        }
        d.status = "PENDING_DELETION".into();
        d.deleted_at = Some(now);
        d.updated = now;
        d.pause(seq);
        Ok(())
    })?;
    json!({})
});

on_store!(RestoreEventDataStore, |api, ctx, store| {
    let d = store.load(api, ctx)?;
    let seq = seq_now(api)?;
    let now = now_secs(ctx);
    let active = api
        .store()
        .scan_json::<EventDataStoreDoc>(EDS_TABLE, &format!("{}/", d.account))
        .map_err(store_err)?
        .into_iter()
        .filter(|(_, x)| x.region == d.region && x.status != "PENDING_DELETION")
        .count();
    let d = update_store(api, &d.key(), |d| {
        if d.status != "PENDING_DELETION" {
            return Err(bad_status());
        }
        if active >= MAX_STORES {
            return Err(e400(
                "EventDataStoreMaxLimitExceededException",
                "Your account has used the maximum number of event data stores.",
            ));
        }
        d.status = if d.ingesting { "ENABLED" } else { "STOPPED_INGESTION" }.into();
        d.deleted_at = None;
        d.updated = now;
        if d.ingesting {
            d.resume(seq);
        }
        Ok(())
    })?;
    store_json(&d)
});

on_store!(StartEventDataStoreIngestion, |api, ctx, store| {
    let d = store.load(api, ctx)?;
    let seq = seq_now(api)?;
    update_store(api, &d.key(), |d| {
        if d.status != "STOPPED_INGESTION" {
            return Err(bad_status());
        }
        d.status = "ENABLED".into();
        d.ingesting = true;
        d.resume(seq);
        Ok(())
    })?;
    json!({})
});

on_store!(StopEventDataStoreIngestion, |api, ctx, store| {
    let d = store.load(api, ctx)?;
    let seq = seq_now(api)?;
    update_store(api, &d.key(), |d| {
        if d.status != "ENABLED" {
            return Err(bad_status());
        }
        d.status = "STOPPED_INGESTION".into();
        d.ingesting = false;
        // What was recorded before the stop is still ingested.
        d.pause(seq);
        Ok(())
    })?;
    json!({})
});

/// A page position: base64 of `{what}:{n}`.
pub(crate) fn token(what: &str, n: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{what}:{n}"))
}

pub(crate) fn untoken(what: &str, t: &str) -> Result<usize, AwsError> {
    use base64::Engine as _;
    let bad = || {
        e400(
            "InvalidNextTokenException",
            "A token that is not valid, or a token that was previously used in a request with different parameters.",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    let (w, n) = s.rsplit_once(':').ok_or_else(bad)?;
    if w != what {
        return Err(bad());
    }
    n.parse().map_err(|_| bad())
}

pub(crate) fn max_results(body: &Value, key: &str, default: usize) -> Result<usize, AwsError> {
    match opt_int(body, key)? {
        None => Ok(default),
        Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
        Some(_) => Err(e400("InvalidMaxResultsException", "The maximum results value is not valid.")),
    }
}

pub(crate) fn next_token(body: &Value) -> Result<Option<&str>, AwsError> {
    let t = opt_str(body, "NextToken")?;
    if let Some(t) = t {
        if !(4..=1000).contains(&t.len()) {
            return Err(validation(t, "nextToken", "Member must have length between 4 and 1000"));
        }
    }
    Ok(t)
}

struct ListEventDataStores {
    max: usize,
    from: usize,
}

impl Operation<Api> for ListEventDataStores {
    const NAME: &'static str = "ListEventDataStores";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let max = max_results(body, "MaxResults", 1000)?;
        let from = next_token(body)?.map(|t| untoken("eds", t)).transpose()?.unwrap_or(0);
        Ok(ListEventDataStores { max, from })
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        crate::service::any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let mut all: Vec<EventDataStoreDoc> = api
            .store()
            .scan_json::<EventDataStoreDoc>(EDS_TABLE, &format!("{}/", ctx.caller.account_id))
            .map_err(store_err)?
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| d.region == ctx.region)
            .collect();
        all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let page: Vec<Value> = all
            .iter()
            .skip(self.from)
            .take(self.max)
            .map(|d| {
                let mut v = store_json(d);
                if let Value::Object(m) = &mut v {
                    m.remove("BillingMode");
                }
                v
            })
            .collect();
        let mut out = json!({"EventDataStores": page});
        if self.from + self.max < all.len() {
            set(&mut out, "NextToken", json!(token("eds", self.from + self.max)));
        }
        Ok(Output::Json(out))
    }
}

struct UpdateEventDataStore {
    store: StoreRef,
    name: Option<String>,
    selectors: Option<Vec<Value>>,
    multi_region: Option<bool>,
    retention: Option<i64>,
    termination_protection: Option<bool>,
    billing_mode: Option<String>,
}

impl Operation<Api> for UpdateEventDataStore {
    const NAME: &'static str = "UpdateEventDataStore";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let store = StoreRef::required(body, "EventDataStore")?;
        let name = opt_str(body, "Name")?.map(str::to_string);
        if let Some(n) = &name {
            name_ok(n, "name")?;
        }
        let selectors = selectors::validate(body.get("AdvancedEventSelectors"))?;
        organization(body)?;
        let billing_mode = billing_mode(body)?;
        let retention = opt_int(body, "RetentionPeriod")?;
        if let Some(r) = retention {
            if !(7..=3653).contains(&r) {
                return Err(validation(&r.to_string(), "retentionPeriod", "Member must have value between 7 and 3653"));
            }
        }
        kms_key(body)?;
        Ok(UpdateEventDataStore {
            store,
            name,
            selectors,
            multi_region: opt_bool(body, "MultiRegionEnabled")?,
            retention,
            termination_protection: opt_bool(body, "TerminationProtectionEnabled")?,
            billing_mode,
        })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.store.check(api, ctx, Self::NAME))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let UpdateEventDataStore {
            store,
            name,
            selectors,
            multi_region,
            retention,
            termination_protection,
            billing_mode,
        } = self;
        let d = store.load(api, ctx)?;
        let now = now_secs(ctx);
        let key = d.key();
        let d = atomically(api.store(), |tx| -> Result<EventDataStoreDoc, AwsError> {
            let mut d: EventDataStoreDoc = tx.get_json(EDS_TABLE, &key).map_err(store_err)?.ok_or_else(not_found)?;
            if d.status == "PENDING_DELETION" {
                return Err(inactive());
            }
            if let Some(n) = name {
                if n != d.name {
                    let mine: Vec<(String, EventDataStoreDoc)> =
                        tx.scan_json(EDS_TABLE, &format!("{}/", d.account)).map_err(store_err)?;
                    if mine.iter().any(|(_, x)| x.region == d.region && x.name == n) {
                        return Err(e400(
                            "EventDataStoreAlreadyExistsException",
                            "An event data store with that name already exists.",
                        ));
                    }
                    d.name = n;
                }
            }
            if let Some(m) = billing_mode {
                if m == "FIXED_RETENTION_PRICING" && d.billing_mode == "EXTENDABLE_RETENTION_PRICING" {
                    return Err(e400(
                        "InvalidParameterException",
                        "You cannot change the billing mode from EXTENDABLE_RETENTION_PRICING to FIXED_RETENTION_PRICING.",
                    ));
                }
                d.billing_mode = m;
            }
            if let Some(r) = retention {
                let max = if d.billing_mode == "FIXED_RETENTION_PRICING" { 2557 } else { 3653 };
                if r > max {
                    return Err(e400(
                        "InvalidParameterException",
                        format!(
                            "The retention period for event data stores with {} must be between 7 and {max} days.",
                            d.billing_mode
                        ),
                    ));
                }
                d.retention_days = r as u32;
            }
            if let Some(s) = selectors {
                d.advanced_event_selectors = s;
            }
            if let Some(m) = multi_region {
                d.multi_region = m;
            }
            if let Some(t) = termination_protection {
                d.termination_protection = t;
            }
            d.updated = now;
            tx.put_json(EDS_TABLE, &key, &d).map_err(store_err)?;
            Ok(d)
        })?;
        Ok(Output::Json(store_json(&d)))
    }
}

fn query_id(body: &Value, required_member: bool) -> Result<Option<String>, AwsError> {
    let id = if required_member { Some(required(body, "QueryId")?) } else { opt_str(body, "QueryId")? };
    let Some(id) = id else { return Ok(None) };
    if id.len() != 36 {
        return Err(validation(id, "queryId", "Member must have length between 36 and 36"));
    }
    if !id.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c) || c == b'-') {
        return Err(validation(id, "queryId", "Member must satisfy regular expression pattern: ^[a-f0-9\\-]+$"));
    }
    Ok(Some(id.to_string()))
}

fn owner_account(body: &Value) -> Result<(), AwsError> {
    if let Some(a) = opt_str(body, "EventDataStoreOwnerAccountId")? {
        if a.len() != 12 || !a.bytes().all(|c| c.is_ascii_digit()) {
            return Err(validation(
                a,
                "eventDataStoreOwnerAccountId",
                "Member must satisfy regular expression pattern: \\d+",
            ));
        }
    }
    Ok(())
}

struct StartQuery {
    statement: String,
    translated: Translated,
    params: Vec<String>,
    stores: Vec<StoreRef>,
    owner: Option<String>,
}

impl Operation<Api> for StartQuery {
    const NAME: &'static str = "StartQuery";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        owner_account(body)?;
        if opt_str(body, "DeliveryS3Uri")?.is_some_and(|u| !u.is_empty()) {
            return Err(e400(
                "UnsupportedOperationException",
                "DeliveryS3Uri: Rampart's CloudTrail Lake keeps query results for GetQueryResults; S3 delivery is not offered.",
            ));
        }
        let statement = opt_str(body, "QueryStatement")?;
        if let Some(alias) = opt_str(body, "QueryAlias")? {
            let ok = !alias.is_empty()
                && alias.len() <= 256
                && alias.starts_with(|c: char| c.is_ascii_alphabetic())
                && alias.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
            if !ok {
                return Err(validation(
                    alias,
                    "queryAlias",
                    "Member must satisfy regular expression pattern: ^[a-zA-Z][a-zA-Z0-9._\\-]*$",
                ));
            }
            if statement.is_none() {
                // Aliases name the query templates of dashboards, which Rampart does not offer.
                return Err(e400("InvalidParameterException", format!("Query alias {alias} does not exist.")));
            }
        }
        let Some(statement) = statement else {
            return Err(e400("InvalidParameterException", "You must specify either a QueryStatement or a QueryAlias."));
        };
        if statement.is_empty() || statement.chars().count() > 10_000 {
            return Err(validation("…", "queryStatement", "Member must have length between 1 and 10000"));
        }
        let params: Vec<String> = match body.get("QueryParameters").filter(|v| !v.is_null()) {
            None => Vec::new(),
            Some(v) => {
                let list =
                    v.as_array().ok_or_else(|| e400("SerializationException", "QueryParameters must be a list"))?;
                if list.is_empty() || list.len() > 10 {
                    return Err(validation("…", "queryParameters", "Member must have length between 1 and 10"));
                }
                list.iter()
                    .map(|p| {
                        p.as_str()
                            .filter(|p| !p.is_empty() && p.chars().count() <= 1024)
                            .map(str::to_string)
                            .ok_or_else(|| {
                                validation("…", "queryParameters.member", "Member must have length between 1 and 1024")
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
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
        let owner = opt_str(body, "EventDataStoreOwnerAccountId")?.map(str::to_string);
        let stores = translated
            .stores
            .iter()
            .map(|id| {
                StoreRef::parse(id).map_err(|_| not_found()).map(|mut s| {
                    // Another account's event data store, by its ID and the owner's account.
                    if s.account.is_none() {
                        s.account = owner.clone();
                    }
                    s
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StartQuery { statement: statement.to_string(), translated, params, stores, owner })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        // Each store's resource policy takes part: another account's store is queried only when
        // its policy allows the caller (the authorizer's cross-account rule).
        let checks = self
            .stores
            .iter_mut()
            .map(|s| {
                let owner = s.account.clone().unwrap_or_else(|| ctx.caller.account_id.clone());
                let c = s.check(api, ctx, Self::NAME);
                crate::policies::with_resource_policy(api.store(), c, &owner, &ctx.caller.account_id).map_err(store_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuthzPlan::Checks(checks))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        // The stores' one owner (a query reads one account's event data stores).
        let owner = self.owner.clone().unwrap_or_else(|| ctx.caller.account_id.clone());
        for s in self.stores {
            let d = if owner == ctx.caller.account_id && s.account.as_deref().is_none_or(|a| a == owner) {
                s.load(api, ctx)?
            } else {
                s.load_shared(api, ctx, &owner)?
            };
            if d.status == "PENDING_DELETION" {
                return Err(inactive());
            }
        }
        query::check(&self.translated).map_err(|m| e400("InvalidQueryStatementException", m))?;
        let account = ctx.caller.account_id.clone();
        let created = ctx.time.unix_timestamp_nanos() as f64 / 1e9;
        let doc = QueryDoc {
            id: uuid(),
            account: account.clone(),
            region: ctx.region.clone(),
            statement: self.statement,
            stores: self.translated.stores.clone(),
            owner: (owner != account).then(|| owner.clone()),
            params: self.params,
            status: "QUEUED".into(),
            error: None,
            created,
            events_scanned: 0,
            events_matched: 0,
            bytes_scanned: 0,
            exec_ms: 0,
            results: 0,
        };
        let timeout = api.0.lake.queries.limits.timeout.as_secs_f64();
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            let mine: Vec<(String, QueryDoc)> =
                tx.scan_json(QUERIES_TABLE, &format!("{account}/")).map_err(store_err)?;
            let active = mine
                .iter()
                .filter(|(_, q)| {
                    effective_status(q, created, timeout) == "QUEUED"
                        || effective_status(q, created, timeout) == "RUNNING"
                })
                .count();
            if active >= MAX_ACTIVE_QUERIES {
                return Err(e400(
                    "MaxConcurrentQueriesException",
                    "You are already running the maximum number of concurrent queries. The maximum number of concurrent queries is 10. Wait a minute for some queries to finish, and then run the query again.",
                ));
            }
            tx.put_json(QUERIES_TABLE, &doc.key(), &doc).map_err(store_err)
        })?;
        let mut out = json!({"QueryId": doc.id});
        if let Some(o) = &self.owner {
            set(&mut out, "EventDataStoreOwnerAccountId", json!(o));
        }
        query::spawn(api.0.lake.clone(), doc, self.translated);
        Ok(Output::Json(out))
    }
}

/// A query's status as shown: one left QUEUED or RUNNING by a server that stopped is TIMED_OUT
/// once its deadline (and a minute) has passed.
pub(crate) fn effective_status(q: &QueryDoc, now: f64, timeout: f64) -> &str {
    if q.active() && now - q.created > timeout + 60.0 {
        "TIMED_OUT"
    } else {
        &q.status
    }
}

/// The query a call names and, once planning read it, its record.
struct QueryRef {
    id: Option<String>,
    store: Option<StoreRef>,
    doc: Option<Option<QueryDoc>>,
}

impl QueryRef {
    fn parse(body: &Value, id_required: bool) -> Result<Self, AwsError> {
        owner_account(body)?;
        let id = query_id(body, id_required)?;
        let store = opt_str(body, "EventDataStore")?.map(StoreRef::parse).transpose()?;
        Ok(QueryRef { id, store, doc: None })
    }

    /// `cloudtrail:{action}` on the event data store(s) the query reads (or the one named).
    fn checks(&mut self, api: &Api, ctx: &RequestContext, action: &str) -> Result<AuthzPlan, AwsError> {
        if let Some(s) = &mut self.store {
            return one(s.check(api, ctx, action));
        }
        if self.doc.is_none() {
            let d = match &self.id {
                Some(id) => api
                    .store()
                    .get_json::<QueryDoc>(QUERIES_TABLE, &format!("{}/{id}", ctx.caller.account_id))
                    .map_err(store_err)?
                    .filter(|q| q.region == ctx.region),
                None => None,
            };
            self.doc = Some(d);
        }
        let (owner, stores): (String, Vec<String>) = match self.doc.as_ref().and_then(Option::as_ref) {
            Some(q) => (
                q.store_account().to_string(),
                q.stores.iter().map(|id| eds_arn(&ctx.region, q.store_account(), id)).collect(),
            ),
            None => (ctx.caller.account_id.clone(), vec![eds_arn(&ctx.region, &ctx.caller.account_id, "*")]),
        };
        // A cross-account query's stores are read under their resource policies.
        let checks = stores
            .into_iter()
            .map(|a| {
                let c = AuthzCheck::new(format!("cloudtrail:{action}"), a);
                crate::policies::with_resource_policy(api.store(), c, &owner, &ctx.caller.account_id).map_err(store_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuthzPlan::Checks(checks))
    }

    /// The query (fresh), checked against the named event data store, whose stores are active.
    fn load(self, api: &Api, ctx: &RequestContext) -> Result<QueryDoc, AwsError> {
        let missing = || e400("QueryIdNotFoundException", "The query ID does not exist or does not map to a query.");
        let Some(id) = &self.id else { return Err(missing()) };
        let q = api
            .store()
            .get_json::<QueryDoc>(QUERIES_TABLE, &format!("{}/{id}", ctx.caller.account_id))
            .map_err(store_err)?
            .filter(|q| q.region == ctx.region)
            .ok_or_else(missing)?;
        if let Some(s) = self.store {
            let d = s.load(api, ctx)?;
            if d.status == "PENDING_DELETION" {
                return Err(inactive());
            }
            if !q.stores.contains(&d.id) {
                return Err(missing());
            }
        } else {
            for sid in &q.stores {
                let d: Option<EventDataStoreDoc> =
                    api.store().get_json(EDS_TABLE, &format!("{}/{sid}", q.store_account())).map_err(store_err)?;
                if d.is_some_and(|d| d.status == "PENDING_DELETION") {
                    return Err(inactive());
                }
            }
        }
        Ok(q)
    }
}

pub(crate) fn timeout_of(api: &Api) -> f64 {
    api.0.lake.queries.limits.timeout.as_secs_f64()
}

fn now_f(ctx: &RequestContext) -> f64 {
    ctx.time.unix_timestamp_nanos() as f64 / 1e9
}

struct DescribeQuery(QueryRef);

impl Operation<Api> for DescribeQuery {
    const NAME: &'static str = "DescribeQuery";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        if opt_str(body, "QueryAlias")?.is_some() && opt_str(body, "QueryId")?.is_none() {
            return Err(e400(
                "InvalidParameterException",
                "Query aliases name dashboard queries, which Rampart does not offer; specify QueryId.",
            ));
        }
        Ok(DescribeQuery(QueryRef::parse(body, false)?))
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.0.checks(api, ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let q = self.0.load(api, ctx)?;
        let status = effective_status(&q, now_f(ctx), timeout_of(api));
        let mut out = json!({
            "QueryId": q.id,
            "QueryString": q.statement,
            "QueryStatus": status,
            "QueryStatistics": {
                "EventsMatched": q.events_matched,
                "EventsScanned": q.events_scanned,
                "BytesScanned": q.bytes_scanned,
                "ExecutionTimeInMillis": q.exec_ms,
                "CreationTime": q.created,
            },
        });
        if let Some(e) = &q.error {
            set(&mut out, "ErrorMessage", json!(e));
        }
        Ok(Output::Json(out))
    }
}

struct GetQueryResults {
    q: QueryRef,
    max: usize,
    from: Option<String>,
}

impl Operation<Api> for GetQueryResults {
    const NAME: &'static str = "GetQueryResults";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let q = QueryRef::parse(body, true)?;
        let max = max_results(body, "MaxQueryResults", 1000)?;
        let from = next_token(body)?.map(str::to_string);
        Ok(GetQueryResults { q, max, from })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.q.checks(api, ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let q = self.q.load(api, ctx)?;
        let from = self.from.as_deref().map(|t| untoken(&q.id, t)).transpose()?.unwrap_or(0);
        let status = effective_status(&q, now_f(ctx), timeout_of(api)).to_string();
        let results: Results = if status == "FINISHED" {
            api.store().get_json(RESULTS_TABLE, &q.key()).map_err(store_err)?.unwrap_or_default()
        } else {
            Results::default()
        };
        let total = results.rows.len();
        if from > total {
            return Err(e400("InvalidNextTokenException", "A token that is not valid, or a token that was previously used in a request with different parameters."));
        }
        let page: Vec<Value> = results
            .rows
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take(self.max)
            .map(|row| {
                Value::Array(
                    results
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| json!({ c.as_str(): v.clone().unwrap_or_default() }))
                        .collect(),
                )
            })
            .collect();
        let mut out = json!({
            "QueryStatus": status,
            "QueryStatistics": {
                "ResultsCount": page.len(),
                "TotalResultsCount": total,
                "BytesScanned": q.bytes_scanned,
            },
            "QueryResultRows": page,
        });
        if from + self.max < total {
            set(&mut out, "NextToken", json!(token(&q.id, from + self.max)));
        }
        if let Some(e) = &q.error {
            set(&mut out, "ErrorMessage", json!(e));
        }
        Ok(Output::Json(out))
    }
}

struct CancelQuery(QueryRef);

impl Operation<Api> for CancelQuery {
    const NAME: &'static str = "CancelQuery";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        Ok(CancelQuery(QueryRef::parse(input.json(), true)?))
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.0.checks(api, ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let q = self.0.load(api, ctx)?;
        let timeout = timeout_of(api);
        let now = now_f(ctx);
        let key = q.key();
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            let Some(mut q) = tx.get_json::<QueryDoc>(QUERIES_TABLE, &key).map_err(store_err)? else {
                return Err(e400(
                    "QueryIdNotFoundException",
                    "The query ID does not exist or does not map to a query.",
                ));
            };
            if effective_status(&q, now, timeout) != "QUEUED" && effective_status(&q, now, timeout) != "RUNNING" {
                return Err(e400(
                    "InactiveQueryException",
                    "The specified query cannot be canceled because it is in the FINISHED, FAILED, TIMED_OUT, or CANCELLED state.",
                ));
            }
            q.status = "CANCELLED".into();
            tx.put_json(QUERIES_TABLE, &key, &q).map_err(store_err)
        })?;
        api.0.lake.queries.cancel(&q.id);
        Ok(Output::Json(json!({"QueryId": q.id, "QueryStatus": "CANCELLED"})))
    }
}

struct ListQueries {
    store: StoreRef,
    max: usize,
    from: usize,
    start: Option<f64>,
    end: Option<f64>,
    status: Option<String>,
}

fn time_member(body: &Value, key: &str) -> Result<Option<f64>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(t.unix_timestamp_nanos() as f64 / 1e9))
            .map_err(|_| e400("SerializationException", format!("{key} is not a valid timestamp"))),
        Some(_) => Err(e400("SerializationException", format!("{key} is not a valid timestamp"))),
    }
}

impl Operation<Api> for ListQueries {
    const NAME: &'static str = "ListQueries";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let store = StoreRef::required(body, "EventDataStore")?;
        let max = max_results(body, "MaxResults", 1000)?;
        let from = next_token(body)?.map(|t| untoken("queries", t)).transpose()?.unwrap_or(0);
        let start = time_member(body, "StartTime")?;
        let end = time_member(body, "EndTime")?;
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(e400(
                    "InvalidDateRangeException",
                    "A date range for the query was specified that is not valid. Be sure that the start time is chronologically before the end time.",
                ));
            }
        }
        let status = match opt_str(body, "QueryStatus")? {
            None => None,
            Some(s @ ("QUEUED" | "RUNNING" | "FINISHED" | "FAILED" | "CANCELLED" | "TIMED_OUT")) => Some(s.to_string()),
            Some(_) => {
                return Err(e400("InvalidQueryStatusException", "The query status is not valid for the operation."))
            }
        };
        Ok(ListQueries { store, max, from, start, end, status })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(self.store.check(api, ctx, Self::NAME))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let d = self.store.load(api, ctx)?;
        if d.status == "PENDING_DELETION" {
            return Err(inactive());
        }
        let now = now_f(ctx);
        let timeout = timeout_of(api);
        let mut qs: Vec<QueryDoc> = api
            .store()
            .scan_json::<QueryDoc>(QUERIES_TABLE, &format!("{}/", ctx.caller.account_id))
            .map_err(store_err)?
            .into_iter()
            .map(|(_, q)| q)
            .filter(|q| q.region == ctx.region && q.stores.contains(&d.id))
            .filter(|q| now - q.created <= QUERY_KEEP_SECS as f64)
            .filter(|q| self.start.is_none_or(|s| q.created >= s) && self.end.is_none_or(|e| q.created <= e))
            .filter(|q| self.status.as_deref().is_none_or(|s| s == effective_status(q, now, timeout)))
            .collect();
        qs.sort_by(|a, b| b.created.total_cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        let page: Vec<Value> = qs
            .iter()
            .skip(self.from)
            .take(self.max)
            .map(|q| json!({"QueryId": q.id, "QueryStatus": effective_status(q, now, timeout), "CreationTime": q.created}))
            .collect();
        let mut out = json!({"Queries": page});
        if self.from + self.max < qs.len() {
            set(&mut out, "NextToken", json!(token("queries", self.from + self.max)));
        }
        Ok(Output::Json(out))
    }
}

// -- imports -------------------------------------------------------------------------------------

use super::import::{self as imports, ImportDoc, IMPORTS_TABLE};

fn import_not_found() -> AwsError {
    e400("ImportNotFoundException", "The specified import was not found.")
}

fn import_json(d: &ImportDoc, with_stats: bool) -> Value {
    let mut v = json!({
        "ImportId": d.id,
        "Destinations": [d.destination],
        "ImportSource": {"S3": {"S3LocationUri": d.s3_uri, "S3BucketRegion": d.bucket_region,
                                "S3BucketAccessRoleArn": d.role_arn}},
        "ImportStatus": d.status,
        "CreatedTimestamp": d.created,
        "UpdatedTimestamp": d.updated,
    });
    if let Some(s) = d.start {
        set(&mut v, "StartEventTime", json!(s));
    }
    if let Some(e) = d.end {
        set(&mut v, "EndEventTime", json!(e));
    }
    if with_stats {
        set(
            &mut v,
            "ImportStatistics",
            json!({"PrefixesFound": d.prefixes_found, "PrefixesCompleted": d.prefixes_completed,
                   "FilesCompleted": d.files_completed, "EventsCompleted": d.events_completed,
                   "FailedEntries": d.failed_entries}),
        );
    }
    v
}

fn load_import(api: &Api, ctx: &RequestContext, id: &str) -> Result<ImportDoc, AwsError> {
    api.store()
        .get_json::<ImportDoc>(IMPORTS_TABLE, &format!("{}/{id}", ctx.caller.account_id))
        .map_err(store_err)?
        .filter(|d| d.region == ctx.region)
        .ok_or_else(import_not_found)
}

struct NewImport {
    store: StoreRef,
    uri: String,
    bucket_region: String,
    role_arn: String,
}

struct StartImport {
    /// A retry of this import, or a new one.
    retry: Option<String>,
    new: Option<NewImport>,
    start: Option<f64>,
    end: Option<f64>,
}

impl Operation<Api> for StartImport {
    const NAME: &'static str = "StartImport";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let retry = match opt_str(body, "ImportId")? {
            Some(_) => query_id(&json!({"QueryId": body.get("ImportId")}), true)?,
            None => None,
        };
        let start = time_member(body, "StartEventTime")?;
        let end = time_member(body, "EndEventTime")?;
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(e400("InvalidParameterException", "StartEventTime must be before EndEventTime."));
            }
        }
        let new = if retry.is_some() {
            None
        } else {
            let dests = body.get("Destinations").and_then(Value::as_array).ok_or_else(|| {
                e400("InvalidParameterException", "Destinations and ImportSource are required to start an import.")
            })?;
            let [dest] = dests.as_slice() else {
                return Err(validation("…", "destinations", "Member must have length between 1 and 1"));
            };
            let store = StoreRef::parse(dest.as_str().unwrap_or_default())?;
            let s3 = body.pointer("/ImportSource/S3").ok_or_else(|| {
                e400("InvalidParameterException", "Destinations and ImportSource are required to start an import.")
            })?;
            let field = |k: &str| -> Result<String, AwsError> {
                s3.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
                    e400(
                        "InvalidParameterException",
                        format!("1 validation error detected: Value null at 'importSource.s3.{k}' failed to satisfy constraint: Member must not be null"),
                    )
                })
            };
            let uri = field("S3LocationUri")?;
            if imports::parse_uri(&uri).is_none() {
                return Err(e400("InvalidImportSourceException", "The S3LocationUri is not a valid S3 location."));
            }
            Some(NewImport {
                store,
                uri,
                bucket_region: field("S3BucketRegion")?,
                role_arn: field("S3BucketAccessRoleArn")?,
            })
        };
        Ok(StartImport { retry, new, start, end })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        match (&mut self.new, &self.retry) {
            (Some(n), _) => one(n.store.check(api, ctx, Self::NAME)),
            (None, Some(id)) => {
                let dest = api
                    .store()
                    .get_json::<ImportDoc>(IMPORTS_TABLE, &format!("{}/{id}", ctx.caller.account_id))
                    .map_err(store_err)?
                    .map_or_else(|| eds_arn(&ctx.region, &ctx.caller.account_id, "*"), |d| d.destination);
                one(AuthzCheck::new(format!("cloudtrail:{}", Self::NAME), dest))
            }
            (None, None) => crate::service::any(Self::NAME),
        }
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let Some(root) = api.0.delivery.root().map(|p| p.to_path_buf()) else {
            return Err(e400(
                "InvalidImportSourceException",
                "This server has no trail directory (an ephemeral server without --trail-dir), so there is nothing to import.",
            ));
        };
        let account = ctx.caller.account_id.clone();
        let now = now_f(ctx);
        let doc = match (self.retry, self.new) {
            (Some(id), _) => {
                let mut d = load_import(api, ctx, &id)?;
                if d.active() || d.status == "COMPLETED" {
                    return Err(e400("InvalidParameterException", "Only a failed or stopped import can be retried."));
                }
                d.status = "INITIALIZING".into();
                d.updated = now;
                d
            }
            (None, Some(n)) => {
                let eds = n.store.load(api, ctx)?;
                if eds.status == "PENDING_DELETION" {
                    return Err(inactive());
                }
                let (bucket, prefix) = imports::parse_uri(&n.uri).unwrap_or_default();
                // The bucket must be one the caller's trails deliver to.
                let trails: Vec<(String, crate::delivery::TrailDoc)> =
                    api.store().scan_json(crate::delivery::TRAILS_TABLE, &format!("{account}/")).map_err(store_err)?;
                let dir = root.join(&bucket).join(&prefix);
                if !trails.iter().any(|(_, t)| t.bucket == bucket) || !dir.is_dir() {
                    return Err(e400(
                        "InvalidImportSourceException",
                        format!("s3://{bucket}/{prefix} is not a location your trails deliver log files to."),
                    ));
                }
                ImportDoc {
                    id: uuid(),
                    account: account.clone(),
                    region: ctx.region.clone(),
                    destination: eds.arn(),
                    store_id: eds.id,
                    s3_uri: n.uri,
                    bucket_region: n.bucket_region,
                    role_arn: n.role_arn,
                    start: self.start,
                    end: self.end,
                    status: "INITIALIZING".into(),
                    created: now,
                    updated: now,
                    prefixes_found: 0,
                    prefixes_completed: 0,
                    files_completed: 0,
                    events_completed: 0,
                    failed_entries: 0,
                    failures: Vec::new(),
                }
            }
            (None, None) => {
                return Err(e400(
                    "InvalidParameterException",
                    "Destinations and ImportSource are required to start an import.",
                ))
            }
        };
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            let mine: Vec<(String, ImportDoc)> =
                tx.scan_json(IMPORTS_TABLE, &format!("{account}/")).map_err(store_err)?;
            if mine.iter().any(|(_, d)| d.active() && d.id != doc.id) {
                return Err(e400(
                    "AccountHasOngoingImportException",
                    "This account already has an import in progress.",
                ));
            }
            tx.put_json(IMPORTS_TABLE, &doc.key(), &doc).map_err(store_err)
        })?;
        let out = import_json(&doc, false);
        imports::spawn(api.0.lake.clone(), doc, root);
        Ok(Output::Json(out))
    }
}

fn import_id(body: &Value) -> Result<String, AwsError> {
    let id = required(body, "ImportId")?;
    query_id(&json!({"QueryId": id}), true)?.ok_or_else(import_not_found)
}

struct GetImport(String);

impl Operation<Api> for GetImport {
    const NAME: &'static str = "GetImport";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        import_id(input.json()).map(GetImport)
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        crate::service::any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        Ok(Output::Json(import_json(&load_import(api, ctx, &self.0)?, true)))
    }
}

struct StopImport(String);

impl Operation<Api> for StopImport {
    const NAME: &'static str = "StopImport";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        import_id(input.json()).map(StopImport)
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        crate::service::any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let d = load_import(api, ctx, &self.0)?;
        let now = now_f(ctx);
        let key = d.key();
        let d = atomically(api.store(), |tx| -> Result<ImportDoc, AwsError> {
            let mut d: ImportDoc = tx.get_json(IMPORTS_TABLE, &key).map_err(store_err)?.ok_or_else(import_not_found)?;
            if d.active() {
                d.status = "STOPPED".into();
                d.updated = now;
                tx.put_json(IMPORTS_TABLE, &key, &d).map_err(store_err)?;
            }
            Ok(d)
        })?;
        Ok(Output::Json(import_json(&d, true)))
    }
}

struct ListImports {
    destination: Option<StoreRef>,
    status: Option<String>,
    max: usize,
    from: usize,
}

impl Operation<Api> for ListImports {
    const NAME: &'static str = "ListImports";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let destination = opt_str(body, "Destination")?.map(StoreRef::parse).transpose()?;
        let status = match opt_str(body, "ImportStatus")? {
            None => None,
            Some(s @ ("INITIALIZING" | "IN_PROGRESS" | "FAILED" | "STOPPED" | "COMPLETED")) => Some(s.to_string()),
            Some(s) => {
                return Err(validation(
                    s,
                    "importStatus",
                    "Member must satisfy enum value set: [INITIALIZING, IN_PROGRESS, FAILED, STOPPED, COMPLETED]",
                ))
            }
        };
        let max = max_results(body, "MaxResults", 1000)?;
        let from = next_token(body)?.map(|t| untoken("imports", t)).transpose()?.unwrap_or(0);
        Ok(ListImports { destination, status, max, from })
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        crate::service::any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let dest = self.destination.map(|d| d.arn(ctx));
        let mut all: Vec<ImportDoc> = api
            .store()
            .scan_json::<ImportDoc>(IMPORTS_TABLE, &format!("{}/", ctx.caller.account_id))
            .map_err(store_err)?
            .into_iter()
            .map(|(_, d)| d)
            .filter(|d| d.region == ctx.region)
            .filter(|d| dest.as_deref().is_none_or(|a| a == d.destination))
            .filter(|d| self.status.as_deref().is_none_or(|s| s == d.status))
            .collect();
        all.sort_by(|a, b| b.created.total_cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        let page: Vec<Value> = all
            .iter()
            .skip(self.from)
            .take(self.max)
            .map(|d| {
                json!({"ImportId": d.id, "ImportStatus": d.status, "Destinations": [d.destination],
                       "CreatedTimestamp": d.created, "UpdatedTimestamp": d.updated})
            })
            .collect();
        let mut out = json!({"Imports": page});
        if self.from + self.max < all.len() {
            set(&mut out, "NextToken", json!(token("imports", self.from + self.max)));
        }
        Ok(Output::Json(out))
    }
}

struct ListImportFailures {
    id: String,
    max: usize,
    from: usize,
}

impl Operation<Api> for ListImportFailures {
    const NAME: &'static str = "ListImportFailures";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let id = import_id(body)?;
        let max = max_results(body, "MaxResults", 1000)?;
        let from = next_token(body)?.map(|t| untoken(&id, t)).transpose()?.unwrap_or(0);
        Ok(ListImportFailures { id, max, from })
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        crate::service::any(Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let d = load_import(api, ctx, &self.id)?;
        let page: Vec<Value> = d
            .failures
            .iter()
            .skip(self.from)
            .take(self.max)
            .map(|f| {
                json!({"Location": f.location, "Status": "FAILED", "ErrorType": f.error_type,
                       "ErrorMessage": f.error_message, "LastUpdatedTime": f.time})
            })
            .collect();
        let mut out = json!({"Failures": page});
        if self.from + self.max < d.failures.len() {
            set(&mut out, "NextToken", json!(token(&d.id, self.from + self.max)));
        }
        Ok(Output::Json(out))
    }
}

// -- sample queries ------------------------------------------------------------------------------

struct SearchSampleQueries {
    phrase: String,
    max: usize,
    from: usize,
}

impl Operation<Api> for SearchSampleQueries {
    const NAME: &'static str = "SearchSampleQueries";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let phrase = required(body, "SearchPhrase")?;
        if !(2..=1000).contains(&phrase.len()) {
            return Err(validation(phrase, "searchPhrase", "Member must have length between 2 and 1000"));
        }
        if !phrase.bytes().all(|c| (b' '..=b'~').contains(&c) || c == b'\n') {
            return Err(validation(
                phrase,
                "searchPhrase",
                "Member must satisfy regular expression pattern: ^[ -~\\n]*$",
            ));
        }
        let max = match opt_int(body, "MaxResults")? {
            None => 10,
            Some(n) if (1..=50).contains(&n) => n as usize,
            Some(n) => return Err(validation(&n.to_string(), "maxResults", "Member must have value between 1 and 50")),
        };
        let from = next_token(body)?.map(|t| untoken("samples", t)).transpose()?.unwrap_or(0);
        Ok(SearchSampleQueries { phrase: phrase.to_string(), max, from })
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        crate::service::any(Self::NAME)
    }

    fn run(self, _: &Api, _: &RequestContext) -> Result<Output, AwsError> {
        let hits = super::samples::search(&self.phrase);
        let page: Vec<Value> = hits
            .iter()
            .skip(self.from)
            .take(self.max)
            .filter_map(|(i, relevance)| {
                let (name, description, sql) = super::samples::SAMPLES.get(*i)?;
                Some(json!({"Name": name, "Description": description, "SQL": sql, "Relevance": relevance}))
            })
            .collect();
        let mut out = json!({"SearchResults": page});
        if self.from + self.max < hits.len() {
            set(&mut out, "NextToken", json!(token("samples", self.from + self.max)));
        }
        Ok(Output::Json(out))
    }
}
