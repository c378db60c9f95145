//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP, HMAC-SHA-1, 30-second steps,
//! 6 digits) for virtual MFA devices, their Base32 seeds, and the QR code PNG that carries the
//! `otpauth://` URI to an authenticator app.

use data_encoding::BASE32;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds per time step (RFC 6238's default, what authenticator apps use).
pub const STEP_SECONDS: i64 = 30;
/// Digits per code (IAM's `authenticationCodeType` is exactly 6 digits).
pub const DIGITS: u32 = 6;
/// Seed length in bytes: 40 bytes = a 64-character Base32 seed, like AWS's.
pub const SEED_BYTES: usize = 40;

/// A fresh random TOTP seed.
pub fn new_seed() -> Zeroizing<Vec<u8>> {
    let mut s = Zeroizing::new(vec![0u8; SEED_BYTES]);
    rand::rng().fill_bytes(&mut s);
    s
}

/// RFC 4648 Base32 (upper case, no padding needed for 40-byte seeds).
pub fn base32(seed: &[u8]) -> String {
    BASE32.encode(seed)
}

/// The HOTP value of `counter` (RFC 4226 dynamic truncation), `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else { return 0 };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    // SHA-1: 20 bytes, so offset + 4 <= 19 always holds.
    let offset = usize::from(h.last().copied().unwrap_or(0) & 0x0f);
    let Some(&[b0, b1, b2, b3]) = h.get(offset..offset + 4) else { return 0 };
    let bin = (u32::from(b0) & 0x7f) << 24 | u32::from(b1) << 16 | u32::from(b2) << 8 | u32::from(b3);
    bin % 10u32.pow(digits)
}

/// The time step of a Unix time.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The zero-padded code for time step `step`.
pub fn code_at_step(secret: &[u8], step: i64, digits: u32) -> String {
    let counter = u64::try_from(step).unwrap_or(0);
    format!("{:0width$}", hotp(secret, counter, digits), width = digits as usize)
}

/// The 6-digit code at Unix time `unix_seconds`.
#[cfg(test)]
pub fn code_at(secret: &[u8], unix_seconds: i64) -> String {
    code_at_step(secret, step_of(unix_seconds), DIGITS)
}

/// Whether `code` is the code of `step` (constant-time comparison).
pub fn matches(secret: &[u8], step: i64, code: &str) -> bool {
    if step < 0 || code.len() != DIGITS as usize {
        return false;
    }
    code_at_step(secret, step, DIGITS).as_bytes().ct_eq(code.as_bytes()).into()
}

/// The first step in `lo..=hi` whose code is `code`.
pub fn find_step(secret: &[u8], code: &str, lo: i64, hi: i64) -> Option<i64> {
    // Check every candidate (no early exit on a match) so timing does not reveal where it was.
    let mut found = None;
    for s in lo..=hi {
        if matches(secret, s, code) && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// The first step `s` in `lo..=hi` with `code1` at `s` and `code2` at `s + 1`.
pub fn find_consecutive(secret: &[u8], code1: &str, code2: &str, lo: i64, hi: i64) -> Option<i64> {
    let mut found = None;
    for s in lo..=hi {
        let ok = matches(secret, s, code1) & matches(secret, s + 1, code2);
        if ok && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// The `otpauth://` URI authenticator apps read: `otpauth://totp/NAME@ACCOUNT?secret=SEED`, as
/// IAM documents it (label parts percent-encoded).
pub fn otpauth_uri(device_name: &str, account_name: &str, base32_seed: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    format!("otpauth://totp/{}@{}?secret={base32_seed}", enc(device_name), enc(account_name))
}

/// Pixels per QR module, and the quiet zone in modules (the QR standard asks for 4).
const SCALE: usize = 4;
const QUIET: usize = 4;

/// A PNG image (8-bit greyscale) of the QR code of `text`.
pub fn qr_png(text: &str) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| format!("QR encoding failed: {e}"))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors.get(y * modules + x) == Some(&qrcode::Color::Dark) {
                for dy in 0..SCALE {
                    let row = (y + QUIET) * SCALE + dy;
                    let start = row * side + (x + QUIET) * SCALE;
                    if let Some(run) = pixels.get_mut(start..start + SCALE) {
                        run.fill(0);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let side32 = u32::try_from(side).map_err(|_| "QR image too large".to_string())?;
        let mut enc = png::Encoder::new(&mut out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| format!("PNG encoding failed: {e}"))?;
        w.write_image_data(&pixels).map_err(|e| format!("PNG encoding failed: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_hotp_vectors() {
        let want = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (counter, w) in want.iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), *w, "counter {counter}");
        }
    }

    #[test]
    fn rfc6238_totp_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 rows (8 digits, 30-second steps).
        let vectors: [(i64, &str); 6] = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, want) in vectors {
            assert_eq!(code_at_step(RFC_SECRET, step_of(t), 8), want, "T={t}");
            // The 6-digit code is the low 6 digits of the same value.
            assert_eq!(code_at(RFC_SECRET, t), want[2..], "T={t}");
        }
    }

    #[test]
    fn matching_windows() {
        let seed = new_seed();
        let t = 1_700_000_000;
        let s = step_of(t);
        let c = code_at(&seed, t);
        assert!(matches(&seed, s, &c));
        assert!(!matches(&seed, s, "12345"));
        assert!(!matches(&seed, -1, &c));
        assert_eq!(find_step(&seed, &c, s - 1, s + 1), Some(s));
        let c2 = code_at(&seed, t + STEP_SECONDS);
        assert_eq!(find_consecutive(&seed, &c, &c2, s - 3, s + 3), Some(s));
        // Swapped or equal codes are not consecutive (unless codes collide, astronomically rare).
        if c != c2 {
            assert_eq!(find_consecutive(&seed, &c2, &c, s - 3, s + 3), None);
        }
        assert_eq!(base32(&seed).len(), 64);
    }

    #[test]
    fn qr_png_decodes_to_the_uri() {
        let uri = otpauth_uri("my-device", "111122223333", &base32(&[7u8; SEED_BYTES]));
        assert!(uri.starts_with("otpauth://totp/my%2Ddevice@111122223333?secret=A"));
        let png_bytes = qr_png(&uri).unwrap();
        assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }
}
