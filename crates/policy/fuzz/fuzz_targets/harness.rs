//! `rampart policy eval` input: arbitrary text must produce a result or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rampart_policy::harness::eval_json(text);
    }
});
