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
pub mod query;
pub mod sigv4;
pub mod xml;

pub use error::{echo, AwsError};
pub use id::new_uuid;

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
