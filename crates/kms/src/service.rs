//! KMS on the request pipeline: awsJson1_1, `X-Amz-Target: TrentService.<Operation>`.

use std::sync::Arc;

use rampart_service::{AuthzPlan, AwsError, Input, Output, Protocol, RequestContext, Service};

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

    fn json_target_prefix(&self) -> &'static str {
        "TrentService"
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    fn authorize(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        let checks = self.kms.plan(ctx, operation, input.json())?;
        Ok(if checks.is_empty() { AuthzPlan::AlwaysAllowed } else { AuthzPlan::Checks(checks) })
    }

    fn invoke(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<Output, AwsError> {
        Ok(Output::Json(self.kms.exec(ctx, operation, input.json())?))
    }
}
