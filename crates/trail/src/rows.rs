//! The stored form of audit records: the row JSON compressed with zstd against a fixed
//! dictionary of typical records (CloudTrail records repeat their member names, ARNs and user
//! agents; a 1–3 KB record stores in a few hundred bytes).
//!
//! Row layout: `0x00` (never the first byte of JSON), the dictionary version, the row's length
//! (u32, little-endian), then one zstd frame. Rows of earlier versions are plain JSON and still
//! read. A dictionary version, once shipped, never changes: a new one gets a new number.

use std::cell::RefCell;
use std::sync::OnceLock;

use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// Marks a compressed row.
const COMPRESSED: u8 = 0;
/// The dictionary rows are compressed with now.
const DICT_V1: u8 = 1;
const DICT_V1_TEXT: &[u8] = include_bytes!("../data/zstd-dict-v1.txt");
/// zstd's level: the fastest strategy; with the dictionary it stores typical records as small as
/// level 3 does (129 bytes for a GetUser record either way) in two thirds of the time.
const LEVEL: i32 = 1;
/// No stored row is larger (records are capped well below this).
const MAX_ROW: usize = 64 * 1024 * 1024;

fn encoder_dict() -> &'static EncoderDictionary<'static> {
    static D: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    D.get_or_init(|| EncoderDictionary::copy(DICT_V1_TEXT, LEVEL))
}

fn decoder_dict() -> &'static DecoderDictionary<'static> {
    static D: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    D.get_or_init(|| DecoderDictionary::copy(DICT_V1_TEXT))
}

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The stored form of a row's JSON text. Falls back to the JSON itself should compression fail.
pub fn encode(json: &[u8]) -> Vec<u8> {
    let Ok(len) = u32::try_from(json.len()) else { return json.to_vec() };
    let compressed = COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::with_prepared_dictionary(encoder_dict()).ok();
        }
        c.as_mut().and_then(|c| c.compress(json).ok())
    });
    match compressed {
        Some(frame) => {
            let mut row = Vec::with_capacity(6 + frame.len());
            row.push(COMPRESSED);
            row.push(DICT_V1);
            row.extend_from_slice(&len.to_le_bytes());
            row.extend_from_slice(&frame);
            row
        }
        None => json.to_vec(),
    }
}

/// A stored row's JSON text (`None` when it is damaged).
pub fn decode(row: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    match row {
        [COMPRESSED, DICT_V1, a, b, c, d, frame @ ..] => {
            let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            if len > MAX_ROW {
                return None;
            }
            DECOMPRESSOR.with(|dc| {
                let mut dc = dc.borrow_mut();
                if dc.is_none() {
                    *dc = zstd::bulk::Decompressor::with_prepared_dictionary(decoder_dict()).ok();
                }
                let out = dc.as_mut()?.decompress(frame, len).ok()?;
                (out.len() == len).then_some(std::borrow::Cow::Owned(out))
            })
        }
        [COMPRESSED, ..] => None,
        json => Some(std::borrow::Cow::Borrowed(json)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typical_records_store_in_a_few_hundred_bytes() {
        for line in DICT_V1_TEXT.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            // A record like the dictionary's but with other IDs and times.
            let text = String::from_utf8(line.to_vec())
                .unwrap()
                .replace("3f8a9c2e", "0d1e2f3a")
                .replace("16:59:25", "17:02:11");
            let row = encode(text.as_bytes());
            assert!(row.len() * 4 < text.len(), "{} -> {}", text.len(), row.len());
            assert_eq!(decode(&row).unwrap().as_ref(), text.as_bytes());
        }
    }

    #[test]
    fn plain_json_rows_of_earlier_versions_read_as_they_are() {
        assert_eq!(decode(b"{\"seq\":1}").unwrap().as_ref(), b"{\"seq\":1}");
        assert!(decode(&[0, 9, 1, 0, 0, 0, 1]).is_none(), "unknown dictionary");
        assert!(decode(&[0, 1, 255, 255, 255, 255]).is_none(), "damaged");
    }

    proptest! {
        #[test]
        fn round_trips(text in ".{0,3000}") {
            let row = encode(text.as_bytes());
            let back = decode(&row).unwrap().into_owned();
            prop_assert_eq!(back.as_slice(), text.as_bytes());
        }
    }
}
