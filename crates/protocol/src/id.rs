//! Random identifiers in AWS's UUID form (request IDs, CloudTrail event IDs, KMS key IDs, …).

/// A random version-4 UUID, lowercase: `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`.
///
/// Written straight into one 36-byte string: every call carries at least two (request ID and
/// audit event ID), so this sits on the hot path.
pub fn new_uuid() -> String {
    // One u128 (two 64-bit draws from the thread's CSPRNG), not sixteen one-byte draws.
    let mut b = rand::random::<u128>().to_le_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(&b)
}

fn uuid_text(b: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Where each byte's two digits go (the dashes sit at 8, 13, 18 and 23).
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = *b"00000000-0000-0000-0000-000000000000";
    for (&byte, &at) in b.iter().zip(AT.iter()) {
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0x0f)];
    }
    // One allocation of exactly 36 bytes; only ASCII hex digits and dashes were written.
    String::from(std::str::from_utf8(&out).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_matches_the_bytes() {
        let b = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10];
        assert_eq!(uuid_text(&b), "01234567-89ab-cdef-fedc-ba9876543210");
    }

    #[test]
    fn version_4_variant_1_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_uuid()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 36);
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
            assert!(parts[2].starts_with('4'), "{id}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
            assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
    }
}
