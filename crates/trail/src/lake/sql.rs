//! CloudTrail Lake's SQL (Trino's dialect, SELECT only) translated to SQLite's.
//!
//! The statement is tokenized, checked (one SELECT or WITH … SELECT statement; functions from an
//! allow-list; every table of a FROM or JOIN an event data store ID or a WITH name) and
//! rewritten: event data store IDs become the engine's tables, nested fields
//! (`userIdentity.arn`, `tlsDetails.tlsVersion`) and map subscripts (`element_at(requestParameters,
//! 'userName')`, `requestParameters['userName']`) become `json_extract`, Trino's time functions
//! become SQLite's date functions, and unnamed result columns are named as Trino names them
//! (`_col0`, `_col1`, …; a nested field by its last part).

use std::fmt::Write as _;

/// Top-level fields of a CloudTrail event, as the event data store's table has them.
pub const COLUMNS: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "apiVersion",
    "managementEvent",
    "recipientAccountId",
    "sharedEventID",
    "annotation",
    "vpcEndpointId",
    "serviceEventDetails",
    "addendum",
    "edgeDeviceDetails",
    "insightDetails",
    "eventCategory",
    "tlsDetails",
    "sessionCredentialFromConsole",
    // Events from outside AWS (channels): the source's event and CloudTrail's ingestion details.
    "eventData",
    "metadata",
];

/// Columns holding structures, maps or arrays (JSON text in the engine).
pub const NESTED: &[&str] = &[
    "userIdentity",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "resources",
    "serviceEventDetails",
    "addendum",
    "edgeDeviceDetails",
    "insightDetails",
    "tlsDetails",
    "eventData",
    "metadata",
];

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlError {
    /// InvalidQueryStatementException.
    Invalid(String),
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::Invalid(m) => f.write_str(m),
        }
    }
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, SqlError> {
    Err(SqlError::Invalid(msg.into()))
}

/// A piece of input named in an error, bounded.
fn shown(s: &str) -> String {
    // The project's bound for echoed input, at 64 characters here (a query's text can be 10,000).
    rampart_protocol::error::echo_at_most(s, 64).into_owned()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted identifier or keyword.
    Word(String),
    /// A double-quoted identifier (its text).
    Quoted(String),
    /// A string literal (its text).
    Str(String),
    Num(String),
    Sym(&'static str),
    /// A `?` parameter.
    Param,
}

impl Tok {
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
    fn is_sym(&self, s: &str) -> bool {
        matches!(self, Tok::Sym(x) if *x == s)
    }
    fn name(&self) -> Option<&str> {
        match self {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            _ => None,
        }
    }
}

const SYMS: &[&str] =
    &["<=", ">=", "<>", "!=", "||", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", ".", "[", "]", ";"];

fn tokenize(src: &str) -> Result<Vec<Tok>, SqlError> {
    let chars: Vec<char> = src.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let text = |a: usize, b: usize| -> String { chars.get(a..b).unwrap_or_default().iter().collect() };
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = at(i);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && at(i) != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(at(i) == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            if i >= chars.len() {
                return invalid("Unterminated comment.");
            }
            i += 2;
            continue;
        }
        if c == '\'' || c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return invalid(if c == '\'' {
                            "Unterminated string literal."
                        } else {
                            "Unterminated quoted identifier."
                        })
                    }
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            text.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&x) => {
                        text.push(x);
                        i += 1;
                    }
                }
            }
            // `'?'` is a parameter placeholder, as Lake takes it where a time is compared
            // (`eventTime > '?'`, dashboards' `$StartTime$`).
            out.push(if c != '\'' {
                Tok::Quoted(text)
            } else if text == "?" {
                Tok::Param
            } else {
                Tok::Str(text)
            });
            continue;
        }
        // After FROM / JOIN: a table name, which may be an event data store ID (hyphens, digits first).
        let table_position = out.last().is_some_and(|t| t.is_kw("from") || t.is_kw("join"));
        if table_position && (c.is_ascii_alphanumeric() || c == '_') {
            let start = i;
            while i < chars.len() && (at(i).is_ascii_alphanumeric() || at(i) == '_' || at(i) == '-') {
                i += 1;
            }
            out.push(Tok::Word(text(start, i)));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (at(i).is_ascii_alphanumeric() || at(i) == '_') {
                i += 1;
            }
            out.push(Tok::Word(text(start, i)));
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (at(i).is_ascii_digit() || at(i) == '.') {
                i += 1;
            }
            if i < chars.len() && (at(i) == 'e' || at(i) == 'E') {
                i += 1;
                if i < chars.len() && (at(i) == '+' || at(i) == '-') {
                    i += 1;
                }
                while i < chars.len() && at(i).is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (at(i).is_ascii_alphabetic() || at(i) == '_') {
                return invalid(format!("Syntax error near {}.", shown(&text(start, i + 1))));
            }
            out.push(Tok::Num(text(start, i)));
            continue;
        }
        if c == '?' {
            out.push(Tok::Param);
            i += 1;
            continue;
        }
        let two: String = text(i, (i + 2).min(chars.len()));
        if let Some(s) = SYMS.iter().find(|s| s.len() == 2 && **s == two) {
            out.push(Tok::Sym(s));
            i += 2;
            continue;
        }
        if let Some(s) = SYMS.iter().find(|s| s.len() == 1 && s.starts_with(c)) {
            out.push(Tok::Sym(s));
            i += 1;
            continue;
        }
        return invalid(format!("Unexpected character {c:?} in the query statement."));
    }
    // One statement: a trailing `;` is allowed, nothing after it.
    while out.last().is_some_and(|t| t.is_sym(";")) {
        out.pop();
    }
    if out.iter().any(|t| t.is_sym(";")) {
        return invalid("Only one statement is allowed per query.");
    }
    Ok(out)
}

/// Words that may precede `(` without being a function.
const KEYWORDS: &[&str] = &[
    "in",
    "exists",
    "and",
    "or",
    "not",
    "as",
    "on",
    "over",
    "from",
    "join",
    "select",
    "where",
    "having",
    "union",
    "intersect",
    "except",
    "all",
    "distinct",
    "with",
    "when",
    "then",
    "else",
    "by",
    "using",
    "values",
    "is",
    "like",
    "between",
    "recursive",
    "partition",
    "lateral",
    "case",
    "any",
    "some",
];

/// Statements that are not queries (refused wherever they appear).
const FORBIDDEN: &[&str] = &[
    "insert",
    "update",
    "delete",
    "create",
    "drop",
    "alter",
    "attach",
    "detach",
    "pragma",
    "vacuum",
    "grant",
    "revoke",
    "truncate",
    "merge",
    "call",
    "reindex",
    "analyze",
    "savepoint",
    "release",
    "rollback",
    "commit",
    "begin",
    "prepare",
    "execute",
    "deallocate",
    "set",
    "reset",
    "use",
    "explain",
    "load",
];

/// Scalar and aggregate functions that mean the same in both dialects.
const SAME_FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "lower",
    "upper",
    "length",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "substr",
    "coalesce",
    "nullif",
    "abs",
    "round",
    "json_extract",
    "row_number",
    "rank",
    "dense_rank",
    "cast",
    "greatest",
    "least",
];

/// A translated statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// SQLite's statement; event data store `i` of [`Translated::stores`] is table `eds_{i}`.
    pub sql: String,
    /// The event data store IDs the statement reads, in order of first mention.
    pub stores: Vec<String>,
    /// How many `?` parameters it takes.
    pub params: usize,
}

/// Translate a CloudTrail Lake statement.
pub fn translate(statement: &str) -> Result<Translated, SqlError> {
    let toks = tokenize(statement)?;
    let first = toks.first().ok_or_else(|| SqlError::Invalid("The query statement is empty.".into()))?;
    if !(first.is_kw("select") || first.is_kw("with")) {
        return invalid("Only SELECT statements are supported by CloudTrail Lake queries.");
    }
    for t in &toks {
        if let Tok::Word(w) = t {
            if FORBIDDEN.iter().any(|f| w.eq_ignore_ascii_case(f)) {
                return invalid(format!(
                    "{} statements are not supported; queries are SELECT only.",
                    shown(&w.to_uppercase())
                ));
            }
        }
    }
    // Names a WITH clause defines (`WITH a AS (…), b AS (…)` at depth 0).
    let mut ctes: Vec<String> = Vec::new();
    if first.is_kw("with") {
        let mut depth = 0i32;
        let mut i = 1;
        if toks.get(1).is_some_and(|t| t.is_kw("recursive")) {
            i = 2;
        }
        let mut expect_name = true;
        while let Some(t) = toks.get(i) {
            if depth == 0 && expect_name {
                if let Some(n) = t.name() {
                    ctes.push(n.to_ascii_lowercase());
                }
                expect_name = false;
            }
            if t.is_sym("(") {
                depth += 1;
            } else if t.is_sym(")") {
                depth -= 1;
            } else if depth == 0 && t.is_sym(",") {
                expect_name = true;
            } else if depth == 0 && t.is_kw("select") {
                break;
            }
            i += 1;
        }
    }
    let mut tr = Translator { ctes, stores: Vec::new(), params: 0 };
    let sql = tr.statement(&toks)?;
    if tr.stores.is_empty() {
        return invalid("The query must read from an event data store: FROM <event data store ID>.");
    }
    Ok(Translated { sql, stores: tr.stores, params: tr.params })
}

struct Translator {
    ctes: Vec<String>,
    stores: Vec<String>,
    params: usize,
}

/// `v[a..b]`, empty when out of range.
fn sl<T>(v: &[T], a: usize, b: usize) -> &[T] {
    v.get(a..b).unwrap_or_default()
}

/// `v[a..]`, empty when out of range.
fn from<T>(v: &[T], a: usize) -> &[T] {
    v.get(a..).unwrap_or_default()
}

/// `v[..b]`, empty when out of range.
fn upto<T>(v: &[T], b: usize) -> &[T] {
    v.get(..b).unwrap_or_default()
}

/// Argument `n` (empty when missing).
fn arg<'a>(parts: &[&'a [Tok]], n: usize) -> &'a [Tok] {
    parts.get(n).copied().unwrap_or_default()
}

/// The index of the `)` matching the `(` at `open`.
fn matching(toks: &[Tok], open: usize) -> Result<usize, SqlError> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_sym("(") {
            depth += 1;
        } else if t.is_sym(")") {
            depth -= 1;
            if depth == 0 {
                return Ok(i);
            }
        }
    }
    invalid("Unbalanced parentheses in the query statement.")
}

/// Split `toks` at depth-0 commas.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.is_sym("(") || t.is_sym("[") {
            depth += 1;
        } else if t.is_sym(")") || t.is_sym("]") {
            depth -= 1;
        } else if depth == 0 && t.is_sym(",") {
            out.push(sl(toks, start, i));
            start = i + 1;
        }
    }
    out.push(from(toks, start));
    out
}

fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A JSON path member, quoted for SQLite's `json_extract`.
fn path_member(s: &str) -> String {
    format!(".\"{}\"", s.replace('"', ""))
}

fn is_nested(name: &str) -> bool {
    NESTED.iter().any(|n| n.eq_ignore_ascii_case(name))
}

const TIME_FORMAT: &str = "'%Y-%m-%d %H:%M:%f'";

impl Translator {
    /// The whole statement: the main SELECT list's unnamed columns get Trino's names.
    fn statement(&mut self, toks: &[Tok]) -> Result<String, SqlError> {
        // The main SELECT: the first at depth 0.
        let mut depth = 0i32;
        let mut select_at = None;
        for (i, t) in toks.iter().enumerate() {
            if t.is_sym("(") {
                depth += 1;
            } else if t.is_sym(")") {
                depth -= 1;
            } else if depth == 0 && t.is_kw("select") {
                select_at = Some(i);
                break;
            }
        }
        let Some(s) = select_at else { return invalid("The query statement has no SELECT.") };
        let mut list_start = s + 1;
        if toks.get(list_start).is_some_and(|t| t.is_kw("distinct") || t.is_kw("all")) {
            list_start += 1;
        }
        // The list ends at the first depth-0 FROM (or the end, or a set operator).
        let mut end = toks.len();
        let mut depth = 0i32;
        for (i, t) in toks.iter().enumerate().skip(list_start) {
            if t.is_sym("(") {
                depth += 1;
            } else if t.is_sym(")") {
                depth -= 1;
            } else if depth == 0
                && ["from", "where", "group", "order", "limit", "union", "intersect", "except", "having"]
                    .iter()
                    .any(|k| t.is_kw(k))
            {
                end = i;
                break;
            }
        }
        let mut out = self.expr(upto(toks, list_start))?;
        out.push(' ');
        for (n, item) in split_commas(sl(toks, list_start, end)).into_iter().enumerate() {
            if item.is_empty() {
                return invalid("Syntax error in the SELECT list.");
            }
            if n > 0 {
                out.push_str(", ");
            }
            out.push_str(&self.expr(item)?);
            if let Some(name) = implicit_name(item, n) {
                let _ = write!(out, " AS {}", quote_ident(&name));
            }
        }
        out.push(' ');
        out.push_str(&self.expr(from(toks, end))?);
        Ok(out)
    }

    /// Translate a run of tokens.
    fn expr(&mut self, toks: &[Tok]) -> Result<String, SqlError> {
        let mut out = String::new();
        let mut i = 0;
        let push = |out: &mut String, s: &str| {
            if !out.is_empty() && !out.ends_with('(') && s != ")" && s != "," && s != "." && !out.ends_with('.') {
                out.push(' ');
            }
            out.push_str(s);
        };
        while let Some(t) = toks.get(i) {
            // FROM / JOIN <table>
            if (t.is_kw("from") || t.is_kw("join")) && toks.get(i + 1).and_then(Tok::name).is_some() {
                push(&mut out, if t.is_kw("from") { "FROM" } else { "JOIN" });
                let name = toks.get(i + 1).and_then(Tok::name).unwrap_or_default();
                if self.ctes.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                    push(&mut out, &quote_ident(name));
                } else {
                    let idx = match self.stores.iter().position(|s| s == name) {
                        Some(idx) => idx,
                        None => {
                            if self.stores.len() >= 8 {
                                return invalid("A query can read at most 8 event data stores.");
                            }
                            self.stores.push(name.to_string());
                            self.stores.len() - 1
                        }
                    };
                    push(&mut out, &format!("eds_{idx}"));
                }
                i += 2;
                continue;
            }
            match t {
                Tok::Str(s) => push(&mut out, &quote_str(s)),
                Tok::Num(n) => push(&mut out, n),
                Tok::Param => {
                    self.params += 1;
                    push(&mut out, "?");
                }
                Tok::Sym("[") => {
                    // A map subscript of what precedes it: `x['k']` → json_extract(x, '$."k"').
                    let close = from(toks, i).iter().position(|t| t.is_sym("]")).map(|p| p + i);
                    let key = match (toks.get(i + 1), close) {
                        (Some(Tok::Str(k)), Some(c)) if c == i + 2 => k.clone(),
                        (Some(Tok::Num(k)), Some(c)) if c == i + 2 => {
                            // Trino arrays are 1-based.
                            let n: usize = k.parse().unwrap_or(0);
                            let prev = std::mem::take(&mut out);
                            let (head, target) = split_last_operand(&prev);
                            out = format!("{head}json_extract({target}, '$[{}]')", n.saturating_sub(1));
                            i += 3;
                            continue;
                        }
                        _ => return invalid("Subscripts must be a string or number literal: x['key'], x[1]."),
                    };
                    let prev = std::mem::take(&mut out);
                    let (head, target) = split_last_operand(&prev);
                    out = format!("{head}json_extract({target}, {})", quote_str(&format!("${}", path_member(&key))));
                    i += 3;
                    continue;
                }
                Tok::Sym(s) => push(&mut out, s),
                Tok::Word(w) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                    push(&mut out, &quote_str(&w.to_ascii_lowercase()))
                }
                Tok::Word(w)
                    if (w.eq_ignore_ascii_case("timestamp") || w.eq_ignore_ascii_case("date"))
                        && matches!(toks.get(i + 1), Some(Tok::Str(_))) =>
                {
                    // `timestamp '2024-01-01 00:00:00'`: the literal itself.
                }
                Tok::Word(w)
                    if w.eq_ignore_ascii_case("current_timestamp") || w.eq_ignore_ascii_case("localtimestamp") =>
                {
                    push(&mut out, &format!("strftime({TIME_FORMAT}, 'now')"))
                }
                Tok::Word(w) if toks.get(i + 1).is_some_and(|t| t.is_sym("(")) => {
                    if KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k)) {
                        push(&mut out, w);
                    } else {
                        let close = matching(toks, i + 1)?;
                        let call = self.function(w, sl(toks, i + 2, close))?;
                        push(&mut out, &call);
                        i = close + 1;
                        continue;
                    }
                }
                Tok::Word(_) | Tok::Quoted(_) => {
                    // A column, maybe a dotted path into a nested one.
                    let mut parts = vec![t.name().unwrap_or_default().to_string()];
                    let mut j = i + 1;
                    while toks.get(j).is_some_and(|t| t.is_sym(".")) && toks.get(j + 1).and_then(Tok::name).is_some() {
                        parts.push(toks.get(j + 1).and_then(Tok::name).unwrap_or_default().to_string());
                        j += 2;
                    }
                    let rendered = column_path(&parts, matches!(t, Tok::Quoted(_)));
                    push(&mut out, &rendered);
                    i = j;
                    continue;
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// A function call, with its arguments' tokens.
    fn function(&mut self, name: &str, args: &[Tok]) -> Result<String, SqlError> {
        let lower = name.to_ascii_lowercase();
        let parts: Vec<&[Tok]> = if args.is_empty() { Vec::new() } else { split_commas(args) };
        let arity = |n: usize| -> Result<(), SqlError> {
            if parts.len() == n {
                Ok(())
            } else {
                invalid(format!("Function {lower} takes {n} argument(s)."))
            }
        };
        let unit = |t: &[Tok]| -> Result<String, SqlError> {
            match t {
                [Tok::Str(u)] => Ok(u.to_ascii_lowercase()),
                _ => invalid(format!("The unit of {lower} must be a string literal.")),
            }
        };
        Ok(match lower.as_str() {
            "cast" | "try_cast" => {
                // cast(x AS type)
                let as_at = args
                    .iter()
                    .rposition(|t| t.is_kw("as"))
                    .ok_or_else(|| SqlError::Invalid("CAST needs AS <type>.".into()))?;
                let ty = match args.get(as_at + 1).and_then(Tok::name).map(str::to_ascii_lowercase).as_deref() {
                    Some("varchar" | "char" | "varbinary" | "json" | "timestamp" | "date" | "boolean") => "TEXT",
                    Some("bigint" | "integer" | "int" | "smallint" | "tinyint") => "INTEGER",
                    Some("double" | "real" | "decimal") => "REAL",
                    _ => return invalid("Unsupported type in CAST."),
                };
                format!("CAST({} AS {ty})", self.expr(upto(args, as_at))?)
            }
            "approx_distinct" => {
                arity(1)?;
                format!("count(DISTINCT {})", self.expr(arg(&parts, 0))?)
            }
            "count_if" => {
                arity(1)?;
                format!("sum(CASE WHEN {} THEN 1 ELSE 0 END)", self.expr(arg(&parts, 0))?)
            }
            "strpos" => {
                arity(2)?;
                format!("instr({}, {})", self.expr(arg(&parts, 0))?, self.expr(arg(&parts, 1))?)
            }
            "substring" => format!("substr({})", self.args(&parts)?),
            "concat" => {
                let a: Vec<String> = parts.iter().map(|p| self.expr(p)).collect::<Result<_, _>>()?;
                format!("({})", a.join(" || "))
            }
            "if" => match parts.len() {
                2 => format!("iif({}, {}, NULL)", self.expr(arg(&parts, 0))?, self.expr(arg(&parts, 1))?),
                3 => format!("iif({})", self.args(&parts)?),
                _ => return invalid("Function if takes 2 or 3 arguments."),
            },
            "element_at" => {
                arity(2)?;
                let target = self.expr(arg(&parts, 0))?;
                match arg(&parts, 1) {
                    [Tok::Str(k)] => format!("json_extract({target}, {})", quote_str(&format!("${}", path_member(k)))),
                    [Tok::Num(n)] => {
                        let n: usize = n.parse().unwrap_or(0);
                        format!("json_extract({target}, '$[{}]')", n.saturating_sub(1))
                    }
                    key => format!("json_extract({target}, '$.\"' || {} || '\"')", self.expr(key)?),
                }
            }
            "json_extract_scalar" => {
                arity(2)?;
                format!("json_extract({})", self.args(&parts)?)
            }
            "cardinality" | "json_array_length" => {
                arity(1)?;
                format!("json_array_length({})", self.expr(arg(&parts, 0))?)
            }
            "now" => {
                arity(0)?;
                format!("strftime({TIME_FORMAT}, 'now')")
            }
            "from_iso8601_timestamp" | "to_timestamp" => {
                arity(1)?;
                format!("strftime({TIME_FORMAT}, {})", self.expr(arg(&parts, 0))?)
            }
            "to_iso8601" => {
                arity(1)?;
                format!("strftime('%Y-%m-%dT%H:%M:%fZ', {})", self.expr(arg(&parts, 0))?)
            }
            "date_trunc" => {
                arity(2)?;
                let fmt = match unit(arg(&parts, 0))?.as_str() {
                    "second" => "%Y-%m-%d %H:%M:%S.000",
                    "minute" => "%Y-%m-%d %H:%M:00.000",
                    "hour" => "%Y-%m-%d %H:00:00.000",
                    "day" => "%Y-%m-%d 00:00:00.000",
                    "month" => "%Y-%m-01 00:00:00.000",
                    "year" => "%Y-01-01 00:00:00.000",
                    _ => return invalid("date_trunc takes second, minute, hour, day, month or year."),
                };
                format!("strftime('{fmt}', {})", self.expr(arg(&parts, 1))?)
            }
            "date_add" => {
                arity(3)?;
                let u = unit(arg(&parts, 0))?;
                if !["second", "minute", "hour", "day", "month", "year"].contains(&u.as_str()) {
                    return invalid("date_add takes second, minute, hour, day, month or year.");
                }
                format!(
                    "strftime({TIME_FORMAT}, {}, ({}) || ' {u}s')",
                    self.expr(arg(&parts, 2))?,
                    self.expr(arg(&parts, 1))?
                )
            }
            "date_diff" => {
                arity(3)?;
                let factor = match unit(arg(&parts, 0))?.as_str() {
                    "second" => 86_400.0,
                    "minute" => 1_440.0,
                    "hour" => 24.0,
                    "day" => 1.0,
                    _ => return invalid("date_diff takes second, minute, hour or day."),
                };
                format!(
                    "CAST((julianday({}) - julianday({})) * {factor} AS INTEGER)",
                    self.expr(arg(&parts, 2))?,
                    self.expr(arg(&parts, 1))?
                )
            }
            _ if SAME_FUNCTIONS.contains(&lower.as_str()) => {
                format!("{lower}({})", self.expr(args)?)
            }
            _ => return invalid(format!("Function '{}' not registered.", shown(name))),
        })
    }

    fn args(&mut self, parts: &[&[Tok]]) -> Result<String, SqlError> {
        let a: Vec<String> = parts.iter().map(|p| self.expr(p)).collect::<Result<_, _>>()?;
        Ok(a.join(", "))
    }
}

/// `userIdentity.arn` → `json_extract(userIdentity, '$."arn"')`; `e.userIdentity.arn` likewise
/// on `e.userIdentity`; other paths (`alias.column`) as they are.
fn column_path(parts: &[String], quoted_head: bool) -> String {
    let q = |s: &str| {
        if quoted_head || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            quote_ident(s)
        } else {
            s.to_string()
        }
    };
    let nested_at = parts.iter().position(|p| is_nested(p)).filter(|&i| i <= 1 && i + 1 < parts.len());
    match nested_at {
        Some(i) => {
            let target: Vec<String> = upto(parts, i + 1).iter().map(|p| q(p)).collect();
            let path: String = from(parts, i + 1).iter().map(|p| path_member(p)).collect();
            format!("json_extract({}, {})", target.join("."), quote_str(&format!("${path}")))
        }
        None => parts.iter().map(|p| q(p)).collect::<Vec<_>>().join("."),
    }
}

/// Split rendered SQL into everything before its last operand and that operand (a column or a
/// call), for a subscript to apply to.
fn split_last_operand(s: &str) -> (String, String) {
    let trimmed = s.trim_end();
    let bytes: Vec<char> = trimmed.chars().collect();
    let mut i = bytes.len();
    let mut depth = 0i32;
    while i > 0 {
        let c = bytes.get(i - 1).copied().unwrap_or(' ');
        if c == ')' {
            depth += 1;
        } else if c == '(' {
            if depth == 0 {
                break;
            }
            depth -= 1;
        } else if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == '.' || c == '"') {
            break;
        }
        i -= 1;
    }
    let head: String = upto(&bytes, i).iter().collect();
    let target: String = from(&bytes, i).iter().collect();
    (head, target)
}

/// The name Trino gives select item `n` when it has none: a column's own name, a nested field's
/// last part, `_col{n}` otherwise. `None` when the item names itself (an alias, `*`, a column).
fn implicit_name(item: &[Tok], n: usize) -> Option<String> {
    let len = item.len();
    if let [.., prev, last] = item {
        let last_is_name = last.name().is_some() && !last.is_kw("end");
        let prev_ends_operand = prev.is_kw("as")
            || prev.is_sym(")")
            || matches!(prev, Tok::Str(_) | Tok::Num(_) | Tok::Quoted(_))
            || matches!(prev, Tok::Word(_)) && !KEYWORDS.iter().any(|k| prev.is_kw(k));
        if last_is_name && prev_ends_operand {
            // `x AS name`, `f(x) name`, `col name`.
            return None;
        }
    }
    if item.iter().any(|t| t.is_sym("*")) && item.last().is_some_and(|t| t.is_sym("*")) {
        return None;
    }
    // A bare column, or a dotted path.
    let dotted = item.iter().enumerate().all(|(i, t)| if i % 2 == 0 { t.name().is_some() } else { t.is_sym(".") });
    if dotted && len % 2 == 1 {
        let parts: Vec<&str> = item.iter().filter_map(Tok::name).collect();
        if parts.len() == 1 {
            return None;
        }
        if parts.iter().take(2).any(|p| is_nested(p)) {
            return parts.last().map(|p| p.to_string());
        }
        return None;
    }
    Some(format!("_col{n}"))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const ID: &str = "a1b2c3d4-0000-4000-8000-000000000001";

    fn sql(s: &str) -> String {
        translate(s).unwrap().sql
    }

    fn err(s: &str) -> String {
        match translate(s) {
            Err(SqlError::Invalid(m)) => m,
            Ok(t) => panic!("accepted: {}", t.sql),
        }
    }

    #[test]
    fn the_documented_example_translates() {
        let t = translate(&format!(
            "SELECT eventName, count(*) FROM {ID} WHERE eventTime > '2024-01-01 00:00:00' GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
        ))
        .unwrap();
        assert_eq!(t.stores, [ID]);
        assert_eq!(
            t.sql,
            "SELECT eventName, count(*) AS \"_col1\" FROM eds_0 WHERE eventTime > '2024-01-01 00:00:00' GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
        );
    }

    #[test]
    fn nested_fields_and_maps_become_json_paths() {
        assert_eq!(
            sql(&format!("SELECT userIdentity.arn FROM {ID}")),
            "SELECT json_extract(userIdentity, '$.\"arn\"') AS \"arn\" FROM eds_0"
        );
        assert_eq!(
            sql(&format!("SELECT e.userIdentity.sessionContext.sessionIssuer.userName AS issuer FROM {ID} e")),
            "SELECT json_extract(e.userIdentity, '$.\"sessionContext\".\"sessionIssuer\".\"userName\"') AS issuer FROM eds_0 e"
        );
        assert_eq!(
            sql(&format!("SELECT element_at(requestParameters, 'userName') AS u FROM {ID}")),
            "SELECT json_extract(requestParameters, '$.\"userName\"') AS u FROM eds_0"
        );
        assert_eq!(
            sql(&format!("SELECT requestParameters['userName'] FROM {ID}")),
            "SELECT json_extract(requestParameters, '$.\"userName\"') AS \"_col0\" FROM eds_0"
        );
    }

    #[test]
    fn time_functions_and_literals() {
        assert_eq!(
            sql(&format!("SELECT count(*) AS n FROM {ID} WHERE eventTime > date_add('day', -7, now()) AND readOnly = false")),
            "SELECT count(*) AS n FROM eds_0 WHERE eventTime > strftime('%Y-%m-%d %H:%M:%f', strftime('%Y-%m-%d %H:%M:%f', 'now'), (- 7) || ' days') AND readOnly = 'false'"
        );
        assert_eq!(
            sql(&format!(
                "SELECT date_trunc('hour', eventTime) h FROM {ID} WHERE eventTime >= timestamp '2024-01-01 00:00:00'"
            )),
            "SELECT strftime('%Y-%m-%d %H:00:00.000', eventTime) h FROM eds_0 WHERE eventTime >= '2024-01-01 00:00:00'"
        );
    }

    #[test]
    fn with_clauses_and_joins_name_their_tables() {
        let t = translate(&format!(
            "WITH w AS (SELECT eventName FROM {ID} WHERE readOnly = false) SELECT w.eventName, approx_distinct(x.eventID) FROM w JOIN \"{ID}\" x ON w.eventName = x.eventName GROUP BY 1"
        ))
        .unwrap();
        assert_eq!(t.stores, [ID]);
        assert!(t.sql.contains("FROM \"w\" JOIN eds_0 x"), "{}", t.sql);
        assert!(t.sql.contains("count(DISTINCT x.eventID) AS \"_col1\""), "{}", t.sql);
    }

    #[test]
    fn only_one_select_over_event_data_stores_is_accepted() {
        assert!(err(&format!("DELETE FROM {ID}")).contains("Only SELECT"));
        assert!(err(&format!("SELECT * FROM {ID}; DROP TABLE x")).contains("one statement"));
        assert!(err(&format!("SELECT * FROM {ID} WHERE 1 = 1; ATTACH 'x' AS y")).contains("one statement"));
        assert!(err("SELECT 1").contains("event data store"));
        assert!(
            err(&format!("SELECT load_extension('x') FROM {ID}")).contains("Function 'load_extension' not registered")
        );
        assert!(err(&format!("SELECT readfile('/etc/passwd') FROM {ID}")).contains("not registered"));
        assert!(err(&format!("SELECT 'unterminated FROM {ID}")).contains("Unterminated"));
        assert!(err(&format!("SELECT count(* FROM {ID}")).contains("Unbalanced"));
        // A trailing semicolon is fine.
        assert!(translate(&format!("SELECT eventName FROM {ID};")).is_ok());
        // Keywords inside strings are data.
        assert!(translate(&format!("SELECT eventName FROM {ID} WHERE eventName = 'DeleteUser; DROP'")).is_ok());
    }

    #[test]
    fn parameters_are_counted() {
        let t = translate(&format!("SELECT eventName FROM {ID} WHERE eventName = ? AND awsRegion = ?")).unwrap();
        assert_eq!(t.params, 2);
        // `'?'` is one too (Lake's form where a time is compared); other strings are data.
        let t = translate(&format!("SELECT eventName FROM {ID} WHERE eventTime > '?' AND eventName <> '??'")).unwrap();
        assert_eq!(t.params, 1);
    }
}
