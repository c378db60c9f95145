//! Service-linked roles: CreateServiceLinkedRole, DeleteServiceLinkedRole,
//! GetServiceLinkedRoleDeletionStatus. The role lives at `/aws-service-role/{service}/`, is named
//! `AWSServiceRoleFor{Suffix}` as AWS names it, and trusts the service principal. Deletion runs
//! synchronously; its task is kept so the status can be read back.

use rampart_policy::ContextValue;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::roles::{require, role_check};
use super::{account, check, one, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{tables, RoleRec};
use crate::util::{iam_arn, now, unique_id};
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

/// The role name suffix AWS uses for common services; others use the service's first label.
const SUFFIXES: &[(&str, &str)] = &[
    ("autoscaling", "AutoScaling"),
    ("autoscaling-plans", "AutoScalingPlans_EC2AutoScaling"),
    ("custom-resource.application-autoscaling", "ApplicationAutoScaling_CustomResource"),
    ("dynamodb.application-autoscaling", "ApplicationAutoScaling_DynamoDBTable"),
    ("ecs.application-autoscaling", "ApplicationAutoScaling_ECSService"),
    ("ec2.application-autoscaling", "ApplicationAutoScaling_EC2SpotFleetRequest"),
    ("rds.application-autoscaling", "ApplicationAutoScaling_RDSCluster"),
    ("lambda.application-autoscaling", "ApplicationAutoScaling_LambdaConcurrency"),
    ("sagemaker.application-autoscaling", "ApplicationAutoScaling_SageMakerEndpoint"),
    ("access-analyzer", "AccessAnalyzer"),
    ("backup", "Backup"),
    ("cloudtrail", "CloudTrail"),
    ("compute-optimizer", "ComputeOptimizer"),
    ("config", "Config"),
    ("dax", "DAX"),
    ("ecs", "ECS"),
    ("eks", "AmazonEKS"),
    ("eks-nodegroup", "AmazonEKSNodegroup"),
    ("elasticache", "ElastiCache"),
    ("elasticbeanstalk", "ElasticBeanstalk"),
    ("elasticfilesystem", "AmazonElasticFileSystem"),
    ("elasticloadbalancing", "ElasticLoadBalancing"),
    ("elasticmapreduce", "EMRCleanup"),
    ("es", "AmazonElasticsearchService"),
    ("opensearchservice", "AmazonOpenSearchService"),
    ("fsx", "AmazonFSx"),
    ("globalaccelerator", "GlobalAccelerator"),
    ("guardduty", "AmazonGuardDuty"),
    ("inspector2", "AmazonInspector2"),
    ("kafka", "Kafka"),
    ("organizations", "Organizations"),
    ("rds", "RDS"),
    ("redshift", "Redshift"),
    ("replicator.lambda", "LambdaReplicator"),
    ("securityhub", "SecurityHub"),
    ("spot", "EC2Spot"),
    ("spotfleet", "EC2SpotFleet"),
    ("sso", "SSO"),
    ("ssm", "AmazonSSM"),
    ("support", "Support"),
    ("transitgateway", "VPCTransitGateway"),
    ("trustedadvisor", "TrustedAdvisor"),
];

/// `AWSServiceRoleFor{Suffix}[_{custom}]` for `service` (`x.amazonaws.com`).
pub fn role_name(service: &str, custom: Option<&str>) -> Option<String> {
    let prefix = service.strip_suffix(".amazonaws.com").filter(|p| !p.is_empty())?;
    let suffix = SUFFIXES
        .iter()
        .find(|(s, _)| *s == prefix)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| prefix.split('.').next().unwrap_or(prefix).to_string());
    Some(match custom {
        Some(c) => format!("AWSServiceRoleFor{suffix}_{c}"),
        None => format!("AWSServiceRoleFor{suffix}"),
    })
}

fn role_path(service: &str) -> String {
    format!("/aws-service-role/{service}/")
}

fn trust_policy(service: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": [service]},
            "Action": ["sts:AssumeRole"],
        }],
    })
    .to_string()
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
        let name = role_name(service, custom).ok_or_else(|| not_a_service(service))?;
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
            if tx.count(tables::ROLES, &format!("{acct}/"))? >= MAX_ROLES {
                return Err(IamError::LimitExceeded(format!("Cannot exceed quota for RolesPerAccount: {MAX_ROLES}")));
            }
            let role = RoleRec {
                name: name.clone(),
                id: unique_id("AROA"),
                path: role_path(&service),
                created: now(),
                trust: trust_policy(&service),
                description: description.clone(),
                max_session: 3600,
                tags: Vec::new(),
                boundary: None,
                inline: Default::default(),
                attached: Vec::new(),
                instance_profiles: Vec::new(),
                last_used: None,
            };
            tx.put_entity(acct, &name, &role)?;
            Ok(role)
        })?;
        let mut w = XmlWriter::new();
        super::xml::role(&mut w, "Role", acct, &role, true);
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
            let uuid = crate::util::to_hex(&rand::random::<[u8; 16]>());
            let task = format!("task/aws-service-role/{service}/{}/{uuid}", r.name);
            let rec = if r.instance_profiles.is_empty() && r.inline.is_empty() && r.attached.is_empty() {
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
        assert_eq!(role_name("autoscaling.amazonaws.com", None).unwrap(), "AWSServiceRoleForAutoScaling");
        assert_eq!(
            role_name("custom-resource.application-autoscaling.amazonaws.com", None).unwrap(),
            "AWSServiceRoleForApplicationAutoScaling_CustomResource"
        );
        assert_eq!(
            role_name("elasticbeanstalk.amazonaws.com", Some("x")).unwrap(),
            "AWSServiceRoleForElasticBeanstalk_x"
        );
        assert_eq!(role_name("other.amazonaws.com", None).unwrap(), "AWSServiceRoleForother");
        assert!(role_name("notaservice", None).is_none());
        assert_eq!(
            task_role("task/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling/ab"),
            Some(("autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling"))
        );
        assert_eq!(task_role("nope"), None);
    }
}
