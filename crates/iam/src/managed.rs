//! AWS managed policies (`arn:aws:iam::aws:policy/…`): the whole catalogue AWS publishes.
//!
//! `scripts/aws-managed-policies.py` builds `data/aws-managed-policies.jsonl.zst` from a public
//! mirror of AWS's own ListPolicies / GetPolicyVersion answers (docs/iam.md says how to refresh
//! it). The file is compiled in and read once, at first use: decompressed, parsed, sorted as
//! ListPolicies lists, and indexed by ARN, so every later call is a hash lookup or a binary search.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// One AWS managed policy.
#[derive(Debug)]
pub struct AwsPolicy {
    pub name: &'static str,
    pub path: &'static str,
    /// AWS's description where Rampart has it (the catalogue's source lists none); else empty.
    pub description: &'static str,
    /// Creation and last update as AWS reports them (epoch seconds).
    pub created: i64,
    pub updated: i64,
    /// The default version's ID and its creation time.
    pub version: &'static str,
    pub version_created: i64,
    pub document: &'static str,
    pub id: String,
    pub arn: String,
    /// ListPolicies' order: the lower-cased name, `|`, the ARN (also its paging marker).
    pub key: String,
}

static DATA: &[u8] = include_bytes!("../data/aws-managed-policies.jsonl.zst");

/// AWS's descriptions of the policies Rampart shipped before the whole catalogue (GetPolicy
/// returns them); the catalogue's source does not carry descriptions.
const DESCRIPTIONS: &[(&str, &str)] = &[
    ("AdministratorAccess", "Provides full access to AWS services and resources."),
    (
        "PowerUserAccess",
        "Provides full access to AWS services and resources, but does not allow management of Users and groups.",
    ),
    ("ReadOnlyAccess", "Provides read-only access to AWS services and resources."),
    (
        "ViewOnlyAccess",
        "This policy grants permissions to view resources and basic metadata across all AWS services",
    ),
    (
        "SecurityAudit",
        "The security audit template grants access to read security configuration metadata. It is useful for software that audits the configuration of an AWS account.",
    ),
    ("IAMFullAccess", "Provides full access to IAM via the AWS Management Console."),
    ("IAMReadOnlyAccess", "Provides read only access to IAM via the AWS Management Console."),
    ("IAMUserChangePassword", "Provides the ability for an IAM user to change their own password."),
    ("AWSKeyManagementServicePowerUser", "Provides access to AWS Key Management Service (KMS)."),
    (
        "SecretsManagerReadWrite",
        "Provides read/write access to AWS Secrets Manager via the AWS Management Console.",
    ),
    ("AWSCloudTrail_ReadOnlyAccess", "Provides read only access to AWS CloudTrail."),
    ("AWSCloudTrail_FullAccess", "Provides full access to AWS CloudTrail."),
    ("AWSOrganizationsFullAccess", "Provides full access to AWS Organizations."),
    ("AWSOrganizationsReadOnlyAccess", "Provides read-only access to AWS Organizations."),
    ("AmazonS3FullAccess", "Provides full access to all buckets via the AWS Management Console."),
    ("AmazonS3ReadOnlyAccess", "Provides read only access to all buckets via the AWS Management Console."),
    ("AmazonEC2ReadOnlyAccess", "Provides read only access to Amazon EC2 via the AWS Management Console."),
    ("AmazonDynamoDBFullAccess", "Provides full access to Amazon DynamoDB via the AWS Management Console."),
    ("AWSLambdaBasicExecutionRole", "Provides write permissions to CloudWatch Logs."),
];

/// One line of the data file.
#[derive(Deserialize)]
struct Line {
    name: String,
    path: String,
    id: String,
    version: String,
    created: i64,
    updated: i64,
    version_created: i64,
    document: String,
}

struct Catalogue {
    all: Vec<AwsPolicy>,
    by_arn: HashMap<String, usize>,
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn load() -> Catalogue {
    // The file is part of the build and its test reads every line: a failure here is a broken build.
    let text = zstd::decode_all(DATA).unwrap_or_default();
    let mut all: Vec<AwsPolicy> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Line>(l).ok())
        .map(|l| {
            let arn = format!("arn:aws:iam::aws:policy{}{}", l.path, l.name);
            let description = DESCRIPTIONS.iter().find(|(n, _)| *n == l.name).map_or("", |(_, d)| *d);
            AwsPolicy {
                key: format!("{}|{arn}", l.name.to_ascii_lowercase()),
                name: leak(l.name),
                path: leak(l.path),
                description,
                created: l.created,
                updated: l.updated,
                version: leak(l.version),
                version_created: l.version_created,
                document: leak(l.document),
                id: l.id,
                arn,
            }
        })
        .collect();
    all.sort_by(|a, b| a.key.cmp(&b.key));
    let by_arn = all.iter().enumerate().map(|(i, p)| (p.arn.clone(), i)).collect();
    Catalogue { all, by_arn }
}

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(load)
}

/// Every AWS managed policy, in ListPolicies' order ([`AwsPolicy::key`]).
pub fn all() -> &'static [AwsPolicy] {
    &catalogue().all
}

/// The policies listed after `marker` (a [`AwsPolicy::key`]), found by binary search.
pub fn after(marker: Option<&str>) -> &'static [AwsPolicy] {
    let all = all();
    let from = marker.map_or(0, |m| all.partition_point(|p| p.key.as_str() <= m));
    all.get(from..).unwrap_or_default()
}

/// The AWS managed policy with this ARN.
pub fn by_arn(arn: &str) -> Option<&'static AwsPolicy> {
    let c = catalogue();
    c.by_arn.get(arn).and_then(|&i| c.all.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_catalogue_loads_and_every_document_parses() {
        let text = zstd::decode_all(DATA).unwrap();
        let lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        let all = all();
        let mut refused = Vec::new();
        assert_eq!(all.len(), lines, "every line of the data file is a policy");
        assert!(all.len() > 1300);
        for p in all {
            let v: serde_json::Value = serde_json::from_str(p.document).unwrap();
            assert_eq!(v["Version"], "2012-10-17", "{}", p.name);
            // Enforcement compiles them as AWS stores them; all but four also pass the rules for
            // customers' policies (AWS's root-task policies name `arn:aws:iam::*:root`, one names
            // an S3 Access Grants ARN with a region wildcard).
            if let Err(e) = rampart_policy::Policy::parse_stored(p.document, rampart_policy::PolicyType::Identity) {
                panic!("{}: {}", p.name, e.message);
            }
            if rampart_policy::Policy::parse(p.document, rampart_policy::PolicyType::Identity).is_err() {
                refused.push(p.name);
            }
            assert_eq!(by_arn(&p.arn).unwrap().name, p.name);
            assert_eq!(p.id.len(), 21);
            assert!(p.id.starts_with("ANPA"), "{}", p.id);
        }
        assert!(refused.len() <= 4, "{refused:?}");
        assert!(all.windows(2).all(|w| w[0].key < w[1].key), "sorted by key, no duplicates");
        for (name, _) in DESCRIPTIONS {
            assert!(all.iter().any(|p| p.name == *name && !p.description.is_empty()), "{name}");
        }
        assert_eq!(by_arn("arn:aws:iam::aws:policy/AdministratorAccess").unwrap().id, "ANPAIWMBCKSKIEE64ZLYK");
        for arn in [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "arn:aws:iam::aws:policy/AWSLambdaExecute",
            "arn:aws:iam::aws:policy/AWSSupportAccess",
            "arn:aws:iam::aws:policy/AWSCloudShellFullAccess",
            "arn:aws:iam::aws:policy/aws-service-role/CertificateManagerServiceRolePolicy",
        ] {
            assert!(by_arn(arn).is_some(), "{arn}");
        }
    }

    #[test]
    fn paging_starts_after_the_marker() {
        let all = all();
        assert_eq!(after(None).len(), all.len());
        let mid = &all[100];
        let rest = after(Some(&mid.key));
        assert_eq!(rest.len(), all.len() - 101);
        assert_eq!(rest[0].key, all[101].key);
        assert!(after(Some("~")).is_empty());
    }
}
