//! The CloudTrail Data service (restJson1, signing name `cloudtrail-data`): PutAuditEvents, which
//! ingests events from outside AWS through a channel into its event data stores.

#![deny(clippy::string_slice, clippy::indexing_slicing)]

use std::sync::Arc;

use base64::Engine as _;
use rampart_service::{
    op, AuthzCheck, AuthzPlan, AwsError, ContextValue, Entry, Input, Operation, Operations, Output, Protocol,
    RequestContext, Service,
};
use rampart_store::{ReadExt, TransactionExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::StoredEvent;
use crate::channels::{record_ingestion, ChannelDoc, ChannelRef};
use crate::lake::{lake_key, uuid, EventDataStoreDoc, EDS_TABLE, LAKE_TABLE};
use crate::service::{atomically, store_err, Api, CloudTrail};

/// Events per call (the model's list limit).
const MAX_EVENTS: usize = 100;
/// A call's events at most, bytes of `eventData` (AWS: 1 MB per PutAuditEvents request).
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// One event's `eventData` at most (CloudTrail Lake's event size limit, 256 KB).
const MAX_EVENT_BYTES: usize = 256 * 1024;
/// The next row number of each event data store's events from channels: key = store ID.
const EXT_SEQ_TABLE: &str = "trail_lake_ext_seq";
/// The `eventVersion` CloudTrail gives events from outside AWS.
const EXT_EVENT_VERSION: &str = "2.11";

/// The service as the pipeline sees it.
pub(crate) struct DataApi(pub(crate) Api);

impl CloudTrail {
    /// The CloudTrail Data service (PutAuditEvents) over this CloudTrail's channels and lake.
    pub fn data_service(self: &Arc<Self>) -> Arc<dyn Service> {
        Arc::new(DataApi(Api(self.clone())))
    }
}

static OPERATIONS: Operations<DataApi> = Operations::new(&[OPS]);
const OPS: &[Entry<DataApi>] = &[op::<DataApi, PutAuditEvents>()];

impl Service for DataApi {
    fn signing_name(&self) -> &'static str {
        "cloudtrail-data"
    }

    fn event_source(&self) -> &'static str {
        "cloudtrail-data.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::RestJson1
    }

    fn rest_operation(&self, method: &str, path: &str) -> Option<&'static str> {
        (method.eq_ignore_ascii_case("POST") && path == "/PutAuditEvents").then_some("PutAuditEvents")
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
            .unwrap_or_else(|| Err(AwsError::unknown_operation("cloudtrail-data", operation)))
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        OPERATIONS
            .plan(self, ctx, operation, input)
            .unwrap_or_else(|| Err(AwsError::unknown_operation("cloudtrail-data", operation)))
    }
}

fn validation(msg: String) -> AwsError {
    AwsError::new("ValidationException", msg, 400)
}

fn constraint(value: &str, member: &str, c: &str) -> AwsError {
    let shown: String = value.chars().take(64).collect();
    validation(format!("1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: {c}"))
}

fn null(member: &str) -> AwsError {
    validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// One event of the request.
#[derive(Debug)]
struct AuditEvent {
    id: String,
    data: String,
    checksum: Option<String>,
}

struct PutAuditEvents {
    channel: ChannelRef,
    external_id: Option<String>,
    events: Vec<AuditEvent>,
    /// The channel, read by the plan (its owner's).
    doc: Option<ChannelDoc>,
}

impl Operation<DataApi> for PutAuditEvents {
    const NAME: &'static str = "PutAuditEvents";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let arn = body.get("channelArn").and_then(Value::as_str).ok_or_else(|| null("channelArn"))?;
        if !arn.starts_with("arn:") {
            return Err(constraint(arn, "channelArn", "Member must satisfy regular expression pattern: ^arn:.*$"));
        }
        let channel = ChannelRef::parse(arn, "channelArn").map_err(|_| {
            AwsError::new("InvalidChannelARN", "The specified channel ARN is not a valid channel ARN.", 400)
        })?;
        let external_id = match body.get("externalId").filter(|v| !v.is_null()) {
            None => None,
            Some(v) => {
                let x = v
                    .as_str()
                    .ok_or_else(|| AwsError::new("SerializationException", "externalId must be a string", 400))?;
                if !(2..=1224).contains(&x.chars().count()) {
                    return Err(constraint(x, "externalId", "Member must have length between 2 and 1224"));
                }
                if !x.chars().all(|c| c.is_alphanumeric() || c == '_' || "+=,.@:/-".contains(c)) {
                    return Err(constraint(
                        x,
                        "externalId",
                        "Member must satisfy regular expression pattern: ^[\\w+=,.@:\\/-]*$",
                    ));
                }
                Some(x.to_string())
            }
        };
        let list = body.get("auditEvents").filter(|v| !v.is_null()).ok_or_else(|| null("auditEvents"))?;
        let list = list
            .as_array()
            .ok_or_else(|| AwsError::new("SerializationException", "auditEvents must be a list", 400))?;
        if list.is_empty() || list.len() > MAX_EVENTS {
            return Err(constraint("…", "auditEvents", "Member must have length between 1 and 100"));
        }
        let mut events = Vec::with_capacity(list.len());
        let mut total = 0usize;
        for (i, e) in list.iter().enumerate() {
            let n = i + 1;
            let id = e.get("id").and_then(Value::as_str).ok_or_else(|| null(&format!("auditEvents.{n}.member.id")))?;
            if !(1..=128).contains(&id.len()) {
                return Err(constraint(
                    id,
                    &format!("auditEvents.{n}.member.id"),
                    "Member must have length between 1 and 128",
                ));
            }
            if !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                return Err(constraint(
                    id,
                    &format!("auditEvents.{n}.member.id"),
                    "Member must satisfy regular expression pattern: ^[-_A-Za-z0-9]+$",
                ));
            }
            let data = e
                .get("eventData")
                .and_then(Value::as_str)
                .ok_or_else(|| null(&format!("auditEvents.{n}.member.eventData")))?;
            total += data.len();
            let checksum = e.get("eventDataChecksum").and_then(Value::as_str).map(str::to_string);
            events.push(AuditEvent { id: id.to_string(), data: data.to_string(), checksum });
        }
        if total > MAX_REQUEST_BYTES {
            return Err(validation(format!(
                "The auditEvents of one request may hold at most {MAX_REQUEST_BYTES} bytes of eventData."
            )));
        }
        let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(AwsError::new(
                "DuplicatedAuditEventId",
                "Two or more entries in the request have the same event ID.",
                400,
            ));
        }
        Ok(PutAuditEvents { channel, external_id, events, doc: None })
    }

    fn authorize(&mut self, api: &DataApi, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        let owner = self.channel.account(ctx).to_string();
        let arn = self.channel.arn(ctx);
        let mut check = AuthzCheck::new("cloudtrail-data:PutAuditEvents", arn);
        if let Some(x) = &self.external_id {
            check = check.with_context("cloudtrail:ExternalId", ContextValue::String(x.clone()));
        }
        let check = crate::policies::with_resource_policy(api.0.store(), check, &owner, &ctx.caller.account_id)
            .map_err(store_err)?;
        self.doc = self.channel.find(&api.0, ctx)?;
        Ok(AuthzPlan::Checks(vec![check]))
    }

    fn run(self, api: &DataApi, ctx: &RequestContext) -> Result<Output, AwsError> {
        let Some(channel) = self.doc else {
            return Err(AwsError::new("ChannelNotFound", "The channel could not be found.", 400));
        };
        let now = ctx.time;
        let now_f = now.unix_timestamp_nanos() as f64 / 1e9;
        let ingestion_time = iso(now);
        let mut successful = Vec::new();
        let mut failed = Vec::new();
        let mut accepted: Vec<(String, StoredEvent)> = Vec::new();
        for e in &self.events {
            match check_event(e, &channel.account) {
                Err((code, msg)) => failed.push(json!({"id": e.id, "errorCode": code, "errorMessage": msg})),
                Ok((data, t)) => {
                    let event_id = uuid();
                    let record = json!({
                        "eventVersion": EXT_EVENT_VERSION,
                        "eventCategory": "ActivityAuditLog",
                        "eventType": "ActivityLog",
                        "eventID": event_id,
                        "eventTime": data.get("eventTime").cloned().unwrap_or(Value::Null),
                        "awsRegion": ctx.region,
                        "recipientAccountId": channel.account,
                        "metadata": {"ingestionTime": ingestion_time, "channelARN": channel.arn()},
                        "eventData": data,
                    });
                    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    let stored = StoredEvent {
                        seq: 0,
                        id: event_id.clone(),
                        t,
                        name: s("eventName"),
                        source: s("eventSource"),
                        region: ctx.region.clone(),
                        ro: false,
                        user: data.pointer("/userIdentity/principalId").and_then(Value::as_str).map(str::to_string),
                        key: None,
                        res: Vec::new(),
                        event: record.to_string(),
                    };
                    successful.push(json!({"id": e.id, "eventID": event_id}));
                    accepted.push((event_id, stored));
                }
            }
        }
        let last_ok = accepted.last().map(|(id, _)| id.clone());
        let last_error = failed.last().and_then(|f| f.get("errorCode")).and_then(Value::as_str).map(str::to_string);
        let stores: Vec<String> = channel.stores().map(str::to_string).collect();
        atomically(api.0.store(), |tx| -> Result<(), AwsError> {
            for arn in &stores {
                let Some(d) = eds_of(tx, arn)? else { continue };
                // A stopped or deleted event data store takes nothing.
                if d.status != "ENABLED" {
                    continue;
                }
                let mut next: u64 = tx.get_json(EXT_SEQ_TABLE, &d.id).map_err(store_err)?.unwrap_or(0);
                for (_, e) in &accepted {
                    next += 1;
                    let mut row = e.clone();
                    row.seq = next;
                    tx.put(LAKE_TABLE, &lake_key(&d.id, next), &row.encode_row()).map_err(store_err)?;
                }
                tx.put_json(EXT_SEQ_TABLE, &d.id, &next).map_err(store_err)?;
            }
            record_ingestion(tx, &channel.key(), now_f, last_ok.as_deref(), last_error.as_deref()).map_err(store_err)
        })?;
        Ok(Output::Json(json!({"successful": successful, "failed": failed})))
    }
}

/// The event data store an ARN names, read in `tx`.
fn eds_of(tx: &mut dyn rampart_store::Transaction, arn: &str) -> Result<Option<EventDataStoreDoc>, AwsError> {
    let p: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "cloudtrail", _, account, res] = p.as_slice() else { return Ok(None) };
    let Some(id) = res.strip_prefix("eventdatastore/") else { return Ok(None) };
    tx.get_json(EDS_TABLE, &format!("{account}/{id}")).map_err(store_err)
}

/// ISO 8601 UTC, seconds.
fn iso(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parse `yyyy-MM-ddTHH:mm:ssZ` (fractional seconds allowed) into Unix seconds.
fn event_time(s: &str) -> Option<i64> {
    let fmt = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, &fmt).ok().map(|t| t.unix_timestamp()).or_else(|| {
        // AWS's documented form has no offset: `yyyy-MM-ddTHH:mm:ss`.
        time::OffsetDateTime::parse(&format!("{s}Z"), &fmt).ok().map(|t| t.unix_timestamp())
    })
}

/// Check one event as CloudTrail does: the checksum, then `eventData` against the documented
/// schema of events from outside AWS. `Ok` gives the parsed data and its event time.
fn check_event(e: &AuditEvent, owner: &str) -> Result<(Value, i64), (&'static str, String)> {
    if let Some(sum) = &e.checksum {
        let want = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(e.data.as_bytes()));
        if *sum != want {
            return Err(("InvalidChecksum", "The eventDataChecksum does not match the SHA-256 of eventData.".into()));
        }
    }
    if e.data.len() > MAX_EVENT_BYTES {
        return Err(("FieldTooLong", format!("eventData is longer than {MAX_EVENT_BYTES} bytes.")));
    }
    validate_event_data(&e.data, owner)
}

/// The documented `eventData` schema: required `version`, `userIdentity` (`type`,
/// `principalId`, optional `details`), `eventSource`, `eventName`, `eventTime`, `UID` and
/// `recipientAccountId` (the channel owner's account); optional `userAgent`,
/// `requestParameters`, `responseElements`, `errorCode`, `errorMessage`, `sourceIPAddress`,
/// `additionalEventData`.
pub(crate) fn validate_event_data(data: &str, owner: &str) -> Result<(Value, i64), (&'static str, String)> {
    let v: Value =
        serde_json::from_str(data).map_err(|_| ("InvalidData", "eventData is not valid JSON.".to_string()))?;
    let Some(obj) = v.as_object() else { return Err(("InvalidData", "eventData must be a JSON object.".into())) };
    let missing = |f: &str| ("FieldNotFound", format!("Required field {f} is missing."));
    let string = |f: &str, max: usize| -> Result<(), (&'static str, String)> {
        match obj.get(f) {
            None | Some(Value::Null) => Err(missing(f)),
            Some(Value::String(s)) if s.is_empty() => Err(missing(f)),
            Some(Value::String(s)) if s.chars().count() > max => {
                Err(("FieldTooLong", format!("Field {f} is longer than {max} characters.")))
            }
            Some(Value::String(_)) => Ok(()),
            Some(_) => Err(("InvalidData", format!("Field {f} must be a string."))),
        }
    };
    string("version", 256)?;
    let Some(ui) = obj.get("userIdentity").filter(|v| !v.is_null()) else { return Err(missing("userIdentity")) };
    let Some(ui) = ui.as_object() else { return Err(("InvalidData", "Field userIdentity must be an object.".into())) };
    for f in ["type", "principalId"] {
        match ui.get(f) {
            Some(Value::String(s)) if !s.is_empty() => {
                if s.chars().count() > 1024 {
                    return Err(("FieldTooLong", format!("Field userIdentity.{f} is longer than 1024 characters.")));
                }
            }
            Some(Value::String(_)) | None | Some(Value::Null) => return Err(missing(&format!("userIdentity.{f}"))),
            Some(_) => return Err(("InvalidData", format!("Field userIdentity.{f} must be a string."))),
        }
    }
    string("eventSource", 1024)?;
    string("eventName", 1024)?;
    string("eventTime", 256)?;
    string("UID", 1024)?;
    string("recipientAccountId", 12)?;
    let t = obj.get("eventTime").and_then(Value::as_str).and_then(event_time).ok_or_else(|| {
        ("InvalidData", "Field eventTime must be a timestamp in yyyy-MM-ddTHH:mm:ss form (UTC).".to_string())
    })?;
    if obj.get("recipientAccountId").and_then(Value::as_str) != Some(owner) {
        return Err(("InvalidRecipient", "recipientAccountId must be the account ID that owns the channel.".into()));
    }
    for f in ["userAgent", "errorCode", "errorMessage", "sourceIPAddress"] {
        match obj.get(f) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return Err(("InvalidData", format!("Field {f} must be a string."))),
        }
    }
    for f in ["requestParameters", "responseElements", "additionalEventData"] {
        match obj.get(f) {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(_) => return Err(("InvalidData", format!("Field {f} must be a JSON object."))),
        }
    }
    if ui.get("details").is_some_and(|d| !d.is_null() && !d.is_object()) {
        return Err(("InvalidData", "Field userIdentity.details must be a JSON object.".into()));
    }
    Ok((v, t))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const OWNER: &str = "111111111111";

    fn good() -> Value {
        json!({
            "version": "1.0",
            "userIdentity": {"type": "CustomUser", "principalId": "alice", "details": {"team": "x"}},
            "userAgent": "app/1.0",
            "eventSource": "my.app",
            "eventName": "Login",
            "eventTime": "2024-05-01T10:00:00Z",
            "UID": "u-1",
            "requestParameters": {"a": 1},
            "recipientAccountId": OWNER,
        })
    }

    fn code(v: &Value) -> &'static str {
        validate_event_data(&v.to_string(), OWNER).map(|_| "ok").unwrap_or_else(|(c, _)| c)
    }

    #[test]
    fn accepts_the_documented_schema() {
        let (v, t) = validate_event_data(&good().to_string(), OWNER).unwrap();
        assert_eq!(v["eventName"], "Login");
        assert_eq!(t, 1_714_557_600);
        let mut no_z = good();
        no_z["eventTime"] = json!("2024-05-01T10:00:00");
        assert_eq!(code(&no_z), "ok");
    }

    #[test]
    fn required_fields() {
        for f in ["version", "userIdentity", "eventSource", "eventName", "eventTime", "UID", "recipientAccountId"] {
            let mut v = good();
            v.as_object_mut().unwrap().remove(f);
            assert_eq!(code(&v), "FieldNotFound", "{f}");
        }
        let mut v = good();
        v["userIdentity"].as_object_mut().unwrap().remove("principalId");
        assert_eq!(code(&v), "FieldNotFound");
    }

    #[test]
    fn bad_values() {
        assert_eq!(validate_event_data("not json", OWNER).unwrap_err().0, "InvalidData");
        assert_eq!(validate_event_data("[1]", OWNER).unwrap_err().0, "InvalidData");
        let mut v = good();
        v["recipientAccountId"] = json!("222222222222");
        assert_eq!(code(&v), "InvalidRecipient");
        let mut v = good();
        v["eventTime"] = json!("yesterday");
        assert_eq!(code(&v), "InvalidData");
        let mut v = good();
        v["requestParameters"] = json!("x");
        assert_eq!(code(&v), "InvalidData");
        let mut v = good();
        v["eventName"] = json!("x".repeat(2000));
        assert_eq!(code(&v), "FieldTooLong");
    }

    #[test]
    fn checksum() {
        let data = good().to_string();
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data.as_bytes()));
        let e = AuditEvent { id: "1".into(), data: data.clone(), checksum: Some(sum) };
        assert!(check_event(&e, OWNER).is_ok());
        let e = AuditEvent { id: "1".into(), data, checksum: Some("AAAA".into()) };
        assert_eq!(check_event(&e, OWNER).unwrap_err().0, "InvalidChecksum");
    }
}
