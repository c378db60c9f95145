//! OpenID Connect providers: Create/Get/List/Delete, thumbprints, client IDs, tags.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzCheck, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::users::tag_page;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, remove_tags, request_tags, resource_tags, xml, Core,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::Tag;
use crate::oidc::{normalize_url, ProviderRec, PROVIDERS};
use crate::util::{iso8601, now};
use crate::validate::{self as v, Args, Spec};

const URL: Spec = Spec { min: 1, max: 255, pattern: None };
const CLIENT_ID: Spec = Spec { min: 1, max: 255, pattern: None };
const THUMBPRINT: Spec = Spec { min: 40, max: 40, pattern: None };
const MAX_PROVIDERS: usize = 100;
const MAX_CLIENT_IDS: usize = 100;
const MAX_THUMBPRINTS: usize = 5;

fn store_key(acct: &str, provider_key: &str) -> String {
    format!("{acct}/{}", provider_key.to_ascii_lowercase())
}

/// The provider key (`host/path`) of an ARN in `acct`.
fn key_of_arn<'a>(acct: &str, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (a, res) = rest.split_once(':')?;
    (a == acct).then_some(())?;
    res.strip_prefix("oidc-provider/").filter(|k| !k.is_empty())
}

fn no_such(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"))
}

/// The provider named by `arn` in `acct`.
pub fn get(core: &Core, acct: &str, arn: &str) -> Result<Option<ProviderRec>> {
    let Some(key) = key_of_arn(acct, arn) else { return Ok(None) };
    core.db.get::<ProviderRec>(PROVIDERS, &store_key(acct, key))
}

/// The provider of an issuer URL (`iss`) in `acct`.
pub fn by_issuer(core: &Core, acct: &str, issuer: &str) -> Result<Option<ProviderRec>> {
    let Ok(url) = normalize_url(issuer) else { return Ok(None) };
    Ok(core
        .db
        .get::<ProviderRec>(PROVIDERS, &store_key(acct, crate::oidc::provider_key(&url)))?
        .filter(|p| p.url == url))
}

fn thumbprints(a: &mut Args<'_>, required: bool) -> Vec<String> {
    let list: Vec<String> =
        a.list("ThumbprintList", &THUMBPRINT, None, required).iter().map(|s| s.to_string()).collect();
    list
}

/// `ClientIDList` without repeats, in order. At most [`MAX_CLIENT_IDS`] distinct IDs: counted
/// first, in one pass that stops at the first ID over the quota, so a huge list is refused (before
/// authorization, by the plan) without per-ID work.
fn client_id_list(q: &QueryParams) -> Result<Vec<&str>> {
    let items = q.list("ClientIDList.member");
    let mut seen = std::collections::HashSet::with_capacity(items.len().min(MAX_CLIENT_IDS + 1));
    let mut out = Vec::with_capacity(items.len().min(MAX_CLIENT_IDS));
    for c in items {
        if seen.insert(c) {
            if out.len() == MAX_CLIENT_IDS {
                return Err(IamError::quota("ClientIdsPerOpenIdConnectProvider", MAX_CLIENT_IDS));
            }
            out.push(c);
        }
    }
    Ok(out)
}

fn check_thumbprints(list: &[String]) -> Result<()> {
    if list.len() > MAX_THUMBPRINTS {
        return Err(IamError::InvalidInput(format!(
            "Thumbprint list must contain fewer than {} entries",
            MAX_THUMBPRINTS + 1
        )));
    }
    if let Some(t) = list.iter().find(|t| !t.chars().all(|c| c.is_ascii_hexdigit())) {
        return Err(IamError::InvalidInput(format!("Thumbprint {t} is not a 40-character hex string")));
    }
    Ok(())
}

/// `iam:{action}` on the provider (with its tags when it exists), and the provider.
fn provider_check(
    core: &Core,
    ctx: &RequestContext,
    action: &str,
    arn: &str,
) -> Result<(AuthzCheck, Option<ProviderRec>)> {
    let p = get(core, account(ctx), arn)?;
    let c = match &p {
        Some(p) => resource_tags(check(action, arn), &p.tags, false),
        None => check(action, arn),
    };
    Ok((c, p))
}

/// Read-modify-write of one provider.
fn update(core: &Core, acct: &str, arn: &str, f: impl FnOnce(&mut ProviderRec) -> Result<()>) -> Result<Output> {
    let key = key_of_arn(acct, arn).ok_or_else(|| no_such(arn))?;
    let skey = store_key(acct, key);
    core.db.write(acct, |tx| {
        let mut p = tx.get::<ProviderRec>(PROVIDERS, &skey)?.ok_or_else(|| no_such(arn))?;
        f(&mut p)?;
        tx.put(PROVIDERS, &skey, &p)
    })?;
    empty()
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, CreateOpenIDConnectProvider>(),
    op::<Core, GetOpenIDConnectProvider>(),
    op::<Core, ListOpenIDConnectProviders>(),
    op::<Core, DeleteOpenIDConnectProvider>(),
    op::<Core, UpdateOpenIDConnectProviderThumbprint>(),
    op::<Core, AddClientIDToOpenIDConnectProvider>(),
    op::<Core, RemoveClientIDFromOpenIDConnectProvider>(),
    op::<Core, TagOpenIDConnectProvider>(),
    op::<Core, UntagOpenIDConnectProvider>(),
    op::<Core, ListOpenIDConnectProviderTags>(),
];

pub struct CreateOpenIDConnectProvider {
    /// Normalised (`https://host/path`).
    url: String,
    client_ids: Vec<String>,
    thumbprints: Vec<String>,
    tags: Vec<Tag>,
}

impl Operation<Core> for CreateOpenIDConnectProvider {
    const NAME: &'static str = "CreateOpenIDConnectProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let client_ids = client_id_list(q)?.into_iter().map(str::to_string).collect();
        let mut a = Args::new(q);
        let url = a.req("Url", &URL);
        a.list("ClientIDList", &CLIENT_ID, None, false);
        let thumbprints = thumbprints(&mut a, false);
        let tags = a.tags("Tags");
        a.finish()?;
        let url = normalize_url(url).map_err(IamError::InvalidInput)?;
        Ok(CreateOpenIDConnectProvider { url, client_ids, thumbprints, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let arn = format!("arn:aws:iam::{}:oidc-provider/{}", account(ctx), crate::oidc::provider_key(&self.url));
        one(request_tags(check(Self::NAME, arn), &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        check_thumbprints(&self.thumbprints)?;
        check_new_tags(&self.tags)?;
        let rec = ProviderRec {
            url: self.url,
            created: now(),
            client_ids: self.client_ids,
            thumbprints: self.thumbprints,
            tags: self.tags,
        };
        let skey = store_key(acct, rec.key());
        core.db.write(acct, |tx| {
            let exists = || IamError::AlreadyExists(format!("Provider with url {} already exists.", rec.url));
            tx.insert_new(PROVIDERS, acct, &skey, &rec, exists, ("OpenIdConnectProvidersPerAccount", MAX_PROVIDERS))
        })?;
        let mut w = XmlWriter::new();
        w.elem("OpenIDConnectProviderArn", &rec.arn(acct));
        super::xml::tags(&mut w, &rec.tags);
        xml(w.finish())
    }
}

pub struct GetOpenIDConnectProvider {
    arn: String,
    /// The provider the plan read.
    provider: Option<ProviderRec>,
}

impl Operation<Core> for GetOpenIDConnectProvider {
    const NAME: &'static str = "GetOpenIDConnectProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        a.finish()?;
        Ok(GetOpenIDConnectProvider { arn, provider: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, p) = provider_check(core, ctx, Self::NAME, &self.arn)?;
        self.provider = p;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let p = self.provider.ok_or_else(|| no_such(&self.arn))?;
        let mut w = XmlWriter::new();
        w.elem("Url", p.key());
        w.start("ClientIDList");
        for c in &p.client_ids {
            w.elem("member", c);
        }
        w.end();
        w.start("ThumbprintList");
        for t in &p.thumbprints {
            w.elem("member", t);
        }
        w.end();
        w.elem("CreateDate", &iso8601(p.created));
        super::xml::tags(&mut w, &p.tags);
        xml(w.finish())
    }
}

pub struct ListOpenIDConnectProviders;

impl Operation<Core> for ListOpenIDConnectProviders {
    const NAME: &'static str = "ListOpenIDConnectProviders";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        Args::new(input.query()).finish()?;
        Ok(ListOpenIDConnectProviders)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let list = core.db.scan::<ProviderRec>(PROVIDERS, &format!("{acct}/"))?;
        let mut w = XmlWriter::new();
        w.start("OpenIDConnectProviderList");
        for (_, p) in &list {
            w.start("member").elem("Arn", &p.arn(acct)).end();
        }
        w.end();
        xml(w.finish())
    }
}

pub struct DeleteOpenIDConnectProvider {
    arn: String,
}

impl Operation<Core> for DeleteOpenIDConnectProvider {
    const NAME: &'static str = "DeleteOpenIDConnectProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        a.finish()?;
        Ok(DeleteOpenIDConnectProvider { arn })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        // Deleting a provider that does not exist succeeds silently, as in AWS.
        if let Some(key) = key_of_arn(acct, &self.arn) {
            let skey = store_key(acct, key);
            core.db.write(acct, |tx| tx.delete(PROVIDERS, &skey).map(|_| ()))?;
        }
        empty()
    }
}

pub struct UpdateOpenIDConnectProviderThumbprint {
    arn: String,
    thumbprints: Vec<String>,
}

impl Operation<Core> for UpdateOpenIDConnectProviderThumbprint {
    const NAME: &'static str = "UpdateOpenIDConnectProviderThumbprint";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        let thumbprints = thumbprints(&mut a, true);
        a.finish()?;
        Ok(UpdateOpenIDConnectProviderThumbprint { arn, thumbprints })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_thumbprints(&self.thumbprints)?;
        update(core, account(ctx), &self.arn, |p| {
            p.thumbprints = self.thumbprints;
            Ok(())
        })
    }
}

pub struct AddClientIDToOpenIDConnectProvider {
    arn: String,
    client_id: String,
}

impl Operation<Core> for AddClientIDToOpenIDConnectProvider {
    const NAME: &'static str = "AddClientIDToOpenIDConnectProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        let client_id = a.req("ClientID", &CLIENT_ID).to_string();
        a.finish()?;
        Ok(AddClientIDToOpenIDConnectProvider { arn, client_id })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let id = self.client_id;
        update(core, account(ctx), &self.arn, |p| {
            if !p.client_ids.contains(&id) {
                if p.client_ids.len() >= MAX_CLIENT_IDS {
                    return Err(IamError::quota("ClientIdsPerOpenIdConnectProvider", MAX_CLIENT_IDS));
                }
                p.client_ids.push(id);
            }
            Ok(())
        })
    }
}

pub struct RemoveClientIDFromOpenIDConnectProvider {
    arn: String,
    client_id: String,
}

impl Operation<Core> for RemoveClientIDFromOpenIDConnectProvider {
    const NAME: &'static str = "RemoveClientIDFromOpenIDConnectProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        let client_id = a.req("ClientID", &CLIENT_ID).to_string();
        a.finish()?;
        Ok(RemoveClientIDFromOpenIDConnectProvider { arn, client_id })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        update(core, account(ctx), &self.arn, |p| {
            p.client_ids.retain(|c| *c != self.client_id);
            Ok(())
        })
    }
}

pub struct TagOpenIDConnectProvider {
    arn: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for TagOpenIDConnectProvider {
    const NAME: &'static str = "TagOpenIDConnectProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(TagOpenIDConnectProvider { arn, tags })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(request_tags(provider_check(core, ctx, Self::NAME, &self.arn)?.0, &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_new_tags(&self.tags)?;
        update(core, account(ctx), &self.arn, |p| merge_tags(&mut p.tags, self.tags))
    }
}

pub struct UntagOpenIDConnectProvider {
    arn: String,
    keys: Vec<String>,
}

impl Operation<Core> for UntagOpenIDConnectProvider {
    const NAME: &'static str = "UntagOpenIDConnectProvider";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        let keys = a.tag_keys("TagKeys").into_iter().map(str::to_string).collect();
        a.finish()?;
        Ok(UntagOpenIDConnectProvider { arn, keys })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(provider_check(core, ctx, Self::NAME, &self.arn)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        update(core, account(ctx), &self.arn, |p| {
            remove_tags(&mut p.tags, &keys);
            Ok(())
        })
    }
}

pub struct ListOpenIDConnectProviderTags {
    arn: String,
    marker: Option<String>,
    max: usize,
    /// The provider the plan read.
    provider: Option<ProviderRec>,
}

impl Operation<Core> for ListOpenIDConnectProviderTags {
    const NAME: &'static str = "ListOpenIDConnectProviderTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("OpenIDConnectProviderArn", &v::ARN).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListOpenIDConnectProviderTags { arn, marker, max, provider: None })
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
