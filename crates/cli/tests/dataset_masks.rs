//! Mask dataset jobs (`--task segment`, issue 17): a folder or prefix of images segmented by a
//! model whose output is a per-pixel map, one 8-bit grayscale PNG mask per item, written under
//! the output folder or prefix with the item's key and `.png` added. The models are built here
//! (`fresco_infer::onnx_build`), so each mask's pixels are computed by the test itself:
//! - a class map (`[1, 4, 4, 4]`: the picture's R, G, B and a fixed pattern) over items of
//!   different sizes: each mask has its item's size and the argmax of the model's function at
//!   the cell nearest each pixel; `a.jpg` and `a.png` are two masks; bad items are rows of
//!   `_errors.jsonl`; the labels are written as `_labels.txt`; the same run again writes
//!   nothing; past the default failure threshold the job fails with its error rows written;
//!   `fresco estimate` calibrates on the same folder;
//! - a retried job does not rewrite the masks an earlier try wrote;
//! - a binary mask (`[1, 1, 4, 4]`, the red channel over a threshold) from a `file://` prefix
//!   into another, and of a JPEG turned upright by its EXIF orientation (the mask upright);
//! - refusals: a records output, a video or a single picture, a style, a manifest, output
//!   shapes no mask can be made of, a threshold or labels that do not apply, through
//!   `fresco run` and `POST /v1/jobs` (which takes a mask job of a folder into a folder).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::api::Api;
use common::jobs::{read_log, sqlite_queue, wait_exit};
use common::outputs::{a_retry_keeps_what_the_first_try_wrote, error_rows, keys_below};
use common::*;
use fresco_infer::onnx_build::{attr_int, tensor_f32, Dim, GraphBuilder};

/// The models' input side: a picture is stretched to `SIDE x SIDE`.
const SIDE: i64 = 4;

/// The class map's fixed fourth channel: 10 (class 3 wins) on some cells, -10 elsewhere.
fn pattern() -> Vec<f32> {
    (0..SIDE * SIDE)
        .map(|i| {
            let (row, col) = (i / SIDE, i % SIDE);
            if (row + 2 * col) % 3 == 0 {
                10.0
            } else {
                -10.0
            }
        })
        .collect()
}

fn image_input() -> Vec<Dim> {
    vec![
        Dim::Fixed(1),
        Dim::Fixed(3),
        Dim::Fixed(SIDE),
        Dim::Fixed(SIDE),
    ]
}

/// `[1, 4, SIDE, SIDE]`: the input's R, G, B (0..1) and [`pattern`].
fn class_map_model(dir: &Path) -> PathBuf {
    let bytes = GraphBuilder::new("segment")
        .input("image", &image_input())
        .output("map", &[1, 4, SIDE, SIDE].map(Dim::Fixed))
        .initializer(tensor_f32("pattern", &[1, 1, SIDE, SIDE], &pattern()))
        .node(
            "Concat",
            &["image", "pattern"],
            &["map"],
            vec![attr_int("axis", 1)],
        )
        .to_bytes();
    write_model(dir, "classes.onnx", bytes)
}

/// `[1, channels, SIDE, SIDE]`: a 1x1 convolution of the input with `weights` (`channels x 3`).
fn conv_model(dir: &Path, name: &str, channels: i64, weights: &[f32]) -> PathBuf {
    let bytes = GraphBuilder::new("segment")
        .input("image", &image_input())
        .output("mask", &[1, channels, SIDE, SIDE].map(Dim::Fixed))
        .initializer(tensor_f32("weights", &[channels, 3, 1, 1], weights))
        .node("Conv", &["image", "weights"], &["mask"], vec![])
        .to_bytes();
    write_model(dir, name, bytes)
}

/// A solid picture of `rgb` (hex, `FF0000`) and `size` at `path`, its format by extension.
fn solid(path: &Path, rgb: &str, size: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let src = format!("color=c=0x{rgb}:s={size}");
    ffmpeg(
        &["-f", "lavfi", "-i", &src, "-frames:v", "1", "-update", "1"],
        path,
    );
}

/// A mask read back: its size and pixels, checked to be an 8-bit grayscale PNG.
fn read_mask(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!(img.color(), image::ColorType::L8, "{}", path.display());
    let gray = img.into_luma8();
    (gray.width(), gray.height(), gray.into_raw())
}

/// The map cell nearest pixel `x` of `size` on a `SIDE`-cell axis (sizes here are multiples
/// of 4, so that no pixel centre falls on a cell boundary).
fn cell(x: u32, size: u32) -> usize {
    ((2 * x as i64 + 1) * SIDE / (2 * size as i64)) as usize
}

/// The class map model's mask of a solid picture of class `colour` (0 red, 1 green, 2 blue).
fn expected_classes(width: u32, height: u32, colour: u8) -> Vec<u8> {
    let pattern = pattern();
    let mut pixels = Vec::new();
    for y in 0..height {
        for x in 0..width {
            let at = cell(y, height) * SIDE as usize + cell(x, width);
            pixels.push(if pattern[at] > 0.0 { 3 } else { colour });
        }
    }
    pixels
}

/// The good items: key, colour (hex), size, class of the colour.
const GOOD: &[(&str, &str, &str, u8)] = &[
    ("a.jpg", "FF0000", "16x12", 0),
    ("a.png", "0000FF", "24x8", 2),
    ("blue.png", "0000FF", "64x16", 2),
    ("red.png", "FF0000", "48x32", 0),
    ("sub/green.jpg", "00FF00", "20x36", 1),
];

/// A folder of [`GOOD`] items and bad ones (not an image, empty, a key with a line break, a
/// PNG whose header claims 100,000 x 100,000 pixels), and a text file the include rules skip.
fn photos(dir: &Path) -> PathBuf {
    let photos = dir.join("photos");
    for (key, rgb, size, _) in GOOD {
        solid(&photos.join(key), rgb, size);
    }
    std::fs::write(photos.join("broken.jpg"), b"not a picture at all").unwrap();
    std::fs::write(photos.join("empty.png"), b"").unwrap();
    common::scoring::zero_png(&photos.join("huge.png"), 100_000, 100_000, 1);
    std::fs::copy(photos.join("red.png"), photos.join("new\nline.png")).unwrap();
    std::fs::write(photos.join("notes.txt"), b"not an image\n").unwrap();
    photos
}

#[test]
fn a_folder_gets_a_mask_per_item_at_its_own_size_with_bad_items_as_error_rows() {
    let dir = tempfile::tempdir().unwrap();
    let photos = photos(dir.path());
    let model = class_map_model(dir.path());
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "red\ngreen\nblue\npattern\n").unwrap();
    let masks = dir.path().join("masks");
    let args = [
        s("run"),
        p(&photos),
        s("-o"),
        p(&masks),
        s("--model"),
        p(&model),
        s("--task"),
        s("segment"),
        s("--labels"),
        p(&labels),
        s("--max-failed-fraction"),
        s("0.5"),
        s("--chunk-frames"),
        s("3"),
        s("--json"),
    ];
    let json = fresco(args).ok().json();
    assert_eq!(
        json["dataset"],
        serde_json::json!({"scored": 5, "failed": 4, "skipped": 1}),
        "{json:#}"
    );
    assert_eq!(
        keys_below(&masks),
        [
            "_errors.jsonl",
            "_labels.txt",
            // Two items whose keys differ in their extension only are two masks.
            "a.jpg.png",
            "a.png.png",
            "blue.png.png",
            "red.png.png",
            "sub/green.jpg.png",
        ]
    );
    for (key, _, size, colour) in GOOD {
        let (w, h) = size.split_once('x').unwrap();
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        let (mw, mh, pixels) = read_mask(&masks.join(format!("{key}.png")));
        assert_eq!((mw, mh), (w, h), "{key}: the mask has the item's size");
        assert_eq!(
            pixels,
            expected_classes(w, h, *colour),
            "{key}: the mask is not the model's argmax"
        );
    }
    assert_eq!(
        error_rows(&masks.join("_errors.jsonl")),
        [
            ("broken.jpg".to_string(), "not-image".to_string()),
            ("empty.png".to_string(), "empty".to_string()),
            ("huge.png".to_string(), "too-large".to_string()),
            ("new\nline.png".to_string(), "bad-key".to_string()),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(masks.join("_labels.txt")).unwrap(),
        "red\ngreen\nblue\npattern\n"
    );
    // The same run again is a new job, refused as the folder holds masks: nothing is
    // written again.
    let before = std::fs::metadata(masks.join("red.png.png")).unwrap();
    fresco(args).fails(5, "masks", &["already holds files", "--overwrite"]);
    let after = std::fs::metadata(masks.join("red.png.png")).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(keys_below(&masks).len(), 7);
    // Past the default threshold (1%) the job fails, and its error rows are still there.
    let strict = dir.path().join("strict");
    let failed = fresco([
        s("run"),
        p(&photos),
        s("-o"),
        p(&strict),
        s("--model"),
        p(&model),
        s("--task"),
        s("segment"),
    ]);
    assert_ne!(failed.code, Some(0), "{}", failed.dump());
    assert!(
        failed.stderr.contains("4 of 9 items failed"),
        "{}",
        failed.dump()
    );
    assert_eq!(error_rows(&strict.join("_errors.jsonl")).len(), 4);
    // `fresco estimate` calibrates a segment model on a sample of the dataset, masks and all.
    let estimate = fresco([
        s("estimate"),
        p(&photos),
        s("--model"),
        p(&model),
        s("--task"),
        s("segment"),
        s("--calibration"),
        p(&dir.path().join("calibration.json")),
    ])
    .ok();
    assert!(
        estimate.stdout.contains("calibrated now on a sample"),
        "{}",
        estimate.dump()
    );
}

/// A model card that says `task = "segment"` asks for masks where no flag names a task: the
/// card beside the model through `fresco run`, a card given with `--model-card` through
/// `fresco jobs submit` and a worker. The same card with a records output is refused as the
/// flag is.
#[test]
fn a_cards_segment_task_asks_for_masks_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let items = [
        ("red.png", "FF0000", 16, 12, 0),
        ("sub/blue.jpg", "0000FF", 8, 24, 2),
    ];
    for (key, rgb, w, h, _) in items {
        solid(&photos.join(key), rgb, &format!("{w}x{h}"));
    }
    let check = |masks: &Path| {
        assert_eq!(keys_below(masks), ["red.png.png", "sub/blue.jpg.png"]);
        for (key, _, w, h, colour) in items {
            let (mw, mh, pixels) = read_mask(&masks.join(format!("{key}.png")));
            assert_eq!((mw, mh), (w, h), "{key}");
            assert_eq!(pixels, expected_classes(w, h, colour), "{key}");
        }
    };

    // The card beside the model (classes.toml for classes.onnx).
    let beside = dir.path().join("beside");
    std::fs::create_dir(&beside).unwrap();
    let model = class_map_model(&beside);
    std::fs::write(beside.join("classes.toml"), "task = \"segment\"\n").unwrap();
    let masks = dir.path().join("masks");
    let json = fresco([
        s("run"),
        p(&photos),
        s("-o"),
        p(&masks),
        s("--model"),
        p(&model),
        s("--json"),
    ])
    .ok()
    .json();
    assert_eq!(json["dataset"]["scored"], 2, "{json:#}");
    check(&masks);
    // The same card with a records output: masks are not rows.
    fresco([
        s("run"),
        p(&photos),
        s("-o"),
        p(&dir.path().join("rows.jsonl")),
        s("--model"),
        p(&model),
    ])
    .fails(4, "rows.jsonl", &["--task segment writes one mask image"]);

    // A card given with --model-card, through the queue.
    let bare = class_map_model(dir.path());
    let card = dir.path().join("segment-card.toml");
    std::fs::write(&card, "task = \"segment\"\n").unwrap();
    let queue = sqlite_queue(dir.path());
    let queued = dir.path().join("queued");
    let id = queue.submit(
        &photos,
        &queued,
        &bare,
        &["--model-card", &card.display().to_string()],
    );
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(&mut worker, Duration::from_secs(120), "the worker");
    assert!(status.success(), "{}", read_log(&log));
    assert_eq!(queue.show(&id)["state"], "succeeded");
    check(&queued);
}

#[test]
fn a_retried_mask_job_does_not_rewrite_what_an_earlier_try_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut keys = Vec::new();
    for i in 0..6 {
        let key = format!("p{i}.png");
        solid(&photos.join(&key), "00FF00", "16x16");
        keys.push(format!("{key}.png"));
    }
    let model = class_map_model(dir.path());
    let masks = dir.path().join("masks");
    let queue = sqlite_queue(dir.path());
    let id = queue.submit(
        &photos,
        &masks,
        &model,
        &["--task", "segment", "--chunk-frames", "6"],
    );
    a_retry_keeps_what_the_first_try_wrote(&queue, dir.path(), &id, &masks, "p1.png.png", &keys);
    let (_, _, pixels) = read_mask(&masks.join("p5.png.png"));
    assert_eq!(pixels, expected_classes(16, 16, 1));
}

#[test]
fn a_file_url_prefix_gets_binary_masks_at_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let base = format!("file://{}", store.display());
    let local = dir.path().join("local");
    // Red 1.0, dark red 0.25, blue 0: over 0.5 the first only.
    for (key, rgb, size) in [
        ("red.png", "FF0000", "12x8"),
        ("sub/dark.png", "400000", "8x12"),
        ("blue.png", "0000FF", "4x4"),
    ] {
        solid(&local.join(key), rgb, size);
        common::objects::upload(&format!("{base}/photos/{key}"), &local.join(key));
    }
    std::fs::write(local.join("bad.png"), b"no").unwrap();
    common::objects::upload(&format!("{base}/photos/bad.png"), &local.join("bad.png"));
    let model = conv_model(dir.path(), "red.onnx", 1, &[1.0, 0.0, 0.0]);
    let queue = sqlite_queue(dir.path());
    let id = queue.submit(
        Path::new(&format!("{base}/photos/")),
        Path::new(&format!("{base}/masks/")),
        &model,
        &["--task", "segment", "--max-failed-fraction", "1"],
    );
    let log = dir.path().join("worker.log");
    let mut worker = queue.spawn_worker(&log, &[], &[]);
    let status = wait_exit(&mut worker, Duration::from_secs(300), "the worker");
    assert!(status.success(), "{}", read_log(&log));
    let job = queue.show(&id);
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(
        common::objects::keys(&format!("{base}/masks/")),
        [
            "_errors.jsonl",
            "blue.png.png",
            "red.png.png",
            "sub/dark.png.png"
        ]
    );
    for (key, size, value) in [
        ("red.png", (12, 8), 255u8),
        ("sub/dark.png", (8, 12), 0),
        ("blue.png", (4, 4), 0),
    ] {
        let got = dir.path().join("got.png");
        common::objects::download(&format!("{base}/masks/{key}.png"), &got);
        let (w, h, pixels) = read_mask(&got);
        assert_eq!((w, h), size, "{key}");
        assert!(pixels.iter().all(|v| *v == value), "{key}: {pixels:?}");
    }
    let errors = dir.path().join("errors.jsonl");
    common::objects::download(&format!("{base}/masks/_errors.jsonl"), &errors);
    assert_eq!(
        error_rows(&errors),
        [("bad.png".to_string(), "not-image".to_string())]
    );
    // A lower threshold (a logit model's would be 0) takes the dark red too.
    let low = dir.path().join("low");
    fresco([
        s("run"),
        &std::ffi::OsString::from(format!("{base}/photos/")),
        s("-o"),
        p(&low),
        s("--model"),
        p(&model),
        s("--task"),
        s("segment"),
        s("--mask-threshold"),
        s("0.2"),
        s("--max-failed-fraction"),
        s("1"),
    ])
    .ok();
    let (_, _, dark) = read_mask(&low.join("sub/dark.png.png"));
    assert!(dark.iter().all(|v| *v == 255), "{dark:?}");
    let (_, _, blue) = read_mask(&low.join("blue.png.png"));
    assert!(blue.iter().all(|v| *v == 0), "{blue:?}");
}

/// A `fresco run` to refuse: its inputs, output, flags, exit code and words of its message.
type Refusal<'a> = (
    Vec<&'a std::ffi::OsStr>,
    PathBuf,
    Vec<String>,
    i32,
    Vec<&'a str>,
);

/// A JPEG whose EXIF turns it upright: its mask has the upright size and follows the turn.
#[test]
fn a_turned_picture_gets_an_upright_mask() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    // 64x32 as stored: left half red, right half blue.
    let stored = dir.path().join("stored.jpg");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=0xFF0000:s=32x32",
            "-f",
            "lavfi",
            "-i",
            "color=c=0x0000FF:s=32x32",
            "-filter_complex",
            "[0][1]hstack",
            "-frames:v",
            "1",
            "-update",
            "1",
        ],
        &stored,
    );
    // Orientation 6: shown turned a quarter clockwise, 32x64, the red half on top.
    let turned = with_exif_orientation(&std::fs::read(&stored).unwrap(), 6);
    std::fs::write(photos.join("turned.jpg"), turned).unwrap();
    let model = conv_model(dir.path(), "red.onnx", 1, &[1.0, 0.0, 0.0]);
    let masks = dir.path().join("masks");
    fresco([
        s("run"),
        p(&photos),
        s("-o"),
        p(&masks),
        s("--model"),
        p(&model),
        s("--task"),
        s("segment"),
    ])
    .ok();
    let (w, h, pixels) = read_mask(&masks.join("turned.jpg.png"));
    assert_eq!((w, h), (32, 64));
    let (top, bottom) = pixels.split_at(pixels.len() / 2);
    assert!(top.iter().all(|v| *v == 255), "{top:?}");
    assert!(bottom.iter().all(|v| *v == 0), "{bottom:?}");
}

#[test]
fn masks_are_refused_where_they_make_no_sense() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    solid(&photos.join("a.png"), "FF0000", "8x8");
    let classes = class_map_model(dir.path());
    let binary = conv_model(dir.path(), "binary.onnx", 1, &[1.0, 0.0, 0.0]);
    let many = conv_model(dir.path(), "many.onnx", 300, &[0.0; 900]);
    let classifier = write_model(
        dir.path(),
        "classifier.onnx",
        fresco_infer::onnx_build::pixel_classifier_model(None, 10),
    );
    let clip = dir.path().join("clip.mp4");
    make_h264(&clip, "64x48", 10, 0.5);
    let manifest = dir.path().join("list.txt");
    std::fs::write(&manifest, format!("{}\n", photos.join("a.png").display())).unwrap();
    let masks = dir.path().join("masks");
    let picture = photos.join("a.png");
    let run = |input: &[&std::ffi::OsStr], output: &Path, extra: &[&str]| {
        let mut args = vec![s("run")];
        args.extend_from_slice(input);
        args.extend([s("-o"), p(output), s("--task"), s("segment")]);
        args.extend(extra.iter().map(|a| s(a)));
        fresco(args)
    };
    let model = |m: &Path| vec!["--model".to_string(), m.display().to_string()];
    let with = |m: &Path, more: &[&str]| {
        let mut all = model(m);
        all.extend(more.iter().map(|a| a.to_string()));
        all
    };
    let cases: Vec<Refusal> = vec![
        // A records output: masks are images.
        (
            vec![p(&photos)],
            dir.path().join("x.jsonl"),
            model(&classes),
            4,
            vec!["not records", ".jsonl"],
        ),
        (
            vec![p(&photos)],
            dir.path().join("x.parquet"),
            model(&classes),
            4,
            vec!["not records"],
        ),
        // A video, into a folder or into records.
        (
            vec![p(&clip)],
            masks.clone(),
            model(&classes),
            4,
            vec!["clip.mp4", "a video's frames are not segmented"],
        ),
        (
            vec![p(&clip)],
            dir.path().join("clip.jsonl"),
            model(&classes),
            4,
            vec!["a video's frames are not segmented"],
        ),
        // One picture named alone is no dataset.
        (
            vec![p(&picture)],
            masks.clone(),
            model(&classes),
            4,
            vec!["one mask per image of a dataset"],
        ),
        // A style is not a segmentation model.
        (
            vec![p(&photos)],
            masks.clone(),
            vec!["--style".into(), "candy".into()],
            4,
            vec!["candy", "names a style model", "--model FILE"],
        ),
        // A manifest has no folder to keep keys under.
        (
            vec![s("--manifest"), p(&manifest)],
            masks.clone(),
            model(&classes),
            4,
            vec!["manifest"],
        ),
        // Outputs no mask can be made of, named with the model and the shape.
        (
            vec![p(&photos)],
            masks.clone(),
            model(&many),
            7,
            vec!["many.onnx", "'mask' is [1,300,4,4]", "at most 256"],
        ),
        (
            vec![p(&photos)],
            masks.clone(),
            model(&classifier),
            7,
            vec!["classifier.onnx", "'logits' is [?,10]", "[N, C, H, W]"],
        ),
        // A threshold on a class map, labels on a binary mask.
        (
            vec![p(&photos)],
            masks.clone(),
            with(&classes, &["--mask-threshold", "0.5"]),
            7,
            vec!["mask_threshold", "class map"],
        ),
        (
            vec![p(&photos)],
            masks.clone(),
            with(&binary, &["--labels", manifest.to_str().unwrap()]),
            7,
            vec!["labels", "binary mask"],
        ),
    ];
    for (input, output, extra, code, words) in &cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = run(input, output, &extra);
        assert_eq!(
            out.code,
            Some(*code),
            "{input:?} -o {output:?} {extra:?}: {}",
            out.dump()
        );
        for word in words {
            assert!(
                out.stderr.contains(word),
                "{input:?} -o {output:?} {extra:?}: expected '{word}' in: {}",
                out.dump()
            );
        }
        assert!(!output.exists(), "{output:?} was made");
    }
    // The class map model without --task segment is no image model: the refusal says how to
    // make masks of it.
    let out = fresco([
        s("run"),
        p(&photos),
        s("-o"),
        p(&masks),
        s("--model"),
        p(&classes),
    ]);
    assert_eq!(out.code, Some(7), "{}", out.dump());
    assert!(out.stderr.contains("--task segment"), "{}", out.dump());
    assert!(!masks.exists());
    // A threshold that is no number.
    let out = run(
        &[p(&photos)],
        &masks,
        &[
            "--model",
            binary.to_str().unwrap(),
            "--mask-threshold",
            "inf",
        ],
    );
    assert_eq!(out.code, Some(2), "{}", out.dump());

    // The API refuses the same, with 4xx.
    let api = Api::submitter(dir.path());
    let body = |input: &Path, output: &Path, model: &str, scoring: serde_json::Value| {
        let mut body = serde_json::json!({
            "input": input.display().to_string(),
            "output": output.display().to_string(),
            "model": model,
            "device": "cpu",
            "scoring": scoring,
        });
        if input.is_dir() {
            body["dataset"] = serde_json::json!({});
        }
        body
    };
    let segment = serde_json::json!({"task": "segment"});
    let classes_path = classes.display().to_string();
    for (request, want) in [
        (
            body(
                &photos,
                &dir.path().join("x.jsonl"),
                &classes_path,
                segment.clone(),
            ),
            "segment-output",
        ),
        (
            body(&clip, &masks, &classes_path, segment.clone()),
            "segment-input",
        ),
        (
            body(
                &clip,
                &dir.path().join("c.jsonl"),
                &classes_path,
                segment.clone(),
            ),
            "segment-input",
        ),
        (
            {
                let mut b = body(&photos, &masks, "", segment.clone());
                b.as_object_mut().unwrap().remove("model");
                b["style"] = serde_json::json!("candy");
                b
            },
            "segment-needs-model",
        ),
        (
            body(
                &photos,
                &masks,
                &many.display().to_string(),
                segment.clone(),
            ),
            "model-scoring",
        ),
        (
            body(
                &photos,
                &masks,
                &binary.display().to_string(),
                serde_json::json!({"task": "segment", "mask_threshold": 1e9}),
            ),
            "invalid-field",
        ),
    ] {
        let (status, code, message) = api.refuse(&request);
        assert!((400..500).contains(&status), "{request}: {status} {code}");
        assert_eq!(code, want, "{request}: {message}");
    }
    assert!(!masks.exists());
    // And takes a mask job of a folder into a folder.
    let good = body(&photos, &masks, &classes_path, segment.clone());
    let answer = fresco_testkit::http::post(&format!("{}/v1/jobs", api.url))
        .bearer(&api.token)
        .send_json(&good);
    assert!(
        (200..300).contains(&answer.status),
        "{}: {}",
        answer.status,
        answer.text()
    );
    let job = answer.json();
    assert!(job["id"].is_string(), "{job:#}");
}
