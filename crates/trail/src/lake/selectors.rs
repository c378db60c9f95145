//! Advanced event selectors of event data stores: validated as CloudTrail validates them for
//! CloudTrail event data stores, and matched against stored audit records.
//!
//! Management-event selectors take `eventCategory` (required, `Equals` `Management`),
//! `eventSource`, `eventName`, `eventType`, `readOnly` (`Equals` `true` / `false`),
//! `sessionCredentialFromConsole` and `userIdentity.arn`. Data-event selectors (`eventCategory`
//! `Data`, `resources.type` required) are accepted as AWS accepts them; Rampart records no data
//! events, so they select nothing.

use rampart_service::AwsError;
use serde_json::{json, Value};

use crate::audit::StoredEvent;

/// The operators of a field selector.
pub const OPERATORS: &[&str] = &["Equals", "NotEquals", "StartsWith", "NotStartsWith", "EndsWith", "NotEndsWith"];
/// Selectors per event data store at most.
const MAX_SELECTORS: usize = 5;
/// Values across all conditions of all selectors at most.
const MAX_VALUES: usize = 500;

const MANAGEMENT_FIELDS: &[&str] = &[
    "eventCategory",
    "eventSource",
    "eventName",
    "eventType",
    "readOnly",
    "sessionCredentialFromConsole",
    "userIdentity.arn",
];
const DATA_FIELDS: &[&str] = &[
    "eventCategory",
    "eventSource",
    "eventName",
    "eventType",
    "readOnly",
    "resources.type",
    "resources.ARN",
    "sessionCredentialFromConsole",
    "userIdentity.arn",
];
/// The one field of selectors of events from outside AWS (integrations).
const ACTIVITY_FIELDS: &[&str] = &["eventCategory"];
/// Fields that take `Equals` only.
const EQUALS_ONLY: &[&str] = &["eventCategory", "readOnly", "resources.type", "sessionCredentialFromConsole"];

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new("InvalidEventSelectorsException", msg, 400)
}

/// The selectors of an event data store created without any: all management events.
pub fn default_selectors() -> Vec<Value> {
    vec![json!({"Name": "Default management events",
        "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]})]
}

/// Validate `AdvancedEventSelectors` of an event data store. `Ok(None)` when absent.
pub fn validate(v: Option<&Value>) -> Result<Option<Vec<Value>>, AwsError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(None) };
    let list = v.as_array().ok_or_else(|| invalid("AdvancedEventSelectors must be a list."))?;
    if list.is_empty() {
        return Err(invalid("You must specify at least one advanced event selector."));
    }
    if list.len() > MAX_SELECTORS {
        return Err(invalid(format!(
            "You can configure up to {MAX_SELECTORS} advanced event selectors for each event data store."
        )));
    }
    let mut values = 0usize;
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let name = s.get("Name").filter(|n| !n.is_null());
        if let Some(n) = name {
            let n = n.as_str().ok_or_else(|| invalid("Selector Name must be a string."))?;
            if n.chars().count() > 1000 {
                return Err(invalid("Selector Name must be at most 1000 characters."));
            }
        }
        let fields = s
            .get("FieldSelectors")
            .and_then(Value::as_array)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| invalid("Each advanced event selector must have at least one field selector."))?;
        let mut seen: Vec<&str> = Vec::new();
        let mut category: Option<String> = None;
        let mut clean_fields = Vec::with_capacity(fields.len());
        for f in fields {
            let field = f.get("Field").and_then(Value::as_str).unwrap_or_default();
            if field.is_empty() || field.len() > 1000 {
                return Err(invalid("Field selectors must name a Field."));
            }
            if seen.contains(&field) {
                return Err(invalid(format!("Field {field} is specified more than once in a selector.")));
            }
            seen.push(field);
            let mut clean = serde_json::Map::new();
            clean.insert("Field".into(), json!(field));
            let mut any = false;
            for op in OPERATORS {
                let Some(vals) = f.get(*op).filter(|v| !v.is_null()) else { continue };
                let vals = vals
                    .as_array()
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| invalid(format!("Operator {op} of field {field} must list at least one value.")))?;
                let mut strs = Vec::with_capacity(vals.len());
                for x in vals {
                    let x = x.as_str().filter(|x| !x.is_empty() && x.chars().count() <= 2048).ok_or_else(|| {
                        invalid(format!("Values of field {field} must be 1 to 2048 characters long."))
                    })?;
                    strs.push(x.to_string());
                }
                if *op != "Equals" && EQUALS_ONLY.contains(&field) {
                    return Err(invalid(format!("Field {field} only supports the Equals operator.")));
                }
                values += strs.len();
                if field == "eventCategory" {
                    category = strs.first().cloned();
                    if strs.len() != 1 {
                        return Err(invalid("Field eventCategory takes exactly one value."));
                    }
                }
                if field == "readOnly" && !strs.iter().all(|x| x == "true" || x == "false") {
                    return Err(invalid("Field readOnly only supports the values true and false."));
                }
                clean.insert((*op).into(), json!(strs));
                any = true;
            }
            if !any {
                return Err(invalid(format!("Field {field} must have at least one operator.")));
            }
            clean_fields.push(Value::Object(clean));
        }
        let allowed = match category.as_deref() {
            None => return Err(invalid("Each advanced event selector must include the eventCategory field.")),
            Some("Management") => MANAGEMENT_FIELDS,
            Some("Data") => {
                if !seen.contains(&"resources.type") {
                    return Err(invalid("Data event selectors must include the resources.type field."));
                }
                DATA_FIELDS
            }
            // Events from outside AWS, which channels deliver (PutAuditEvents).
            Some("ActivityAuditLog") => ACTIVITY_FIELDS,
            Some(c @ ("Insight" | "ConfigurationItem" | "NetworkActivity")) => {
                return Err(AwsError::new(
                    "UnsupportedOperationException",
                    format!(
                        "Event data stores of {c} events are not offered by Rampart (it records management events)."
                    ),
                    400,
                ))
            }
            Some(c) => return Err(invalid(format!("Invalid value for field eventCategory: {c}."))),
        };
        if let Some(bad) = seen.iter().find(|f| !allowed.contains(f)) {
            return Err(invalid(format!(
                "Field {bad} is not supported for {} events in event data stores.",
                category.as_deref().unwrap_or_default()
            )));
        }
        let mut clean = serde_json::Map::new();
        if let Some(n) = name {
            clean.insert("Name".into(), n.clone());
        }
        clean.insert("FieldSelectors".into(), Value::Array(clean_fields));
        out.push(Value::Object(clean));
    }
    if values > MAX_VALUES {
        return Err(invalid(format!(
            "Advanced event selectors can have at most {MAX_VALUES} values for all conditions."
        )));
    }
    // An event data store of events from outside AWS collects nothing else.
    let activity = out.iter().filter(|s| category_of(s) == Some("ActivityAuditLog")).count();
    if activity > 0 && activity != out.len() {
        return Err(invalid(
            "An event data store that collects ActivityAuditLog events cannot collect other event categories.",
        ));
    }
    Ok(Some(out))
}

/// The `eventCategory` a (validated) selector names.
fn category_of(s: &Value) -> Option<&str> {
    s.get("FieldSelectors")?
        .as_array()?
        .iter()
        .find(|f| f.get("Field").and_then(Value::as_str) == Some("eventCategory"))?
        .get("Equals")?
        .get(0)?
        .as_str()
}

/// Whether an event data store with these selectors collects events from outside AWS
/// (`ActivityAuditLog`: the destination of channels).
pub fn collects_activity(selectors: &[Value]) -> bool {
    !selectors.is_empty() && selectors.iter().all(|s| category_of(s) == Some("ActivityAuditLog"))
}

/// Whether any selector takes `e` (no selectors: nothing).
pub fn matches(selectors: &[Value], e: &StoredEvent) -> bool {
    let mut record: Option<Value> = None;
    selectors.iter().any(|s| {
        let Some(fields) = s.get("FieldSelectors").and_then(Value::as_array) else { return false };
        fields.iter().all(|f| {
            let field = f.get("Field").and_then(Value::as_str).unwrap_or_default();
            let actual: Option<String> = match field {
                "eventCategory" => Some("Management".into()),
                "readOnly" => Some(e.ro.to_string()),
                "eventSource" => Some(e.source.clone()),
                "eventName" => Some(e.name.clone()),
                "eventType" | "sessionCredentialFromConsole" | "userIdentity.arn" => {
                    let r = record.get_or_insert_with(|| e.record());
                    match field {
                        "eventType" => r.get("eventType").and_then(Value::as_str).map(str::to_string),
                        "sessionCredentialFromConsole" => Some(
                            r.get("sessionCredentialFromConsole")
                                .and_then(|v| {
                                    v.as_str().map(str::to_string).or_else(|| v.as_bool().map(|b| b.to_string()))
                                })
                                .unwrap_or_else(|| "false".into()),
                        ),
                        _ => r.pointer("/userIdentity/arn").and_then(Value::as_str).map(str::to_string),
                    }
                }
                // Data-event fields: management events have no data resources.
                _ => None,
            };
            condition_holds(f, actual.as_deref())
        })
    })
}

fn condition_holds(f: &Value, actual: Option<&str>) -> bool {
    let list = |k: &str| -> Vec<&str> {
        f.get(k).and_then(Value::as_array).map(|l| l.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    };
    let Some(a) = actual else {
        // A field the event does not have: only the negative operators hold.
        return ["Equals", "StartsWith", "EndsWith"].iter().all(|k| f.get(*k).is_none());
    };
    let (eq, ne, sw, nsw, ew, new) = (
        list("Equals"),
        list("NotEquals"),
        list("StartsWith"),
        list("NotStartsWith"),
        list("EndsWith"),
        list("NotEndsWith"),
    );
    (eq.is_empty() || eq.contains(&a))
        && !ne.contains(&a)
        && (sw.is_empty() || sw.iter().any(|p| a.starts_with(p)))
        && !nsw.iter().any(|p| a.starts_with(p))
        && (ew.is_empty() || ew.iter().any(|p| a.ends_with(p)))
        && !new.iter().any(|p| a.ends_with(p))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::record::test_record;

    fn event(name: &str) -> StoredEvent {
        let r = test_record("111111111111", name);
        r.event
    }

    #[test]
    fn validation_follows_the_management_event_rules() {
        let code = |v: Value| validate(Some(&v)).unwrap_err().code;
        assert!(validate(None).unwrap().is_none());
        assert_eq!(code(json!([])), "InvalidEventSelectorsException");
        assert_eq!(
            code(json!([{"FieldSelectors": [{"Field": "readOnly", "Equals": ["true"]}]}])),
            "InvalidEventSelectorsException",
            "eventCategory is required"
        );
        assert_eq!(
            code(json!([{"FieldSelectors": [{"Field": "eventCategory", "NotEquals": ["Management"]}]}])),
            "InvalidEventSelectorsException"
        );
        assert_eq!(
            code(
                json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["yes"]}]}])
            ),
            "InvalidEventSelectorsException"
        );
        assert_eq!(
            code(
                json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}])
            ),
            "InvalidEventSelectorsException"
        );
        assert_eq!(
            code(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}])),
            "InvalidEventSelectorsException",
            "resources.type is required"
        );
        assert_eq!(
            code(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ConfigurationItem"]}]}])),
            "UnsupportedOperationException"
        );
        assert_eq!(
            code(
                json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "eventName"}]}])
            ),
            "InvalidEventSelectorsException",
            "an operator is required"
        );
        let ok = validate(Some(&json!([{"Name": "writes", "FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]},
            {"Field": "eventName", "StartsWith": ["Create"], "NotEndsWith": ["Tags"]}]}])))
        .unwrap()
        .unwrap();
        assert_eq!(ok[0]["FieldSelectors"][2]["NotEndsWith"], json!(["Tags"]));
    }

    #[test]
    fn matching_applies_every_condition() {
        let sel = |v: Value| validate(Some(&v)).unwrap().unwrap();
        let e = event("CreateUser");
        assert!(matches(&default_selectors(), &e));
        assert!(!matches(&[], &e));
        let creates = sel(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "eventName", "StartsWith": ["Create"]}, {"Field": "eventSource", "Equals": ["iam.amazonaws.com"]}]}]));
        assert!(matches(&creates, &e));
        assert!(!matches(&creates, &event("DeleteUser")));
        let not_iam = sel(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "eventSource", "NotEquals": ["iam.amazonaws.com"]}]}]));
        assert!(!matches(&not_iam, &e));
        let root = sel(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "userIdentity.arn", "EndsWith": [":root"]}]}]));
        assert!(matches(&root, &e));
        let data = sel(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}]));
        assert!(!matches(&data, &e), "no data events");
        let reads = sel(json!([{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "readOnly", "Equals": ["true"]}]}]));
        assert!(!matches(&reads, &e));
    }
}
