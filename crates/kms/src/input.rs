//! Typed access to awsJson request members, with AWS's validation messages.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

use crate::error::{KmsError, Result};

pub(crate) struct In<'a>(pub &'a Value);

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `1 validation error detected: Value at 'member' failed to satisfy constraint: …`
pub(crate) fn invalid(member: &str, constraint: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value at '{}' failed to satisfy constraint: {constraint}",
        lower_first(member)
    ))
}

/// `1 validation error detected: Value 'value' at 'member' failed to satisfy constraint: …`
/// (AWS names the value when it is not sensitive: enums, patterns of names).
pub(crate) fn invalid_value(member: &str, value: &str, constraint: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: {constraint}",
        rampart_protocol::echo(value),
        lower_first(member)
    ))
}

pub(crate) fn missing(member: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
        lower_first(member)
    ))
}

fn wrong_type(member: &str, want: &str) -> KmsError {
    KmsError::Serialization(format!("Member {member} must be {want}"))
}

impl<'a> In<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn str(&self, name: &str) -> Result<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    pub fn req_str(&self, name: &str) -> Result<&'a str> {
        self.str(name)?.ok_or_else(|| missing(name))
    }

    /// A string member with AWS's length limits.
    pub fn str_len(&self, name: &str, min: usize, max: usize) -> Result<Option<&'a str>> {
        let v = self.str(name)?;
        if let Some(s) = v {
            let n = s.chars().count();
            if n < min {
                return Err(invalid(name, &format!("Member must have length greater than or equal to {min}")));
            }
            if n > max {
                return Err(invalid(name, &format!("Member must have length less than or equal to {max}")));
            }
        }
        Ok(v)
    }

    pub fn req_str_len(&self, name: &str, min: usize, max: usize) -> Result<&'a str> {
        self.str_len(name, min, max)?.ok_or_else(|| missing(name))
    }

    /// A key reference (`KeyId`, `TargetKeyId`, …): 1–2048 characters.
    pub fn key_id(&self, name: &str) -> Result<&'a str> {
        self.req_str_len(name, 1, 2048)
    }

    pub fn blob(&self, name: &str, min: usize, max: usize) -> Result<Option<Vec<u8>>> {
        let Some(s) = self.str(name)? else { return Ok(None) };
        let b = B64.decode(s).map_err(|_| wrong_type(name, "a base64-encoded blob"))?;
        if b.len() < min {
            return Err(invalid(name, &format!("Member must have length greater than or equal to {min}")));
        }
        if b.len() > max {
            return Err(invalid(name, &format!("Member must have length less than or equal to {max}")));
        }
        Ok(Some(b))
    }

    pub fn req_blob(&self, name: &str, min: usize, max: usize) -> Result<Vec<u8>> {
        self.blob(name, min, max)?.ok_or_else(|| missing(name))
    }

    pub fn map(&self, name: &str) -> Result<BTreeMap<String, String>> {
        match self.get(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(wrong_type(name, "a map of strings")),
                })
                .collect(),
            Some(_) => Err(wrong_type(name, "a map of strings")),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(wrong_type(name, "a boolean")),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| wrong_type(name, "an integer")),
        }
    }

    pub fn int_range(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>> {
        let v = self.int(name)?;
        if let Some(n) = v {
            // AWS prints the number: "Value '0' at 'numberOfBytes' failed to satisfy …".
            if n < min {
                return Err(invalid_value(
                    name,
                    &n.to_string(),
                    &format!("Member must have value greater than or equal to {min}"),
                ));
            }
            if n > max {
                return Err(invalid_value(
                    name,
                    &n.to_string(),
                    &format!("Member must have value less than or equal to {max}"),
                ));
            }
        }
        Ok(v)
    }

    pub fn str_list(&self, name: &str) -> Result<Vec<String>> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(|| wrong_type(name, "a list of strings")))
                .collect(),
            Some(_) => Err(wrong_type(name, "a list of strings")),
        }
    }

    /// `Limit` (1–1000, default `default`) and `Marker`.
    pub fn page(&self, default: usize) -> Result<(usize, Option<&'a str>)> {
        let limit = self.int_range("Limit", 1, 1000)?.map(|n| n as usize).unwrap_or(default);
        let marker = self.str_len("Marker", 1, 1024)?;
        Ok((limit, marker))
    }
}

/// Paginate `items` by an opaque marker (the index where the next page starts).
pub(crate) fn paginate<T: Clone>(items: &[T], limit: usize, marker: Option<&str>) -> Result<(Vec<T>, Option<String>)> {
    let start = match marker {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| KmsError::InvalidMarker(format!("Invalid marker '{m}'")))?,
    };
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
}
