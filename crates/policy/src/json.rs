//! A small JSON reader that keeps source positions.
//!
//! serde_json drops positions, and the policy simulator reports where each matched statement starts and ends
//! (line/column), so policy documents are read with this parser. Objects keep their keys in document order;
//! nesting is bounded so hostile input cannot exhaust the stack.
//!
//! Stricter than RFC 8259 where a policy's meaning would otherwise be ambiguous: a repeated key in an
//! object (`{"Effect":"Deny","Effect":"Allow"}` — readers disagree on which one wins) and a NUL
//! character (`\u0000`, which IAM's document pattern refuses and C-string consumers truncate at)
//! are syntax errors. Duplicate detection is linear in the number of keys.

use serde::{Deserialize, Serialize};

/// Maximum nesting of arrays/objects; far beyond anything a policy needs.
const MAX_DEPTH: usize = 64;

/// A position in the source: 1-based line and column (columns count characters), and the byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
    #[serde(skip)]
    pub offset: usize,
}

/// A JSON value with the span it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Json {
    pub value: JsonValue,
    pub start: Position,
    /// Just past the value's last character.
    pub end: Position,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JsonValue {
    Null,
    Bool(bool),
    /// The number's source text (condition values keep their literal form).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Keys in document order, each at most once (a repeated key is a syntax error).
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            JsonValue::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match &self.value {
            JsonValue::Object(o) => Some(o),
            _ => None,
        }
    }
    /// The member `key` of an object (exact, case-sensitive as AWS's element names are).
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.as_object()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// The input is not JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntaxError;

/// Parse `src` as exactly one JSON value (surrounding whitespace allowed).
pub fn parse(src: &str) -> Result<Json, SyntaxError> {
    let mut p = Parser { src: src.as_bytes(), pos: 0, line: 1, col: 1, depth: 0 };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.pos != p.src.len() {
        return Err(SyntaxError);
    }
    Ok(v)
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    col: u32,
    depth: usize,
}

impl Parser<'_> {
    fn here(&self) -> Position {
        Position { line: self.line, column: self.col, offset: self.pos }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Advance one byte, keeping line/column (columns count UTF-8 characters, not bytes).
    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            self.col += 1;
        }
        Some(b)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), SyntaxError> {
        if self.bump() == Some(b) {
            Ok(())
        } else {
            Err(SyntaxError)
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), SyntaxError> {
        for &b in word.as_bytes() {
            self.expect(b)?;
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Json, SyntaxError> {
        let start = self.here();
        let value = match self.peek().ok_or(SyntaxError)? {
            b'{' => self.object()?,
            b'[' => self.array()?,
            b'"' => JsonValue::String(self.string()?),
            b't' => {
                self.literal("true")?;
                JsonValue::Bool(true)
            }
            b'f' => {
                self.literal("false")?;
                JsonValue::Bool(false)
            }
            b'n' => {
                self.literal("null")?;
                JsonValue::Null
            }
            b'-' | b'0'..=b'9' => JsonValue::Number(self.number()?),
            _ => return Err(SyntaxError),
        };
        Ok(Json { value, start, end: self.here() })
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError);
        }
        Ok(())
    }

    fn object(&mut self) -> Result<JsonValue, SyntaxError> {
        self.enter()?;
        self.expect(b'{')?;
        let mut members: Vec<(String, Json)> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.bump();
            self.depth -= 1;
            return Ok(JsonValue::Object(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(SyntaxError);
            }
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            if !seen.insert(key.clone()) {
                return Err(SyntaxError);
            }
            let v = self.value()?;
            members.push((key, v));
            self.ws();
            match self.bump() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(SyntaxError),
            }
        }
        self.depth -= 1;
        Ok(JsonValue::Object(members))
    }

    fn array(&mut self) -> Result<JsonValue, SyntaxError> {
        self.enter()?;
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.bump();
            self.depth -= 1;
            return Ok(JsonValue::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.bump() {
                Some(b',') => continue,
                Some(b']') => break,
                _ => return Err(SyntaxError),
            }
        }
        self.depth -= 1;
        Ok(JsonValue::Array(items))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = (self.bump().ok_or(SyntaxError)? as char).to_digit(16).ok_or(SyntaxError)?;
            n = n * 16 + d;
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = self.bump().ok_or(SyntaxError)?;
            match b {
                b'"' => break,
                b'\\' => match self.bump().ok_or(SyntaxError)? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let hi = self.hex4()?;
                        let c = if (0xD800..0xDC00).contains(&hi) {
                            self.expect(b'\\')?;
                            self.expect(b'u')?;
                            let lo = self.hex4()?;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return Err(SyntaxError);
                            }
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).ok_or(SyntaxError)?
                        } else {
                            char::from_u32(hi).filter(|&c| c != '\0').ok_or(SyntaxError)?
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return Err(SyntaxError),
                },
                0..=0x1F => return Err(SyntaxError),
                _ => out.push(b),
            }
        }
        // The input is a &str and escapes produce valid UTF-8, so this cannot fail; stay total anyway.
        String::from_utf8(out).map_err(|_| SyntaxError)
    }

    fn digits(&mut self) -> usize {
        let mut n = 0;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.bump();
            n += 1;
        }
        n
    }

    fn number(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => {
                self.bump();
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(SyntaxError),
        }
        if self.peek() == Some(b'.') {
            self.bump();
            if self.digits() == 0 {
                return Err(SyntaxError);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.bump();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.bump();
            }
            if self.digits() == 0 {
                return Err(SyntaxError);
            }
        }
        let digits = self.src.get(start..self.pos).ok_or(SyntaxError)?;
        std::str::from_utf8(digits).map(str::to_string).map_err(|_| SyntaxError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_values() {
        let j = parse("{\n  \"a\": [1, true, null],\n  \"b\": \"x\\u00e9\\ud83d\\ude00\"\n}").unwrap();
        let a = j.get("a").unwrap();
        assert_eq!((a.start.line, a.start.column), (2, 8));
        assert_eq!((a.end.line, a.end.column), (2, 23));
        assert_eq!(j.get("b").unwrap().as_str(), Some("xé😀"));
        assert_eq!(j.end.line, 4);
    }

    #[test]
    fn rejects_bad_json() {
        for s in ["", "{", "{\"a\":}", "[1,]", "01", "1.", "\"\\x\"", "{} x", "\"a\nb\"", "\"\\ud800\""] {
            assert!(parse(s).is_err(), "{s:?}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn duplicate_keys_are_syntax_errors() {
        assert!(parse(r#"{"a":1,"a":2}"#).is_err());
        assert!(parse(r#"{"a":{"b":1,"c":2,"b":3}}"#).is_err());
        // Escapes are decoded before keys are compared.
        assert!(parse(r#"{"a":1,"\u0061":2}"#).is_err());
        // Keys are case-sensitive: different keys.
        assert_eq!(parse(r#"{"a":1,"A":2}"#).unwrap().as_object().unwrap().len(), 2);
        // The same key in sibling objects is fine.
        assert!(parse(r#"[{"a":1},{"a":2}]"#).is_ok());
        // Many keys: linear, and each is kept once.
        let big = format!("{{{}}}", (0..20_000).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
        assert_eq!(parse(&big).unwrap().as_object().unwrap().len(), 20_000);
    }

    #[test]
    fn nul_characters_are_syntax_errors() {
        assert!(parse("\"a\\u0000b\"").is_err());
        assert!(parse("{\"a\\u0000\":1}").is_err());
        assert!(parse("\"a\u{0}b\"").is_err());
        assert_eq!(parse("\"a\\u0001b\"").unwrap().as_str(), Some("a\u{1}b"));
    }
}
