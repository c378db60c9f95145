//! Reading awsJson input members with AWS-style validation errors.

use serde_json::Value;

use crate::error::{Result, SmError};

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn wrong_type(name: &str, want: &str) -> SmError {
    SmError::Aws(rampart_protocol::AwsError::new(
        "SerializationException",
        format!("Value for {name} must be {want}"),
        400,
    ))
}

/// AWS's limit on tags per secret (and so per request).
pub const MAX_TAGS: usize = 50;

/// A view over the request body.
#[derive(Clone, Copy)]
pub struct In<'a>(pub &'a Value);

impl<'a> In<'a> {
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn str(&self, name: &str) -> Result<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(wrong_type(name, "a string")),
        }
    }

    pub fn req_str(&self, name: &str) -> Result<&'a str> {
        self.str(name)?.ok_or_else(|| {
            SmError::Validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(name)
            ))
        })
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(name, "a boolean")),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong_type(name, "an integer")),
            Some(_) => Err(wrong_type(name, "an integer")),
        }
    }

    pub fn list(&self, name: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(wrong_type(name, "a list")),
        }
    }

    pub fn str_list(&self, name: &str) -> Result<Option<Vec<&'a str>>> {
        match self.list(name)? {
            None => Ok(None),
            Some(items) => items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| wrong_type(name, "a list of strings")))
                .collect::<Result<Vec<_>>>()
                .map(Some),
        }
    }

    pub fn obj(&self, name: &str) -> Result<Option<In<'a>>> {
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(In(v))),
            Some(_) => Err(wrong_type(name, "a structure")),
        }
    }

    /// `Tags: [{Key, Value}]`. More than [`MAX_TAGS`] is refused by the count alone, before any
    /// per-tag work (plans read tags before authorization).
    pub fn tags(&self, name: &str) -> Result<Option<Vec<(String, String)>>> {
        match self.list(name)? {
            None => Ok(None),
            Some(items) if items.len() > MAX_TAGS => Err(SmError::Validation(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length less than or equal to {MAX_TAGS}",
                lower_first(name)
            ))),
            Some(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let t = In(item);
                    if !item.is_object() {
                        return Err(wrong_type(name, "a list of tags"));
                    }
                    out.push((t.str("Key")?.unwrap_or("").to_string(), t.str("Value")?.unwrap_or("").to_string()));
                }
                Ok(Some(out))
            }
        }
    }
}

/// A length constraint failure in AWS's ValidationException wording.
pub fn length_error(name: &str, value_len: usize, min: usize, max: usize) -> Option<SmError> {
    if value_len < min {
        Some(SmError::Validation(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
            lower_first(name)
        )))
    } else if value_len > max {
        Some(SmError::Validation(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length less than or equal to {max}",
            lower_first(name)
        )))
    } else {
        None
    }
}

pub fn check_len(name: &str, value: &str, min: usize, max: usize) -> Result<()> {
    match length_error(name, value.chars().count(), min, max) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
