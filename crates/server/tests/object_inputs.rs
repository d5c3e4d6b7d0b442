//! Object-store inputs are checked before their job is queued, from their first and last bytes
//! (ranged reads into a sparse scratch file, then ffprobe), with the real job factory: a
//! `file://` store always, Azurite when `FRESCO_TEST_AZURITE=1` (after
//! `eval "$(scripts/azurite.sh)"`; "SKIPPED" otherwise, a failure with
//! `FRESCO_REQUIRE_AZURITE=1`).
//!
//! The probe window is 8 KiB here so that every clip but the smallest is read only at its ends,
//! as a large video would be with the default 8 MiB. Needs ffmpeg and ONNX Runtime (the vintage
//! style is loaded for the accepted ones), as hostile.rs does. About 3-6 s.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine;
use common::*;
use fresco_infer::registry::Registry;
use fresco_server::factory::ProbeWindow;
use fresco_server::limits::{InputLimits, PathRules};
use fresco_server::LocalJobFactory;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

const WINDOW: u64 = 8 << 10;

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg must be installed for this test (scripts/setup.sh installs it)");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

/// An H.264 MP4 of `size` and `seconds`, its index (`moov`) at the start or at the end.
fn clip(path: &Path, size: &str, seconds: &str, faststart: bool) {
    let source = format!("testsrc2=size={size}:rate=25");
    let mut args = vec!["-f", "lavfi", "-i", &source, "-t", seconds];
    args.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    if faststart {
        args.extend(["-movflags", "+faststart"]);
    }
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
}

fn random_file(path: &Path, len: usize) {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

/// Where the moov box of an MP4 starts.
fn moov_offset(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.windows(4).position(|w| w == b"moov").unwrap() - 4
}

/// The corpus, in `dir`: (file name, expected status, expected code or "" for a job).
fn make_inputs(dir: &Path) -> Vec<(&'static str, StatusCode, &'static str)> {
    let bad = StatusCode::BAD_REQUEST;
    let unusable = StatusCode::UNPROCESSABLE_ENTITY;
    clip(&dir.join("faststart.mp4"), "320x240", "1.5", true);
    clip(&dir.join("moov-at-end.mp4"), "320x240", "1.5", false);
    clip(&dir.join("long.mp4"), "160x120", "3", false);
    clip(&dir.join("wide.mp4"), "640x96", "1", false);
    // A minute of tiny frames: its index at the end is longer than the tail window, so only
    // walking the boxes finds it (and its duration, over the limit).
    clip(&dir.join("long-index.mp4"), "32x32", "60", false);
    random_file(&dir.join("random.mp4"), 64 << 10);
    random_file(&dir.join("random-small.mp4"), 4 << 10);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=d=1.5",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        dir.join("audio-only.mp4").to_str().unwrap(),
    ]);
    // An MP4 cut before its index: ffprobe knows the container but finds no moov in the ends.
    // From its ends alone it cannot be told from a long video whose index is in the middle, so
    // it is queued and its plan task refuses it.
    let whole = std::fs::read(dir.join("moov-at-end.mp4")).unwrap();
    std::fs::write(dir.join("truncated.mp4"), &whole[..whole.len() / 2]).unwrap();
    let end = dir.join("moov-at-end.mp4");
    let fast = dir.join("faststart.mp4");
    assert!(moov_offset(&fast) < 64, "faststart put the index first");
    let size = std::fs::metadata(&end).unwrap().len();
    assert!(
        moov_offset(&end) as u64 > size / 2 && size > 4 * WINDOW,
        "the clip without faststart has its index at the end, past the head window"
    );
    let long = dir.join("long-index.mp4");
    let bytes = std::fs::read(&long).unwrap();
    let at = moov_offset(&long);
    let moov_len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
    assert!(
        moov_len > WINDOW && at as u64 > WINDOW,
        "long-index.mp4's index ({moov_len} bytes at {at}) is in neither window"
    );
    for name in [
        "faststart.mp4",
        "random.mp4",
        "audio-only.mp4",
        "truncated.mp4",
    ] {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        assert!(
            len > 2 * WINDOW,
            "{name} ({len} bytes) is read only at its ends"
        );
    }
    vec![
        ("faststart.mp4", StatusCode::CREATED, ""),
        ("moov-at-end.mp4", StatusCode::CREATED, ""),
        ("long.mp4", bad, "input-too-long"),
        ("long-index.mp4", bad, "input-too-long"),
        ("wide.mp4", bad, "input-dimensions-too-large"),
        ("random.mp4", unusable, "input-not-media"),
        ("random-small.mp4", unusable, "input-not-media"),
        ("audio-only.mp4", unusable, "input-not-video"),
        ("truncated.mp4", StatusCode::CREATED, ""),
    ]
}

/// Puts the corpus under `base` (a `file://` or `az://` URL) and submits each file: every one
/// gets its expected status and code, and the probe leaves no scratch file.
async fn submit_corpus(base: &str) {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    let cases = make_inputs(&files);
    let store = fresco_store::Store::from_url(base).unwrap();
    for (name, ..) in &cases {
        store
            .upload_file(&format!("in/{name}"), &files.join(name))
            .await
            .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    }
    let factory = LocalJobFactory::new(Registry::from_env())
        .allow_download(false)
        .paths(PathRules::default().allow(base).unwrap())
        .limits(InputLimits {
            max_bytes: Some(1 << 20),
            max_seconds: Some(2.0),
            max_width: Some(320),
            max_height: Some(240),
            max_pixels: Some(320 * 240),
            ..InputLimits::none()
        })
        .probe_window(ProbeWindow { bytes: WINDOW })
        .scratch_dir(scratch.clone());
    let app = app_with(Arc::new(factory)).await;
    let mut failures = Vec::new();
    for (name, status, code) in &cases {
        let body = json!({
            "input": format!("{base}/in/{name}"),
            "output": format!("{base}/out/{name}"),
            "style": "vintage",
        });
        let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
        let got = reply.body["error"]["code"].as_str().unwrap_or_default();
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        let names_it = code.is_empty() || message.contains(name) || message.starts_with("input:");
        if reply.status != *status || got != *code || !names_it {
            failures.push(format!(
                "{name}: expected {status} {code:?}, got {} {}",
                reply.status, reply.text
            ));
        }
    }
    assert!(failures.is_empty(), "{base}:\n{}", failures.join("\n"));
    // A codec the output's container cannot hold is refused before queueing, as for a file.
    let body = json!({
        "input": format!("{base}/in/faststart.mp4"),
        "output": format!("{base}/out/styled.webm"),
        "style": "vintage",
        "codec": "libx264",
    });
    let reply = post_json(&app.state, "/v1/jobs", &body, None).await;
    let message = reply.error(StatusCode::UNPROCESSABLE_ENTITY, "encoder-unusable");
    assert!(
        message.contains("cannot hold video from the encoder libx264"),
        "{message}"
    );
    let accepted = app.queue.jobs(&[], 100).await.unwrap().len();
    assert_eq!(accepted, 3, "three jobs were queued");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "the probe left scratch files: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_url_inputs_are_probed_from_their_ends_before_queueing() {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    std::fs::create_dir_all(&root).unwrap();
    let base = format!("file://{}", root.canonicalize().unwrap().display());
    submit_corpus(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_inputs_are_probed_from_their_ends_before_queueing() {
    if std::env::var("FRESCO_TEST_AZURITE").as_deref() != Ok("1") {
        assert!(
            std::env::var("FRESCO_REQUIRE_AZURITE").as_deref() != Ok("1"),
            "FRESCO_REQUIRE_AZURITE=1 but FRESCO_TEST_AZURITE is not 1: run \
             `eval \"$(scripts/azurite.sh)\"` and set FRESCO_TEST_AZURITE=1"
        );
        println!(
            "SKIPPED: azure_inputs_are_probed_from_their_ends_before_queueing: set \
             FRESCO_TEST_AZURITE=1 after `eval \"$(scripts/azurite.sh)\"`"
        );
        return;
    }
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let container = format!("fresco-probe-{:08x}", rand::random::<u32>());
    create_azurite_container(&container);
    submit_corpus(&format!("az://{container}")).await;
}

/// Creates a container with the Blob REST API (object_store has no verb for it), signed with
/// the account's shared key (Azurite's well-known development account unless the environment
/// names another). https://learn.microsoft.com/rest/api/storageservices/create-container
fn create_azurite_container(container: &str) {
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let endpoint = var("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10000");
    let account = var("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1");
    let key = var("AZURE_STORAGE_ACCOUNT_KEY", DEV_KEY);
    let date = http_date(std::time::SystemTime::now());
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{account}/{account}/{container}\nrestype:container"
    );
    let secret = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("the account key is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let url = format!(
        "{}/{account}/{container}?restype=container",
        endpoint.trim_end_matches('/')
    );
    match ureq::put(&url)
        .set("x-ms-date", &date)
        .set("x-ms-version", version)
        .set("Authorization", &format!("SharedKey {account}:{signature}"))
        .send_bytes(&[])
    {
        Ok(_) | Err(ureq::Error::Status(409, _)) => {}
        Err(e) => panic!("Azurite did not create container {container} at {url}: {e}"),
    }
}

/// `Sat, 28 Nov 2026 17:30:00 GMT` (RFC 7231's date, which Azure's x-ms-date takes).
fn http_date(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[test]
fn http_dates_are_rfc_7231() {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_887_000);
    assert_eq!(http_date(at), "Sat, 28 Nov 2026 17:30:00 GMT");
    assert_eq!(
        http_date(std::time::UNIX_EPOCH),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
}
