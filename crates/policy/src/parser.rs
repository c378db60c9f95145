//! JSON → [`Document`]: the grammar stage. Anything that does not fit the policy grammar is AWS's
//! "Syntax errors in policy." (later checks, with their own messages, are in `validate`).

use crate::ast::{
    Condition, ConditionOperator, Document, Effect, PrincipalSpec, PrincipalType, Statement, ValueList, Version,
};
use crate::json::{self, Json, JsonValue, Position};

pub const SYNTAX: &str = "Syntax errors in policy.";

const TOP: &[&str] = &["Version", "Id", "Statement", "Conditions"];
const STATEMENT: &[&str] =
    &["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition"];

type Syntax<T> = Result<T, ()>;

/// Read a policy document; `Err` is a syntax error.
pub fn parse(src: &str) -> Syntax<Document> {
    let root = json::parse(src).map_err(|_| ())?;
    document(&root)
}

/// Read a policy document from parsed JSON.
pub fn document(root: &Json) -> Syntax<Document> {
    let members = root.as_object().ok_or(())?;
    if members.iter().any(|(k, _)| !TOP.contains(&k.as_str())) {
        return Err(());
    }
    let version_text = match root.get("Version") {
        None => None,
        Some(v) => match v.as_str() {
            Some(s @ ("2008-10-17" | "2012-10-17")) => Some(s.to_string()),
            _ => return Err(()),
        },
    };
    let version = if version_text.as_deref() == Some("2012-10-17") { Version::V2012 } else { Version::V2008 };
    let id = match root.get("Id") {
        None => None,
        Some(v) => Some(v.as_str().ok_or(())?.to_string()),
    };
    let statements = match &root.get("Statement").ok_or(())?.value {
        JsonValue::Object(_) => vec![root.get("Statement").ok_or(())?],
        JsonValue::Array(items) => items.iter().collect(),
        _ => return Err(()),
    };
    if statements.is_empty() {
        return Err(());
    }
    let statements = statements.into_iter().enumerate().map(|(i, s)| statement(i, s)).collect::<Syntax<Vec<_>>>()?;
    Ok(Document { version_text, version, id, statements })
}

fn statement(index: usize, s: &Json) -> Syntax<Statement> {
    let members = s.as_object().ok_or(())?;
    if members.iter().any(|(k, _)| !STATEMENT.contains(&k.as_str())) {
        return Err(());
    }
    let effect_text = s.get("Effect").and_then(Json::as_str).ok_or(())?.to_string();
    let effect = if effect_text.eq_ignore_ascii_case("Allow") {
        Effect::Allow
    } else if effect_text.eq_ignore_ascii_case("Deny") {
        Effect::Deny
    } else {
        return Err(());
    };
    let sid = match s.get("Sid") {
        None => None,
        Some(v) => Some(v.as_str().ok_or(())?.to_string()),
    };
    let action = pair(s, "Action", "NotAction")?;
    let resource = pair(s, "Resource", "NotResource")?;
    let principal = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err(()),
        (Some(p), None) => Some(principal(p, false)?),
        (None, Some(p)) => Some(principal(p, true)?),
        (None, None) => None,
    };
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(c) => conditions(c)?,
    };
    Ok(Statement {
        index,
        sid,
        effect,
        effect_text,
        action,
        resource,
        principal,
        conditions,
        // AWS reports positions as its JSON reader's location after each token: just past the
        // statement's `{` and just past its `}` (1-based line and column).
        start: Position { column: s.start.column + 1, offset: s.start.offset + 1, ..s.start },
        end: s.end,
    })
}

/// A string or an array of strings (nulls inside arrays are ignored, as AWS's reader does).
fn strings(v: &Json) -> Syntax<Vec<String>> {
    match &v.value {
        JsonValue::String(s) => Ok(vec![s.clone()]),
        JsonValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                match &it.value {
                    JsonValue::String(s) => out.push(s.clone()),
                    JsonValue::Null => {}
                    _ => return Err(()),
                }
            }
            Ok(out)
        }
        _ => Err(()),
    }
}

fn pair(s: &Json, positive: &str, negative: &str) -> Syntax<Option<ValueList>> {
    match (s.get(positive), s.get(negative)) {
        (Some(_), Some(_)) => Err(()),
        (Some(v), None) => Ok(Some(ValueList { negated: false, values: strings(v)? })),
        (None, Some(v)) => Ok(Some(ValueList { negated: true, values: strings(v)? })),
        (None, None) => Ok(None),
    }
}

fn principal(v: &Json, negated: bool) -> Syntax<PrincipalSpec> {
    match &v.value {
        JsonValue::String(s) if s == "*" => Ok(PrincipalSpec { negated, wildcard: true, entries: Vec::new() }),
        JsonValue::Object(members) => {
            let mut entries = Vec::with_capacity(members.len());
            for (k, vals) in members {
                let ty = PrincipalType::from_key(k).ok_or(())?;
                entries.push((ty, strings(vals)?));
            }
            Ok(PrincipalSpec { negated, wildcard: false, entries })
        }
        _ => Err(()),
    }
}

/// A condition value's string form.
fn scalar(v: &Json) -> Syntax<Option<String>> {
    match &v.value {
        JsonValue::String(s) => Ok(Some(s.clone())),
        JsonValue::Bool(b) => Ok(Some(b.to_string())),
        JsonValue::Number(n) => Ok(Some(n.clone())),
        JsonValue::Null => Ok(None),
        _ => Err(()),
    }
}

fn conditions(c: &Json) -> Syntax<Vec<Condition>> {
    let blocks = c.as_object().ok_or(())?;
    let mut out = Vec::new();
    for (op_text, block) in blocks {
        let keys = block.as_object().ok_or(())?;
        let op = ConditionOperator::parse(op_text);
        if op.is_none() && !keys.is_empty() {
            return Err(());
        }
        for (key, vals) in keys {
            let values = match &vals.value {
                JsonValue::Array(items) => {
                    let mut vs = Vec::with_capacity(items.len());
                    for it in items {
                        if let Some(s) = scalar(it)? {
                            vs.push(s);
                        }
                    }
                    vs
                }
                JsonValue::Object(_) => return Err(()),
                _ => scalar(vals)?.into_iter().collect(),
            };
            if let Some(operator) = op {
                out.push(Condition { operator, operator_text: op_text.clone(), key: key.clone(), values });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_object_or_array() {
        let d = parse(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#).unwrap();
        assert_eq!(d.version, Version::V2008);
        assert_eq!(d.statements.len(), 1);
        let d = parse(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"deny","NotAction":["s3:*"],"NotResource":"x",
               "Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"n":[1,2.5]}}}]}"#,
        )
        .unwrap();
        let s = &d.statements[0];
        assert_eq!(s.effect, Effect::Deny);
        assert!(s.action.as_ref().unwrap().negated);
        assert_eq!(s.conditions[0].values, vec!["false"]);
        assert_eq!(s.conditions[1].values, vec!["1", "2.5"]);
    }

    #[test]
    fn statement_positions_as_aws_reports_them() {
        // The AWS CLI documentation's simulate-custom-policy example: StartPosition 1:38, EndPosition 1:167.
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}"#;
        let s = &parse(text).unwrap().statements[0];
        assert_eq!((s.start.line, s.start.column), (1, 38));
        assert_eq!((s.end.line, s.end.column), (1, 167));
        let multi = "{\n \"Statement\": [\n  {\n   \"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"\n  }\n ]\n}";
        let s = &parse(multi).unwrap().statements[0];
        assert_eq!((s.start.line, s.start.column, s.end.line, s.end.column), (3, 4, 5, 4));
    }

    #[test]
    fn syntax_errors() {
        for doc in [
            "not json",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Version":"2013-10-17","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}}"#,
            r#"{"Statement":[]}"#,
            r#"{"Statement":["x"]}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Extra":1}}"#,
            r#"{"Statement":{"Effect":"Maybe","Action":"a:b","Resource":"*"}}"#,
            r#"{"Statement":{"Action":"a:b","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"a:b","NotAction":"c:d","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":{},"Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Foo":{"k":"v"}}}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":"v"}}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":"arn:x"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"Bogus":"x"}}}"#,
        ] {
            assert!(parse(doc).is_err(), "{doc}");
        }
    }
}
