//! The three real scoring models of `FRESCO_MODEL_DIR/scoring` (skipped with a message where
//! absent), each task against known results or the model's own output computed independently
//! by Python ONNX Runtime + numpy from the same scaled pixels (skipped with a message where
//! the venv lacks them, unless `FRESCO_REQUIRE_ONNX_PYTHON=1`).
//!
//! Tolerances: boxes within 8 px and scores within 0.03 of the README's known detections (our
//! bilinear scaling differs from the converter's); probabilities and raw outputs within 1e-3
//! of Python's run on the very same scaled pixels (only float summation order differs).

mod common;

use std::path::Path;

use common::{frame, load_rgb, python_with, run_python, scale_for, scoring_dir};
use fresco_infer::EngineOptions;
use fresco_score::{ModelCard, Record, ScoreSettings, Scorer, Scores};

fn options() -> EngineOptions {
    EngineOptions {
        threads: Some(1),
        ..EngineOptions::default()
    }
}

/// Loads `model` and checks that the plan read from the file's declared interface alone (what a
/// server checks a submission with, without ONNX Runtime) is the plan ONNX Runtime gives.
fn scorer(dir: &Path, model: &str, flags: &ScoreSettings, card: Option<&ModelCard>) -> Scorer {
    let bytes = std::fs::read(dir.join(model)).unwrap();
    let declared = Scorer::plan_declared(&bytes, model, flags, card);
    let scorer = Scorer::new(&bytes, model, Some(dir), &options(), flags, card).unwrap();
    match declared {
        Ok(declared) => assert_eq!(&declared, scorer.plan(), "{model}: declared vs loaded plan"),
        // Only where the file leaves an output's shape open (yolov3-tiny's converter declared
        // `[?, ?, 85]`), so that the layout cannot be told without the runtime's inference.
        Err(e) => {
            let (_, outputs) = fresco_infer::tensors::declared_io(&bytes, model).unwrap();
            assert!(
                outputs.iter().any(|o| o.shape.iter().any(|&d| d < 0)),
                "{model}: the declared plan failed though every shape is declared: {e}"
            );
            assert!(e.to_string().contains("--detect-format"), "{model}: {e}");
        }
    }
    scorer
}

/// Scores one picture the way a worker would: scale, prepare, run, decode.
fn score_picture(s: &mut Scorer, picture: &Path) -> (Record, Vec<u8>, (u32, u32)) {
    let (rgb, w, h) = load_rgb(picture);
    let (scaled, sw, sh) = scale_for(s, &rgb, w, h);
    let records = s.score(&[frame(&scaled, (sw, sh), (w, h), 7)]).unwrap();
    assert_eq!(records.len(), 1);
    (records.into_iter().next().unwrap(), scaled, (sw, sh))
}

#[test]
fn yolov3_tiny_finds_the_known_boxes_in_dog_jpg() {
    let Some(dir) = scoring_dir() else { return };
    let flags = ScoreSettings {
        task: Some("detect".into()),
        labels: Some(dir.join("coco.names")),
        min_score: Some(0.3),
        nms_iou: Some(0.45),
        ..Default::default()
    };
    // Everything else comes from the model (416x416 NCHW) and the defaults (letterbox, /255,
    // yolo from the output's shape).
    let mut s = scorer(&dir, "yolov3-tiny-416.onnx", &flags, None);
    let (record, _, scaled) = score_picture(&mut s, &dir.join("dog.jpg"));
    assert_eq!(scaled, (416, 312));
    assert_eq!((record.frame, record.pts), (7, 7 * 512));
    let Scores::Detections(found) = &record.scores else {
        panic!("{record:?}")
    };
    println!("{found:#?}");
    let known = [
        ("car", 0.70, [466.0, 70.0, 679.0, 169.0]),
        ("dog", 0.60, [132.0, 188.0, 370.0, 512.0]),
        ("bicycle", 0.59, [204.0, 151.0, 576.0, 448.0]),
    ];
    for (label, score, bbox) in known {
        let hit = found.iter().find(|d| {
            d.label == label
                && d.bbox
                    .iter()
                    .zip(bbox)
                    .all(|(a, b): (&f32, f32)| (a - b).abs() <= 8.0)
        });
        let hit = hit.unwrap_or_else(|| panic!("no {label} box near {bbox:?}: {found:?}"));
        assert!(
            (hit.score - score).abs() <= 0.03,
            "{label}: {} vs {score}",
            hit.score
        );
    }
    // Everything found is above the threshold and inside the frame.
    assert!(found
        .iter()
        .all(|d| d.score >= 0.3 && d.bbox[0] >= 0.0 && d.bbox[2] <= 768.0 && d.bbox[3] <= 576.0));
}

const CLASSIFY_PY: &str = r#"
import json, sys
import numpy as np, onnxruntime as ort
model, raw, w, h = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
img = np.fromfile(raw, dtype=np.uint8).reshape(h, w, 3).astype(np.float32)
left, top = (w - 224) // 2, (h - 224) // 2
crop = img[top:top + 224, left:left + 224]
x = ((crop - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32)
opts = ort.SessionOptions(); opts.intra_op_num_threads = 1
s = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
logits = s.run(None, {"input": x})[0][0].astype(np.float64)
p = np.exp(logits - logits.max()); p /= p.sum()
top = np.argsort(-p, kind="stable")[:5]
print(json.dumps([[int(i), float(p[i])] for i in top]))
"#;

#[test]
fn efficientnet_top5_matches_python_onnxruntime() {
    let Some(dir) = scoring_dir() else { return };
    let card_dir = tempfile::tempdir().unwrap();
    let card_path = card_dir.path().join("efficientnet-lite0.toml");
    std::fs::write(
        &card_path,
        format!(
            "task = \"classify\"\nmean = [127.0, 127.0, 127.0]\nstd = [128.0, 128.0, 128.0]\n\
             labels = \"{}\"\n",
            dir.join("imagenet_labels.txt").display()
        ),
    )
    .unwrap();
    let card = ModelCard::load(&card_path).unwrap();
    let mut s = scorer(
        &dir,
        "efficientnet-lite0.onnx",
        &ScoreSettings::default(),
        Some(&card),
    );
    let (record, scaled, (sw, sh)) = score_picture(&mut s, &dir.join("dog.jpg"));
    // 576 short side -> 256, then the centre 224.
    assert_eq!((sw, sh), (341, 256));
    let Scores::Classes(classes) = &record.scores else {
        panic!("{record:?}")
    };
    println!("{classes:#?}");
    assert_eq!(classes.len(), 5);
    assert!(classes.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(!classes[0].label.contains('\t') && !classes[0].label.contains(','));
    let Some(python) = python_with("onnxruntime, numpy", "FRESCO_REQUIRE_ONNX_PYTHON") else {
        return;
    };
    let raw = card_dir.path().join("scaled.rgb");
    std::fs::write(&raw, &scaled).unwrap();
    let want = run_python(
        &python,
        CLASSIFY_PY,
        &[
            &dir.join("efficientnet-lite0.onnx"),
            &raw,
            Path::new(&sw.to_string()),
            Path::new(&sh.to_string()),
        ],
    );
    let want = want.as_array().unwrap();
    for (got, want) in classes.iter().zip(want) {
        let (index, p) = (want[0].as_u64().unwrap(), want[1].as_f64().unwrap());
        assert_eq!(got.index as u64, index, "{classes:?} vs {want:?}");
        assert!((got.score as f64 - p).abs() < 1e-3, "{} vs {p}", got.score);
    }
}

const BLAZEFACE_PY: &str = r#"
import json, sys
import numpy as np, onnxruntime as ort
model, raw = sys.argv[1], sys.argv[2]
img = np.fromfile(raw, dtype=np.uint8).reshape(128, 128, 3).astype(np.float32)
x = (img / 127.5 - 1.0)[None].astype(np.float32)
opts = ort.SessionOptions(); opts.intra_op_num_threads = 1
s = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
names = [o.name for o in s.get_outputs()]
outs = s.run(None, {"input:0": x})
print(json.dumps({n: {"shape": list(o.shape), "values": o.ravel().astype(float).tolist()} for n, o in zip(names, outs)}))
"#;

fn blazeface_card(dir: &Path, extra: &str) -> ModelCard {
    let text = format!(
        "mean = [127.5, 127.5, 127.5]\nstd = [127.5, 127.5, 127.5]\nresize = \"stretch\"\n{extra}"
    );
    ModelCard::parse(text.as_bytes(), &dir.join("blazeface-front-128.toml")).unwrap()
}

#[test]
fn blazeface_tensors_match_python_onnxruntime_and_faces_decode() {
    let Some(dir) = scoring_dir() else { return };
    let card = blazeface_card(&dir, "task = \"tensors\"\n");
    let mut s = scorer(
        &dir,
        "blazeface-front-128.onnx",
        &ScoreSettings::default(),
        Some(&card),
    );
    // NHWC and 128x128 come from the model's input [1,128,128,3].
    assert_eq!(s.plan().prep.layout, fresco_infer::Layout::Nhwc);
    let (record, scaled, size) = score_picture(&mut s, &dir.join("dog.jpg"));
    assert_eq!(size, (128, 128));
    let Scores::Tensors(tensors) = &record.scores else {
        panic!("{record:?}")
    };
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"]
    );
    assert_eq!(tensors[2].shape, [1, 512, 16]);
    if let Some(python) = python_with("onnxruntime, numpy", "FRESCO_REQUIRE_ONNX_PYTHON") {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("scaled.rgb");
        std::fs::write(&raw, &scaled).unwrap();
        let want = run_python(
            &python,
            BLAZEFACE_PY,
            &[&dir.join("blazeface-front-128.onnx"), &raw],
        );
        for t in tensors {
            let w = &want[t.name.as_str()];
            let shape: Vec<u64> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape, shape, "{}", t.name);
            let values = w["values"].as_array().unwrap();
            assert_eq!(t.values.len(), values.len());
            let worst = t
                .values
                .iter()
                .zip(values)
                .map(|(a, b)| (*a as f64 - b.as_f64().unwrap()).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-3, "{}: differs by {worst}", t.name);
        }
    }

    // The anchors decoder on the astronaut-like case is not available here (no face in
    // dog.jpg): decode the same outputs and check that nothing is a confident face, then that
    // the decoder's boxes are where the raw tensors say for the best anchor.
    let faces = blazeface_card(
        &dir,
        "task = \"detect\"\ndetect_format = \"anchors\"\nmin_score = 0.0\ntop_k = 1\n\
         [[anchors]]\nsize = 16\nper_cell = 2\n[[anchors]]\nsize = 8\nper_cell = 6\n",
    );
    let mut s = scorer(
        &dir,
        "blazeface-front-128.onnx",
        &ScoreSettings::default(),
        Some(&faces),
    );
    let (record, _, _) = score_picture(&mut s, &dir.join("dog.jpg"));
    let Scores::Detections(found) = &record.scores else {
        panic!("{record:?}")
    };
    assert_eq!(
        found.len(),
        1,
        "top_k 1 with min_score 0 keeps the best anchor"
    );
    // Recompute the best anchor from the raw tensors by hand.
    let logits: Vec<f32> = tensors[0]
        .values
        .iter()
        .chain(&tensors[1].values)
        .copied()
        .collect();
    let best = (0..logits.len())
        .max_by(|a, b| logits[*a].total_cmp(&logits[*b]))
        .unwrap();
    let score = 1.0 / (1.0 + (-logits[best]).exp());
    assert!(
        (found[0].score - score).abs() < 1e-6,
        "{} vs {score}",
        found[0].score
    );
    let (raw, anchor) = if best < 512 {
        (
            &tensors[2].values[best * 16..best * 16 + 4],
            ((best / 2) % 16, (best / 2) / 16, 16.0),
        )
    } else {
        let i = best - 512;
        (
            &tensors[3].values[i * 16..i * 16 + 4],
            ((i / 6) % 8, (i / 6) / 8, 8.0),
        )
    };
    let cx = raw[0] + (anchor.0 as f32 + 0.5) / anchor.2 * 128.0;
    let cy = raw[1] + (anchor.1 as f32 + 0.5) / anchor.2 * 128.0;
    // Stretch: x scales by 768/128, y by 576/128.
    let want = [
        ((cx - raw[2] / 2.0) * 6.0).clamp(0.0, 768.0),
        ((cy - raw[3] / 2.0) * 4.5).clamp(0.0, 576.0),
        ((cx + raw[2] / 2.0) * 6.0).clamp(0.0, 768.0),
        ((cy + raw[3] / 2.0) * 4.5).clamp(0.0, 576.0),
    ];
    for (g, w) in found[0].bbox.iter().zip(want) {
        assert!((g - w).abs() < 0.01, "{:?} vs {want:?}", found[0].bbox);
    }
}

#[test]
fn every_known_model_is_found_by_name_in_the_model_folder_with_its_labels() {
    let Some(dir) = scoring_dir() else { return };
    let cache = tempfile::tempdir().unwrap();
    let registry = fresco_infer::registry::Registry::new(
        dir.parent().map(Path::to_path_buf),
        cache.path().to_path_buf(),
        fresco_infer::registry::DEFAULT_BASE_URL.into(),
    );
    for known in fresco_score::KNOWN_MODELS {
        let found = known
            .locate(&registry)
            .unwrap_or_else(|e| panic!("{}: {e}", known.name));
        assert_eq!(found.model, dir.join(format!("{}.onnx", known.name)));
        let labels = (!known.labels.is_empty()).then(|| dir.join(known.labels));
        assert_eq!(found.labels, labels, "{}", known.name);
    }
}
