//! Secrets Manager's errors, mapped to AWS's codes and statuses at the edge.

use rampart_protocol::AwsError;
use rampart_store::StoreError;

/// AWS's message for a secret that does not exist (or that the caller may not know exists).
pub const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
/// AWS's message for operations on a secret scheduled for deletion.
pub const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";

#[derive(Debug, thiserror::Error)]
pub enum SmError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    PublicPolicy(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl SmError {
    pub fn not_found() -> Self {
        SmError::NotFound(NOT_FOUND.into())
    }
    /// AWS's refusal of a change made through a replica.
    pub fn replica() -> Self {
        SmError::InvalidParameter(
            "Operation not permitted on a replica secret. Call must be made in primary secret's region.".into(),
        )
    }
    pub fn deleted() -> Self {
        SmError::InvalidRequest(MARKED_FOR_DELETION.into())
    }
}

impl From<StoreError> for SmError {
    fn from(e: StoreError) -> Self {
        SmError::Internal(e.to_string())
    }
}

impl From<SmError> for AwsError {
    fn from(e: SmError) -> Self {
        match e {
            SmError::NotFound(m) => AwsError::new("ResourceNotFoundException", m, 400),
            SmError::InvalidRequest(m) => AwsError::new("InvalidRequestException", m, 400),
            SmError::InvalidParameter(m) => AwsError::new("InvalidParameterException", m, 400),
            SmError::Exists(m) => AwsError::new("ResourceExistsException", m, 400),
            SmError::Validation(m) => AwsError::new("ValidationException", m, 400),
            SmError::LimitExceeded(m) => AwsError::new("LimitExceededException", m, 400),
            SmError::MalformedPolicy(m) => AwsError::new("MalformedPolicyDocumentException", m, 400),
            SmError::PublicPolicy(m) => AwsError::new("PublicPolicyException", m, 400),
            SmError::InvalidNextToken(m) => AwsError::new("InvalidNextTokenException", m, 400),
            SmError::Aws(e) => e,
            SmError::Internal(m) => {
                tracing::error!(error = %m, "secretsmanager internal error");
                AwsError::new("InternalServiceError", "An error occurred on the server side.", 500)
            }
        }
    }
}

pub type Result<T, E = SmError> = std::result::Result<T, E>;
