//! Test harness: an `Iam` over an in-memory store, calls through the `Service` contract the way
//! the pipeline makes them (authorize → every check through the authorizer → invoke), and a tiny
//! XML reader for the results.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rampart_iam::Iam;
use rampart_protocol::query::QueryParams;
use rampart_protocol::AwsError;
use rampart_service::{Authorizer, AuthzCheck, AuthzPlan, CredentialStore, Input, Output, RequestContext, Service};
use rampart_store::{Sealer, SqliteStore, Store};
use time::OffsetDateTime;

pub const ACCT: &str = "111122223333";
pub const ROOT_KEY: &str = "AKIAROOTROOTROOT0001";
pub const ROOT_SECRET: &str = "rootsecretrootsecretrootsecretrootsecret";

pub struct H {
    pub store: Arc<SqliteStore>,
    pub iam: Iam,
    pub svc: Arc<dyn Service>,
    pub sts: Arc<dyn Service>,
    pub authz: Arc<dyn Authorizer>,
    pub creds: Arc<dyn CredentialStore>,
}

impl H {
    pub fn new() -> Self {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let dyn_store: Arc<dyn Store> = store.clone();
        let iam = Iam::new(dyn_store, Arc::new(Sealer::new(&Sealer::generate_key())));
        iam.bootstrap_account(ACCT, ROOT_KEY, ROOT_SECRET).unwrap();
        H {
            svc: iam.iam_service(),
            sts: iam.sts_service(),
            authz: iam.authorizer(),
            creds: iam.credentials(),
            store,
            iam,
        }
    }

    pub fn ctx_for(&self, key: &str) -> RequestContext {
        let cred = self.creds.lookup(key).unwrap().expect("known key");
        RequestContext {
            request_id: "req-1".into(),
            caller: cred.caller,
            region: "us-east-1".into(),
            source_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            user_agent: "test-agent".into(),
            time: OffsetDateTime::now_utc(),
            secure_transport: true,
        }
    }

    pub fn root(&self) -> RequestContext {
        self.ctx_for(ROOT_KEY)
    }

    /// parse → plan → checks → run, on any service.
    pub fn call_on(
        &self,
        svc: &dyn Service,
        ctx: &RequestContext,
        op: &str,
        params: &[(&str, &str)],
    ) -> Result<Node, AwsError> {
        assert!(svc.has_operation(op), "{op} not advertised");
        let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        pairs.push(("Action".into(), op.into()));
        let input = Input::Query(QueryParams::from_pairs(pairs));
        let mut decide = |checks: Vec<AuthzCheck>| {
            for c in checks {
                self.authz.check(ctx, svc.signing_name(), c)?;
            }
            Ok(())
        };
        match svc.call(ctx, op, &input, &mut decide)? {
            Output::Xml(Some(x)) => Ok(parse_xml(&format!("<{op}Result>{x}</{op}Result>"))),
            Output::Xml(None) => Ok(Node::default()),
            Output::Json(_) | Output::JsonText(_) => panic!("IAM answers XML"),
        }
    }

    pub fn call(&self, ctx: &RequestContext, op: &str, params: &[(&str, &str)]) -> Result<Node, AwsError> {
        self.call_on(self.svc.as_ref(), ctx, op, params)
    }

    /// As root; panics on error.
    pub fn ok(&self, op: &str, params: &[(&str, &str)]) -> Node {
        self.call(&self.root(), op, params).unwrap_or_else(|e| panic!("{op} failed: {e}"))
    }

    /// As root; panics on success.
    pub fn err(&self, op: &str, params: &[(&str, &str)]) -> AwsError {
        match self.call(&self.root(), op, params) {
            Ok(n) => panic!("{op} unexpectedly succeeded: {n:?}"),
            Err(e) => e,
        }
    }

    /// The plan `op` asks for, as root.
    pub fn plan(&self, op: &str, params: &[(&str, &str)]) -> AuthzPlan {
        let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        pairs.push(("Action".into(), op.into()));
        self.svc.plan(&self.root(), op, &Input::Query(QueryParams::from_pairs(pairs))).unwrap()
    }

    /// A user with one access key; returns the key ID.
    pub fn user_with_key(&self, name: &str) -> String {
        self.ok("CreateUser", &[("UserName", name)]);
        self.ok("CreateAccessKey", &[("UserName", name)]).text("AccessKey/AccessKeyId")
    }
}

pub fn assert_err(e: &AwsError, code: &str, status: u16) {
    assert_eq!((e.code.as_ref(), e.status), (code, status), "{e}");
}

/// A parsed XML element.
#[derive(Debug, Default, Clone)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The first element at a `/`-separated path below this one.
    pub fn opt(&self, path: &str) -> Option<&Node> {
        let mut cur = self;
        for part in path.split('/') {
            cur = cur.children.iter().find(|c| c.name == part)?;
        }
        Some(cur)
    }

    pub fn get(&self, path: &str) -> &Node {
        self.opt(path).unwrap_or_else(|| panic!("no {path} in {self:#?}"))
    }

    pub fn text(&self, path: &str) -> String {
        self.get(path).text.clone()
    }

    pub fn has(&self, path: &str) -> bool {
        self.opt(path).is_some()
    }

    /// Children named `member` of the element at `path`.
    pub fn members(&self, path: &str) -> Vec<&Node> {
        self.get(path).children.iter().filter(|c| c.name == "member").collect()
    }

    /// Texts of `member/{field}` (or of `member` itself when `field` is empty).
    pub fn member_texts(&self, path: &str, field: &str) -> Vec<String> {
        self.members(path).into_iter().map(|m| if field.is_empty() { m.text.clone() } else { m.text(field) }).collect()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#xD;", "\r")
        .replace("&amp;", "&")
}

/// Parse the small, attribute-free XML IAM emits.
pub fn parse_xml(s: &str) -> Node {
    fn element(s: &str, pos: &mut usize) -> Node {
        assert_eq!(&s[*pos..*pos + 1], "<");
        let end = s[*pos..].find('>').unwrap() + *pos;
        let tag = &s[*pos + 1..end];
        let name = tag.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
        *pos = end + 1;
        let mut node = Node { name: name.clone(), ..Node::default() };
        if tag.ends_with('/') {
            return node;
        }
        loop {
            let next = s[*pos..].find('<').unwrap() + *pos;
            node.text.push_str(&unescape(&s[*pos..next]));
            *pos = next;
            if s[*pos..].starts_with("</") {
                let close = s[*pos..].find('>').unwrap() + *pos;
                assert_eq!(&s[*pos + 2..close], name, "mismatched close tag");
                *pos = close + 1;
                if !node.children.is_empty() {
                    node.text = node.text.trim().to_string();
                }
                return node;
            }
            node.children.push(element(s, pos));
        }
    }
    let mut pos = 0;
    element(s, &mut pos)
}

/// A policy document allowing `actions` on `*`.
pub fn allow(actions: &[&str]) -> String {
    let list: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
        list.join(",")
    )
}

pub const TRUST_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Decode IAM's URL-encoded policy documents.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
