//! The one AWS-shaped error every layer maps into, and how each protocol renders it.

use std::borrow::Cow;

use crate::xml::escape;
use crate::Protocol;

/// An error as AWS reports it: a code, a human message and an HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// The AWS error code, e.g. `NoSuchEntity` or `AccessDenied`.
    pub code: Cow<'static, str>,
    /// The message, in AWS's wording where we know it.
    pub message: String,
    /// The HTTP status code.
    pub status: u16,
    /// Extra members of the error shape in JSON protocols (e.g. Organizations'
    /// `ConstraintViolationException.Reason`); ignored by awsQuery.
    pub fields: Vec<(&'static str, String)>,
}

impl AwsError {
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>, status: u16) -> Self {
        AwsError { code: code.into(), message: message.into(), status, fields: Vec::new() }
    }

    /// Add a member to the JSON error body (`"Reason": "OU_DEPTH_LIMIT_EXCEEDED"`).
    pub fn with_field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// `true` when the caller is at fault (4xx): AWS's `<Type>Sender</Type>`.
    pub fn is_sender_fault(&self) -> bool {
        self.status < 500
    }

    /// `ValidationError` (awsQuery services) — 400.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", message, 400)
    }

    /// `ValidationException` (JSON services) — 400.
    pub fn validation_exception(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message, 400)
    }

    /// `InvalidInput` — 400.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("InvalidInput", message, 400)
    }

    /// `MissingParameter`-style validation for a required member.
    pub fn missing_parameter(name: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(name)
        ))
    }

    /// `AccessDenied` — 403.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("AccessDenied", message, 403)
    }

    /// The operation is not one this service implements.
    pub fn invalid_action(service: &str, operation: &str) -> Self {
        let operation = echo(operation);
        Self::new(
            "InvalidAction",
            format!("The action {operation} is not valid for this web service ({service}) or is not implemented by Rampart."),
            400,
        )
    }

    /// JSON-protocol equivalent of [`AwsError::invalid_action`].
    pub fn unknown_operation(service: &str, operation: &str) -> Self {
        let operation = echo(operation);
        Self::new(
            "UnknownOperationException",
            format!("The operation {operation} is not implemented by Rampart's {service} service."),
            400,
        )
    }

    /// `InternalFailure` — 500. Only for faults of ours (e.g. the store is unreachable).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalFailure", message, 500)
    }

    /// Render the error body for `protocol`. Returns `(content_type, body)`.
    /// `xml_namespace` is the awsQuery service namespace (e.g. `https://iam.amazonaws.com/doc/2010-05-08/`).
    /// JSON bodies carry the message under both spellings (see [`AwsError::render_as`]).
    pub fn render(&self, protocol: Protocol, xml_namespace: &str, request_id: &str) -> (&'static str, Vec<u8>) {
        self.render_as(protocol, xml_namespace, JsonMessage::Both, request_id)
    }

    /// [`AwsError::render`] for a known service: a JSON body carries the message under the member
    /// name the service's model gives it (`message` for KMS, `Message` for Secrets Manager), as
    /// AWS sends it; `Both` where the service is not known (the request could not be routed).
    pub fn render_as(
        &self,
        protocol: Protocol,
        xml_namespace: &str,
        json_message: JsonMessage,
        request_id: &str,
    ) -> (&'static str, Vec<u8>) {
        match protocol {
            Protocol::AwsQuery => {
                let kind = if self.is_sender_fault() { "Sender" } else { "Receiver" };
                let body = format!(
                    "<ErrorResponse xmlns=\"{ns}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{msg}</Message>\n  </Error>\n  <RequestId>{rid}</RequestId>\n</ErrorResponse>\n",
                    ns = escape(xml_namespace),
                    code = escape(&self.code),
                    msg = escape(&self.message),
                    rid = escape(request_id),
                );
                ("text/xml", body.into_bytes())
            }
            Protocol::AwsJson1_0 | Protocol::AwsJson1_1 | Protocol::RestJson1 => {
                // A message-less error (KMSInvalidSignatureException, InvalidCiphertextException)
                // has no message member at all, as AWS sends it.
                let mut body = serde_json::json!({ "__type": self.code });
                if !self.message.is_empty() {
                    if json_message != JsonMessage::Upper {
                        body["message"] = serde_json::Value::String(self.message.clone());
                    }
                    if json_message != JsonMessage::Lower {
                        body["Message"] = serde_json::Value::String(self.message.clone());
                    }
                }
                for (k, v) in &self.fields {
                    body[*k] = serde_json::Value::String(v.clone());
                }
                (protocol.content_type(), body.to_string().into_bytes())
            }
        }
    }
}

/// The member a JSON error body carries its message in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonMessage {
    /// `message` (KMS and most services modelled after 2015).
    Lower,
    /// `Message` (Secrets Manager, Organizations, CloudTrail).
    Upper,
    /// Both, where the service is not known.
    Both,
}

impl JsonMessage {
    /// The member botocore's model of `model` (`kms`, `secretsmanager`) names, from the generated
    /// table.
    pub fn of_model(model: &str) -> Self {
        // The generated list is sorted (a test checks): found in ~8 comparisons on every call.
        if crate::json_targets::JSON_LOWERCASE_MESSAGE.binary_search(&model).is_ok() {
            JsonMessage::Lower
        } else {
            JsonMessage::Upper
        }
    }
}

/// How many characters of a caller's value an error message repeats ([`echo`]).
pub const MAX_ECHO_CHARS: usize = 256;

/// A caller-supplied value as error messages repeat it: whole when it has at most
/// [`MAX_ECHO_CHARS`] characters, else its first [`MAX_ECHO_CHARS`] followed by `...`. Every
/// message that quotes input goes through this, so an error (and its audit record) never grows
/// with the request: a 12 MB parameter comes back as 259 characters.
pub fn echo(value: &str) -> Cow<'_, str> {
    echo_at_most(value, MAX_ECHO_CHARS)
}

/// [`echo`] with another bound (`max` characters, then `...`).
pub fn echo_at_most(value: &str, max: usize) -> Cow<'_, str> {
    // Cheap exits: a byte length within the bound is within it in characters too.
    if value.len() <= max {
        return Cow::Borrowed(value);
    }
    match value.char_indices().nth(max) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&value[..cut]);
            out.push_str("...");
            Cow::Owned(out)
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input echoed into a message may hold characters XML 1.0 forbids (`UserName=%01`): the body
    /// must stay well-formed.
    #[test]
    fn query_error_with_control_characters_is_well_formed_xml() {
        let e = AwsError::new("ValidationError", "Value '\u{1}a\u{1b}\u{FFFF}' at 'userName' failed", 400);
        let (_, body) = e.render(Protocol::AwsQuery, "https://iam.amazonaws.com/doc/2010-05-08/", "rid-1");
        let body = String::from_utf8(body).unwrap();
        let xml_char =
            |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
        assert!(body.chars().all(xml_char), "{body:?}");
        assert!(
            body.contains(
                "<Message>Value &apos;\u{FFFD}a\u{FFFD}\u{FFFD}&apos; at &apos;userName&apos; failed</Message>"
            ),
            "{body}"
        );
    }

    #[test]
    fn query_error_is_escaped_xml() {
        let e = AwsError::new("NoSuchEntity", "The user with name <a&b> cannot be found.", 404);
        let (ct, body) = e.render(Protocol::AwsQuery, "https://iam.amazonaws.com/doc/2010-05-08/", "rid-1");
        let body = String::from_utf8(body).unwrap();
        assert_eq!(ct, "text/xml");
        assert!(body.contains("<Code>NoSuchEntity</Code>"));
        assert!(body.contains("&lt;a&amp;b&gt;"));
        assert!(body.contains("<Type>Sender</Type>"));
        assert!(body.contains("<RequestId>rid-1</RequestId>"));
    }

    #[test]
    fn echoed_values_are_bounded() {
        assert_eq!(echo("short"), "short");
        let exact = "é".repeat(MAX_ECHO_CHARS);
        assert_eq!(echo(&exact), exact.as_str(), "at the bound: whole");
        let long = format!("{}{}", "é".repeat(MAX_ECHO_CHARS), "tail");
        let echoed = echo(&long);
        assert_eq!(echoed.chars().count(), MAX_ECHO_CHARS + 3);
        assert!(echoed.ends_with("é...") && !echoed.contains("tail"));
        assert_eq!(echo_at_most("abcdef", 2), "ab...");
        // A 1 MB operation name comes back bounded.
        let action = "A".repeat(1 << 20);
        let e = AwsError::invalid_action("iam", &action);
        assert!(e.message.len() < 400, "{}", e.message.len());
        let e = AwsError::unknown_operation("kms", &action);
        assert!(e.message.len() < 400, "{}", e.message.len());
    }

    #[test]
    fn the_lowercase_message_table_is_sorted_for_binary_search() {
        let t = crate::json_targets::JSON_LOWERCASE_MESSAGE;
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        assert!(t.contains(&"kms") && !t.contains(&"secretsmanager"));
        assert_eq!(JsonMessage::of_model("kms"), JsonMessage::Lower);
        assert_eq!(JsonMessage::of_model("organizations"), JsonMessage::Upper);
    }

    #[test]
    fn json_error_has_type() {
        let e = AwsError::new("NotFoundException", "nope", 400);
        let (_, body) = e.render(Protocol::AwsJson1_1, "", "r");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["__type"], "NotFoundException");
        assert_eq!(v["message"], "nope");
        // A known service: the spelling its model uses, and only that one.
        let (_, body) = e.render_as(Protocol::AwsJson1_1, "", JsonMessage::of_model("kms"), "r");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"__type": "NotFoundException", "message": "nope"}));
        let (_, body) = e.render_as(Protocol::AwsJson1_1, "", JsonMessage::of_model("secretsmanager"), "r");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"__type": "NotFoundException", "Message": "nope"}));
        let (_, body) = AwsError::new("InvalidCiphertextException", "", 400).render(Protocol::AwsJson1_1, "", "r");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"__type": "InvalidCiphertextException"}));
    }
}
