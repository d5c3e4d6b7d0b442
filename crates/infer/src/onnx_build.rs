//! ONNX models made in code, not downloaded: a minimal ONNX protobuf *writer*.
//!
//! These models serve two purposes: test fixtures (identity, wrong-rank, wrong-channel, NHWC
//! and failing models), and the built-in filter [`vintage_filter_model`], which works with no
//! internet connection because nothing has to be fetched.
//!
//! The `onnx.proto` messages are re-exported from the crate's one declaration of them (every
//! field, with the field numbers of the official schema, using `prost`'s derive). Every model
//! built here uses IR version [`IR_VERSION`], opset [`OPSET_VERSION`] of the default domain,
//! and producer name `"fresco"`.
//!
//! The image models share one interface: input `"input1"`, output `"output1"`, float32 NCHW
//! `[N,3,H,W]` with symbolic dims `"N"`, `"H"`, `"W"`, RGB, values 0..255 (like the
//! fast-neural-style models), unless a function's doc says otherwise.

use prost::Message;

/// `ModelProto.ir_version` of every model built here.
pub const IR_VERSION: i64 = 8;
/// Version of the default ONNX operator set imported by every model built here.
pub const OPSET_VERSION: i64 = 13;
/// `ModelProto.producer_name` of every model built here.
pub const PRODUCER_NAME: &str = "fresco";
/// Name of the image input of the models built here.
pub const INPUT_NAME: &str = "input1";
/// Name of the image output of the models built here.
pub const OUTPUT_NAME: &str = "output1";

// The `onnx.proto` messages and constants, shared with the fp16 conversion and the rewrites.
pub use crate::onnx_proto::{
    tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, ATTR_FLOAT, ATTR_FLOATS, ATTR_INT, ATTR_INTS, ATTR_STRING, ATTR_TENSOR,
    DT_FLOAT, DT_FLOAT16, DT_INT64,
};

// ---- builder ----

/// One dimension of a declared input/output shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size, e.g. `"N"`.
    Sym(String),
}

/// Shorthand for [`Dim::Sym`].
pub fn sym(name: &str) -> Dim {
    Dim::Sym(name.to_string())
}

/// A float32 tensor `ValueInfoProto` with the given shape.
pub fn float_value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => Value::DimValue(*v),
                Dim::Sym(s) => Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(type_proto::Tensor {
                elem_type: DT_FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], data_type: i32, len: usize, raw_data: Vec<u8>) -> TensorProto {
    let count: i64 = dims.iter().product();
    assert_eq!(
        count, len as i64,
        "tensor {name}: dims {dims:?} vs {len} values"
    );
    let name = name.to_string();
    TensorProto {
        dims: dims.to_vec(),
        data_type,
        name,
        raw_data,
        ..Default::default()
    }
}

/// A float32 tensor (e.g. an initializer); `dims` empty means a scalar.
pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, dims, DT_FLOAT, data.len(), raw)
}

/// An int64 tensor (e.g. indices or a shape); `dims` empty means a scalar.
pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, dims, DT_INT64, data.len(), raw)
}

fn attr(name: &str, r#type: i32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type,
        ..Default::default()
    }
}

/// An `INT` attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, ATTR_INT)
    }
}

/// An `INTS` attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, ATTR_INTS)
    }
}

/// A `FLOAT` attribute.
pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..attr(name, ATTR_FLOAT)
    }
}

/// A `FLOATS` attribute.
pub fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, ATTR_FLOATS)
    }
}

/// A `STRING` attribute.
pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attr(name, ATTR_STRING)
    }
}

/// Builds a single-graph model: float32 inputs/outputs, initializers and default-domain nodes
/// (which must be added in topological order). Methods chain by value.
#[derive(Clone, Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    metadata: Vec<StringStringEntryProto>,
    doc: String,
}

impl GraphBuilder {
    /// An empty graph with the given name.
    pub fn new(name: &str) -> Self {
        let mut b = Self::default();
        b.graph.name = name.to_string();
        b
    }

    /// The standard image interface `[N,3,H,W]` float: input `"input1"`, output `"output1"`.
    pub fn nchw_rgb(name: &str) -> Self {
        let shape = [sym("N"), Dim::Fixed(3), sym("H"), sym("W")];
        Self::new(name)
            .input(INPUT_NAME, &shape)
            .output(OUTPUT_NAME, &shape)
    }

    /// Declares a float32 graph input.
    pub fn input(mut self, name: &str, dims: &[Dim]) -> Self {
        self.graph.input.push(float_value_info(name, dims));
        self
    }

    /// Declares a float32 graph output.
    pub fn output(mut self, name: &str, dims: &[Dim]) -> Self {
        self.graph.output.push(float_value_info(name, dims));
        self
    }

    /// Adds an initializer (a constant tensor, see [`tensor_f32`], [`tensor_i64`]).
    pub fn initializer(mut self, tensor: TensorProto) -> Self {
        self.graph.initializer.push(tensor);
        self
    }

    /// Adds a float32 initializer.
    pub fn constant_f32(self, name: &str, dims: &[i64], data: &[f32]) -> Self {
        self.initializer(tensor_f32(name, dims, data))
    }

    /// Adds a default-domain node; its name is `<op_type>_<index>`.
    pub fn node(
        mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> Self {
        let index = self.graph.node.len();
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op_type}_{index}"),
            op_type: op_type.to_string(),
            attribute: attributes,
            ..Default::default()
        });
        self
    }

    /// Adds a model-level `metadata_props` entry.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.push(StringStringEntryProto {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the model's `doc_string`.
    pub fn doc(mut self, doc: &str) -> Self {
        self.doc = doc.to_string();
        self
    }

    /// The finished `ModelProto` (IR 8, default-domain opset 13, producer "fresco").
    pub fn build(self) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET_VERSION,
            }],
            producer_name: PRODUCER_NAME.to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            model_version: 1,
            doc_string: self.doc,
            graph: Some(self.graph),
            metadata_props: self.metadata,
            ..Default::default()
        }
    }

    /// The finished model, serialized (the bytes of a `.onnx` file).
    pub fn to_bytes(self) -> Vec<u8> {
        self.build().encode_to_vec()
    }
}

// ---- the models ----

/// Interface of every image model built here: input "input1", output "output1", float32 NCHW
/// `[N,3,H,W]` with symbolic N/H/W dims ("N","H","W"), RGB, values 0..255 (like the
/// fast-neural-style models). Output equals input exactly (one Identity node).
pub fn identity_model() -> Vec<u8> {
    GraphBuilder::nchw_rgb("identity")
        .doc("fresco test model: output = input")
        .node("Identity", &[INPUT_NAME], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// Sepia colour matrix of [`vintage_filter_model`], rows = output R,G,B; columns = input R,G,B.
pub const VINTAGE_SEPIA: [[f32; 3]; 3] = [
    [0.393, 0.769, 0.189],
    [0.349, 0.686, 0.168],
    [0.272, 0.534, 0.131],
];
/// Faded-black lift added per output channel (R,G,B) by [`vintage_filter_model`].
pub const VINTAGE_LIFT: [f32; 3] = [24.0, 14.0, 4.0];
/// Posterize step of [`vintage_filter_model`] (output levels are multiples of it, then clipped).
pub const VINTAGE_STEP: f32 = 32.0;

/// The built-in filter "vintage": a hand-built graph, not learned weights: a 1x1 Conv with a
/// sepia colour matrix ([`VINTAGE_SEPIA`], 0.9 strength, plus a warm lift [`VINTAGE_LIFT`] of
/// the blacks), then posterize (`Floor(x / step) * step`, step [`VINTAGE_STEP`]), then Clip
/// 0..255. Clearly visible on any frame; output same size as input; same interface as
/// [`identity_model`]. Opset 13.
pub fn vintage_filter_model() -> Vec<u8> {
    let weights: Vec<f32> = VINTAGE_SEPIA.iter().flatten().map(|w| w * 0.9).collect();
    GraphBuilder::nchw_rgb("vintage")
        .doc("fresco built-in filter \"vintage\": sepia, posterize, clip")
        .constant_f32("sepia_w", &[3, 3, 1, 1], &weights)
        .constant_f32("sepia_b", &[3], &VINTAGE_LIFT)
        .constant_f32("step", &[], &[VINTAGE_STEP])
        .constant_f32("lo", &[], &[0.0])
        .constant_f32("hi", &[], &[255.0])
        .node(
            "Conv",
            &[INPUT_NAME, "sepia_w", "sepia_b"],
            &["sepia"],
            vec![attr_ints("kernel_shape", &[1, 1])],
        )
        .node("Div", &["sepia", "step"], &["levels"], vec![])
        .node("Floor", &["levels"], &["levels_floor"], vec![])
        .node("Mul", &["levels_floor", "step"], &["posterized"], vec![])
        .node("Clip", &["posterized", "lo", "hi"], &[OUTPUT_NAME], vec![])
        .metadata("fresco.filter", "vintage")
        .to_bytes()
}

/// An image model that is not image-to-image, for error tests: input rank 2 `[N, 3]`
/// (output "output1" the same, via Identity).
pub fn rank2_model() -> Vec<u8> {
    let shape = [sym("N"), Dim::Fixed(3)];
    GraphBuilder::new("rank2")
        .input(INPUT_NAME, &shape)
        .output(OUTPUT_NAME, &shape)
        .node("Identity", &[INPUT_NAME], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// Input with 1 channel `[N,1,H,W]` (valid graph; wrong channel count for an RGB model).
/// Output "output1" `[N,1,H,W]` equals the input.
pub fn one_channel_model() -> Vec<u8> {
    let shape = [sym("N"), Dim::Fixed(1), sym("H"), sym("W")];
    GraphBuilder::new("one_channel")
        .input(INPUT_NAME, &shape)
        .output(OUTPUT_NAME, &shape)
        .node("Identity", &[INPUT_NAME], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// Like identity but input/output layout NHWC `[N,H,W,3]` with metadata_props
/// {"fresco.layout":"nhwc","fresco.input_range":"0-1"} and values 0..1: output = input.
pub fn identity_nhwc_unit_range_model() -> Vec<u8> {
    let shape = [sym("N"), sym("H"), sym("W"), Dim::Fixed(3)];
    GraphBuilder::new("identity_nhwc")
        .input(INPUT_NAME, &shape)
        .output(OUTPUT_NAME, &shape)
        .node("Identity", &[INPUT_NAME], &[OUTPUT_NAME], vec![])
        .metadata("fresco.layout", "nhwc")
        .metadata("fresco.input_range", "0-1")
        .to_bytes()
}

/// For failure injection: a valid model with the standard [`identity_model`] interface that
/// fails at run time on every call (a `Gather` on the channel axis with out-of-range index 5).
pub fn failing_model() -> Vec<u8> {
    GraphBuilder::nchw_rgb("failing")
        .initializer(tensor_i64("bad_index", &[3], &[5, 5, 5]))
        .node(
            "Gather",
            &[INPUT_NAME, "bad_index"],
            &[OUTPUT_NAME],
            vec![attr_int("axis", 1)],
        )
        .to_bytes()
}

/// The fixed input side of [`fixed_grey_model`] and [`fixed_rgb_half_model`]: `[1,3,64,64]`.
pub const FIXED_SIDE: i64 = 64;

/// A mask-like model with a fixed size and one output channel: input `[1,3,64,64]` (or
/// `[1,64,64,3]` with `nhwc`), output `[1,1,64,64]` (`[1,64,64,1]`) = the mean of the three
/// channels plus a ramp across the width, `2 * x` for column `x` (0 at the left, 126 at the
/// right), so that both the values and the geometry of the scaled-back output can be checked.
pub fn fixed_grey_model(nhwc: bool) -> Vec<u8> {
    let n = FIXED_SIDE;
    let ramp: Vec<f32> = (0..n).map(|x| 2.0 * x as f32).collect();
    let (input, output, channel_axis, ramp_dims) = if nhwc {
        ([1, n, n, 3], [1, n, n, 1], 3, [1, 1, n, 1])
    } else {
        ([1, 3, n, n], [1, 1, n, n], 1, [1, 1, 1, n])
    };
    GraphBuilder::new("fixed_grey")
        .input(INPUT_NAME, &input.map(Dim::Fixed))
        .output(OUTPUT_NAME, &output.map(Dim::Fixed))
        .constant_f32("ramp", &ramp_dims, &ramp)
        .node(
            "ReduceMean",
            &[INPUT_NAME],
            &["mean"],
            vec![attr_ints("axes", &[channel_axis]), attr_int("keepdims", 1)],
        )
        .node("Add", &["mean", "ramp"], &[OUTPUT_NAME], vec![])
        .to_bytes()
}

/// A fixed-size model whose RGB output is half its input's size: input `[1,3,64,64]`, output
/// `[1,3,32,32]` = a 2x2 average of the input (the picture, smaller).
pub fn fixed_rgb_half_model() -> Vec<u8> {
    let n = FIXED_SIDE;
    GraphBuilder::new("fixed_rgb_half")
        .input(INPUT_NAME, &[1, 3, n, n].map(Dim::Fixed))
        .output(OUTPUT_NAME, &[1, 3, n / 2, n / 2].map(Dim::Fixed))
        .node(
            "AveragePool",
            &[INPUT_NAME],
            &[OUTPUT_NAME],
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_ints("strides", &[2, 2]),
            ],
        )
        .to_bytes()
}

/// A classifier-shaped model whose output is no image: input `[1,3,64,64]`, output `[1,1000]`
/// (the first 1000 input values, flattened).
pub fn not_image_output_model() -> Vec<u8> {
    let n = FIXED_SIDE;
    GraphBuilder::new("scores")
        .input(INPUT_NAME, &[1, 3, n, n].map(Dim::Fixed))
        .output(OUTPUT_NAME, &[Dim::Fixed(1), Dim::Fixed(1000)])
        .initializer(tensor_i64("starts", &[1], &[0]))
        .initializer(tensor_i64("ends", &[1], &[1000]))
        .initializer(tensor_i64("axes", &[1], &[1]))
        .node(
            "Flatten",
            &[INPUT_NAME],
            &["flat"],
            vec![attr_int("axis", 1)],
        )
        .node(
            "Slice",
            &["flat", "starts", "ends", "axes"],
            &[OUTPUT_NAME],
            vec![],
        )
        .to_bytes()
}

/// A classifier of `classes` classes whatever the picture: input `"input"` `[1,3,32,32]`,
/// output `"logits"` `[1,classes]` holding `0, 1, ..., classes - 1` (a constant).
pub fn constant_classifier_model(classes: i64) -> Vec<u8> {
    let values: Vec<f32> = (0..classes).map(|c| c as f32).collect();
    GraphBuilder::new("constants")
        .input(
            "input",
            &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(32), Dim::Fixed(32)],
        )
        .initializer(tensor_f32("logits_value", &[1, classes], &values))
        .output("logits", &[Dim::Fixed(1), Dim::Fixed(classes)])
        .node("Identity", &["logits_value"], &["logits"], vec![])
        .to_bytes()
}

/// The input side of [`pixel_classifier_model`].
pub const PIXEL_CLASSIFIER_SIDE: i64 = 16;

/// A classifier whose scores depend on every pixel, for batching tests: input `"input"`
/// `[batch,3,16,16]` (`batch` `None`: symbolic, `"N"`), output `"logits"` `[batch,classes]`,
/// the flattened picture times a fixed matrix of weights (a pattern in -0.5..0.5), so that
/// different pictures get different scores and top classes.
pub fn pixel_classifier_model(batch: Option<i64>, classes: i64) -> Vec<u8> {
    let side = PIXEL_CLASSIFIER_SIDE;
    let values = 3 * side * side;
    let weights: Vec<f32> = (0..values * classes)
        .map(|i| ((i * 7919) % 101) as f32 / 100.0 - 0.5)
        .collect();
    let n = match batch {
        Some(b) => Dim::Fixed(b),
        None => sym("N"),
    };
    GraphBuilder::new("pixels")
        .input(
            "input",
            &[n.clone(), Dim::Fixed(3), Dim::Fixed(side), Dim::Fixed(side)],
        )
        .output("logits", &[n, Dim::Fixed(classes)])
        .initializer(tensor_f32("weights", &[values, classes], &weights))
        .node("Flatten", &["input"], &["flat"], vec![attr_int("axis", 1)])
        .node("MatMul", &["flat", "weights"], &["logits"], vec![])
        .to_bytes()
}
