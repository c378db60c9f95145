//! One source of truth per operation.
//!
//! Each AWS operation is one type implementing [`Operation`]: its input is read and validated
//! once ([`Operation::parse`]) into that typed request, which both planning
//! ([`Operation::authorize`]) and execution ([`Operation::run`]) use. A service lists its
//! operation types once, in an [`Operations`] table built with [`op`]; the table answers
//! `has_operation` and dispatches `call`. An operation that is listed must implement all three
//! steps, and one that is not listed is not advertised: nothing can compile half-wired.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::{AuthzCheck, AuthzPlan, AwsError, Input, Output, RequestContext};

/// One AWS operation of a service whose state is `S`.
pub trait Operation<S: ?Sized>: Sized {
    /// AWS's name for the operation (`CreateUser`), as the wire names it.
    const NAME: &'static str;
    /// The service's error type.
    type Error: Into<AwsError>;

    /// Read and validate the input: AWS's validation errors, before anything is authorized or
    /// loaded. The result is the only reading of the input the call makes.
    fn parse(input: &Input) -> Result<Self, Self::Error>;

    /// What the call needs authorized. May load what it checks (a key, a secret) into `self`,
    /// so the run works on exactly what was authorized.
    fn authorize(&mut self, svc: &S, ctx: &RequestContext) -> Result<AuthzPlan, Self::Error>;

    /// Do it. Called only after every check of the plan was allowed.
    fn run(self, svc: &S, ctx: &RequestContext) -> Result<Output, Self::Error>;
}

/// How the pipeline hands a plan's checks to the authorizer.
pub type Decide<'d> = &'d mut dyn FnMut(Vec<AuthzCheck>) -> Result<(), AwsError>;

type CallFn<S> = fn(&S, &RequestContext, &Input, Decide<'_>) -> Result<Output, AwsError>;
type PlanFn<S> = fn(&S, &RequestContext, &Input) -> Result<AuthzPlan, AwsError>;

/// An entry of an [`Operations`] table: an operation's name and its dispatchers.
pub struct Entry<S: ?Sized + 'static> {
    name: &'static str,
    call: CallFn<S>,
    plan: PlanFn<S>,
}

impl<S: ?Sized> Clone for Entry<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized> Copy for Entry<S> {}

/// The table entry for operation type `O`.
pub const fn op<S: ?Sized + 'static, O: Operation<S>>() -> Entry<S> {
    Entry { name: O::NAME, call: call_op::<S, O>, plan: plan_op::<S, O> }
}

/// Parse and plan only: what the call would need authorized.
fn plan_op<S: ?Sized, O: Operation<S>>(svc: &S, ctx: &RequestContext, input: &Input) -> Result<AuthzPlan, AwsError> {
    O::parse(input).map_err(Into::into)?.authorize(svc, ctx).map_err(Into::into)
}

/// Parse once, plan on the parsed request, decide, run on the same request.
fn call_op<S: ?Sized, O: Operation<S>>(
    svc: &S,
    ctx: &RequestContext,
    input: &Input,
    decide: Decide<'_>,
) -> Result<Output, AwsError> {
    let mut req = O::parse(input).map_err(Into::into)?;
    if let AuthzPlan::Checks(checks) = req.authorize(svc, ctx).map_err(Into::into)? {
        decide(checks)?;
    }
    req.run(svc, ctx).map_err(Into::into)
}

/// A service's operations, each listed once (in lists a service may keep per family).
pub struct Operations<S: ?Sized + 'static> {
    lists: &'static [&'static [Entry<S>]],
    by_name: OnceLock<HashMap<&'static str, Entry<S>>>,
}

impl<S: ?Sized + 'static> Operations<S> {
    /// The table of the entries in `lists` (each made by [`op`]). A name listed twice is a
    /// programming error, caught the first time the table is used (and by every service's tests).
    pub const fn new(lists: &'static [&'static [Entry<S>]]) -> Self {
        Operations { lists, by_name: OnceLock::new() }
    }

    fn entries(&self) -> impl Iterator<Item = &'static Entry<S>> {
        self.lists.iter().flat_map(|l| l.iter())
    }

    fn index(&self) -> &HashMap<&'static str, Entry<S>> {
        self.by_name.get_or_init(|| {
            let mut m = HashMap::new();
            for e in self.entries() {
                let dup = m.insert(e.name, *e).is_some();
                assert!(!dup, "operation {} is listed twice", e.name);
            }
            m
        })
    }

    /// Whether `name` is implemented.
    pub fn has(&self, name: &str) -> bool {
        self.index().contains_key(name)
    }

    /// Every implemented operation, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.entries().map(|e| e.name).collect();
        v.sort_unstable();
        v
    }

    /// Run operation `name` (parse, authorize through `decide`, run); `None` when it is not
    /// implemented, for the service to answer in its protocol's words.
    pub fn call(
        &self,
        svc: &S,
        ctx: &RequestContext,
        name: &str,
        input: &Input,
        decide: Decide<'_>,
    ) -> Option<Result<Output, AwsError>> {
        let e = self.index().get(name)?;
        Some((e.call)(svc, ctx, input, decide))
    }

    /// What operation `name` would need authorized for `input`, without running it.
    pub fn plan(
        &self,
        svc: &S,
        ctx: &RequestContext,
        name: &str,
        input: &Input,
    ) -> Option<Result<AuthzPlan, AwsError>> {
        let e = self.index().get(name)?;
        Some((e.plan)(svc, ctx, input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Caller, QueryParams};

    struct Counter;

    /// Echoes `Name`; refuses an empty one at parse time.
    struct Echo {
        name: String,
        planned: bool,
    }

    impl Operation<Counter> for Echo {
        const NAME: &'static str = "Echo";
        type Error = AwsError;

        fn parse(input: &Input) -> Result<Self, AwsError> {
            match input.query().get("Name") {
                Some(n) if !n.is_empty() => Ok(Echo { name: n.to_string(), planned: false }),
                _ => Err(AwsError::new("ValidationError", "Name is required", 400)),
            }
        }

        fn authorize(&mut self, _: &Counter, _: &RequestContext) -> Result<AuthzPlan, AwsError> {
            self.planned = true;
            Ok(AuthzPlan::Checks(vec![AuthzCheck::new("test:Echo", format!("arn:test:{}", self.name))]))
        }

        fn run(self, _: &Counter, _: &RequestContext) -> Result<Output, AwsError> {
            assert!(self.planned, "run on the planned request");
            Ok(Output::Xml(Some(self.name)))
        }
    }

    static OPS: Operations<Counter> = Operations::new(&[&[op::<Counter, Echo>()]]);

    fn ctx() -> RequestContext {
        RequestContext {
            request_id: "r".into(),
            caller: Caller::root("111122223333", "AKIA"),
            region: "us-east-1".into(),
            source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            user_agent: String::new(),
            time: time::OffsetDateTime::UNIX_EPOCH,
            secure_transport: false,
        }
    }

    fn input(name: &str) -> Input {
        Input::Query(QueryParams::from_pairs([("Name", name)]))
    }

    #[test]
    fn dispatches_parsed_request_through_the_decision() {
        assert!(OPS.has("Echo") && !OPS.has("Other"));
        assert_eq!(OPS.names(), vec!["Echo"]);
        let mut seen = Vec::new();
        let out = OPS
            .call(&Counter, &ctx(), "Echo", &input("x"), &mut |c| {
                seen.extend(c);
                Ok(())
            })
            .unwrap()
            .unwrap();
        assert_eq!(out, Output::Xml(Some("x".into())));
        assert_eq!(seen, vec![AuthzCheck::new("test:Echo", "arn:test:x")]);
        assert!(OPS.call(&Counter, &ctx(), "Other", &input("x"), &mut |_| Ok(())).is_none());
        let plan = OPS.plan(&Counter, &ctx(), "Echo", &input("y")).unwrap().unwrap();
        assert_eq!(plan, AuthzPlan::Checks(vec![AuthzCheck::new("test:Echo", "arn:test:y")]));
    }

    #[test]
    fn denial_and_bad_input_stop_before_the_run() {
        let denied = OPS
            .call(&Counter, &ctx(), "Echo", &input("x"), &mut |_| Err(AwsError::new("AccessDenied", "no", 403)))
            .unwrap()
            .unwrap_err();
        assert_eq!(denied.code, "AccessDenied");
        let mut decided = false;
        let bad = OPS
            .call(&Counter, &ctx(), "Echo", &input(""), &mut |_| {
                decided = true;
                Ok(())
            })
            .unwrap()
            .unwrap_err();
        assert_eq!(bad.code, "ValidationError");
        assert!(!decided, "bad input is refused before authorization");
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn a_name_listed_twice_is_caught() {
        static TWICE: Operations<Counter> = Operations::new(&[&[op::<Counter, Echo>()], &[op::<Counter, Echo>()]]);
        TWICE.has("Echo");
    }
}
