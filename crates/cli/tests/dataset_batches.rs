//! Dataset jobs scored in batches (`--batch N`, issue 17): through `fresco run DIR/`, a batch of
//! four gives the same output, byte for byte, as one item at a time, with bad items among the
//! good ones (each its own error row, the others in its batch scored as ever):
//! - with a classifier built here (dynamic batch), its chunks taking fewer model calls;
//! - with the same classifier fixing its batch at 1: items go one per call, which the log says
//!   once;
//! - with the real classifier from `$FRESCO_MODEL_DIR/scoring` (skipped, saying so, where
//!   absent);
//! - into an output folder: masks of a segment model built here (dynamic batch: fewer calls;
//!   fixing its batch at 1: one a call), and pictures styled by a filter built here, whose
//!   calls take the items of one size of each batch together.
//!
//! The reads ahead (`prefetch.rs`) are covered by its unit tests on a `file://` prefix, and
//! end to end by every dataset test here and in `datasets.rs` (folders, `file://` and Azurite
//! prefixes), whose items all go through them.

mod common;

use std::path::Path;

use common::outputs::keys_below;
use common::scoring::*;
use common::*;
use fresco_infer::onnx_build::{self, sym, tensor_f32, Dim, GraphBuilder};

/// The log filter that shows each dataset chunk's model calls.
const CALLS_LOG: &str = "warn,fresco_worker::worker::stages::dataset=debug";

/// `dir` with `count` different pictures (testsrc2 frames of a few sizes, as JPEG and PNG) and
/// three bad items (not an image, empty, a cut PNG) among them: the keys in listing order.
fn mixed_folder(dir: &Path, count: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut keys = Vec::new();
    for i in 0..count {
        let ext = if i % 3 == 0 { "png" } else { "jpg" };
        let key = format!("pic-{i:02}.{ext}");
        let size = ["64x48", "40x40", "30x50"][i % 3];
        ffmpeg(
            &[
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size={size}:rate=10"),
                "-vf",
                &format!("select=eq(n\\,{})", i * 3),
                "-frames:v",
                "1",
            ],
            &dir.join(&key),
        );
        keys.push(key);
    }
    std::fs::write(dir.join("pic-03b.jpg"), b"not a picture").unwrap();
    std::fs::write(dir.join("pic-07b.jpg"), b"").unwrap();
    let png = std::fs::read(dir.join("pic-00.png")).unwrap();
    std::fs::write(dir.join("pic-05b.png"), &png[..png.len() / 2]).unwrap();
    keys.extend(["pic-03b.jpg", "pic-07b.jpg", "pic-05b.png"].map(String::from));
    keys.sort();
    keys
}

/// `fresco run DIR/ -o NAME.jsonl --batch N` as one worker, one chunk, with the model's
/// `flags`: its output's bytes and its stderr.
fn run_batched(
    dir: &Path,
    folder: &Path,
    flags: &[String],
    batch: usize,
    name: &str,
) -> (Vec<u8>, String) {
    let out = dir.join(format!("{name}.jsonl"));
    let stderr = run_one_chunk(folder, &out, flags, batch, &dir.join(name));
    (std::fs::read(&out).unwrap(), stderr)
}

/// `fresco run FOLDER/ -o OUT --batch N` as one worker, one chunk, tolerating the three bad
/// items, with the model's `flags` and its state in `state`, logging each chunk's model calls:
/// the run's stderr.
fn run_one_chunk(
    folder: &Path,
    out: &Path,
    flags: &[String],
    batch: usize,
    state: &Path,
) -> String {
    let mut args: Vec<String> = vec![
        "run".into(),
        format!("{}/", folder.display()),
        "-o".into(),
        out.display().to_string(),
        "--batch".into(),
        batch.to_string(),
        "--workers".into(),
        "1".into(),
        "--chunk-frames".into(),
        "100".into(),
        "--max-failed-items".into(),
        "3".into(),
        "--max-failed-fraction".into(),
        "1".into(),
        "-q".into(),
    ];
    args.extend(flags.iter().cloned());
    args.extend(queue_flags(state));
    fresco_env(args, &[("FRESCO_LOG", CALLS_LOG.as_ref())])
        .ok()
        .stderr
}

/// The model calls the run's chunks logged.
fn model_calls(stderr: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| {
            let (_, after) = l.split_once(" items scored in ")?;
            after.split_whitespace().next()?.parse::<usize>().ok()
        })
        .sum()
}

fn model_flags(model: &Path) -> Vec<String> {
    vec![
        "--model".into(),
        model.display().to_string(),
        "--task".into(),
        "classify".into(),
    ]
}

#[test]
fn batches_of_a_generated_classifier_score_as_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pics");
    let keys = mixed_folder(&folder, 9);
    let dynamic = write_model(
        dir.path(),
        "pixels.onnx",
        onnx_build::pixel_classifier_model(None, 10),
    );
    let (one, one_log) = run_batched(dir.path(), &folder, &model_flags(&dynamic), 1, "one");
    let (four, four_log) = run_batched(dir.path(), &folder, &model_flags(&dynamic), 4, "four");
    assert_eq!(
        String::from_utf8_lossy(&one),
        String::from_utf8_lossy(&four),
        "batch 4 gives the bytes of batch 1"
    );
    let rows = jsonl_rows(&dir.path().join("one.jsonl"));
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources, keys, "a row per item, in listing order");
    let errors: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["error"]["kind"].as_str())
        .collect();
    assert_eq!(errors, ["not-image", "not-image", "empty"]);
    // The pictures differ, and so do their scores: the comparison means something.
    let tops: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| r["error"].is_null())
        .map(|r| r["classes"][0]["score"].to_string())
        .collect();
    assert!(tops.len() > 3, "{tops:?}");
    // Nine good items of twelve: one call each, or three calls of up to four.
    assert_eq!(model_calls(&one_log), 9, "{one_log}");
    assert_eq!(model_calls(&four_log), 3, "{four_log}");
    assert!(!four_log.contains("fixes its batch size"), "{four_log}");

    // The same classifier fixing its batch at 1: one item a call, the same bytes, and the log
    // says so once.
    let fixed = write_model(
        dir.path(),
        "pixels-1.onnx",
        onnx_build::pixel_classifier_model(Some(1), 10),
    );
    let (fixed_out, fixed_log) = run_batched(dir.path(), &folder, &model_flags(&fixed), 4, "fixed");
    assert_eq!(
        String::from_utf8_lossy(&fixed_out),
        String::from_utf8_lossy(&one)
    );
    assert_eq!(model_calls(&fixed_log), 9, "{fixed_log}");
    let said = fixed_log
        .matches("the model fixes its batch size at 1, so frames are scored 1 per call instead of the 4 asked")
        .count();
    assert_eq!(said, 1, "{fixed_log}");
}

#[test]
fn batches_of_the_real_classifier_score_as_one_at_a_time() {
    let Some(models) = scoring_models() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pics");
    let mut keys = mixed_folder(&folder, 5);
    // The dog, and the dog turned and cut: pictures the classifier knows.
    std::fs::copy(models.join("dog.jpg"), folder.join("dog.jpg")).unwrap();
    ffmpeg(
        &[
            "-i",
            models.join("dog.jpg").to_str().unwrap(),
            "-vf",
            "hflip,crop=400:400:100:50",
        ],
        &folder.join("dog-cut.jpg"),
    );
    keys.extend(["dog.jpg", "dog-cut.jpg"].map(String::from));
    keys.sort();
    let flags = vec![
        "--model".into(),
        models.join("efficientnet-lite0.onnx").display().to_string(),
        "--task".into(),
        "classify".into(),
        "--labels".into(),
        models.join("imagenet_labels.txt").display().to_string(),
    ];
    let (one, one_log) = run_batched(dir.path(), &folder, &flags, 1, "one");
    let (four, four_log) = run_batched(dir.path(), &folder, &flags, 4, "four");
    assert_eq!(
        String::from_utf8_lossy(&one),
        String::from_utf8_lossy(&four),
        "batch 4 gives the bytes of batch 1"
    );
    let rows = jsonl_rows(&dir.path().join("one.jsonl"));
    let sources: Vec<&str> = rows.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources, keys);
    // Seven good items of ten.
    assert_eq!(model_calls(&one_log), 7, "{one_log}");
    assert_eq!(model_calls(&four_log), 2, "{four_log}");
}

/// `fresco run DIR/ -o NAME/ --batch N` (styled pictures or masks into a folder) as one
/// worker, one chunk, with the model's `flags`: the files written (key and bytes, in key
/// order) and the run's stderr.
fn run_into_folder(
    dir: &Path,
    folder: &Path,
    flags: &[String],
    batch: usize,
    name: &str,
) -> (Vec<(String, Vec<u8>)>, String) {
    let out = dir.join(name);
    let stderr = run_one_chunk(
        folder,
        &out,
        flags,
        batch,
        &dir.join(format!("{name}-state")),
    );
    let files = keys_below(&out)
        .into_iter()
        .map(|key| {
            let bytes = std::fs::read(out.join(&key)).unwrap();
            (key, bytes)
        })
        .collect();
    (files, stderr)
}

/// A segment model: `[batch, 3, 4, 4]` in, a 1x1 convolution to a 4-class map
/// `[batch, 4, 4, 4]` out (`batch` `None`: any).
fn segment_model(dir: &Path, name: &str, batch: Option<i64>) -> std::path::PathBuf {
    let n = batch.map_or_else(|| sym("N"), Dim::Fixed);
    let side = || Dim::Fixed(4);
    let weights = [
        1.0, -0.5, 0.2, //
        -0.3, 1.0, 0.1, //
        0.2, 0.3, -1.0, //
        0.4, 0.4, 0.4,
    ];
    let bytes = GraphBuilder::new("segment")
        .input("image", &[n.clone(), Dim::Fixed(3), side(), side()])
        .output("map", &[n, Dim::Fixed(4), side(), side()])
        .initializer(tensor_f32("weights", &[4, 3, 1, 1], &weights))
        .node("Conv", &["image", "weights"], &["map"], vec![])
        .to_bytes();
    write_model(dir, name, bytes)
}

#[test]
fn masks_in_batches_are_the_masks_of_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pics");
    mixed_folder(&folder, 9);
    let flags = |model: &Path| -> Vec<String> {
        vec![
            "--model".into(),
            model.display().to_string(),
            "--task".into(),
            "segment".into(),
        ]
    };
    let dynamic = segment_model(dir.path(), "seg.onnx", None);
    let (one, one_log) = run_into_folder(dir.path(), &folder, &flags(&dynamic), 1, "one");
    let (four, four_log) = run_into_folder(dir.path(), &folder, &flags(&dynamic), 4, "four");
    let keys: Vec<&str> = one.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), 10, "nine masks and the error rows: {keys:?}");
    assert!(keys.contains(&"_errors.jsonl") && keys.contains(&"pic-08.jpg.png"));
    assert!(one == four, "batch 4 gives the files of batch 1");
    // The masks differ: the comparison means something.
    let masks: std::collections::BTreeSet<&Vec<u8>> = one
        .iter()
        .filter(|(k, _)| k.ends_with(".png"))
        .map(|(_, b)| b)
        .collect();
    assert!(masks.len() > 3, "{} different masks", masks.len());
    // Nine good items of twelve: one call each, or three calls of up to four.
    assert_eq!(model_calls(&one_log), 9, "{one_log}");
    assert_eq!(model_calls(&four_log), 3, "{four_log}");

    // The same model fixing its batch at 1: one item a call, the same files.
    let fixed = segment_model(dir.path(), "seg-1.onnx", Some(1));
    let (fixed_out, fixed_log) = run_into_folder(dir.path(), &folder, &flags(&fixed), 4, "fixed");
    assert!(
        fixed_out == one,
        "a fixed batch of 1 gives the files of batch 1"
    );
    assert_eq!(model_calls(&fixed_log), 9, "{fixed_log}");
}

#[test]
fn styles_in_batches_are_the_pictures_of_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pics");
    let keys = mixed_folder(&folder, 9);
    let model = write_model(
        dir.path(),
        "vintage.onnx",
        onnx_build::vintage_filter_model(),
    );
    let flags = vec!["--model".into(), model.display().to_string()];
    let (one, one_log) = run_into_folder(dir.path(), &folder, &flags, 1, "one");
    let (four, four_log) = run_into_folder(dir.path(), &folder, &flags, 4, "four");
    assert_eq!(one.len(), 10, "nine pictures and the error rows");
    assert!(one == four, "batch 4 gives the files of batch 1");
    // Styled: no output is its input.
    for (key, bytes) in &one {
        if key != "_errors.jsonl" {
            assert_ne!(bytes, &std::fs::read(folder.join(key)).unwrap(), "{key}");
        }
    }
    // One call per item at batch 1. At batch 4, each batch of four items in listing order
    // (bad ones included) takes a call per size among its good items: the sizes go 64x48,
    // 40x40, 30x50 by the item's number.
    assert_eq!(model_calls(&one_log), 9, "{one_log}");
    let size_of = |key: &str| -> Option<usize> {
        let number: usize = key.strip_prefix("pic-")?.get(..2)?.parse().ok()?;
        (!key[6..].starts_with('b')).then_some(number % 3)
    };
    let expected: usize = keys
        .chunks(4)
        .map(|batch| {
            batch
                .iter()
                .filter_map(|k| size_of(k))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        })
        .sum();
    assert!(expected < 9, "{keys:?}");
    assert_eq!(model_calls(&four_log), expected, "{four_log}");
}
