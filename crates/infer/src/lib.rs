//! Inference: the model registry ([`registry`]), ONNX Runtime loading ([`runtime`]) and sessions
//! with their frame conversions ([`engine`]), sessions for models of any shape ([`tensors`]), exact graph rewrites applied when a model is loaded
//! for the CPU ([`rewrite`]), ONNX graphs built in code ([`onnx_build`]), and the static check
//! of a model's bytes that runs before any runtime sees a submitted model ([`inspect`]).
pub mod device;
pub mod engine;
mod fold;
pub mod fp16;
pub mod hostile_models;
pub mod image_io;
pub mod inspect;
pub mod onnx_build;
mod onnx_proto;
pub mod registry;
pub mod rewrite;
pub mod runtime;
pub mod tensors;

pub use engine::{image_layout, Engine, EngineError, EngineOptions, Layout, ModelIo, Sample};
pub use tensors::{NamedTensor, TensorEngine, TensorInfo};
