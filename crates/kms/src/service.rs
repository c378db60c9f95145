//! KMS on the request pipeline: awsJson1_1, `X-Amz-Target: TrentService.<Operation>`.

use std::sync::Arc;

use rampart_service::{AuthzPlan, AwsError, Decide, Input, Output, Protocol, RequestContext, Service};

use crate::core::Kms;
use crate::ops::{Planned, OPERATIONS};

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

    fn plan(&self, ctx: &RequestContext, operation: &str, input: &Input) -> Result<AuthzPlan, AwsError> {
        let checks = self.kms.plan(ctx, operation, input.json(), &mut Planned::default())?;
        Ok(if checks.is_empty() { AuthzPlan::AlwaysAllowed } else { AuthzPlan::Checks(checks) })
    }

    /// The keys the plan loaded are the keys the call uses (one read of each per call).
    fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &Input,
        decide: Decide<'_>,
    ) -> Result<Output, AwsError> {
        let mut planned = Planned::default();
        let checks = self.kms.plan(ctx, operation, input.json(), &mut planned)?;
        if !checks.is_empty() {
            decide(checks)?;
        }
        Ok(self.kms.exec(ctx, operation, input.json(), &planned)?)
    }
}
