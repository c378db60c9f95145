//! SAML 2.0 identity providers: Create/Get/List/Update/Delete and tags. The metadata document is
//! checked to be XML rooted at a SAML `EntityDescriptor`; its `validUntil` becomes `ValidUntil`.
//! AssumeRoleWithSAML (crates/iam/src/sts/saml.rs) verifies responses with the signing
//! certificates of these providers' metadata.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{AuthzPlan, Output, RequestContext};
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

pub const OPS: &[&str] = &[
    "CreateSAMLProvider",
    "GetSAMLProvider",
    "ListSAMLProviders",
    "UpdateSAMLProvider",
    "DeleteSAMLProvider",
    "TagSAMLProvider",
    "UntagSAMLProvider",
    "ListSAMLProviderTags",
];

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

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    match op {
        "ListSAMLProviders" => {
            a.finish()?;
            one(check(op, "*"))
        }
        "CreateSAMLProvider" => {
            a.req("SAMLMetadataDocument", &v::SAML_METADATA);
            let name = a.req("Name", &v::SAML_NAME);
            let tags = a.tags("Tags");
            a.finish()?;
            one(request_tags(check(op, format!("arn:aws:iam::{acct}:saml-provider/{name}")), &tags))
        }
        _ => {
            let arn = a.req("SAMLProviderArn", &v::ARN);
            let mut tags = Vec::new();
            match op {
                "UpdateSAMLProvider" => {
                    a.opt("SAMLMetadataDocument", &v::SAML_METADATA);
                }
                "TagSAMLProvider" => tags = a.tags("Tags"),
                "UntagSAMLProvider" => {
                    a.list("TagKeys", &v::TAG_KEY, Some(50), true);
                }
                "ListSAMLProviderTags" => {
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
    }
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

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let arn = q.get("SAMLProviderArn").unwrap_or_default();
    match op {
        "CreateSAMLProvider" => {
            let name = q.get("Name").unwrap_or_default();
            let doc = q.get("SAMLMetadataDocument").unwrap_or_default();
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            let meta = parse_saml_metadata(doc).ok_or_else(bad_metadata)?;
            let rec = SamlProviderRec {
                name: name.to_string(),
                uuid: uuid(),
                created: now(),
                metadata: doc.to_string(),
                valid_until: meta.valid_until,
                tags,
            };
            core.db.write(acct, |tx| {
                let key = store_key(acct, name);
                if tx.get::<SamlProviderRec>(TABLE, &key)?.is_some() {
                    return Err(IamError::AlreadyExists(format!("SAMLProvider {name} already exists")));
                }
                if tx.count(TABLE, &format!("{acct}/"))? >= MAX_PER_ACCOUNT {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for SamlProvidersPerAccount: {MAX_PER_ACCOUNT}"
                    )));
                }
                tx.put(TABLE, &key, &rec)
            })?;
            let mut w = XmlWriter::new();
            w.elem("SAMLProviderArn", &rec.arn(acct));
            super::xml::tags(&mut w, &rec.tags);
            xml(w.finish())
        }
        "GetSAMLProvider" => {
            let p = get(core, acct, arn)?.ok_or_else(|| no_such(arn))?;
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
        "ListSAMLProviders" => {
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
        "UpdateSAMLProvider" => {
            if q.get("AssertionEncryptionMode").is_some()
                || q.get("AddPrivateKey").is_some()
                || q.get("RemovePrivateKey").is_some()
            {
                return Err(IamError::InvalidInput(
                    "Assertion encryption (AssertionEncryptionMode, AddPrivateKey, RemovePrivateKey) is not supported by this server.".into(),
                ));
            }
            let doc = q.get("SAMLMetadataDocument");
            let meta = doc.map(|d| parse_saml_metadata(d).ok_or_else(bad_metadata)).transpose()?;
            let mut out = String::new();
            update(core, acct, arn, |p| {
                if let (Some(d), Some(m)) = (doc, meta) {
                    p.metadata = d.to_string();
                    p.valid_until = m.valid_until;
                }
                out = p.arn(acct);
                Ok(())
            })?;
            let mut w = XmlWriter::new();
            w.elem("SAMLProviderArn", &out);
            xml(w.finish())
        }
        "DeleteSAMLProvider" => {
            let name = name_of_arn(acct, arn).ok_or_else(|| no_such(arn))?;
            core.db.write(
                acct,
                |tx| {
                    if tx.delete(TABLE, &store_key(acct, name))? {
                        Ok(())
                    } else {
                        Err(no_such(arn))
                    }
                },
            )?;
            empty()
        }
        "TagSAMLProvider" => {
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            update(core, acct, arn, |p| merge_tags(&mut p.tags, tags))?;
            empty()
        }
        "UntagSAMLProvider" => {
            let keys = q.list("TagKeys.member");
            update(core, acct, arn, |p| {
                remove_tags(&mut p.tags, &keys);
                Ok(())
            })?;
            empty()
        }
        "ListSAMLProviderTags" => {
            let p = get(core, acct, arn)?.ok_or_else(|| no_such(arn))?;
            let (marker, max) = Args::new(q).paging();
            tag_page(p.tags, marker, max)
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}
