//! CloudTrail Lake channels: integrations with event sources outside AWS. A channel delivers the
//! events a source sends with cloudtrail-data's PutAuditEvents into its destination event data
//! stores (which collect `ActivityAuditLog` events).

#![deny(clippy::string_slice, clippy::indexing_slicing)]

use rampart_service::{op, AuthzCheck, AuthzPlan, AwsError, Entry, Input, Operation, Output, RequestContext};
use rampart_store::{ReadExt, TransactionExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::lake::{selectors, uuid, EventDataStoreDoc, EDS_TABLE};
use crate::policies::{drop_policy, CHANNELS_TABLE};
use crate::service::{atomically, e400, one, required, store_err, tags_of, Api};

/// Tags per channel (the model's list limit).
const MAX_CHANNEL_TAGS: usize = 200;
/// Destinations per channel (the model's list limit).
const MAX_DESTINATIONS: usize = 200;

/// A channel, as stored (key `{account}/{id}`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChannelDoc {
    pub id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub source: String,
    /// `(Type, Location)`.
    pub destinations: Vec<(String, String)>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    pub created: i64,
    /// The latest PutAuditEvents results (GetChannel's IngestionStatus).
    #[serde(default)]
    pub ingestion: Ingestion,
}

/// GetChannel's `IngestionStatus`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Ingestion {
    pub success_time: Option<f64>,
    pub success_event: Option<String>,
    pub error_code: Option<String>,
    pub attempt_time: Option<f64>,
    pub attempt_event: Option<String>,
}

impl ChannelDoc {
    pub fn arn(&self) -> String {
        channel_arn(&self.region, &self.account, &self.id)
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.id)
    }

    /// The event data stores it delivers to.
    pub fn stores(&self) -> impl Iterator<Item = &str> {
        self.destinations.iter().filter(|(t, _)| t == "EVENT_DATA_STORE").map(|(_, l)| l.as_str())
    }
}

pub fn channel_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account}:channel/{id}")
}

fn validation(value: &str, member: &str, constraint: &str) -> AwsError {
    let shown: String = value.chars().take(64).collect();
    e400(
        "InvalidParameterException",
        format!(
            "1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

fn channel_name(v: &str) -> Result<String, AwsError> {
    if !(3..=128).contains(&v.len()) {
        return Err(validation(v, "name", "Member must have length between 3 and 128"));
    }
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
        return Err(validation(v, "name", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._\\-]+$"));
    }
    Ok(v.to_string())
}

fn destinations(body: &Value) -> Result<Option<Vec<(String, String)>>, AwsError> {
    let Some(v) = body.get("Destinations").filter(|v| !v.is_null()) else { return Ok(None) };
    let list = v.as_array().ok_or_else(|| e400("SerializationException", "Destinations must be a list"))?;
    if list.is_empty() || list.len() > MAX_DESTINATIONS {
        return Err(validation("…", "destinations", "Member must have length between 1 and 200"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let n = i + 1;
        let ty = d.get("Type").and_then(Value::as_str).ok_or_else(|| {
            e400(
                "InvalidParameterException",
                format!("1 validation error detected: Value null at 'destinations.{n}.member.type' failed to satisfy constraint: Member must not be null"),
            )
        })?;
        if !matches!(ty, "EVENT_DATA_STORE" | "AWS_SERVICE") {
            return Err(validation(
                ty,
                &format!("destinations.{n}.member.type"),
                "Member must satisfy enum value set: [EVENT_DATA_STORE, AWS_SERVICE]",
            ));
        }
        let loc = d.get("Location").and_then(Value::as_str).ok_or_else(|| {
            e400(
                "InvalidParameterException",
                format!("1 validation error detected: Value null at 'destinations.{n}.member.location' failed to satisfy constraint: Member must not be null"),
            )
        })?;
        if !(3..=1024).contains(&loc.len()) {
            return Err(validation(
                loc,
                &format!("destinations.{n}.member.location"),
                "Member must have length between 3 and 1024",
            ));
        }
        if !loc.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-' | b':' | b'*')) {
            return Err(validation(
                loc,
                &format!("destinations.{n}.member.location"),
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:*]+$",
            ));
        }
        if ty == "AWS_SERVICE" {
            // Service-linked channels are made by AWS services, not by CreateChannel.
            return Err(e400(
                "InvalidParameterException",
                "Destinations of type AWS_SERVICE belong to service-linked channels, which AWS services create; a channel you create delivers to event data stores (EVENT_DATA_STORE).",
            ));
        }
        out.push((ty.to_string(), loc.to_string()));
    }
    Ok(Some(out))
}

/// Check each destination event data store: an ARN of the caller's store, active, that collects
/// `ActivityAuditLog` events. Returns their ARNs as stored.
fn check_destinations(
    api: &Api,
    ctx: &RequestContext,
    dests: &[(String, String)],
) -> Result<Vec<(String, String)>, AwsError> {
    let mut out = Vec::with_capacity(dests.len());
    for (ty, loc) in dests {
        let p: Vec<&str> = loc.splitn(6, ':').collect();
        let ["arn", _, "cloudtrail", region, account, res] = p.as_slice() else {
            return Err(eds_arn_invalid());
        };
        let Some(id) = res.strip_prefix("eventdatastore/") else { return Err(eds_arn_invalid()) };
        if account.len() != 12 || !account.bytes().all(|c| c.is_ascii_digit()) || id.is_empty() {
            return Err(eds_arn_invalid());
        }
        if *account != ctx.caller.account_id || *region != ctx.region {
            return Err(eds_arn_invalid());
        }
        let d: EventDataStoreDoc = api
            .store()
            .get_json(EDS_TABLE, &format!("{account}/{id}"))
            .map_err(store_err)?
            .filter(|d: &EventDataStoreDoc| d.region == ctx.region)
            .ok_or_else(|| e400("EventDataStoreNotFoundException", "The specified event data store was not found."))?;
        if d.status == "PENDING_DELETION" {
            return Err(e400("InactiveEventDataStoreException", format!("Event data store {} is inactive.", d.arn())));
        }
        if !selectors::collects_activity(&d.advanced_event_selectors) {
            return Err(e400(
                "InvalidEventDataStoreCategoryException",
                format!(
                    "Event data store {} does not collect events of category ActivityAuditLog, which channels deliver.",
                    d.arn()
                ),
            ));
        }
        out.push((ty.clone(), d.arn()));
    }
    Ok(out)
}

fn eds_arn_invalid() -> AwsError {
    e400(
        "EventDataStoreARNInvalidException",
        "The specified event data store ARN is not valid or does not map to an event data store in your account.",
    )
}

fn channel_json(c: &ChannelDoc) -> Value {
    json!({
        "ChannelArn": c.arn(),
        "Name": c.name,
        "Source": c.source,
        "Destinations": c.destinations.iter().map(|(t, l)| json!({"Type": t, "Location": l})).collect::<Vec<_>>(),
    })
}

/// A channel as a call names it: its ARN or its ID.
pub(crate) struct ChannelRef {
    account: Option<String>,
    region: Option<String>,
    pub(crate) id: String,
}

impl ChannelRef {
    pub(crate) fn parse(v: &str, member: &str) -> Result<Self, AwsError> {
        if !(3..=256).contains(&v.len()) {
            return Err(validation(v, member, "Member must have length between 3 and 256"));
        }
        if !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-' | b':')) {
            return Err(validation(v, member, "Member must satisfy regular expression pattern: ^[a-zA-Z0-9._/\\-:]+$"));
        }
        if v.starts_with("arn:") {
            let p: Vec<&str> = v.splitn(6, ':').collect();
            if let ["arn", _, "cloudtrail", region, acct, res] = p.as_slice() {
                if let Some(id) = res.strip_prefix("channel/") {
                    if acct.len() == 12
                        && acct.bytes().all(|c| c.is_ascii_digit())
                        && !id.is_empty()
                        && !id.contains('/')
                    {
                        return Ok(ChannelRef {
                            account: Some(acct.to_string()),
                            region: Some(region.to_string()),
                            id: id.to_string(),
                        });
                    }
                }
            }
            return Err(arn_invalid());
        }
        if v.contains('/') || v.contains(':') {
            return Err(arn_invalid());
        }
        Ok(ChannelRef { account: None, region: None, id: v.to_string() })
    }

    /// The account owning it (the caller's when named by ID).
    pub(crate) fn account<'a>(&'a self, ctx: &'a RequestContext) -> &'a str {
        self.account.as_deref().unwrap_or(&ctx.caller.account_id)
    }

    pub(crate) fn arn(&self, ctx: &RequestContext) -> String {
        channel_arn(self.region.as_deref().unwrap_or(&ctx.region), self.account(ctx), &self.id)
    }

    /// The channel, if it exists in its account and the caller's Region.
    pub(crate) fn find(&self, api: &Api, ctx: &RequestContext) -> Result<Option<ChannelDoc>, AwsError> {
        if self.region.as_deref().is_some_and(|r| r != ctx.region) {
            return Ok(None);
        }
        Ok(api
            .store()
            .get_json::<ChannelDoc>(CHANNELS_TABLE, &format!("{}/{}", self.account(ctx), self.id))
            .map_err(store_err)?
            .filter(|c| c.region == ctx.region))
    }

    /// The caller's own channel, or ChannelNotFoundException.
    fn load(&self, api: &Api, ctx: &RequestContext) -> Result<ChannelDoc, AwsError> {
        if self.account(ctx) != ctx.caller.account_id {
            return Err(not_found(&self.arn(ctx)));
        }
        self.find(api, ctx)?.ok_or_else(|| not_found(&self.arn(ctx)))
    }
}

impl ChannelRef {
    /// For tag operations: the caller's channel, a missing one being a missing resource.
    pub(crate) fn load_tagged(&self, api: &Api, ctx: &RequestContext) -> Result<ChannelDoc, AwsError> {
        self.load(api, ctx).map_err(|e| {
            if e.code == "ChannelNotFoundException" {
                e400("ResourceNotFoundException", format!("Resource not found: {}", self.arn(ctx)))
            } else {
                e
            }
        })
    }
}

/// Change a channel in one transaction (re-read inside it).
pub(crate) fn update_channel(
    api: &Api,
    key: &str,
    f: impl FnOnce(&mut ChannelDoc) -> Result<(), AwsError>,
) -> Result<ChannelDoc, AwsError> {
    atomically(api.store(), |tx| -> Result<ChannelDoc, AwsError> {
        let mut c: ChannelDoc = tx
            .get_json(CHANNELS_TABLE, key)
            .map_err(store_err)?
            .ok_or_else(|| e400("ResourceNotFoundException", "Resource not found."))?;
        f(&mut c)?;
        tx.put_json(CHANNELS_TABLE, key, &c).map_err(store_err)?;
        Ok(c)
    })
}

fn arn_invalid() -> AwsError {
    e400(
        "ChannelARNInvalidException",
        "The specified channel ARN is not valid or does not map to a channel in your account.",
    )
}

fn not_found(arn: &str) -> AwsError {
    e400("ChannelNotFoundException", format!("Channel {arn} not found."))
}

pub(crate) const OPS: &[Entry<Api>] = &[
    op::<Api, CreateChannel>(),
    op::<Api, GetChannel>(),
    op::<Api, ListChannels>(),
    op::<Api, UpdateChannel>(),
    op::<Api, DeleteChannel>(),
];

struct CreateChannel {
    id: String,
    name: String,
    source: String,
    destinations: Vec<(String, String)>,
    tags: Vec<(String, String)>,
}

impl Operation<Api> for CreateChannel {
    const NAME: &'static str = "CreateChannel";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let name = channel_name(required(body, "Name")?)?;
        let source = required(body, "Source")?;
        if source.is_empty() || source.chars().count() > 256 {
            return Err(validation(source, "source", "Member must have length between 1 and 256"));
        }
        let destinations = match destinations(body)? {
            Some(d) => d,
            None => {
                required(body, "Destinations")?;
                return Err(validation("…", "destinations", "Member must not be null"));
            }
        };
        // CreateChannel names the list `Tags` (TagsList elsewhere); the same rules apply.
        let tags = tags_of(&json!({ "TagsList": body.get("Tags").cloned().unwrap_or(Value::Null) }))?;
        if tags.len() > MAX_CHANNEL_TAGS {
            return Err(e400(
                "TagsLimitExceededException",
                format!("The number of tags on a channel cannot exceed {MAX_CHANNEL_TAGS}."),
            ));
        }
        Ok(CreateChannel {
            id: uuid(),
            name,
            source: source.to_string(),
            destinations,
            tags: tags.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
        })
    }

    fn authorize(&mut self, _: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(AuthzCheck::new(
            format!("cloudtrail:{}", Self::NAME),
            channel_arn(&ctx.region, &ctx.caller.account_id, &self.id),
        ))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let destinations = check_destinations(api, ctx, &self.destinations)?;
        let c = ChannelDoc {
            id: self.id,
            account: ctx.caller.account_id.clone(),
            region: ctx.region.clone(),
            name: self.name,
            source: self.source,
            destinations,
            tags: self.tags,
            created: ctx.time.unix_timestamp(),
            ingestion: Ingestion::default(),
        };
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            let mine: Vec<(String, ChannelDoc)> =
                tx.scan_json(CHANNELS_TABLE, &format!("{}/", c.account)).map_err(store_err)?;
            let here = mine.iter().map(|(_, x)| x).filter(|x| x.region == c.region);
            for x in here {
                if x.name == c.name {
                    return Err(e400("ChannelAlreadyExistsException", format!("Channel {} already exists.", c.name)));
                }
                // One channel per partner source (a custom source may feed several).
                if c.source != "Custom" && x.source == c.source {
                    return Err(e400(
                        "ChannelAlreadyExistsException",
                        format!("A channel for source {} already exists.", c.source),
                    ));
                }
            }
            tx.put_json(CHANNELS_TABLE, &c.key(), &c).map_err(store_err)
        })?;
        let mut out = channel_json(&c);
        if let Value::Object(m) = &mut out {
            m.insert(
                "Tags".into(),
                json!(c.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()),
            );
        }
        Ok(Output::Json(out))
    }
}

struct GetChannel(ChannelRef);

impl Operation<Api> for GetChannel {
    const NAME: &'static str = "GetChannel";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        ChannelRef::parse(required(input.json(), "Channel")?, "channel").map(GetChannel)
    }

    fn authorize(&mut self, _: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(AuthzCheck::new(format!("cloudtrail:{}", Self::NAME), self.0.arn(ctx)))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let c = self.0.load(api, ctx)?;
        let mut out = channel_json(&c);
        let i = &c.ingestion;
        let mut status = serde_json::Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                status.insert(k.into(), v);
            }
        };
        put("LatestIngestionSuccessTime", i.success_time.map(|t| json!(t)));
        put("LatestIngestionSuccessEventID", i.success_event.as_ref().map(|e| json!(e)));
        put("LatestIngestionErrorCode", i.error_code.as_ref().map(|e| json!(e)));
        put("LatestIngestionAttemptTime", i.attempt_time.map(|t| json!(t)));
        put("LatestIngestionAttemptEventID", i.attempt_event.as_ref().map(|e| json!(e)));
        if let Value::Object(m) = &mut out {
            m.insert("IngestionStatus".into(), Value::Object(status));
        }
        Ok(Output::Json(out))
    }
}

struct ListChannels {
    max: usize,
    from: usize,
}

fn page_token(n: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("channels:{n}"))
}

fn bad_token() -> AwsError {
    e400(
        "InvalidNextTokenException",
        "A token that is not valid, or a token that was previously used in a request with different parameters.",
    )
}

impl Operation<Api> for ListChannels {
    const NAME: &'static str = "ListChannels";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let max = match body.get("MaxResults").filter(|v| !v.is_null()) {
            None => 1000,
            Some(v) => {
                let n = v.as_i64().ok_or_else(|| e400("SerializationException", "MaxResults must be an integer"))?;
                if !(1..=1000).contains(&n) {
                    return Err(validation(&n.to_string(), "maxResults", "Member must have value between 1 and 1000"));
                }
                n as usize
            }
        };
        let from = match body.get("NextToken").filter(|v| !v.is_null()) {
            None => 0,
            Some(v) => {
                use base64::Engine as _;
                let t = v.as_str().ok_or_else(|| e400("SerializationException", "NextToken must be a string"))?;
                if !(4..=1000).contains(&t.chars().count()) {
                    return Err(validation(t, "nextToken", "Member must have length between 4 and 1000"));
                }
                let raw = base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| bad_token())?;
                let s = String::from_utf8(raw).map_err(|_| bad_token())?;
                s.strip_prefix("channels:").and_then(|n| n.parse().ok()).ok_or_else(bad_token)?
            }
        };
        Ok(ListChannels { max, from })
    }

    fn authorize(&mut self, _: &Api, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(AuthzCheck::new(format!("cloudtrail:{}", Self::NAME), "*"))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let mut all: Vec<ChannelDoc> = api
            .store()
            .scan_json::<ChannelDoc>(CHANNELS_TABLE, &format!("{}/", ctx.caller.account_id))
            .map_err(store_err)?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| c.region == ctx.region)
            .collect();
        all.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        if self.from > all.len() {
            return Err(bad_token());
        }
        let page: Vec<Value> =
            all.iter().skip(self.from).take(self.max).map(|c| json!({"ChannelArn": c.arn(), "Name": c.name})).collect();
        let mut out = json!({ "Channels": page });
        if self.from + self.max < all.len() {
            if let Value::Object(m) = &mut out {
                m.insert("NextToken".into(), json!(page_token(self.from + self.max)));
            }
        }
        Ok(Output::Json(out))
    }
}

struct UpdateChannel {
    channel: ChannelRef,
    name: Option<String>,
    destinations: Option<Vec<(String, String)>>,
}

impl Operation<Api> for UpdateChannel {
    const NAME: &'static str = "UpdateChannel";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let channel = ChannelRef::parse(required(body, "Channel")?, "channel")?;
        let name = match body.get("Name").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => {
                Some(channel_name(v.as_str().ok_or_else(|| e400("SerializationException", "Name must be a string"))?)?)
            }
        };
        Ok(UpdateChannel { channel, name, destinations: destinations(body)? })
    }

    fn authorize(&mut self, _: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(AuthzCheck::new(format!("cloudtrail:{}", Self::NAME), self.channel.arn(ctx)))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let c = self.channel.load(api, ctx)?;
        let destinations = self.destinations.map(|d| check_destinations(api, ctx, &d)).transpose()?;
        let key = c.key();
        let c = atomically(api.store(), |tx| -> Result<ChannelDoc, AwsError> {
            let mut c: ChannelDoc =
                tx.get_json(CHANNELS_TABLE, &key).map_err(store_err)?.ok_or_else(|| not_found(&c.arn()))?;
            if let Some(n) = &self.name {
                let mine: Vec<(String, ChannelDoc)> =
                    tx.scan_json(CHANNELS_TABLE, &format!("{}/", c.account)).map_err(store_err)?;
                if mine.iter().any(|(_, x)| x.region == c.region && x.id != c.id && &x.name == n) {
                    return Err(e400("ChannelAlreadyExistsException", format!("Channel {n} already exists.")));
                }
                c.name = n.clone();
            }
            if let Some(d) = destinations {
                c.destinations = d;
            }
            tx.put_json(CHANNELS_TABLE, &key, &c).map_err(store_err)?;
            Ok(c)
        })?;
        Ok(Output::Json(channel_json(&c)))
    }
}

struct DeleteChannel(ChannelRef);

impl Operation<Api> for DeleteChannel {
    const NAME: &'static str = "DeleteChannel";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        ChannelRef::parse(required(input.json(), "Channel")?, "channel").map(DeleteChannel)
    }

    fn authorize(&mut self, _: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        one(AuthzCheck::new(format!("cloudtrail:{}", Self::NAME), self.0.arn(ctx)))
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        let c = self.0.load(api, ctx)?;
        atomically(api.store(), |tx| -> Result<(), AwsError> {
            tx.delete(CHANNELS_TABLE, &c.key()).map_err(store_err)?;
            // Its resource policy goes with it.
            drop_policy(tx, &c.arn()).map_err(store_err)
        })?;
        Ok(Output::Json(json!({})))
    }
}

/// Record a PutAuditEvents attempt on channel `key` (GetChannel's IngestionStatus): when it was,
/// the newest event it ingested, and the error code of an event it refused.
pub(crate) fn record_ingestion(
    tx: &mut dyn rampart_store::Transaction,
    key: &str,
    now: f64,
    last_ok: Option<&str>,
    error: Option<&str>,
) -> Result<(), rampart_store::StoreError> {
    let Some(mut c) = tx.get_json::<ChannelDoc>(CHANNELS_TABLE, key)? else { return Ok(()) };
    c.ingestion.attempt_time = Some(now);
    if let Some(id) = last_ok {
        c.ingestion.success_time = Some(now);
        c.ingestion.success_event = Some(id.to_string());
        c.ingestion.attempt_event = Some(id.to_string());
    }
    if let Some(e) = error {
        c.ingestion.error_code = Some(e.to_string());
    }
    tx.put_json(CHANNELS_TABLE, key, &c)
}
