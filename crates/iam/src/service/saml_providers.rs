//! SAML 2.0 identity providers: Create/Get/List/Update/Delete and tags. The metadata document is
//! checked to be XML rooted at a SAML `EntityDescriptor`; its `validUntil` becomes `ValidUntil`.
//! AssumeRoleWithSAML (crates/iam/src/sts/saml.rs) verifies responses with the signing
//! certificates of these providers' metadata.

use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::users::tag_page;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, remove_tags, request_tags, resource_tags, xml, Core,
};
use crate::certs::parse_saml_metadata;
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::Tag;
use crate::util::{iso8601, now};
use crate::validate::{self as v, Args};

/// `{account}/{name}` → [`SamlProviderRec`].
pub const TABLE: &str = "iam_saml_providers";
/// AWS's default quota: SAML providers per account.
const MAX_PER_ACCOUNT: usize = 100;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SamlProviderRec {
    pub name: String,
    pub uuid: String,
    pub created: i64,
    pub metadata: String,
    #[serde(default)]
    pub valid_until: Option<i64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl SamlProviderRec {
    fn arn(&self, acct: &str) -> String {
        format!("arn:aws:iam::{acct}:saml-provider/{}", self.name)
    }
}

/// The provider name of an ARN in `acct`.
fn name_of_arn<'a>(acct: &str, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (a, res) = rest.split_once(':')?;
    (a == acct).then_some(())?;
    res.strip_prefix("saml-provider/").filter(|n| !n.is_empty() && !n.contains('/'))
}

fn store_key(acct: &str, name: &str) -> String {
    format!("{acct}/{name}")
}

fn no_such(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Manifest not found for arn {arn}"))
}

fn bad_metadata() -> IamError {
    IamError::InvalidInput("Could not parse metadata".into())
}

/// The provider named by `arn`.
pub fn get(core: &Core, acct: &str, arn: &str) -> Result<Option<SamlProviderRec>> {
    let Some(name) = name_of_arn(acct, arn) else { return Ok(None) };
    core.db.get::<SamlProviderRec>(TABLE, &store_key(acct, name))
}

fn uuid() -> String {
    use rand::Rng;
    let b: [u8; 16] = rand::rng().random();
    let h = crate::util::to_hex(&b);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default();
    format!("{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..h.len()))
}

/// Read-modify-write of one provider.
fn update(core: &Core, acct: &str, arn: &str, f: impl FnOnce(&mut SamlProviderRec) -> Result<()>) -> Result<()> {
    let name = name_of_arn(acct, arn).ok_or_else(|| no_such(arn))?;
    let key = store_key(acct, name);
    core.db.write(acct, |tx| {
        let mut p = tx.get::<SamlProviderRec>(TABLE, &key)?.ok_or_else(|| no_such(arn))?;
        f(&mut p)?;
        tx.put(TABLE, &key, &p)
    })
}

/// `iam:{action}` on the provider (with its tags when it exists), and the provider.
fn provider_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    arn: &str,
) -> Result<(AuthzCheck, Option<SamlProviderRec>)> {
    let p = get(core, account(ctx), arn)?;
    let c = match &p {
        Some(p) => resource_tags(check(action, arn), &p.tags, false),
        None => check(action, arn),
    };
    Ok((c, p))
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateSAMLProvider>(),
    op::<Core, GetSAMLProvider>(),
    op::<Core, ListSAMLProviders>(),
    op::<Core, UpdateSAMLProvider>(),
    op::<Core, DeleteSAMLProvider>(),
    op::<Core, TagSAMLProvider>(),
    op::<Core, UntagSAMLProvider>(),
    op::<Core, ListSAMLProviderTags>(),
];

pub struct CreateSAMLProvider {
    metadata: String,
    name: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for CreateSAMLProvider {
    const NAME: &'static str = "CreateSAMLProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let metadata = a.req("SAMLMetadataDocument", &v::SAML_METADATA).to_string();
        let name = a.req("Name", &v::SAML_NAME).to_string();
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(CreateSAMLProvider { metadata, name, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let arn = format!("arn:aws:iam::{}:saml-provider/{}", account(ctx), self.name);
        one(request_tags(check(Self::NAME, arn), &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        check_new_tags(&self.tags)?;
        let meta = parse_saml_metadata(&self.metadata).ok_or_else(bad_metadata)?;
        let name = self.name;
        let rec = SamlProviderRec {
            name: name.clone(),
            uuid: uuid(),
            created: now(),
            metadata: self.metadata,
            valid_until: meta.valid_until,
            tags: self.tags,
        };
        core.db.write(acct, |tx| {
            let key = store_key(acct, &name);
            let exists = || IamError::AlreadyExists(format!("SAMLProvider {name} already exists"));
            tx.insert_new(TABLE, acct, &key, &rec, exists, ("SamlProvidersPerAccount", MAX_PER_ACCOUNT))
        })?;
        let mut w = XmlWriter::new();
        w.elem("SAMLProviderArn", &rec.arn(acct));
        super::xml::tags(&mut w, &rec.tags);
        xml(w.finish())
    }
}

pub struct GetSAMLProvider {
    arn: String,
    /// The provider the plan read.
    provider: Option<SamlProviderRec>,
}

impl Operation<Core> for GetSAMLProvider {
    const NAME: &'static str = "GetSAMLProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("SAMLProviderArn", &v::ARN).to_string();
        a.finish()?;
        Ok(GetSAMLProvider { arn, provider: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, p) = provider_check(core, ctx, Self::NAME, &self.arn)?;
        self.provider = p;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let p = self.provider.ok_or_else(|| no_such(&self.arn))?;
        let mut w = XmlWriter::new();
        w.elem("SAMLProviderUUID", &p.uuid)
            .elem("SAMLMetadataDocument", &p.metadata)
            .elem("CreateDate", &iso8601(p.created));
        if let Some(t) = p.valid_until {
            w.elem("ValidUntil", &iso8601(t));
        }
        super::xml::tags(&mut w, &p.tags);
        w.elem("AssertionEncryptionMode", "Allowed");
        xml(w.finish())
    }
}

pub struct ListSAMLProviders;

impl Operation<Core> for ListSAMLProviders {
    const NAME: &'static str = "ListSAMLProviders";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(ListSAMLProviders)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let list = core.db.scan::<SamlProviderRec>(TABLE, &format!("{acct}/"))?;
        let mut w = XmlWriter::new();
        w.start("SAMLProviderList");
        for (_, p) in &list {
            w.start("member").elem("Arn", &p.arn(acct));
            if let Some(t) = p.valid_until {
                w.elem("ValidUntil", &iso8601(t));
            }
            w.elem("CreateDate", &iso8601(p.created)).end();
        }
        w.end();
        xml(w.finish())
    }
}

pub struct UpdateSAMLProvider {
    arn: String,
    metadata: Option<String>,
    /// Whether assertion encryption was asked for, which this server refuses.
    encryption: bool,
}

impl Operation<Core> for UpdateSAMLProvider {
    const NAME: &'static str = "UpdateSAMLProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let arn = a.req("SAMLProviderArn", &v::ARN).to_string();
        let metadata = a.opt("SAMLMetadataDocument", &v::SAML_METADATA).map(str::to_string);
        a.finish()?;
        let encryption =
            ["AssertionEncryptionMode", "AddPrivateKey", "RemovePrivateKey"].iter().any(|k| q.get(k).is_some());
        Ok(UpdateSAMLProvider { arn, metadata, encryption })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        if self.encryption {
            return Err(IamError::InvalidInput(
                "Assertion encryption (AssertionEncryptionMode, AddPrivateKey, RemovePrivateKey) is not supported by this server.".into(),
            ));
        }
        let meta = self.metadata.as_deref().map(|d| parse_saml_metadata(d).ok_or_else(bad_metadata)).transpose()?;
        let mut out = String::new();
        update(core, acct, &self.arn, |p| {
            if let (Some(d), Some(m)) = (self.metadata, meta) {
                p.metadata = d;
                p.valid_until = m.valid_until;
            }
            out = p.arn(acct);
            Ok(())
        })?;
        let mut w = XmlWriter::new();
        w.elem("SAMLProviderArn", &out);
        xml(w.finish())
    }
}

pub struct DeleteSAMLProvider {
    arn: String,
}

impl Operation<Core> for DeleteSAMLProvider {
    const NAME: &'static str = "DeleteSAMLProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("SAMLProviderArn", &v::ARN).to_string();
        a.finish()?;
        Ok(DeleteSAMLProvider { arn })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let arn = &self.arn;
        let name = name_of_arn(acct, arn).ok_or_else(|| no_such(arn))?;
        core.db.write(acct, |tx| if tx.delete(TABLE, &store_key(acct, name))? { Ok(()) } else { Err(no_such(arn)) })?;
        empty()
    }
}

pub struct TagSAMLProvider {
    arn: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for TagSAMLProvider {
    const NAME: &'static str = "TagSAMLProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("SAMLProviderArn", &v::ARN).to_string();
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(TagSAMLProvider { arn, tags })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(request_tags(provider_check(core, ctx, Self::NAME, &self.arn)?.0, &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_new_tags(&self.tags)?;
        update(core, account(ctx), &self.arn, |p| merge_tags(&mut p.tags, self.tags))?;
        empty()
    }
}

pub struct UntagSAMLProvider {
    arn: String,
    keys: Vec<String>,
}

impl Operation<Core> for UntagSAMLProvider {
    const NAME: &'static str = "UntagSAMLProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("SAMLProviderArn", &v::ARN).to_string();
        let keys = a.tag_keys("TagKeys").into_iter().map(str::to_string).collect();
        a.finish()?;
        Ok(UntagSAMLProvider { arn, keys })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        update(core, account(ctx), &self.arn, |p| {
            remove_tags(&mut p.tags, &keys);
            Ok(())
        })?;
        empty()
    }
}

pub struct ListSAMLProviderTags {
    arn: String,
    marker: Option<String>,
    max: usize,
    /// The provider the plan read.
    provider: Option<SamlProviderRec>,
}

impl Operation<Core> for ListSAMLProviderTags {
    const NAME: &'static str = "ListSAMLProviderTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("SAMLProviderArn", &v::ARN).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListSAMLProviderTags { arn, marker, max, provider: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, p) = provider_check(core, ctx, Self::NAME, &self.arn)?;
        self.provider = p;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let p = self.provider.ok_or_else(|| no_such(&self.arn))?;
        tag_page(p.tags, self.marker.as_deref(), self.max)
    }
}
