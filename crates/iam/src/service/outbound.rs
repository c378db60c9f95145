//! Outbound web identity federation: EnableOutboundWebIdentityFederation,
//! DisableOutboundWebIdentityFederation, GetOutboundWebIdentityFederationInfo (the issuer and its
//! keys: crate::outbound; the tokens: STS GetWebIdentityToken).

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::{account, check, empty, one, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::outbound::{self, OutboundRec, ISSUERS, TABLE};
use crate::validate::Args;

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, EnableOutboundWebIdentityFederation>(),
    op::<Core, DisableOutboundWebIdentityFederation>(),
    op::<Core, GetOutboundWebIdentityFederationInfo>(),
];

/// `FeatureEnabled` (409), as IAM's API reference lists it.
fn feature_enabled() -> IamError {
    IamError::Aws(AwsError::new(
        "FeatureEnabled",
        "Outbound identity federation is already enabled for your AWS account.",
        409,
    ))
}

/// `FeatureDisabled` (404).
fn feature_disabled() -> IamError {
    IamError::Aws(AwsError::new(
        "FeatureDisabled",
        "Outbound identity federation is disabled for your AWS account.",
        404,
    ))
}

fn no_input(input: &Input) -> Result<()> {
    Args::new(input.query()).finish()?;
    Ok(())
}

pub struct EnableOutboundWebIdentityFederation;

impl Operation<Core> for EnableOutboundWebIdentityFederation {
    const NAME: &'static str = "EnableOutboundWebIdentityFederation";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        no_input(input)?;
        Ok(EnableOutboundWebIdentityFederation)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let now = ctx.time.unix_timestamp();
        // Keys are generated outside the transaction (RSA key generation takes a moment), and
        // only used when the account has none yet.
        let existing = outbound::get(&core.db, acct)?;
        if existing.as_ref().is_some_and(|r| r.enabled) {
            return Err(feature_enabled());
        }
        let fresh = match existing {
            Some(_) => None,
            None => Some(outbound::generate(&core.sealer, acct, now)?),
        };
        let rec = core.db.write(acct, |tx| {
            let rec = match tx.get::<OutboundRec>(TABLE, acct)? {
                Some(r) if r.enabled => return Err(feature_enabled()),
                Some(r) => OutboundRec { enabled: true, ..r },
                None => {
                    let r = fresh.clone().ok_or_else(|| IamError::Internal("outbound keys vanished".into()))?;
                    tx.put(ISSUERS, &r.issuer_id, &acct.to_string())?;
                    r
                }
            };
            tx.put(TABLE, acct, &rec)?;
            Ok(rec)
        })?;
        let mut w = XmlWriter::new();
        w.elem("IssuerIdentifier", &rec.issuer(&core.public_url()));
        xml(w.finish())
    }
}

pub struct DisableOutboundWebIdentityFederation;

impl Operation<Core> for DisableOutboundWebIdentityFederation {
    const NAME: &'static str = "DisableOutboundWebIdentityFederation";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        no_input(input)?;
        Ok(DisableOutboundWebIdentityFederation)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            let Some(rec) = tx.get::<OutboundRec>(TABLE, acct)?.filter(|r| r.enabled) else {
                return Err(feature_disabled());
            };
            // The issuer and its keys stay published: tokens already issued still verify.
            tx.put(TABLE, acct, &OutboundRec { enabled: false, ..rec })
        })?;
        empty()
    }
}

pub struct GetOutboundWebIdentityFederationInfo;

impl Operation<Core> for GetOutboundWebIdentityFederationInfo {
    const NAME: &'static str = "GetOutboundWebIdentityFederationInfo";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        no_input(input)?;
        Ok(GetOutboundWebIdentityFederationInfo)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    /// An account that never enabled the feature has no issuer: FeatureDisabled. Once enabled,
    /// the issuer is reported with whether tokens are issued now.
    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let rec = outbound::get(&core.db, account(ctx))?.ok_or_else(feature_disabled)?;
        let mut w = XmlWriter::new();
        w.elem("IssuerIdentifier", &rec.issuer(&core.public_url()));
        w.bool("JwtVendingEnabled", rec.enabled);
        xml(w.finish())
    }
}
