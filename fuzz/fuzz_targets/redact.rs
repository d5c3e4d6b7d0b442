//! Redaction of secrets from tool output: never a panic (it slices text at byte offsets), and
//! redacting twice changes nothing more.
#![no_main]

use fresco_media::redact::redact;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let once = redact(&text);
    assert_eq!(redact(&once), once);
});
