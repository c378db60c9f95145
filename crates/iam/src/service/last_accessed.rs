//! Service last accessed data: GenerateServiceLastAccessedDetails, GetServiceLastAccessedDetails,
//! GetServiceLastAccessedDetailsWithEntities.
//!
//! A report is a job. Generate checks the entity (a user, group, role or managed policy), stores
//! the job `IN_PROGRESS` and answers its JobId; the first Get computes it from the calls the audit
//! trail recorded up to the job's creation (within IAM's 400-day tracking period, bounded by the
//! trail's own retention) and stores it `COMPLETED`; later Gets read it.
//!
//! What counts, as AWS defines it: every authenticated attempt (allowed or denied) to a service
//! the entity's permissions policies allow some action of — a user's own and its groups'
//! policies, a role's, a group's (attempts by its members), a managed policy's (attempts by the
//! users, group members and roles it is attached to). Boundaries, SCPs and resource policies are
//! not considered, as AWS documents.

use std::collections::{BTreeMap, BTreeSet};

use rampart_policy::{ast, PolicyType};
use rampart_protocol::xml::XmlWriter;
use rampart_service::{op, Activity, AuthzPlan, Entry, Input, Operation, Output, RequestContext};
use serde::{Deserialize, Serialize};

use super::{account, check, one, paginate, resource_tags, xml, Core};
use crate::db::Lookup;
use crate::error::{IamError, Result};
use crate::model::{attachment_prefix, tables, AttachmentRec, EntityKind, GroupRec, RoleRec, UserRec};
use crate::util::{iso8601, now};
use crate::validate::{self as v, Args};

/// `{account}/{job id}` → [`JobRec`].
pub const JOBS: &str = "iam_access_advisor_jobs";
/// IAM's tracking period.
pub(super) const TRACKING_DAYS: i64 = 400;

/// The services whose names reports show: the ones Rampart serves (whose calls it records), then
/// others policies commonly name.
const SERVICE_NAMES: &[(&str, &str)] = &[
    ("cloudtrail", "AWS CloudTrail"),
    ("iam", "AWS Identity and Access Management"),
    ("kms", "AWS Key Management Service"),
    ("organizations", "AWS Organizations"),
    ("secretsmanager", "AWS Secrets Manager"),
    ("sts", "AWS Security Token Service"),
    ("s3", "Amazon Simple Storage Service"),
    ("ec2", "Amazon Elastic Compute Cloud"),
    ("lambda", "AWS Lambda"),
    ("dynamodb", "Amazon DynamoDB"),
    ("sqs", "Amazon Simple Queue Service"),
    ("sns", "Amazon Simple Notification Service"),
    ("logs", "Amazon CloudWatch Logs"),
    ("cloudwatch", "Amazon CloudWatch"),
];
/// The namespaces a wildcard (`*`, `NotAction`) reaches in a report: the services Rampart serves.
pub(super) const SERVED: &[&str] = &["cloudtrail", "iam", "kms", "organizations", "secretsmanager", "sts"];

/// What a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subject {
    User,
    Group,
    Role,
    Policy,
}

/// The most recent attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub at: i64,
    pub entity: String,
    pub region: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRow {
    pub namespace: String,
    pub name: String,
    pub last: Option<Access>,
    pub total: usize,
    /// Action-level jobs: each action attempted, with its most recent attempt.
    pub actions: Vec<(String, Access)>,
}

/// A user or role whose attempts the report counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRow {
    /// `USER` or `ROLE`.
    pub kind: String,
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    /// Namespace → the entity's most recent attempt there.
    pub last: BTreeMap<String, i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRec {
    pub id: String,
    pub subject: Subject,
    pub arn: String,
    pub action_level: bool,
    pub created: i64,
    /// Who generated it: only they read it (AWS: the same user, or the same role's session).
    pub owner: String,
    #[serde(default)]
    pub completed: Option<i64>,
    /// `(Code, Message)` of a job that failed.
    #[serde(default)]
    pub error: Option<(String, String)>,
    #[serde(default)]
    pub services: Vec<ServiceRow>,
    #[serde(default)]
    pub entities: Vec<EntityRow>,
}

/// The operations of this family, each listed once.
pub const OPS: &[Entry<Core>] = &[
    op::<Core, GenerateServiceLastAccessedDetails>(),
    op::<Core, GetServiceLastAccessedDetails>(),
    op::<Core, GetServiceLastAccessedDetailsWithEntities>(),
];

/// `arn:aws:iam::ACCOUNT:{user|group|role|policy}/[path/]NAME`; AWS's InvalidInput otherwise.
fn subject_of(arn: &str) -> Result<(Subject, String)> {
    let invalid = || IamError::InvalidInput(format!("ARN {} is not valid.", rampart_protocol::echo(arn)));
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(invalid)?;
    let (acct, resource) = rest.split_once(':').ok_or_else(invalid)?;
    let (ty, path_name) = resource.split_once('/').ok_or_else(invalid)?;
    let subject = match ty {
        "user" => Subject::User,
        "group" => Subject::Group,
        "role" => Subject::Role,
        "policy" => Subject::Policy,
        _ => return Err(invalid()),
    };
    let digits = acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit());
    if !(digits || (subject == Subject::Policy && acct == "aws")) {
        return Err(invalid());
    }
    let name = path_name.rsplit('/').next().filter(|n| !n.is_empty()).ok_or_else(invalid)?;
    Ok((subject, name.to_string()))
}

/// Reports kept per account and kind: past it, the oldest tenth is dropped when a job is added.
const MAX_JOBS: usize = 1000;

/// Store a new job of `acct` in `table`, dropping the oldest ones once the account has
/// [`MAX_JOBS`] (a caller generating reports in a loop cannot grow the store without bound).
pub(super) fn store_new_job<T: Serialize>(
    tx: &mut crate::db::Tx<'_>,
    table: &str,
    acct: &str,
    key: &str,
    job: &T,
) -> Result<()> {
    #[derive(Deserialize)]
    struct Created {
        created: i64,
    }
    let prefix = format!("{acct}/");
    if tx.count(table, &prefix)? >= MAX_JOBS {
        let mut jobs: Vec<(String, Created)> = tx.scan(table, &prefix)?;
        jobs.sort_by_key(|(_, j)| j.created);
        for (k, _) in jobs.iter().take(MAX_JOBS / 10) {
            tx.delete(table, k)?;
        }
    }
    tx.put(table, key, job)
}

fn no_such_job(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("No such job {id} exists."))
}

/// The report's inputs, read from the entity as it is now.
struct Scope {
    /// The permissions policies' documents.
    documents: Vec<String>,
    /// The users and roles whose attempts count.
    entities: Vec<EntityRow>,
}

fn user_row(acct: &str, u: &UserRec) -> EntityRow {
    EntityRow {
        kind: "USER".into(),
        name: u.name.clone(),
        id: u.id.clone(),
        path: u.path.clone(),
        arn: u.arn(acct),
        last: BTreeMap::new(),
    }
}

fn role_row(acct: &str, r: &RoleRec) -> EntityRow {
    EntityRow {
        kind: "ROLE".into(),
        name: r.name.clone(),
        id: r.id.clone(),
        path: r.path.clone(),
        arn: r.arn(acct),
        last: BTreeMap::new(),
    }
}

fn managed_docs(core: &Core, acct: &str, arns: &[String], out: &mut Vec<String>) -> Result<()> {
    for arn in arns {
        if let Some((_, doc, _)) = crate::resolve::managed_document(&core.db, acct, arn)? {
            out.push(doc);
        }
    }
    Ok(())
}

/// The scope of a report on `arn`; NoSuchEntity when it names nothing in the account.
fn scope(core: &Core, acct: &str, subject: Subject, name: &str, arn: &str) -> Result<Scope> {
    let missing = || IamError::NoSuchEntity(format!("The entity {} does not exist.", rampart_protocol::echo(arn)));
    let mut documents = Vec::new();
    let mut entities = Vec::new();
    match subject {
        Subject::User => {
            let u = core.db.entity::<UserRec>(acct, name)?.filter(|u| u.arn(acct) == arn).ok_or_else(missing)?;
            documents.extend(u.inline.values().cloned());
            managed_docs(core, acct, &u.attached, &mut documents)?;
            for g in &u.groups {
                if let Some(g) = core.db.entity::<GroupRec>(acct, g)? {
                    documents.extend(g.inline.values().cloned());
                    managed_docs(core, acct, &g.attached, &mut documents)?;
                }
            }
            entities.push(user_row(acct, &u));
        }
        Subject::Role => {
            let r = core.db.entity::<RoleRec>(acct, name)?.filter(|r| r.arn(acct) == arn).ok_or_else(missing)?;
            documents.extend(r.inline.values().cloned());
            managed_docs(core, acct, &r.attached, &mut documents)?;
            entities.push(role_row(acct, &r));
        }
        Subject::Group => {
            let g = core.db.entity::<GroupRec>(acct, name)?.filter(|g| g.arn(acct) == arn).ok_or_else(missing)?;
            documents.extend(g.inline.values().cloned());
            managed_docs(core, acct, &g.attached, &mut documents)?;
            for m in &g.members {
                if let Some(u) = core.db.entity::<UserRec>(acct, m)? {
                    entities.push(user_row(acct, &u));
                }
            }
        }
        Subject::Policy => {
            let (_, doc, _) = crate::resolve::managed_document(&core.db, acct, arn)?.ok_or_else(missing)?;
            documents.push(doc);
            let mut seen = BTreeSet::new();
            for (_, a) in core.db.scan::<AttachmentRec>(tables::ATTACHMENTS, &attachment_prefix(acct, arn))? {
                match a.kind {
                    EntityKind::User => {
                        if let Some(u) = core.db.entity::<UserRec>(acct, &a.name)? {
                            if seen.insert(u.arn(acct)) {
                                entities.push(user_row(acct, &u));
                            }
                        }
                    }
                    EntityKind::Role => {
                        if let Some(r) = core.db.entity::<RoleRec>(acct, &a.name)? {
                            if seen.insert(r.arn(acct)) {
                                entities.push(role_row(acct, &r));
                            }
                        }
                    }
                    EntityKind::Group => {
                        if let Some(g) = core.db.entity::<GroupRec>(acct, &a.name)? {
                            for m in &g.members {
                                if let Some(u) = core.db.entity::<UserRec>(acct, m)? {
                                    if seen.insert(u.arn(acct)) {
                                        entities.push(user_row(acct, &u));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Scope { documents, entities })
}

/// The namespaces the policies allow some action of, with their names, sorted by namespace.
fn allowed_services(core: &Core, documents: &[String]) -> Vec<(String, String)> {
    let policies: Vec<_> =
        documents.iter().filter_map(|d| core.resolver.policies.get_stored(d, PolicyType::Identity).ok()).collect();
    let mut candidates: BTreeSet<String> = SERVED.iter().map(|s| s.to_string()).collect();
    for p in &policies {
        candidates.extend(named_namespaces(p.document()));
    }
    candidates
        .into_iter()
        .filter(|ns| policies.iter().any(|p| p.allows_some_action_of(ns)))
        .map(|ns| {
            let name = service_name(&ns);
            (ns, name)
        })
        .collect()
}

/// A service's name in reports (its namespace when Rampart does not know it).
pub(super) fn service_name(ns: &str) -> String {
    SERVICE_NAMES.iter().find(|(n, _)| *n == ns).map_or_else(|| ns.to_string(), |(_, name)| name.to_string())
}

/// The namespaces an `Allow` statement's `Action` names literally (`s3` of `s3:Get*`).
pub(super) fn named_namespaces(doc: &ast::Document) -> Vec<String> {
    let mut out = Vec::new();
    for s in doc.statements.iter().filter(|s| s.effect == ast::Effect::Allow) {
        let Some(actions) = s.action.as_ref().filter(|a| !a.negated) else { continue };
        for a in &actions.values {
            if let Some((ns, _)) = a.split_once(':') {
                if !ns.is_empty() && ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    out.push(ns.to_ascii_lowercase());
                }
            }
        }
    }
    out
}

/// The report being folded from the recorded attempts, one at a time (a busy account's trail is
/// never held in memory).
pub struct Tally {
    rows: Vec<ServiceRow>,
    who: Vec<BTreeSet<String>>,
    actions: Vec<BTreeMap<String, Access>>,
    action_level: bool,
    /// Entity ARN → its index in the entities given to `add`.
    index: std::collections::HashMap<String, usize>,
}

impl Tally {
    pub fn new(services: &[(String, String)], entities: &[EntityRow], action_level: bool) -> Self {
        let rows: Vec<ServiceRow> = services
            .iter()
            .map(|(ns, name)| ServiceRow {
                namespace: ns.clone(),
                name: name.clone(),
                last: None,
                total: 0,
                actions: Vec::new(),
            })
            .collect();
        let n = rows.len();
        let index = entities.iter().enumerate().map(|(i, e)| (e.arn.clone(), i)).collect();
        Tally { rows, who: vec![BTreeSet::new(); n], actions: vec![BTreeMap::new(); n], action_level, index }
    }

    /// Count one attempt when it is by one of `entities` on one of the report's services.
    pub fn add(&mut self, entities: &mut [EntityRow], a: &Activity) {
        let Some(e) = self.index.get(&a.principal).and_then(|&i| entities.get_mut(i)) else { return };
        let Some(i) = self.rows.iter().position(|r| r.namespace == a.namespace) else { return };
        let access = Access { at: a.time, entity: a.principal.clone(), region: a.region.clone() };
        let last = e.last.entry(a.namespace.clone()).or_insert(a.time);
        *last = (*last).max(a.time);
        if let (Some(row), Some(set), Some(acts)) = (self.rows.get_mut(i), self.who.get_mut(i), self.actions.get_mut(i))
        {
            if row.last.as_ref().is_none_or(|l| l.at < a.time) {
                row.last = Some(access.clone());
            }
            if !set.contains(&a.principal) {
                set.insert(a.principal.clone());
            }
            if self.action_level {
                let slot = acts.entry(a.action.clone()).or_insert_with(|| access.clone());
                if slot.at < a.time {
                    *slot = access;
                }
            }
        }
    }

    pub fn finish(self) -> Vec<ServiceRow> {
        let mut rows = self.rows;
        for ((row, set), acts) in rows.iter_mut().zip(self.who).zip(self.actions) {
            row.total = set.len();
            row.actions = acts.into_iter().collect();
        }
        rows
    }
}

/// The rows of a report on `activity` (newest first or not).
#[cfg(test)]
pub fn tally(
    services: &[(String, String)],
    entities: &mut [EntityRow],
    action_level: bool,
    activity: &[Activity],
) -> Vec<ServiceRow> {
    let mut t = Tally::new(services, entities, action_level);
    for a in activity {
        t.add(entities, a);
    }
    t.finish()
}

/// Compute a job that is still in progress, and store it completed (or failed).
fn complete(core: &Core, acct: &str, mut job: JobRec) -> Result<JobRec> {
    if job.completed.is_some() {
        return Ok(job);
    }
    let (subject, name) = subject_of(&job.arn)?;
    match scope(core, acct, subject, &name, &job.arn) {
        Err(IamError::NoSuchEntity(m)) => {
            job.error = Some(("NoSuchEntity".into(), m));
        }
        Err(e) => return Err(e),
        Ok(Scope { documents, mut entities }) => {
            let services = allowed_services(core, &documents);
            let since = job.created.saturating_sub(TRACKING_DAYS * 86_400);
            let mut t = Tally::new(&services, &entities, job.action_level);
            let read = match core.activity.get() {
                Some(log) => log.visit(acct, since, job.created, &mut |a: &Activity| t.add(&mut entities, a)),
                None => Err("the audit trail is not available".to_string()),
            };
            match read {
                Ok(()) => {
                    job.services = t.finish();
                    job.entities = entities;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "last accessed report: cannot read the audit trail");
                    job.error = Some(("ServiceFailure".into(), "The report could not be generated.".into()));
                }
            }
        }
    }
    job.completed = Some(now());
    let key = format!("{acct}/{}", job.id);
    core.db.write(acct, |tx| tx.put(JOBS, &key, &job))?;
    Ok(job)
}

pub struct GenerateServiceLastAccessedDetails {
    arn: String,
    subject: Subject,
    name: String,
    action_level: bool,
}

impl Operation<Core> for GenerateServiceLastAccessedDetails {
    const NAME: &'static str = "GenerateServiceLastAccessedDetails";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let arn = a.req("Arn", &v::ARN).to_string();
        let action_level = a.enumeration("Granularity", &["SERVICE_LEVEL", "ACTION_LEVEL"]) == Some("ACTION_LEVEL");
        a.finish()?;
        let (subject, name) = subject_of(&arn)?;
        Ok(GenerateServiceLastAccessedDetails { arn, subject, name, action_level })
    }

    fn authorize(&mut self, core: &Core, ctx: &RequestContext) -> Result<AuthzPlan> {
        let acct = account(ctx);
        let c = match self.subject {
            Subject::User => match core.db.entity::<UserRec>(acct, &self.name)?.filter(|u| u.arn(acct) == self.arn) {
                Some(u) => resource_tags(check(Self::NAME, self.arn.clone()), &u.tags, true),
                None => check(Self::NAME, self.arn.clone()),
            },
            Subject::Role => match core.db.entity::<RoleRec>(acct, &self.name)?.filter(|r| r.arn(acct) == self.arn) {
                Some(r) => resource_tags(check(Self::NAME, self.arn.clone()), &r.tags, true),
                None => check(Self::NAME, self.arn.clone()),
            },
            Subject::Group | Subject::Policy => check(Self::NAME, self.arn.clone()),
        };
        one(c)
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let acct = account(ctx);
        // The entity must exist now; its report is computed when first read.
        scope(core, acct, self.subject, &self.name, &self.arn)?;
        let job = JobRec {
            id: rampart_protocol::new_uuid(),
            subject: self.subject,
            arn: self.arn,
            action_level: self.action_level,
            created: now(),
            owner: ctx.caller.arn.clone(),
            completed: None,
            error: None,
            services: Vec::new(),
            entities: Vec::new(),
        };
        let key = format!("{acct}/{}", job.id);
        core.db.write(acct, |tx| store_new_job(tx, JOBS, acct, &key, &job))?;
        let mut w = XmlWriter::new();
        w.elem("JobId", &job.id);
        xml(w.finish())
    }
}

/// The `JobId` every Get reads, and the job it names for this caller.
fn read_job(core: &Core, ctx: &RequestContext, id: &str) -> Result<JobRec> {
    let acct = account(ctx);
    let job = core
        .db
        .get::<JobRec>(JOBS, &format!("{acct}/{id}"))?
        .filter(|j| j.owner == ctx.caller.arn)
        .ok_or_else(|| no_such_job(id))?;
    complete(core, acct, job)
}

const JOB_ID: v::Spec = v::spec(36, 36, None);

fn job_head(w: &mut XmlWriter, job: &JobRec) {
    let status = if job.error.is_some() {
        "FAILED"
    } else if job.completed.is_some() {
        "COMPLETED"
    } else {
        "IN_PROGRESS"
    };
    w.elem("JobStatus", status);
}

fn job_tail(w: &mut XmlWriter, job: &JobRec, next: &Option<String>) {
    w.elem("JobCreationDate", &iso8601(job.created));
    if let Some(c) = job.completed {
        w.elem("JobCompletionDate", &iso8601(c));
    }
    super::xml::truncation(w, next);
    if let Some((code, message)) = &job.error {
        w.start("Error").elem("Message", message).elem("Code", code).end();
    }
}

pub struct GetServiceLastAccessedDetails {
    id: String,
    marker: Option<String>,
    max: usize,
}

impl Operation<Core> for GetServiceLastAccessedDetails {
    const NAME: &'static str = "GetServiceLastAccessedDetails";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let id = a.req("JobId", &JOB_ID).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(GetServiceLastAccessedDetails { id, marker, max })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let job = read_job(core, ctx, &self.id)?;
        let page = paginate(job.services.clone(), |s| s.namespace.clone(), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        job_head(&mut w, &job);
        w.elem("JobType", if job.action_level { "ACTION_LEVEL" } else { "SERVICE_LEVEL" });
        w.start("ServicesLastAccessed");
        for s in &page.items {
            w.start("member").elem("ServiceName", &s.name);
            if let Some(l) = &s.last {
                w.elem("LastAuthenticated", &iso8601(l.at));
            }
            w.elem("ServiceNamespace", &s.namespace);
            if let Some(l) = &s.last {
                w.elem("LastAuthenticatedEntity", &l.entity).elem("LastAuthenticatedRegion", &l.region);
            }
            w.num("TotalAuthenticatedEntities", s.total);
            if job.action_level && !s.actions.is_empty() {
                w.start("TrackedActionsLastAccessed");
                for (action, l) in &s.actions {
                    w.start("member")
                        .elem("ActionName", action)
                        .elem("LastAccessedEntity", &l.entity)
                        .elem("LastAccessedTime", &iso8601(l.at))
                        .elem("LastAccessedRegion", &l.region)
                        .end();
                }
                w.end();
            }
            w.end();
        }
        w.end();
        job_tail(&mut w, &job, &page.next);
        xml(w.finish())
    }
}

pub struct GetServiceLastAccessedDetailsWithEntities {
    id: String,
    namespace: String,
    marker: Option<String>,
    max: usize,
}

impl Operation<Core> for GetServiceLastAccessedDetailsWithEntities {
    const NAME: &'static str = "GetServiceLastAccessedDetailsWithEntities";
    type Error = IamError;

    fn parse(input: &Input) -> Result<Self> {
        let mut a = Args::new(input.query());
        let id = a.req("JobId", &JOB_ID).to_string();
        let namespace = a.req("ServiceNamespace", &v::SERVICE_NAMESPACE).to_string();
        let (marker, max) = a.paging();
        let marker = marker.map(str::to_string);
        a.finish()?;
        Ok(GetServiceLastAccessedDetailsWithEntities { id, namespace, marker, max })
    }

    fn authorize(&mut self, _: &Core, _: &RequestContext) -> Result<AuthzPlan> {
        one(check(Self::NAME, "*"))
    }

    fn run(self, core: &Core, ctx: &RequestContext) -> Result<Output> {
        let job = read_job(core, ctx, &self.id)?;
        let ns = self.namespace.to_ascii_lowercase();
        // Entities that could have used the permissions for this service: none when the
        // policies allow nothing of it. Most recent attempt first, then never-attempted by name.
        let mut rows: Vec<&EntityRow> =
            if job.services.iter().any(|s| s.namespace == ns) { job.entities.iter().collect() } else { Vec::new() };
        rows.sort_by(|a, b| {
            let (x, y) = (a.last.get(&ns), b.last.get(&ns));
            y.cmp(&x).then_with(|| a.arn.cmp(&b.arn))
        });
        let indexed: Vec<(usize, &EntityRow)> = rows.into_iter().enumerate().collect();
        let page = paginate(indexed, |(i, _)| format!("{i:06}"), self.marker.as_deref(), self.max);
        let mut w = XmlWriter::new();
        job_head(&mut w, &job);
        w.elem("JobCreationDate", &iso8601(job.created));
        if let Some(c) = job.completed {
            w.elem("JobCompletionDate", &iso8601(c));
        }
        w.start("EntityDetailsList");
        for (_, e) in &page.items {
            w.start("member")
                .start("EntityInfo")
                .elem("Arn", &e.arn)
                .elem("Name", &e.name)
                .elem("Type", &e.kind)
                .elem("Id", &e.id)
                .elem("Path", &e.path)
                .end();
            if let Some(t) = e.last.get(&ns) {
                w.elem("LastAuthenticated", &iso8601(*t));
            }
            w.end();
        }
        w.end();
        super::xml::truncation(&mut w, &page.next);
        if let Some((code, message)) = &job.error {
            w.start("Error").elem("Message", message).elem("Code", code).end();
        }
        xml(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_service::ActivityPrincipal;

    fn act(t: i64, who: &str, ns: &str, action: &str) -> Activity {
        Activity {
            time: t,
            kind: ActivityPrincipal::User,
            principal: who.into(),
            namespace: ns.into(),
            action: action.into(),
            region: "us-east-1".into(),
        }
    }

    fn entity(arn: &str) -> EntityRow {
        EntityRow {
            kind: "USER".into(),
            name: arn.rsplit('/').next().unwrap_or_default().into(),
            id: "AIDAEXAMPLE".into(),
            path: "/".into(),
            arn: arn.into(),
            last: BTreeMap::new(),
        }
    }

    #[test]
    fn tally_counts_entities_latest_attempts_and_actions() {
        let services = vec![("iam".to_string(), "IAM".to_string()), ("kms".to_string(), "KMS".to_string())];
        let (a, b, c) = ("arn:aws:iam::1:user/a", "arn:aws:iam::1:user/b", "arn:aws:iam::1:user/c");
        let mut entities = vec![entity(a), entity(b)];
        let activity = vec![
            act(30, a, "iam", "ListUsers"),
            act(50, b, "iam", "GetUser"),
            act(40, a, "iam", "ListUsers"),
            act(60, c, "iam", "ListUsers"),                 // not in scope
            act(70, a, "secretsmanager", "GetSecretValue"), // not allowed
        ];
        let rows = tally(&services, &mut entities, true, &activity);
        let iam = &rows[0];
        assert_eq!(iam.total, 2);
        assert_eq!(iam.last, Some(Access { at: 50, entity: b.into(), region: "us-east-1".into() }));
        assert_eq!(
            iam.actions.iter().map(|(n, l)| (n.as_str(), l.at, l.entity.as_str())).collect::<Vec<_>>(),
            vec![("GetUser", 50, b), ("ListUsers", 40, a)]
        );
        assert_eq!((rows[1].total, rows[1].last.clone()), (0, None));
        assert_eq!(entities[0].last.get("iam"), Some(&40));
        assert_eq!(entities[1].last.get("iam"), Some(&50));
        assert!(!entities[0].last.contains_key("secretsmanager"));
        // Service level: no action rows.
        let mut again = vec![entity(a)];
        assert!(tally(&services, &mut again, false, &activity)[0].actions.is_empty());
    }

    #[test]
    fn jobs_per_account_are_bounded() {
        use std::sync::Arc;
        let db = crate::db::Db::new(Arc::new(rampart_store::SqliteStore::in_memory().unwrap()));
        let job = |i: i64| JobRec {
            id: format!("{i:036}"),
            subject: Subject::User,
            arn: "arn:aws:iam::111122223333:user/u".into(),
            action_level: false,
            created: i,
            owner: "o".into(),
            completed: None,
            error: None,
            services: Vec::new(),
            entities: Vec::new(),
        };
        db.write("111122223333", |tx| {
            for i in 0..MAX_JOBS as i64 {
                store_new_job(tx, JOBS, "111122223333", &format!("111122223333/{i:036}"), &job(i))?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(db.count(JOBS, "111122223333/").unwrap(), MAX_JOBS);
        let next = MAX_JOBS as i64;
        db.write("111122223333", |tx| {
            store_new_job(tx, JOBS, "111122223333", &format!("111122223333/{next:036}"), &job(next))
        })
        .unwrap();
        assert_eq!(db.count(JOBS, "111122223333/").unwrap(), MAX_JOBS - MAX_JOBS / 10 + 1);
        // The oldest went; the newest stayed.
        assert!(db.get::<JobRec>(JOBS, &format!("111122223333/{:036}", 0)).unwrap().is_none());
        assert!(db.get::<JobRec>(JOBS, &format!("111122223333/{next:036}")).unwrap().is_some());
    }

    #[test]
    fn subjects_of_arns() {
        let ok = |arn: &str| subject_of(arn).ok();
        assert_eq!(ok("arn:aws:iam::123456789012:user/a/alice"), Some((Subject::User, "alice".into())));
        assert_eq!(ok("arn:aws:iam::aws:policy/ReadOnlyAccess"), Some((Subject::Policy, "ReadOnlyAccess".into())));
        assert_eq!(ok("arn:aws:iam::123456789012:role/r"), Some((Subject::Role, "r".into())));
        for bad in ["arn:aws:iam::aws:user/x", "arn:aws:s3:::bucket", "arn:aws:iam::123456789012:instance-profile/p"] {
            assert!(matches!(subject_of(bad), Err(IamError::InvalidInput(_))), "{bad}");
        }
    }

    #[test]
    fn literal_namespaces_of_allow_statements() {
        let p = rampart_policy::Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["s3:Get*","IAM:List*","*"],"Resource":"*"},
                {"Effect":"Deny","Action":"ec2:*","Resource":"*"},
                {"Effect":"Allow","NotAction":"sqs:*","Resource":"*"}]}"#,
            PolicyType::Identity,
        )
        .unwrap();
        assert_eq!(named_namespaces(p.document()), vec!["s3".to_string(), "iam".to_string()]);
    }
}
