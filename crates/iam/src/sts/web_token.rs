//! GetWebIdentityToken: a JWT naming the caller, signed by the account's outbound federation
//! issuer (crate::outbound), for external services that trust the issuer.
//!
//! Claims as AWS's "Understanding token claims" lists them: `iss`, `sub` (the caller's IAM ARN —
//! the role's ARN for a role session), `aud` (a string for one audience, a list for several),
//! `iat`, `exp`, `jti`, and under `https://sts.amazonaws.com/`: `aws_account`, `source_region`,
//! `org_id` and `ou_path` for an account in an organization, `principal_tags` (the user's or
//! role's tags, session tags winning), `request_tags` (the call's `Tags`).

use std::collections::BTreeMap;

use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzCheck, AuthzPlan, CallerKind, Entry, Input, Operation, Output, RequestContext};
use serde_json::{json, Map, Value};

use super::{calling_session, s, StsService};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{RoleRec, Tag, UserRec};
use crate::outbound::{self, ALGORITHMS, CLAIMS_NAMESPACE};
use crate::service::request_tags;
use crate::util::iso8601;
use crate::validate::{Args, Spec};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<StsService>] = &[op::<StsService, GetWebIdentityToken>()];

const AUDIENCE: Spec = Spec { min: 1, max: 1000, pattern: None };
const ALGORITHM: Spec = Spec { min: 5, max: 5, pattern: None };
/// The largest token payload Rampart signs (AWS does not publish its figure): a token is a
/// bearer credential sent in HTTP headers, and 16 KiB stays within common header limits.
pub const MAX_PAYLOAD: usize = 16 * 1024;

pub struct GetWebIdentityToken {
    audience: Vec<String>,
    duration: i64,
    algorithm: String,
    tags: Vec<Tag>,
}

impl Operation<StsService> for GetWebIdentityToken {
    const NAME: &'static str = "GetWebIdentityToken";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let audience: Vec<String> =
            a.list("Audience", &AUDIENCE, Some(10), true).into_iter().map(str::to_string).collect();
        if audience.is_empty() && q.contains("Audience") {
            a.error(
                "Value '[]' at 'audience' failed to satisfy constraint: Member must have length greater than or equal to 1"
                    .into(),
            );
        }
        let duration = a.int("DurationSeconds", 60, 3600).unwrap_or(300);
        let algorithm = a.req("SigningAlgorithm", &ALGORITHM).to_string();
        let tags = a.session_tags("Tags");
        a.finish()?;
        if !ALGORITHMS.contains(&algorithm.as_str()) {
            return Err(IamError::Aws(AwsError::validation(format!(
                "1 validation error detected: Value '{}' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RS256, ES384]",
                rampart_protocol::echo(&algorithm)
            ))));
        }
        for (i, t) in tags.iter().enumerate() {
            if tags.iter().take(i).any(|o| o.key.eq_ignore_ascii_case(&t.key)) {
                return Err(super::invalid_parameter(
                    "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
                ));
            }
        }
        Ok(GetWebIdentityToken { audience, duration, algorithm, tags })
    }

    fn authorize(&mut self, _: &StsService, _: &RequestContext) -> Result<AuthzPlan> {
        let mut c = AuthzCheck::new("sts:GetWebIdentityToken", "*");
        c.context.push(("sts:IdentityTokenAudience".into(), ContextValue::List(self.audience.clone())));
        c.context.push(("sts:DurationSeconds".into(), s(self.duration.to_string())));
        c.context.push(("sts:SigningAlgorithm".into(), s(self.algorithm.as_str())));
        Ok(AuthzPlan::Checks(vec![request_tags(c, &self.tags)]))
    }

    fn run(self, svc: &StsService, ctx: &RequestContext) -> Result<Output> {
        let core = &svc.core;
        let account = ctx.caller.account_id.as_str();
        let rec = outbound::get(&core.db, account)?.filter(|r| r.enabled).ok_or_else(|| {
            IamError::Aws(AwsError::new(
                "OutboundWebIdentityFederationDisabledException",
                "Outbound web identity federation is not enabled for this account.",
                403,
            ))
        })?;
        let now = ctx.time.unix_timestamp();
        let exp = now + self.duration;
        let session = calling_session(core, ctx)?;
        if session.as_ref().is_some_and(|p| exp > p.expires) {
            return Err(IamError::Aws(AwsError::new(
                "SessionDurationEscalationException",
                "The requested token duration would extend the session beyond its original expiration time.",
                403,
            )));
        }
        let (sub, mut principal_tags) = match &ctx.caller.kind {
            CallerKind::IamUser { user_name, .. } => {
                let tags = core.db.entity::<UserRec>(account, user_name)?.map(|u| u.tags).unwrap_or_default();
                (ctx.caller.arn.clone(), tags)
            }
            CallerKind::AssumedRole { role_name, role_arn, .. } => {
                let tags = core.db.entity::<RoleRec>(account, role_name)?.map(|r| r.tags).unwrap_or_default();
                (role_arn.clone(), tags)
            }
            CallerKind::Root | CallerKind::FederatedUser { .. } => (ctx.caller.arn.clone(), Vec::new()),
        };
        if let Some(p) = &session {
            super::merge_session_tags(&mut principal_tags, &p.tags);
        }
        let mut aws = Map::new();
        aws.insert("aws_account".into(), json!(account));
        aws.insert("source_region".into(), json!(ctx.region));
        if let Some(org) = crate::org::enforce::org_of(&core.db, account)? {
            if let Some(path) = org.org_path_of_account(account) {
                aws.insert("ou_path".into(), json!(path));
            }
            aws.insert("org_id".into(), json!(org.id));
        }
        if !principal_tags.is_empty() {
            aws.insert("principal_tags".into(), tag_map(&principal_tags));
        }
        if !self.tags.is_empty() {
            aws.insert("request_tags".into(), tag_map(&self.tags));
        }
        let aud = match self.audience.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        let claims = json!({
            "iss": rec.issuer(&core.public_url()),
            "aud": aud,
            "sub": sub,
            "iat": now,
            "exp": exp,
            "jti": uuid(),
            CLAIMS_NAMESPACE: Value::Object(aws),
        });
        let payload = serde_json::to_vec(&claims).map_err(|e| IamError::Internal(e.to_string()))?;
        if payload.len() > MAX_PAYLOAD {
            return Err(IamError::Aws(AwsError::new(
                "JWTPayloadSizeExceededException",
                "The requested token payload size exceeds the maximum allowed size. Reduce the number of request tags.",
                400,
            )));
        }
        let token = rec.sign(&core.sealer, account, &self.algorithm, &payload)?;
        let mut w = XmlWriter::new();
        w.elem("WebIdentityToken", &token);
        w.elem("Expiration", &iso8601(exp));
        Ok(Output::Xml(Some(w.finish())))
    }
}

fn tag_map(tags: &[Tag]) -> Value {
    let m: BTreeMap<&str, &str> = tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
    json!(m)
}

/// A random version-4 UUID.
fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b[..]);
    if let Some(x) = b.get_mut(6) {
        *x = (*x & 0x0f) | 0x40;
    }
    if let Some(x) = b.get_mut(8) {
        *x = (*x & 0x3f) | 0x80;
    }
    let h = crate::util::to_hex(&b);
    [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)]
        .iter()
        .filter_map(|(a, z)| h.get(*a..*z))
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_protocol::query::QueryParams;

    fn parse(pairs: &[(&str, &str)]) -> Result<GetWebIdentityToken> {
        let body: String = pairs.iter().map(|(k, v)| format!("{k}={v}&")).collect();
        GetWebIdentityToken::parse(&Input::Query(QueryParams::parse(body.as_bytes())))
    }

    fn message(r: Result<GetWebIdentityToken>) -> String {
        match r {
            Err(IamError::Aws(e)) => format!("{} {}", e.code, e.message),
            Err(e) => e.to_string(),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn input_limits() {
        let ok = parse(&[("Audience.member.1", "a"), ("SigningAlgorithm", "RS256")]).unwrap();
        assert_eq!((ok.duration, ok.audience.as_slice()), (300, ["a".to_string()].as_slice()));
        assert!(message(parse(&[("SigningAlgorithm", "RS256")])).contains("Value null at 'audience'"));
        assert!(message(parse(&[("Audience.member.1", "a"), ("SigningAlgorithm", "HS256")]))
            .contains("enum value set: [RS256, ES384]"));
        assert!(message(parse(&[("Audience.member.1", "a"), ("SigningAlgorithm", "RS2566")]))
            .contains("length less than or equal to 5"));
        let m =
            message(parse(&[("Audience.member.1", "a"), ("SigningAlgorithm", "ES384"), ("DurationSeconds", "3601")]));
        assert!(m.contains("less than or equal to 3600"), "{m}");
        let eleven: Vec<(String, String)> = (1..=11).map(|i| (format!("Audience.member.{i}"), "x".into())).collect();
        let mut pairs: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.push(("SigningAlgorithm", "ES384"));
        assert!(message(parse(&pairs)).contains("length less than or equal to 10"));
        let m = message(parse(&[
            ("Audience.member.1", "a"),
            ("SigningAlgorithm", "ES384"),
            ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", "1"),
            ("Tags.member.2.Key", "K"),
            ("Tags.member.2.Value", "2"),
        ]));
        assert!(m.starts_with("InvalidParameterValue Duplicate tag keys"), "{m}");
        assert_eq!(uuid().len(), 36);
    }
}
