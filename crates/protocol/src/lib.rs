//! AWS wire protocols at the edge of Rampart.
//!
//! * [`error`]: one AWS-shaped error type and its rendering for every protocol.
//! * [`query`]: the awsQuery form decoding (`Name.member.N`, `Name.entry.N.key`).
//! * [`xml`]: a small XML writer for awsQuery responses.
//! * [`sigv4`]: Signature Version 4 verification (header and presigned query).
//! * [`arn`]: ARN parsing and formatting.
//! * [`id`]: random identifiers in AWS's UUID form.

pub mod arn;
pub mod error;
pub mod id;
mod json_targets;
pub mod query;
pub mod sigv4;
pub mod xml;

pub use error::{echo, AwsError, JsonMessage};
pub use id::new_uuid;

/// The `X-Amz-Target` prefix botocore sends for the awsJson service `model` (botocore's model
/// name: `kms`, `cloudtrail`), from the generated table of every JSON-protocol service.
pub fn json_target_prefix(model: &str) -> Option<&'static str> {
    json_targets::JSON_TARGETS.iter().find(|(m, _, _)| *m == model).map(|(_, p, _)| *p)
}

/// Whether `prefix` (the part of an `X-Amz-Target` before the operation) names the service whose
/// botocore prefix is `model_prefix`: botocore's own, or the Smithy service shape name the
/// Smithy-generated SDKs send (its last dot-separated segment), as AWS accepts both.
pub fn json_target_matches(model_prefix: &str, prefix: &str) -> bool {
    prefix == model_prefix || model_prefix.rsplit('.').next() == Some(prefix)
}

/// The wire protocol a service speaks (the botocore `metadata.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Form-encoded requests, XML responses (IAM, STS).
    AwsQuery,
    /// JSON bodies routed by `X-Amz-Target`, content type `application/x-amz-json-1.0`.
    AwsJson1_0,
    /// JSON bodies routed by `X-Amz-Target`, content type `application/x-amz-json-1.1`.
    AwsJson1_1,
    /// REST routes with JSON bodies.
    RestJson1,
}

impl Protocol {
    /// The response `Content-Type` for this protocol.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::AwsQuery => "text/xml",
            Protocol::AwsJson1_0 => "application/x-amz-json-1.0",
            Protocol::AwsJson1_1 => "application/x-amz-json-1.1",
            Protocol::RestJson1 => "application/json",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_targets_accept_botocore_and_smithy_prefixes() {
        let ct = json_target_prefix("cloudtrail").unwrap();
        assert_eq!(ct, "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101");
        assert!(json_target_matches(ct, ct));
        assert!(json_target_matches(ct, "CloudTrail_20131101"));
        assert!(!json_target_matches(ct, "v20131101.CloudTrail_20131101"));
        assert!(!json_target_matches(ct, "TrentService"));
        assert_eq!(json_target_prefix("kms"), Some("TrentService"));
        assert!(json_target_matches("TrentService", "TrentService"));
        assert_eq!(json_target_prefix("organizations"), Some("AWSOrganizationsV20161128"));
        assert_eq!(json_target_prefix("secretsmanager"), Some("secretsmanager"));
        assert_eq!(json_target_prefix("iam"), None, "awsQuery services have none");
    }
}
