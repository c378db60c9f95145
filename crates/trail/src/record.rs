//! Building one CloudTrail record (eventVersion 1.09) from what the pipeline knows about a call.

use std::net::IpAddr;

use rampart_service::{AwsError, Caller, CallerKind, Input, Output};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::redact::{redact, Part};

/// The record format version written by Rampart.
pub const EVENT_VERSION: &str = "1.09";

/// Who made the call, as far as authentication got.
#[derive(Clone, Copy, Debug)]
pub enum Identity<'a> {
    /// Authenticated (or identified by a known access key whose signature then failed).
    Caller(&'a Caller),
    /// An access key Rampart does not know (or no usable credentials at all).
    Unknown { access_key_id: Option<&'a str> },
}

/// Everything the pipeline knows about one call.
#[derive(Clone, Copy, Debug)]
pub struct CallFacts<'a> {
    pub event_time: OffsetDateTime,
    /// `iam.amazonaws.com`, …
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub region: &'a str,
    pub source_ip: IpAddr,
    pub user_agent: &'a str,
    pub identity: Identity<'a>,
    /// The account whose trail receives the record.
    pub recipient_account_id: &'a str,
    /// The decoded input, when decoding got that far.
    pub input: Option<&'a Input>,
    pub output: Option<&'a Output>,
    pub error: Option<&'a AwsError>,
    pub request_id: &'a str,
    /// TLS facts, when the call came over TLS.
    pub tls: Option<TlsFacts<'a>>,
}

/// `tlsDetails` of a record.
#[derive(Clone, Copy, Debug)]
pub struct TlsFacts<'a> {
    pub tls_version: Option<&'a str>,
    pub cipher_suite: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// A finished record plus the fields LookupEvents filters on.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub event: Value,
    pub event_id: String,
    pub event_time: OffsetDateTime,
    pub recipient_account_id: String,
    pub resources: Vec<(String, String)>,
}

/// ISO 8601 in UTC to the second, as CloudTrail writes times: `2024-05-01T12:00:00Z`.
pub fn iso_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// A random UUID (v4 form).
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Read-only operations (`readOnly: true`; their `responseElements` are `null`, as in AWS).
pub fn is_read_only(event_name: &str) -> bool {
    const PREFIXES: &[&str] =
        &["Get", "List", "Describe", "Lookup", "Simulate", "BatchGet", "Search", "Validate", "Verify"];
    const EXACT: &[&str] = &["Decrypt", "Encrypt", "ReEncrypt", "Sign", "GenerateRandom", "GenerateMac"];
    PREFIXES.iter().any(|p| event_name.starts_with(p) && event_name[p.len()..].starts_with(char::is_uppercase))
        || EXACT.contains(&event_name)
        || (event_name.starts_with("GenerateDataKey"))
}

/// Build the record for a call.
pub fn build(f: &CallFacts<'_>) -> Record {
    let event_id = new_uuid();
    let read_only = is_read_only(f.event_name);
    let request_parameters = match f.input {
        Some(input) if f.error.is_none_or(|e| !is_auth_failure(e)) => {
            let mut v = input_json(input);
            redact(f.event_source, f.event_name, Part::Request, &mut v);
            match &v {
                Value::Object(m) if m.is_empty() => Value::Null,
                _ => v,
            }
        }
        _ => Value::Null,
    };
    let response_elements = match (f.output, read_only) {
        (Some(out), false) => {
            let mut v = output_json(out);
            redact(f.event_source, f.event_name, Part::Response, &mut v);
            match &v {
                Value::Object(m) if m.is_empty() => Value::Null,
                _ => v,
            }
        }
        _ => Value::Null,
    };
    let resources = resources_of(&request_parameters, f.event_source);
    let mut e = Map::with_capacity(24);
    e.insert("eventVersion".into(), json!(EVENT_VERSION));
    e.insert("userIdentity".into(), user_identity(&f.identity, f.recipient_account_id));
    e.insert("eventTime".into(), json!(iso_time(f.event_time)));
    e.insert("eventSource".into(), json!(f.event_source));
    e.insert("eventName".into(), json!(f.event_name));
    e.insert("awsRegion".into(), json!(f.region));
    e.insert("sourceIPAddress".into(), json!(f.source_ip.to_string()));
    e.insert("userAgent".into(), json!(f.user_agent));
    if let Some(err) = f.error {
        e.insert("errorCode".into(), json!(err.code));
        e.insert("errorMessage".into(), json!(err.message));
    }
    e.insert("requestParameters".into(), request_parameters);
    e.insert("responseElements".into(), response_elements);
    e.insert("requestID".into(), json!(f.request_id));
    e.insert("eventID".into(), json!(event_id));
    e.insert("readOnly".into(), json!(read_only));
    e.insert("eventType".into(), json!("AwsApiCall"));
    e.insert("managementEvent".into(), json!(true));
    e.insert("recipientAccountId".into(), json!(f.recipient_account_id));
    e.insert("eventCategory".into(), json!("Management"));
    if let Some(tls) = f.tls {
        let mut t = Map::new();
        for (k, v) in
            [("tlsVersion", tls.tls_version), ("cipherSuite", tls.cipher_suite), ("clientProvidedHostHeader", tls.host)]
        {
            if let Some(v) = v {
                t.insert(k.into(), json!(v));
            }
        }
        e.insert("tlsDetails".into(), Value::Object(t));
    }
    Record {
        event: Value::Object(e),
        event_id,
        event_time: f.event_time,
        recipient_account_id: f.recipient_account_id.to_string(),
        resources,
    }
}

/// Authentication failures record no request parameters (the caller is not known to be who they claim).
fn is_auth_failure(e: &AwsError) -> bool {
    matches!(
        e.code.as_ref(),
        "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "IncompleteSignatureException"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
    )
}

fn user_identity(identity: &Identity<'_>, recipient: &str) -> Value {
    let c = match identity {
        Identity::Caller(c) => c,
        Identity::Unknown { access_key_id } => {
            let mut m = Map::new();
            m.insert("type".into(), json!("Unknown"));
            m.insert("accountId".into(), json!(recipient));
            if let Some(k) = access_key_id {
                m.insert("accessKeyId".into(), json!(k));
            }
            return Value::Object(m);
        }
    };
    let mut m = Map::new();
    let kind = match &c.kind {
        CallerKind::Root => "Root",
        CallerKind::IamUser { .. } => "IAMUser",
        CallerKind::AssumedRole { .. } => "AssumedRole",
        CallerKind::FederatedUser { .. } => "FederatedUser",
    };
    m.insert("type".into(), json!(kind));
    m.insert("principalId".into(), json!(c.principal_id));
    m.insert("arn".into(), json!(c.arn));
    m.insert("accountId".into(), json!(c.account_id));
    m.insert("accessKeyId".into(), json!(c.access_key_id));
    if let CallerKind::IamUser { user_name, .. } = &c.kind {
        m.insert("userName".into(), json!(user_name));
    }
    if let Some(s) = &c.session {
        let mut attributes = Map::new();
        if let Some(t) = s.token_issue_time {
            attributes.insert("creationDate".into(), json!(iso_time(t)));
        }
        attributes.insert("mfaAuthenticated".into(), json!(if s.mfa_authenticated { "true" } else { "false" }));
        let mut ctx = Map::new();
        match &c.kind {
            CallerKind::AssumedRole { role_name, role_arn, role_id, .. } => {
                ctx.insert(
                    "sessionIssuer".into(),
                    json!({"type": "Role", "principalId": role_id, "arn": role_arn,
                           "accountId": c.account_id, "userName": role_name}),
                );
            }
            CallerKind::FederatedUser { .. } => {
                ctx.insert("sessionIssuer".into(), json!({}));
            }
            _ => {}
        }
        ctx.insert("attributes".into(), Value::Object(attributes));
        if let Some(si) = &s.source_identity {
            ctx.insert("sourceIdentity".into(), json!(si));
        }
        m.insert("sessionContext".into(), Value::Object(ctx));
    }
    Value::Object(m)
}

/// `requestParameters` from the decoded input: awsQuery params as nested lowerCamelCase JSON,
/// JSON bodies with lowerCamelCase member names (CloudTrail's convention).
pub fn input_json(input: &Input) -> Value {
    match input {
        Input::Json(v) => camel_keys(v),
        Input::Query(q) => {
            let mut root = Value::Object(Map::new());
            for (k, v) in q.iter() {
                if k == "Action" || k == "Version" {
                    continue;
                }
                insert_path(&mut root, k, v);
            }
            root
        }
    }
}

/// `UserName` → `userName`; `QRCodePNG` → `qRCodePNG` (CloudTrail lowers only the first letter).
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn camel_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (lower_first(k), camel_keys(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(camel_keys).collect()),
        other => other.clone(),
    }
}

/// Insert `Tags.member.1.Key=v` as `{"tags": [{"key": v}]}`; `Attributes.entry.1.key` likewise.
fn insert_path(root: &mut Value, key: &str, value: &str) {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    let mut i = 0;
    while i < parts.len() {
        let last = i + 1 == parts.len();
        let is_list = matches!(parts.get(i + 1), Some(&"member") | Some(&"entry"))
            && parts.get(i + 2).is_some_and(|n| n.parse::<usize>().is_ok());
        let name = lower_first(parts[i]);
        let Value::Object(map) = cur else { return };
        if is_list {
            let idx = parts[i + 2].parse::<usize>().unwrap_or(1).max(1) - 1;
            let list = map.entry(name).or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = list else { return };
            if idx > 1000 {
                return;
            }
            while items.len() <= idx {
                items.push(Value::Null);
            }
            let rest_last = i + 3 == parts.len();
            if rest_last {
                items[idx] = Value::String(value.to_string());
                return;
            }
            if !items[idx].is_object() {
                items[idx] = Value::Object(Map::new());
            }
            cur = &mut items[idx];
            i += 3;
        } else if last {
            map.insert(name, Value::String(value.to_string()));
            return;
        } else {
            let next = map.entry(name).or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            cur = next;
            i += 1;
        }
    }
}

/// `responseElements` from an output: JSON as is (member names lowerCamelCase), awsQuery XML
/// converted (elements → members, `<member>` lists → arrays, text → strings).
pub fn output_json(output: &Output) -> Value {
    match output {
        Output::Json(v) => camel_keys(v),
        Output::Xml(None) => Value::Null,
        Output::Xml(Some(xml)) => xml_to_json(xml).unwrap_or(Value::Null),
    }
}

enum Node {
    Elem(String, Vec<Node>),
    Text(String),
}

fn xml_to_json(xml: &str) -> Option<Value> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<(String, Vec<Node>)> = vec![(String::new(), Vec::new())];
    loop {
        match reader.read_event().ok()? {
            Event::Start(s) => stack.push((String::from_utf8_lossy(s.local_name().as_ref()).into_owned(), Vec::new())),
            Event::Empty(s) => {
                let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                stack.last_mut()?.1.push(Node::Elem(name, Vec::new()));
            }
            Event::End(_) => {
                let (name, children) = stack.pop()?;
                stack.last_mut()?.1.push(Node::Elem(name, children));
            }
            Event::Text(t) => {
                let s = t.xml_content().ok()?.into_owned();
                if !s.trim().is_empty() {
                    stack.last_mut()?.1.push(Node::Text(s));
                }
            }
            Event::GeneralRef(r) => {
                let s = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.decode().ok()?.as_ref() {
                        "amp" => "&".to_string(),
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "quot" => "\"".to_string(),
                        "apos" => "'".to_string(),
                        _ => String::new(),
                    },
                };
                stack.last_mut()?.1.push(Node::Text(s));
            }
            Event::CData(c) => stack.last_mut()?.1.push(Node::Text(String::from_utf8_lossy(&c).into_owned())),
            Event::Eof => break,
            _ => {}
        }
    }
    let (_, children) = stack.pop()?;
    Some(nodes_to_json(&children))
}

fn nodes_to_json(children: &[Node]) -> Value {
    let texts: String = children
        .iter()
        .filter_map(|n| match n {
            Node::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let elems: Vec<(&String, &Vec<Node>)> = children
        .iter()
        .filter_map(|n| match n {
            Node::Elem(name, c) => Some((name, c)),
            _ => None,
        })
        .collect();
    if elems.is_empty() {
        return if texts.is_empty() { Value::Null } else { Value::String(texts) };
    }
    if elems.iter().all(|(n, _)| n.as_str() == "member") {
        return Value::Array(elems.iter().map(|(_, c)| nodes_to_json(c)).collect());
    }
    let mut m = Map::new();
    for (name, c) in elems {
        m.insert(lower_first(name), nodes_to_json(c));
    }
    Value::Object(m)
}

/// Lookup `Resources` from the request parameters (by well-known member names).
fn resources_of(params: &Value, event_source: &str) -> Vec<(String, String)> {
    const MEMBERS: &[(&str, &str, &str)] = &[
        ("iam.amazonaws.com", "userName", "AWS::IAM::User"),
        ("iam.amazonaws.com", "roleName", "AWS::IAM::Role"),
        ("iam.amazonaws.com", "groupName", "AWS::IAM::Group"),
        ("iam.amazonaws.com", "policyArn", "AWS::IAM::Policy"),
        ("iam.amazonaws.com", "accessKeyId", "AWS::IAM::AccessKey"),
        ("iam.amazonaws.com", "instanceProfileName", "AWS::IAM::InstanceProfile"),
        ("sts.amazonaws.com", "roleArn", "AWS::IAM::Role"),
        ("kms.amazonaws.com", "keyId", "AWS::KMS::Key"),
        ("kms.amazonaws.com", "aliasName", "AWS::KMS::Alias"),
        ("secretsmanager.amazonaws.com", "secretId", "AWS::SecretsManager::Secret"),
        ("secretsmanager.amazonaws.com", "name", "AWS::SecretsManager::Secret"),
        ("cloudtrail.amazonaws.com", "name", "AWS::CloudTrail::Trail"),
        ("cloudtrail.amazonaws.com", "trailName", "AWS::CloudTrail::Trail"),
    ];
    let Value::Object(m) = params else { return Vec::new() };
    MEMBERS
        .iter()
        .filter(|(src, _, _)| *src == event_source)
        .filter_map(|(_, member, ty)| m.get(*member).and_then(Value::as_str).map(|v| (ty.to_string(), v.to_string())))
        .collect()
}

/// A record of a root call by `account` named `name` (tests of the crates' storage and delivery).
#[cfg(test)]
pub(crate) fn test_record(account: &str, name: &str) -> Record {
    let caller = Caller::root(account, "AKIAROOT");
    build(&CallFacts {
        event_time: OffsetDateTime::now_utc(),
        event_source: "iam.amazonaws.com",
        event_name: name,
        region: "us-east-1",
        source_ip: "127.0.0.1".parse().unwrap(),
        user_agent: "test",
        identity: Identity::Caller(&caller),
        recipient_account_id: account,
        input: None,
        output: None,
        error: None,
        request_id: "r",
        tls: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_service::{QueryParams, SessionInfo};

    fn facts<'a>(identity: Identity<'a>, input: Option<&'a Input>, output: Option<&'a Output>) -> CallFacts<'a> {
        CallFacts {
            event_time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            event_source: "iam.amazonaws.com",
            event_name: "CreateAccessKey",
            region: "us-east-1",
            source_ip: "127.0.0.1".parse().unwrap(),
            user_agent: "aws-cli/2",
            identity,
            recipient_account_id: "123456789012",
            input,
            output,
            error: None,
            request_id: "req-1",
            tls: None,
        }
    }

    #[test]
    fn query_params_become_nested_camel_case() {
        let q = QueryParams::from_pairs([
            ("Action", "CreateUser"),
            ("Version", "2010-05-08"),
            ("UserName", "alice"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "red"),
            ("Tags.member.2.Key", "env"),
            ("PolicyArns.member.1", "arn:x"),
        ]);
        let v = input_json(&Input::Query(q));
        assert_eq!(
            v,
            json!({"userName": "alice", "tags": [{"key": "team", "value": "red"}, {"key": "env"}],
                   "policyArns": ["arn:x"]})
        );
    }

    #[test]
    fn xml_output_converts_and_secret_is_redacted() {
        let input = Input::Query(QueryParams::from_pairs([("Action", "CreateAccessKey"), ("UserName", "bob")]));
        let output = Output::Xml(Some(
            "<AccessKey><UserName>bob</UserName><AccessKeyId>AKIAX</AccessKeyId><Status>Active</Status>\
             <SecretAccessKey>topsecret</SecretAccessKey><CreateDate>2024-01-01T00:00:00Z</CreateDate></AccessKey>"
                .into(),
        ));
        let caller = Caller::root("123456789012", "AKIAROOT");
        let r = build(&facts(Identity::Caller(&caller), Some(&input), Some(&output)));
        let text = r.event.to_string();
        assert!(!text.contains("topsecret"), "{text}");
        assert_eq!(r.event["responseElements"]["accessKey"]["accessKeyId"], "AKIAX");
        assert_eq!(r.event["requestParameters"], json!({"userName": "bob"}));
        assert_eq!(r.event["userIdentity"]["type"], "Root");
        assert_eq!(r.event["userIdentity"]["principalId"], "123456789012");
        assert_eq!(r.event["eventTime"], "2023-11-14T22:13:20Z");
        assert_eq!(r.event["readOnly"], false);
        assert_eq!(r.event["eventVersion"], "1.09");
        assert_eq!(r.resources, vec![("AWS::IAM::User".to_string(), "bob".to_string())]);
    }

    #[test]
    fn xml_lists_and_entities() {
        let v = xml_to_json("<Users><member><UserName>a&amp;b</UserName></member><member><UserName>c</UserName></member></Users><IsTruncated>false</IsTruncated>").unwrap();
        assert_eq!(v, json!({"users": [{"userName": "a&b"}, {"userName": "c"}], "isTruncated": "false"}));
    }

    #[test]
    fn read_only_calls_have_null_response_elements() {
        let output = Output::Xml(Some("<User><UserName>bob</UserName></User>".into()));
        let caller = Caller::root("123456789012", "AKIAROOT");
        let mut f = facts(Identity::Caller(&caller), None, Some(&output));
        f.event_name = "GetUser";
        let r = build(&f);
        assert_eq!(r.event["readOnly"], true);
        assert_eq!(r.event["responseElements"], Value::Null);
        assert!(is_read_only("ListUsers") && is_read_only("GetCallerIdentity") && is_read_only("Decrypt"));
        assert!(!is_read_only("CreateUser") && !is_read_only("Getaway") && !is_read_only("DeleteUser"));
    }

    #[test]
    fn identities() {
        let user = Caller {
            account_id: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            principal_id: "AIDAEXAMPLE".into(),
            access_key_id: "AKIAUSER".into(),
            kind: CallerKind::IamUser { user_name: "alice".into(), user_id: "AIDAEXAMPLE".into() },
            session: None,
        };
        let r = build(&facts(Identity::Caller(&user), None, None));
        let ui = &r.event["userIdentity"];
        assert_eq!(ui["type"], "IAMUser");
        assert_eq!(ui["userName"], "alice");
        assert!(ui.get("sessionContext").is_none());

        let role = Caller {
            account_id: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/R/s".into(),
            principal_id: "AROAX:s".into(),
            access_key_id: "ASIAX".into(),
            kind: CallerKind::AssumedRole {
                role_name: "R".into(),
                role_arn: "arn:aws:iam::123456789012:role/R".into(),
                role_id: "AROAX".into(),
                session_name: "s".into(),
            },
            session: Some(SessionInfo {
                token_issue_time: OffsetDateTime::from_unix_timestamp(1_700_000_000).ok(),
                mfa_authenticated: true,
                ..Default::default()
            }),
        };
        let r = build(&facts(Identity::Caller(&role), None, None));
        let sc = &r.event["userIdentity"]["sessionContext"];
        assert_eq!(sc["attributes"]["mfaAuthenticated"], "true");
        assert_eq!(sc["attributes"]["creationDate"], "2023-11-14T22:13:20Z");
        assert_eq!(sc["sessionIssuer"]["type"], "Role");
        assert_eq!(sc["sessionIssuer"]["userName"], "R");

        let mut f = facts(Identity::Unknown { access_key_id: Some("AKIANOPE") }, None, None);
        let err = AwsError::new("InvalidClientTokenId", "The security token included in the request is invalid.", 403);
        f.error = Some(&err);
        let r = build(&f);
        assert_eq!(
            r.event["userIdentity"],
            json!({"type": "Unknown", "accountId": "123456789012", "accessKeyId": "AKIANOPE"})
        );
        assert_eq!(r.event["errorCode"], "InvalidClientTokenId");
    }
}
