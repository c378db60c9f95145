//! Service last accessed data for Organizations: GenerateOrganizationsAccessReport and
//! GetOrganizationsAccessReport.
//!
//! Only the management account of an organization with SCPs enabled generates reports. A report is
//! about an entity path (`o-…/r-…[/ou-…]*[/ACCOUNT]`): the services the SCPs that apply to the
//! entity allow (or, with `OrganizationsPolicyId`, the services that SCP allows), and for each the
//! most recent attempt by any authenticated principal (root, IAM users, roles) of the accounts in
//! the entity, from the audit trail. Like service last accessed reports, a job: computed when first
//! read, from the calls recorded up to its creation.

use std::collections::BTreeSet;
use std::sync::Arc;

use rampart_policy::{ContextValue, Policy, PolicyType};
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, Activity, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::last_accessed::{named_namespaces, service_name, store_new_job, SERVED, TRACKING_DAYS};
use super::{account, check, one, paginate, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::org::enforce::org_of;
use crate::org::model::{OrgDoc, FULL_AWS_ACCESS, FULL_AWS_ACCESS_DOC, SCP};
use crate::util::{iso8601, now};
use crate::validate::{self as v, Args};

/// `{account}/{job id}` → [`OrgJobRec`].
pub const JOBS: &str = "iam_org_access_jobs";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDetail {
    pub namespace: String,
    pub name: String,
    /// `(time, account's entity path, region)` of the most recent attempt.
    pub last: Option<(i64, String, String)>,
    /// Accounts with an attempt.
    pub total: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrgJobRec {
    pub id: String,
    pub path: String,
    pub policy: Option<String>,
    pub created: i64,
    pub owner: String,
    #[serde(default)]
    pub completed: Option<i64>,
    #[serde(default)]
    pub error: Option<(String, String)>,
    #[serde(default)]
    pub details: Vec<AccessDetail>,
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] =
    &[op::<Core, GenerateOrganizationsAccessReport>(), op::<Core, GetOrganizationsAccessReport>()];

/// `^o-[0-9a-z]{10,32}\/r-[0-9a-z]{4,32}[0-9a-z-\/]*`
fn path_chars(s: &str) -> bool {
    let lower = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut parts = s.splitn(3, '/');
    let org = parts.next().and_then(|o| o.strip_prefix("o-"));
    let root = parts.next().and_then(|r| r.strip_prefix("r-"));
    let rest = parts.next().unwrap_or("");
    let root_ok = root.is_some_and(|r| {
        let n = r.chars().take_while(|c| lower(*c)).count();
        n >= 4 && r.chars().skip(n).all(|c| lower(c) || c == '-')
    });
    org.is_some_and(|o| (10..=32).contains(&o.len()) && o.chars().all(lower))
        && root_ok
        && rest.chars().all(|c| lower(c) || c == '-' || c == '/')
}

const ENTITY_PATH: v::Spec = v::spec(19, 427, Some(("^o-[0-9a-z]{10,32}\\/r-[0-9a-z]{4,32}[0-9a-z-\\/]*", path_chars)));
const POLICY_ID_RE: &str = "^p-[0-9a-zA-Z_]{8,128}$";

fn policy_id_ok(s: &str) -> bool {
    s.strip_prefix("p-")
        .is_some_and(|r| (8..=128).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The target (root, OU or account ID) a path names, when the path is the target's own path.
fn target_of(org: &OrgDoc, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let target = parts.last()?.to_string();
    let own = org.path_string(&target)?;
    (own.trim_end_matches('/') == path.trim_end_matches('/')).then_some(target)
}

/// The accounts in a target (an account itself, or every account under a root or OU).
fn accounts_in(org: &OrgDoc, target: &str) -> Vec<String> {
    org.accounts.keys().filter(|a| org.path(a).is_some_and(|p| p.iter().any(|t| t == target))).cloned().collect()
}

fn scp(core: &Core, org: &OrgDoc, id: &str) -> Option<Arc<Policy>> {
    let doc = if id == FULL_AWS_ACCESS { FULL_AWS_ACCESS_DOC } else { &org.policies.get(id)?.content };
    core.resolver.policies.get_stored(doc, PolicyType::ServiceControl).ok()
}

/// The namespaces allowed: by `policy`, or by the SCPs of every level from the root to `target`
/// (an action must be allowed at each level).
fn allowed(core: &Core, org: &OrgDoc, target: &str, policy: Option<&str>) -> Vec<(String, String)> {
    let levels: Vec<Vec<Arc<Policy>>> = match policy {
        Some(id) => vec![scp(core, org, id).into_iter().collect()],
        None => org
            .path(target)
            .unwrap_or_default()
            .iter()
            .map(|t| org.attached_of_type(t, SCP).iter().filter_map(|id| scp(core, org, id)).collect())
            .collect(),
    };
    let mut candidates: BTreeSet<String> = SERVED.iter().map(|s| s.to_string()).collect();
    for p in levels.iter().flatten() {
        candidates.extend(named_namespaces(p.document()));
    }
    candidates
        .into_iter()
        .filter(|ns| !levels.is_empty() && levels.iter().all(|l| l.iter().any(|p| p.allows_some_action_of(ns))))
        .map(|ns| {
            let name = service_name(&ns);
            (ns, name)
        })
        .collect()
}

/// The report being folded from each account's attempts, one at a time.
pub struct Tally {
    rows: Vec<AccessDetail>,
}

impl Tally {
    pub fn new(services: &[(String, String)]) -> Self {
        let rows = services
            .iter()
            .map(|(ns, name)| AccessDetail { namespace: ns.clone(), name: name.clone(), last: None, total: 0 })
            .collect();
        Tally { rows }
    }

    /// Count one account: `path` is its entity path, `seen` the namespaces it attempted so far
    /// (to count each account once per service).
    pub fn add(&mut self, path: &str, seen: &mut BTreeSet<String>, a: &Activity) {
        let Some(row) = self.rows.iter_mut().find(|r| r.namespace == a.namespace) else { return };
        if row.last.as_ref().is_none_or(|l| l.0 < a.time) {
            row.last = Some((a.time, path.to_string(), a.region.clone()));
        }
        if !seen.contains(&a.namespace) {
            seen.insert(a.namespace.clone());
            row.total += 1;
        }
    }

    pub fn finish(self) -> Vec<AccessDetail> {
        self.rows
    }
}

/// The rows of a report on each account's attempts (`(account path, its activity)`).
#[cfg(test)]
pub fn tally(services: &[(String, String)], accounts: &[(String, Vec<Activity>)]) -> Vec<AccessDetail> {
    let mut t = Tally::new(services);
    for (path, acts) in accounts {
        let mut seen = BTreeSet::new();
        for a in acts {
            t.add(path, &mut seen, a);
        }
    }
    t.finish()
}

fn complete(core: &Core, acct: &str, mut job: OrgJobRec) -> Result<OrgJobRec> {
    if job.completed.is_some() {
        return Ok(job);
    }
    let org = org_of(&core.db, acct)?.filter(|o| o.management == acct);
    let target = org.as_ref().and_then(|o| target_of(o, &job.path));
    match (org, target) {
        (Some(org), Some(target)) => {
            if job.policy.as_deref().is_some_and(|p| org.policy_type(p).as_deref() != Some(SCP)) {
                job.error = Some(("NoSuchEntity".into(), "The specified policy does not exist.".into()));
            } else {
                let services = allowed(core, &org, &target, job.policy.as_deref());
                let wanted: BTreeSet<&str> = services.iter().map(|(ns, _)| ns.as_str()).collect();
                let since = job.created.saturating_sub(TRACKING_DAYS * 86_400);
                let mut t = Tally::new(&services);
                let mut failed = None;
                for a in accounts_in(&org, &target) {
                    let path = org.path_string(&a).unwrap_or_default().trim_end_matches('/').to_string();
                    let mut seen = BTreeSet::new();
                    let read = match core.activity.get() {
                        Some(log) => log.visit(&a, since, job.created, &mut |x: &Activity| {
                            // Calls made by the account's own principals.
                            if wanted.contains(x.namespace.as_str()) && principal_account(&x.principal) == Some(&a) {
                                t.add(&path, &mut seen, x);
                            }
                        }),
                        None => Err("the audit trail is not available".to_string()),
                    };
                    if let Err(e) = read {
                        failed = Some(e);
                        break;
                    }
                }
                match failed {
                    None => job.details = t.finish(),
                    Some(e) => {
                        tracing::warn!(error = %e, "organizations access report: cannot read the audit trail");
                        job.error = Some(("ServiceFailure".into(), "The report could not be generated.".into()));
                    }
                }
            }
        }
        _ => {
            job.error = Some((
                "InvalidEntityPath".into(),
                "The entity path does not name an entity of your organization.".into(),
            ))
        }
    }
    job.completed = Some(now());
    let key = format!("{acct}/{}", job.id);
    core.db.write(acct, |tx| tx.put(JOBS, &key, &job))?;
    Ok(job)
}

/// The 12-digit account of an IAM ARN (`arn:aws:iam::ACCOUNT:…`).
fn principal_account(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:aws:iam::")?.split(':').next()
}

pub struct GenerateOrganizationsAccessReport {
    path: String,
    policy: Option<String>,
}

impl Operation<Core> for GenerateOrganizationsAccessReport {
    const NAME: &'static str = "GenerateOrganizationsAccessReport";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let path = a.req("EntityPath", &ENTITY_PATH).to_string();
        let policy = a.opt("OrganizationsPolicyId", &v::spec(0, usize::MAX, Some((POLICY_ID_RE, policy_id_ok))));
        let policy = policy.map(str::to_string);
        a.finish()?;
        Ok(GenerateOrganizationsAccessReport { path, policy })
    }

    fn authorize(&mut self, _: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let mut c = check(Self::NAME, format!("arn:aws:iam::{}:access-report/{}", account(ctx), self.path));
        if let Some(p) = &self.policy {
            c.context.push(("iam:OrganizationsPolicyId".into(), ContextValue::String(p.clone())));
        }
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let org = org_of(&core.db, acct)?.filter(|o| o.management == acct).ok_or_else(|| {
            IamError::InvalidInput(
                "This operation can be performed only by the management account of an organization.".into(),
            )
        })?;
        if !org.type_enabled(SCP) {
            return Err(IamError::InvalidInput(
                "Service control policies are not enabled for the organization root.".into(),
            ));
        }
        let job = OrgJobRec {
            id: rampart_protocol::new_uuid(),
            path: self.path,
            policy: self.policy,
            created: now(),
            owner: ctx.caller.arn.clone(),
            completed: None,
            error: None,
            details: Vec::new(),
        };
        let key = format!("{acct}/{}", job.id);
        core.db.write(acct, |tx| store_new_job(tx, JOBS, acct, &key, &job))?;
        let mut w = XmlWriter::new();
        w.elem("JobId", &job.id);
        xml(w.finish())
    }
}

pub struct GetOrganizationsAccessReport {
    id: String,
    marker: Option<String>,
    max: usize,
    sort: String,
}

const JOB_ID: v::Spec = v::spec(36, 36, None);

impl Operation<Core> for GetOrganizationsAccessReport {
    const NAME: &'static str = "GetOrganizationsAccessReport";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let id = a.req("JobId", &JOB_ID).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        let sort = a
            .enumeration(
                "SortKey",
                &[
                    "SERVICE_NAMESPACE_ASCENDING",
                    "SERVICE_NAMESPACE_DESCENDING",
                    "LAST_AUTHENTICATED_TIME_ASCENDING",
                    "LAST_AUTHENTICATED_TIME_DESCENDING",
                ],
            )
            .unwrap_or("SERVICE_NAMESPACE_ASCENDING")
            .to_string();
        a.finish()?;
        Ok(GetOrganizationsAccessReport { id, marker, max, sort })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        let job = core
            .db
            .get::<OrgJobRec>(JOBS, &format!("{acct}/{}", self.id))?
            .filter(|j| j.owner == ctx.caller.arn)
            .ok_or_else(|| IamError::NoSuchEntity(format!("No such job {} exists.", self.id)))?;
        let job = complete(core, acct, job)?;
        let mut details = job.details.clone();
        let time = |d: &AccessDetail| d.last.as_ref().map(|l| l.0);
        match self.sort.as_str() {
            "SERVICE_NAMESPACE_DESCENDING" => details.sort_by(|a, b| b.namespace.cmp(&a.namespace)),
            "LAST_AUTHENTICATED_TIME_ASCENDING" => {
                details.sort_by(|a, b| time(a).cmp(&time(b)).then_with(|| a.namespace.cmp(&b.namespace)))
            }
            "LAST_AUTHENTICATED_TIME_DESCENDING" => {
                details.sort_by(|a, b| time(b).cmp(&time(a)).then_with(|| a.namespace.cmp(&b.namespace)))
            }
            _ => details.sort_by(|a, b| a.namespace.cmp(&b.namespace)),
        }
        let not_accessed = details.iter().filter(|d| d.last.is_none()).count();
        let accessible = details.len();
        let indexed: Vec<(usize, AccessDetail)> = details.into_iter().enumerate().collect();
        let page = paginate(indexed, |(i, _)| format!("{i:06}"), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        let status = if job.error.is_some() { "FAILED" } else { "COMPLETED" };
        w.elem("JobStatus", status).elem("JobCreationDate", &iso8601(job.created));
        if let Some(c) = job.completed {
            w.elem("JobCompletionDate", &iso8601(c));
        }
        if job.error.is_none() {
            w.num("NumberOfServicesAccessible", accessible).num("NumberOfServicesNotAccessed", not_accessed);
            w.start("AccessDetails");
            for (_, d) in &page.items {
                w.start("member").elem("ServiceName", &d.name).elem("ServiceNamespace", &d.namespace);
                if let Some((t, path, region)) = &d.last {
                    w.elem("Region", region).elem("EntityPath", path).elem("LastAuthenticatedTime", &iso8601(*t));
                }
                w.num("TotalAuthenticatedEntities", d.total).end();
            }
            w.end();
            super::xml::truncation(&mut w, &page.next);
        }
        if let Some((code, message)) = &job.error {
            w.start("ErrorDetails").elem("Message", message).elem("Code", code).end();
        }
        xml(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_service::ActivityPrincipal;

    fn act(t: i64, ns: &str) -> Activity {
        Activity {
            time: t,
            kind: ActivityPrincipal::Root,
            principal: "arn:aws:iam::111111111111:root".into(),
            namespace: ns.into(),
            action: "X".into(),
            region: "eu-west-1".into(),
        }
    }

    #[test]
    fn tally_counts_accounts_and_the_latest_attempt() {
        let services = vec![("iam".to_string(), "IAM".to_string()), ("kms".to_string(), "KMS".to_string())];
        let accounts = vec![
            ("o-1/r-1/111111111111".to_string(), vec![act(10, "iam"), act(30, "iam")]),
            ("o-1/r-1/ou-1/222222222222".to_string(), vec![act(20, "iam")]),
        ];
        let rows = tally(&services, &accounts);
        assert_eq!(rows[0].total, 2);
        assert_eq!(rows[0].last, Some((30, "o-1/r-1/111111111111".into(), "eu-west-1".into())));
        assert_eq!((rows[1].total, rows[1].last.clone()), (0, None));
    }

    #[test]
    fn entity_paths_and_policy_ids() {
        assert!(path_chars("o-a1b2c3d4e5/r-f6g7/ou-f6g7-abcdefgh/111122223333"));
        assert!(path_chars("o-a1b2c3d4e5/r-f6g7"));
        assert!(!path_chars("o-short/r-f6g7"));
        assert!(!path_chars("o-a1b2c3d4e5/x-f6g7"));
        assert!(!path_chars("o-a1b2c3d4e5/r-F6G7"));
        assert!(policy_id_ok("p-FullAWSAccess") && policy_id_ok("p-abcd1234"));
        assert!(!policy_id_ok("p-short") && !policy_id_ok("x-abcdefgh"));
        assert_eq!(principal_account("arn:aws:iam::111122223333:user/u"), Some("111122223333"));
    }
}
