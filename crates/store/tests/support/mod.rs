//! Where the shared suite runs: a local folder always, Azurite when `FRESCO_TEST_AZURITE=1`.

use std::path::PathBuf;

use base64::Engine;
use fresco_store::{Store, MIN_PART_SIZE};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Azurite's well-known development account (public, documented by Microsoft).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One place to make stores in: a folder or a container of its own, per test.
pub struct Fixture {
    /// The URL every store of this test lives under (a folder or `az://container`).
    pub base_url: String,
    /// Scratch space for local files of the test (uploads, downloads).
    pub scratch: PathBuf,
    _temp: tempfile::TempDir,
}

impl Fixture {
    /// A fresh local folder.
    pub fn local() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path().join("store");
        let scratch = temp.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        Self {
            base_url: base.to_str().unwrap().to_string(),
            scratch,
            _temp: temp,
        }
    }

    /// A fresh container on Azurite, or `None` (after saying so) when Azurite tests are off.
    /// Panics when `FRESCO_REQUIRE_AZURITE=1` and they are off, or when Azurite does not answer.
    pub fn azurite(test: &str) -> Option<Self> {
        if std::env::var("FRESCO_TEST_AZURITE").as_deref() != Ok("1") {
            assert!(
                std::env::var("FRESCO_REQUIRE_AZURITE").as_deref() != Ok("1"),
                "FRESCO_REQUIRE_AZURITE=1 but FRESCO_TEST_AZURITE is not 1: run \
                 `eval \"$(scripts/azurite.sh)\"` and set FRESCO_TEST_AZURITE=1"
            );
            println!(
                "SKIPPED: {test} on Azurite: set FRESCO_TEST_AZURITE=1 after \
                 `eval \"$(scripts/azurite.sh)\"` to run it"
            );
            return None;
        }
        let container = format!(
            "fresco-{}-{:08x}",
            test.replace('_', "-").chars().take(40).collect::<String>(),
            rand::random::<u32>()
        );
        create_azurite_container(&container);
        let temp = tempfile::tempdir().unwrap();
        Some(Self {
            base_url: format!("az://{container}"),
            scratch: temp.path().to_path_buf(),
            _temp: temp,
        })
    }

    /// A store at `prefix` under the base URL, with the smallest part size so that a few MiB
    /// already make a multipart upload.
    pub fn store(&self, prefix: &str) -> Store {
        let url = if prefix.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}/{prefix}", self.base_url)
        };
        Store::from_url(&url)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_part_size(MIN_PART_SIZE)
    }

    /// Whether the store keeps its objects as files under `scratch`'s sibling folder.
    pub fn is_local(&self) -> bool {
        !self.base_url.starts_with("az://")
    }
}

/// Creates a container with the Blob REST API (object_store has no verb for it), signed with the
/// account's shared key. https://learn.microsoft.com/rest/api/storageservices/create-container
fn create_azurite_container(container: &str) {
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
    let result = ureq::put(&url)
        .set("x-ms-date", &date)
        .set("x-ms-version", version)
        .set("Authorization", &format!("SharedKey {account}:{signature}"))
        .send_bytes(&[]);
    match result {
        Ok(_) | Err(ureq::Error::Status(409, _)) => {}
        Err(ureq::Error::Status(code, response)) => panic!(
            "Azurite refused to create container {container} at {url}: {code} {}",
            response.into_string().unwrap_or_default()
        ),
        Err(e) => panic!(
            "cannot reach Azurite at {endpoint} ({e}): start it with `eval \"$(scripts/azurite.sh)\"`"
        ),
    }
}
