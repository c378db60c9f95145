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

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:{}:{}:{}:{}", self.partition, self.service, self.region, self.account_id, self.resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
