//! Half-precision models: [`to_fp16`] rewrites an fp32 ONNX model so that its weights and its
//! computation are float16, while its graph inputs and outputs stay float32 (a `Cast` node at
//! each boundary), so callers still feed and read `f32` tensors.
//!
//! What is converted:
//! - float32 initializers, and the `value` tensors of `Constant` / `ConstantOfShape` nodes,
//!   become float16 (rounded to nearest, ties to even; magnitudes above 65504 are clamped to
//!   ±65504 and counted in [`Fp16Report::clamped`]);
//! - `Cast` nodes inside the graph that cast *to* float32 cast to float16 instead;
//! - every float32 `value_info` inside the graph is declared float16;
//! - a float32 graph input `x` gets `Cast(x) -> x__fp16` and its consumers read `x__fp16`;
//!   a float32 graph output `y` is produced as `y__fp16` and cast back to float32 as `y`.
//!
//! Inputs that ONNX requires to be float32 whatever the data type (`scales` and `roi` of
//! `Resize`, `scales` of `Upsample`) stay float32: a constant stays as it is (a float16 copy is
//! added if it also feeds other nodes), a computed value is cast back to float32.
//!
//! [`to_fp16_weights_only`] is the same rounding of the weights with the computation kept in
//! float32 (each converted weight is cast back to float32 where it is used); it isolates the
//! loss that comes from storing the weights in half precision.
//!
//! The protobuf messages are the crate's one declaration of `onnx.proto` (`crate::onnx_proto`,
//! re-exported by [`crate::onnx_build`]), which declares every field of the messages involved,
//! so that decoding and re-encoding loses no part of a real model.
//! Models with functions, subgraphs (`If`, `Loop`, `Scan`), external data or sparse
//! initializers are refused with a [`Fp16Error`], not half-converted.

use std::collections::{HashMap, HashSet};

use half::f16;
use prost::Message;

use crate::onnx_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, ATTR_INT,
};
pub use crate::onnx_proto::{DT_FLOAT, DT_FLOAT16};

// The type lives with the job's other settings, so that a job's spec can pin it.
pub use fresco_core::{Precision, UnknownPrecision};

/// Why fp16 was refused for a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--precision fp16 needs --device cuda[:N]: on the CPU, ONNX Runtime computes an fp16 model \
     in fp32 (it casts around the operators that lack fp16 CPU kernels), so it would be fp32 \
     arithmetic with no speed-up; use --precision fp32 on the CPU"
)]
pub struct Fp16NeedsCuda;

/// Refuses fp16 on the CPU (see [`Fp16NeedsCuda`]); fp32 runs anywhere.
pub fn check_device(
    precision: Precision,
    device: fresco_core::Device,
) -> Result<(), Fp16NeedsCuda> {
    match (precision, device) {
        (Precision::Fp16, fresco_core::Device::Cpu) => Err(Fp16NeedsCuda),
        _ => Ok(()),
    }
}

/// Why a model could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum Fp16Error {
    #[error("not a valid ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the ONNX model has no graph")]
    NoGraph,
    #[error("fp16 conversion does not support {0}")]
    Unsupported(String),
    #[error("tensor {name:?}: {reason}")]
    BadTensor { name: String, reason: String },
}

/// What [`to_fp16`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fp16Report {
    /// Float tensors (initializers and constants) stored as float16.
    pub converted_tensors: usize,
    /// Float32 tensors left as they are because an operator needs float32 there.
    pub kept_fp32_tensors: usize,
    /// Bytes of the converted tensors' data before and after.
    pub bytes_before: usize,
    pub bytes_after: usize,
    /// Values whose magnitude exceeded the float16 range and were clamped to ±65504.
    pub clamped: usize,
    /// `Cast` nodes added at the graph's boundary and before float32-only inputs.
    pub casts_added: usize,
}

/// Converts an fp32 ONNX model to fp16 compute with float32 inputs and outputs.
pub fn to_fp16(model: &[u8]) -> Result<(Vec<u8>, Fp16Report), Fp16Error> {
    convert(model, Mode::Full)
}

/// Rounds the model's float weights to float16 but keeps the computation in float32 (each
/// rounded weight is cast back where it is used). Measures the weight-precision loss alone.
pub fn to_fp16_weights_only(model: &[u8]) -> Result<(Vec<u8>, Fp16Report), Fp16Error> {
    convert(model, Mode::WeightsOnly)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    WeightsOnly,
}

/// Node inputs that ONNX types as float32 whatever the data type: (op, input index).
const FP32_ONLY_INPUTS: &[(&str, usize)] = &[("Resize", 1), ("Resize", 2), ("Upsample", 1)];

fn needs_fp32(op: &str, index: usize) -> bool {
    FP32_ONLY_INPUTS.contains(&(op, index))
}

fn convert(bytes: &[u8], mode: Mode) -> Result<(Vec<u8>, Fp16Report), Fp16Error> {
    let mut model = ModelProto::decode(bytes)?;
    if !model.functions.is_empty() {
        return Err(Fp16Error::Unsupported("models with functions".into()));
    }
    if !model.training_info.is_empty() {
        return Err(Fp16Error::Unsupported("models with training info".into()));
    }
    let graph = model.graph.as_mut().ok_or(Fp16Error::NoGraph)?;
    check_supported(graph)?;
    let mut report = Fp16Report::default();
    let mut names = Names::new(graph);

    // Which values feed float32-only inputs, and which feed anything else.
    let mut fp32_uses: HashSet<String> = HashSet::new();
    let mut other_uses: HashSet<String> = HashSet::new();
    for node in &graph.node {
        for (i, input) in node.input.iter().enumerate() {
            if input.is_empty() {
                continue;
            }
            if needs_fp32(&node.op_type, i) {
                fp32_uses.insert(input.clone());
            } else {
                other_uses.insert(input.clone());
            }
        }
    }

    let mut prologue: Vec<NodeProto> = Vec::new();
    let mut extra_inits: Vec<TensorProto> = Vec::new();
    // name -> name to read instead, for uses other than float32-only inputs.
    let mut rename: HashMap<String, String> = HashMap::new();

    // Initializers.
    for tensor in &mut graph.initializer {
        if tensor.data_type != DT_FLOAT {
            continue;
        }
        let name = tensor.name.clone();
        match mode {
            Mode::Full => {
                if fp32_uses.contains(&name) {
                    report.kept_fp32_tensors += 1;
                    if other_uses.contains(&name) {
                        let mut copy = tensor.clone();
                        copy.name = names.fresh(&format!("{name}__fp16"));
                        half_tensor(&mut copy, &mut report)?;
                        rename.insert(name, copy.name.clone());
                        extra_inits.push(copy);
                    }
                } else {
                    half_tensor(tensor, &mut report)?;
                }
            }
            Mode::WeightsOnly => {
                if fp32_uses.contains(&name) {
                    report.kept_fp32_tensors += 1;
                    continue;
                }
                half_tensor(tensor, &mut report)?;
                let back = names.fresh(&format!("{name}__fp32"));
                prologue.push(cast_node(&name, &back, DT_FLOAT, &mut names));
                report.casts_added += 1;
                rename.insert(name, back);
            }
        }
    }

    // Nodes: constants, casts to float.
    let mut cast_after: Vec<(usize, String, String)> = Vec::new();
    for (index, node) in graph.node.iter_mut().enumerate() {
        let is_domain_default = node.domain.is_empty() || node.domain == "ai.onnx";
        if !is_domain_default {
            continue;
        }
        match node.op_type.as_str() {
            "Constant" | "ConstantOfShape" => {
                let Some(out) = node.output.first().cloned() else {
                    continue;
                };
                let Some(attr) = node.attribute.iter_mut().find(|a| a.name == "value") else {
                    continue;
                };
                let Some(t) = attr.t.as_mut() else { continue };
                if t.data_type != DT_FLOAT {
                    continue;
                }
                if mode == Mode::Full && fp32_uses.contains(&out) {
                    report.kept_fp32_tensors += 1;
                    if other_uses.contains(&out) {
                        let half_name = names.fresh(&format!("{out}__fp16"));
                        cast_after.push((index, out.clone(), half_name.clone()));
                        rename.insert(out, half_name);
                    }
                    continue;
                }
                half_tensor(t, &mut report)?;
                if mode == Mode::WeightsOnly {
                    let back = names.fresh(&format!("{out}__fp32"));
                    cast_after.push((index, out.clone(), back.clone()));
                    rename.insert(out, back);
                }
            }
            "Cast" if mode == Mode::Full => {
                for attr in node.attribute.iter_mut() {
                    if attr.name == "to" && attr.i == Some(DT_FLOAT as i64) {
                        attr.i = Some(DT_FLOAT16 as i64);
                    }
                }
            }
            _ => {}
        }
    }

    // Graph inputs and outputs stay float32 (only the full conversion changes compute).
    let mut epilogue: Vec<NodeProto> = Vec::new();
    if mode == Mode::Full {
        let initializer_names: HashSet<String> =
            graph.initializer.iter().map(|t| t.name.clone()).collect();
        for input in &graph.input {
            if initializer_names.contains(&input.name) || elem_type(input) != Some(DT_FLOAT) {
                continue;
            }
            let half_name = names.fresh(&format!("{}__fp16", input.name));
            prologue.push(cast_node(&input.name, &half_name, DT_FLOAT16, &mut names));
            report.casts_added += 1;
            rename.insert(input.name.clone(), half_name);
        }
        for output in &graph.output {
            if elem_type(output) != Some(DT_FLOAT) {
                continue;
            }
            let half_name = names.fresh(&format!("{}__fp16", output.name));
            for node in graph.node.iter_mut() {
                for o in node.output.iter_mut() {
                    if *o == output.name {
                        *o = half_name.clone();
                    }
                }
                for i in node.input.iter_mut() {
                    if *i == output.name {
                        *i = half_name.clone();
                    }
                }
            }
            epilogue.push(cast_node(&half_name, &output.name, DT_FLOAT, &mut names));
            report.casts_added += 1;
        }
        for vi in graph.value_info.iter_mut() {
            set_elem_type(vi, DT_FLOAT, DT_FLOAT16);
        }
    }

    // Rewire consumers, adding casts to float32 before float32-only inputs that are computed.
    let kept_constants: HashSet<String> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == DT_FLOAT)
        .map(|t| t.name.clone())
        .chain(
            graph
                .node
                .iter()
                .filter(|n| n.op_type == "Constant")
                .filter(|n| {
                    n.attribute
                        .iter()
                        .any(|a| a.t.as_ref().is_some_and(|t| t.data_type == DT_FLOAT))
                })
                .flat_map(|n| n.output.clone()),
        )
        .collect();
    let graph_inputs: HashSet<String> = graph.input.iter().map(|v| v.name.clone()).collect();
    let mut nodes: Vec<NodeProto> = Vec::with_capacity(graph.node.len() + prologue.len() + 4);
    nodes.append(&mut prologue);
    let mut fp32_casts: HashMap<String, String> = HashMap::new();
    let old_nodes = std::mem::take(&mut graph.node);
    for (index, mut node) in old_nodes.into_iter().enumerate() {
        let op = node.op_type.clone();
        let mut before: Vec<NodeProto> = Vec::new();
        for (i, input) in node.input.iter_mut().enumerate() {
            if input.is_empty() {
                continue;
            }
            if needs_fp32(&op, i) {
                let is_fp32_already = kept_constants.contains(input.as_str())
                    || graph_inputs.contains(input.as_str());
                if mode == Mode::Full && !is_fp32_already {
                    let src = rename.get(input.as_str()).cloned().unwrap_or(input.clone());
                    let cast = match fp32_casts.get(&src) {
                        Some(c) => c.clone(),
                        None => {
                            let c = names.fresh(&format!("{src}__fp32"));
                            before.push(cast_node(&src, &c, DT_FLOAT, &mut names));
                            report.casts_added += 1;
                            fp32_casts.insert(src, c.clone());
                            c
                        }
                    };
                    *input = cast;
                }
                continue;
            }
            if let Some(new) = rename.get(input.as_str()) {
                *input = new.clone();
            }
        }
        nodes.append(&mut before);
        nodes.push(node);
        for (_, from, to) in cast_after.iter().filter(|(i, _, _)| *i == index) {
            let target = if mode == Mode::Full {
                DT_FLOAT16
            } else {
                DT_FLOAT
            };
            nodes.push(cast_node(from, to, target, &mut names));
            report.casts_added += 1;
        }
    }
    nodes.append(&mut epilogue);
    graph.node = nodes;
    graph.initializer.append(&mut extra_inits);
    Ok((model.encode_to_vec(), report))
}

fn check_supported(graph: &GraphProto) -> Result<(), Fp16Error> {
    if !graph.sparse_initializer.is_empty() {
        return Err(Fp16Error::Unsupported("sparse initializers".into()));
    }
    for tensor in &graph.initializer {
        if tensor.data_location == 1 || !tensor.external_data.is_empty() {
            return Err(Fp16Error::Unsupported(format!(
                "external tensor data (initializer {:?})",
                tensor.name
            )));
        }
    }
    for node in &graph.node {
        if node
            .attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
        {
            return Err(Fp16Error::Unsupported(format!(
                "subgraphs (node {:?}, op {})",
                node.name, node.op_type
            )));
        }
    }
    Ok(())
}

/// Rewrites a float32 tensor's data as float16 `raw_data`.
fn half_tensor(t: &mut TensorProto, report: &mut Fp16Report) -> Result<(), Fp16Error> {
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return Err(Fp16Error::BadTensor {
                name: t.name.clone(),
                reason: format!(
                    "{} raw bytes is not a whole number of floats",
                    t.raw_data.len()
                ),
            });
        }
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        std::mem::take(&mut t.float_data)
    };
    let count: i64 = t.dims.iter().product();
    if count != values.len() as i64 {
        return Err(Fp16Error::BadTensor {
            name: t.name.clone(),
            reason: format!("dims {:?} but {} values", t.dims, values.len()),
        });
    }
    report.bytes_before += values.len() * 4;
    let mut raw = Vec::with_capacity(values.len() * 2);
    for v in values {
        let clamped = if v.is_finite() && v.abs() > f16::MAX.to_f32() {
            report.clamped += 1;
            v.signum() * f16::MAX.to_f32()
        } else {
            v
        };
        raw.extend_from_slice(&f16::from_f32(clamped).to_le_bytes());
    }
    report.bytes_after += raw.len();
    report.converted_tensors += 1;
    t.raw_data = raw;
    t.float_data.clear();
    t.data_type = DT_FLOAT16;
    Ok(())
}

fn cast_node(from: &str, to: &str, elem: i32, names: &mut Names) -> NodeProto {
    NodeProto {
        input: vec![from.to_string()],
        output: vec![to.to_string()],
        name: names.fresh(&format!("{to}__cast")),
        op_type: "Cast".into(),
        attribute: vec![AttributeProto {
            name: "to".into(),
            r#type: ATTR_INT,
            i: Some(elem as i64),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn elem_type(vi: &ValueInfoProto) -> Option<i32> {
    vi.r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .map(|t| t.elem_type)
}

fn set_elem_type(vi: &mut ValueInfoProto, from: i32, to: i32) {
    if let Some(t) = vi.r#type.as_mut().and_then(|t| t.tensor_type.as_mut()) {
        if t.elem_type == from {
            t.elem_type = to;
        }
    }
}

/// Fresh value and node names that do not clash with the model's.
struct Names {
    used: HashSet<String>,
}

impl Names {
    fn new(graph: &GraphProto) -> Self {
        let mut used = HashSet::new();
        for n in &graph.node {
            used.extend(n.input.iter().cloned());
            used.extend(n.output.iter().cloned());
            used.insert(n.name.clone());
        }
        used.extend(graph.initializer.iter().map(|t| t.name.clone()));
        used.extend(graph.input.iter().map(|v| v.name.clone()));
        used.extend(graph.output.iter().map(|v| v.name.clone()));
        used.extend(graph.value_info.iter().map(|v| v.name.clone()));
        Names { used }
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        name
    }
}

/// Data types of a model's initializers (name, `TensorProto.DataType`, data bytes), for checks.
pub fn initializer_types(model: &[u8]) -> Result<Vec<(String, i32, usize)>, Fp16Error> {
    let model = ModelProto::decode(model)?;
    let graph = model.graph.ok_or(Fp16Error::NoGraph)?;
    Ok(graph
        .initializer
        .iter()
        .map(|t| {
            let bytes = if t.raw_data.is_empty() {
                t.float_data.len() * 4
            } else {
                t.raw_data.len()
            };
            (t.name.clone(), t.data_type, bytes)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::{type_proto, OperatorSetIdProto, TypeProto, ATTR_TENSOR};

    fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DT_FLOAT,
            float_data: values.to_vec(),
            ..Default::default()
        }
    }

    fn node(
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op}_{}", outputs[0]),
            op_type: op.into(),
            attribute,
            ..Default::default()
        }
    }

    fn value_info(name: &str, elem_type: i32) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(type_proto::Tensor {
                    elem_type,
                    shape: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn opset(version: i64) -> OperatorSetIdProto {
        OperatorSetIdProto {
            domain: String::new(),
            version,
        }
    }

    fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: ATTR_TENSOR,
            t: Some(t),
            ..Default::default()
        }
    }

    /// x -> Mul(x, Constant c) -> Cast(to float) -> Resize(scales: Constant sc, also added to
    /// the output via Add) -> y, with a float value_info and a doc string to keep.
    fn model() -> Vec<u8> {
        let graph = GraphProto {
            name: "g".into(),
            doc_string: "kept".into(),
            input: vec![value_info("x", DT_FLOAT)],
            output: vec![value_info("y", DT_FLOAT)],
            value_info: vec![value_info("m", DT_FLOAT)],
            node: vec![
                node(
                    "Constant",
                    &[],
                    &["c"],
                    vec![tensor_attr("value", float_tensor("c", &[], &[2.0]))],
                ),
                node(
                    "Constant",
                    &[],
                    &["sc"],
                    vec![tensor_attr(
                        "value",
                        float_tensor("sc", &[4], &[1.0, 1.0, 2.0, 2.0]),
                    )],
                ),
                node("Mul", &["x", "c"], &["m"], vec![]),
                node(
                    "Cast",
                    &["m"],
                    &["mc"],
                    vec![AttributeProto {
                        name: "to".into(),
                        r#type: ATTR_INT,
                        i: Some(1),
                        ..Default::default()
                    }],
                ),
                node("Resize", &["mc", "", "sc"], &["r"], vec![]),
                node("Add", &["r", "sc"], &["y"], vec![]),
            ],
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![opset(13)],
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn constants_casts_value_info_and_fp32_only_inputs() {
        let (bytes, report) = to_fp16(&model()).unwrap();
        let m = ModelProto::decode(&bytes[..]).unwrap();
        assert_eq!(m.opset_import, vec![opset(13)], "opset kept");
        let g = m.graph.unwrap();
        assert_eq!(g.doc_string, "kept");
        assert_eq!(elem_type(&g.value_info[0]), Some(DT_FLOAT16));
        assert_eq!(elem_type(&g.input[0]), Some(DT_FLOAT));
        assert_eq!(elem_type(&g.output[0]), Some(DT_FLOAT));
        let by_out = |name: &str| g.node.iter().find(|n| n.output[0] == name).unwrap().clone();
        // The scalar constant is float16; the scales constant stays float32 for Resize and a
        // float16 copy (a Cast) feeds the Add.
        let c = by_out("c");
        assert_eq!(c.attribute[0].t.as_ref().unwrap().data_type, DT_FLOAT16);
        assert_eq!(
            c.attribute[0].t.as_ref().unwrap().raw_data,
            f16::from_f32(2.0).to_le_bytes()
        );
        assert_eq!(
            by_out("sc").attribute[0].t.as_ref().unwrap().data_type,
            DT_FLOAT
        );
        assert_eq!(by_out("r").input[2], "sc");
        let add = by_out("y__fp16");
        assert_eq!(add.input[1], "sc__fp16");
        assert_eq!(by_out("sc__fp16").op_type, "Cast");
        // The inner Cast now casts to float16; the graph's ends are Casts.
        assert_eq!(by_out("mc").attribute[0].i, Some(DT_FLOAT16 as i64));
        assert_eq!(by_out("x__fp16").attribute[0].i, Some(DT_FLOAT16 as i64));
        assert_eq!(by_out("y").attribute[0].i, Some(DT_FLOAT as i64));
        assert_eq!(by_out("m").input, vec!["x__fp16", "c"]);
        assert_eq!(report.converted_tensors, 1);
        assert_eq!(report.kept_fp32_tensors, 1);
        assert_eq!(report.casts_added, 3);
    }

    #[test]
    fn out_of_range_weights_are_clamped_and_counted() {
        let mut t = float_tensor("w", &[3], &[1e6, -1e6, 0.5]);
        let mut report = Fp16Report::default();
        half_tensor(&mut t, &mut report).unwrap();
        assert_eq!(report.clamped, 2);
        assert_eq!(&t.raw_data[0..2], &f16::MAX.to_le_bytes());
        assert_eq!(&t.raw_data[2..4], &f16::MIN.to_le_bytes());
        let mut bad = float_tensor("w", &[4], &[1.0]);
        let err = half_tensor(&mut bad, &mut report).unwrap_err().to_string();
        assert!(err.contains("\"w\"") && err.contains("dims [4]"), "{err}");
    }

    #[test]
    fn subgraphs_are_refused() {
        let mut m = ModelProto::decode(&model()[..]).unwrap();
        m.graph.as_mut().unwrap().node[2]
            .attribute
            .push(AttributeProto {
                name: "then_branch".into(),
                g: Some(vec![]),
                ..Default::default()
            });
        let err = to_fp16(&m.encode_to_vec()).unwrap_err().to_string();
        assert!(err.contains("subgraphs"), "{err}");
    }
}
