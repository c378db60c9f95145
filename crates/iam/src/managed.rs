//! AWS managed policies (`arn:aws:iam::aws:policy/…`) that ship with Rampart.
//!
//! The documents follow AWS's; where AWS lists hundreds of services (ReadOnlyAccess,
//! ViewOnlyAccess, SecurityAudit) the list is condensed to the services users most touch, and
//! docs/iam.md says so.

use std::sync::OnceLock;

use crate::util::stable_id;

/// One AWS managed policy.
#[derive(Debug)]
pub struct AwsPolicy {
    pub name: &'static str,
    pub path: &'static str,
    pub description: &'static str,
    /// Creation and last update as AWS reports them (epoch seconds).
    pub created: i64,
    pub updated: i64,
    pub version: &'static str,
    pub document: &'static str,
    pub id: String,
    pub arn: String,
}

const READ_SERVICES: &[&str] = &[
    "access-analyzer",
    "acm",
    "cloudtrail",
    "cloudwatch",
    "cognito-identity",
    "cognito-idp",
    "config",
    "dynamodb",
    "ec2",
    "ecr",
    "ecs",
    "eks",
    "elasticloadbalancing",
    "events",
    "guardduty",
    "kms",
    "lambda",
    "logs",
    "macie2",
    "organizations",
    "rds",
    "route53",
    "s3",
    "securityhub",
    "shield",
    "sns",
    "sqs",
    "ssm",
    "waf",
    "wafv2",
];

struct Def {
    name: &'static str,
    path: &'static str,
    description: &'static str,
    created: i64,
    updated: i64,
    version: &'static str,
    document: fn() -> String,
}

fn stmt_allow(actions: &[&str]) -> String {
    let list: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
    format!("{{\"Effect\":\"Allow\",\"Action\":[{}],\"Resource\":\"*\"}}", list.join(","))
}

fn doc(statements: &[String]) -> String {
    format!("{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}", statements.join(","))
}

fn read_only() -> String {
    let mut actions: Vec<String> = Vec::new();
    for s in READ_SERVICES {
        for verb in ["Describe*", "Get*", "List*"] {
            actions.push(format!("{s}:{verb}"));
        }
    }
    actions.retain(|a| a != "s3:Describe*");
    actions.extend(
        [
            "iam:Generate*",
            "iam:Simulate*",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "cloudtrail:LookupEvents",
            "logs:FilterLogEvents",
            "logs:StartQuery",
            "logs:StopQuery",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetResourcePolicy",
            "secretsmanager:ListSecrets",
            "secretsmanager:ListSecretVersionIds",
            "sts:GetCallerIdentity",
            "sqs:Receive*",
            "iam:Get*",
            "iam:List*",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let refs: Vec<&str> = actions.iter().map(String::as_str).collect();
    doc(&[stmt_allow(&refs)])
}

fn view_only() -> String {
    let mut actions: Vec<String> = Vec::new();
    for s in READ_SERVICES {
        actions.push(format!("{s}:Describe*"));
        actions.push(format!("{s}:List*"));
    }
    actions.push("iam:GetAccountSummary".into());
    actions.push("iam:GetLoginProfile".into());
    actions.push("s3:GetBucketLocation".into());
    let refs: Vec<&str> = actions.iter().map(String::as_str).collect();
    doc(&[stmt_allow(&refs)])
}

fn security_audit() -> String {
    let mut actions: Vec<String> = Vec::new();
    for s in READ_SERVICES {
        actions.push(format!("{s}:Describe*"));
        actions.push(format!("{s}:List*"));
    }
    actions.extend(
        [
            "iam:GenerateCredentialReport",
            "iam:GenerateServiceLastAccessedDetails",
            "iam:Get*",
            "kms:GetKeyPolicy",
            "kms:GetKeyRotationStatus",
            "s3:GetAccelerateConfiguration",
            "s3:GetBucket*",
            "s3:GetEncryptionConfiguration",
            "s3:GetLifecycleConfiguration",
            "s3:GetReplicationConfiguration",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetResourcePolicy",
            "secretsmanager:ListSecrets",
            "cloudtrail:GetEventSelectors",
            "cloudtrail:GetTrailStatus",
            "config:Get*",
            "guardduty:Get*",
            "securityhub:Get*",
            "lambda:GetPolicy",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let refs: Vec<&str> = actions.iter().map(String::as_str).collect();
    doc(&[stmt_allow(&refs)])
}

const DEFS: &[Def] = &[
    Def {
        name: "AdministratorAccess",
        path: "/",
        description: "Provides full access to AWS services and resources.",
        created: 1_423_248_000,
        updated: 1_423_248_000,
        version: "v1",
        document: || doc(&["{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}".into()]),
    },
    Def {
        name: "PowerUserAccess",
        path: "/",
        description: "Provides full access to AWS services and resources, but does not allow management of Users and groups.",
        created: 1_423_248_000,
        updated: 1_700_000_000,
        version: "v5",
        document: || {
            doc(&[
                "{\"Effect\":\"Allow\",\"NotAction\":[\"iam:*\",\"organizations:*\",\"account:*\"],\"Resource\":\"*\"}".into(),
                stmt_allow(&[
                    "iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                    "organizations:DescribeOrganization", "account:ListRegions", "account:GetAccountInformation",
                ]),
            ])
        },
    },
    Def {
        name: "ReadOnlyAccess",
        path: "/",
        description: "Provides read-only access to AWS services and resources.",
        created: 1_423_248_000,
        updated: 1_700_000_000,
        version: "v1",
        document: read_only,
    },
    Def {
        name: "ViewOnlyAccess",
        path: "/job-function/",
        description: "This policy grants permissions to view resources and basic metadata across all AWS services",
        created: 1_478_649_600,
        updated: 1_700_000_000,
        version: "v1",
        document: view_only,
    },
    Def {
        name: "SecurityAudit",
        path: "/",
        description: "The security audit template grants access to read security configuration metadata. It is useful for software that audits the configuration of an AWS account.",
        created: 1_423_248_000,
        updated: 1_700_000_000,
        version: "v1",
        document: security_audit,
    },
    Def {
        name: "IAMFullAccess",
        path: "/",
        description: "Provides full access to IAM via the AWS Management Console.",
        created: 1_423_248_000,
        updated: 1_559_865_600,
        version: "v2",
        document: || {
            doc(&[stmt_allow(&[
                "iam:*", "organizations:DescribeAccount", "organizations:DescribeOrganization",
                "organizations:DescribeOrganizationalUnit", "organizations:DescribePolicy", "organizations:ListChildren",
                "organizations:ListParents", "organizations:ListPoliciesForTarget", "organizations:ListRoots",
                "organizations:ListPolicies", "organizations:ListTargetsForPolicy",
            ])])
        },
    },
    Def {
        name: "IAMReadOnlyAccess",
        path: "/",
        description: "Provides read only access to IAM via the AWS Management Console.",
        created: 1_423_248_000,
        updated: 1_559_865_600,
        version: "v4",
        document: || {
            doc(&[stmt_allow(&[
                "iam:GenerateCredentialReport", "iam:GenerateServiceLastAccessedDetails", "iam:Get*", "iam:List*",
                "iam:SimulateCustomPolicy", "iam:SimulatePrincipalPolicy",
            ])])
        },
    },
    Def {
        name: "IAMUserChangePassword",
        path: "/",
        description: "Provides the ability for an IAM user to change their own password.",
        created: 1_447_718_400,
        updated: 1_447_718_400,
        version: "v2",
        document: || {
            doc(&[
                "{\"Effect\":\"Allow\",\"Action\":[\"iam:ChangePassword\"],\"Resource\":[\"arn:aws:iam::*:user/${aws:username}\"]}".into(),
                stmt_allow(&["iam:GetAccountPasswordPolicy"]),
            ])
        },
    },
    Def {
        name: "AWSKeyManagementServicePowerUser",
        path: "/",
        description: "Provides access to AWS Key Management Service (KMS).",
        created: 1_423_248_000,
        updated: 1_489_536_000,
        version: "v2",
        document: || {
            doc(&[stmt_allow(&[
                "kms:CreateAlias", "kms:CreateKey", "kms:DeleteAlias", "kms:Describe*", "kms:GenerateRandom", "kms:Get*",
                "kms:List*", "kms:TagResource", "kms:UntagResource", "iam:ListGroups", "iam:ListRoles", "iam:ListUsers",
            ])])
        },
    },
    Def {
        name: "SecretsManagerReadWrite",
        path: "/",
        description: "Provides read/write access to AWS Secrets Manager via the AWS Management Console.",
        created: 1_522_281_600,
        updated: 1_700_000_000,
        version: "v5",
        document: || {
            doc(&[stmt_allow(&[
                "secretsmanager:*", "cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
                "cloudformation:DescribeStackResource", "cloudformation:DescribeStacks",
                "cloudformation:ExecuteChangeSet", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
                "ec2:DescribeVpcs", "kms:DescribeKey", "kms:ListAliases", "kms:ListKeys", "lambda:ListFunctions",
                "rds:DescribeDBClusters", "rds:DescribeDBInstances", "tag:GetResources",
            ])])
        },
    },
    Def {
        name: "AWSCloudTrail_ReadOnlyAccess",
        path: "/",
        description: "Provides read only access to AWS CloudTrail.",
        created: 1_603_065_600,
        updated: 1_603_065_600,
        version: "v1",
        document: || {
            doc(&[stmt_allow(&[
                "cloudtrail:Get*", "cloudtrail:Describe*", "cloudtrail:List*", "cloudtrail:LookupEvents",
            ])])
        },
    },
    Def {
        name: "AWSCloudTrail_FullAccess",
        path: "/",
        description: "Provides full access to AWS CloudTrail.",
        created: 1_603_065_600,
        updated: 1_603_065_600,
        version: "v1",
        document: || {
            doc(&[stmt_allow(&[
                "cloudtrail:*", "s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetBucketPolicy", "s3:CreateBucket",
                "s3:PutBucketPolicy", "kms:ListKeys", "kms:ListAliases", "iam:ListRoles", "iam:GetRolePolicy",
                "iam:GetUser", "organizations:DescribeOrganization", "organizations:ListAccounts",
            ])])
        },
    },
    Def {
        name: "AWSOrganizationsFullAccess",
        path: "/",
        description: "Provides full access to AWS Organizations.",
        created: 1_479_859_200,
        updated: 1_700_000_000,
        version: "v6",
        document: || doc(&[stmt_allow(&["organizations:*", "account:*"])]),
    },
    Def {
        name: "AWSOrganizationsReadOnlyAccess",
        path: "/",
        description: "Provides read-only access to AWS Organizations.",
        created: 1_479_859_200,
        updated: 1_700_000_000,
        version: "v3",
        document: || {
            doc(&[stmt_allow(&[
                "organizations:Describe*", "organizations:List*", "account:GetAlternateContact",
                "account:GetContactInformation", "account:ListRegions", "account:GetRegionOptStatus",
            ])])
        },
    },
    Def {
        name: "AmazonS3FullAccess",
        path: "/",
        description: "Provides full access to all buckets via the AWS Management Console.",
        created: 1_423_248_000,
        updated: 1_632_096_000,
        version: "v2",
        document: || doc(&[stmt_allow(&["s3:*", "s3-object-lambda:*"])]),
    },
    Def {
        name: "AmazonS3ReadOnlyAccess",
        path: "/",
        description: "Provides read only access to all buckets via the AWS Management Console.",
        created: 1_423_248_000,
        updated: 1_632_096_000,
        version: "v3",
        document: || {
            doc(&[stmt_allow(&[
                "s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*", "s3-object-lambda:List*",
            ])])
        },
    },
    Def {
        name: "AmazonEC2ReadOnlyAccess",
        path: "/",
        description: "Provides read only access to Amazon EC2 via the AWS Management Console.",
        created: 1_423_248_000,
        updated: 1_600_000_000,
        version: "v1",
        document: || {
            doc(&[stmt_allow(&[
                "ec2:Describe*", "elasticloadbalancing:Describe*", "cloudwatch:ListMetrics",
                "cloudwatch:GetMetricStatistics", "cloudwatch:Describe*", "autoscaling:Describe*",
            ])])
        },
    },
    Def {
        name: "AmazonDynamoDBFullAccess",
        path: "/",
        description: "Provides full access to Amazon DynamoDB via the AWS Management Console.",
        created: 1_423_248_000,
        updated: 1_600_000_000,
        version: "v1",
        document: || doc(&[stmt_allow(&["dynamodb:*", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"])]),
    },
    Def {
        name: "AWSLambdaBasicExecutionRole",
        path: "/service-role/",
        description: "Provides write permissions to CloudWatch Logs.",
        created: 1_428_364_800,
        updated: 1_428_364_800,
        version: "v1",
        document: || doc(&[stmt_allow(&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"])]),
    },
];

/// Every shipped AWS managed policy, ordered by name.
pub fn all() -> &'static [AwsPolicy] {
    static ALL: OnceLock<Vec<AwsPolicy>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<AwsPolicy> = DEFS
            .iter()
            .map(|d| AwsPolicy {
                name: d.name,
                path: d.path,
                description: d.description,
                created: d.created,
                updated: d.updated,
                version: d.version,
                document: Box::leak((d.document)().into_boxed_str()),
                id: if d.name == "AdministratorAccess" {
                    "ANPAIWMBCKSKIEE64ZLYK".to_string()
                } else {
                    stable_id("ANPA", d.name)
                },
                arn: format!("arn:aws:iam::aws:policy{}{}", d.path, d.name),
            })
            .collect();
        v.sort_by_key(|p| p.name.to_ascii_lowercase());
        v
    })
}

/// The AWS managed policy with this ARN.
pub fn by_arn(arn: &str) -> Option<&'static AwsPolicy> {
    all().iter().find(|p| p.arn == arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_json_and_arns_unique() {
        let all = all();
        assert!(all.len() >= 15);
        for p in all {
            let v: serde_json::Value = serde_json::from_str(p.document).unwrap();
            assert_eq!(v["Version"], "2012-10-17", "{}", p.name);
            // The policy parser enforcement uses (duplicate keys, IP values, …) accepts them all.
            if let Err(e) = rampart_policy::Policy::parse(p.document, rampart_policy::PolicyType::Identity) {
                panic!("{}: {}", p.name, e.message);
            }
            assert_eq!(by_arn(&p.arn).unwrap().name, p.name);
            assert_eq!(p.id.len(), 21);
        }
        assert_eq!(by_arn("arn:aws:iam::aws:policy/AdministratorAccess").unwrap().id, "ANPAIWMBCKSKIEE64ZLYK");
        assert!(by_arn("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole").is_some());
    }
}
