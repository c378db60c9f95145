//! awsQuery request decoding.
//!
//! awsQuery flattens structures and lists into form keys: `UserName=x`,
//! `Tags.member.1.Key=k`, `PolicyArns.member.2=arn`, `Attributes.entry.1.key=k`.
//! [`QueryParams`] keeps the flat map and offers typed, AWS-error-returning accessors;
//! nested lists come back as their own [`QueryParams`], so any depth works.

use std::collections::BTreeMap;

use crate::AwsError;

/// The decoded form of an awsQuery request (body or query string).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryParams {
    map: BTreeMap<String, String>,
}

impl QueryParams {
    /// Decode `application/x-www-form-urlencoded` bytes. Later duplicates win.
    pub fn parse(bytes: &[u8]) -> Self {
        let map = form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        QueryParams { map }
    }

    /// Build from pairs (tests, GET requests merged with bodies).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        QueryParams { map: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Merge other params in (body params over query-string params).
    pub fn extend(&mut self, other: QueryParams) {
        self.map.extend(other.map);
    }

    /// Every value passed through `f` (keys unchanged).
    pub fn map_values(self, mut f: impl FnMut(&str) -> String) -> Self {
        QueryParams {
            map: self
                .map
                .into_iter()
                .map(|(k, v)| {
                    let v = f(&v);
                    (k, v)
                })
                .collect(),
        }
    }

    /// Every `Action` value in form-encoded `bytes`, decoded lazily: no map is built (a cheap look
    /// at which operation a request names before it is decoded).
    pub fn actions(bytes: &[u8]) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        form_urlencoded::parse(bytes).filter(|(k, _)| k == "Action").map(|(_, v)| v)
    }

    /// The `Action` parameter.
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// A member's value, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// `true` when the member is present at all (even empty) or any nested key starts with it.
    pub fn contains(&self, key: &str) -> bool {
        if self.map.contains_key(key) {
            return true;
        }
        let prefix = format!("{key}.");
        self.map.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// A required member: absent → AWS's `ValidationError` naming it.
    pub fn required(&self, key: &str) -> Result<&str, AwsError> {
        self.get(key).ok_or_else(|| AwsError::missing_parameter(key))
    }

    /// An optional integer member; non-numbers are a `ValidationError`.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                AwsError::validation(format!(
                    "Value '{v}' at '{key}' failed to satisfy constraint: Member must be a number"
                ))
            }),
        }
    }

    /// An optional boolean member (`true`/`false`, case-insensitive).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(AwsError::validation(format!(
                "Value '{v}' at '{key}' failed to satisfy constraint: Member must be a boolean"
            ))),
        }
    }

    /// A list of scalars: `prefix.1`, `prefix.2`, … in index order.
    /// `prefix` includes the `.member` part: `list("PolicyArns.member")`.
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        let mut items: Vec<(u64, &str)> = self
            .indexed(prefix)
            .filter_map(|(idx, rest, v)| if rest.is_empty() { Some((idx, v)) } else { None })
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// A list of structures: `prefix.N.Field=…` → one [`QueryParams`] per N (index order),
    /// each keyed by the remainder (`Field`, or `Nested.member.1`).
    pub fn struct_list(&self, prefix: &str) -> Vec<QueryParams> {
        let mut items: BTreeMap<u64, QueryParams> = BTreeMap::new();
        for (idx, rest, v) in self.indexed(prefix) {
            if let Some(field) = rest.strip_prefix('.') {
                items.entry(idx).or_default().map.insert(field.to_string(), v.to_string());
            }
        }
        items.into_values().collect()
    }

    /// A map: `prefix.entry.N.key` / `prefix.entry.N.value` → pairs in index order.
    pub fn map_entries(&self, prefix: &str, key_name: &str, value_name: &str) -> Vec<(String, String)> {
        self.struct_list(&format!("{prefix}.entry"))
            .into_iter()
            .filter_map(|p| Some((p.get(key_name)?.to_string(), p.get(value_name).unwrap_or("").to_string())))
            .collect()
    }

    /// Iterate all `(key, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `(index, remainder after the index, value)` for keys `prefix.N<remainder>`.
    fn indexed<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (u64, &'a str, &'a str)> + 'a {
        let p = format!("{prefix}.");
        let plen = p.len();
        self.map.range(p.clone()..).take_while(move |(k, _)| k.starts_with(&p)).filter_map(move |(k, v)| {
            let tail = &k[plen..];
            let end = tail.find('.').unwrap_or(tail.len());
            let idx: u64 = tail[..end].parse().ok()?;
            Some((idx, &tail[end..], v.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_every_action_value_decoded() {
        let found: Vec<_> = QueryParams::actions(b"Version=1&Action=Get%55ser&UserName=a&Action=CreateUser").collect();
        assert_eq!(found, ["GetUser", "CreateUser"]);
        assert_eq!(QueryParams::actions(b"Version=1").count(), 0);
    }

    #[test]
    fn parses_scalars_and_lists() {
        let q = QueryParams::parse(
            b"Action=CreateUser&UserName=al%2Bice&PolicyArns.member.2=b&PolicyArns.member.1=a&PolicyArns.member.10=c",
        );
        assert_eq!(q.action(), Some("CreateUser"));
        assert_eq!(q.get("UserName"), Some("al+ice"));
        assert_eq!(q.list("PolicyArns.member"), vec!["a", "b", "c"]);
        assert!(q.contains("PolicyArns.member"));
        assert!(!q.contains("Tags"));
    }

    #[test]
    fn struct_lists_nest() {
        let q = QueryParams::parse(
            b"Tags.member.1.Key=k1&Tags.member.1.Value=v1&Tags.member.2.Key=k2&Tags.member.2.Value=&\
C.member.1.ContextKeyValues.member.1=x&C.member.1.ContextKeyValues.member.2=y&C.member.1.ContextKeyName=n",
        );
        let tags = q.struct_list("Tags.member");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].get("Key"), Some("k1"));
        assert_eq!(tags[1].get("Value"), Some(""));
        let c = q.struct_list("C.member");
        assert_eq!(c[0].list("ContextKeyValues.member"), vec!["x", "y"]);
        assert_eq!(c[0].get("ContextKeyName"), Some("n"));
    }

    #[test]
    fn typed_accessors_report_validation_errors() {
        let q = QueryParams::parse(b"MaxItems=abc&Flag=maybe");
        assert_eq!(q.get_i64("MaxItems").unwrap_err().code, "ValidationError");
        assert_eq!(q.get_bool("Flag").unwrap_err().code, "ValidationError");
        assert_eq!(q.required("Missing").unwrap_err().code, "ValidationError");
    }
}
