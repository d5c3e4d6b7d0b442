//! Where the shared suite runs: a local folder always, Azurite when `FRESCO_TEST_AZURITE=1`.

use std::path::PathBuf;

use fresco_store::{Store, MIN_PART_SIZE};

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
        let container = fresco_testkit::azurite::container(test)?;
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
