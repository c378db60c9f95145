//! The request pipeline, shared by every service:
//! protocol → authenticate (SigV4) → decode → authorize → handler → encode → audit.
//!
//! Synchronous on purpose: handlers work over the synchronous store, and the HTTP layer runs
//! each call on the blocking pool, so a slow fsync never stalls the reactor.
//!
//! Audit: every call whose service is known (denied and failed-authentication calls included)
//! produces one CloudTrail record, handed to the audit writer ([`rampart_trail::AuditLog`]). The
//! response is released only once that record is committed ([`Pending::finish`] awaits it); a
//! record that cannot be committed turns the answer into `InternalFailure`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use rampart_protocol::arn;
use rampart_protocol::query::QueryParams;
use rampart_protocol::sigv4::{self, AuthError, SignedRequest};
use rampart_protocol::xml::query_response;
use rampart_protocol::{AwsError, JsonMessage, Protocol};
use rampart_service::{
    Authorizer, AuthzCheck, Caller, Credential, CredentialStore, Input, Output, RequestContext, Service,
};
use rampart_store::{CallUnit, UnitStore};
use rampart_trail::{AuditLog, CallFacts, Identity, Receipt, TlsFacts};
use time::OffsetDateTime;

use crate::compat::NoAuthBudget;
use crate::metrics::{AuditTimer, Decision, Metrics};

/// An HTTP request as the pipeline sees it.
#[derive(Debug)]
pub struct RawRequest<'a> {
    pub method: &'a str,
    /// Raw, percent-encoded path.
    pub path: &'a str,
    /// Raw query string (no `?`).
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub remote: SocketAddr,
    pub secure_transport: bool,
}

impl RawRequest<'_> {
    /// The request as SigV4 reads it.
    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: self.method,
            path: self.path,
            query: self.query,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub request_id: String,
    pub body: Vec<u8>,
}

/// The services, and the identity pieces every call goes through.
pub struct Pipeline {
    services: HashMap<&'static str, Arc<dyn Service>>,
    authorizer: Arc<dyn Authorizer>,
    credentials: Arc<dyn CredentialStore>,
    /// `--compat moto`: the no-auth budget, and the account unknown keys act as the root of.
    no_auth: Option<(Arc<NoAuthBudget>, String)>,
    /// Where records go; `None` only in tests that build a bare pipeline.
    audit: Option<Arc<AuditLog>>,
    /// Recipient of records whose caller's account is unknown (an unknown access key).
    default_account: String,
    /// The services' store: each call runs in a unit of work, so its changes and its audit
    /// record commit together.
    units: Option<Arc<UnitStore>>,
    /// `GET /metrics`: observed once per call at the end of [`Pipeline::handle_pending_at`].
    metrics: Metrics,
}

/// How errors are written for the service a request reached (or, before routing, the protocol the
/// request looks like it speaks).
#[derive(Clone, Copy)]
struct Dialect {
    protocol: Protocol,
    namespace: &'static str,
    json_message: JsonMessage,
}

impl Dialect {
    fn of(service: Option<&dyn Service>, hint: Protocol) -> Self {
        match service {
            Some(s) => {
                Dialect { protocol: s.protocol(), namespace: s.xml_namespace(), json_message: s.json_error_message() }
            }
            None => Dialect { protocol: hint, namespace: DEFAULT_XML_NAMESPACE, json_message: JsonMessage::Both },
        }
    }

    fn render(&self, err: &AwsError, request_id: &str) -> (&'static str, Vec<u8>) {
        err.render_as(self.protocol, self.namespace, self.json_message, request_id)
    }
}

/// A response whose audit record may still be committing.
pub struct Pending {
    response: RawResponse,
    receipt: Option<Receipt>,
    /// How the error is written should the audit commit fail.
    dialect: Dialect,
    /// metrics: times the audit commit (set with `receipt`).
    audit_timer: Option<AuditTimer>,
}

impl Pending {
    /// Wait for the record's commit (asynchronously), then release the response.
    pub async fn finish(self) -> RawResponse {
        let outcome = match self.receipt {
            None => return self.response,
            Some(r) => r.committed().await,
        };
        if let Some(t) = self.audit_timer {
            t.observe(); // metrics
        }
        Self::settle(self.response, outcome, self.dialect)
    }

    /// Like [`Pending::finish`], blocking this thread (not for async worker threads).
    pub fn wait(self) -> RawResponse {
        let outcome = match self.receipt {
            None => return self.response,
            Some(r) => r.wait(),
        };
        if let Some(t) = self.audit_timer {
            t.observe(); // metrics
        }
        Self::settle(self.response, outcome, self.dialect)
    }

    fn settle(response: RawResponse, outcome: Result<(), rampart_trail::AuditError>, dialect: Dialect) -> RawResponse {
        match outcome {
            Ok(()) => response,
            Err(e) => {
                // No unaudited success: the caller gets an error instead of the result.
                tracing::error!(request_id = %response.request_id, error = %e, "call failed: audit record not committed");
                let err = AwsError::internal("We encountered an internal error. Please try again.");
                let (content_type, body) = dialect.render(&err, &response.request_id);
                RawResponse { status: err.status, content_type, request_id: response.request_id, body }
            }
        }
    }
}

/// What the pipeline learnt about a call, for its audit record.
#[derive(Default)]
struct Facts<'s> {
    service: Option<&'s dyn Service>,
    operation: Option<String>,
    caller: Option<Caller>,
    access_key_id: Option<String>,
    region: String,
    input: Option<Input>,
    time: Option<OffsetDateTime>,
    /// metrics: the authorizer's answer, when authorization ran.
    decision: Option<Decision>,
}

/// Fallback for rendering errors before the service is known.
const DEFAULT_XML_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

impl Pipeline {
    pub fn new(
        services: Vec<Arc<dyn Service>>,
        authorizer: Arc<dyn Authorizer>,
        credentials: Arc<dyn CredentialStore>,
    ) -> Self {
        let services = services.into_iter().map(|s| (s.signing_name(), s)).collect();
        Pipeline {
            services,
            authorizer,
            credentials,
            no_auth: None,
            audit: None,
            default_account: String::new(),
            units: None,
            metrics: Metrics::default(),
        }
    }

    /// Report calls to `metrics` (the server's registry, kept across `--compat moto` resets).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// What this pipeline reports to.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Audit records deleted by retention so far (for metrics).
    pub fn audit_pruned_total(&self) -> u64 {
        self.audit.as_ref().map_or(0, |a| a.pruned_total())
    }

    /// Run every call in a unit of work on `store` (the store the services were given): a call's
    /// changes commit in one transaction with its audit record, or not at all.
    pub fn with_units(mut self, store: Arc<UnitStore>) -> Self {
        self.units = Some(store);
        self
    }

    /// Whether a request may write (or otherwise take long): such calls leave the serving thread.
    /// Judged from the operation name alone, before decoding: reads by name are the calls that
    /// only read the store (AWS's own read-only naming), plus KMS's cryptographic operations.
    pub fn may_block(&self, req: &RawRequest<'_>) -> bool {
        const NON_WRITING: &[&str] = &[
            "Get",
            "List",
            "Describe",
            "Lookup",
            "Simulate",
            "Decode",
            "Encrypt",
            "Decrypt",
            "ReEncrypt",
            "GenerateDataKey",
            "GenerateRandom",
            "GenerateMac",
            "VerifyMac",
            "Sign",
            "Verify",
            "Validate",
        ];
        let writes = |op: &str| op.is_empty() || !NON_WRITING.iter().any(|p| op.starts_with(p));
        // An unsigned STS call (web identity) fetches the provider's keys over the network.
        if is_unsigned(req) {
            return true;
        }
        if let Some(target) = header_str(req.headers, "x-amz-target") {
            let (prefix, op) = target.rsplit_once('.').unwrap_or(("", target));
            // A read that may call out (KMS under an external key store's key) leaves too.
            return writes(op)
                || self.services.values().any(|s| {
                    s.reads_may_call_out() && rampart_protocol::json_target_matches(s.json_target_prefix(), prefix)
                });
        }
        // awsQuery: every `Action` the request carries (query string and body) must be a read;
        // scanned without building the parameter map (decode() builds it once, later).
        let body: &[u8] = if req.method.eq_ignore_ascii_case("POST") { req.body } else { &[] };
        let mut named = false;
        for action in QueryParams::actions(req.query.as_bytes()).chain(QueryParams::actions(body)) {
            named = true;
            if writes(&action) {
                return true;
            }
        }
        !named
    }

    /// Record every call in `audit`; calls by unknown keys are recorded under `default_account`.
    pub fn with_audit(mut self, audit: Arc<AuditLog>, default_account: impl Into<String>) -> Self {
        self.audit = Some(audit);
        self.default_account = default_account.into();
        self
    }

    /// Follow moto's server mode: while `budget` lasts, calls skip authentication and authorization,
    /// and access keys Rampart does not know act as `account_id`'s root.
    pub fn with_no_auth_budget(mut self, budget: Arc<NoAuthBudget>, account_id: String) -> Self {
        self.no_auth = Some((budget, account_id));
        self
    }

    /// The public document a service publishes at `path` (unauthenticated GETs: OpenID Connect
    /// discovery documents and key sets of outbound federation issuers).
    pub fn public_document(&self, path: &str) -> Option<Result<serde_json::Value, AwsError>> {
        self.services.values().find_map(|s| s.public_document(path))
    }

    /// The signing names of the services on this pipeline, sorted.
    pub fn service_names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.services.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// What each service implements of the operations in its botocore model, by signing name.
    pub fn coverage(&self) -> Vec<Coverage> {
        let mut v: Vec<Coverage> = self
            .services
            .iter()
            .map(|(name, svc)| {
                let implemented = svc.operation_names();
                let missing = rampart_service::model_operations(svc.model_name())
                    .iter()
                    .copied()
                    .filter(|op| !svc.has_operation(op))
                    .collect();
                Coverage { service: name, implemented, missing }
            })
            .collect();
        v.sort_unstable_by_key(|c| c.service);
        v
    }

    /// Handle one request end to end, waiting for its audit record (blocking this thread).
    pub fn handle(&self, req: &RawRequest<'_>) -> RawResponse {
        self.handle_pending(req).wait()
    }

    /// [`Pipeline::handle`] with the server's clock reading `now` (tests of time-bound credentials).
    pub fn handle_at(&self, req: &RawRequest<'_>, now: OffsetDateTime) -> RawResponse {
        self.handle_pending_at(req, now).wait()
    }

    /// Handle one request; the response is released by [`Pending::finish`] once audited.
    /// Never panics on bad input; every failure is an AWS error.
    pub fn handle_pending(&self, req: &RawRequest<'_>) -> Pending {
        self.handle_pending_at(req, OffsetDateTime::now_utc())
    }

    /// A request refused at the HTTP edge before it could be handled (its body too large,
    /// malformed or too slow; `req.body` is empty): answered with `err` and, when its SigV4
    /// credential scope names a service, recorded like any other call of that service (the
    /// caller unauthenticated: the signature cannot be checked without the body).
    pub fn refused(&self, req: &RawRequest<'_>, err: AwsError) -> Pending {
        let request_id = new_request_id();
        let mut facts = Facts::default();
        let signed = req.signed();
        if let Ok(auth) = sigv4::parse(&signed) {
            if let Some(service) = self.services.get(auth.service()) {
                facts.service = Some(service.as_ref());
                facts.region = auth.region().to_string();
                facts.access_key_id = Some(auth.access_key_id().to_string());
                facts.time = Some(OffsetDateTime::now_utc());
            }
        }
        let dialect = Dialect::of(facts.service, protocol_hint(req.headers));
        let audit_timer = self.metrics.audit_timer();
        let receipt = self.audit(req, &request_id, &facts, None, Some(&err), None);
        let (content_type, body) = dialect.render(&err, &request_id);
        let response = RawResponse { status: err.status, content_type, request_id, body };
        let audit_timer = receipt.as_ref().map(|_| audit_timer);
        Pending { response, receipt, dialect, audit_timer }
    }

    fn handle_pending_at(&self, req: &RawRequest<'_>, now: OffsetDateTime) -> Pending {
        let started = std::time::Instant::now(); // metrics
        let request_id = new_request_id();
        let hint = protocol_hint(req.headers);
        let mut facts = Facts::default();
        let mut unit = match self.units.as_ref().map(|u| u.enter()).transpose() {
            Ok(unit) => unit,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the call's unit of work");
                None
            }
        };
        let run = std::panic::AssertUnwindSafe(|| self.handle_inner(req, &request_id, now, &mut facts));
        let result = match std::panic::catch_unwind(run) {
            Ok(result) => result.map_err(|(service, mut err)| {
                bound_message(&mut err);
                (service, err)
            }),
            Err(_) => {
                // A bug: whatever the call wrote is rolled back; the call is still recorded.
                tracing::error!(request_id, "handler panicked");
                unit = None;
                Err((facts.service, AwsError::internal("We encountered an internal error. Please try again.")))
            }
        };
        let dialect = Dialect::of(facts.service, hint);
        // metrics: authentication failures, and the audit commit's timer.
        let refused = result
            .as_ref()
            .err()
            .filter(|_| facts.operation.is_none())
            .and_then(|(_, e)| crate::metrics::refusal_reason(e));
        let audit_timer = self.metrics.audit_timer();
        let receipt = match &result {
            Ok((_, _, output)) => self.audit(req, &request_id, &facts, Some(output), None, unit),
            Err((_, err)) => self.audit(req, &request_id, &facts, None, Some(err), unit),
        };
        let partition = facts.service.and_then(|s| edge_partition(s, &facts.region));
        let response = match result {
            Ok((service, op, output)) => {
                let output = match (partition, output) {
                    (Some(p), Output::Xml(Some(xml))) => Output::Xml(Some(arn::to_partition(&xml, p))),
                    (Some(p), Output::Json(mut v)) => {
                        map_json_strings(&mut v, &|s| arn::to_partition(s, p));
                        Output::Json(v)
                    }
                    (Some(p), text @ Output::JsonText(_)) => {
                        let mut v = text.json_value();
                        map_json_strings(&mut v, &|s| arn::to_partition(s, p));
                        Output::Json(v)
                    }
                    (_, output) => output,
                };
                render_output(service, &op, output, request_id)
            }
            Err((_, mut err)) => {
                if let Some(p) = partition {
                    err.message = arn::to_partition(&err.message, p);
                }
                if err.status >= 500 {
                    tracing::error!(request_id, code = %err.code, message = %err.message, "request failed");
                }
                let (content_type, body) = dialect.render(&err, &request_id);
                RawResponse { status: err.status, content_type, request_id, body }
            }
        };
        // metrics: the one observation per call.
        if let Some(reason) = refused {
            self.metrics.observe_refusal(reason);
        }
        let op = facts.operation.as_deref();
        self.metrics.observe_call(facts.service, op, response.status, started.elapsed(), facts.decision);
        let audit_timer = receipt.as_ref().map(|_| audit_timer);
        Pending { response, receipt, dialect, audit_timer }
    }

    /// Build and submit the call's record. Calls whose service is unknown (no usable SigV4
    /// credential scope) have no event source and are not recorded. When the call wrote, the
    /// record joins its unit of work and both commit together.
    fn audit(
        &self,
        req: &RawRequest<'_>,
        request_id: &str,
        facts: &Facts<'_>,
        output: Option<&Output>,
        error: Option<&AwsError>,
        unit: Option<CallUnit<'_>>,
    ) -> Option<Receipt> {
        // A unit that wrote nothing ends here (starting any work it deferred); one that wrote
        // commits below, with the record.
        let unit = match unit {
            Some(u) if !u.has_writes() => {
                if let Err(e) = u.finish(|_| Ok(())) {
                    tracing::error!(error = %e, "cannot end the call's unit of work");
                }
                None
            }
            other => other,
        };
        let (Some(audit), Some(service)) = (self.audit.as_ref(), facts.service) else {
            // Nothing to record (bare test pipelines): the call's writes still commit.
            let pos = unit?.finish(|_| Ok(()));
            return Some(self.unit_receipt(pos));
        };
        let operation = match &facts.operation {
            Some(op) => std::borrow::Cow::Borrowed(op.as_str()),
            None => std::borrow::Cow::Owned(operation_hint(req)),
        };
        let identity = match &facts.caller {
            Some(c) => Identity::Caller(c),
            None => Identity::Unknown { access_key_id: facts.access_key_id.as_deref() },
        };
        let recipient = facts.caller.as_ref().map_or(self.default_account.as_str(), |c| c.account_id.as_str());
        let record = rampart_trail::build(&CallFacts {
            event_time: facts.time.unwrap_or_else(OffsetDateTime::now_utc),
            event_source: service.event_source(),
            event_name: &operation,
            region: &facts.region,
            source_ip: req.remote.ip(),
            user_agent: header_str(req.headers, http::header::USER_AGENT).unwrap_or_default(),
            identity,
            recipient_account_id: recipient,
            input: facts.input.as_ref(),
            output,
            error,
            request_id,
            tls: req.secure_transport.then(|| TlsFacts {
                tls_version: None,
                cipher_suite: None,
                host: header_str(req.headers, "host"),
            }),
        });
        Some(match unit {
            Some(unit) => self.unit_receipt(unit.finish(|tx| audit.append_in(tx, record))),
            None => audit.submit(record),
        })
    }

    /// The receipt of a unit of work's commit.
    fn unit_receipt(&self, committed: Result<Option<u64>, rampart_store::StoreError>) -> Receipt {
        match (committed, &self.units) {
            (Ok(Some(pos)), Some(units)) => Receipt::committed_at(units.inner().clone(), pos),
            (Ok(_), _) => Receipt::failed(rampart_trail::AuditError::WriterGone),
            (Err(e), _) => {
                tracing::error!(error = %e, "the call's changes and audit record could not be committed");
                Receipt::failed(rampart_trail::AuditError::Store(e.to_string()))
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn handle_inner<'s>(
        &'s self,
        req: &RawRequest<'_>,
        request_id: &str,
        now: OffsetDateTime,
        facts: &mut Facts<'s>,
    ) -> Result<(&'s dyn Service, String, Output), (Option<&'s dyn Service>, AwsError)> {
        let signed = req.signed();
        let hint = protocol_hint(req.headers);
        if is_unsigned(req) {
            if let Some(found) = self.unsigned(req, request_id, now, facts) {
                return found;
            }
        }
        let auth = sigv4::parse(&signed).map_err(|e| (None, e.to_aws_error_for(hint)))?;
        let service: &dyn Service = match self.services.get(auth.service()) {
            Some(s) => s.as_ref(),
            None => {
                return Err((
                    None,
                    AwsError::new(
                        "UnrecognizedService",
                        format!("Rampart does not offer the service '{}' (from the credential scope).", auth.service()),
                        400,
                    ),
                ))
            }
        };
        let fail = |e: AwsError| (Some(service), e);
        let auth_error = |e: AuthError| (Some(service), e.to_aws_error_for(service.protocol()));
        facts.service = Some(service);
        facts.region = auth.region().to_string();
        facts.access_key_id = Some(auth.access_key_id().to_string());
        facts.time = Some(now);

        let bypass = self.no_auth.as_ref().filter(|(budget, _)| budget.take()).map(|(_, account)| account);
        let mut known_key = true;
        let credential = if let Some(account) = bypass {
            // moto's no-auth phase: no signature, clock or token checks; unknown keys are the root.
            match self.credentials.lookup(auth.access_key_id()).map_err(fail)?.filter(|c| c.active) {
                Some(c) => c,
                None => {
                    known_key = false;
                    Credential {
                        secret_access_key: Default::default(),
                        session_token: None,
                        expires_at: None,
                        active: true,
                        caller: Caller::root(account, auth.access_key_id()),
                    }
                }
            }
        } else {
            // Authenticate. AWS checks the clock before it looks the key up.
            sigv4::check_time(&auth, now).map_err(auth_error)?;
            let credential = self.credentials.lookup(auth.access_key_id()).map_err(fail)?;
            let authenticated = |c: &Credential| -> Result<(), AuthError> {
                if !c.active {
                    return Err(AuthError::InvalidClientTokenId);
                }
                sigv4::verify_with(&signed, &auth, c.secret_access_key.expose(), now, service.sigv4_options())?;
                // A session token must be exactly the one issued with these keys; long-term keys take none.
                match (&c.session_token, &auth.session_token) {
                    (None, None) => {}
                    (Some(expected), Some(given))
                        if constant_time_eq(expected.expose().as_bytes(), given.as_bytes()) => {}
                    _ => return Err(AuthError::InvalidClientTokenId),
                }
                if c.expires_at.is_some_and(|exp| exp <= now) {
                    return Err(AuthError::ExpiredToken);
                }
                Ok(())
            };
            match credential {
                Some(c) => match authenticated(&c) {
                    Ok(()) => c,
                    Err(e) => {
                        // The audit record still names the key's owner.
                        facts.caller = Some(c.caller);
                        return Err(auth_error(e));
                    }
                },
                None => return Err(auth_error(AuthError::InvalidClientTokenId)),
            }
        };
        facts.caller = Some(credential.caller.clone());
        if known_key {
            self.credentials.record_use(auth.access_key_id(), service.signing_name(), auth.region(), now);
        }

        // Decode.
        let (operation, input) = decode(service, req).map_err(fail)?;
        facts.operation = Some(operation.clone());
        if !service.has_operation(&operation) {
            let err = match service.protocol() {
                Protocol::AwsQuery => AwsError::invalid_action(service.signing_name(), &operation),
                _ => AwsError::unknown_operation(service.signing_name(), &operation),
            };
            return Err(fail(err));
        }

        let input = match (edge_partition(service, auth.region()), input) {
            (Some(p), Input::Query(q)) => Input::Query(q.map_values(|v| arn::from_partition(v, p))),
            (Some(p), Input::Json(mut v)) => {
                map_json_strings(&mut v, &|s| arn::from_partition(s, p));
                Input::Json(v)
            }
            (_, input) => input,
        };

        let ctx = RequestContext {
            request_id: request_id.to_string(),
            caller: credential.caller,
            region: auth.region().to_string(),
            source_ip: req.remote.ip(),
            user_agent: header_str(req.headers, http::header::USER_AGENT).unwrap_or_default().to_string(),
            time: now,
            secure_transport: req.secure_transport,
        };
        let input: &Input = facts.input.insert(input);
        self.authorize_and_run(service, ctx, operation, input, bypass.is_none(), &mut facts.decision)
    }

    /// An unsigned awsQuery request for an operation a service authenticates itself
    /// (`AssumeRoleWithWebIdentity`); `None` when no service takes it.
    #[allow(clippy::type_complexity)]
    fn unsigned<'s>(
        &'s self,
        req: &RawRequest<'_>,
        request_id: &str,
        now: OffsetDateTime,
        facts: &mut Facts<'s>,
    ) -> Option<Result<(&'s dyn Service, String, Output), (Option<&'s dyn Service>, AwsError)>> {
        for service in self.services.values() {
            let service = service.as_ref();
            if service.protocol() != Protocol::AwsQuery {
                continue;
            }
            let Ok((operation, input)) = decode(service, req) else { continue };
            if !service.has_operation(&operation) {
                continue;
            }
            let Some(found) = service.unsigned_caller(&operation, &input, request_id) else { continue };
            facts.service = Some(service);
            facts.operation = Some(operation.clone());
            facts.region = UNSIGNED_REGION.to_string();
            facts.time = Some(now);
            let caller = match found {
                Ok(c) => c,
                Err(e) => {
                    facts.input = Some(input);
                    return Some(Err((Some(service), e)));
                }
            };
            facts.caller = Some(caller.clone());
            let ctx = RequestContext {
                request_id: request_id.to_string(),
                caller,
                region: UNSIGNED_REGION.to_string(),
                source_ip: req.remote.ip(),
                user_agent: header_str(req.headers, http::header::USER_AGENT).unwrap_or_default().to_string(),
                time: now,
                secure_transport: req.secure_transport,
            };
            let input: &Input = facts.input.insert(input);
            return Some(self.authorize_and_run(service, ctx, operation, input, true, &mut facts.decision));
        }
        None
    }

    #[allow(clippy::type_complexity)]
    fn authorize_and_run<'s>(
        &'s self,
        service: &'s dyn Service,
        ctx: RequestContext,
        operation: String,
        input: &Input,
        enforce: bool,
        decision: &mut Option<Decision>,
    ) -> Result<(&'s dyn Service, String, Output), (Option<&'s dyn Service>, AwsError)> {
        let fail = |e: AwsError| (Some(service), e);
        // Authorize (the plan is still built in moto's no-auth phase: it validates input), then run.
        let mut decide = |checks: Vec<AuthzCheck>| -> Result<(), AwsError> {
            if enforce {
                for check in checks {
                    let answer = self.authorizer.check(&ctx, service.signing_name(), check);
                    *decision = Decision::of(&answer); // metrics
                    answer?;
                }
            }
            Ok(())
        };
        let output = service.call(&ctx, &operation, input, &mut decide).map_err(fail)?;
        Ok((service, operation, output))
    }
}

/// The most characters an error message keeps (the response and the audit record): a backstop
/// behind [`rampart_protocol::echo`], which bounds each value a message quotes.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 4096;

/// Cut `err`'s message to [`MAX_ERROR_MESSAGE_CHARS`] (then `...`).
fn bound_message(err: &mut AwsError) {
    if let std::borrow::Cow::Owned(cut) = rampart_protocol::error::echo_at_most(&err.message, MAX_ERROR_MESSAGE_CHARS) {
        err.message = cut;
    }
}

/// The partition whose ARNs a request signed for `region` speaks, when it is not `aws` and the
/// service is IAM or STS: Rampart stores `aws` ARNs and translates them at the edge (request values
/// `arn:aws-cn:…` → `arn:aws:…`, responses back), so a `cn-north-1` caller sees `arn:aws-cn:` ARNs
/// as AWS China would show them, and policies written through it match what they name.
fn edge_partition(service: &dyn Service, region: &str) -> Option<&'static str> {
    let p = arn::partition_of_region(region);
    (p != "aws" && matches!(service.signing_name(), "iam" | "sts" | "organizations")).then_some(p)
}

/// Rewrites every string of a JSON document that holds an ARN (edge partition translation).
fn map_json_strings(v: &mut serde_json::Value, f: &dyn Fn(&str) -> String) {
    match v {
        serde_json::Value::String(s) if s.contains("arn:") => *s = f(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|x| map_json_strings(x, f)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|x| map_json_strings(x, f)),
        _ => {}
    }
}

/// The region of unsigned requests (they carry no credential scope).
const UNSIGNED_REGION: &str = "us-east-1";

/// No SigV4 at all: neither an `Authorization` header nor a presigned query.
fn is_unsigned(req: &RawRequest<'_>) -> bool {
    !req.headers.contains_key("authorization")
        && !req.query.split('&').any(|p| {
            let k = p.split('=').next().unwrap_or("");
            k.eq_ignore_ascii_case("X-Amz-Signature") || k.eq_ignore_ascii_case("X-Amz-Algorithm")
        })
}

/// Which protocol to answer in before the service is known.
fn protocol_hint(headers: &HeaderMap) -> Protocol {
    if headers.contains_key("x-amz-target") {
        match header_str(headers, "content-type") {
            Some(ct) if ct.contains("1.0") => Protocol::AwsJson1_0,
            _ => Protocol::AwsJson1_1,
        }
    } else {
        Protocol::AwsQuery
    }
}

/// The operation name of a request that failed before decoding (for its audit record).
fn operation_hint(req: &RawRequest<'_>) -> String {
    if let Some(target) = header_str(req.headers, "x-amz-target") {
        return target.rsplit_once('.').map_or(target, |(_, op)| op).to_string();
    }
    let mut params = QueryParams::parse(req.query.as_bytes());
    if req.method.eq_ignore_ascii_case("POST") && !req.body.is_empty() {
        params.extend(QueryParams::parse(req.body));
    }
    params.action().unwrap_or_default().to_string()
}

fn header_str(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Decode the operation name and its input for `service`'s protocol.
fn decode(service: &dyn Service, req: &RawRequest<'_>) -> Result<(String, Input), AwsError> {
    match service.protocol() {
        Protocol::AwsQuery => {
            let mut params = QueryParams::parse(req.query.as_bytes());
            if req.method.eq_ignore_ascii_case("POST") && !req.body.is_empty() {
                params.extend(QueryParams::parse(req.body));
            }
            let action = params
                .action()
                .map(str::to_string)
                .ok_or_else(|| AwsError::new("MissingAction", "Missing Action", 400))?;
            Ok((action, Input::Query(params)))
        }
        Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => {
            let target = header_str(req.headers, "x-amz-target")
                .ok_or_else(|| AwsError::new("MissingAction", "Missing X-Amz-Target header", 400))?;
            let op = match target.rsplit_once('.') {
                Some((prefix, op)) if rampart_protocol::json_target_matches(service.json_target_prefix(), prefix) => {
                    op.to_string()
                }
                _ => return Err(AwsError::unknown_operation(service.signing_name(), target)),
            };
            let body = if req.body.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Object(Default::default())
            } else {
                serde_json::from_slice(req.body).map_err(|e| {
                    AwsError::new("SerializationException", format!("Request body is not valid JSON: {e}"), 400)
                })?
            };
            if !body.is_object() {
                return Err(AwsError::new("SerializationException", "Request body must be a JSON object", 400));
            }
            Ok((op, Input::Json(body)))
        }
        Protocol::RestJson1 => {
            let op = service
                .rest_operation(req.method, req.path)
                .ok_or_else(|| AwsError::unknown_operation(service.signing_name(), req.path))?;
            let mut body = if req.body.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Object(Default::default())
            } else {
                serde_json::from_slice(req.body).map_err(|e| {
                    AwsError::new("SerializationException", format!("Request body is not valid JSON: {e}"), 400)
                })?
            };
            let serde_json::Value::Object(members) = &mut body else {
                return Err(AwsError::new("SerializationException", "Request body must be a JSON object", 400));
            };
            // Query-string members (the model's `location: querystring`) join the body's.
            for (k, v) in QueryParams::parse(req.query.as_bytes()).iter() {
                members.entry(k.to_string()).or_insert_with(|| serde_json::Value::String(v.to_string()));
            }
            Ok((op.to_string(), Input::Json(body)))
        }
    }
}

fn render_output(service: &dyn Service, operation: &str, output: Output, request_id: String) -> RawResponse {
    match output {
        Output::Xml(result) => {
            let body = query_response(operation, service.xml_namespace(), result.as_deref(), &request_id);
            RawResponse { status: 200, content_type: "text/xml", request_id, body: body.into_bytes() }
        }
        Output::Json(value) => RawResponse {
            status: 200,
            content_type: service.protocol().content_type(),
            request_id,
            body: value.to_string().into_bytes(),
        },
        Output::JsonText(text) => RawResponse {
            status: 200,
            content_type: service.protocol().content_type(),
            request_id,
            body: text.into_bytes(),
        },
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A request ID in AWS's UUID form.
/// One service's coverage of its botocore model ([`Pipeline::coverage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub service: &'static str,
    /// Every operation the service answers, sorted.
    pub implemented: Vec<&'static str>,
    /// The model's operations it does not (they answer AWS's unknown-operation error).
    pub missing: Vec<&'static str>,
}

pub fn new_request_id() -> String {
    rampart_protocol::new_uuid()
}
