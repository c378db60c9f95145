//! Amazon Resource Names.

use std::fmt;

/// A parsed ARN: `arn:partition:service:region:account-id:resource`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account_id: String,
    pub resource: String,
}

/// The string was not an ARN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid ARN: {0}")]
pub struct ArnError(pub String);

impl Arn {
    /// Parse an ARN; the resource part may itself contain `:`.
    pub fn parse(s: &str) -> Result<Arn, ArnError> {
        let mut parts = s.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ArnError(s.to_string()));
        };
        if partition.is_empty() || service.is_empty() {
            return Err(ArnError(s.to_string()));
        }
        Ok(Arn {
            partition: partition.to_string(),
            service: service.to_string(),
            region: region.to_string(),
            account_id: account.to_string(),
            resource: resource.to_string(),
        })
    }
}

/// The AWS partition a region belongs to (`cn-north-1` → `aws-cn`, `us-gov-west-1` → `aws-us-gov`,
/// `us-iso-east-1` → `aws-iso`, `us-isob-east-1` → `aws-iso-b`); anything else is `aws`.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// ARNs as a caller of another partition sees them: Rampart keeps every ARN in the `aws` partition
/// and translates at the edge for requests signed for a region of `partition` (see docs/sts.md).
pub fn to_partition(text: &str, partition: &str) -> String {
    if partition == "aws" {
        return text.to_string();
    }
    text.replace("arn:aws:", &format!("arn:{partition}:")).replace("arn%3Aaws%3A", &format!("arn%3A{partition}%3A"))
}

/// The inverse of [`to_partition`]: `partition`'s ARNs in a request, as Rampart stores them.
pub fn from_partition(text: &str, partition: &str) -> String {
    if partition == "aws" {
        return text.to_string();
    }
    text.replace(&format!("arn:{partition}:"), "arn:aws:")
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:{}:{}:{}:{}", self.partition, self.service, self.region, self.account_id, self.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_by_region() {
        assert_eq!(partition_of_region("us-east-1"), "aws");
        assert_eq!(partition_of_region("eu-west-3"), "aws");
        assert_eq!(partition_of_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_of_region("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("us-iso-east-1"), "aws-iso");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
        let doc = "<Arn>arn:aws:iam::123456789012:user/a</Arn><Doc>arn%3Aaws%3Aiam%3A%3A1%3Aroot</Doc>";
        let cn = to_partition(doc, "aws-cn");
        assert_eq!(cn, "<Arn>arn:aws-cn:iam::123456789012:user/a</Arn><Doc>arn%3Aaws-cn%3Aiam%3A%3A1%3Aroot</Doc>");
        assert_eq!(
            from_partition("arn:aws-cn:iam::1:role/r arn:aws:s3:::b", "aws-cn"),
            "arn:aws:iam::1:role/r arn:aws:s3:::b"
        );
        // aws-iso is not a prefix match of aws-iso-b.
        assert_eq!(from_partition("arn:aws-iso-b:iam::1:root", "aws-iso"), "arn:aws-iso-b:iam::1:root");
        assert_eq!(to_partition(doc, "aws"), doc);
    }

    #[test]
    fn round_trips() {
        let a = Arn::parse("arn:aws:iam::123456789012:user/path/alice").unwrap();
        assert_eq!(a.service, "iam");
        assert_eq!(a.account_id, "123456789012");
        assert_eq!(a.resource, "user/path/alice");
        assert_eq!(a.to_string(), "arn:aws:iam::123456789012:user/path/alice");
        let k = Arn::parse("arn:aws:kms:us-east-1:1:key/abc:def").unwrap();
        assert_eq!(k.resource, "key/abc:def");
        assert!(Arn::parse("nope").is_err());
        assert!(Arn::parse("arn:aws").is_err());
    }
}
