//! An ONNX Runtime session for a model of any shape: one float input, every output handed back
//! as `(name, shape, values)`. Scoring that is not image-to-image (classifiers, detectors,
//! embeddings; `fresco-score`) prepares the input tensor itself and decodes the outputs; the
//! session is made exactly like [`crate::Engine`]'s (threads, device, rewrites, fp16).

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::engine::{build_session, EngineError, EngineOptions};
use fresco_core::Device;

/// A declared input or output: its name and shape (`-1` for a symbolic size).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<i64>,
    /// ONNX Runtime's name of the element type (`Float32`, `Int64`, ...).
    pub element: String,
}

/// The model's one input and its outputs as the file declares them, read from the protobuf
/// without ONNX Runtime: a server checks a submitted scoring model's interface this way and
/// never builds a session for bytes a stranger sent (a worker loads them, under limits). A
/// size the file leaves open, or an output whose shape it does not declare, reads as `-1` /
/// no dimensions, as open as the runtime would report it before a call.
pub fn declared_io(
    bytes: &[u8],
    label: &str,
) -> Result<(TensorInfo, Vec<TensorInfo>), EngineError> {
    use crate::onnx_proto::{tensor_shape_proto::dimension::Value, ModelProto, ValueInfoProto};
    use prost::Message;
    let invalid = |reason: String| EngineError::InvalidModel {
        model: label.to_string(),
        reason,
    };
    let model =
        ModelProto::decode(bytes).map_err(|e| invalid(format!("not an ONNX model: {e}")))?;
    let graph = model
        .graph
        .ok_or_else(|| invalid("it has no graph".into()))?;
    let info = |v: &ValueInfoProto| -> Result<TensorInfo, EngineError> {
        let tensor = v
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .ok_or_else(|| invalid(format!("'{}' is not a tensor", v.name)))?;
        let shape = tensor
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(Value::DimValue(n)) if n >= 0 => n,
                        _ => -1,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(TensorInfo {
            name: v.name.clone(),
            shape,
            element: element_name(tensor.elem_type).to_string(),
        })
    };
    let constants: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !constants.contains(i.name.as_str()))
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(invalid(format!(
            "it has {} inputs; scoring feeds exactly one (the frame)",
            inputs.len()
        )));
    };
    let input = info(input)?;
    if input.element != "Float32" {
        return Err(invalid(format!(
            "input '{}' has element type {}, expected Float32",
            input.name, input.element
        )));
    }
    let outputs = graph
        .output
        .iter()
        .map(info)
        .collect::<Result<Vec<_>, _>>()?;
    if outputs.is_empty() {
        return Err(invalid("it has no outputs".into()));
    }
    Ok((input, outputs))
}

/// ONNX Runtime's name (as [`TensorInfo::element`] holds it) of an ONNX `TensorProto.DataType`.
fn element_name(data_type: i32) -> &'static str {
    match data_type {
        1 => "Float32",
        2 => "Uint8",
        3 => "Int8",
        4 => "Uint16",
        5 => "Int16",
        6 => "Int32",
        7 => "Int64",
        8 => "String",
        9 => "Bool",
        10 => "Float16",
        11 => "Float64",
        12 => "Uint32",
        13 => "Uint64",
        16 => "Bfloat16",
        _ => "Undefined",
    }
}

/// One output of a call, converted to f32 (integer and f64 outputs included).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// One loaded model with a single float32 input. Not shared between threads: one per worker.
pub struct TensorEngine {
    session: Session,
    label: String,
    device: Device,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
}

impl std::fmt::Debug for TensorEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorEngine")
            .field("model", &self.label)
            .field("input", &self.input)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl TensorEngine {
    /// Loads a model from memory; `folder` is where its external data would be (see
    /// [`crate::Engine::from_bytes_in`]). Refused unless it has exactly one float32 input and
    /// at least one tensor output.
    pub fn from_bytes_in(
        bytes: &[u8],
        label: &str,
        options: &EngineOptions,
        folder: Option<&std::path::Path>,
    ) -> Result<TensorEngine, EngineError> {
        let session = build_session(bytes, label, options, folder)?;
        let invalid = |reason: String| EngineError::InvalidModel {
            model: label.to_string(),
            reason,
        };
        let info = |name: &str, dtype: &ValueType| -> Result<TensorInfo, EngineError> {
            match dtype {
                ValueType::Tensor { ty, shape, .. } => Ok(TensorInfo {
                    name: name.to_string(),
                    shape: shape.iter().copied().collect(),
                    element: format!("{ty:?}"),
                }),
                other => Err(invalid(format!("'{name}' is a {other:?}, not a tensor"))),
            }
        };
        let [input] = session.inputs() else {
            return Err(invalid(format!(
                "it has {} inputs; scoring feeds exactly one (the frame)",
                session.inputs().len()
            )));
        };
        let input = info(input.name(), input.dtype())?;
        if input.element != format!("{:?}", TensorElementType::Float32) {
            return Err(invalid(format!(
                "input '{}' has element type {}, expected Float32",
                input.name, input.element
            )));
        }
        let outputs = session
            .outputs()
            .iter()
            .map(|o| info(o.name(), o.dtype()))
            .collect::<Result<Vec<_>, _>>()?;
        if outputs.is_empty() {
            return Err(invalid("it has no outputs".into()));
        }
        Ok(TensorEngine {
            session,
            label: label.to_string(),
            device: options.device,
            input,
            outputs,
        })
    }

    pub fn input(&self) -> &TensorInfo {
        &self.input
    }

    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs one call on a prepared batch (`shape` as the model takes it, `values` row-major)
    /// and returns every output in the model's declared order.
    pub fn run(
        &mut self,
        shape: &[usize],
        values: &[f32],
    ) -> Result<Vec<NamedTensor>, EngineError> {
        // The frame's size for the message, from an image tensor in either layout.
        let (width, height) = match shape {
            [_, 3, h, w] | [_, h, w, 3] => (*w, *h),
            _ => (0, 0),
        };
        let run_error = |reason: String| EngineError::Run {
            model: self.label.clone(),
            width: width as u32,
            height: height as u32,
            reason,
        };
        let tensor = TensorRef::from_array_view((shape.to_vec(), values))
            .map_err(|e| run_error(e.to_string()))?;
        let results = self
            .session
            .run(ort::inputs![self.input.name.as_str() => tensor])
            .map_err(|e| run_error(e.to_string().lines().next().unwrap_or("").to_string()))?;
        let mut out = Vec::with_capacity(self.outputs.len());
        for info in &self.outputs {
            let value = &results[info.name.as_str()];
            let extracted = if let Ok((s, d)) = value.try_extract_tensor::<f32>() {
                Ok((s.iter().copied().collect::<Vec<i64>>(), d.to_vec()))
            } else if let Ok((s, d)) = value.try_extract_tensor::<i64>() {
                Ok((
                    s.iter().copied().collect(),
                    d.iter().map(|v| *v as f32).collect(),
                ))
            } else if let Ok((s, d)) = value.try_extract_tensor::<i32>() {
                Ok((
                    s.iter().copied().collect(),
                    d.iter().map(|v| *v as f32).collect(),
                ))
            } else if let Ok((s, d)) = value.try_extract_tensor::<f64>() {
                Ok((
                    s.iter().copied().collect(),
                    d.iter().map(|v| *v as f32).collect(),
                ))
            } else {
                Err(run_error(format!(
                    "output '{}' has element type {}; scoring reads float and integer tensors",
                    info.name, info.element
                )))
            };
            let (dims, values) = extracted?;
            out.push(NamedTensor {
                name: info.name.clone(),
                shape: dims.iter().map(|d| (*d).max(0) as usize).collect(),
                values,
            });
        }
        Ok(out)
    }
}
