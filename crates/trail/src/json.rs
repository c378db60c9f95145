//! A small JSON object writer for the per-call audit path: member names are copied as they are
//! (callers pass names that need no escaping), string values are escaped exactly as serde_json
//! escapes them, and everything else is written by serde_json itself.

use serde::Serialize;

/// Writes one JSON object member by member into `out`; [`ObjectWriter::end`] closes it.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub(crate) fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    /// Begin member `name` and return the buffer to write its (JSON) value into.
    pub(crate) fn member_value(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub(crate) fn str(&mut self, name: &str, value: &str) {
        write_str(self.member_value(name), value);
    }

    /// A string member, left out when `None`.
    pub(crate) fn opt_str(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(name, v);
        }
    }

    pub(crate) fn bool(&mut self, name: &str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.member_value(name).extend_from_slice(text);
    }

    /// A member whose value is already JSON text.
    pub(crate) fn raw(&mut self, name: &str, json: &[u8]) {
        self.member_value(name).extend_from_slice(json);
    }

    /// Any serialisable value (numbers, `Value`s, lists), written by serde_json.
    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        write_value(self.member_value(name), value);
    }

    /// A nested object member.
    pub(crate) fn object(&mut self, name: &str) -> ObjectWriter<'_> {
        ObjectWriter::start(self.member_value(name))
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON string: copied when nothing in it needs escaping (the usual case), else serde_json's escaping.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if !may_need_escaping(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        write_value(out, s);
    }
}

/// Whether `s` may hold a byte JSON escapes (a control character, `"` or `\\`), eight bytes at a
/// time. Never wrong when it says no; a rare false yes only takes the slower (still exact) path.
fn may_need_escaping(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `w` is below `n` (n <= 0x80): the classic "has less" word test.
    let has_below = |w: u64, n: u8| w.wrapping_sub(ONES * n as u64) & !w & HIGHS != 0;
    let has_byte = |w: u64, b: u8| has_below(w ^ (ONES * b as u64), 1);
    let mut words = s.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if has_below(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\') {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn write_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, nor can serialising strings, numbers, lists and `Value`s
    // (whose keys are strings): no error to report.
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in ["", "plain", "q\"uote", "back\\slash", "nl\n\t\u{1}\u{1f}", "\u{7f}\u{e9}\u{2028}\u{1F600}", "</x>"] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn the_word_test_finds_every_byte_that_needs_escaping() {
        for b in 0..=255u8 {
            let needs = b < 0x20 || b == b'"' || b == b'\\';
            for at in 0..17 {
                let mut s = vec![b'a'; 17];
                s[at] = b;
                if needs {
                    assert!(may_need_escaping(&s), "byte {b:#x} at {at}");
                } else if b < 0x80 {
                    assert!(!may_need_escaping(&s), "byte {b:#x} at {at}");
                }
            }
        }
        assert!(!may_need_escaping("arn:aws:iam::123456789012:user/alice-\u{e9}\u{1F600}".as_bytes()));
    }

    #[test]
    fn objects_nest_and_skip_absent_members() {
        let mut out = Vec::new();
        let mut o = ObjectWriter::start(&mut out);
        o.str("a", "x\"");
        o.opt_str("b", None);
        o.bool("c", false);
        let mut inner = o.object("d");
        inner.value("n", &-12_i64);
        inner.end();
        o.object("e").end();
        o.raw("f", b"[1,{}]");
        o.value("g", &serde_json::json!({"z": null, "y": [true]}));
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x\"","c":false,"d":{"n":-12},"e":{},"f":[1,{}],"g":{"y":[true],"z":null}}"#
        );
    }
}
