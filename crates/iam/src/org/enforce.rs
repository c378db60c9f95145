//! What the organization means for authorization: the SCP levels that bind an account's
//! principals, the RCP levels that bind its resources, and its org ID and path for the
//! `aws:PrincipalOrg*` / `aws:ResourceOrg*` context keys. Views are cached for one generation of
//! organization state, so a change takes effect on the next call.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use rampart_policy::{Policy, PolicyType};

use super::model::{aws_managed, tables, OrgDoc, GENERATION_KEY, RCP, SCP};
use crate::db::{Db, Lookup};
use crate::error::{IamError, Result};
use crate::resolve::PolicyCache;

/// One level's policies: (name for explanations, compiled policy).
pub type Level = Vec<(String, Arc<Policy>)>;

/// An account's place in its organization.
#[derive(Debug)]
pub struct AccountView {
    pub org_id: String,
    /// AWS's `o-…/r-…/ou-…/` path of the account's parent (`aws:PrincipalOrgPaths`).
    pub path: String,
    /// SCP levels (root, OUs…, account) binding the account's principals; `None` when none apply
    /// (the management account, or SCPs not enabled).
    pub scp: Option<Vec<Level>>,
    /// RCP levels binding the account's resources.
    pub rcp: Option<Vec<Level>>,
}

/// Account views of one generation.
type Views = (u64, HashMap<String, Option<Arc<AccountView>>>);

/// The cache of account views.
pub struct OrgEnforcer {
    db: Db,
    policies: Arc<PolicyCache>,
    cache: RwLock<Views>,
}

const MAX_CACHED: usize = 65_536;

/// The generation of all organization state (0: no organization ever changed).
pub fn generation(db: &impl Lookup) -> Result<u64> {
    Ok(db.get::<u64>(tables::GENERATION, GENERATION_KEY)?.unwrap_or(0))
}

/// The organization `account` belongs to.
pub fn org_of(db: &impl Lookup, account: &str) -> Result<Option<OrgDoc>> {
    let Some(org_id) = db.get::<String>(tables::MEMBERS, account)? else { return Ok(None) };
    db.get::<OrgDoc>(tables::ORGS, &org_id)
}

fn deny_all() -> Result<Arc<Policy>> {
    static DENY: OnceLock<std::result::Result<Arc<Policy>, String>> = OnceLock::new();
    DENY.get_or_init(|| {
        Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
            PolicyType::ServiceControl,
        )
        .map(Arc::new)
        .map_err(|e| e.message)
    })
    .clone()
    .map_err(|e| IamError::Internal(format!("closed-account policy: {e}")))
}

impl OrgEnforcer {
    pub fn new(db: Db, policies: Arc<PolicyCache>) -> Self {
        OrgEnforcer { db, policies, cache: RwLock::new((0, HashMap::new())) }
    }

    /// The view of `account`, `None` when it is in no organization.
    pub fn view(&self, account: &str) -> Result<Option<Arc<AccountView>>> {
        let g = generation(&self.db)?;
        if g == 0 {
            return Ok(None);
        }
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if cache.0 == g {
                if let Some(v) = cache.1.get(account) {
                    return Ok(v.clone());
                }
            }
        }
        let view = match org_of(&self.db, account)? {
            Some(doc) => self.build(&doc, account)?.map(Arc::new),
            None => None,
        };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.0 != g || cache.1.len() >= MAX_CACHED {
            *cache = (g, HashMap::new());
        }
        cache.1.insert(account.to_string(), view.clone());
        Ok(view)
    }

    fn levels(&self, doc: &OrgDoc, account: &str, ty: &str) -> Result<Option<Vec<Level>>> {
        if !doc.type_enabled(ty) || account == doc.management {
            return Ok(None);
        }
        let Some(chain) = doc.path(account) else { return Ok(None) };
        let pty = if ty == SCP { PolicyType::ServiceControl } else { PolicyType::ResourceControl };
        let mut levels = Vec::with_capacity(chain.len());
        for target in &chain {
            let mut level = Vec::new();
            for id in doc.attached_of_type(target, ty) {
                let content = match (aws_managed(ty), doc.policies.get(&id)) {
                    (Some((mid, _, _, content)), _) if mid == id => content,
                    (_, Some(p)) => p.content.as_str(),
                    _ => continue,
                };
                let policy = self.policies.get(content, pty).map_err(|e| {
                    IamError::Internal(format!("organization policy {id} does not parse: {}", e.message))
                })?;
                level.push((doc.policy_arn(&id, ty), policy));
            }
            levels.push(level);
        }
        Ok(Some(levels))
    }

    fn build(&self, doc: &OrgDoc, account: &str) -> Result<Option<AccountView>> {
        let Some(member) = doc.accounts.get(account) else { return Ok(None) };
        let mut scp = self.levels(doc, account, SCP)?;
        // A closed account can do nothing (AWS suspends it).
        if member.status != "ACTIVE" {
            scp.get_or_insert_with(Vec::new).push(vec![(format!("account-closed/{account}"), deny_all()?)]);
        }
        Ok(Some(AccountView {
            org_id: doc.id.clone(),
            path: doc.org_path_of_account(account).unwrap_or_default(),
            scp,
            rcp: self.levels(doc, account, RCP)?,
        }))
    }
}

/// RCPs apply to the services AWS lists for them; of Rampart's, STS, KMS and Secrets Manager.
pub fn rcp_applies(action: &str) -> bool {
    let service = action.split_once(':').map(|(s, _)| s).unwrap_or(action);
    ["sts", "kms", "secretsmanager", "s3", "sqs", "logs", "dynamodb", "ecr", "aoss", "cognito-idp"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(service))
}

/// The organization's part in one check: the caller's account view (SCPs) and the resource
/// account's (RCPs).
pub struct Applied {
    principal: Option<Arc<AccountView>>,
    resource: Option<Arc<AccountView>>,
    resource_account: String,
    rcp_applies: bool,
}

pub type Levels<'a> = Vec<Vec<rampart_policy::NamedPolicy<'a>>>;

/// Levels as the engine takes them.
pub fn named(levels: &[Level]) -> Levels<'_> {
    levels.iter().map(|l| l.iter().map(|(n, p)| rampart_policy::NamedPolicy::new(n, p)).collect()).collect()
}

impl Applied {
    pub fn new(enforcer: &OrgEnforcer, principal_account: &str, resource_account: &str, action: &str) -> Result<Self> {
        let principal = enforcer.view(principal_account)?;
        let resource =
            if resource_account == principal_account { principal.clone() } else { enforcer.view(resource_account)? };
        Ok(Applied {
            principal,
            resource,
            resource_account: resource_account.to_string(),
            rcp_applies: rcp_applies(action),
        })
    }

    /// SCP levels binding the caller (`None`: not bound).
    pub fn scp(&self) -> Option<Levels<'_>> {
        self.principal.as_ref()?.scp.as_deref().map(named)
    }

    /// RCP levels binding the resource (`None`: not bound).
    pub fn rcp(&self) -> Option<Levels<'_>> {
        if !self.rcp_applies {
            return None;
        }
        self.resource.as_ref()?.rcp.as_deref().map(named)
    }

    /// Whether any organization policy binds this check (the root shortcut does not apply then).
    pub fn binds(&self) -> bool {
        self.principal.as_ref().is_some_and(|v| v.scp.is_some())
            || (self.rcp_applies && self.resource.as_ref().is_some_and(|v| v.rcp.is_some()))
    }

    /// `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:ResourceOrgID`, `aws:ResourceOrgPaths`,
    /// `aws:ResourceAccount`.
    pub fn add_context(&self, c: &mut rampart_policy::Context) {
        use rampart_policy::ContextValue;
        if let Some(p) = &self.principal {
            c.insert("aws:PrincipalOrgID", ContextValue::String(p.org_id.clone()));
            c.insert("aws:PrincipalOrgPaths", ContextValue::List(vec![p.path.clone()]));
        }
        if let Some(r) = &self.resource {
            c.insert("aws:ResourceOrgID", ContextValue::String(r.org_id.clone()));
            c.insert("aws:ResourceOrgPaths", ContextValue::List(vec![r.path.clone()]));
        }
        if c.get("aws:ResourceAccount").is_none() {
            c.insert("aws:ResourceAccount", ContextValue::String(self.resource_account.clone()));
        }
    }
}
