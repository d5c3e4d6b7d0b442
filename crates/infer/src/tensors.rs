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
