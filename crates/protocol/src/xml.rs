//! A small, allocation-light XML writer for awsQuery responses.

use std::fmt::Write;

/// Escape text for XML element content and attribute values. Characters XML 1.0 does not allow
/// at all (control characters other than tab, newline and carriage return; U+FFFE, U+FFFF) cannot
/// be escaped either: they become U+FFFD, so the document still parses.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    // 0xEF leads U+F000..=U+FFFF (U+FFFE and U+FFFF among them): rare enough to check slowly.
    let special =
        |b: u8| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\'' | b'\r' | 0xEF) || (b < 0x20 && b != b'\t' && b != b'\n');
    if !s.bytes().any(special) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    if out == s {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(out)
}

/// Builds the inner XML of an awsQuery `<OperationResult>` element.
#[derive(Default, Debug)]
pub struct XmlWriter {
    buf: String,
    stack: Vec<&'static str>,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Open `<tag>`.
    pub fn start(&mut self, tag: &'static str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self.stack.push(tag);
        self
    }

    /// Close the innermost open element.
    pub fn end(&mut self) -> &mut Self {
        if let Some(tag) = self.stack.pop() {
            self.buf.push_str("</");
            self.buf.push_str(tag);
            self.buf.push('>');
        }
        self
    }

    /// `<tag>text</tag>`, text escaped.
    pub fn elem(&mut self, tag: &str, text: &str) -> &mut Self {
        // Pushed piece by piece: the formatter costs more than the copying.
        let b = &mut self.buf;
        b.push('<');
        b.push_str(tag);
        b.push('>');
        b.push_str(&escape(text));
        b.push_str("</");
        b.push_str(tag);
        b.push('>');
        self
    }

    /// `<tag>text</tag>` when `text` is `Some`.
    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.elem(tag, t);
        }
        self
    }

    /// `<tag>true|false</tag>`.
    pub fn bool(&mut self, tag: &str, v: bool) -> &mut Self {
        self.elem(tag, if v { "true" } else { "false" })
    }

    /// `<tag>n</tag>`.
    pub fn num(&mut self, tag: &str, v: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.buf, "<{tag}>{v}</{tag}>");
        self
    }

    /// Append pre-built, already-escaped XML.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.buf.push_str(xml);
        self
    }

    /// Finish, closing anything still open.
    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.end();
        }
        self.buf
    }
}

/// Wrap an operation result as AWS's awsQuery response document:
/// `<{Op}Response xmlns=..><{Op}Result>..</{Op}Result><ResponseMetadata><RequestId>..`.
/// When `result` is `None` the `Result` element is omitted (operations with no output).
pub fn query_response(operation: &str, namespace: &str, result: Option<&str>, request_id: &str) -> String {
    let mut out = String::with_capacity(160 + 4 * operation.len() + result.map_or(0, str::len));
    for piece in ["<", operation, "Response xmlns=\"", &escape(namespace), "\">\n"] {
        out.push_str(piece);
    }
    if let Some(r) = result {
        for piece in ["  <", operation, "Result>", r, "</", operation, "Result>\n"] {
            out.push_str(piece);
        }
    }
    for piece in [
        "  <ResponseMetadata>\n    <RequestId>",
        &escape(request_id),
        "</RequestId>\n  </ResponseMetadata>\n</",
        operation,
        "Response>\n",
    ] {
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_nests_and_escapes() {
        let mut w = XmlWriter::new();
        w.start("User").elem("UserName", "a&b").num("Count", 3).bool("Flag", true).end();
        assert_eq!(w.finish(), "<User><UserName>a&amp;b</UserName><Count>3</Count><Flag>true</Flag></User>");
    }

    /// Every string escapes to text a conforming XML parser accepts and reads back unchanged,
    /// except characters XML cannot carry at all, which read back as U+FFFD.
    #[test]
    fn escaped_text_is_always_well_formed() {
        let mut samples: Vec<String> = (0u32..0x80).filter_map(char::from_u32).map(String::from).collect();
        samples.extend(
            ["a\u{1}b", "\u{0}", "x\u{FFFE}\u{FFFF}y", "日本\u{EFFF}\u{F000}", "\t\n\r", "<&>\"'"].map(String::from),
        );
        for s in samples {
            let doc = format!("<a b=\"{}\">{}</a>", escape(&s), escape(&s));
            let mut reader = quick_xml::Reader::from_str(&doc);
            let mut text = String::new();
            loop {
                match reader.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(quick_xml::events::Event::Text(t)) => text.push_str(&t.decode().unwrap()),
                    Ok(quick_xml::events::Event::GeneralRef(r)) => {
                        let name = r.decode().unwrap();
                        let c = match &*name {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "quot" => '"',
                            "apos" => '\'',
                            _ => r.resolve_char_ref().unwrap().unwrap(),
                        };
                        text.push(c);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("{s:?}: {e}"),
                }
            }
            let expected: String =
                s.chars().map(|c| if xml_char(c) { c } else { char::REPLACEMENT_CHARACTER }).collect();
            assert_eq!(text, expected, "{s:?}");
            assert!(doc.chars().all(xml_char), "{s:?} gives {doc:?}");
        }
    }

    /// XML 1.0's `Char` production.
    fn xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }

    #[test]
    fn response_envelope() {
        let s = query_response("GetUser", "ns", Some("<User/>"), "r1");
        assert!(s.starts_with("<GetUserResponse xmlns=\"ns\">"));
        assert!(s.contains("<GetUserResult><User/></GetUserResult>"));
        assert!(s.contains("<RequestId>r1</RequestId>"));
        let s = query_response("DeleteUser", "ns", None, "r1");
        assert!(!s.contains("DeleteUserResult"));
    }

    #[test]
    fn response_envelope_exact() {
        assert_eq!(
            query_response("GetUser", "n&s", Some("<User/>"), "r<1"),
            "<GetUserResponse xmlns=\"n&amp;s\">\n  <GetUserResult><User/></GetUserResult>\n  <ResponseMetadata>\n    \
             <RequestId>r&lt;1</RequestId>\n  </ResponseMetadata>\n</GetUserResponse>\n"
        );
        assert_eq!(
            query_response("DeleteUser", "ns", None, "r1"),
            "<DeleteUserResponse xmlns=\"ns\">\n  <ResponseMetadata>\n    <RequestId>r1</RequestId>\n  \
             </ResponseMetadata>\n</DeleteUserResponse>\n"
        );
    }
}
