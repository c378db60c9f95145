//! OpenID Connect providers: Create/Get/List/Delete, thumbprints, client IDs, tags.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{AuthzPlan, Output, RequestContext};

use super::users::tag_page;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, remove_tags, request_tags, resource_tags, xml, Core,
};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::oidc::{normalize_url, ProviderRec, INVALID_URL, PROVIDERS};
use crate::util::{iso8601, now};
use crate::validate::{self as v, Args, Spec};

pub const OPS: &[&str] = &[
    "CreateOpenIDConnectProvider",
    "GetOpenIDConnectProvider",
    "ListOpenIDConnectProviders",
    "DeleteOpenIDConnectProvider",
    "UpdateOpenIDConnectProviderThumbprint",
    "AddClientIDToOpenIDConnectProvider",
    "RemoveClientIDFromOpenIDConnectProvider",
    "TagOpenIDConnectProvider",
    "UntagOpenIDConnectProvider",
    "ListOpenIDConnectProviderTags",
];

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
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
                )));
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

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    if op == "ListOpenIDConnectProviders" {
        a.finish()?;
        return one(check(op, "*"));
    }
    if op == "CreateOpenIDConnectProvider" {
        client_id_list(q)?;
        let url = a.req("Url", &URL);
        a.list("ClientIDList", &CLIENT_ID, None, false);
        thumbprints(&mut a, false);
        let tags = a.tags("Tags");
        a.finish()?;
        let url = normalize_url(url).map_err(IamError::InvalidInput)?;
        let arn = format!("arn:aws:iam::{acct}:oidc-provider/{}", crate::oidc::provider_key(&url));
        return one(request_tags(check(op, arn), &tags));
    }
    let arn = a.req("OpenIDConnectProviderArn", &v::ARN);
    let mut tags = Vec::new();
    match op {
        "UpdateOpenIDConnectProviderThumbprint" => {
            thumbprints(&mut a, true);
        }
        "AddClientIDToOpenIDConnectProvider" | "RemoveClientIDFromOpenIDConnectProvider" => {
            a.req("ClientID", &CLIENT_ID);
        }
        "TagOpenIDConnectProvider" => tags = a.tags("Tags"),
        "UntagOpenIDConnectProvider" => {
            a.list("TagKeys", &v::TAG_KEY, Some(50), true);
        }
        "ListOpenIDConnectProviderTags" => {
            a.paging();
        }
        _ => {}
    }
    a.finish()?;
    let c = match get(core, acct, arn)? {
        Some(p) => resource_tags(check(op, arn), &p.tags, false),
        None => check(op, arn),
    };
    one(request_tags(c, &tags))
}

fn provider_of(core: &Core, acct: &str, q: &QueryParams) -> Result<(String, ProviderRec)> {
    let arn = q.get("OpenIDConnectProviderArn").unwrap_or_default();
    let p = get(core, acct, arn)?.ok_or_else(|| no_such(arn))?;
    Ok((arn.to_string(), p))
}

/// Read-modify-write of one provider.
fn update(core: &Core, acct: &str, q: &QueryParams, f: impl FnOnce(&mut ProviderRec) -> Result<()>) -> Result<Output> {
    let arn = q.get("OpenIDConnectProviderArn").unwrap_or_default();
    let key = key_of_arn(acct, arn).ok_or_else(|| no_such(arn))?;
    let skey = store_key(acct, key);
    core.db.write(acct, |tx| {
        let mut p = tx.get::<ProviderRec>(PROVIDERS, &skey)?.ok_or_else(|| no_such(arn))?;
        f(&mut p)?;
        tx.put(PROVIDERS, &skey, &p)
    })?;
    empty()
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    match op {
        "CreateOpenIDConnectProvider" => {
            let mut a = Args::new(q);
            let url = normalize_url(a.req("Url", &URL)).map_err(|m| match m.as_str() {
                INVALID_URL => IamError::Aws(AwsError::validation(m)),
                _ => IamError::InvalidInput(m),
            })?;
            let client_ids: Vec<String> = client_id_list(q)?.into_iter().map(str::to_string).collect();
            a.list("ClientIDList", &CLIENT_ID, None, false);
            let thumbs = thumbprints(&mut a, false);
            let tags = a.tags("Tags");
            a.finish()?;
            check_thumbprints(&thumbs)?;
            check_new_tags(&tags)?;
            let rec = ProviderRec { url, created: now(), client_ids, thumbprints: thumbs, tags };
            let skey = store_key(acct, rec.key());
            core.db.write(acct, |tx| {
                if tx.get::<ProviderRec>(PROVIDERS, &skey)?.is_some() {
                    return Err(IamError::AlreadyExists(format!("Provider with url {} already exists.", rec.url)));
                }
                if tx.count(PROVIDERS, &format!("{acct}/"))? >= MAX_PROVIDERS {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for OpenIdConnectProvidersPerAccount: {MAX_PROVIDERS}"
                    )));
                }
                tx.put(PROVIDERS, &skey, &rec)
            })?;
            let mut w = XmlWriter::new();
            w.elem("OpenIDConnectProviderArn", &rec.arn(acct));
            super::xml::tags(&mut w, &rec.tags);
            xml(w.finish())
        }
        "GetOpenIDConnectProvider" => {
            let (_, p) = provider_of(core, acct, q)?;
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
        "ListOpenIDConnectProviders" => {
            let list = core.db.scan::<ProviderRec>(PROVIDERS, &format!("{acct}/"))?;
            let mut w = XmlWriter::new();
            w.start("OpenIDConnectProviderList");
            for (_, p) in &list {
                w.start("member").elem("Arn", &p.arn(acct)).end();
            }
            w.end();
            xml(w.finish())
        }
        "DeleteOpenIDConnectProvider" => {
            let arn = q.get("OpenIDConnectProviderArn").unwrap_or_default();
            // Deleting a provider that does not exist succeeds silently, as in AWS.
            if let Some(key) = key_of_arn(acct, arn) {
                let skey = store_key(acct, key);
                core.db.write(acct, |tx| tx.delete(PROVIDERS, &skey).map(|_| ()))?;
            }
            empty()
        }
        "UpdateOpenIDConnectProviderThumbprint" => {
            let mut a = Args::new(q);
            let thumbs = thumbprints(&mut a, true);
            a.finish()?;
            check_thumbprints(&thumbs)?;
            update(core, acct, q, |p| {
                p.thumbprints = thumbs;
                Ok(())
            })
        }
        "AddClientIDToOpenIDConnectProvider" => {
            let id = q.get("ClientID").unwrap_or_default().to_string();
            update(core, acct, q, |p| {
                if !p.client_ids.contains(&id) {
                    if p.client_ids.len() >= MAX_CLIENT_IDS {
                        return Err(IamError::LimitExceeded(format!(
                            "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
                        )));
                    }
                    p.client_ids.push(id);
                }
                Ok(())
            })
        }
        "RemoveClientIDFromOpenIDConnectProvider" => {
            let id = q.get("ClientID").unwrap_or_default().to_string();
            update(core, acct, q, |p| {
                p.client_ids.retain(|c| *c != id);
                Ok(())
            })
        }
        "TagOpenIDConnectProvider" => {
            let mut a = Args::new(q);
            let tags = a.tags("Tags");
            a.finish()?;
            check_new_tags(&tags)?;
            update(core, acct, q, |p| merge_tags(&mut p.tags, tags))
        }
        "UntagOpenIDConnectProvider" => {
            let keys = q.list("TagKeys.member");
            update(core, acct, q, |p| {
                remove_tags(&mut p.tags, &keys);
                Ok(())
            })
        }
        "ListOpenIDConnectProviderTags" => {
            let (_, p) = provider_of(core, acct, q)?;
            let (marker, max) = Args::new(q).paging();
            tag_page(p.tags, marker, max)
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}
