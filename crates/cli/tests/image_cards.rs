//! Model cards for image models (output: a video or an image), end to end: a card's mean and
//! std reach the model and its output range reads the output back, on a video and a still
//! through `fresco run`, and on a video through the queue (`fresco jobs submit` and `POST
//! /v1/jobs`, then `fresco worker`). The model is the identity built in code, so the output
//! reveals exactly what the model was fed. A card that does not fit an image model is refused
//! by every entrance, naming the card and the key, before anything is queued.

mod common;

use std::path::{Path, PathBuf};

use common::api::{cli_message, Api};
use common::jobs::{read_log, sqlite_queue, wait_exit};
use common::*;

/// Inputs 0..1 (std 255; 127.5 for blue, so blue is doubled), less a mean per channel, and the
/// output read as 0..1: what comes back is `(pixel - mean) * 255 / std`, per channel.
const CARD: &str = "mean = [10.0, 20.0, 30.0]\nstd = [255.0, 255.0, 127.5]\n\
                    output_range = \"0-1\"\n";
const MEAN: [f64; 3] = [10.0, 20.0, 30.0];
const STD: [f64; 3] = [255.0, 255.0, 127.5];

/// What the identity gives back for `input` (packed RGB) under [`CARD`].
fn expected(input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let c = i % 3;
            ((*p as f64 - MEAN[c]) / STD[c] * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// A model file and its card beside it (`seg.onnx`, `seg.toml`), or elsewhere.
fn model_and_card(dir: &Path, beside: bool) -> (PathBuf, PathBuf) {
    let model = identity_model(dir);
    let card = if beside {
        model.with_extension("toml")
    } else {
        dir.join("segmenter-card.toml")
    };
    std::fs::write(&card, CARD).unwrap();
    (model, card)
}

/// 12 frames of ffmpeg's test pattern, 48x32, lossless RGB (every value survives).
fn pattern_clip(dir: &Path) -> PathBuf {
    let clip = dir.join("pattern.mkv");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=48x32:rate=12",
            "-frames:v",
            "12",
            "-c:v",
            "libx264rgb",
            "-crf",
            "0",
            "-pix_fmt",
            "rgb24",
        ],
        &clip,
    );
    clip
}

const LOSSLESS: &[&str] = &["--codec", "libx264rgb", "--crf", "0"];

/// Every frame of `output` is [`expected`] of the same frame of `input`.
fn assert_card_applied(input: &Path, output: &Path) {
    let (_, _, want) = decode_rgb(input);
    let (_, _, got) = decode_rgb(output);
    assert_eq!(got.len(), want.len(), "frames of {}", output.display());
    for (n, (got, input)) in got.iter().zip(&want).enumerate() {
        let want = expected(input);
        let off = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            off, 0,
            "frame {n}: {off} samples are not (pixel - mean) / std"
        );
    }
    // Not the identity: the card did something.
    assert_ne!(decode_rgb(output).2, decode_rgb(input).2);
}

#[test]
fn a_cards_normalisation_and_output_range_apply_to_videos_and_stills() {
    let dir = tempfile::tempdir().unwrap();
    let clip = pattern_clip(dir.path());
    let (model, card) = model_and_card(dir.path(), false);
    let out = dir.path().join("out.mkv");
    let mut args = vec![
        "--model-card",
        card.to_str().unwrap(),
        "--chunk-frames",
        "5",
    ];
    args.extend(LOSSLESS);
    run(&clip, &out, &model, &args).ok();
    assert_card_applied(&clip, &out);

    // A still, with the card found beside the model (`identity.toml`).
    let png = dir.path().join("still.png");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=40x30",
            "-frames:v",
            "1",
            "-update",
            "1",
        ],
        &png,
    );
    let beside = dir.path().join("beside");
    std::fs::create_dir(&beside).unwrap();
    let (model, _) = model_and_card(&beside, true);
    let styled = dir.path().join("styled.png");
    run(&png, &styled, &model, &[]).ok();
    assert_card_applied(&png, &styled);
}

#[test]
fn a_cards_normalisation_is_pinned_through_jobs_submit_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let clip = pattern_clip(dir.path());
    let (model, card) = model_and_card(dir.path(), false);
    let queue = sqlite_queue(dir.path());
    let by_cli = dir.path().join("cli.mkv");
    let mut extra = vec!["--model-card", card.to_str().unwrap()];
    extra.extend(LOSSLESS);
    let id = queue.submit(&clip, &by_cli, &model, &extra);
    let api = Api::open(&queue.url, fresco_queue::Role::Submitter);
    let record = api
        .runtime
        .block_on(api.queue.job(&id))
        .unwrap()
        .expect("the job is queued");
    let spec: serde_json::Value = serde_json::from_str(&record.spec).unwrap();
    assert_eq!(
        spec["model"]["image_card"]["normalization"]["std"],
        serde_json::json!([255.0, 255.0, 127.5]),
        "the card is not pinned: {spec}"
    );
    let by_api = dir.path().join("api.mkv");
    let body = serde_json::json!({
        "input": clip.display().to_string(),
        "output": by_api.display().to_string(),
        "model": model.display().to_string(),
        "codec": "libx264rgb",
        "crf": 0,
        "scoring": {"model_card": card.display().to_string()},
    });
    let answer = fresco_testkit::http::post(&format!("{}/v1/jobs", api.url))
        .bearer(&api.token)
        .send_json(&body);
    assert!(answer.status < 300, "{}: {}", answer.status, answer.text());

    // The card changes after submission: the jobs keep what they were submitted with.
    std::fs::write(&card, "mean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\n").unwrap();
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(
        &mut worker,
        std::time::Duration::from_secs(240),
        "the worker to finish both jobs",
    );
    assert!(status.success(), "{}", read_log(&log));
    assert_card_applied(&clip, &by_cli);
    assert_card_applied(&clip, &by_api);
}

#[test]
fn cards_that_do_not_fit_an_image_model_are_refused_by_every_entrance() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_h264(&clip, "64x48", 25, 0.2);
    let model = identity_model(dir.path());
    let queue = sqlite_queue(dir.path());
    let api = Api::submitter(dir.path());
    let out = dir.path().join("out.mp4");
    // (card, words its refusal must hold besides the card's path)
    let cases = [
        ("task = \"classify\"\n", vec!["'task'", "records"]),
        (
            "labels = \"l.txt\"\nmean = [0.0, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\n",
            vec!["'labels'", "records"],
        ),
        (
            "mean = [1.0, 2.0]\nstd = [1.0, 1.0, 1.0]\n",
            vec!["mean: 2 values where 3"],
        ),
        (
            "mean = [0.0, 0.0, 0.0]\nstd = [1.0, 0.0, 1.0]\n",
            vec!["std", "non-zero"],
        ),
        (
            "mean = [nan, 0.0, 0.0]\nstd = [1.0, 1.0, 1.0]\n",
            vec!["mean", "NaN"],
        ),
        (
            "mean = [0.0, 0.0, 0.0]\nstd = [nan, 1.0, 1.0]\n",
            vec!["std", "NaN"],
        ),
        ("output_range = \"0-100\"\n", vec!["output_range", "0-100"]),
        (
            "chanel_order = \"bgr\"\n",
            vec!["unknown key 'chanel_order'"],
        ),
        (
            "layout = \"nhwc\"\n",
            vec!["layout", "[?,3,?,?], which is nchw, but nhwc"],
        ),
    ];
    for (n, (text, words)) in cases.iter().enumerate() {
        let card = dir.path().join(format!("bad-{n}.toml"));
        std::fs::write(&card, text).unwrap();
        let shown = card.display().to_string();
        let ran = run(&clip, &out, &model, &["--model-card", &shown]);
        let submitted = queue.try_submit(&clip, &out, &model, &["--model-card", &shown]);
        let (status, code, api_message) = api.refuse(&serde_json::json!({
            "input": clip.display().to_string(),
            "output": out.display().to_string(),
            "model": model.display().to_string(),
            "scoring": {"model_card": shown},
        }));
        assert_eq!(
            (status, code.as_str()),
            (422, "model-card"),
            "{text}: {api_message}"
        );
        for (who, out) in [("run", &ran), ("jobs submit", &submitted)] {
            assert_eq!(out.code, Some(7), "{who}, {text}: {}", out.dump());
        }
        assert_eq!(
            cli_message(&submitted),
            api_message,
            "{text}: the entrances disagree"
        );
        for message in [cli_message(&ran), api_message] {
            assert!(
                message.contains(&shown),
                "{text}: the card is not named: {message}"
            );
            for word in words {
                assert!(message.contains(word), "{text}: '{word}' not in: {message}");
            }
        }
        assert_nothing_left(&out);
    }
    let listed = fresco([&[s("jobs"), s("list"), s("--json")][..], &queue.args()].concat());
    assert_eq!(listed.ok().json(), serde_json::json!([]));
}
