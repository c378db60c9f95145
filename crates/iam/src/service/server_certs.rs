//! Server certificates: UploadServerCertificate, GetServerCertificate, ListServerCertificates,
//! UpdateServerCertificate, DeleteServerCertificate, and their tags. The private key is sealed at
//! rest (AAD = `iam-server-cert-key:{account}:{certificate id}`) and is never returned.

use rampart_protocol::xml::XmlWriter;
use rampart_protocol::AwsError;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::users::tag_page;
use super::{
    account, check, check_new_tags, empty, merge_tags, one, remove_tags, request_tags, resource_tags, xml, Core,
    PathPage,
};
use crate::certs::{parse_cert, valid_chain, valid_private_key};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{entity_key, Tag};
use crate::util::{iam_arn, iso8601, now, to_hex, unique_id};
use crate::validate::{self as v, Args};

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

/// `iam:{action}` on the certificate (its real ARN when it exists, with its tags), and the
/// certificate.
fn cert_check(
    core: &Core,
    acct: &str,
    action: &str,
    name: &str,
) -> Result<(rampart_service::AuthzCheck, Option<ServerCertRec>)> {
    let cert = core.db.get::<ServerCertRec>(TABLE, &entity_key(acct, name))?;
    let c = match &cert {
        Some(c) => resource_tags(check(action, c.arn(acct)), &c.tags, false),
        None => check(action, iam_arn(acct, "server-certificate", "/", name)),
    };
    Ok((c, cert))
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, UploadServerCertificate>(),
    op::<Core, GetServerCertificate>(),
    op::<Core, ListServerCertificates>(),
    op::<Core, UpdateServerCertificate>(),
    op::<Core, DeleteServerCertificate>(),
    op::<Core, TagServerCertificate>(),
    op::<Core, UntagServerCertificate>(),
    op::<Core, ListServerCertificateTags>(),
];

pub struct UploadServerCertificate {
    path: String,
    name: String,
    body: String,
    /// Wiped when the request is dropped; stored only sealed.
    private_key: Zeroizing<String>,
    chain: Option<String>,
    tags: Vec<Tag>,
}

impl Operation<Core> for UploadServerCertificate {
    const NAME: &'static str = "UploadServerCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let q = input.query();
        let mut a = Args::new(q);
        let path = a.opt("Path", &v::PATH).unwrap_or("/").to_string();
        let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME).to_string();
        let body = a.req("CertificateBody", &v::CERTIFICATE_BODY).to_string();
        let private_key = q.get("PrivateKey");
        v::check_secret(&mut a, "privateKey", private_key, 16384);
        let chain = a.opt("CertificateChain", &v::CERTIFICATE_CHAIN).map(str::to_string);
        let tags = a.tags("Tags");
        a.finish()?;
        let private_key = Zeroizing::new(private_key.unwrap_or_default().to_string());
        Ok(UploadServerCertificate { path, name, body, private_key, chain, tags })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let arn = iam_arn(account(ctx), "server-certificate", &self.path, &self.name);
        one(request_tags(check(Self::NAME, arn), &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        check_new_tags(&self.tags)?;
        let info = parse_cert(&self.body)
            .ok_or_else(|| malformed("Unable to parse certificate. Please ensure the certificate is in PEM format."))?;
        if !valid_private_key(&self.private_key) {
            return Err(malformed("Unable to parse private key."));
        }
        if self.chain.as_deref().is_some_and(|c| !valid_chain(c)) {
            return Err(malformed("Unable to parse certificate chain. Please ensure it is in PEM format."));
        }
        let id = unique_id("ASCA");
        let sealed = core
            .sealer
            .seal(self.private_key.trim().as_bytes(), &key_aad(acct, &id))
            .map_err(|e| IamError::Internal(format!("sealing a server certificate's private key: {e}")))?;
        let sealed = to_hex(&sealed);
        let name = self.name;
        let rec = ServerCertRec {
            name: name.clone(),
            id,
            path: self.path,
            uploaded: now(),
            expiration: info.not_after,
            body: self.body,
            chain: self.chain,
            sealed_key: sealed,
            tags: self.tags,
        };
        core.db.write(acct, |tx| {
            let key = entity_key(acct, &name);
            let exists = || IamError::AlreadyExists(format!("The Server Certificate with name {name} already exists."));
            tx.insert_new(TABLE, acct, &key, &rec, exists, ("ServerCertificatesPerAccount", MAX_PER_ACCOUNT))
        })?;
        let mut w = XmlWriter::new();
        metadata(&mut w, "ServerCertificateMetadata", acct, &rec);
        super::xml::tags(&mut w, &rec.tags);
        xml(w.finish())
    }
}

pub struct GetServerCertificate {
    name: String,
    /// The certificate the plan read.
    cert: Option<ServerCertRec>,
}

impl Operation<Core> for GetServerCertificate {
    const NAME: &'static str = "GetServerCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME).to_string();
        a.finish()?;
        Ok(GetServerCertificate { name, cert: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, cert) = cert_check(core, account(ctx), Self::NAME, &self.name)?;
        self.cert = cert;
        one(c)
    }

    fn run(self, _: &Core, ctx: &RequestContext) -> Result<Output> {
        let c = self.cert.ok_or_else(|| no_such(&self.name))?;
        let mut w = XmlWriter::new();
        w.start("ServerCertificate");
        metadata(&mut w, "ServerCertificateMetadata", account(ctx), &c);
        w.elem("CertificateBody", &c.body);
        w.opt("CertificateChain", c.chain.as_deref());
        super::xml::tags(&mut w, &c.tags);
        w.end();
        xml(w.finish())
    }
}

pub struct ListServerCertificates(PathPage);

impl Operation<Core> for ListServerCertificates {
    const NAME: &'static str = "ListServerCertificates";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        PathPage::parse(input).map(ListServerCertificates)
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let certs: Vec<ServerCertRec> =
            core.db.scan::<ServerCertRec>(TABLE, &format!("{acct}/"))?.into_iter().map(|(_, c)| c).collect();
        let page = self.0.page(certs, |c| &c.path, |c| &c.name);
        let mut w = XmlWriter::new();
        w.start("ServerCertificateMetadataList");
        for c in &page.items {
            metadata(&mut w, "member", acct, c);
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        xml(w.finish())
    }
}

pub struct UpdateServerCertificate {
    name: String,
    new_path: Option<String>,
    new_name: Option<String>,
}

impl Operation<Core> for UpdateServerCertificate {
    const NAME: &'static str = "UpdateServerCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME).to_string();
        let new_path = a.opt("NewPath", &v::PATH).map(str::to_string);
        let new_name = a.opt("NewServerCertificateName", &v::SERVER_CERT_NAME).map(str::to_string);
        a.finish()?;
        Ok(UpdateServerCertificate { name, new_path, new_name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let acct = account(ctx);
        // Like AWS: permission is needed on both the certificate and what it becomes.
        let (old, current) = cert_check(core, acct, Self::NAME, &self.name)?;
        let path = self.new_path.as_deref().or(current.as_ref().map(|c| c.path.as_str())).unwrap_or("/");
        let name = self.new_name.as_deref().unwrap_or(&self.name);
        let target = check(Self::NAME, iam_arn(acct, "server-certificate", path, name));
        Ok(AuthzPlan::Checks(vec![old, target]))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let name = &self.name;
        core.db.write(acct, |tx| {
            let old_key = entity_key(acct, name);
            let mut c = tx.get::<ServerCertRec>(TABLE, &old_key)?.ok_or_else(|| no_such(name))?;
            if let Some(p) = &self.new_path {
                c.path = p.clone();
            }
            if let Some(n) = &self.new_name {
                let new_key = entity_key(acct, n);
                if new_key != old_key && tx.get::<ServerCertRec>(TABLE, &new_key)?.is_some() {
                    return Err(IamError::AlreadyExists(format!(
                        "The Server Certificate with name {n} already exists."
                    )));
                }
                c.name = n.clone();
                tx.delete(TABLE, &old_key)?;
                return tx.put(TABLE, &new_key, &c);
            }
            tx.put(TABLE, &old_key, &c)
        })?;
        empty()
    }
}

pub struct DeleteServerCertificate {
    name: String,
}

impl Operation<Core> for DeleteServerCertificate {
    const NAME: &'static str = "DeleteServerCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME).to_string();
        a.finish()?;
        Ok(DeleteServerCertificate { name })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(cert_check(core, account(ctx), Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        core.db.write(acct, |tx| {
            if tx.delete(TABLE, &entity_key(acct, &self.name))? {
                Ok(())
            } else {
                Err(no_such(&self.name))
            }
        })?;
        empty()
    }
}

pub struct TagServerCertificate {
    name: String,
    tags: Vec<Tag>,
}

impl Operation<Core> for TagServerCertificate {
    const NAME: &'static str = "TagServerCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME).to_string();
        let tags = a.tags("Tags");
        a.finish()?;
        Ok(TagServerCertificate { name, tags })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(request_tags(cert_check(core, account(ctx), Self::NAME, &self.name)?.0, &self.tags))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        check_new_tags(&self.tags)?;
        modify(core, account(ctx), &self.name, |c| merge_tags(&mut c.tags, self.tags))?;
        empty()
    }
}

pub struct UntagServerCertificate {
    name: String,
    keys: Vec<String>,
}

impl Operation<Core> for UntagServerCertificate {
    const NAME: &'static str = "UntagServerCertificate";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME).to_string();
        let keys = a.tag_keys("TagKeys").into_iter().map(str::to_string).collect();
        a.finish()?;
        Ok(UntagServerCertificate { name, keys })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        one(cert_check(core, account(ctx), Self::NAME, &self.name)?.0)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        modify(core, account(ctx), &self.name, |c| {
            remove_tags(&mut c.tags, &keys);
            Ok(())
        })?;
        empty()
    }
}

pub struct ListServerCertificateTags {
    name: String,
    marker: Option<String>,
    max: usize,
    /// The certificate the plan read.
    cert: Option<ServerCertRec>,
}

impl Operation<Core> for ListServerCertificateTags {
    const NAME: &'static str = "ListServerCertificateTags";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let name = a.req("ServerCertificateName", &v::SERVER_CERT_NAME).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(ListServerCertificateTags { name, marker, max, cert: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let (c, cert) = cert_check(core, account(ctx), Self::NAME, &self.name)?;
        self.cert = cert;
        one(c)
    }

    fn run(self, _: &Core, _: &RequestContext) -> Result<Output> {
        let c = self.cert.ok_or_else(|| no_such(&self.name))?;
        tag_page(c.tags, self.marker.as_deref(), self.max)
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
