//! Service-linked roles: CreateServiceLinkedRole, DeleteServiceLinkedRole,
//! GetServiceLinkedRoleDeletionStatus. The role lives at `/aws-service-role/{service}/`, is named
//! `AWSServiceRoleFor{Suffix}` as AWS names it, and trusts the service principal. Deletion runs
//! synchronously; its task is kept so the status can be read back.

use std::collections::HashMap;
use std::sync::OnceLock;

use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::index::{self, EntityRef};
use super::roles::{require, role_check};
use super::{account, check, one, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{EntityKind, RoleRec};
use crate::util::{encode_document, iam_arn, iso8601, now, unique_id};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateServiceLinkedRole>(),
    op::<Core, DeleteServiceLinkedRole>(),
    op::<Core, GetServiceLinkedRoleDeletionStatus>(),
];

/// `{account}/{deletion task id}` → [`DeletionRec`].
pub const DELETIONS: &str = "iam_slr_deletions";
const MAX_ROLES: usize = 1000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeletionRec {
    pub role_arn: String,
    /// `SUCCEEDED` or `FAILED`.
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// One service's service-linked role, as `scripts/service-linked-roles.py` wrote it from its
/// sources (each row names its own: a recorded AWS response, or an AWS managed policy).
#[derive(Debug, Deserialize)]
pub struct SlrRow {
    pub service: String,
    /// `AWSServiceRoleFor…`
    pub role: String,
    /// The AWS managed policies AWS attaches (`None` where the source does not say).
    pub policies: Option<Vec<String>>,
    /// `allowed`, `refused` (AWS answers InvalidInput) or `unknown` (accepted, as before).
    pub suffix: String,
    /// The description the service gives its role when the caller gives none (recorded).
    #[serde(default)]
    pub description: Option<String>,
    // Each row's `source` stays in the file (the tests check every row has one).
}

static TABLE: &str = include_str!("../../data/service-linked-roles.json");

/// The table by service principal, read at first use.
pub fn table() -> &'static HashMap<String, SlrRow> {
    static ROWS: OnceLock<HashMap<String, SlrRow>> = OnceLock::new();
    ROWS.get_or_init(|| {
        // Part of the build, and read whole by the tests.
        let rows: Vec<SlrRow> = serde_json::from_str(TABLE).unwrap_or_default();
        rows.into_iter().map(|r| (r.service.clone(), r)).collect()
    })
}

/// `AWSServiceRoleFor…[_{custom}]` for `service` (`x.amazonaws.com`): the table's name; for a
/// principal it lacks, `AWSServiceRoleFor{first label}`. `CustomSuffix` is refused where AWS
/// refuses it.
pub fn role_name(service: &str, custom: Option<&str>) -> Result<String> {
    let prefix =
        service.strip_suffix(".amazonaws.com").filter(|p| !p.is_empty()).ok_or_else(|| not_a_service(service))?;
    let base = match table().get(service) {
        Some(row) => {
            if custom.is_some() && row.suffix == "refused" {
                return Err(IamError::InvalidInput(format!("Custom suffix is not allowed for {service}")));
            }
            row.role.clone()
        }
        None => format!("AWSServiceRoleFor{}", prefix.split('.').next().unwrap_or(prefix)),
    };
    Ok(match custom {
        Some(c) => format!("{base}_{c}"),
        None => base,
    })
}

/// The managed policies AWS attaches to `service`'s role.
fn service_policies(service: &str) -> &'static [String] {
    table().get(service).and_then(|r| r.policies.as_deref()).unwrap_or_default()
}

fn role_path(service: &str) -> String {
    format!("/aws-service-role/{service}/")
}

/// The trust policy as AWS writes it: `Action` and `Principal.Service` as strings (a recorded
/// GetRole of a service-linked role, and the Lex developer guide's GetRole example).
fn trust_policy(service: &str) -> String {
    let service = serde_json::Value::String(service.to_string());
    format!(
        "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Action\":\"sts:AssumeRole\",\"Effect\":\"Allow\",\"Principal\":{{\"Service\":{service}}}}}]}}"
    )
}

fn not_a_service(service: &str) -> IamError {
    IamError::InvalidInput(format!("Invalid service name: {service}"))
}

/// The role named in a deletion task ID (`task/aws-service-role/{service}/{role}/{uuid}`).
fn task_role(task: &str) -> Option<(&str, &str)> {
    let rest = task.strip_prefix("task/aws-service-role/")?;
    let mut parts = rest.split('/');
    let (service, role, id) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && !id.is_empty()).then_some((service, role))
}

fn is_service_linked(r: &RoleRec) -> bool {
    r.path.starts_with("/aws-service-role/")
}

pub struct CreateServiceLinkedRole {
    service: String,
    description: Option<String>,
    /// The role's name, derived from the service (and suffix) when the request is read.
    name: String,
}

impl Operation<Core> for CreateServiceLinkedRole {
    const NAME: &'static str = "CreateServiceLinkedRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let service = a.req("AWSServiceName", &v::SERVICE_NAME);
        let description = a.opt("Description", &v::ROLE_DESCRIPTION).map(str::to_string);
        let custom = a.opt("CustomSuffix", &v::CUSTOM_SUFFIX);
        a.finish()?;
        let name = role_name(service, custom)?;
        Ok(CreateServiceLinkedRole { service: service.to_string(), description, name })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = check(Self::NAME, iam_arn(account(ctx), "role", &role_path(&self.service), &self.name));
        c.context.push(("iam:AWSServiceName".into(), ContextValue::String(self.service.clone())));
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let CreateServiceLinkedRole { service, description, name } = self;
        let role = core.db.write(acct, |tx| {
            if tx.entity::<RoleRec>(acct, &name)?.is_some() {
                return Err(IamError::InvalidInput(format!(
                    "Service role name {name} has been taken in this account, please try a different suffix."
                )));
            }
            if tx.count_entities::<RoleRec>(acct)? >= MAX_ROLES {
                return Err(IamError::quota("RolesPerAccount", MAX_ROLES));
            }
            let mut role = RoleRec {
                name: name.clone(),
                id: unique_id("AROA"),
                path: role_path(&service),
                created: now(),
                trust: trust_policy(&service),
                description: description.clone().or_else(|| table().get(&service).and_then(|r| r.description.clone())),
                max_session: 3600,
                tags: Vec::new(),
                boundary: None,
                inline: Default::default(),
                attached: Vec::new(),
                instance_profiles: Vec::new(),
                last_used: None,
            };
            // The service's own managed policy, attached as AWS attaches it.
            for arn in service_policies(&service) {
                let e = EntityRef { kind: EntityKind::Role, name: &role.name, id: &role.id, path: &role.path };
                index::attach(tx, acct, arn, &e)?;
                role.attached.push(arn.clone());
            }
            tx.put_entity(acct, &name, &role)?;
            Ok(role)
        })?;
        // The members AWS's CreateServiceLinkedRole example shows (no MaxSessionDuration or
        // RoleLastUsed): https://docs.aws.amazon.com/cli/latest/reference/iam/create-service-linked-role.html
        let mut w = XmlWriter::new();
        w.start("Role")
            .elem("Path", &role.path)
            .elem("RoleName", &role.name)
            .elem("RoleId", &role.id)
            .elem("Arn", &role.arn(acct))
            .elem("CreateDate", &iso8601(role.created))
            .elem("AssumeRolePolicyDocument", &encode_document(&role.trust));
        if let Some(d) = &role.description {
            w.elem("Description", d);
        }
        w.end();
        xml(w.finish())
    }
}

pub struct DeleteServiceLinkedRole {
    name: String,
}

impl Operation<Core> for DeleteServiceLinkedRole {
    const NAME: &'static str = "DeleteServiceLinkedRole";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("RoleName", &v::ROLE_NAME).to_string();
        a.finish()?;
        Ok(DeleteServiceLinkedRole { name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(role_check(core, ctx, Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let task = core.db.write(acct, |tx| {
            let r = require(tx, acct, &self.name)?;
            if !is_service_linked(&r) {
                return Err(IamError::InvalidInput(format!("Role {} is not a service-linked role.", r.name)));
            }
            let service = r.path.trim_start_matches("/aws-service-role/").trim_end_matches('/').to_string();
            // AWS's form: task/aws-service-role/{service}/{role}/{uuid}, the UUID hyphenated
            // (the DeleteServiceLinkedRole example in the AWS CLI reference).
            let task = format!("task/aws-service-role/{service}/{}/{}", r.name, rampart_protocol::new_uuid());
            let own = service_policies(&service);
            let only_own = r.attached.iter().all(|a| own.contains(a));
            let rec = if r.instance_profiles.is_empty() && r.inline.is_empty() && only_own {
                for arn in &r.attached {
                    index::detach(tx, acct, arn, EntityKind::Role, &r.name)?;
                }
                tx.delete_entity::<RoleRec>(acct, &r.name)?;
                DeletionRec { role_arn: r.arn(acct), status: "SUCCEEDED".into(), reason: None }
            } else {
                DeletionRec {
                    role_arn: r.arn(acct),
                    status: "FAILED".into(),
                    reason: Some(
                        "The role is in an instance profile or has policies that are not the service's.".into(),
                    ),
                }
            };
            tx.put(DELETIONS, &format!("{acct}/{task}"), &rec)?;
            Ok(task)
        })?;
        let mut w = XmlWriter::new();
        w.elem("DeletionTaskId", &task);
        xml(w.finish())
    }
}

pub struct GetServiceLinkedRoleDeletionStatus {
    task: String,
}

impl Operation<Core> for GetServiceLinkedRoleDeletionStatus {
    const NAME: &'static str = "GetServiceLinkedRoleDeletionStatus";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let task = a.req("DeletionTaskId", &v::DELETION_TASK_ID).to_string();
        a.finish()?;
        Ok(GetServiceLinkedRoleDeletionStatus { task })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let arn = match task_role(&self.task) {
            Some((service, role)) => iam_arn(account(ctx), "role", &role_path(service), role),
            None => "*".to_string(),
        };
        one(check(Self::NAME, arn))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let task = self.task.as_str();
        let rec = core.db.get::<DeletionRec>(DELETIONS, &format!("{acct}/{task}"))?.ok_or_else(|| {
            if task_role(task).is_some() {
                IamError::NoSuchEntity(format!("Deletion task {task} not found."))
            } else {
                IamError::InvalidInput(format!("Invalid deletion task id: {task}"))
            }
        })?;
        let mut w = XmlWriter::new();
        w.elem("Status", &rec.status);
        if let Some(reason) = &rec.reason {
            w.start("Reason").elem("Reason", reason).end();
        }
        xml(w.finish())
    }
}

/// Roles only AWS may change: service-linked roles (DeleteRole answers UnmodifiableEntity).
pub fn protected(r: &RoleRec) -> Option<IamError> {
    is_service_linked(r).then(|| {
        IamError::Unmodifiable(format!(
            "Cannot perform the operation on the protected role '{}' - this role is only modifiable by AWS",
            r.name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws() {
        assert_eq!(role_name("acm.amazonaws.com", None).unwrap(), "AWSServiceRoleForCertificateManager");
        assert_eq!(role_name("autoscaling.amazonaws.com", None).unwrap(), "AWSServiceRoleForAutoScaling");
        assert_eq!(role_name("autoscaling.amazonaws.com", Some("x")).unwrap(), "AWSServiceRoleForAutoScaling_x");
        assert_eq!(
            role_name("custom-resource.application-autoscaling.amazonaws.com", None).unwrap(),
            "AWSServiceRoleForApplicationAutoScaling_CustomResource"
        );
        match role_name("acm.amazonaws.com", Some("x")) {
            Err(IamError::InvalidInput(m)) => assert_eq!(m, "Custom suffix is not allowed for acm.amazonaws.com"),
            other => panic!("{other:?}"),
        }
        assert_eq!(role_name("other.amazonaws.com", None).unwrap(), "AWSServiceRoleForother");
        assert!(role_name("notaservice", None).is_err());
        assert_eq!(
            service_policies("acm.amazonaws.com"),
            ["arn:aws:iam::aws:policy/aws-service-role/CertificateManagerServiceRolePolicy".to_string()]
        );
        assert_eq!(
            task_role("task/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling/ab"),
            Some(("autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling"))
        );
        assert_eq!(task_role("nope"), None);
        assert_eq!(trust_policy("acm.amazonaws.com"), "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Action\":\"sts:AssumeRole\",\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"acm.amazonaws.com\"}}]}");
    }

    #[test]
    fn every_row_is_sourced_and_unique() {
        let rows = table();
        assert!(rows.len() >= 140, "{}", rows.len());
        let raw: Vec<serde_json::Value> = serde_json::from_str(TABLE).unwrap();
        assert_eq!(raw.len(), rows.len(), "one row per service");
        assert!(raw.iter().all(|r| r["source"].as_str().is_some_and(|s| !s.is_empty())), "every row names its source");
        let mut names = std::collections::HashSet::new();
        for (service, r) in rows {
            assert_eq!(&r.service, service);
            assert!(r.role.starts_with("AWSServiceRoleFor"), "{}", r.role);
            assert!(names.insert(r.role.as_str()), "{} twice", r.role);
            assert!(["allowed", "refused", "unknown"].contains(&r.suffix.as_str()), "{}", r.suffix);
            for arn in r.policies.iter().flatten() {
                assert!(arn.starts_with("arn:aws:iam::aws:policy/"), "{arn}");
            }
        }
    }
}
