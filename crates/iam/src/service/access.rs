//! ListPoliciesGrantingServiceAccess: which of an identity's permissions policies allow some
//! action of each service asked about.

use rampart_policy::PolicyType;
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, AuthzPlan, Entry, Input, Operation, Output, RequestContext};

use super::inline::no_such_entity;
use super::{account, check, one, resource_tags, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{EntityKind, GroupRec, RoleRec, UserRec};
use crate::validate::{self as v, Args};

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[op::<Core, ListPoliciesGrantingServiceAccess>()];

/// One policy of the identity (or, for a user, of its groups).
struct Held {
    name: String,
    /// The document in force: an inline policy's, or a managed policy's default version.
    document: String,
    /// `Some(arn)` for a managed policy; `None` for an inline one.
    arn: Option<String>,
    /// The entity an inline policy is embedded in.
    owner: (EntityKind, String),
}

pub struct ListPoliciesGrantingServiceAccess {
    arn: String,
    kind: EntityKind,
    /// The entity's name (the ARN's last segment).
    name: String,
    namespaces: Vec<String>,
    /// The entity the plan read, with its inline and managed policies.
    found: Option<Identity>,
}

/// The identity asked about: its name, attached and inline policies, and (a user's) groups.
struct Identity {
    name: String,
    attached: Vec<String>,
    inline: std::collections::BTreeMap<String, String>,
    groups: Vec<GroupRec>,
}

/// `arn:aws:iam::ACCOUNT:{user|group|role}/[path/]NAME` → the kind and name; else AWS's
/// InvalidInput for an ARN it cannot read.
fn identity_of(arn: &str) -> Result<(EntityKind, String)> {
    let invalid = || IamError::InvalidInput(format!("ARN {arn} is not valid."));
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(invalid)?;
    let (acct, resource) = rest.split_once(':').ok_or_else(invalid)?;
    if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let (ty, path_name) = resource.split_once('/').ok_or_else(invalid)?;
    let kind = match ty {
        "user" => EntityKind::User,
        "group" => EntityKind::Group,
        "role" => EntityKind::Role,
        _ => return Err(invalid()),
    };
    let name = path_name.rsplit('/').next().filter(|n| !n.is_empty()).ok_or_else(invalid)?;
    Ok((kind, name.to_string()))
}

impl Operation<Core> for ListPoliciesGrantingServiceAccess {
    const NAME: &'static str = "ListPoliciesGrantingServiceAccess";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let _marker = a.opt("Marker", &v::MARKER);
        let arn = a.req("Arn", &v::ARN).to_string();
        let namespaces: Vec<String> = a
            .list("ServiceNamespaces", &v::SERVICE_NAMESPACE, Some(200), true)
            .into_iter()
            .map(str::to_string)
            .collect();
        a.finish()?;
        let (kind, name) = identity_of(&arn)?;
        Ok(ListPoliciesGrantingServiceAccess { arn, kind, name, namespaces, found: None })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let acct = account(ctx);
        let arn_ok = |real: String| real == self.arn;
        // What the ARN names must exist in the caller's account with that very ARN (path included).
        let (c, found) = match self.kind {
            EntityKind::User => {
                let u = core.db.entity::<UserRec>(acct, &self.name)?.filter(|u| arn_ok(u.arn(acct)));
                let c = match &u {
                    Some(u) => resource_tags(check(Self::NAME, u.arn(acct)), &u.tags, true),
                    None => check(Self::NAME, self.arn.clone()),
                };
                let found = match u {
                    Some(u) => {
                        let mut groups = Vec::new();
                        for g in &u.groups {
                            groups.extend(core.db.entity::<GroupRec>(acct, g)?);
                        }
                        Some(Identity { name: u.name, attached: u.attached, inline: u.inline, groups })
                    }
                    None => None,
                };
                (c, found)
            }
            EntityKind::Group => {
                let g = core.db.entity::<GroupRec>(acct, &self.name)?.filter(|g| arn_ok(g.arn(acct)));
                (
                    check(Self::NAME, self.arn.clone()),
                    g.map(|g| Identity { name: g.name, attached: g.attached, inline: g.inline, groups: Vec::new() }),
                )
            }
            EntityKind::Role => {
                let r = core.db.entity::<RoleRec>(acct, &self.name)?.filter(|r| arn_ok(r.arn(acct)));
                let c = match &r {
                    Some(r) => resource_tags(check(Self::NAME, r.arn(acct)), &r.tags, true),
                    None => check(Self::NAME, self.arn.clone()),
                };
                (c, r.map(|r| Identity { name: r.name, attached: r.attached, inline: r.inline, groups: Vec::new() }))
            }
        };
        self.found = found;
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let Identity { name, attached, inline, groups } =
            self.found.ok_or_else(|| no_such_entity(self.kind, &self.name))?;
        // Managed policies first (the entity's, then its groups', each once), then inline ones
        // (the entity's, then its groups'), as AWS's example lists them.
        let mut held: Vec<Held> = Vec::new();
        let mut managed_arns: Vec<&String> = attached.iter().collect();
        for g in &groups {
            managed_arns.extend(g.attached.iter());
        }
        let mut seen = std::collections::HashSet::new();
        for arn in managed_arns {
            if !seen.insert(arn.as_str()) {
                continue;
            }
            if let Some((pname, doc, _)) = crate::resolve::managed_document(&core.db, acct, arn)? {
                held.push(Held {
                    name: pname,
                    document: doc,
                    arn: Some(arn.clone()),
                    owner: (self.kind, name.clone()),
                });
            }
        }
        for (pname, doc) in &inline {
            held.push(Held { name: pname.clone(), document: doc.clone(), arn: None, owner: (self.kind, name.clone()) });
        }
        for g in &groups {
            for (pname, doc) in &g.inline {
                held.push(Held {
                    name: pname.clone(),
                    document: doc.clone(),
                    arn: None,
                    owner: (EntityKind::Group, g.name.clone()),
                });
            }
        }
        // Each document parsed once; one that no longer parses grants nothing.
        let parsed: Vec<Option<std::sync::Arc<rampart_policy::Policy>>> =
            held.iter().map(|h| core.resolver.policies.get_stored(&h.document, PolicyType::Identity).ok()).collect();
        let mut w = XmlWriter::new();
        w.start("PoliciesGrantingServiceAccess");
        for ns in &self.namespaces {
            w.start("member").elem("ServiceNamespace", ns).start("Policies");
            for (h, p) in held.iter().zip(&parsed) {
                if !p.as_ref().is_some_and(|p| p.allows_some_action_of(ns)) {
                    continue;
                }
                w.start("member").elem("PolicyName", &h.name);
                match &h.arn {
                    Some(arn) => {
                        w.elem("PolicyType", "MANAGED").elem("PolicyArn", arn);
                    }
                    None => {
                        let ty = match h.owner.0 {
                            EntityKind::User => "USER",
                            EntityKind::Group => "GROUP",
                            EntityKind::Role => "ROLE",
                        };
                        w.elem("PolicyType", "INLINE").elem("EntityType", ty).elem("EntityName", &h.owner.1);
                    }
                }
                w.end();
            }
            w.end().end();
        }
        w.end();
        // The answer is never cut: IAM sends it whole (no MaxItems in this call's input).
        w.bool("IsTruncated", false);
        xml(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_arns() {
        let ok = |arn: &str| identity_of(arn).ok().map(|(k, n)| (k.as_str(), n));
        assert_eq!(ok("arn:aws:iam::123456789012:user/alice"), Some(("user", "alice".into())));
        assert_eq!(ok("arn:aws:iam::123456789012:group/a/b/devs"), Some(("group", "devs".into())));
        assert_eq!(ok("arn:aws:iam::123456789012:role/r"), Some(("role", "r".into())));
        for bad in [
            "arn:aws:s3:::bucket-name-here",
            "arn:aws:iam::123456789012:policy/p",
            "arn:aws:iam::12345:user/alice",
            "arn:aws:iam::123456789012:user/",
            "arn:aws:iam::123456789012:user",
        ] {
            assert!(matches!(identity_of(bad), Err(IamError::InvalidInput(_))), "{bad}");
        }
    }

    #[test]
    fn allow_statements_that_reach_a_service() {
        let grants = |doc: &str, ns: &str| {
            rampart_policy::Policy::parse(doc, PolicyType::Identity).map(|p| p.allows_some_action_of(ns)).ok()
        };
        let stmt = |s: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{s}]}}"#);
        let allow = |a: &str| stmt(&format!(r#"{{"Effect":"Allow","Action":{a},"Resource":"*"}}"#));
        assert_eq!(grants(&allow(r#""s3:Get*""#), "s3"), Some(true));
        assert_eq!(grants(&allow(r#""S3:GetObject""#), "s3"), Some(true));
        assert_eq!(grants(&allow(r#""*""#), "kms"), Some(true));
        assert_eq!(grants(&allow(r#"["ec2:*","sqs:Send*"]"#), "s3"), Some(false));
        let deny = stmt(r#"{"Effect":"Deny","Action":"s3:*","Resource":"*"}"#);
        assert_eq!(grants(&deny, "s3"), Some(false));
        let not = stmt(r#"{"Effect":"Allow","NotAction":["iam:*","s3:Get*"],"Resource":"*"}"#);
        assert_eq!(grants(&not, "iam"), Some(false));
        assert_eq!(grants(&not, "s3"), Some(true));
        assert_eq!(grants(&not, "ec2"), Some(true));
    }
}
