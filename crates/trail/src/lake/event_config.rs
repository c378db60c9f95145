//! PutEventConfiguration / GetEventConfiguration: an event data store's `MaxEventSize` and
//! `ContextKeySelectors`, a trail's `AggregationConfigurations`.
//!
//! `MaxEventSize` is honoured by ingestion and imports ([`super::fit_event`]). Context key
//! selectors would add an `eventContext` (the request's evaluated IAM global condition keys,
//! the tags of the resources involved) to each event; Rampart's audit records carry neither, so a
//! non-empty list is refused rather than accepted and not applied. Aggregation configurations
//! aggregate data events, which Rampart does not record: they are kept on the trail and shown
//! back, and produce no events, as data-event selectors select nothing.

use rampart_service::{op, AuthzPlan, AwsError, Entry, Input, Operation, Output, RequestContext};
use rampart_store::{ReadExt, TransactionExt};
use serde_json::{json, Value};

use super::ops::{opt_str, update_store, validation, StoreRef};
use super::EventDataStoreDoc;
use crate::delivery::{TrailDoc, TRAILS_TABLE};
use crate::service::{atomically, e400, in_home_region, one, store_err, Api, Trail, TrailRef};

pub(crate) const OPS: &[Entry<Api>] = &[op::<Api, PutEventConfiguration>(), op::<Api, GetEventConfiguration>()];

const SIZES: [&str; 2] = ["Standard", "Large"];
const CONTEXT_TYPES: [&str; 2] = ["TagContext", "RequestContext"];
const TEMPLATES: [&str; 3] = ["API_ACTIVITY", "RESOURCE_ACCESS", "USER_ACTIONS"];

fn combination(msg: &str) -> AwsError {
    e400("InvalidParameterCombinationException", msg.to_string())
}

fn enum_error(value: &str, member: &str, allowed: &[&str]) -> AwsError {
    validation(value, member, &format!("Member must satisfy enum value set: [{}]", allowed.join(", ")))
}

fn null_error(member: &str) -> AwsError {
    e400(
        "InvalidParameterException",
        format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"),
    )
}

fn list<'a>(body: &'a Value, key: &str) -> Result<Option<&'a Vec<Value>>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(e400("SerializationException", format!("{key} must be a list"))),
    }
}

fn length_error(member: &str, constraint: &str) -> AwsError {
    e400(
        "InvalidParameterException",
        format!("1 validation error detected: Value at '{member}' failed to satisfy constraint: {constraint}"),
    )
}

/// `ContextKeySelectors` as the model constrains them (at most 2; `Type` an enum, once each;
/// `Equals` 1–50 keys of 1–128 characters), in a normalised form.
fn context_key_selectors(body: &Value) -> Result<Option<Vec<Value>>, AwsError> {
    let Some(items) = list(body, "ContextKeySelectors")? else { return Ok(None) };
    if items.len() > 2 {
        return Err(length_error("contextKeySelectors", "Member must have length less than or equal to 2"));
    }
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, sel) in items.iter().enumerate() {
        let n = i + 1;
        let ty = opt_str(sel, "Type")?.ok_or_else(|| null_error(&format!("contextKeySelectors.{n}.member.type")))?;
        if !CONTEXT_TYPES.contains(&ty) {
            return Err(enum_error(ty, &format!("contextKeySelectors.{n}.member.type"), &CONTEXT_TYPES));
        }
        let equals =
            list(sel, "Equals")?.ok_or_else(|| null_error(&format!("contextKeySelectors.{n}.member.equals")))?;
        if equals.is_empty() || equals.len() > 50 {
            return Err(length_error(
                &format!("contextKeySelectors.{n}.member.equals"),
                "Member must have length less than or equal to 50, Member must have length greater than or equal to 1",
            ));
        }
        let mut keys = Vec::new();
        for v in equals {
            let k = v.as_str().ok_or_else(|| e400("SerializationException", "Equals must be a list of strings"))?;
            if !(1..=128).contains(&k.chars().count()) {
                return Err(length_error(
                    &format!("contextKeySelectors.{n}.member.equals"),
                    "Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]",
                ));
            }
            keys.push(k.to_string());
        }
        if seen.contains(&ty) {
            return Err(e400(
                "InvalidParameterException",
                format!("Context key selector type {ty} is specified more than once."),
            ));
        }
        seen.push(ty);
        out.push(json!({"Type": ty, "Equals": keys}));
    }
    Ok(Some(out))
}

/// `AggregationConfigurations` (at most 1; `Templates` 1–50 of the enum; `EventCategory` `Data`).
fn aggregation_configurations(body: &Value) -> Result<Option<Vec<Value>>, AwsError> {
    let Some(items) = list(body, "AggregationConfigurations")? else { return Ok(None) };
    if items.len() > 1 {
        return Err(length_error("aggregationConfigurations", "Member must have length less than or equal to 1"));
    }
    let mut out = Vec::new();
    for (i, c) in items.iter().enumerate() {
        let n = i + 1;
        let templates = list(c, "Templates")?
            .ok_or_else(|| null_error(&format!("aggregationConfigurations.{n}.member.templates")))?;
        if templates.is_empty() || templates.len() > 50 {
            return Err(length_error(
                &format!("aggregationConfigurations.{n}.member.templates"),
                "Member must have length less than or equal to 50, Member must have length greater than or equal to 1",
            ));
        }
        let mut names: Vec<String> = Vec::new();
        for t in templates {
            let t = t.as_str().ok_or_else(|| e400("SerializationException", "Templates must be a list of strings"))?;
            if !TEMPLATES.contains(&t) {
                return Err(enum_error(t, &format!("aggregationConfigurations.{n}.member.templates"), &TEMPLATES));
            }
            if !names.iter().any(|x| x == t) {
                names.push(t.to_string());
            }
        }
        let category = opt_str(c, "EventCategory")?
            .ok_or_else(|| null_error(&format!("aggregationConfigurations.{n}.member.eventCategory")))?;
        if category != "Data" {
            return Err(enum_error(
                category,
                &format!("aggregationConfigurations.{n}.member.eventCategory"),
                &["Data"],
            ));
        }
        out.push(json!({"Templates": names, "EventCategory": category}));
    }
    Ok(Some(out))
}

/// What a call is about: an event data store or a trail (exactly one).
enum Target {
    Store(StoreRef),
    Trail(Trail),
}

impl Target {
    fn parse(body: &Value) -> Result<Self, AwsError> {
        match (opt_str(body, "TrailName")?, opt_str(body, "EventDataStore")?) {
            (Some(_), Some(_)) => Err(combination("You cannot specify both TrailName and EventDataStore.")),
            (None, None) => Err(combination("You must specify either TrailName or EventDataStore.")),
            (Some(t), None) => Ok(Target::Trail(Trail::new(TrailRef::parse(t)?))),
            (None, Some(s)) => Ok(Target::Store(StoreRef::parse(s)?)),
        }
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext, action: &str) -> Result<AuthzPlan, AwsError> {
        match self {
            Target::Store(s) => one(s.check(api, ctx, action)),
            Target::Trail(t) => one(t.check(api, ctx, action)?),
        }
    }
}

fn store_config(d: &EventDataStoreDoc) -> Value {
    json!({
        "EventDataStoreArn": d.arn(),
        "MaxEventSize": if d.large_events { "Large" } else { "Standard" },
        "ContextKeySelectors": [],
    })
}

fn trail_config(t: &TrailDoc) -> Value {
    json!({"TrailARN": t.arn(), "AggregationConfigurations": t.aggregation})
}

pub(crate) struct PutEventConfiguration {
    target: Target,
    /// `Some(true)` = `Large`.
    large: Option<bool>,
    context_key_selectors: Option<Vec<Value>>,
    aggregation: Option<Vec<Value>>,
}

impl Operation<Api> for PutEventConfiguration {
    const NAME: &'static str = "PutEventConfiguration";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        let body = input.json();
        let large = match opt_str(body, "MaxEventSize")? {
            None => None,
            Some("Standard") => Some(false),
            Some("Large") => Some(true),
            Some(v) => return Err(enum_error(v, "maxEventSize", &SIZES)),
        };
        let context_key_selectors = context_key_selectors(body)?;
        let aggregation = aggregation_configurations(body)?;
        let target = Target::parse(body)?;
        match &target {
            Target::Trail(_) => {
                if large.is_some() || context_key_selectors.is_some() {
                    return Err(combination(
                        "MaxEventSize and ContextKeySelectors apply to event data stores; they cannot be specified with TrailName.",
                    ));
                }
                if aggregation.is_none() {
                    return Err(combination("AggregationConfigurations is required with TrailName."));
                }
            }
            Target::Store(_) => {
                if aggregation.is_some() {
                    return Err(combination(
                        "AggregationConfigurations apply to trails; they cannot be specified with EventDataStore.",
                    ));
                }
                if large.is_none() && context_key_selectors.is_none() {
                    return Err(combination("Specify MaxEventSize or ContextKeySelectors for an event data store."));
                }
                if large == Some(false) && context_key_selectors.as_ref().is_some_and(|c| !c.is_empty()) {
                    return Err(combination("MaxEventSize must be Large when ContextKeySelectors are specified."));
                }
            }
        }
        Ok(PutEventConfiguration { target, large, context_key_selectors, aggregation })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.target.authorize(api, ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        match self.target {
            Target::Store(store) => {
                let d = store.load(api, ctx)?;
                if d.status == "PENDING_DELETION" {
                    return Err(e400("InactiveEventDataStoreException", "The event data store is inactive."));
                }
                if self.context_key_selectors.as_ref().is_some_and(|c| !c.is_empty()) {
                    return Err(e400(
                        "UnsupportedOperationException",
                        "ContextKeySelectors: Rampart's audit records do not carry the evaluated condition keys or the tags of the resources involved, so events cannot be enriched.",
                    ));
                }
                let large = self.large;
                let d = update_store(api, &d.key(), |d| {
                    if let Some(l) = large {
                        d.large_events = l;
                    }
                    Ok(())
                })?;
                Ok(Output::Json(store_config(&d)))
            }
            Target::Trail(trail) => {
                let (key, t) = trail.load(api, ctx)?;
                in_home_region(ctx, &t)?;
                let aggregation = self.aggregation.unwrap_or_default();
                let t = atomically(api.store(), |tx| -> Result<TrailDoc, AwsError> {
                    let mut current: TrailDoc = tx
                        .get_json(TRAILS_TABLE, &key)
                        .map_err(store_err)?
                        .ok_or_else(|| Api::not_found(ctx, &t.account, &t.name))?;
                    current.aggregation = aggregation;
                    tx.put_json(TRAILS_TABLE, &key, &current).map_err(store_err)?;
                    Ok(current)
                })?;
                Ok(Output::Json(trail_config(&t)))
            }
        }
    }
}

pub(crate) struct GetEventConfiguration {
    target: Target,
}

impl Operation<Api> for GetEventConfiguration {
    const NAME: &'static str = "GetEventConfiguration";
    type Error = AwsError;

    fn parse(input: &Input) -> Result<Self, AwsError> {
        Ok(GetEventConfiguration { target: Target::parse(input.json())? })
    }

    fn authorize(&mut self, api: &Api, ctx: &RequestContext) -> Result<AuthzPlan, AwsError> {
        self.target.authorize(api, ctx, Self::NAME)
    }

    fn run(self, api: &Api, ctx: &RequestContext) -> Result<Output, AwsError> {
        match self.target {
            Target::Store(store) => Ok(Output::Json(store_config(&store.load(api, ctx)?))),
            Target::Trail(trail) => {
                let (_, t) = trail.load_for(api, ctx, false)?;
                Ok(Output::Json(trail_config(&t)))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_aggregations_are_validated_as_modelled() {
        let ok = context_key_selectors(&json!({"ContextKeySelectors": [
            {"Type": "TagContext", "Equals": ["team"]}, {"Type": "RequestContext", "Equals": ["aws:SourceIp"]}]}))
        .unwrap()
        .unwrap();
        assert_eq!(ok.len(), 2);
        for (bad, code) in [
            (json!([{"Type": "Other", "Equals": ["a"]}]), "InvalidParameterException"),
            (json!([{"Type": "TagContext", "Equals": []}]), "InvalidParameterException"),
            (json!([{"Type": "TagContext"}]), "InvalidParameterException"),
            (
                json!([{"Type": "TagContext", "Equals": ["a"]}, {"Type": "TagContext", "Equals": ["b"]}]),
                "InvalidParameterException",
            ),
            (json!([{"Type": "TagContext", "Equals": ["x".repeat(129)]}]), "InvalidParameterException"),
            (json!([{}, {}, {}]), "InvalidParameterException"),
        ] {
            let e = context_key_selectors(&json!({"ContextKeySelectors": bad})).unwrap_err();
            assert_eq!(e.code, code, "{bad}");
        }
        let a = aggregation_configurations(&json!({"AggregationConfigurations": [
            {"Templates": ["API_ACTIVITY", "API_ACTIVITY", "USER_ACTIONS"], "EventCategory": "Data"}]}))
        .unwrap()
        .unwrap();
        assert_eq!(a[0]["Templates"], json!(["API_ACTIVITY", "USER_ACTIONS"]));
        for bad in [
            json!([{"Templates": ["NOPE"], "EventCategory": "Data"}]),
            json!([{"Templates": ["API_ACTIVITY"], "EventCategory": "Management"}]),
            json!([{"Templates": [], "EventCategory": "Data"}]),
            json!([{"Templates": ["API_ACTIVITY"], "EventCategory": "Data"}, {"Templates": ["API_ACTIVITY"], "EventCategory": "Data"}]),
        ] {
            assert!(aggregation_configurations(&json!({"AggregationConfigurations": bad})).is_err(), "{bad}");
        }
    }
}
