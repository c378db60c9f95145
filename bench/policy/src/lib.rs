//! The benchmark scenario, built twice: as IAM policies for Rampart, and as an equivalent Cedar model.
//!
//! The principal: IAM user `alice` in 3 groups, 10 managed policies attached across the user and the
//! groups plus an inline policy, a permissions boundary, and a 3-level SCP chain (root, OU, account).
//!
//! Cedar has no layers, so the equivalent is one Cedar policy set per IAM layer (identity, boundary,
//! each SCP level) and the request is allowed when every set allows — which is what IAM's evaluation
//! does with those layers. IAM action wildcards become Cedar action groups (`Action::"s3:Get*"` is a
//! parent of `Action::"s3:GetObject"`), resource ARN patterns become `like` on a `arn` attribute, and
//! IAM conditions become `when` clauses over the context.

use rampart_policy::{Context, ContextValue, NamedPolicy, Policy, PolicySet, PolicyType, Principal, Request};
use serde_json::json;

pub const ACCOUNT: &str = "111122223333";
pub const USER: &str = "arn:aws:iam::111122223333:user/alice";

fn doc(v: serde_json::Value) -> String {
    v.to_string()
}

/// (name, document) of every identity policy: 10 managed + 1 inline.
pub fn identity_documents() -> Vec<(String, String)> {
    let managed = [
        (
            "S3ReadOnly",
            json!({"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}),
        ),
        (
            "DataBucketWrite",
            json!({"Version":"2012-10-17","Statement":[{"Sid":"Write","Effect":"Allow","Action":["s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::data-bucket/uploads/*"}]}),
        ),
        (
            "EC2Describe",
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}),
        ),
        (
            "ObservabilityRead",
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudwatch:Get*","cloudwatch:List*","logs:Get*","logs:Describe*"],"Resource":"*"}]}),
        ),
        (
            "OrdersTable",
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:Query","dynamodb:PutItem"],"Resource":"arn:aws:dynamodb:eu-west-1:111122223333:table/orders","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}),
        ),
        (
            "KmsViaS3",
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"arn:aws:kms:eu-west-1:111122223333:key/*","Condition":{"StringLike":{"kms:ViaService":"s3.*.amazonaws.com"}}}]}),
        ),
        (
            "SelfManage",
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GetUser","iam:ChangePassword","iam:CreateAccessKey","iam:ListAccessKeys"],"Resource":"arn:aws:iam::111122223333:user/alice"}]}),
        ),
        (
            "ReportsLambda",
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:eu-west-1:111122223333:function:reports-*"}]}),
        ),
        (
            "DenyOutsideCorp",
            json!({"Version":"2012-10-17","Statement":[{"Sid":"CorpOnly","Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["203.0.113.0/24","198.51.100.0/24"]},"Bool":{"aws:ViaAWSService":"false"}}}]}),
        ),
        (
            "JobsQueue",
            json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:eu-west-1:111122223333:jobs"}]}),
        ),
    ];
    let mut out: Vec<(String, String)> =
        managed.into_iter().map(|(n, d)| (format!("arn:aws:iam::111122223333:policy/{n}"), doc(d))).collect();
    out.push((
        "user/alice/inline/Reports".into(),
        doc(json!({"Version":"2012-10-17","Statement":[{"Sid":"Reports","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data-bucket/reports/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]})),
    ));
    out
}

pub fn boundary_document() -> String {
    doc(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"Ceiling","Effect":"Allow","Action":["s3:*","ec2:Describe*","dynamodb:*","kms:*","iam:Get*","iam:ChangePassword","iam:*AccessKey*","logs:*","cloudwatch:*","lambda:Invoke*","sqs:*"],"Resource":"*"},
        {"Sid":"NoUserAdmin","Effect":"Deny","Action":["iam:CreateUser","iam:DeleteUser","iam:AttachUserPolicy"],"Resource":"*"}]}))
}

/// SCPs by level: root, OU, account.
pub fn scp_documents() -> Vec<Vec<String>> {
    let full = doc(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"FullAWSAccess","Effect":"Allow","Action":"*","Resource":"*"}]}),
    );
    vec![
        vec![
            full.clone(),
            doc(
                json!({"Version":"2012-10-17","Statement":[{"Sid":"RegionLock","Effect":"Deny","NotAction":["iam:*","sts:*","support:*"],"Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1","eu-central-1"]}}}]}),
            ),
        ],
        vec![
            full,
            doc(
                json!({"Version":"2012-10-17","Statement":[{"Sid":"ProtectTrail","Effect":"Deny","Action":["cloudtrail:StopLogging","cloudtrail:DeleteTrail","organizations:LeaveOrganization"],"Resource":"*"}]}),
            ),
        ],
        vec![doc(
            json!({"Version":"2012-10-17","Statement":[{"Sid":"AllowList","Effect":"Allow","Action":["s3:*","ec2:*","dynamodb:*","kms:*","iam:*","logs:*","cloudwatch:*","lambda:*","sqs:*","sts:*"],"Resource":"*"}]}),
        )],
    ]
}

/// The parsed IAM side.
pub struct Iam {
    pub identity: Vec<(String, Policy)>,
    pub boundary: Policy,
    pub scps: Vec<Vec<Policy>>,
    pub principal: Principal,
}

impl Iam {
    pub fn new() -> Iam {
        let identity = identity_documents()
            .into_iter()
            .map(|(n, d)| {
                let p = Policy::parse(&d, PolicyType::Identity).expect("valid identity policy");
                (n, p)
            })
            .collect();
        let boundary = Policy::parse(&boundary_document(), PolicyType::Identity).expect("valid boundary");
        let scps = scp_documents()
            .into_iter()
            .map(|l| l.iter().map(|d| Policy::parse(d, PolicyType::ServiceControl).expect("valid SCP")).collect())
            .collect();
        Iam { identity, boundary, scps, principal: Principal::iam_user(USER, ACCOUNT) }
    }

    pub fn set(&self) -> PolicySet<'_> {
        PolicySet {
            identity: self.identity.iter().map(|(n, p)| NamedPolicy::new(n, p)).collect(),
            permissions_boundaries: Some(vec![NamedPolicy::new("boundary/Developer", &self.boundary)]),
            service_control_policies: Some(
                self.scps
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        l.iter().map(|p| NamedPolicy::new(["scp/root", "scp/ou", "scp/account"][i], p)).collect()
                    })
                    .collect(),
            ),
            ..PolicySet::default()
        }
    }

    pub fn decide(&self, set: &PolicySet<'_>, r: &Req, ctx: &Context) -> bool {
        let req = Request {
            principal: &self.principal,
            action: r.action,
            resource: r.resource,
            resource_account: Some(ACCOUNT),
            context: ctx,
        };
        rampart_policy::evaluate(&req, set).decision == rampart_policy::Decision::Allowed
    }
}

impl Default for Iam {
    fn default() -> Self {
        Iam::new()
    }
}

/// One request of the scenario.
#[derive(Clone, Copy, Debug)]
pub struct Req {
    pub action: &'static str,
    pub resource: &'static str,
    pub source_ip: &'static str,
    pub region: &'static str,
    pub secure: bool,
    pub via_kms_service: Option<&'static str>,
}

/// The benchmarked request: read a report over TLS from the office, in eu-west-1.
pub const MAIN: Req = Req {
    action: "s3:GetObject",
    resource: "arn:aws:s3:::data-bucket/reports/2026/q1.csv",
    source_ip: "203.0.113.7",
    region: "eu-west-1",
    secure: true,
    via_kms_service: None,
};

/// Requests used to check the two models agree (allowed and denied ones, for every layer).
pub fn agreement_requests() -> Vec<Req> {
    let r = |action, resource| Req { action, resource, ..MAIN };
    vec![
        MAIN,
        Req { source_ip: "192.0.2.1", ..MAIN },
        Req { region: "us-east-1", ..MAIN },
        Req { secure: false, ..MAIN },
        r("s3:PutObject", "arn:aws:s3:::data-bucket/uploads/x"),
        r("s3:PutObject", "arn:aws:s3:::data-bucket/reports/x"),
        r("s3:ListBucket", "arn:aws:s3:::data-bucket"),
        r("ec2:DescribeInstances", "*"),
        r("ec2:RunInstances", "*"),
        r("dynamodb:GetItem", "arn:aws:dynamodb:eu-west-1:111122223333:table/orders"),
        r("dynamodb:DeleteItem", "arn:aws:dynamodb:eu-west-1:111122223333:table/orders"),
        Req {
            via_kms_service: Some("s3.eu-west-1.amazonaws.com"),
            ..r("kms:Decrypt", "arn:aws:kms:eu-west-1:111122223333:key/k1")
        },
        r("kms:Decrypt", "arn:aws:kms:eu-west-1:111122223333:key/k1"),
        r("iam:GetUser", "arn:aws:iam::111122223333:user/alice"),
        r("iam:GetUser", "arn:aws:iam::111122223333:user/bob"),
        r("iam:CreateUser", "arn:aws:iam::111122223333:user/alice"),
        r("lambda:InvokeFunction", "arn:aws:lambda:eu-west-1:111122223333:function:reports-daily"),
        r("sqs:SendMessage", "arn:aws:sqs:eu-west-1:111122223333:jobs"),
        r("cloudtrail:StopLogging", "*"),
        r("logs:GetLogEvents", "*"),
    ]
}

/// The request context IAM sees.
pub fn iam_context(r: &Req) -> Context {
    let mut c = Context::new();
    let s = |v: &str| ContextValue::String(v.to_string());
    c.insert("aws:SourceIp", s(r.source_ip));
    c.insert("aws:RequestedRegion", s(r.region));
    c.insert("aws:SecureTransport", s(if r.secure { "true" } else { "false" }));
    c.insert("aws:ViaAWSService", s("false"));
    c.insert("aws:username", s("alice"));
    c.insert("aws:PrincipalArn", s(USER));
    c.insert("aws:PrincipalAccount", s(ACCOUNT));
    c.insert("aws:CurrentTime", s("2026-06-01T12:00:00Z"));
    if let Some(v) = r.via_kms_service {
        c.insert("kms:ViaService", s(v));
    }
    c
}

pub mod cedar {
    //! The same scenario in Cedar.
    use std::str::FromStr;

    use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request};
    use serde_json::json;

    use super::Req;

    /// Identity policies (user + its groups), one Cedar policy per IAM statement.
    const IDENTITY: &str = r#"
permit(principal in Group::"readers", action in Action::"s3:Get*", resource);
permit(principal in Group::"readers", action in Action::"s3:List*", resource);
permit(principal in Group::"developers", action in [Action::"s3:PutObject", Action::"s3:DeleteObject"], resource)
  when { resource.arn like "arn:aws:s3:::data-bucket/uploads/*" };
permit(principal in Group::"developers", action in Action::"ec2:Describe*", resource);
permit(principal in Group::"oncall", action in [Action::"cloudwatch:Get*", Action::"cloudwatch:List*", Action::"logs:Get*", Action::"logs:Describe*"], resource);
permit(principal in Group::"developers", action in [Action::"dynamodb:GetItem", Action::"dynamodb:Query", Action::"dynamodb:PutItem"], resource)
  when { resource.arn == "arn:aws:dynamodb:eu-west-1:111122223333:table/orders" && context.region == "eu-west-1" };
permit(principal in Group::"developers", action in [Action::"kms:Decrypt", Action::"kms:Encrypt"], resource)
  when { resource.arn like "arn:aws:kms:eu-west-1:111122223333:key/*" && context has viaService && context.viaService like "s3.*.amazonaws.com" };
permit(principal == User::"alice", action in [Action::"iam:GetUser", Action::"iam:ChangePassword", Action::"iam:CreateAccessKey", Action::"iam:ListAccessKeys"], resource)
  when { resource.arn == "arn:aws:iam::111122223333:user/alice" };
permit(principal in Group::"oncall", action == Action::"lambda:InvokeFunction", resource)
  when { resource.arn like "arn:aws:lambda:eu-west-1:111122223333:function:reports-*" };
forbid(principal == User::"alice", action, resource)
  when { !(context.sourceIp.isInRange(ip("203.0.113.0/24")) || context.sourceIp.isInRange(ip("198.51.100.0/24"))) && context.viaAWSService == false };
permit(principal in Group::"developers", action == Action::"sqs:SendMessage", resource)
  when { resource.arn == "arn:aws:sqs:eu-west-1:111122223333:jobs" };
permit(principal == User::"alice", action == Action::"s3:GetObject", resource)
  when { resource.arn like "arn:aws:s3:::data-bucket/reports/*" && context.secureTransport == true };
"#;

    const BOUNDARY: &str = r#"
permit(principal, action in [Action::"s3:*", Action::"ec2:Describe*", Action::"dynamodb:*", Action::"kms:*", Action::"iam:Get*", Action::"iam:ChangePassword", Action::"iam:*AccessKey*", Action::"logs:*", Action::"cloudwatch:*", Action::"lambda:Invoke*", Action::"sqs:*"], resource);
forbid(principal, action in [Action::"iam:CreateUser", Action::"iam:DeleteUser", Action::"iam:AttachUserPolicy"], resource);
"#;

    const SCP_ROOT: &str = r#"
permit(principal, action, resource);
forbid(principal, action, resource)
  when { !(context.region == "eu-west-1" || context.region == "eu-central-1") }
  unless { action in [Action::"iam:*", Action::"sts:*", Action::"support:*"] };
"#;

    const SCP_OU: &str = r#"
permit(principal, action, resource);
forbid(principal, action in [Action::"cloudtrail:StopLogging", Action::"cloudtrail:DeleteTrail", Action::"organizations:LeaveOrganization"], resource);
"#;

    const SCP_ACCOUNT: &str = r#"
permit(principal, action in [Action::"s3:*", Action::"ec2:*", Action::"dynamodb:*", Action::"kms:*", Action::"iam:*", Action::"logs:*", Action::"cloudwatch:*", Action::"lambda:*", Action::"sqs:*", Action::"sts:*"], resource);
"#;

    /// The action groups an action belongs to: the IAM patterns of the scenario that match it.
    const PATTERNS: &[&str] = &[
        "s3:Get*",
        "s3:List*",
        "s3:*",
        "ec2:Describe*",
        "ec2:*",
        "cloudwatch:Get*",
        "cloudwatch:List*",
        "cloudwatch:*",
        "logs:Get*",
        "logs:Describe*",
        "logs:*",
        "dynamodb:*",
        "kms:*",
        "iam:Get*",
        "iam:*AccessKey*",
        "iam:*",
        "lambda:Invoke*",
        "lambda:*",
        "sqs:*",
        "sts:*",
        "support:*",
    ];

    fn glob(p: &str, s: &str) -> bool {
        match p.split_once('*') {
            None => p == s,
            Some((head, rest)) => {
                if !s.starts_with(head) {
                    return false;
                }
                let s = &s[head.len()..];
                if rest.is_empty() {
                    return true;
                }
                (0..=s.len()).any(|i| s.is_char_boundary(i) && glob(rest, &s[i..]))
            }
        }
    }

    /// The pre-built Cedar side of one request.
    pub struct Prepared {
        pub layers: Vec<PolicySet>,
        pub entities: Entities,
        pub request: Request,
        pub authorizer: Authorizer,
    }

    pub fn prepare(r: &Req) -> Prepared {
        let layers = [IDENTITY, BOUNDARY, SCP_ROOT, SCP_OU, SCP_ACCOUNT]
            .iter()
            .map(|src| PolicySet::from_str(src).expect("valid Cedar policies"))
            .collect();
        let parents: Vec<serde_json::Value> =
            PATTERNS.iter().filter(|p| glob(p, r.action)).map(|p| json!({"type": "Action", "id": p})).collect();
        let mut entities = vec![
            json!({"uid": {"type": "User", "id": "alice"}, "attrs": {},
                   "parents": [{"type":"Group","id":"readers"},{"type":"Group","id":"developers"},{"type":"Group","id":"oncall"}]}),
            json!({"uid": {"type": "Group", "id": "readers"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Group", "id": "developers"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Group", "id": "oncall"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Resource", "id": r.resource}, "attrs": {"arn": r.resource}, "parents": []}),
            json!({"uid": {"type": "Action", "id": r.action}, "attrs": {}, "parents": parents}),
        ];
        for p in PATTERNS {
            entities.push(json!({"uid": {"type": "Action", "id": p}, "attrs": {}, "parents": []}));
        }
        let entities = Entities::from_json_value(json!(entities), None).expect("valid entities");
        let mut ctx = json!({
            "sourceIp": {"__extn": {"fn": "ip", "arg": r.source_ip}},
            "region": r.region,
            "secureTransport": r.secure,
            "viaAWSService": false,
        });
        if let Some(v) = r.via_kms_service {
            ctx["viaService"] = json!(v);
        }
        let context = Context::from_json_value(ctx, None).expect("valid context");
        let uid = |t: &str, id: &str| EntityUid::from_str(&format!("{t}::{}", json!(id))).expect("valid uid");
        let request =
            Request::new(uid("User", "alice"), uid("Action", r.action), uid("Resource", r.resource), context, None)
                .expect("valid request");
        Prepared { layers, entities, request, authorizer: Authorizer::new() }
    }

    impl Prepared {
        /// Every layer must allow.
        pub fn decide(&self) -> bool {
            self.layers
                .iter()
                .all(|l| self.authorizer.is_authorized(&self.request, l, &self.entities).decision() == Decision::Allow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_models_agree() {
        let iam = Iam::new();
        let set = iam.set();
        let mut allowed = 0;
        for r in agreement_requests() {
            let ours = iam.decide(&set, &r, &iam_context(&r));
            let theirs = cedar::prepare(&r).decide();
            assert_eq!(ours, theirs, "{r:?}");
            allowed += ours as usize;
        }
        assert!((8..=14).contains(&allowed), "a mix of decisions: {allowed} allowed");
        assert!(iam.decide(&set, &MAIN, &iam_context(&MAIN)));
    }
}
