//! STS (awsQuery, API version 2011-06-15). For now: GetCallerIdentity.

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::{AwsError, Protocol};
use rampart_service::{AuthzPlan, Input, Output, RequestContext, Service};

const OPERATIONS: &[&str] = &["GetCallerIdentity"];

/// The STS service.
#[derive(Default)]
pub struct StsService;

impl Service for StsService {
    fn signing_name(&self) -> &'static str {
        "sts"
    }

    fn event_source(&self) -> &'static str {
        "sts.amazonaws.com"
    }

    fn protocol(&self) -> Protocol {
        Protocol::AwsQuery
    }

    fn xml_namespace(&self) -> &'static str {
        "https://sts.amazonaws.com/doc/2011-06-15/"
    }

    fn has_operation(&self, operation: &str) -> bool {
        OPERATIONS.contains(&operation)
    }

    fn authorize(&self, _ctx: &RequestContext, operation: &str, _input: &Input) -> Result<AuthzPlan, AwsError> {
        match operation {
            // AWS always allows GetCallerIdentity, even under an explicit deny.
            "GetCallerIdentity" => Ok(AuthzPlan::AlwaysAllowed),
            other => Err(AwsError::invalid_action("sts", other)),
        }
    }

    fn invoke(&self, ctx: &RequestContext, operation: &str, _input: &Input) -> Result<Output, AwsError> {
        match operation {
            "GetCallerIdentity" => {
                let c = &ctx.caller;
                let mut w = XmlWriter::new();
                w.elem("UserId", &c.principal_id).elem("Account", &c.account_id).elem("Arn", &c.arn);
                Ok(Output::Xml(Some(w.finish())))
            }
            other => Err(AwsError::invalid_action("sts", other)),
        }
    }
}
