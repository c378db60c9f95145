//! KMS on the request pipeline: awsJson1_1, `X-Amz-Target: TrentService.<Operation>`.

use std::sync::Arc;

use rampart_service::{AuthzPlan, AwsError, Decide, Input, Output, Protocol, RequestContext, Service};

use crate::core::Kms;
use crate::ops::OPERATIONS;

/// The pipeline service over a [`Kms`].
pub struct KmsService {
    kms: Arc<Kms>,
}

impl KmsService {
    pub fn new(kms: Arc<Kms>) -> Self {
        KmsService { kms }
    }
}

impl Service for KmsService {
    fn signing_name(&self) -> &'static str {
        "kms"
    }

    fn event_source(&self) -> &'static str {
        "kms.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsJson1_1
    }

    /// Encrypt, Decrypt, GenerateDataKey… under a key in an external key store call its proxy.
    fn reads_may_call_out(&self) -> bool {
        self.kms.may_call_out()
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.has(operation)
    }

    fn operation_names(&self) -> Vec<&'static str> {
        OPERATIONS.names()
    }

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        OPERATIONS
            .plan(&self.kms, ctx, operation, input)
            .unwrap_or_else(|| Err(AwsError::unknown_operation(self.signing_name(), operation)))
    }

    /// The keys the plan loaded are the keys the call uses (one read of each per call).
    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: Decide<'_>,
    ) -> Result<Output, AwsError> {
        OPERATIONS
            .call(&self.kms, ctx, operation, input, decide)
            .unwrap_or_else(|| Err(AwsError::unknown_operation(self.signing_name(), operation)))
    }
}
