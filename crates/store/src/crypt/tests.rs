//! The format's properties: a key per object, a header that authenticates, version 1 still read.

use object_store::memory::InMemory;
use object_store::ObjectStoreExt as _;

use super::*;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn store() -> (Arc<InMemory>, EncryptedStore) {
    let inner = Arc::new(InMemory::new());
    let keys = StoreKeys::from_text(KEY, "test").unwrap();
    (Arc::clone(&inner) as _, EncryptedStore::new(inner, keys))
}

async fn sealed(inner: &InMemory, name: &str) -> Vec<u8> {
    inner
        .get(&Path::from(name))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// The whole object, or the error of its request or of its stream, as text.
async fn read_all(store: &EncryptedStore, name: &str) -> Result<Bytes, String> {
    match store.get(&Path::from(name)).await {
        Ok(got) => got.bytes().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn the_same_plaintext_seals_under_unrelated_keys() {
    let (inner, store) = store();
    let plain = vec![7u8; 2 * SEGMENT_BYTES + 10];
    for name in ["a", "b"] {
        store
            .put(&Path::from(name), plain.clone().into())
            .await
            .unwrap();
    }
    let (a, b) = (sealed(&inner, "a").await, sealed(&inner, "b").await);
    assert_eq!((&a[..8], &b[..8]), (&b"FRESCOE2"[..], &b"FRESCOE2"[..]));
    // Same key id, different salts.
    assert_eq!(a[8..12], b[8..12]);
    assert_ne!(a[12..28], b[12..28]);
    // Unrelated ciphertexts: no more equal bytes than chance (1 in 256) would give.
    let equal = a[HEADER_BYTES..]
        .iter()
        .zip(&b[HEADER_BYTES..])
        .filter(|(x, y)| x == y)
        .count();
    assert!(equal < a.len() / 100, "{equal} of {} bytes equal", a.len());
    for name in ["a", "b"] {
        let read = store
            .get(&Path::from(name))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(read, plain);
    }
}

#[tokio::test]
async fn an_altered_header_fails_as_the_header() {
    let (inner, store) = store();
    store
        .put(&Path::from("v"), b"secret frames".to_vec().into())
        .await
        .unwrap();
    let original = sealed(&inner, "v").await;
    // A byte of the salt (both ends) and of the header's tag.
    for at in [12, 27, 28, 31] {
        let mut bad = original.clone();
        bad[at] ^= 0x80;
        inner.put(&Path::from("v"), bad.into()).await.unwrap();
        let err = read_all(&store, "v").await.unwrap_err();
        assert!(
            err.contains("the header failed authentication"),
            "byte {at}: {err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }
    // A byte of the segment fails as that segment.
    let mut bad = original.clone();
    bad[HEADER_BYTES + 2] ^= 0x01;
    inner.put(&Path::from("v"), bad.into()).await.unwrap();
    let err = read_all(&store, "v").await.unwrap_err();
    assert!(err.contains("segment 0 failed authentication"), "{err}");
}

/// Objects sealed before version 2 (one key, a random nonce prefix) still open, and an
/// altered one still fails.
#[tokio::test]
async fn version_1_objects_still_open() {
    let (inner, store) = store();
    let plain: Vec<u8> = (0..SEGMENT_BYTES as u32 + 500)
        .map(|n| (n % 251) as u8)
        .collect();
    let (header, cipher) = Header::new_v1(store.keys.sealing());
    assert_eq!(header.version(), FormatVersion::V1);
    let old = seal_with(&header, cipher, &plain).unwrap();
    assert_eq!(&old[..8], b"FRESCOE1");
    inner
        .put(&Path::from("old"), old.clone().into())
        .await
        .unwrap();
    let read = store
        .get(&Path::from("old"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(read, plain);
    let range = store
        .get_range(&Path::from("old"), 65_000..66_000)
        .await
        .unwrap();
    assert_eq!(range, plain[65_000..66_000]);
    let mut bad = old;
    bad[20] ^= 0x01; // the nonce prefix
    inner.put(&Path::from("old"), bad.into()).await.unwrap();
    let err = read_all(&store, "old").await.unwrap_err();
    assert!(err.contains("segment 0 failed authentication"), "{err}");
}
