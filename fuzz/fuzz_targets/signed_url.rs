//! Signed URL verification on arbitrary method, path and query text: never a panic, never a
//! grant for a URL this signer did not make; and what it signs, it verifies.
#![no_main]

use fresco_wire::signing::{Permission, UrlSigner};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let signer =
        UrlSigner::from_key_text("fuzz-key-fuzz-key-fuzz-key-fuzz-key-0001").expect("a valid key");
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (method, path, query) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next(),
    );
    // A forged query must not verify (a valid signature cannot be guessed).
    if let Ok(grant) = signer.verify(method, path, query, NOW) {
        panic!("a URL this signer never made was accepted: {grant:?}");
    }
    // Whatever the path, a URL signed for it verifies for it, and only before it expires.
    let query = signer.sign(path, NOW + 60, Permission::Read);
    assert!(signer.verify("GET", path, Some(&query), NOW).is_ok());
    assert!(signer.verify("GET", path, Some(&query), NOW + 60).is_err());
    assert!(signer.verify("PUT", path, Some(&query), NOW).is_err());
    let other = format!("{path}x");
    assert!(signer.verify("GET", &other, Some(&query), NOW).is_err());
});
