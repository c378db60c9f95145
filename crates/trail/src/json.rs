//! A small JSON object writer for the per-call audit path: member names are copied as they are
//! (callers pass names that need no escaping); string values and integers are written exactly as
//! serde_json writes them.

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
    #[inline]
    pub(crate) fn member_value(&mut self, name: &str) -> &mut Vec<u8> {
        self.out.reserve(name.len() + 4);
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    #[inline]
    pub(crate) fn str(&mut self, name: &str, value: &str) {
        self.out.reserve(value.len() + 2);
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

    pub(crate) fn u64(&mut self, name: &str, value: u64) {
        write_u64(self.member_value(name), value);
    }

    pub(crate) fn i64(&mut self, name: &str, value: i64) {
        let out = self.member_value(name);
        if value < 0 {
            out.push(b'-');
        }
        write_u64(out, value.unsigned_abs());
    }

    /// A member whose value is already JSON text.
    pub(crate) fn raw(&mut self, name: &str, json: &[u8]) {
        self.member_value(name).extend_from_slice(json);
    }

    /// A nested object member.
    pub(crate) fn object(&mut self, name: &str) -> ObjectWriter<'_> {
        ObjectWriter::start(self.member_value(name))
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON string, escaped exactly as serde_json escapes it: runs of bytes that need no escaping
/// are copied in one piece (a whole string, usually), eight bytes checked at a time.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s.as_bytes());
    out.push(b'"');
}

/// The body of a JSON string (no quotes): serde_json's escapes (`\"`, `\\`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, else `\u00xx` in lowercase hex for control characters); every other byte,
/// non-ASCII and DEL included, as is. A string with nothing to escape (the usual case) is checked
/// eight bytes at a time and copied in one piece.
#[inline]
pub(crate) fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    if may_need_escaping(s) {
        write_escaped_runs(out, s);
    } else {
        out.extend_from_slice(s);
    }
}

/// [`write_escaped`] byte by byte: the runs between escapes copied in one piece each.
#[inline(never)]
fn write_escaped_runs(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if needs_escape(b) {
            out.extend_from_slice(&s[start..i]);
            write_escape(out, b);
            start = i + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// A control character, `"` or `\`.
pub(crate) fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// Whether a word (eight bytes) may hold a byte JSON escapes (see [`needs_escape`]). Never wrong
/// when it says no; a false yes only sends the string to the exact bytewise path.
fn word_may_need_escaping(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `w` is below `n` (n <= 0x80): the classic "has less" word test.
    let has_below = |w: u64, n: u8| w.wrapping_sub(ONES * n as u64) & !w & HIGHS != 0;
    let has_byte = |w: u64, b: u8| has_below(w ^ (ONES * b as u64), 1);
    // `|` rather than `||`: three tests without branches, one check.
    has_below(w, 0x20) | has_byte(w, b'"') | has_byte(w, b'\\')
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or_default())
}

/// Whether `s` may hold a byte JSON escapes (see [`word_may_need_escaping`]): eight bytes at a
/// time, the last word overlapping the one before; strings under eight bytes bytewise.
#[inline]
pub(crate) fn may_need_escaping(s: &[u8]) -> bool {
    if s.len() < 8 {
        return s.iter().any(|&b| needs_escape(b));
    }
    let mut words = s.chunks_exact(8);
    if words.any(|w| word_may_need_escaping(word(w))) {
        return true;
    }
    !words.remainder().is_empty() && word_may_need_escaping(word(&s[s.len() - 8..]))
}

/// Decimal digits, as serde_json writes integers.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in ["", "plain", "q\"uote", "back\\slash", "nl\n\t\u{1}\u{1f}", "\u{7f}\u{e9}\u{2028}\u{1F600}", "</x>"] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    /// Characters that exercise every escaping branch: controls, quote, backslash, DEL, slash,
    /// multi-byte UTF-8 (2, 3 and 4 bytes, including U+2028), plain ASCII.
    fn tricky_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => proptest::char::range('\u{0}', '\u{1f}'),
            2 => Just('"'),
            2 => Just('\\'),
            1 => Just('\u{7f}'),
            1 => Just('/'),
            1 => prop_oneof![Just('\u{e9}'), Just('\u{2028}'), Just('\u{1F600}'), Just('\u{ffff}')],
            8 => proptest::char::range(' ', '~'),
            1 => any::<char>(),
        ]
    }

    proptest! {
        #[test]
        fn random_strings_are_escaped_as_serde_json_escapes_them(
            chars in proptest::collection::vec(tricky_char(), 0..80),
            prefix in "[a-z]{0,3}",
        ) {
            let s: String = chars.into_iter().collect();
            // Also after existing output, as in a record.
            let mut out = prefix.clone().into_bytes();
            write_str(&mut out, &s);
            prop_assert_eq!(String::from_utf8(out).unwrap(), format!("{prefix}{}", serde_json::to_string(&s).unwrap()));
        }

        #[test]
        fn any_string_is_escaped_as_serde_json_escapes_it(s in any::<String>()) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn every_byte_at_every_offset_is_escaped_as_serde_json_escapes_it() {
        for b in 0..=0x7fu8 {
            for len in 1..20 {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    let s = String::from_utf8(s).unwrap();
                    let mut out = Vec::new();
                    write_str(&mut out, &s);
                    assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn integers_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<i64> = vec![0, 1, -1, 9, 10, -10, 99, 100, i64::MAX, i64::MIN, i64::MIN + 1];
        cases.extend((0..19).map(|p| 10i64.pow(p)).flat_map(|n| [n - 1, n, n + 1, -n, 1 - n]));
        for n in cases {
            let mut out = Vec::new();
            let mut o = ObjectWriter::start(&mut out);
            o.i64("a", n);
            o.end();
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::json!({ "a": n }).to_string());
        }
        for n in [0, 1, 9, 10, u64::MAX, u64::MAX - 1, 1 << 63, 10_000_000_000_000_000_000] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&n).unwrap());
        }
    }

    proptest! {
        #[test]
        fn random_integers_are_written_as_serde_json_writes_them(n in any::<i64>(), u in any::<u64>()) {
            let mut out = Vec::new();
            let mut o = ObjectWriter::start(&mut out);
            o.i64("i", n);
            o.u64("u", u);
            o.end();
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::json!({ "i": n, "u": u }).to_string());
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
        inner.i64("n", -12);
        inner.end();
        o.object("e").end();
        o.raw("f", b"[1,{}]");
        o.u64("g", 7);
        o.end();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":"x\"","c":false,"d":{"n":-12},"e":{},"f":[1,{}],"g":7}"#);
    }
}
