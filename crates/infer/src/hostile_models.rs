//! Hostile ONNX models made in code, for the tests of every crate that must refuse them (the
//! static inspector here, the server's job factory, the worker): models whose tensors name
//! external files in each place ONNX allows it, constant-folding bombs of a few hundred bytes,
//! and oversized graphs. Each is otherwise a valid image-to-image model (`[N,3,H,W]` in and
//! out, like [`crate::onnx_build::identity_model`]), so that only the hostile part refuses it.

use prost::Message;

use crate::onnx_build::{
    attr_int, attr_ints, tensor_f32, tensor_i64, GraphBuilder, INPUT_NAME, OUTPUT_NAME,
};
use crate::onnx_proto::{
    AttributeProto, FunctionProto, GraphProto, NodeProto, SparseTensorProto,
    StringStringEntryProto, TensorProto, TrainingInfoProto, ATTR_TENSOR, LOCATION_EXTERNAL,
};

/// A float tensor `name` of 3 elements whose data is in the file `location` (as `onnx` saves
/// it: `data_location` EXTERNAL and a `location` entry).
pub fn external_tensor(name: &str, location: &str) -> TensorProto {
    let entry = |key: &str, value: &str| {
        StringStringEntryProto {
            key: key.into(),
            value: value.into(),
        }
        .encode_to_vec()
    };
    TensorProto {
        name: name.into(),
        dims: vec![3, 1, 1],
        data_type: crate::onnx_proto::DT_FLOAT,
        data_location: LOCATION_EXTERNAL,
        external_data: vec![
            entry("location", location),
            entry("offset", "0"),
            entry("length", "12"),
        ],
        ..TensorProto::default()
    }
}

/// `output1 = input1 + w`, where `w` is added by `with_w`.
fn add_w(with_w: impl FnOnce(GraphBuilder) -> GraphBuilder) -> GraphBuilder {
    with_w(GraphBuilder::nchw_rgb("hostile")).node(
        "Add",
        &[INPUT_NAME, "w"],
        &[OUTPUT_NAME],
        vec![],
    )
}

fn tensor_attr(name: &str, tensor: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ATTR_TENSOR,
        t: Some(tensor),
        ..AttributeProto::default()
    }
}

/// An initializer whose data is the file `location`.
pub fn external_initializer(location: &str) -> Vec<u8> {
    add_w(|g| g.initializer(external_tensor("w", location))).to_bytes()
}

/// A `Constant` node whose `value` is the file `location`.
pub fn external_constant_node(location: &str) -> Vec<u8> {
    GraphBuilder::nchw_rgb("hostile")
        .node(
            "Constant",
            &[],
            &["w"],
            vec![tensor_attr("value", external_tensor("c", location))],
        )
        .node("Add", &[INPUT_NAME, "w"], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// An `If` whose `then_branch` holds a `Constant` with data in the file `location`.
pub fn external_in_if_subgraph(location: &str) -> Vec<u8> {
    let branch = |tensor: TensorProto| GraphProto {
        name: "branch".into(),
        node: vec![NodeProto {
            op_type: "Constant".into(),
            name: "branch_constant".into(),
            output: vec!["w_branch".into()],
            attribute: vec![tensor_attr("value", tensor)],
            ..NodeProto::default()
        }],
        output: vec![crate::onnx_build::float_value_info("w_branch", &[])],
        ..GraphProto::default()
    };
    let graph_attr = |name: &str, graph: GraphProto| AttributeProto {
        name: name.into(),
        r#type: 5,
        g: Some(graph.encode_to_vec()),
        ..AttributeProto::default()
    };
    let inline = tensor_f32("c", &[3, 1, 1], &[0.0; 3]);
    GraphBuilder::nchw_rgb("hostile")
        .initializer(crate::onnx_build::TensorProto {
            data_type: 9,
            raw_data: vec![1],
            ..tensor_f32("cond", &[], &[0.0])
        })
        .node(
            "If",
            &["cond"],
            &["w"],
            vec![
                graph_attr("then_branch", branch(external_tensor("c", location))),
                graph_attr("else_branch", branch(inline)),
            ],
        )
        .node("Add", &[INPUT_NAME, "w"], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// A sparse initializer whose values are the file `location`.
pub fn external_sparse_initializer(location: &str) -> Vec<u8> {
    let sparse = SparseTensorProto {
        values: Some(TensorProto {
            dims: vec![1],
            ..external_tensor("w", location)
        }),
        indices: Some(tensor_i64("w_indices", &[1], &[0])),
        dims: vec![3, 1, 1],
    };
    let mut model = add_w(|g| g).build();
    let graph = model.graph.as_mut().expect("a graph");
    graph.sparse_initializer.push(sparse.encode_to_vec());
    model.encode_to_vec()
}

/// A model-local function whose body holds a `Constant` with data in the file `location`.
pub fn external_in_function(location: &str) -> Vec<u8> {
    let function = FunctionProto {
        name: "AddSecret".into(),
        domain: "fresco.hostile".into(),
        input: vec!["x".into()],
        output: vec!["y".into()],
        node: vec![
            NodeProto {
                op_type: "Constant".into(),
                output: vec!["k".into()],
                attribute: vec![tensor_attr("value", external_tensor("k", location))],
                ..NodeProto::default()
            },
            NodeProto {
                op_type: "Add".into(),
                input: vec!["x".into(), "k".into()],
                output: vec!["y".into()],
                ..NodeProto::default()
            },
        ],
        opset_import: vec![crate::onnx_proto::OperatorSetIdProto {
            domain: String::new(),
            version: crate::onnx_build::OPSET_VERSION,
        }],
        ..FunctionProto::default()
    };
    let mut model = GraphBuilder::nchw_rgb("hostile").build();
    model.graph.as_mut().expect("a graph").node.push(NodeProto {
        op_type: "AddSecret".into(),
        domain: "fresco.hostile".into(),
        input: vec![INPUT_NAME.into()],
        output: vec![OUTPUT_NAME.into()],
        ..NodeProto::default()
    });
    model
        .opset_import
        .push(crate::onnx_proto::OperatorSetIdProto {
            domain: "fresco.hostile".into(),
            version: 1,
        });
    model.functions.push(function.encode_to_vec());
    model.encode_to_vec()
}

/// An identity model with a training graph whose initializer is the file `location`.
pub fn external_in_training_info(location: &str) -> Vec<u8> {
    let info = TrainingInfoProto {
        initialization: Some(GraphProto {
            name: "init".into(),
            initializer: vec![external_tensor("w", location)],
            ..GraphProto::default()
        }),
        algorithm: None,
    };
    let mut model = GraphBuilder::nchw_rgb("hostile")
        .node("Identity", &[INPUT_NAME], &[OUTPUT_NAME], vec![])
        .build();
    model.training_info.push(info.encode_to_vec());
    model.encode_to_vec()
}

/// `output1 = input1 + ReduceMax(bomb)`, where `bomb` is made by `make_bomb` from constants:
/// constant folding materialises it when a session is built.
fn with_bomb(make_bomb: impl FnOnce(GraphBuilder) -> GraphBuilder) -> Vec<u8> {
    make_bomb(GraphBuilder::nchw_rgb("bomb"))
        .node(
            "ReduceMax",
            &["bomb"],
            &["w"],
            vec![attr_int("keepdims", 0)],
        )
        .node("Add", &[INPUT_NAME, "w"], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// `ConstantOfShape([side, side])`: `side`² float32 zeros (65536: 16 GiB) from ~300 bytes.
pub fn constant_of_shape_bomb(side: i64) -> Vec<u8> {
    with_bomb(|g| {
        g.initializer(tensor_i64("shape", &[2], &[side, side]))
            .node(
                "ConstantOfShape",
                &["shape"],
                &["bomb"],
                vec![tensor_attr("value", tensor_f32("v", &[1], &[1.0]))],
            )
    })
}

/// `Expand` of one float to `[side, side]`.
pub fn expand_bomb(side: i64) -> Vec<u8> {
    with_bomb(|g| {
        g.initializer(tensor_f32("one", &[1, 1], &[1.0]))
            .initializer(tensor_i64("shape", &[2], &[side, side]))
            .node("Expand", &["one", "shape"], &["bomb"], vec![])
    })
}

/// `Tile` of a `[1,1]` constant by `[side, side]`, the repeats computed (`Concat` of two
/// `Constant` nodes), in scrambled node order.
pub fn tile_bomb(side: i64) -> Vec<u8> {
    with_bomb(|g| {
        g.initializer(tensor_f32("one", &[1, 1], &[1.0]))
            .node("Tile", &["one", "repeats"], &["bomb"], vec![])
            .node(
                "Concat",
                &["r0", "r1"],
                &["repeats"],
                vec![attr_int("axis", 0)],
            )
            .node(
                "Constant",
                &[],
                &["r0"],
                vec![tensor_attr("value", tensor_i64("a", &[1], &[side]))],
            )
            .node(
                "Constant",
                &[],
                &["r1"],
                vec![attr_ints("value_ints", &[side])],
            )
    })
}

/// `Range(0, count, 1)`.
pub fn range_bomb(count: i64) -> Vec<u8> {
    with_bomb(|g| {
        g.initializer(tensor_f32("start", &[], &[0.0]))
            .initializer(tensor_f32("limit", &[], &[count as f32]))
            .initializer(tensor_f32("delta", &[], &[1.0]))
            .node("Range", &["start", "limit", "delta"], &["bomb"], vec![])
    })
}

/// `Pad` of a `[1,1]` constant by `pad` on each side.
pub fn pad_bomb(pad: i64) -> Vec<u8> {
    with_bomb(|g| {
        g.initializer(tensor_f32("one", &[1, 1], &[1.0]))
            .initializer(tensor_i64("pads", &[4], &[pad, pad, pad, pad]))
            .node("Pad", &["one", "pads"], &["bomb"], vec![])
    })
}

/// `Resize` of a `[1,1,1,1]` constant to `[1,1,side,side]`.
pub fn resize_bomb(side: i64) -> Vec<u8> {
    with_bomb(|g| {
        g.initializer(tensor_f32("one", &[1, 1, 1, 1], &[1.0]))
            .initializer(tensor_i64("sizes", &[4], &[1, 1, side, side]))
            .node("Resize", &["one", "", "", "sizes"], &["bomb"], vec![])
    })
}

/// An outer product: `Range(0, side)` as a column plus itself as a row, `side`² elements.
pub fn outer_product_bomb(side: i64) -> Vec<u8> {
    with_bomb(|g| {
        g.initializer(tensor_f32("start", &[], &[0.0]))
            .initializer(tensor_f32("limit", &[], &[side as f32]))
            .initializer(tensor_f32("delta", &[], &[1.0]))
            .initializer(tensor_i64("col", &[2], &[-1, 1]))
            .initializer(tensor_i64("row", &[2], &[1, -1]))
            .node("Range", &["start", "limit", "delta"], &["r"], vec![])
            .node("Reshape", &["r", "col"], &["c"], vec![])
            .node("Reshape", &["r", "row"], &["rr"], vec![])
            .node("Add", &["c", "rr"], &["bomb"], vec![])
    })
}

/// An identity model that is a chain of `nodes` Identity nodes.
pub fn long_chain(nodes: usize) -> Vec<u8> {
    let mut g = GraphBuilder::nchw_rgb("long");
    let names: Vec<String> = (0..nodes).map(|i| format!("v{i}")).collect();
    for i in 0..nodes {
        let from = if i == 0 {
            INPUT_NAME
        } else {
            names[i - 1].as_str()
        };
        let to = if i + 1 == nodes {
            OUTPUT_NAME
        } else {
            names[i].as_str()
        };
        g = g.node("Identity", &[from], &[to], vec![]);
    }
    g.to_bytes()
}

/// Two `ConstantOfShape(Shape(x'))` (filled with different values, so that they are not merged),
/// where `x'` is the input `[1,3,side,side]` through `through` (e.g. `Relu`, or a 1x1 `Conv`):
/// ONNX Runtime knows that shape when it loads the model, so it folds two constants of
/// `3·side²` floats each (for `side` 9000: 2 x 0.9 GiB, under the 1 GiB that ONNX Runtime
/// 1.32 folds per node) from ~400 bytes.
pub fn shape_bomb(side: i64, through: &str) -> Vec<u8> {
    use crate::onnx_build::Dim::Fixed;
    let shape = [Fixed(1), Fixed(3), Fixed(side), Fixed(side)];
    let mut g = GraphBuilder::new("bomb")
        .input(INPUT_NAME, &shape)
        .output(OUTPUT_NAME, &shape);
    g = match through {
        "Conv" => g
            .initializer(tensor_f32("k", &[3, 3, 1, 1], &[1.0; 9]))
            .node("Conv", &[INPUT_NAME, "k"], &["r"], vec![]),
        op => g.node(op, &[INPUT_NAME], &["r"], vec![]),
    };
    g = g.node("Shape", &["r"], &["s"], vec![]);
    for (branch, fill) in [("a", 1.0), ("b", 2.0)] {
        let (bomb, max) = (format!("bomb_{branch}"), format!("max_{branch}"));
        g = g
            .node(
                "ConstantOfShape",
                &["s"],
                &[&bomb],
                vec![tensor_attr("value", tensor_f32("v", &[1], &[fill]))],
            )
            .node(
                "ReduceMax",
                &[&bomb],
                &[&max],
                vec![attr_int("keepdims", 0)],
            );
    }
    g.node("Add", &["max_a", "max_b"], &["w"], vec![])
        .node("Add", &[INPUT_NAME, "w"], &[OUTPUT_NAME], vec![])
        .to_bytes()
}
