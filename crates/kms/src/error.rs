//! KMS's typed errors and their AWS shapes.

use rampart_protocol::AwsError;
use rampart_store::StoreError;

use crate::crypto::CryptoError;

/// Every way a KMS call fails. [`AwsError::from`] gives AWS's code and status. `Clone`: an input
/// error read at parse time and reported by planning is kept for the run too.
#[derive(Clone, Debug, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    MalformedPolicy(String),
    /// AWS's answer to a reserved `alias/aws/` name (no message).
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidMarker(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    InvalidMac(String),
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    InvalidGrantId(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Tag(String),
    #[error("{0}")]
    DryRun(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    ExpiredImportToken(String),
    #[error("{0}")]
    InvalidImportToken(String),
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    /// The custom key store errors (`CustomKeyStoreNotFoundException`, `XksKeyNotFoundException`,
    /// `DependencyTimeoutException`, …): AWS's code and HTTP status.
    #[error("{2}")]
    Coded(&'static str, u16, String),
    #[error(transparent)]
    Aws(AwsError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = KmsError> = std::result::Result<T, E>;

impl From<StoreError> for KmsError {
    fn from(e: StoreError) -> Self {
        KmsError::Internal(e.to_string())
    }
}

impl From<AwsError> for KmsError {
    fn from(e: AwsError) -> Self {
        KmsError::Aws(e)
    }
}

impl From<KmsError> for AwsError {
    fn from(e: KmsError) -> Self {
        let (code, status) = match &e {
            KmsError::NotFound(_) => ("NotFoundException", 400),
            KmsError::Disabled(_) => ("DisabledException", 400),
            KmsError::InvalidState(_) => ("KMSInvalidStateException", 400),
            KmsError::InvalidCiphertext(_) => ("InvalidCiphertextException", 400),
            KmsError::IncorrectKey(_) => ("IncorrectKeyException", 400),
            KmsError::InvalidKeyUsage(_) => ("InvalidKeyUsageException", 400),
            KmsError::Validation(_) => ("ValidationException", 400),
            KmsError::AlreadyExists(_) => ("AlreadyExistsException", 400),
            KmsError::InvalidAliasName(_) => ("InvalidAliasNameException", 400),
            KmsError::MalformedPolicy(_) => ("MalformedPolicyDocumentException", 400),
            KmsError::NotAuthorized(_) => ("NotAuthorizedException", 400),
            KmsError::Unsupported(_) => ("UnsupportedOperationException", 400),
            KmsError::InvalidArn(_) => ("InvalidArnException", 400),
            KmsError::InvalidMarker(_) => ("InvalidMarkerException", 400),
            KmsError::InvalidSignature(_) => ("KMSInvalidSignatureException", 400),
            KmsError::InvalidMac(_) => ("KMSInvalidMacException", 400),
            KmsError::InvalidGrantToken(_) => ("InvalidGrantTokenException", 400),
            KmsError::InvalidGrantId(_) => ("InvalidGrantIdException", 400),
            KmsError::LimitExceeded(_) => ("LimitExceededException", 400),
            KmsError::Tag(_) => ("TagException", 400),
            KmsError::DryRun(_) => ("DryRunOperationException", 400),
            KmsError::AccessDenied(_) => ("AccessDeniedException", 400),
            KmsError::Serialization(_) => ("SerializationException", 400),
            KmsError::ExpiredImportToken(_) => ("ExpiredImportTokenException", 400),
            KmsError::InvalidImportToken(_) => ("InvalidImportTokenException", 400),
            KmsError::IncorrectKeyMaterial(_) => ("IncorrectKeyMaterialException", 400),
            KmsError::Coded(code, status, _) => (*code, *status),
            KmsError::Aws(a) => return a.clone(),
            KmsError::Internal(m) => {
                tracing::error!(error = %m, "kms internal error");
                return AwsError::new("KMSInternalException", "An internal error occurred.", 500);
            }
        };
        AwsError::new(code, e.to_string(), status)
    }
}

impl From<CryptoError> for KmsError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::InvalidCiphertext => KmsError::InvalidCiphertext(String::new()),
            CryptoError::InvalidSignature => KmsError::InvalidSignature(String::new()),
            CryptoError::Invalid(m) => KmsError::Validation(m),
            CryptoError::Corrupt => KmsError::Internal("stored key material is corrupt".into()),
        }
    }
}
