//! IAM's typed errors and their one mapping to AWS error shapes.

use rampart_protocol::AwsError;
use rampart_store::StoreError;

/// Everything an IAM operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// `NoSuchEntity` (404).
    #[error("{0}")]
    NoSuchEntity(String),
    /// `EntityAlreadyExists` (409).
    #[error("{0}")]
    AlreadyExists(String),
    /// `LimitExceeded` (409).
    #[error("{0}")]
    LimitExceeded(String),
    /// `DeleteConflict` (409).
    #[error("{0}")]
    DeleteConflict(String),
    /// `MalformedPolicyDocument` (400), message from the policy engine.
    #[error("{0}")]
    MalformedPolicy(String),
    /// `InvalidInput` (400).
    #[error("{0}")]
    InvalidInput(String),
    /// `PolicyNotAttachable` (400).
    #[error("{0}")]
    NotAttachable(String),
    /// `UnmodifiableEntity` (400).
    #[error("{0}")]
    Unmodifiable(String),
    /// Already an AWS-shaped error (validation, access denied, …).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A storage failure: our fault, 500.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value that cannot be used (e.g. a sealed secret that does not open).
    #[error("{0}")]
    Internal(String),
}

impl IamError {
    /// `LimitExceeded` for an account or entity quota, in IAM's words.
    pub fn quota(name: &str, max: usize) -> Self {
        IamError::LimitExceeded(format!("Cannot exceed quota for {name}: {max}"))
    }
}

impl From<IamError> for AwsError {
    fn from(e: IamError) -> Self {
        match e {
            IamError::NoSuchEntity(m) => AwsError::new("NoSuchEntity", m, 404),
            IamError::AlreadyExists(m) => AwsError::new("EntityAlreadyExists", m, 409),
            IamError::LimitExceeded(m) => AwsError::new("LimitExceeded", m, 409),
            IamError::DeleteConflict(m) => AwsError::new("DeleteConflict", m, 409),
            IamError::MalformedPolicy(m) => AwsError::new("MalformedPolicyDocument", m, 400),
            IamError::InvalidInput(m) => AwsError::invalid_input(m),
            IamError::NotAttachable(m) => AwsError::new("PolicyNotAttachable", m, 400),
            IamError::Unmodifiable(m) => AwsError::new("UnmodifiableEntity", m, 400),
            IamError::Aws(e) => e,
            IamError::Store(e) => {
                tracing::error!(error = %e, "iam store failure");
                AwsError::new("ServiceFailure", "Request processing has failed due to an internal error.", 500)
            }
            IamError::Internal(m) => {
                tracing::error!(error = %m, "iam internal failure");
                AwsError::new("ServiceFailure", "Request processing has failed due to an internal error.", 500)
            }
        }
    }
}

impl From<rampart_policy::PolicyError> for IamError {
    fn from(e: rampart_policy::PolicyError) -> Self {
        IamError::MalformedPolicy(e.message)
    }
}

pub type Result<T, E = IamError> = std::result::Result<T, E>;
