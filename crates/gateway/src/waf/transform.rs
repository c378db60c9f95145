//! WAFv2 TextTransformations, applied in Priority order to the bytes of a field before a match.

use std::borrow::Cow;

use base64::Engine as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    None,
    CompressWhiteSpace,
    HtmlEntityDecode,
    Lowercase,
    CmdLine,
    UrlDecode,
    UrlDecodeUni,
    Base64Decode,
    Base64DecodeExt,
    HexDecode,
    ReplaceComments,
    EscapeSeqDecode,
    SqlHexDecode,
    CssDecode,
    JsDecode,
    NormalizePath,
    NormalizePathWin,
    RemoveNulls,
    ReplaceNulls,
    Utf8ToUnicode,
    Md5,
}

impl Transform {
    pub fn parse(name: &str) -> Option<Transform> {
        Some(match name {
            "NONE" => Transform::None,
            "COMPRESS_WHITE_SPACE" => Transform::CompressWhiteSpace,
            "HTML_ENTITY_DECODE" => Transform::HtmlEntityDecode,
            "LOWERCASE" => Transform::Lowercase,
            "CMD_LINE" => Transform::CmdLine,
            "URL_DECODE" => Transform::UrlDecode,
            "URL_DECODE_UNI" => Transform::UrlDecodeUni,
            "BASE64_DECODE" => Transform::Base64Decode,
            "BASE64_DECODE_EXT" => Transform::Base64DecodeExt,
            "HEX_DECODE" => Transform::HexDecode,
            "REPLACE_COMMENTS" => Transform::ReplaceComments,
            "ESCAPE_SEQ_DECODE" => Transform::EscapeSeqDecode,
            "SQL_HEX_DECODE" => Transform::SqlHexDecode,
            "CSS_DECODE" => Transform::CssDecode,
            "JS_DECODE" => Transform::JsDecode,
            "NORMALIZE_PATH" => Transform::NormalizePath,
            "NORMALIZE_PATH_WIN" => Transform::NormalizePathWin,
            "REMOVE_NULLS" => Transform::RemoveNulls,
            "REPLACE_NULLS" => Transform::ReplaceNulls,
            "UTF8_TO_UNICODE" => Transform::Utf8ToUnicode,
            "MD5" => Transform::Md5,
            _ => return None,
        })
    }

    /// Applies this transformation; returns the input unchanged (borrowed) when nothing changes.
    pub fn apply<'a>(self, input: Cow<'a, [u8]>) -> Cow<'a, [u8]> {
        match self {
            Transform::None => input,
            Transform::Lowercase => {
                if input.iter().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(input.to_ascii_lowercase())
                } else {
                    input
                }
            }
            Transform::CompressWhiteSpace => Cow::Owned(compress_white_space(&input)),
            Transform::HtmlEntityDecode => {
                if memchr::memchr(b'&', &input).is_some() {
                    Cow::Owned(html_entity_decode(&input))
                } else {
                    input
                }
            }
            Transform::CmdLine => Cow::Owned(cmd_line(&input)),
            Transform::UrlDecode => {
                if input.iter().any(|&b| b == b'%' || b == b'+') {
                    Cow::Owned(url_decode(&input, false))
                } else {
                    input
                }
            }
            Transform::UrlDecodeUni => {
                if input.iter().any(|&b| b == b'%' || b == b'+') {
                    Cow::Owned(url_decode(&input, true))
                } else {
                    input
                }
            }
            Transform::Base64Decode => match base64_decode(&input, false) {
                Some(v) => Cow::Owned(v),
                None => input,
            },
            Transform::Base64DecodeExt => match base64_decode(&input, true) {
                Some(v) => Cow::Owned(v),
                None => input,
            },
            Transform::HexDecode => match hex::decode(trim_ascii(&input)) {
                Ok(v) => Cow::Owned(v),
                Err(_) => input,
            },
            Transform::ReplaceComments => {
                if memchr::memmem::find(&input, b"/*").is_some() || memchr::memmem::find(&input, b"*/").is_some() {
                    Cow::Owned(replace_comments(&input))
                } else {
                    input
                }
            }
            Transform::EscapeSeqDecode => {
                if memchr::memchr(b'\\', &input).is_some() {
                    Cow::Owned(escape_seq_decode(&input))
                } else {
                    input
                }
            }
            Transform::SqlHexDecode => Cow::Owned(sql_hex_decode(&input)),
            Transform::CssDecode => {
                if memchr::memchr(b'\\', &input).is_some() {
                    Cow::Owned(css_decode(&input))
                } else {
                    input
                }
            }
            Transform::JsDecode => {
                if memchr::memchr(b'\\', &input).is_some() {
                    Cow::Owned(js_decode(&input))
                } else {
                    input
                }
            }
            Transform::NormalizePath => Cow::Owned(normalize_path(&input, false)),
            Transform::NormalizePathWin => Cow::Owned(normalize_path(&input, true)),
            Transform::RemoveNulls => {
                if memchr::memchr(0, &input).is_some() {
                    Cow::Owned(input.iter().copied().filter(|&b| b != 0).collect())
                } else {
                    input
                }
            }
            Transform::ReplaceNulls => {
                if memchr::memchr(0, &input).is_some() {
                    Cow::Owned(input.iter().map(|&b| if b == 0 { b' ' } else { b }).collect())
                } else {
                    input
                }
            }
            Transform::Md5 => {
                use md5::Digest as _;
                Cow::Owned(md5::Md5::digest(&input).to_vec())
            }
            Transform::Utf8ToUnicode => {
                if input.is_ascii() {
                    input
                } else {
                    Cow::Owned(utf8_to_unicode(&input))
                }
            }
        }
    }
}

/// Applies a chain (already in priority order).
pub fn apply_all<'a>(chain: &[Transform], input: &'a [u8]) -> Cow<'a, [u8]> {
    let mut v = Cow::Borrowed(input);
    for t in chain {
        v = t.apply(v);
    }
    v
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

fn compress_white_space(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut prev_space = false;
    for &b in input {
        if is_ws(b) {
            if !prev_space {
                out.push(b' ');
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
    out
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    match char::from_u32(c) {
        // Like ModSecurity: code points that fit a byte become that byte.
        Some(_) if c < 0x100 => out.push(c as u8),
        Some(ch) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
        None => out.push(b'?'),
    }
}

const ENTITIES: &[(&str, u32)] = &[
    ("quot", 0x22),
    ("amp", 0x26),
    ("lt", 0x3c),
    ("gt", 0x3e),
    ("nbsp", 0xa0),
    ("apos", 0x27),
    ("colon", 0x3a),
    ("semi", 0x3b),
    ("tab", 0x09),
    ("newline", 0x0a),
    ("lpar", 0x28),
    ("rpar", 0x29),
    ("sol", 0x2f),
    ("bsol", 0x5c),
    ("equals", 0x3d),
    ("excl", 0x21),
    ("num", 0x23),
    ("comma", 0x2c),
    ("period", 0x2e),
    ("grave", 0x60),
    ("lsqb", 0x5b),
    ("rsqb", 0x5d),
    ("lcub", 0x7b),
    ("rcub", 0x7d),
];

fn html_entity_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'&' {
            if let Some((c, used)) = parse_entity(&input[i + 1..]) {
                push_char(&mut out, c);
                i += 1 + used;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Parses what follows '&': `#123;`, `#x1F;`, `name;` (the ';' optional for numeric forms).
fn parse_entity(s: &[u8]) -> Option<(u32, usize)> {
    if s.first() == Some(&b'#') {
        let (hex, start) = match s.get(1) {
            Some(b'x') | Some(b'X') => (true, 2),
            _ => (false, 1),
        };
        let mut j = start;
        let mut v: u32 = 0;
        while j < s.len() && j - start < 8 {
            let d = match (hex, s[j]) {
                (true, c) if c.is_ascii_hexdigit() => (c as char).to_digit(16)?,
                (false, c) if c.is_ascii_digit() => (c - b'0') as u32,
                _ => break,
            };
            v = v.saturating_mul(if hex { 16 } else { 10 }).saturating_add(d);
            j += 1;
        }
        if j == start {
            return None;
        }
        while j < s.len() && s[j].is_ascii_hexdigit() && hex || (j < s.len() && !hex && s[j].is_ascii_digit()) {
            j += 1; // absurdly long numbers: swallow the rest
        }
        if s.get(j) == Some(&b';') {
            j += 1;
        }
        return Some((v.min(0x10ffff), j));
    }
    let end = s.iter().take(10).position(|&c| c == b';')?;
    let name = std::str::from_utf8(&s[..end]).ok()?.to_ascii_lowercase();
    ENTITIES.iter().find(|(n, _)| *n == name).map(|&(_, c)| (c, end + 1))
}

fn cmd_line(input: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(input.len());
    let mut prev_space = false;
    for &b in input {
        match b {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' | b';' => {
                if !prev_space {
                    out.push(b' ');
                    prev_space = true;
                }
            }
            b'/' | b'(' => {
                // Spaces before a slash or an opening parenthesis go.
                if prev_space {
                    out.pop();
                }
                out.push(b);
                prev_space = false;
            }
            _ => {
                out.push(b.to_ascii_lowercase());
                prev_space = false;
            }
        }
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

pub fn url_decode(input: &[u8], uni: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            if uni && matches!(input.get(i + 1), Some(b'u') | Some(b'U')) {
                let h = &input[i + 2..(i + 6).min(input.len())];
                if h.len() == 4 && h.iter().all(|c| c.is_ascii_hexdigit()) {
                    let mut v: u32 = 0;
                    for &c in h {
                        v = v * 16 + hex_val(c).unwrap_or(0) as u32;
                    }
                    // Full-width ASCII forms map to ASCII, like IIS did.
                    if (0xff01..=0xff5e).contains(&v) {
                        out.push((v - 0xff01 + 0x21) as u8);
                    } else {
                        push_char(&mut out, v);
                    }
                    i += 6;
                    continue;
                }
            }
            if let (Some(h), Some(l)) =
                (input.get(i + 1).and_then(|&c| hex_val(c)), input.get(i + 2).and_then(|&c| hex_val(c)))
            {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
            out.push(b);
        } else if b == b'+' {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

fn base64_decode(input: &[u8], ext: bool) -> Option<Vec<u8>> {
    let cleaned: Vec<u8> = if ext {
        input.iter().copied().filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_')).collect()
    } else {
        trim_ascii(input).iter().copied().take_while(|&c| c != b'=').collect()
    };
    let cleaned: Vec<u8> = cleaned
        .iter()
        .map(|&c| match c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        })
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    let eng = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    // A trailing lone character cannot decode: drop it rather than give up.
    let n = if cleaned.len() % 4 == 1 { cleaned.len() - 1 } else { cleaned.len() };
    eng.decode(&cleaned[..n]).ok()
}

fn replace_comments(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'/' && input.get(i + 1) == Some(&b'*') {
            match memchr::memmem::find(&input[i + 2..], b"*/") {
                Some(end) => i = i + 2 + end + 2,
                None => i = input.len(),
            }
            out.push(b' ');
        } else if input[i] == b'*' && input.get(i + 1) == Some(&b'/') {
            out.push(b' ');
            i += 2;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

fn escape_seq_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let c = input[i + 1];
        let simple = match c {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(10),
            b'r' => Some(13),
            b't' => Some(9),
            b'v' => Some(11),
            b'\\' | b'?' | b'\'' | b'"' => Some(c),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            i += 2;
            continue;
        }
        if c == b'x' || c == b'X' {
            if let (Some(h), Some(l)) =
                (input.get(i + 2).and_then(|&c| hex_val(c)), input.get(i + 3).and_then(|&c| hex_val(c)))
            {
                out.push(h * 16 + l);
                i += 4;
                continue;
            }
        }
        if (b'0'..=b'7').contains(&c) {
            let mut v: u32 = 0;
            let mut j = i + 1;
            while j < input.len() && j < i + 4 && (b'0'..=b'7').contains(&input[j]) {
                v = v * 8 + (input[j] - b'0') as u32;
                j += 1;
            }
            out.push((v & 0xff) as u8);
            i = j;
            continue;
        }
        out.push(c);
        i += 2;
    }
    out
}

fn sql_hex_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'0' && matches!(input.get(i + 1), Some(b'x') | Some(b'X')) {
            let start = i + 2;
            let mut j = start;
            while j + 1 < input.len() && input[j].is_ascii_hexdigit() && input[j + 1].is_ascii_hexdigit() {
                j += 2;
            }
            if j > start {
                for k in (start..j).step_by(2) {
                    out.push(hex_val(input[k]).unwrap_or(0) * 16 + hex_val(input[k + 1]).unwrap_or(0));
                }
                i = j;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn css_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut v: u32 = 0;
        while j < input.len() && j < i + 7 && input[j].is_ascii_hexdigit() {
            v = v * 16 + hex_val(input[j]).unwrap_or(0) as u32;
            j += 1;
        }
        if j > i + 1 {
            push_char(&mut out, v.min(0x10ffff));
            if j < input.len() && is_ws(input[j]) {
                j += 1;
            }
            i = j;
        } else if i + 1 < input.len() {
            if input[i + 1] != b'\n' {
                out.push(input[i + 1]);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

fn js_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'\\' && matches!(input.get(i + 1), Some(b'u')) {
            let h = input.get(i + 2..i + 6);
            if let Some(h) = h.filter(|h| h.iter().all(|c| c.is_ascii_hexdigit())) {
                let mut v: u32 = 0;
                for &c in h {
                    v = v * 16 + hex_val(c).unwrap_or(0) as u32;
                }
                if (0xff01..=0xff5e).contains(&v) {
                    out.push((v - 0xff01 + 0x21) as u8);
                } else {
                    push_char(&mut out, v);
                }
                i += 6;
                continue;
            }
        }
        if input[i] == b'\\' {
            // \xHH, octal and C escapes decode as in ESCAPE_SEQ_DECODE.
            let (v, used) = one_escape(&input[i..]);
            out.extend_from_slice(&v);
            i += used;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Decodes one backslash escape at the start of `s`; returns the bytes and how many input bytes it used.
fn one_escape(s: &[u8]) -> (Vec<u8>, usize) {
    if s.len() < 2 {
        return (s.to_vec(), s.len().max(1));
    }
    let c = s[1];
    if c == b'x' || c == b'X' {
        if let (Some(h), Some(l)) = (s.get(2).and_then(|&c| hex_val(c)), s.get(3).and_then(|&c| hex_val(c))) {
            return (vec![h * 16 + l], 4);
        }
    }
    if (b'0'..=b'7').contains(&c) {
        let mut v: u32 = 0;
        let mut j = 1;
        while j < s.len() && j < 4 && (b'0'..=b'7').contains(&s[j]) {
            v = v * 8 + (s[j] - b'0') as u32;
            j += 1;
        }
        return (vec![(v & 0xff) as u8], j);
    }
    let v = match c {
        b'a' => 7,
        b'b' => 8,
        b'f' => 12,
        b'n' => 10,
        b'r' => 13,
        b't' => 9,
        b'v' => 11,
        other => other,
    };
    (vec![v], 2)
}

fn normalize_path(input: &[u8], win: bool) -> Vec<u8> {
    let owned;
    let input = if win {
        owned = input.iter().map(|&b| if b == b'\\' { b'/' } else { b }).collect::<Vec<u8>>();
        &owned[..]
    } else {
        input
    };
    let absolute = input.first() == Some(&b'/');
    let trailing = input.last() == Some(&b'/') || input.ends_with(b"/.") || input.ends_with(b"/..");
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in input.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(seg);
                }
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::with_capacity(input.len());
    if absolute {
        out.push(b'/');
    }
    for (k, p) in parts.iter().enumerate() {
        if k > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(p);
    }
    if trailing && !parts.is_empty() {
        out.push(b'/');
    }
    out
}

fn utf8_to_unicode(input: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(input);
    let mut out = Vec::with_capacity(input.len() * 2);
    for ch in s.chars() {
        if ch.is_ascii() {
            out.push(ch as u8);
        } else {
            out.extend_from_slice(format!("%u{:04x}", ch as u32).as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(tr: Transform, s: &str) -> String {
        String::from_utf8_lossy(&tr.apply(Cow::Borrowed(s.as_bytes()))).into_owned()
    }

    #[test]
    fn decodes() {
        assert_eq!(t(Transform::UrlDecode, "a%20b+c%3Cx%zz"), "a b c<x%zz");
        assert_eq!(t(Transform::UrlDecodeUni, "%u003cscript%uff1e"), "<script>");
        assert_eq!(t(Transform::HtmlEntityDecode, "&lt;a&#x3e;&#60;&quot;&foo;"), "<a><\"&foo;");
        assert_eq!(t(Transform::HtmlEntityDecode, "&#0000060"), "<");
        assert_eq!(t(Transform::Lowercase, "SeLeCt"), "select");
        assert_eq!(t(Transform::CompressWhiteSpace, "a \t\n b"), "a b");
        assert_eq!(t(Transform::CmdLine, "C^at \"/etc/passwd\" ; ls"), "cat/etc/passwd ls");
        assert_eq!(t(Transform::Base64Decode, "PHNjcmlwdD4="), "<script>");
        assert_eq!(t(Transform::HexDecode, "3c73"), "<s");
        assert_eq!(t(Transform::ReplaceComments, "un/**/ion/* x"), "un ion ");
        assert_eq!(t(Transform::EscapeSeqDecode, "\\x41\\n\\101"), "A\nA");
        assert_eq!(t(Transform::SqlHexDecode, "select 0x414243"), "select ABC");
        assert_eq!(t(Transform::CssDecode, "\\3c script"), "<script");
        assert_eq!(t(Transform::JsDecode, "\\u003c\\x3e\\n"), "<>\n");
        assert_eq!(t(Transform::NormalizePath, "/a/./b/../../../etc//passwd"), "/etc/passwd");
        assert_eq!(t(Transform::NormalizePathWin, "..\\..\\windows\\win.ini"), "../../windows/win.ini");
        assert_eq!(t(Transform::RemoveNulls, "a\0b"), "ab");
        assert_eq!(t(Transform::ReplaceNulls, "a\0b"), "a b");
        assert_eq!(t(Transform::Utf8ToUnicode, "aé"), "a%u00e9");
        let md5 = Transform::Md5.apply(Cow::Borrowed(b"abc"));
        assert_eq!(hex::encode(md5), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn never_panics_on_edges() {
        for s in ["%", "%u", "%u12", "&#", "&#x", "\\", "\\x", "\\u12", "0x", "&", "/*", "*/", "\\3", "=", "a"] {
            for tr in [
                Transform::UrlDecode,
                Transform::UrlDecodeUni,
                Transform::HtmlEntityDecode,
                Transform::EscapeSeqDecode,
                Transform::JsDecode,
                Transform::CssDecode,
                Transform::SqlHexDecode,
                Transform::Base64Decode,
                Transform::Base64DecodeExt,
                Transform::ReplaceComments,
                Transform::NormalizePath,
            ] {
                let _ = t(tr, s);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// Every transformation is total on arbitrary bytes (they run on attacker input).
        #[test]
        fn transforms_total(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            for name in ["COMPRESS_WHITE_SPACE", "HTML_ENTITY_DECODE", "LOWERCASE", "CMD_LINE", "URL_DECODE", "URL_DECODE_UNI",
                "BASE64_DECODE", "BASE64_DECODE_EXT", "HEX_DECODE", "REPLACE_COMMENTS", "ESCAPE_SEQ_DECODE", "SQL_HEX_DECODE",
                "CSS_DECODE", "JS_DECODE", "NORMALIZE_PATH", "NORMALIZE_PATH_WIN", "REMOVE_NULLS", "REPLACE_NULLS", "UTF8_TO_UNICODE", "MD5"] {
                let t = Transform::parse(name);
                proptest::prop_assert!(t.is_some());
                if let Some(t) = t {
                    let _ = t.apply(Cow::Borrowed(&v[..]));
                }
            }
        }
    }
}
