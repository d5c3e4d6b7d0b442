//! Tiny models built here (a fixed input, constant outputs) for each detection layout, with
//! suppression and letterbox mapping worked out by hand, and each bad input refused before
//! any frame: outputs that do not fit the task, labels of the wrong length, sizes and
//! layouts the model cannot take.

use fresco_infer::onnx_build::{sym, tensor_f32, Dim, GraphBuilder};
use fresco_infer::EngineOptions;
use fresco_score::{
    Detection, Frame, ModelCard, PlanError, ScoreError, ScoreSettings, Scorer, Scores,
};

/// A model with input `input` of `input_shape` whose outputs are the given constants.
fn constant_model(input_shape: &[Dim], outputs: &[(&str, &[i64], &[f32])]) -> Vec<u8> {
    let mut g = GraphBuilder::new("constants").input("input", input_shape);
    for (name, dims, values) in outputs {
        let shape: Vec<Dim> = dims.iter().map(|d| Dim::Fixed(*d)).collect();
        let init = format!("{name}_value");
        g = g
            .initializer(tensor_f32(&init, dims, values))
            .output(name, &shape)
            .node("Identity", &[&init], &[name], vec![]);
    }
    g.to_bytes()
}

fn nchw(w: i64, h: i64) -> Vec<Dim> {
    vec![Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(h), Dim::Fixed(w)]
}

fn new_scorer(model: &[u8], flags: &ScoreSettings) -> Result<Scorer, ScoreError> {
    let options = EngineOptions {
        threads: Some(1),
        ..EngineOptions::default()
    };
    Scorer::new(model, "synthetic", None, &options, flags, None)
}

fn detect_flags(format: &str) -> ScoreSettings {
    ScoreSettings {
        task: Some("detect".into()),
        detect_format: Some(format.into()),
        min_score: Some(0.5),
        nms_iou: Some(0.5),
        ..Default::default()
    }
}

/// Scores one grey frame of `fw x fh` (the model's outputs are constant).
fn score_once(s: &mut Scorer, fw: u32, fh: u32) -> Vec<Detection> {
    let (sw, sh) = s.scaled_size(fw, fh);
    let rgb = vec![100u8; (sw * sh * 3) as usize];
    let frame = Frame {
        rgb: &rgb,
        width: sw,
        height: sh,
        frame_width: fw,
        frame_height: fh,
        source: "synthetic",
        index: 0,
        pts: 0,
        time: 0.0,
    };
    let mut records = s.score(&[frame]).unwrap();
    match records.remove(0).scores {
        Scores::Detections(d) => d,
        other => panic!("{other:?}"),
    }
}

/// The frame is 64x32 into a 32x32 letterbox: scaled to 32x16, padded 8 rows above, so
/// frame x = 2 * model x and frame y = 2 * (model y - 8).
fn to_frame(b: [f32; 4]) -> [f32; 4] {
    [
        2.0 * b[0],
        2.0 * (b[1] - 8.0),
        2.0 * b[2],
        2.0 * (b[3] - 8.0),
    ]
}

fn assert_boxes(found: &[Detection], want: &[(u32, f32, [f32; 4])]) {
    assert_eq!(found.len(), want.len(), "{found:?}");
    for (d, (class, score, bbox)) in found.iter().zip(want) {
        assert_eq!(d.class, *class, "{found:?}");
        assert!((d.score - score).abs() < 1e-5, "{found:?}");
        for (a, b) in d.bbox.iter().zip(bbox) {
            assert!((a - b).abs() < 1e-3, "{:?} vs {bbox:?}", d.bbox);
        }
    }
}

#[test]
fn yolo_rows_are_scored_suppressed_and_mapped_through_the_letterbox() {
    #[rustfmt::skip]
    let rows = [
        // cx, cy, w, h, objectness, class 0, class 1
        16.0, 16.0, 8.0, 4.0, 0.9, 0.9, 0.1, // class 0, 0.81: kept
        17.0, 16.0, 8.0, 4.0, 0.9, 0.8, 0.1, // class 0, 0.72, IoU 0.78 with the first: dropped
        16.0, 16.0, 8.0, 4.0, 0.8, 0.1, 0.9, // class 1, 0.72, same place: kept (other class)
        4.0, 10.0, 4.0, 4.0, 0.9, 0.5, 0.0,  // 0.45, below 0.5: dropped
        30.0, 23.0, 8.0, 4.0, 1.0, 0.6, 0.0, // class 0, 0.6, reaches past the frame: clamped
    ];
    let model = constant_model(&nchw(32, 32), &[("out", &[1, 5, 7], &rows)]);
    let mut s = new_scorer(&model, &detect_flags("yolo")).unwrap();
    let found = score_once(&mut s, 64, 32);
    let last = to_frame([26.0, 21.0, 34.0, 25.0]);
    assert_boxes(
        &found,
        &[
            (0, 0.81, to_frame([12.0, 14.0, 20.0, 18.0])),
            (1, 0.72, to_frame([12.0, 14.0, 20.0, 18.0])),
            (0, 0.6, [last[0], last[1], 64.0, 32.0]),
        ],
    );
    assert_eq!(found[0].label, "0", "no labels file: the class number");
}

#[test]
fn anchor_boxes_and_keypoints_are_decoded_from_the_anchor_centres() {
    // One 1x1 grid with two anchors, both centred at (0.5, 0.5): (4, 4) in the 8x8 input.
    // Rows: cx, cy, w, h, then two keypoints, all relative to the anchor's centre.
    #[rustfmt::skip]
    let rows = [
        1.0, 0.0, 4.0, 2.0, 0.0, 0.0, 1.0, -1.0, // logit 5: kept
        0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0,  // logit -5: below 0.5
    ];
    let model = constant_model(
        &nchw(8, 8),
        &[
            ("scores", &[1, 2, 1], &[5.0, -5.0]),
            ("boxes", &[1, 2, 8], &rows),
        ],
    );
    let mut flags = detect_flags("anchors");
    flags.resize = Some("stretch".into());
    flags.anchors = Some(vec![fresco_score::AnchorGrid {
        size: 1,
        per_cell: 2,
    }]);
    let mut s = new_scorer(&model, &flags).unwrap();
    // A 16x8 frame stretched to 8x8: frame x = 2 * model x, frame y = model y.
    let found = score_once(&mut s, 16, 8);
    let sigmoid_5 = 1.0 / (1.0 + (-5.0f32).exp());
    assert_boxes(&found, &[(0, sigmoid_5, [6.0, 3.0, 14.0, 5.0])]);
    assert_eq!(found[0].keypoints, vec![[8.0, 4.0], [10.0, 3.0]]);
    // More anchors in the card than rows in the outputs is refused, not misread.
    flags.anchors = Some(vec![fresco_score::AnchorGrid {
        size: 1,
        per_cell: 3,
    }]);
    assert!(new_scorer(&model, &flags).is_err());
}

#[test]
fn yolov8_columns_are_decoded_transposed() {
    // 4 + 2 classes by 3 anchors: column-major boxes.
    #[rustfmt::skip]
    let values = [
        16.0, 17.0, 8.0,  // cx
        16.0, 16.0, 12.0, // cy
        8.0, 8.0, 4.0,    // w
        4.0, 4.0, 4.0,    // h
        0.9, 0.7, 0.2,    // class 0
        0.1, 0.2, 0.6,    // class 1
    ];
    let model = constant_model(&nchw(32, 32), &[("out", &[1, 6, 3], &values)]);
    let mut s = new_scorer(&model, &detect_flags("yolov8")).unwrap();
    let found = score_once(&mut s, 64, 32);
    assert_boxes(
        &found,
        &[
            (0, 0.9, to_frame([12.0, 14.0, 20.0, 18.0])),
            (1, 0.6, to_frame([6.0, 10.0, 10.0, 14.0])),
        ],
    );
    // The format is guessed from the shape when not given: fewer rows than anchors is
    // yolov8, more is yolo.
    let mut flags = detect_flags("yolov8");
    flags.detect_format = None;
    for (shape, want) in [
        ([1, 6, 8], fresco_score::DetectFormat::Yolov8),
        ([1, 8, 6], fresco_score::DetectFormat::Yolo),
    ] {
        let model = constant_model(&nchw(32, 32), &[("out", &shape, &[0.0; 48])]);
        let s = new_scorer(&model, &flags).unwrap();
        assert!(
            matches!(&s.plan().decoder, fresco_score::Decoder::Detect(d) if d.format == want),
            "{shape:?}"
        );
    }
}

#[test]
fn ssd_tensors_are_normalised_and_cut_at_num_detections() {
    #[rustfmt::skip]
    let boxes = [
        // ymin, xmin, ymax, xmax (normalised to the 32x32 input)
        0.25, 0.5, 0.75, 1.0,
        0.25, 0.5, 0.75, 0.95, // same class, IoU 0.9: dropped
        0.0, 0.0, 0.5, 0.5,    // beyond num_detections: never read
    ];
    let model = constant_model(
        &nchw(32, 32),
        &[
            ("detection_boxes", &[1, 3, 4], &boxes),
            ("detection_scores", &[1, 3], &[0.9, 0.8, 0.99]),
            ("detection_classes", &[1, 3], &[3.0, 3.0, 1.0]),
            ("num_detections", &[1], &[2.0]),
        ],
    );
    let mut s = new_scorer(&model, &detect_flags("ssd")).unwrap();
    let found = score_once(&mut s, 64, 32);
    assert_boxes(&found, &[(3, 0.9, to_frame([16.0, 8.0, 32.0, 24.0]))]);
}

#[test]
fn outputs_that_do_not_fit_the_task_are_refused_before_scoring() {
    let outputs_error = |r: Result<Scorer, ScoreError>| match r {
        // Named with the model's label since masks' shapes are refused so too.
        Err(ScoreError::OutputsPlan { source, .. })
            if matches!(*source, PlanError::Outputs { .. }) =>
        {
            source.to_string()
        }
        Err(e) => panic!("another error: {e}"),
        Ok(s) => panic!("accepted: {s:?}"),
    };
    // classify on an image-shaped output.
    let image = constant_model(&nchw(4, 4), &[("out", &[1, 3, 4, 4], &[0.0; 48])]);
    let flags = ScoreSettings {
        task: Some("classify".into()),
        ..Default::default()
    };
    let msg = outputs_error(new_scorer(&image, &flags));
    assert!(
        msg.contains("[N, classes]") && msg.contains("[1,3,4,4]"),
        "{msg}"
    );
    // yolo rows of 5 columns (no class).
    let five = constant_model(&nchw(4, 4), &[("out", &[1, 2, 5], &[0.0; 10])]);
    let msg = outputs_error(new_scorer(&five, &detect_flags("yolo")));
    assert!(msg.contains("at least 6 columns"), "{msg}");
    // A classifier's [1, 1000] is not rows of boxes: refused, not decoded into nothing.
    let classifier = constant_model(&nchw(4, 4), &[("scores", &[1, 1000], &[0.0; 1000])]);
    let msg = outputs_error(new_scorer(&classifier, &detect_flags("yolo")));
    assert!(
        msg.contains("yolo needs [N, boxes, 5 + classes]") && msg.contains("[1,1000]"),
        "{msg}"
    );
    // ssd without a boxes tensor.
    let msg = outputs_error(new_scorer(&five, &detect_flags("ssd")));
    assert!(msg.contains("ssd needs boxes"), "{msg}");
}

#[test]
fn labels_must_match_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "cat\ndog\nbird\n").unwrap();
    let model = constant_model(&nchw(4, 4), &[("logits", &[1, 4], &[0.0, 1.0, 2.0, 3.0])]);
    let flags = ScoreSettings {
        task: Some("classify".into()),
        labels: Some(labels.clone()),
        ..Default::default()
    };
    match new_scorer(&model, &flags) {
        Err(ScoreError::Plan(PlanError::LabelCount {
            labels: 3,
            classes: 4,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    // Four labels fit; logits get softmax and the top-k order.
    std::fs::write(&labels, "cat\ndog\nbird\nfish\n").unwrap();
    let mut flags = flags;
    flags.top_k = Some(2);
    let mut s = new_scorer(&model, &flags).unwrap();
    // Classify crops by default: 4 is 0.875 of 4.57, so the decoder scales to 5x5.
    let (sw, sh) = s.scaled_size(4, 4);
    assert_eq!((sw, sh), (5, 5));
    let rgb = vec![0u8; 5 * 5 * 3];
    let rows = s
        .score(&[Frame {
            rgb: &rgb,
            width: sw,
            height: sh,
            frame_width: 4,
            frame_height: 4,
            source: "s",
            index: 3,
            pts: 300,
            time: 0.1,
        }])
        .unwrap();
    let Scores::Classes(c) = &rows[0].scores else {
        panic!()
    };
    let sum: f32 = [0.0f32, 1.0, 2.0, 3.0].iter().map(|v| v.exp()).sum();
    assert_eq!((c[0].label.as_str(), c[1].label.as_str()), ("fish", "bird"));
    assert!((c[0].score - 3f32.exp() / sum).abs() < 1e-6);
    // The yolo class count comes from the columns: 2 classes, 3 labels.
    let yolo = constant_model(&nchw(4, 4), &[("out", &[1, 1, 7], &[0.0; 7])]);
    let mut flags = detect_flags("yolo");
    std::fs::write(&labels, "a\nb\nc\n").unwrap();
    flags.labels = Some(labels);
    assert!(matches!(
        new_scorer(&yolo, &flags),
        Err(ScoreError::Plan(PlanError::LabelCount { classes: 2, .. }))
    ));
}

#[test]
fn sizes_and_layouts_the_model_cannot_take_are_refused() {
    let out: (&str, &[i64], &[f32]) = ("out", &[1, 2], &[0.0, 1.0]);
    let classify = |size: Option<&str>, layout: Option<&str>| ScoreSettings {
        task: Some("classify".into()),
        input_size: size.map(String::from),
        layout: layout.map(String::from),
        ..Default::default()
    };
    let field_of = |r: Result<Scorer, ScoreError>| match r {
        Err(ScoreError::Plan(PlanError::Conflict { field, .. }))
        | Err(ScoreError::Plan(PlanError::Field { field, .. })) => field,
        other => panic!("{other:?}"),
    };
    let fixed = constant_model(&nchw(32, 32), &[out]);
    assert_eq!(
        field_of(new_scorer(&fixed, &classify(Some("64x64"), None))),
        "input_size"
    );
    assert_eq!(
        field_of(new_scorer(&fixed, &classify(None, Some("nhwc")))),
        "layout"
    );
    // Symbolic size: needs --input-size; then it is taken.
    let free = constant_model(&[sym("N"), Dim::Fixed(3), sym("H"), sym("W")], &[out]);
    assert_eq!(
        field_of(new_scorer(&free, &classify(None, None))),
        "input_size"
    );
    let s = new_scorer(&free, &classify(Some("48x40"), None)).unwrap();
    assert_eq!((s.plan().prep.width, s.plan().prep.height), (48, 40));
    // One channel: not an image this scoring can feed.
    let grey = constant_model(
        &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(28), Dim::Fixed(28)],
        &[out],
    );
    let err = new_scorer(&grey, &classify(None, Some("nchw"))).unwrap_err();
    assert!(err.to_string().contains("1 channels"), "{err}");
    // Rank 2 input.
    let flat = constant_model(&[Dim::Fixed(1), Dim::Fixed(10)], &[out]);
    assert_eq!(
        field_of(new_scorer(&flat, &classify(None, None))),
        "input_size"
    );
    // A card's unknown key never reaches the model.
    let err = ModelCard::parse(
        b"task = \"classify\"\nlayot = \"nchw\"\n",
        "m.toml".as_ref(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown key 'layot'"), "{err}");
    // A size past the largest input a frame is prepared for (memory per frame).
    assert_eq!(
        field_of(new_scorer(&free, &classify(Some("20000x20000"), None))),
        "input_size"
    );
}

/// What a submitter's card and labels name cannot make the scorer take memory: a card or labels
/// file too large is refused before it is read whole, and anchor grids are counted (with
/// overflow checked) before any anchor is made.
#[test]
fn huge_cards_labels_and_anchor_grids_are_refused_before_they_are_built() {
    use fresco_score::card::{MAX_CARD_BYTES, MAX_LABELS_BYTES};
    use fresco_score::Labels;
    let dir = tempfile::tempdir().unwrap();
    let card = dir.path().join("big.toml");
    let mut text = String::from("task = \"classify\"\n");
    while text.len() as u64 <= MAX_CARD_BYTES {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&card, &text).unwrap();
    let err = ModelCard::load(&card).unwrap_err().to_string();
    assert!(
        err.contains("big.toml") && err.contains("larger than"),
        "{err}"
    );
    let labels = dir.path().join("labels.txt");
    let file = std::fs::File::create(&labels).unwrap();
    file.set_len(MAX_LABELS_BYTES + 1).unwrap();
    let err = Labels::load(&labels).unwrap_err().to_string();
    assert!(
        err.contains("labels.txt") && err.contains("larger than"),
        "{err}"
    );

    let model = constant_model(
        &nchw(128, 128),
        &[
            ("scores", &[1, 4, 1], &[0.0; 4]),
            ("boxes", &[1, 4, 4], &[0.0; 16]),
        ],
    );
    for grids in [
        "[[anchors]]\nsize = 4000000000\nper_cell = 4000000000\n",
        "[[anchors]]\nsize = 2000\nper_cell = 1000\n",
    ] {
        let card = ModelCard::parse(
            format!("task = \"detect\"\ndetect_format = \"anchors\"\n{grids}").as_bytes(),
            "anchors.toml".as_ref(),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let options = EngineOptions {
            threads: Some(1),
            ..EngineOptions::default()
        };
        let err = match Scorer::new(
            &model,
            "m",
            None,
            &options,
            &ScoreSettings::default(),
            Some(&card),
        ) {
            Ok(_) => panic!("{grids}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("more than"), "{grids}: {err}");
        assert!(
            started.elapsed().as_secs() < 5,
            "{grids}: took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_batch_is_scored_frame_by_frame_in_order() {
    use fresco_infer::onnx_build::attr_ints;
    // Scores = each channel's mean: [N,3,H,W] -> [N,3], a "class" per colour channel.
    let model = GraphBuilder::new("channel-means")
        .input(
            "input",
            &[sym("N"), Dim::Fixed(3), Dim::Fixed(8), Dim::Fixed(8)],
        )
        .output("means", &[sym("N"), Dim::Fixed(3)])
        .node(
            "ReduceMean",
            &["input"],
            &["means"],
            vec![
                attr_ints("axes", &[2, 3]),
                fresco_infer::onnx_build::attr_int("keepdims", 0),
            ],
        )
        // A second output with no batch axis (a model-wide table).
        .output("table", &[Dim::Fixed(4)])
        .initializer(tensor_f32("table_value", &[4], &[1.0, 2.0, 3.0, 4.0]))
        .node("Identity", &["table_value"], &["table"], vec![])
        .to_bytes();
    let colours: [[u8; 3]; 3] = [[200, 10, 10], [10, 200, 10], [10, 10, 200]];
    let pictures: Vec<Vec<u8>> = colours.iter().map(|c| c.repeat(8 * 8)).collect();
    let frames: Vec<Frame> = pictures
        .iter()
        .enumerate()
        .map(|(i, rgb)| Frame {
            rgb,
            width: 8,
            height: 8,
            frame_width: 8,
            frame_height: 8,
            source: "batch",
            index: 10 + i as u64,
            pts: 100 * i as i64,
            time: i as f64,
        })
        .collect();
    for (order, want) in [("rgb", [0u32, 1, 2]), ("bgr", [2, 1, 0])] {
        let flags = ScoreSettings {
            task: Some("classify".into()),
            resize: Some("stretch".into()),
            channel_order: Some(order.into()),
            outputs: Some(vec!["means".into()]),
            top_k: Some(1),
            ..Default::default()
        };
        let mut s = new_scorer(&model, &flags).unwrap();
        assert_eq!(
            s.batch(3),
            3,
            "a symbolic batch takes every frame in one call"
        );
        let records = s.score(&frames).unwrap();
        let got: Vec<(u64, u32)> = records
            .iter()
            .map(|r| match &r.scores {
                Scores::Classes(c) => (r.frame, c[0].index),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![(10, want[0]), (11, want[1]), (12, want[2])],
            "{order}"
        );
    }
    // The same through `tensors`: each frame's own slice, its batch axis reported as 1.
    let flags = ScoreSettings {
        task: Some("tensors".into()),
        ..Default::default()
    };
    let mut s = new_scorer(&model, &flags).unwrap();
    let records = s.score(&frames).unwrap();
    // Two outputs and no name: classify cannot choose.
    let unnamed = ScoreSettings {
        task: Some("classify".into()),
        input_size: None,
        ..Default::default()
    };
    let err = new_scorer(&model, &unnamed).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("outputs: the model has 2 outputs"),
        "{err}"
    );
    for (r, c) in records.iter().zip(colours) {
        let Scores::Tensors(t) = &r.scores else {
            panic!()
        };
        assert_eq!(
            (t[0].name.as_str(), t[0].shape.as_slice()),
            ("means", &[1u64, 3][..])
        );
        // Not batched: the whole table for every frame.
        assert_eq!(
            (t[1].name.as_str(), t[1].shape.as_slice()),
            ("table", &[4u64][..])
        );
        assert_eq!(t[1].values, [1.0, 2.0, 3.0, 4.0]);
        let want: Vec<f32> = c.iter().map(|v| *v as f32 / 255.0).collect();
        for (a, b) in t[0].values.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{:?} vs {want:?}", t[0].values);
        }
    }
}
