//! Encryption at rest: the shared store suite on an encrypted local folder (every local store
//! of this test process is encrypted, as `FRESCO_STORE_KEY` makes it in a server), and the
//! properties of the format: random ranges, tampering, truncation, wrong keys, no plaintext on
//! disk.

mod checks;
#[allow(dead_code)] // the Azurite half of the fixture is not used here
mod support;

use std::path::Path;

use bytes::Bytes;
use fresco_store::crypt::{plain_len, sealed_len, HEADER_BYTES, SEGMENT_BYTES};
use fresco_store::{Store, StoreKeys};
use rand::{Rng, RngExt, SeedableRng};

/// The key of every store opened from a URL in this process.
const PROCESS_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn encrypt_local_stores() {
    fresco_store::set_local_keys(Some(StoreKeys::from_text(PROCESS_KEY, "test").unwrap()));
}

macro_rules! encrypted_suite {
    ($($check:ident),* $(,)?) => {
        mod suite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    crate::encrypt_local_stores();
                    let fixture = crate::support::Fixture::local();
                    crate::checks::$check(&fixture).await;
                }
            )*
        }
    };
}

encrypted_suite!(
    upload_download_round_trip,
    failed_upload_leaves_nothing,
    download_respects_the_budget,
    ranged_reads,
    capped_reads,
    put_if_absent_creates_once,
    list_with_etags,
    prefixes_isolate_stores,
    delete_prefix_counts,
    bad_keys_are_refused,
    equivalent_urls_share_objects,
);

fn keys(text: &str) -> StoreKeys {
    StoreKeys::from_text(text, "test").unwrap()
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// A recognisable plaintext: a phrase repeated, so a leak of any 16 bytes of it would show.
fn phrase_bytes(len: usize) -> Vec<u8> {
    b"PLAINTEXT-MARKER-0123456789-"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `folder`, recursively.
fn files_under(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn sizes_map_both_ways() {
    for plain in [
        0u64,
        1,
        15,
        16,
        17,
        65535,
        65536,
        65537,
        131072,
        200_000,
        10 << 20,
    ] {
        let sealed = sealed_len(plain);
        assert_eq!(plain_len(sealed), Some(plain), "plain {plain}");
    }
    // Sizes no sealed object has: shorter than a header and a tag, or a last segment of
    // nothing but part of a tag.
    for sealed in [0u64, 10, HEADER_BYTES as u64 + 15] {
        assert_eq!(plain_len(sealed), None, "sealed {sealed}");
    }
    let two_full = sealed_len(2 * SEGMENT_BYTES as u64);
    for cut in 1..=16 {
        assert_eq!(plain_len(two_full + cut), None, "cut {cut}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_random_ranges_and_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local_encrypted(dir.path(), keys(PROCESS_KEY)).unwrap();
    // Small (one put) and large (multipart, several parts of several segments) objects.
    let small = phrase_bytes(100_000);
    let large = phrase_bytes(fresco_store::MIN_PART_SIZE + 3 * SEGMENT_BYTES + 12_345);
    store
        .put_bytes("small.bin", Bytes::from(small.clone()))
        .await
        .unwrap();
    let source = dir.path().join("..").join("large-source.bin");
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join(source.file_name().unwrap());
    std::fs::write(&source, &large).unwrap();
    let store = store.with_part_size(fresco_store::MIN_PART_SIZE);
    let info = store
        .upload_file("videos/large.bin", &source)
        .await
        .unwrap();
    assert_eq!(info.size, large.len() as u64);
    assert_eq!(store.get_bytes("small.bin").await.unwrap(), &small[..]);
    assert_eq!(
        store.get_bytes("videos/large.bin").await.unwrap(),
        &large[..]
    );
    let head = store.head("videos/large.bin").await.unwrap().unwrap();
    assert_eq!(head.size, large.len() as u64);
    let listed = store.list("videos").await.unwrap();
    assert_eq!(listed[0].size, large.len() as u64);

    // Random ranges, including ones on and across segment boundaries.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let len = large.len() as u64;
    let seg = SEGMENT_BYTES as u64;
    let mut ranges = vec![0..1, seg - 1..seg + 1, seg..2 * seg, len - 1..len, 0..len];
    for _ in 0..25 {
        let start = rng.random_range(0..len);
        let end = rng.random_range(start + 1..=len.min(start + 3 * seg));
        ranges.push(start..end);
    }
    for range in ranges {
        let got = store
            .get_range("videos/large.bin", range.clone())
            .await
            .unwrap();
        assert_eq!(
            &got[..],
            &large[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    // A range past the end is cut at the end, as for plain stores.
    let tail = store.get_range("small.bin", 99_990..200_000).await.unwrap();
    assert_eq!(&tail[..], &small[99_990..]);

    // Downloads decrypt.
    let copy = local.path().join("copy.bin");
    let downloaded = store
        .download_file("videos/large.bin", &copy, None)
        .await
        .unwrap();
    assert_eq!(downloaded.size, large.len() as u64);
    assert_eq!(std::fs::read(&copy).unwrap(), large);

    // On disk: no 16 bytes of the plaintext anywhere, and sizes are the sealed sizes.
    let marker = &small[..16];
    for file in files_under(dir.path()) {
        let raw = std::fs::read(&file).unwrap();
        assert!(
            !contains(&raw, marker),
            "{} holds plaintext",
            file.display()
        );
        assert!(raw.starts_with(b"FRESCOE2"), "{}", file.display());
    }
    let raw_small = std::fs::metadata(dir.path().join("small.bin"))
        .unwrap()
        .len();
    assert_eq!(raw_small, sealed_len(small.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_objects_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local_encrypted(dir.path(), keys(PROCESS_KEY)).unwrap();
    store.put_bytes("empty", Bytes::new()).await.unwrap();
    assert_eq!(store.head("empty").await.unwrap().unwrap().size, 0);
    assert!(store.get_bytes("empty").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_an_error_never_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local_encrypted(dir.path(), keys(PROCESS_KEY)).unwrap();
    let data = random_bytes(3 * SEGMENT_BYTES + 100, 1);
    store
        .put_bytes("v.mp4", Bytes::from(data.clone()))
        .await
        .unwrap();
    let file = dir.path().join("v.mp4");
    let original = std::fs::read(&file).unwrap();
    // A byte in the header, in the second segment's ciphertext, and in the last tag.
    for at in [
        20,
        HEADER_BYTES + SEGMENT_BYTES + 16 + 5,
        original.len() - 1,
    ] {
        let mut bad = original.clone();
        bad[at] ^= 0x01;
        std::fs::write(&file, &bad).unwrap();
        let err = store.get_bytes("v.mp4").await.unwrap_err().to_string();
        assert!(
            err.contains("failed authentication") || err.contains("does not hold"),
            "byte {at}: {err}"
        );
        // A range that avoids the damaged segment still reads (ffmpeg's seeks keep working).
        if at == HEADER_BYTES + SEGMENT_BYTES + 16 + 5 {
            let first = store.get_range("v.mp4", 0..1000).await.unwrap();
            assert_eq!(&first[..], &data[..1000]);
            let err = store
                .get_range("v.mp4", SEGMENT_BYTES as u64..SEGMENT_BYTES as u64 + 10)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("segment 1 failed"), "{err}");
        }
    }
    std::fs::write(&file, &original).unwrap();
    assert_eq!(store.get_bytes("v.mp4").await.unwrap(), &data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_object_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local_encrypted(dir.path(), keys(PROCESS_KEY)).unwrap();
    let data = random_bytes(3 * SEGMENT_BYTES + 100, 2);
    store
        .put_bytes("v.mp4", Bytes::from(data.clone()))
        .await
        .unwrap();
    let file = dir.path().join("v.mp4");
    let original = std::fs::read(&file).unwrap();
    let sealed_segment = SEGMENT_BYTES + 16;
    // Cut exactly after a segment (a valid-looking size), in the middle, and inside the header.
    for keep in [
        HEADER_BYTES + 2 * sealed_segment,
        HEADER_BYTES + sealed_segment + 1000,
        HEADER_BYTES + 3 * sealed_segment + 5,
        // A header and one tag: the size of an empty object.
        HEADER_BYTES + 16,
        10,
    ] {
        std::fs::write(&file, &original[..keep]).unwrap();
        let err = store.get_bytes("v.mp4").await.unwrap_err().to_string();
        assert!(
            err.contains("failed authentication")
                || err.contains("not the size of an encrypted object"),
            "kept {keep}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_cannot_read_and_rotation_can() {
    let dir = tempfile::tempdir().unwrap();
    let old_key = StoreKeys::generate_text();
    let new_key = StoreKeys::generate_text();
    let old = Store::local_encrypted(dir.path(), keys(&old_key)).unwrap();
    old.put_bytes("a", Bytes::from_static(b"sealed with the old key"))
        .await
        .unwrap();
    let other = Store::local_encrypted(dir.path(), keys(&new_key)).unwrap();
    let err = other.get_bytes("a").await.unwrap_err().to_string();
    assert!(err.contains("which this store does not hold"), "{err}");
    assert!(!err.contains(&old_key) && !err.contains(&new_key), "{err}");
    // Rotation: the new key first seals, the old one still opens.
    let rotated =
        Store::local_encrypted(dir.path(), keys(&format!("{new_key}\n{old_key}\n"))).unwrap();
    assert_eq!(
        rotated.get_bytes("a").await.unwrap(),
        &b"sealed with the old key"[..]
    );
    rotated
        .put_bytes("b", Bytes::from_static(b"new"))
        .await
        .unwrap();
    assert!(old.get_bytes("b").await.is_err());
    assert_eq!(other.get_bytes("b").await.unwrap(), &b"new"[..]);
    // A file put into the folder by hand is refused, not served as if decrypted.
    std::fs::write(
        dir.path().join("plain.mp4"),
        b"not sealed at all, 40 bytes long......",
    )
    .unwrap();
    let err = rotated
        .get_bytes("plain.mp4")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not an encrypted fresco object")
            || err.contains("not the size of an encrypted object"),
        "{err}"
    );
}

#[test]
fn bad_key_text_is_refused_without_echoing_it() {
    for text in [
        "",
        "# only a comment",
        "abc",
        &"z".repeat(64),
        &"ab".repeat(31),
    ] {
        let err = StoreKeys::from_text(text, "FRESCO_STORE_KEY").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("FRESCO_STORE_KEY"), "{message}");
        if text.len() > 3 && !text.starts_with('#') {
            assert!(!message.contains(text), "{message}");
        }
    }
    // Hex and base64 are both accepted, and are the same key.
    let hex_key = "00".repeat(32);
    let b64_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert_eq!(keys(&hex_key).key_ids(), keys(b64_key).key_ids());
    let shown = format!("{:?}", keys(PROCESS_KEY));
    assert!(!shown.contains("00112233"), "{shown}");
}
