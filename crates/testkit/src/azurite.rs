//! Containers on Azurite (Azure's storage emulator) for the tests that run against it.
//!
//! They run when `FRESCO_TEST_AZURITE=1` (after `eval "$(scripts/azurite.sh)"`), say SKIPPED
//! otherwise, and fail when `FRESCO_REQUIRE_AZURITE=1` (CI) and they cannot run.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Azurite's well-known development account (public, documented by Microsoft).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Whether the Azurite tests are on. When off, prints that `test` is skipped and returns false;
/// panics instead when `FRESCO_REQUIRE_AZURITE=1`.
pub fn enabled(test: &str) -> bool {
    if std::env::var("FRESCO_TEST_AZURITE").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        !required(),
        "FRESCO_REQUIRE_AZURITE=1 but FRESCO_TEST_AZURITE is not 1: run \
         `eval \"$(scripts/azurite.sh)\"` and set FRESCO_TEST_AZURITE=1"
    );
    println!(
        "SKIPPED: {test} on Azurite: set FRESCO_TEST_AZURITE=1 after \
         `eval \"$(scripts/azurite.sh)\"` to run it"
    );
    false
}

/// Whether CI requires the Azurite tests to run (`FRESCO_REQUIRE_AZURITE=1`).
pub fn required() -> bool {
    std::env::var("FRESCO_REQUIRE_AZURITE").as_deref() == Ok("1")
}

/// A fresh container named after `test`, or `None` (after saying so) when the Azurite tests
/// are off; see [`enabled`].
pub fn container(test: &str) -> Option<String> {
    if !enabled(test) {
        return None;
    }
    let name = format!("fresco-{}-{:08x}", name_part(test), rand::random::<u32>());
    create_container(&name);
    Some(name)
}

/// Up to 40 characters of `test` as a container name allows: lowercase letters, digits and
/// single dashes between them.
fn name_part(test: &str) -> String {
    let mut part = String::new();
    for c in test.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() {
            part.push(c);
        } else if !part.is_empty() && !part.ends_with('-') {
            part.push('-');
        }
        if part.len() == 40 {
            break;
        }
    }
    part.trim_end_matches('-').to_string()
}

/// Creates a container with the Blob REST API (object_store has no verb for it), signed with the
/// account's shared key: Azurite's development account unless `AZURE_STORAGE_ACCOUNT_NAME` and
/// `AZURE_STORAGE_ACCOUNT_KEY` name another. An existing container is fine.
/// <https://learn.microsoft.com/rest/api/storageservices/create-container>
pub fn create_container(container: &str) {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let endpoint = var("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10000");
    let account = var("AZURE_STORAGE_ACCOUNT_NAME", DEV_ACCOUNT);
    let key = var("AZURE_STORAGE_ACCOUNT_KEY", DEV_KEY);
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{account}/{account}/{container}\nrestype:container"
    );
    let secret = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("account key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let url = format!(
        "{}/{account}/{container}?restype=container",
        endpoint.trim_end_matches('/')
    );
    let result = crate::http::put(&url)
        .header("x-ms-date", &date)
        .header("x-ms-version", version)
        .header("Authorization", &format!("SharedKey {account}:{signature}"))
        .try_send(Some(&[]));
    match result {
        Ok(answer) if (200..300).contains(&answer.status) || answer.status == 409 => {}
        Ok(answer) => panic!(
            "Azurite refused to create container {container} at {url}: {} {}",
            answer.status,
            answer.text()
        ),
        Err(e) => panic!(
            "cannot reach Azurite at {endpoint} ({e}): start it with `eval \"$(scripts/azurite.sh)\"`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::name_part;

    #[test]
    fn container_names_are_short_lowercase_and_single_dashed() {
        assert_eq!(name_part("remote_clip"), "remote-clip");
        assert_eq!(name_part("A__b.C"), "a-b-c");
        let long = name_part("azure_inputs_are_probed_from_their_ends_before_queueing");
        assert_eq!(long, "azure-inputs-are-probed-from-their-ends");
        assert!(long.len() <= 40 && !long.ends_with('-') && !long.contains("--"));
    }
}
