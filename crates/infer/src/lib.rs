//! Inference: the model registry ([`registry`]), ONNX Runtime loading ([`runtime`]) and sessions
//! with their frame conversions ([`engine`]), exact graph rewrites applied when a model is loaded
//! for the CPU ([`rewrite`]), and ONNX graphs built in code ([`onnx_build`]).
pub mod device;
pub mod engine;
pub mod fp16;
pub mod onnx_build;
mod onnx_proto;
pub mod registry;
pub mod rewrite;
pub mod runtime;

pub use engine::{Engine, EngineError, EngineOptions, Layout, ModelIo, Sample};
