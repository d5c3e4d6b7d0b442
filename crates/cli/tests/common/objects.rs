//! Objects in stores named by URL (`az://`, `s3://`, `file://`), for the tests that check what
//! a job read from or published to a store.

use std::path::Path;

use fresco_store::ObjectUrl;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Uploads a local file to the object `url` names.
pub fn upload(url: &str, local: &Path) {
    let object = ObjectUrl::parse(url).unwrap();
    let store = object.open().unwrap();
    runtime()
        .block_on(store.upload_file(&object.key, local))
        .unwrap_or_else(|e| panic!("upload {url}: {e}"));
}

/// Downloads the (non-empty) object `url` names to a local file.
pub fn download(url: &str, local: &Path) {
    let object = ObjectUrl::parse(url).unwrap();
    let store = object.open().unwrap();
    let downloaded = runtime()
        .block_on(store.download_file(&object.key, local, None))
        .unwrap_or_else(|e| panic!("download {url}: {e}"));
    assert!(downloaded.size > 0, "{url} is empty");
}

/// Whether the object `url` names exists.
pub fn exists(url: &str) -> bool {
    let object = ObjectUrl::parse(url).unwrap();
    let store = object.open().unwrap();
    runtime()
        .block_on(store.head(&object.key))
        .unwrap()
        .is_some()
}

/// Every key in the store `url` names, sorted.
pub fn keys(url: &str) -> Vec<String> {
    let store = fresco_store::Store::from_url(url).unwrap();
    let mut keys: Vec<String> = runtime()
        .block_on(store.list(""))
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    keys
}
