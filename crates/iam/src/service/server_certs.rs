//! Server certificates: UploadServerCertificate, GetServerCertificate, ListServerCertificates,
//! UpdateServerCertificate, DeleteServerCertificate, and their tags. The private key is sealed at
//! rest (AAD = `iam-server-cert-key:{account}:{certificate id}`) and is never returned.

use rampart_protocol::query::QueryParams;
use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{AuthzPlan, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::users::tag_page;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, paginate, remove_tags, request_tags, resource_tags, under,
    xml, Core,
};
use crate::certs::{parse_cert, valid_chain, valid_private_key};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{entity_key, Tag};
use crate::util::{iam_arn, iso8601, now, to_hex, unique_id};
use crate::validate::{self as v, Args};

pub const OPS: &[&str] = &[
    "UploadServerCertificate",
    "GetServerCertificate",
    "ListServerCertificates",
    "UpdateServerCertificate",
    "DeleteServerCertificate",
    "TagServerCertificate",
    "UntagServerCertificate",
    "ListServerCertificateTags",
];

/// `{account}/{lower name}` → [`ServerCertRec`].
pub const TABLE: &str = "iam_server_certificates";
/// AWS's default quota: server certificates stored per account.
const MAX_PER_ACCOUNT: usize = 20;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerCertRec {
    pub name: String,
    pub id: String,
    pub path: String,
    pub uploaded: i64,
    pub expiration: i64,
    pub body: String,
    #[serde(default)]
    pub chain: Option<String>,
    /// The private key, sealed (see the module docs), hex.
    pub sealed_key: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ServerCertRec {
    fn arn(&self, acct: &str) -> String {
        iam_arn(acct, "server-certificate", &self.path, &self.name)
    }
}

fn key_aad(acct: &str, id: &str) -> Vec<u8> {
    format!("iam-server-cert-key:{acct}:{id}").into_bytes()
}

fn no_such(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Server Certificate with name {name} cannot be found."))
}

fn malformed(m: &str) -> IamError {
    IamError::Aws(AwsError::new("MalformedCertificate", m, 400))
}

fn cert_check(core: &Core, acct: &str, op: &str, name: &str) -> Result<rampart_service::AuthzCheck> {
    Ok(match core.db.get::<ServerCertRec>(TABLE, &entity_key(acct, name))? {
        Some(c) => resource_tags(check(op, c.arn(acct)), &c.tags, false),
        None => check(op, iam_arn(acct, "server-certificate", "/", name)),
    })
}

pub fn plan(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<AuthzPlan> {
    let acct = account(ctx);
    let mut a = Args::new(q);
    match op {
        "ListServerCertificates" => {
            a.opt("PathPrefix", &v::PATH_PREFIX);
            a.paging();
            a.finish()?;
            one(check(op, "*"))
        }
        "UploadServerCertificate" => {
            let path = a.opt("Path", &v::PATH).unwrap_or("/");
            let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME);
            a.req("CertificateBody", &v::CERTIFICATE_BODY);
            v::check_secret(&mut a, "privateKey", q.get("PrivateKey"), 16384);
            a.opt("CertificateChain", &v::CERTIFICATE_CHAIN);
            let tags = a.tags("Tags");
            a.finish()?;
            one(request_tags(check(op, iam_arn(acct, "server-certificate", path, name)), &tags))
        }
        "UpdateServerCertificate" => {
            let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME);
            let new_path = a.opt("NewPath", &v::PATH);
            let new_name = a.opt("NewServerCertificateName", &v::SERVER_CERT_NAME);
            a.finish()?;
            // Like AWS: permission is needed on both the certificate and what it becomes.
            let old = cert_check(core, acct, op, name)?;
            let current = core.db.get::<ServerCertRec>(TABLE, &entity_key(acct, name))?;
            let path = new_path.or(current.as_ref().map(|c| c.path.as_str())).unwrap_or("/");
            let target = check(op, iam_arn(acct, "server-certificate", path, new_name.unwrap_or(name)));
            Ok(AuthzPlan::Checks(vec![old, target]))
        }
        _ => {
            let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME);
            let mut tags = Vec::new();
            match op {
                "TagServerCertificate" => tags = a.tags("Tags"),
                "UntagServerCertificate" => {
                    a.list("TagKeys", &v::TAG_KEY, Some(50), true);
                }
                "ListServerCertificateTags" => {
                    a.paging();
                }
                _ => {}
            }
            a.finish()?;
            one(request_tags(cert_check(core, acct, op, name)?, &tags))
        }
    }
}

fn metadata(w: &mut XmlWriter, tag: &'static str, acct: &str, c: &ServerCertRec) {
    w.start(tag)
        .elem("Path", &c.path)
        .elem("ServerCertificateName", &c.name)
        .elem("ServerCertificateId", &c.id)
        .elem("Arn", &c.arn(acct))
        .elem("UploadDate", &iso8601(c.uploaded))
        .elem("Expiration", &iso8601(c.expiration))
        .end();
}

fn modify(core: &Core, acct: &str, name: &str, f: impl FnOnce(&mut ServerCertRec) -> Result<()>) -> Result<()> {
    core.db.write(acct, |tx| {
        let key = entity_key(acct, name);
        let mut c = tx.get::<ServerCertRec>(TABLE, &key)?.ok_or_else(|| no_such(name))?;
        f(&mut c)?;
        tx.put(TABLE, &key, &c)
    })
}

pub fn run(core: &Core, ctx: &RequestContext, op: &str, q: &QueryParams) -> Result<Output> {
    let acct = account(ctx);
    let name = q.get("ServerCertificateName").unwrap_or_default();
    match op {
        "UploadServerCertificate" => {
            let mut a = Args::new(q);
            let path = a.opt("Path", &v::PATH).unwrap_or("/").to_string();
            let tags = a.tags("Tags");
            a.finish()?;
            check_new_tags(&tags)?;
            let body = q.get("CertificateBody").unwrap_or_default();
            let info = parse_cert(body).ok_or_else(|| {
                malformed("Unable to parse certificate. Please ensure the certificate is in PEM format.")
            })?;
            let private_key = q.get("PrivateKey").unwrap_or_default();
            if !valid_private_key(private_key) {
                return Err(malformed("Unable to parse private key."));
            }
            let chain = q.get("CertificateChain");
            if chain.is_some_and(|c| !valid_chain(c)) {
                return Err(malformed("Unable to parse certificate chain. Please ensure it is in PEM format."));
            }
            let id = unique_id("ASCA");
            let sealed = core
                .sealer
                .seal(private_key.trim().as_bytes(), &key_aad(acct, &id))
                .map_err(|e| IamError::Internal(format!("sealing a server certificate's private key: {e}")))?;
            let sealed = to_hex(&sealed);
            let rec = ServerCertRec {
                name: name.to_string(),
                id,
                path,
                uploaded: now(),
                expiration: info.not_after,
                body: body.to_string(),
                chain: chain.map(str::to_string),
                sealed_key: sealed,
                tags,
            };
            core.db.write(acct, |tx| {
                let key = entity_key(acct, name);
                if tx.get::<ServerCertRec>(TABLE, &key)?.is_some() {
                    return Err(IamError::AlreadyExists(format!(
                        "The Server Certificate with name {name} already exists."
                    )));
                }
                if tx.count(TABLE, &format!("{acct}/"))? >= MAX_PER_ACCOUNT {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for ServerCertificatesPerAccount: {MAX_PER_ACCOUNT}"
                    )));
                }
                tx.put(TABLE, &key, &rec)
            })?;
            let mut w = XmlWriter::new();
            metadata(&mut w, "ServerCertificateMetadata", acct, &rec);
            super::xml::tags(&mut w, &rec.tags);
            xml(w.finish())
        }
        "GetServerCertificate" => {
            let c = core.db.get::<ServerCertRec>(TABLE, &entity_key(acct, name))?.ok_or_else(|| no_such(name))?;
            let mut w = XmlWriter::new();
            w.start("ServerCertificate");
            metadata(&mut w, "ServerCertificateMetadata", acct, &c);
            w.elem("CertificateBody", &c.body);
            w.opt("CertificateChain", c.chain.as_deref());
            super::xml::tags(&mut w, &c.tags);
            w.end();
            xml(w.finish())
        }
        "ListServerCertificates" => {
            let mut a = Args::new(q);
            let prefix = a.opt("PathPrefix", &v::PATH_PREFIX);
            let (marker, max) = a.paging();
            let certs: Vec<ServerCertRec> = core
                .db
                .scan::<ServerCertRec>(TABLE, &format!("{acct}/"))?
                .into_iter()
                .map(|(_, c)| c)
                .filter(|c| under(&c.path, prefix))
                .collect();
            let page = paginate(certs, |c| c.name.to_ascii_lowercase(), marker, max);
            let mut w = XmlWriter::new();
            w.start("ServerCertificateMetadataList");
            for c in &page.items {
                metadata(&mut w, "member", acct, c);
            }
            w.end();
            super::xml::truncation(&mut w, &page.next);
            xml(w.finish())
        }
        "UpdateServerCertificate" => {
            let new_path = q.get("NewPath");
            let new_name = q.get("NewServerCertificateName");
            core.db.write(acct, |tx| {
                let old_key = entity_key(acct, name);
                let mut c = tx.get::<ServerCertRec>(TABLE, &old_key)?.ok_or_else(|| no_such(name))?;
                if let Some(p) = new_path {
                    c.path = p.to_string();
                }
                if let Some(n) = new_name {
                    let new_key = entity_key(acct, n);
                    if new_key != old_key && tx.get::<ServerCertRec>(TABLE, &new_key)?.is_some() {
                        return Err(IamError::AlreadyExists(format!(
                            "The Server Certificate with name {n} already exists."
                        )));
                    }
                    c.name = n.to_string();
                    tx.delete(TABLE, &old_key)?;
                    return tx.put(TABLE, &new_key, &c);
                }
                tx.put(TABLE, &old_key, &c)
            })?;
            empty()
        }
        "DeleteServerCertificate" => {
            core.db.write(acct, |tx| {
                if tx.delete(TABLE, &entity_key(acct, name))? {
                    Ok(())
                } else {
                    Err(no_such(name))
                }
            })?;
            empty()
        }
        "TagServerCertificate" => {
            let tags = Args::new(q).tags("Tags");
            check_new_tags(&tags)?;
            modify(core, acct, name, |c| merge_tags(&mut c.tags, tags))?;
            empty()
        }
        "UntagServerCertificate" => {
            let keys = q.list("TagKeys.member");
            modify(core, acct, name, |c| {
                remove_tags(&mut c.tags, &keys);
                Ok(())
            })?;
            empty()
        }
        "ListServerCertificateTags" => {
            let (marker, max) = Args::new(q).paging();
            let c = core.db.get::<ServerCertRec>(TABLE, &entity_key(acct, name))?.ok_or_else(|| no_such(name))?;
            tag_page(c.tags, marker, max)
        }
        _ => Err(IamError::Internal(format!("unrouted operation {op}"))),
    }
}
