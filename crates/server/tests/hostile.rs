//! A corpus of hostile submissions and events against the real job factory (ffprobe, the
//! built-in vintage style, path rules and input limits): each is refused with its own status,
//! code and message, none becomes a job, and afterwards the server still answers and a normal
//! job is accepted and completed by a worker.
//!
//! Needs ffmpeg and ONNX Runtime (scripts/setup.sh); without the runtime the test fails, saying
//! so, as `local_factory.rs` does. About 5-10 s, most of it the final job.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use fresco_infer::registry::Registry;
use fresco_queue::{NewToken, Role};
use fresco_server::auth::{Secret, EVENT_SECRET_HEADER};
use fresco_server::limits::{InputLimits, PathRules};
use fresco_server::LocalJobFactory;
use fresco_testkit::files::random_file;
use fresco_testkit::media::{clip, ffmpeg};
use serde_json::{json, Value};

/// The input files of the corpus, under `data` (the one allowed root).
fn make_inputs(data: &Path, outside: &Path) {
    clip(&data.join("clip.mp4"), "0.4", &[]);
    clip(&outside.join("clip.mp4"), "0.4", &[]);
    clip(&data.join("long.mp4"), "3", &[]);
    std::fs::write(data.join("zero.mp4"), b"").unwrap();
    random_file(&data.join("random.mp4"), 4096);
    random_file(&data.join("big.mp4"), (1 << 20) + 1);
    // An MP4 cut in half: ffmpeg writes the index (moov) at the end, so none is left.
    let whole = std::fs::read(data.join("long.mp4")).unwrap();
    std::fs::write(data.join("truncated.mp4"), &whole[..whole.len() / 2]).unwrap();
    // A header that declares 16000x16000 frames (each 384 MB), and 1000 bytes of "frame".
    let mut huge = b"YUV4MPEG2 W16000 H16000 F25:1 Ip A1:1 C420jpeg\nFRAME\n".to_vec();
    huge.extend(std::iter::repeat_n(0x80u8, 1000));
    std::fs::write(data.join("huge-dimensions.mp4"), huge).unwrap();
    ffmpeg(
        &["-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac"],
        &data.join("audio-only.mp4"),
    );
    ffmpeg(
        &["-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1"],
        &data.join("img001.png"),
    );
    std::fs::write(data.join("notes.mp4"), "just some text, not a video\n").unwrap();
}

struct Case {
    name: &'static str,
    request: Request<Body>,
    status: StatusCode,
    code: &'static str,
    /// A part of the message that shows it names the right thing.
    says: &'static str,
}

fn request(
    method: Method,
    uri: &str,
    content_type: &str,
    token: &str,
    body: Vec<u8>,
) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        // Event routes are off without the event secret: the corpus reaches their parsers.
        .header(EVENT_SECRET_HEADER, EVENT_SECRET)
        .body(Body::from(body))
        .unwrap()
}

const EVENT_SECRET: &str = "hostile-event-secret";

fn submit(token: &str, body: &Value) -> Request<Body> {
    request(
        Method::POST,
        "/v1/jobs",
        "application/json",
        token,
        body.to_string().into_bytes(),
    )
}

fn job(input: &str, output: &str) -> Value {
    json!({ "input": input, "output": output, "style": "vintage" })
}

fn corpus(token: &str, data: &Path, outside: &Path) -> Vec<Case> {
    let d = data.display().to_string();
    let o = outside.display().to_string();
    let out = format!("{d}/styled/out.mp4");
    let input = |name: &str| job(&format!("{d}/{name}"), &out);
    let case = |name, request, status, code, says| Case {
        name,
        request,
        status,
        code,
        says,
    };
    let bad = StatusCode::BAD_REQUEST;
    let unusable = StatusCode::UNPROCESSABLE_ENTITY;
    let mut nested = "[".repeat(20_000);
    nested.push_str(&"]".repeat(20_000));
    let mut deep_object = String::new();
    for _ in 0..5000 {
        deep_object.push_str(r#"{"input":"#);
    }
    vec![
        // The body itself.
        case(
            "bad JSON",
            request(
                Method::POST,
                "/v1/jobs",
                "application/json",
                token,
                b"{\"input\": ".to_vec(),
            ),
            bad,
            "bad-json",
            "EOF",
        ),
        case(
            // Events are parsed as any JSON: serde_json stops at 128 levels.
            "deeply nested array (event)",
            request(
                Method::POST,
                "/v1/events/azure",
                "application/json",
                token,
                nested.into_bytes(),
            ),
            bad,
            "bad-json",
            "recursion limit",
        ),
        case(
            "deeply nested object",
            request(
                Method::POST,
                "/v1/jobs",
                "application/json",
                token,
                deep_object.into_bytes(),
            ),
            // A submission is typed: the first nested value is already the wrong type.
            bad,
            "invalid-field",
            "input: invalid type: map, expected a string",
        ),
        case(
            "oversized JSON",
            submit(
                token,
                &json!({"input": "x".repeat(200_000), "output": out, "style": "vintage"}),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "larger than",
        ),
        case(
            "invalid UTF-8",
            request(
                Method::POST,
                "/v1/jobs",
                "application/json",
                token,
                b"{\"input\": \"\xff\xfe\", \"output\": \"/o.mp4\", \"style\": \"vintage\"}"
                    .to_vec(),
            ),
            bad,
            "bad-json",
            "unicode",
        ),
        case(
            "wrong content type",
            request(
                Method::POST,
                "/v1/jobs",
                "text/plain",
                token,
                input("clip.mp4").to_string().into_bytes(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "application/json",
        ),
        case(
            "a field of the wrong type",
            submit(
                token,
                &json!({"input": 5, "output": out, "style": "vintage"}),
            ),
            bad,
            "invalid-field",
            "invalid type",
        ),
        case(
            "an unknown field",
            submit(
                token,
                &json!({"input": format!("{d}/clip.mp4"), "output": out, "style": "vintage", "shell": "rm -rf /"}),
            ),
            bad,
            "invalid-field",
            "unknown field `shell`",
        ),
        case(
            "a 5000-byte path",
            submit(token, &job(&format!("/{}", "a".repeat(5000)), &out)),
            bad,
            "invalid-field",
            "input: must be a path of 1 to 4096 bytes",
        ),
        case(
            "a NUL in a path",
            submit(token, &job(&format!("{d}/clip.mp4\u{0}.txt"), &out)),
            bad,
            "invalid-field",
            "without NUL",
        ),
        // Where the input and output are.
        case(
            "path traversal",
            submit(token, &input("../outside/clip.mp4")),
            bad,
            "path-not-allowed",
            "'..' segment",
        ),
        case(
            "relative traversal",
            submit(token, &job("../../etc/passwd", &out)),
            bad,
            "bad-path",
            "input: '../../etc/passwd' is not a name in the data store",
        ),
        case(
            "file:///etc/passwd",
            submit(token, &job("file:///etc/passwd", &out)),
            bad,
            "path-not-allowed",
            "outside the folders",
        ),
        case(
            "/etc/passwd",
            submit(token, &job("/etc/passwd", &out)),
            bad,
            "path-not-allowed",
            "outside the folders",
        ),
        case(
            "a video outside the data store",
            submit(token, &job(&format!("{o}/clip.mp4"), &out)),
            bad,
            "path-not-allowed",
            "input:",
        ),
        case(
            "an output outside the data store",
            submit(
                token,
                &job(&format!("{d}/clip.mp4"), "/tmp/fresco-hostile-out.mp4"),
            ),
            bad,
            "path-not-allowed",
            "output:",
        ),
        case(
            "another container",
            submit(token, &job("az://someone-else/in/clip.mp4", &out)),
            bad,
            "path-not-allowed",
            "not in a container",
        ),
        case(
            "an http URL",
            submit(token, &job("http://169.254.169.254/latest/meta-data", &out)),
            bad,
            "path-not-allowed",
            "scheme 'http'",
        ),
        case(
            "an image-sequence pattern",
            submit(token, &input("img%03d.png")),
            unusable,
            "input-missing",
            "img%03d.png",
        ),
        // What the input holds.
        case(
            "a zero-byte file",
            submit(token, &input("zero.mp4")),
            unusable,
            "input-empty",
            "zero.mp4",
        ),
        case(
            "random bytes named .mp4",
            submit(token, &input("random.mp4")),
            unusable,
            "input-not-media",
            "random.mp4",
        ),
        case(
            "text named .mp4",
            submit(token, &input("notes.mp4")),
            unusable,
            "input-not-media",
            "notes.mp4",
        ),
        case(
            "a truncated MP4",
            submit(token, &input("truncated.mp4")),
            unusable,
            "input-not-media",
            "truncated.mp4",
        ),
        case(
            "huge declared dimensions",
            submit(token, &input("huge-dimensions.mp4")),
            bad,
            "input-dimensions-too-large",
            "16000x16000",
        ),
        case(
            "audio only",
            submit(token, &input("audio-only.mp4")),
            unusable,
            "input-not-video",
            "audio-only.mp4",
        ),
        case(
            "over the size limit",
            submit(token, &input("big.mp4")),
            bad,
            "input-too-large",
            "1048577 bytes",
        ),
        case(
            "over the duration limit",
            submit(token, &input("long.mp4")),
            bad,
            "input-too-long",
            "at most 2 s",
        ),
        // Storage events.
        case(
            "an event that is not JSON",
            request(
                Method::POST,
                "/v1/events/azure",
                "application/json",
                token,
                b"\x00\x01garbage".to_vec(),
            ),
            bad,
            "bad-json",
            "not JSON",
        ),
        case(
            "an event of the wrong shape",
            request(
                Method::POST,
                "/v1/events/azure",
                "application/json",
                token,
                br#"{"eventType": 7}"#.to_vec(),
            ),
            bad,
            "bad-event",
            "",
        ),
        case(
            "an SNS body of the wrong shape",
            request(
                Method::POST,
                "/v1/events/s3",
                "text/plain",
                token,
                br#"{"Type": "Notification", "Message": "{{{"}"#.to_vec(),
            ),
            bad,
            "bad-event",
            "",
        ),
        // Outbound requests the server would make for a client.
        case(
            "an SNS SubscribeURL whose host a parser ends at '?'",
            request(
                Method::POST,
                "/v1/events/s3",
                "text/plain",
                token,
                br#"{"Type": "SubscriptionConfirmation", "SubscribeURL": "https://sns.us-east-1.amazonaws.com?@169.254.169.254/"}"#.to_vec(),
            ),
            bad,
            "bad-event",
            "SubscribeURL",
        ),
        case(
            "a callback to the metadata service",
            submit(token, &{
                let mut body = input("clip.mp4");
                body["callback_url"] = json!("http://169.254.169.254/latest/meta-data/");
                body
            }),
            bad,
            "callback-url-not-allowed",
            "169.254.169.254",
        ),
        case(
            "a callback to loopback spelled as a decimal number",
            submit(token, &{
                let mut body = input("clip.mp4");
                body["callback_url"] = json!("http://2130706433:8080/hook");
                body
            }),
            bad,
            "callback-url-not-allowed",
            "127.0.0.1",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_refused_one_by_one_and_the_queue_keeps_working() {
    if let Err(e) = fresco_infer::runtime::environment() {
        panic!("ONNX Runtime cannot be loaded, so the vintage style cannot be checked: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(data.join("styled")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    make_inputs(&data, &outside);
    let data = data.canonicalize().unwrap();
    let outside = outside.canonicalize().unwrap();

    let factory = LocalJobFactory::new(Registry::from_env())
        .allow_download(false)
        .data_root(data.display().to_string())
        .paths(PathRules::default().allow(data.to_str().unwrap()).unwrap())
        .limits(InputLimits {
            max_bytes: Some(1 << 20),
            max_seconds: Some(2.0),
            max_width: Some(1920),
            max_height: Some(1080),
            max_pixels: Some(1920 * 1080),
            ..InputLimits::none()
        });
    let mut app = app_with(Arc::new(factory)).await;
    app.state.auth.event_secret = Some(Secret::new(EVENT_SECRET));
    app.state.events = Some(fresco_server::routes::events::EventTrigger {
        output: data.join("styled").display().to_string(),
        style: Some("vintage".into()),
        model: None,
        temporal: false,
    });
    let token = app
        .queue
        .create_token(
            &NewToken {
                name: "hostile-corpus".into(),
                role: Role::Submitter,
                expires_at_ms: None,
            },
            None,
        )
        .await
        .unwrap()
        .secret;

    let cases = corpus(&token, &data, &outside);
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in cases {
        let reply = send(&app.state, case.request).await;
        let code = reply.body["error"]["code"].as_str().unwrap_or_default();
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        if reply.status != case.status || code != case.code || !message.contains(case.says) {
            failures.push(format!(
                "{}: expected {} {} saying '{}', got {} {}",
                case.name, case.status, case.code, case.says, reply.status, reply.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // None of them became a job, and the server still answers.
    assert_eq!(
        app.queue.jobs(&[], 100).await.unwrap().len(),
        0,
        "a hostile submission was queued"
    );
    assert_eq!(get(&app.state, "/healthz").await.status, StatusCode::OK);
    assert_eq!(get(&app.state, "/readyz").await.status, StatusCode::OK);

    // A normal job is accepted (by its name in the data store) and a worker completes it.
    let reply = send(
        &app.state,
        submit(&token, &job("clip.mp4", "styled/clip.mp4")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id = reply.body["id"].as_str().unwrap().to_string();
    let stop = fresco_worker::StopSignal::new();
    let mut config = fresco_worker::WorkerConfig::new("hostile-w".into(), dir.path().join("work"));
    config.until_idle = true;
    config.threads = Some(1);
    config.scratch_dir = dir.path().join("scratch");
    let worker = fresco_worker::Worker::new(Arc::clone(&app.queue), config, stop);
    tokio::time::timeout(Duration::from_secs(120), worker.run())
        .await
        .expect("the worker finishes the job within 2 minutes");
    let done = app.queue.job(&id).await.unwrap().unwrap();
    assert_eq!(done.state, fresco_core::JobState::Succeeded, "{done:?}");
    assert!(data.join("styled/clip.mp4").is_file());
}
