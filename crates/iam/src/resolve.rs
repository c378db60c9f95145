//! Gathering a principal's policies: identity policies (inline + attached, and each group's),
//! the permissions boundary, and principal tags. Shared by the authorizer and the simulator.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rampart_policy::{Policy, PolicyError, PolicyType};

use crate::db::{Db, Lookup};
use crate::error::{IamError, Result};
use crate::managed;
use crate::model::{GroupRec, PolicyRec, RoleRec, Tag, UserRec};

/// Compiled policies by content, so a document is parsed once however many principals use it.
#[derive(Default)]
pub struct PolicyCache {
    by_type: [RwLock<HashMap<String, Arc<Policy>>>; 5],
}

/// Bound on cached documents per type; the cache is simply emptied past it.
const MAX_CACHED: usize = 8192;

/// The cache slot of policies of type `ty`.
fn slot_of<T>(slots: &[T; 5], ty: PolicyType) -> &T {
    let [identity, resource, trust, scp, rcp] = slots;
    match ty {
        PolicyType::Identity => identity,
        PolicyType::Resource => resource,
        PolicyType::Trust => trust,
        PolicyType::ServiceControl => scp,
        PolicyType::ResourceControl => rcp,
    }
}

impl PolicyCache {
    /// The compiled form of `doc` as a policy of type `ty`.
    pub fn get(&self, doc: &str, ty: PolicyType) -> Result<Arc<Policy>, PolicyError> {
        self.get_with(doc, ty, Policy::parse)
    }

    /// The compiled form of a document AWS stores itself (an AWS managed policy): see
    /// [`Policy::parse_stored`].
    pub fn get_stored(&self, doc: &str, ty: PolicyType) -> Result<Arc<Policy>, PolicyError> {
        self.get_with(doc, ty, Policy::parse_stored)
    }

    fn get_with(
        &self,
        doc: &str,
        ty: PolicyType,
        parse: fn(&str, PolicyType) -> Result<Policy, PolicyError>,
    ) -> Result<Arc<Policy>, PolicyError> {
        let slot = slot_of(&self.by_type, ty);
        if let Some(p) = slot.read().unwrap_or_else(|p| p.into_inner()).get(doc) {
            return Ok(p.clone());
        }
        let parsed = Arc::new(parse(doc, ty)?);
        let mut map = slot.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(doc.to_string(), parsed.clone());
        Ok(parsed)
    }
}

/// Where a policy came from (simulation results and explanations name it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Unique within one evaluation; the name explanations use.
    pub name: String,
    /// `SourcePolicyId` in simulation results.
    pub id: String,
    /// `SourcePolicyType`: user, group, role, aws-managed, user-managed, resource, none.
    pub kind: &'static str,
    pub document: String,
}

/// A compiled policy and where it came from.
#[derive(Clone, Debug)]
pub struct SourcedPolicy {
    pub source: Source,
    pub policy: Arc<Policy>,
}

/// Everything about a principal that authorization needs.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub identity: Vec<SourcedPolicy>,
    pub boundary: Option<SourcedPolicy>,
    pub tags: Vec<Tag>,
}

/// A managed policy's default document: `(name, document, is AWS managed)`.
pub fn managed_document(db: &Db, account: &str, arn: &str) -> Result<Option<(String, String, bool)>> {
    if let Some(p) = managed::by_arn(arn) {
        return Ok(Some((p.name.to_string(), p.document.to_string(), true)));
    }
    Ok(local_policy(db, account, arn)?.and_then(|p| {
        let doc = p.default_document()?.to_string();
        Some((p.name, doc, false))
    }))
}

/// A customer managed policy of `account` by ARN (path and name must match).
pub fn local_policy(db: &Db, account: &str, arn: &str) -> Result<Option<PolicyRec>> {
    let Some(name) = policy_name_from_arn(account, arn) else { return Ok(None) };
    Ok(db.entity::<PolicyRec>(account, name)?.filter(|p| p.arn(account) == arn))
}

/// The name part of `arn:aws:iam::ACCOUNT:policy/path/name` when it is in `account`.
pub fn policy_name_from_arn<'a>(account: &str, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (acct, res) = rest.split_once(':')?;
    if acct != account {
        return None;
    }
    let path_and_name = res.strip_prefix("policy/")?;
    path_and_name.rsplit('/').next().filter(|n| !n.is_empty())
}

/// Resolves principals into policy sets.
pub struct Resolver {
    pub db: Db,
    pub policies: Arc<PolicyCache>,
}

impl Resolver {
    fn compile(&self, source: Source) -> Result<SourcedPolicy> {
        let policy = if source.kind == "aws-managed" {
            self.policies.get_stored(&source.document, PolicyType::Identity)
        } else {
            self.policies.get(&source.document, PolicyType::Identity)
        };
        let policy = policy.map_err(|e| {
            IamError::Internal(format!("stored policy {} no longer parses: {}", source.name, e.message))
        })?;
        Ok(SourcedPolicy { source, policy })
    }

    fn managed(&self, account: &str, arn: &str) -> Result<Option<SourcedPolicy>> {
        let Some((name, document, aws)) = managed_document(&self.db, account, arn)? else { return Ok(None) };
        let kind = if aws { "aws-managed" } else { "user-managed" };
        Ok(Some(self.compile(Source { name: arn.to_string(), id: name, kind, document })?))
    }

    fn push_entity(
        &self,
        out: &mut Vec<SourcedPolicy>,
        account: &str,
        kind: &'static str,
        entity: &str,
        inline: &std::collections::BTreeMap<String, String>,
        attached: &[String],
    ) -> Result<()> {
        for (name, doc) in inline {
            out.push(self.compile(Source {
                name: format!("{kind}/{entity}/{name}"),
                id: name.clone(),
                kind,
                document: doc.clone(),
            })?);
        }
        for arn in attached {
            if let Some(p) = self.managed(account, arn)? {
                out.push(p);
            }
        }
        Ok(())
    }

    fn boundary(&self, account: &str, arn: Option<&String>) -> Result<Option<SourcedPolicy>> {
        match arn {
            Some(arn) => self.managed(account, arn),
            None => Ok(None),
        }
    }

    /// A user's policies: its own, then each group's, and its boundary.
    pub fn user(&self, account: &str, user: &UserRec) -> Result<Resolved> {
        let mut identity = Vec::new();
        self.push_entity(&mut identity, account, "user", &user.name, &user.inline, &user.attached)?;
        for g in &user.groups {
            if let Some(group) = self.db.entity::<GroupRec>(account, g)? {
                self.push_entity(&mut identity, account, "group", &group.name, &group.inline, &group.attached)?;
            }
        }
        Ok(Resolved { identity, boundary: self.boundary(account, user.boundary.as_ref())?, tags: user.tags.clone() })
    }

    /// A role's policies and boundary.
    pub fn role(&self, account: &str, role: &RoleRec) -> Result<Resolved> {
        let mut identity = Vec::new();
        self.push_entity(&mut identity, account, "role", &role.name, &role.inline, &role.attached)?;
        Ok(Resolved { identity, boundary: self.boundary(account, role.boundary.as_ref())?, tags: role.tags.clone() })
    }

    /// A group's policies (SimulatePrincipalPolicy with a group ARN).
    pub fn group(&self, account: &str, group: &GroupRec) -> Result<Resolved> {
        let mut identity = Vec::new();
        self.push_entity(&mut identity, account, "group", &group.name, &group.inline, &group.attached)?;
        Ok(Resolved { identity, boundary: None, tags: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arn_names() {
        assert_eq!(policy_name_from_arn("111122223333", "arn:aws:iam::111122223333:policy/a/b/P1"), Some("P1"));
        assert_eq!(policy_name_from_arn("111122223333", "arn:aws:iam::111122223333:policy/P1"), Some("P1"));
        assert_eq!(policy_name_from_arn("111122223333", "arn:aws:iam::999999999999:policy/P1"), None);
        assert_eq!(policy_name_from_arn("111122223333", "arn:aws:iam::111122223333:user/P1"), None);
        assert_eq!(policy_name_from_arn("111122223333", "arn:aws:iam::111122223333:policy/"), None);
    }
}
