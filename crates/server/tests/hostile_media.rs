//! The media forms of the hostile-tenant attacks, against the real job factory (ffprobe, path
//! rules, input limits) and a real worker: files that make ffmpeg open other files (HLS
//! playlists, ffconcat scripts and image-sequence patterns, in several forms, all named like
//! videos), files whose headers hide their length (a live-written Matroska, a raw H.264
//! stream), and chapter bombs. Two submitters share a data store that sits beside a secret file
//! and another tenant's private video.
//!
//! Each is refused at submission with its status and code, or, where only decoding can tell,
//! fails its own job at plan with the limit's name while a normal job beside it succeeds; the
//! secret's bytes appear in no reply, job record, log, preview or output.
//!
//! Needs ffmpeg and ONNX Runtime (scripts/setup.sh), as `hostile.rs` does. About 10-20 s.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use fresco_core::JobState;
use fresco_infer::registry::Registry;
use fresco_queue::Role;
use fresco_server::limits::{InputLimits, PathRules};
use fresco_server::LocalJobFactory;
use fresco_testkit::media::{chapter_bomb, clip, ffmpeg};
use serde_json::json;

/// Written outside the data store; no reply, record, log or output may ever hold it.
const SECRET: &str = "FRESCO-SECRET-7f3a9c1e-do-not-leak";

fn playlist(entry: &str) -> String {
    format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{entry}\n#EXT-X-ENDLIST\n")
}

fn submit(token: &str, input: &str, output: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/v1/jobs")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(
            json!({ "input": input, "output": output, "style": "vintage" }).to_string(),
        ))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_that_opens_other_files_or_hides_its_size_is_refused() {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let data = root.join("data");
    let secret_dir = root.join("secret");
    for folder in [
        &data.join("styled"),
        &data.join("alice"),
        &data.join("bob"),
        &secret_dir,
    ] {
        std::fs::create_dir_all(folder).unwrap();
    }
    // The secret: a text file and a video outside the data store, and another tenant's video.
    let secret_txt = secret_dir.join("secret.txt");
    std::fs::write(&secret_txt, format!("{SECRET}\n")).unwrap();
    let secret_video = secret_dir.join("clip.mp4");
    clip(&secret_video, "1", &[]);
    let alice_video = data.join("alice/private.mp4");
    clip(&alice_video, "1", &[]);
    let (st, sv, av) = (
        secret_txt.display().to_string(),
        secret_video.display().to_string(),
        alice_video.display().to_string(),
    );

    // Bob's hostile files, each named like a video.
    let bob = data.join("bob");
    let files: Vec<(&str, String)> = vec![
        ("hls-absolute.mp4", playlist(&sv)),
        ("hls-relative.mp4", playlist("../../secret/clip.mp4")),
        ("hls-file-url.mp4", playlist(&format!("file:{sv}"))),
        ("hls-secret-text.mp4", playlist(&st)),
        ("hls-other-tenant.mkv", playlist(&av)),
        (
            "hls-nested.mp4",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\ninner.m3u8\n".into(),
        ),
        ("hls-image-pattern.mp4", playlist("img%03d.png")),
        (
            "concat-absolute.mp4",
            format!("ffconcat version 1.0\nfile {sv}\n"),
        ),
        (
            "dash-absolute.mp4",
            format!(
                "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
                 profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\" type=\"static\" \
                 mediaPresentationDuration=\"PT1S\" minBufferTime=\"PT1S\"><Period>\
                 <AdaptationSet mimeType=\"video/mp4\"><Representation id=\"1\" \
                 bandwidth=\"1000\" width=\"64\" height=\"48\" codecs=\"avc1.64000a\">\
                 <BaseURL>{sv}</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
            ),
        ),
        (
            "concat-relative.mov",
            "ffconcat version 1.0\nfile '../../secret/clip.mp4'\n".into(),
        ),
        (
            "concat-text.mp4",
            format!("ffconcat version 1.0\nfile {st}\n"),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(bob.join(name), text).unwrap();
    }
    std::fs::write(bob.join("inner.m3u8"), playlist(&sv)).unwrap();
    // An image-sequence pattern that exists as a file name, with its frames beside it.
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=25",
            "-frames:v",
            "3",
        ],
        &bob.join("img%03d.png"),
    );
    std::fs::copy(bob.join("img001.png"), bob.join("img%03d.png")).unwrap();
    // Headers that hide the length: 3 s at 10 fps with no duration (over 2 s, 30 frames), and
    // 45 frames at 25 fps (over 40, 1.8 s).
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=10",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "matroska",
            "-live",
            "1",
        ],
        &bob.join("live.mkv"),
    );
    clip(&bob.join("raw.h264"), "1.8", &["-f", "h264"]);
    chapter_bomb(&alice_video, 100_000, &bob.join("chapters.mkv"));
    chapter_bomb(&alice_video, 250_000, &bob.join("more-chapters.mkv"));
    clip(&bob.join("fine.mp4"), "0.4", &[]);
    // A video with 70 audio streams (the default limit is 64).
    let mut many: Vec<&str> = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=d=0.4",
        "-t",
        "0.4",
        "-map",
        "0:v",
    ];
    for _ in 0..70 {
        many.extend(["-map", "1:a"]);
    }
    let streams = bob.join("streams.mkv");
    many.extend(["-c:v", "libx264", "-c:a", "pcm_s16le"]);
    ffmpeg(&many, &streams);

    let factory = LocalJobFactory::new(Registry::from_env())
        .allow_download(false)
        .data_root(data.display().to_string())
        .paths(PathRules::default().allow(data.to_str().unwrap()).unwrap())
        .limits(InputLimits {
            max_seconds: Some(2.0),
            max_frames: Some(40),
            max_chapters: Some(100),
            ..InputLimits::default()
        });
    let app = app_with(Arc::new(factory)).await;
    let bob_token = make_token(app.queue.as_ref(), "bob", Role::Submitter).await;
    let _alice_token = make_token(app.queue.as_ref(), "alice", Role::Submitter).await;

    let unusable = StatusCode::UNPROCESSABLE_ENTITY;
    let bad = StatusCode::BAD_REQUEST;
    let mut cases: Vec<(String, StatusCode, &str, &str)> = files
        .iter()
        .map(|(name, _)| {
            let says = if name.starts_with("hls") {
                "is an HLS playlist, which can open other files"
            } else if name.starts_with("dash") {
                "is a DASH manifest, which can open other files"
            } else {
                "is an ffconcat script, which can open other files"
            };
            (
                format!("bob/{name}"),
                unusable,
                "input-format-not-allowed",
                says,
            )
        })
        .collect();
    cases.extend([
        (
            "bob/img%03d.png".to_string(),
            unusable,
            "input-format-not-allowed",
            "is an image-sequence pattern",
        ),
        (
            "bob/inner.m3u8".to_string(),
            unusable,
            "input-format-not-allowed",
            "is an HLS playlist",
        ),
        (
            // Probed from its ends as an object input, named as the user named it.
            format!("file://{}/bob/hls-absolute.mp4", data.display()),
            unusable,
            "input-format-not-allowed",
            "hls-absolute.mp4: is an HLS playlist",
        ),
        (
            // A relative name in the data store: a file name, never ffmpeg's concat protocol.
            format!("concat:{sv}|{sv}"),
            unusable,
            "input-missing",
            "no such file",
        ),
        (
            "bob/streams.mkv".to_string(),
            bad,
            "input-too-many-streams",
            "71 streams",
        ),
        (
            "bob/chapters.mkv".to_string(),
            bad,
            "input-too-many-chapters",
            "100000 chapters",
        ),
        (
            "bob/more-chapters.mkv".to_string(),
            bad,
            "input-too-complex",
            "very many chapters",
        ),
    ]);
    let mut texts = Vec::new();
    let mut failures = Vec::new();
    for (n, (input, status, code, says)) in cases.iter().enumerate() {
        let output = format!("styled/refused-{n}.mp4");
        let reply = send(&app.state, submit(&bob_token, input, &output)).await;
        let got_code = reply.body["error"]["code"].as_str().unwrap_or_default();
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        if reply.status != *status || got_code != *code || !message.contains(says) {
            failures.push(format!(
                "{input}: expected {status} {code} saying '{says}', got {} {}",
                reply.status, reply.text
            ));
        }
        texts.push(reply.text);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        app.queue.jobs(&[], 100).await.unwrap().is_empty(),
        "a refused submission was queued"
    );

    // Only decoding tells these apart: queued, then each fails its own job at plan, with the
    // limit's name, while a normal job beside them succeeds.
    let mut ids = Vec::new();
    for (input, output) in [
        ("bob/live.mkv", "styled/live.mkv"),
        ("bob/raw.h264", "styled/raw.mp4"),
        ("bob/fine.mp4", "styled/fine.mp4"),
    ] {
        let reply = send(&app.state, submit(&bob_token, input, output)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{input}: {reply:?}");
        texts.push(reply.text.clone());
        ids.push(reply.body["id"].as_str().unwrap().to_string());
    }
    let stop = fresco_worker::StopSignal::new();
    let mut config = fresco_worker::WorkerConfig::new("hostile-media-w".into(), root.join("work"));
    config.until_idle = true;
    config.threads = Some(1);
    config.scratch_dir = root.join("scratch");
    let worker = fresco_worker::Worker::new(Arc::clone(&app.queue), config, stop);
    tokio::time::timeout(Duration::from_secs(180), worker.run())
        .await
        .expect("the worker finishes within 3 minutes");
    let expected = [
        (JobState::Failed, Some("--max-input-seconds")),
        (JobState::Failed, Some("--max-input-frames")),
        (JobState::Succeeded, None),
    ];
    for (id, (state, says)) in ids.iter().zip(expected) {
        let job = app.queue.job(id).await.unwrap().unwrap();
        assert_eq!(job.state, state, "{job:?}");
        if let Some(says) = says {
            let error = job.last_error.clone().unwrap_or_default();
            assert!(error.contains(says), "{id}: {error}");
            // A bad input is not retried.
            assert_eq!(job.attempts, 1, "{job:?}");
        }
        texts.push(serde_json::to_string(&job).unwrap());
        for line in app.queue.job_log(id, None, 10_000).await.unwrap() {
            texts.push(line.message);
        }
        let preview = app.queue.preview(id).await.unwrap();
        if state == JobState::Succeeded {
            // The preview's frame grabs open the input (and the chunk) with the whitelists too.
            let preview = preview.as_ref().expect("the finished job has a preview");
            assert!(preview.before.starts_with(&[0xFF, 0xD8]), "not a JPEG");
            assert!(preview.after.starts_with(&[0xFF, 0xD8]), "not a JPEG");
        }
        if let Some(preview) = preview {
            texts.push(String::from_utf8_lossy(&preview.before).into_owned());
            texts.push(String::from_utf8_lossy(&preview.after).into_owned());
        }
    }
    assert!(data.join("styled/fine.mp4").is_file());
    assert!(!data.join("styled/live.mkv").exists());
    assert!(!data.join("styled/raw.mp4").exists());

    // The secret is nowhere: replies, job records, logs, previews, or any file of the store.
    for text in &texts {
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
    for entry in walk(&data) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the secret",
            entry.display()
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
