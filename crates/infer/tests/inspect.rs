//! The static model inspector on hostile models made in code (external data in each place ONNX
//! allows it, constant-folding bombs, oversized graphs, broken protobufs) and on the good ones:
//! the built-in models and, where `FRESCO_MODEL_DIR` holds them, the real style models.
//! No ONNX Runtime is involved: the test also checks that no session was built.

use std::path::PathBuf;

use fresco_infer::hostile_models as hostile;
use fresco_infer::inspect::{inspect_model, InspectError, ModelBudget, Origin};
use fresco_infer::onnx_build;

fn submitted(bytes: &[u8]) -> Result<fresco_infer::inspect::InspectedModel, InspectError> {
    inspect_model(
        bytes,
        "model.onnx",
        Origin::Submitted,
        &ModelBudget::default(),
    )
}

fn refused(bytes: &[u8]) -> InspectError {
    submitted(bytes).expect_err("a hostile model must be refused")
}

/// Locations an attacker would name: relative to the working directory, climbing out of it,
/// absolute, and a URL-looking one.
const LOCATIONS: [&str; 5] = [
    "secret.txt",
    "../../etc/passwd",
    "/etc/passwd",
    "/proc/self/environ",
    "file:///etc/shadow",
];

#[test]
fn external_data_is_refused_wherever_a_tensor_can_be() {
    type Make = fn(&str) -> Vec<u8>;
    let places: [(&str, Make, &str); 6] = [
        (
            "initializer",
            hostile::external_initializer,
            "initializer 'w'",
        ),
        (
            "Constant node",
            hostile::external_constant_node,
            "attribute 'value'",
        ),
        (
            "If subgraph",
            hostile::external_in_if_subgraph,
            "subgraph of node",
        ),
        (
            "sparse initializer",
            hostile::external_sparse_initializer,
            "sparse initializer 0",
        ),
        (
            "function",
            hostile::external_in_function,
            "function 'AddSecret'",
        ),
        (
            "training info",
            hostile::external_in_training_info,
            "training info 0",
        ),
    ];
    for (what, make, place) in places {
        for location in LOCATIONS {
            let err = refused(&make(location));
            assert_eq!(
                err.code(),
                "model-external-data",
                "{what} {location}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains(place), "{what}: {message}");
            assert!(
                message.contains(&format!("{location:?}")),
                "{what}: {message}"
            );
            assert!(message.contains("model.onnx"), "{message}");
        }
    }
}

#[test]
fn external_data_without_a_location_or_only_flagged_is_refused() {
    // data_location EXTERNAL with no entries, and entries without the flag.
    let mut only_flag = hostile::external_tensor("w", "x");
    only_flag.external_data.clear();
    let mut only_entries = hostile::external_tensor("w", "x");
    only_entries.data_location = 0;
    for tensor in [only_flag, only_entries] {
        let bytes = onnx_build::GraphBuilder::nchw_rgb("m")
            .initializer(tensor)
            .node("Add", &["input1", "w"], &["output1"], vec![])
            .to_bytes();
        assert_eq!(refused(&bytes).code(), "model-external-data");
    }
}

#[test]
fn an_operator_model_may_keep_external_data() {
    let bytes = hostile::external_initializer("weights.bin");
    let model = inspect_model(
        &bytes,
        "style.onnx",
        Origin::Operator,
        &ModelBudget::default(),
    )
    .expect("an operator's model may keep its weights beside it");
    assert_eq!(model.input_name, "input1");
}

#[test]
fn constant_folding_bombs_are_refused_from_a_few_hundred_bytes() {
    let bombs: [(&str, Vec<u8>); 8] = [
        ("ConstantOfShape", hostile::constant_of_shape_bomb(65536)),
        ("Expand", hostile::expand_bomb(65536)),
        ("Tile", hostile::tile_bomb(65536)),
        ("Range", hostile::range_bomb(1 << 30)),
        ("Pad", hostile::pad_bomb(30000)),
        ("Resize", hostile::resize_bomb(65536)),
        ("outer product", hostile::outer_product_bomb(1 << 16)),
        ("Shape of Relu", hostile::shape_bomb(16384, "Relu")),
    ];
    for (what, bytes) in bombs {
        assert!(bytes.len() < 600, "{what}: {} bytes", bytes.len());
        let err = refused(&bytes);
        assert_eq!(err.code(), "model-too-complex", "{what}: {err}");
        assert!(err.to_string().contains("elements"), "{what}: {err}");
    }
    // The same graphs with small sizes are fine: the estimate is not a blanket refusal.
    for (what, bytes) in [
        ("ConstantOfShape", hostile::constant_of_shape_bomb(16)),
        ("Expand", hostile::expand_bomb(16)),
        ("Tile", hostile::tile_bomb(16)),
        ("Range", hostile::range_bomb(100)),
        ("Pad", hostile::pad_bomb(3)),
        ("Resize", hostile::resize_bomb(16)),
        ("outer product", hostile::outer_product_bomb(16)),
        ("Shape of Relu", hostile::shape_bomb(64, "Relu")),
    ] {
        submitted(&bytes).unwrap_or_else(|e| panic!("{what} small: {e}"));
    }
}

#[test]
fn a_constant_whose_size_cannot_be_bounded_is_refused() {
    // OneHot of constants: an operator the estimate does not size.
    let bytes = onnx_build::GraphBuilder::nchw_rgb("m")
        .initializer(onnx_build::tensor_i64("i", &[1], &[0]))
        .initializer(onnx_build::tensor_i64("depth", &[], &[1 << 40]))
        .initializer(onnx_build::tensor_f32("v", &[2], &[0.0, 1.0]))
        .node("OneHot", &["i", "depth", "v"], &["bomb"], vec![])
        .node(
            "ReduceMax",
            &["bomb"],
            &["w"],
            vec![onnx_build::attr_int("keepdims", 0)],
        )
        .node("Add", &["input1", "w"], &["output1"], vec![])
        .to_bytes();
    let err = refused(&bytes);
    assert_eq!(err.code(), "model-too-complex");
    assert!(err.to_string().contains("cannot be bounded"), "{err}");
}

#[test]
fn a_declared_input_shape_cannot_feed_a_bomb() {
    use onnx_build::Dim::Fixed;
    let shape = [Fixed(1), Fixed(3), Fixed(1 << 20), Fixed(1 << 20)];
    let bytes = onnx_build::GraphBuilder::new("m")
        .input("input1", &shape)
        .output("output1", &shape)
        .node("Identity", &["input1"], &["output1"], vec![])
        .to_bytes();
    let err = refused(&bytes);
    assert_eq!(err.code(), "model-too-complex");
    assert!(err.to_string().contains("input 'input1' declares"), "{err}");
}

#[test]
fn graphs_over_the_node_budget_are_refused() {
    let budget = ModelBudget {
        max_nodes: 1000,
        ..ModelBudget::default()
    };
    let check = |nodes| inspect_model(&hostile::long_chain(nodes), "m", Origin::Submitted, &budget);
    check(1000).expect("at the budget");
    for nodes in [1001, 5000] {
        let err = check(nodes).unwrap_err();
        assert_eq!(err.code(), "model-too-complex");
        assert!(err.to_string().contains("more than 1000 nodes"), "{err}");
    }
    // The default budget holds with subgraphs counted: 20001 nodes are refused.
    assert_eq!(
        refused(&hostile::long_chain(20_001)).code(),
        "model-too-complex"
    );
}

#[test]
fn files_over_the_size_budget_are_refused() {
    let budget = ModelBudget {
        max_bytes: 100,
        ..ModelBudget::default()
    };
    let err = inspect_model(&hostile::long_chain(10), "m", Origin::Submitted, &budget).unwrap_err();
    assert_eq!(err.code(), "model-too-large");
}

#[test]
fn broken_protobufs_are_refused_as_not_onnx() {
    let good = onnx_build::vintage_filter_model();
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        (
            "garbage",
            b"\xff\xff\xff\xff not a protobuf at all".to_vec(),
        ),
        ("text", b"ir_version: 8\ngraph { }".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("cut by one byte", good[..good.len() - 1].to_vec()),
    ];
    for (what, bytes) in cases {
        let err = refused(&bytes);
        assert_eq!(err.code(), "model-not-onnx", "{what}: {err}");
    }
}

#[test]
fn opsets_outside_the_range_are_refused() {
    for version in [1, 6, 99] {
        let mut model = onnx_build::GraphBuilder::nchw_rgb("m")
            .node("Identity", &["input1"], &["output1"], vec![])
            .build();
        model.opset_import[0].version = version;
        let bytes = prost::Message::encode_to_vec(&model);
        let err = refused(&bytes);
        assert_eq!(err.code(), "model-opset-not-supported", "{version}: {err}");
    }
}

#[test]
fn models_that_are_not_image_to_image_are_refused() {
    for bytes in [onnx_build::rank2_model(), onnx_build::one_channel_model()] {
        assert_eq!(refused(&bytes).code(), "model-not-image");
    }
}

#[test]
fn the_built_in_and_real_models_pass_with_no_session() {
    let before = fresco_infer::engine::sessions_built();
    for bytes in [
        onnx_build::vintage_filter_model(),
        onnx_build::identity_model(),
        onnx_build::identity_nhwc_unit_range_model(),
    ] {
        submitted(&bytes).expect("a built-in model passes");
    }
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").map(PathBuf::from) else {
        println!("skipping the real models: FRESCO_MODEL_DIR is not set");
        return;
    };
    let mut checked = 0;
    for name in ["candy", "mosaic", "pointilism", "rain-princess", "udnie"] {
        let Ok(bytes) = std::fs::read(dir.join(format!("{name}.onnx"))) else {
            continue;
        };
        let model = submitted(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(model.nodes > 10, "{name}: {model:?}");
        checked += 1;
    }
    println!("{checked} real style models passed");
    assert_eq!(fresco_infer::engine::sessions_built(), before);
}

/// The inspector's own cost is bounded: 20,000 nodes in reversed order (each waits for the
/// next), all folded constants, and 2,000 empty `If` subgraphs under 2,000 initializers.
#[test]
fn hostile_graphs_are_checked_in_linear_time() {
    let nodes = 19_000;
    let mut g = onnx_build::GraphBuilder::nchw_rgb("slow").initializer(onnx_build::tensor_f32(
        "c0",
        &[1],
        &[1.0],
    ));
    for i in (0..nodes).rev() {
        let (from, to) = (format!("c{i}"), format!("c{}", i + 1));
        g = g.node("Neg", &[&from], &[&to], vec![]);
    }
    let last = format!("c{nodes}");
    let bytes = g
        .node("Add", &["input1", &last], &["output1"], vec![])
        .to_bytes();
    let started = std::time::Instant::now();
    submitted(&bytes).expect("a long constant chain is fine");
    let chain = started.elapsed();

    let mut model = onnx_build::GraphBuilder::nchw_rgb("wide")
        .node("Identity", &["input1"], &["output1"], vec![])
        .build();
    let graph = model.graph.as_mut().unwrap();
    for i in 0..2000 {
        graph
            .initializer
            .push(onnx_build::tensor_f32(&format!("w{i}"), &[1], &[0.0]));
    }
    let empty = prost::Message::encode_to_vec(&onnx_build::GraphProto::default());
    for i in 0..2000 {
        let branch = |name: &str| onnx_build::AttributeProto {
            name: name.into(),
            r#type: 5,
            g: Some(empty.clone()),
            ..Default::default()
        };
        graph.node.push(onnx_build::NodeProto {
            op_type: "If".into(),
            input: vec!["w0".into()],
            output: vec![format!("if{i}")],
            attribute: vec![branch("then_branch"), branch("else_branch")],
            ..Default::default()
        });
    }
    let bytes = prost::Message::encode_to_vec(&model);
    let started = std::time::Instant::now();
    submitted(&bytes).expect("empty subgraphs are fine");
    let wide = started.elapsed();
    assert!(
        chain.as_secs() < 5 && wide.as_secs() < 5,
        "chain {chain:?}, wide {wide:?}"
    );
    // Subgraphs count toward the node budget.
    let budget = ModelBudget {
        max_nodes: 3000,
        ..ModelBudget::default()
    };
    let err = inspect_model(&bytes, "m", Origin::Submitted, &budget).unwrap_err();
    assert_eq!(err.code(), "model-too-complex");
}

/// Real exported detection and classification models (`FRESCO_MODEL_DIR/scoring`: shape
/// arithmetic, Resize, Concat...) are refused only for not being image-to-image: the folded
/// constant estimate does not mistake their graphs for bombs.
#[test]
fn real_graphs_are_not_mistaken_for_bombs() {
    let Some(dir) = std::env::var_os("FRESCO_MODEL_DIR").map(PathBuf::from) else {
        println!("skipping: FRESCO_MODEL_DIR is not set");
        return;
    };
    let mut checked = 0;
    for name in [
        "yolov3-tiny-416",
        "efficientnet-lite0",
        "blazeface-front-128",
    ] {
        let Ok(bytes) = std::fs::read(dir.join("scoring").join(format!("{name}.onnx"))) else {
            continue;
        };
        match submitted(&bytes) {
            Err(e) => assert_eq!(e.code(), "model-not-image", "{name}: {e}"),
            Ok(model) => panic!("{name} passed as an image model: {model:?}"),
        }
        checked += 1;
    }
    println!("{checked} scoring models checked");
}
