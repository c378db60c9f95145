//! The compiled, indexed form of a policy the fast evaluator runs.
//!
//! Statements are indexed by the service prefix of their `Action` patterns (`s3` for `s3:Get*`), so a
//! request for `iam:GetUser` only looks at statements that can name an `iam:` action; statements with
//! `NotAction` or a wildcard in the service part are always candidates. Wildcard patterns, condition
//! values (numbers, dates, CIDRs, base64) and principals are parsed once here, not per request.

use std::sync::Arc;

use crate::ast::{Document, Effect, Statement, Version};
use crate::condition;
use crate::json::Position;
use crate::matching::{glob_match, Glob};
use crate::principal::Matcher;
use crate::variables::{self, Piece};
use crate::Context;

/// One `Action`/`NotAction` pattern.
#[derive(Clone, Debug)]
struct ActionPattern {
    /// Lower-cased service prefix when it has no wildcard; then `name` matches the part after ':'.
    service: Option<Box<str>>,
    name: Glob,
    /// The whole pattern (used when the service part has wildcards).
    full: Glob,
}

impl ActionPattern {
    fn new(p: &str) -> ActionPattern {
        let full = Glob::new(p, true);
        match p.split_once(':') {
            Some((svc, name)) if !svc.contains(['*', '?']) => {
                ActionPattern { service: Some(svc.to_ascii_lowercase().into()), name: Glob::new(name, true), full }
            }
            _ => ActionPattern { service: None, name: Glob::Any, full },
        }
    }

    #[inline]
    fn matches(&self, service: &str, name: &str, action: &str) -> bool {
        match &self.service {
            Some(s) => s.eq_ignore_ascii_case(service) && self.name.matches_ci(name),
            None => self.full.matches_ci(action),
        }
    }
}

#[derive(Clone, Debug)]
enum ResourcePattern {
    Static(Glob),
    Dynamic(Vec<Piece>),
}

#[derive(Clone, Debug)]
struct Resources {
    negated: bool,
    /// A plain `"*"` is listed.
    any: bool,
    patterns: Vec<ResourcePattern>,
}

impl Resources {
    fn matches(&self, resource: &str, ctx: &Context) -> bool {
        let hit = self.any
            || self.patterns.iter().any(|p| match p {
                ResourcePattern::Static(g) => g.matches(resource),
                ResourcePattern::Dynamic(pieces) => {
                    let mut atoms = Vec::new();
                    variables::resolve_atoms(pieces, ctx, &mut atoms) && glob_match(&atoms, resource.as_bytes(), false)
                }
            });
        hit != self.negated
    }
}

/// A compiled statement.
#[derive(Clone, Debug)]
pub struct CompiledStatement {
    /// Position in the document's Statement list.
    pub index: usize,
    pub effect: Effect,
    pub sid: Option<Arc<str>>,
    actions_negated: bool,
    actions: Vec<ActionPattern>,
    /// `None`: no Resource element (trust policies) — the statement is about the role itself.
    resources: Option<Resources>,
    pub principal: Option<Matcher>,
    pub conditions: Vec<condition::Compiled>,
    pub start: Position,
    pub end: Position,
}

impl CompiledStatement {
    fn new(s: &Statement, version: Version) -> CompiledStatement {
        let (actions_negated, actions) = match &s.action {
            Some(a) => (a.negated, a.values.iter().map(|p| ActionPattern::new(p)).collect()),
            None => (false, Vec::new()),
        };
        let resources = s.resource.as_ref().map(|r| {
            let mut any = false;
            let mut patterns = Vec::new();
            for v in &r.values {
                if v == "*" {
                    any = true;
                    continue;
                }
                patterns.push(match variables::parse(v, version) {
                    Some(p) => ResourcePattern::Dynamic(p),
                    None => ResourcePattern::Static(Glob::new(v, false)),
                });
            }
            Resources { negated: r.negated, any, patterns }
        });
        CompiledStatement {
            index: s.index,
            effect: s.effect,
            sid: s.sid.as_deref().map(Arc::from),
            actions_negated,
            actions,
            resources,
            principal: s.principal.as_ref().map(Matcher::new),
            conditions: s.conditions.iter().map(|c| condition::Compiled::new(c, version)).collect(),
            start: s.start,
            end: s.end,
        }
    }

    #[inline]
    pub fn action_matches(&self, service: &str, name: &str, action: &str) -> bool {
        self.actions.iter().any(|p| p.matches(service, name, action)) != self.actions_negated
    }

    /// Whether this statement's `Action` (or `NotAction`) covers some action of `service`,
    /// whatever its resources and conditions: any pattern that can match `service:…`; for
    /// `NotAction`, unless a pattern excludes every action of the service (`service:*`, `*`, a
    /// prefix such as `s3*` or `s*`).
    pub fn covers_service(&self, service: &str) -> bool {
        let head = format!("{service}:");
        if self.actions_negated {
            let excludes_all = self.actions.iter().any(|p| match (&p.service, &p.full) {
                (Some(s), _) => s.eq_ignore_ascii_case(service) && p.name == Glob::Any,
                (None, Glob::Any) => true,
                (None, Glob::Prefix(q)) => {
                    head.len() >= q.len() && head.as_bytes().get(..q.len()).is_some_and(|h| h.eq_ignore_ascii_case(q))
                }
                (None, _) => false,
            });
            return !excludes_all;
        }
        self.actions.iter().any(|p| match &p.service {
            Some(s) => s.eq_ignore_ascii_case(service),
            None => p.full.can_match_after_ci(&head),
        })
    }

    #[inline]
    pub fn resource_matches(&self, resource: &str, ctx: &Context) -> bool {
        self.resources.as_ref().is_none_or(|r| r.matches(resource, ctx))
    }
}

/// A compiled policy: statements plus the service index.
#[derive(Clone, Debug, Default)]
pub struct CompiledPolicy {
    pub statements: Vec<CompiledStatement>,
    /// (lower-cased service prefix, statement positions), sorted by prefix.
    by_service: Vec<(Box<str>, Vec<u32>)>,
    /// Statements every request must look at (NotAction, wildcard service).
    always: Vec<u32>,
    /// Whether any statement reads the request context (a condition, or a policy variable in
    /// Resource/NotResource); a request only needs its context built when some policy does.
    pub reads_context: bool,
}

impl CompiledPolicy {
    pub fn new(doc: &Document) -> CompiledPolicy {
        let statements: Vec<CompiledStatement> =
            doc.statements.iter().map(|s| CompiledStatement::new(s, doc.version)).collect();
        let mut by_service: Vec<(Box<str>, Vec<u32>)> = Vec::new();
        let mut always = Vec::new();
        for (i, s) in statements.iter().enumerate() {
            let i = i as u32;
            if s.actions_negated || s.actions.iter().any(|a| a.service.is_none()) {
                always.push(i);
                continue;
            }
            for a in &s.actions {
                let Some(svc) = &a.service else { continue };
                match by_service.iter_mut().find(|(k, _)| k == svc) {
                    Some((_, v)) => {
                        if v.last() != Some(&i) {
                            v.push(i);
                        }
                    }
                    None => by_service.push((svc.clone(), vec![i])),
                }
            }
        }
        by_service.sort_by(|a, b| a.0.cmp(&b.0));
        let reads_context = statements.iter().any(|s| {
            !s.conditions.is_empty()
                || s.resources
                    .as_ref()
                    .is_some_and(|r| r.patterns.iter().any(|p| matches!(p, ResourcePattern::Dynamic(_))))
        });
        CompiledPolicy { statements, by_service, always, reads_context }
    }

    /// Whether an `Allow` statement covers some action of `service` (ListPoliciesGrantingServiceAccess).
    pub fn allows_some_action_of(&self, service: &str) -> bool {
        self.statements.iter().any(|s| s.effect == Effect::Allow && s.covers_service(service))
    }

    /// The statements that can match an action of `service`, in document order.
    #[inline]
    pub fn candidates<'p>(&'p self, service: &str) -> Candidates<'p> {
        let indexed: &[u32] = if self.by_service.len() <= 8 {
            self.by_service.iter().find(|(k, _)| k.eq_ignore_ascii_case(service)).map_or(&[], |(_, v)| v)
        } else {
            self.by_service
                .binary_search_by(|(k, _)| k.bytes().cmp(service.bytes().map(|b| b.to_ascii_lowercase())))
                .ok()
                .and_then(|i| self.by_service.get(i))
                .map_or(&[], |(_, v)| v)
        };
        Candidates { statements: &self.statements, a: indexed, b: &self.always }
    }
}

/// Merge of two sorted index lists.
pub struct Candidates<'p> {
    statements: &'p [CompiledStatement],
    a: &'p [u32],
    b: &'p [u32],
}

impl<'p> Iterator for Candidates<'p> {
    type Item = &'p CompiledStatement;

    #[inline]
    fn next(&mut self) -> Option<&'p CompiledStatement> {
        let i = match (self.a.first(), self.b.first()) {
            (Some(&x), Some(&y)) if x < y => {
                self.a = self.a.get(1..).unwrap_or_default();
                x
            }
            (Some(_), Some(&y)) => {
                self.b = self.b.get(1..).unwrap_or_default();
                y
            }
            (Some(&x), None) => {
                self.a = self.a.get(1..).unwrap_or_default();
                x
            }
            (None, Some(&y)) => {
                self.b = self.b.get(1..).unwrap_or_default();
                y
            }
            (None, None) => return None,
        };
        self.statements.get(i as usize)
    }
}
