//! FieldToMatch: which parts of a request a statement inspects, and their extraction.

use std::borrow::Cow;

use super::request::WafRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    Continue,
    Match,
    NoMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Key,
    Value,
}

#[derive(Debug, Clone)]
pub enum NameFilter {
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl NameFilter {
    fn accepts(&self, name: &[u8], case_insensitive: bool) -> bool {
        let eq = |n: &String| {
            if case_insensitive {
                n.as_bytes().eq_ignore_ascii_case(name)
            } else {
                n.as_bytes() == name
            }
        };
        match self {
            NameFilter::All => true,
            NameFilter::Include(v) => v.iter().any(eq),
            NameFilter::Exclude(v) => !v.iter().any(eq),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFallback {
    Match,
    NoMatch,
    EvaluateAsString,
}

#[derive(Debug, Clone)]
pub enum Field {
    SingleHeader(String),
    SingleQueryArgument(String),
    AllQueryArguments,
    UriPath,
    QueryString,
    Body(Oversize),
    Method,
    JsonBody { paths: Option<Vec<String>>, scope: Scope, fallback: JsonFallback, oversize: Oversize },
    Headers { filter: NameFilter, scope: Scope, oversize: Oversize },
    Cookies { filter: NameFilter, scope: Scope, oversize: Oversize },
    HeaderOrder,
}

/// What a field yields: the items to inspect (any match matches), or a decision made by oversize handling.
pub enum Extracted<'a> {
    Items(Vec<Cow<'a, [u8]>>),
    ForceMatch,
    ForceNoMatch,
}

/// AWS inspects at most this much of the headers and cookies, and this many of each.
const HEADER_LIMIT_BYTES: usize = 8 * 1024;
const HEADER_LIMIT_COUNT: usize = 200;

fn oversized<'a>(o: Oversize) -> Option<Extracted<'a>> {
    match o {
        Oversize::Continue => None,
        Oversize::Match => Some(Extracted::ForceMatch),
        Oversize::NoMatch => Some(Extracted::ForceNoMatch),
    }
}

fn push_scoped<'a>(out: &mut Vec<Cow<'a, [u8]>>, scope: Scope, k: &'a [u8], v: &'a [u8]) {
    match scope {
        Scope::Key => out.push(Cow::Borrowed(k)),
        Scope::Value => out.push(Cow::Borrowed(v)),
        Scope::All => {
            out.push(Cow::Borrowed(k));
            out.push(Cow::Borrowed(v));
        }
    }
}

impl Field {
    pub fn extract<'a>(&self, req: &'a WafRequest, body_limit: usize) -> Extracted<'a> {
        let mut out: Vec<Cow<'a, [u8]>> = Vec::new();
        match self {
            Field::SingleHeader(name) => out.extend(req.header_values(name).map(Cow::Borrowed)),
            Field::SingleQueryArgument(name) => out.extend(
                req.query_args()
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                    .map(|(_, v)| Cow::Borrowed(v.as_slice())),
            ),
            Field::AllQueryArguments => out.extend(req.query_args().iter().map(|(_, v)| Cow::Borrowed(v.as_slice()))),
            Field::UriPath => out.push(Cow::Borrowed(req.path.as_bytes())),
            Field::QueryString => out.push(Cow::Borrowed(req.query.as_bytes())),
            Field::Method => out.push(Cow::Borrowed(req.method.as_bytes())),
            Field::Body(o) => {
                if req.body.len() > body_limit {
                    if let Some(d) = oversized(*o) {
                        return d;
                    }
                }
                out.push(Cow::Borrowed(&req.body[..req.body.len().min(body_limit)]));
            }
            Field::JsonBody { paths, scope, fallback, oversize } => {
                if req.body.len() > body_limit {
                    if let Some(d) = oversized(*oversize) {
                        return d;
                    }
                }
                if req.body.is_empty() {
                    return Extracted::Items(out);
                }
                match req.json(body_limit) {
                    Some(v) => {
                        let mut items = Vec::new();
                        match paths {
                            None => json_items(v, *scope, &mut items),
                            Some(ps) => {
                                for p in ps {
                                    if let Some(sub) = v.pointer(p) {
                                        json_items(sub, *scope, &mut items);
                                    }
                                }
                            }
                        }
                        out.extend(items.into_iter().map(Cow::Owned));
                    }
                    None => match fallback {
                        JsonFallback::Match => return Extracted::ForceMatch,
                        JsonFallback::NoMatch => return Extracted::ForceNoMatch,
                        JsonFallback::EvaluateAsString => {
                            out.push(Cow::Borrowed(&req.body[..req.body.len().min(body_limit)]))
                        }
                    },
                }
            }
            Field::Headers { filter, scope, oversize } => {
                let total: usize = req.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
                if total > HEADER_LIMIT_BYTES || req.headers.len() > HEADER_LIMIT_COUNT {
                    if let Some(d) = oversized(*oversize) {
                        return d;
                    }
                }
                for (k, v) in req.headers.iter().take(HEADER_LIMIT_COUNT) {
                    if filter.accepts(k.as_bytes(), true) {
                        push_scoped(&mut out, *scope, k.as_bytes(), v);
                    }
                }
            }
            Field::Cookies { filter, scope, oversize } => {
                let cookies = req.cookies();
                let total: usize = cookies.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
                if total > HEADER_LIMIT_BYTES || cookies.len() > HEADER_LIMIT_COUNT {
                    if let Some(d) = oversized(*oversize) {
                        return d;
                    }
                }
                for (k, v) in cookies.iter().take(HEADER_LIMIT_COUNT) {
                    if filter.accepts(k, false) {
                        push_scoped(&mut out, *scope, k, v);
                    }
                }
            }
            Field::HeaderOrder => {
                let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
                out.push(Cow::Owned(names.join(":").into_bytes()));
            }
        }
        Extracted::Items(out)
    }

    /// The `location` AWS WAF logs name for a match in this field.
    pub fn location(&self) -> &'static str {
        match self {
            Field::SingleHeader(_) | Field::Headers { .. } | Field::HeaderOrder => "HEADER",
            Field::SingleQueryArgument(_) | Field::AllQueryArguments => "QUERY_ARGS",
            Field::UriPath => "URI",
            Field::QueryString => "QUERY_STRING",
            Field::Body(_) | Field::JsonBody { .. } => "BODY",
            Field::Method => "METHOD",
            Field::Cookies { .. } => "COOKIES",
        }
    }
}

fn json_scalar(v: &serde_json::Value) -> Option<Vec<u8>> {
    match v {
        serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
        serde_json::Value::Number(n) => Some(n.to_string().into_bytes()),
        serde_json::Value::Bool(b) => Some(b.to_string().into_bytes()),
        serde_json::Value::Null => Some(b"null".to_vec()),
        _ => None,
    }
}

fn json_items(v: &serde_json::Value, scope: Scope, out: &mut Vec<Vec<u8>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                if scope != Scope::Value {
                    out.push(k.as_bytes().to_vec());
                }
                json_items(child, scope, out);
            }
        }
        serde_json::Value::Array(a) => {
            for child in a {
                json_items(child, scope, out);
            }
        }
        scalar => {
            if scope != Scope::Key {
                if let Some(s) = json_scalar(scalar) {
                    out.push(s);
                }
            }
        }
    }
}
