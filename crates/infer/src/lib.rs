//! Inference: the model registry ([`registry`]), ONNX Runtime loading ([`runtime`]) and sessions
//! with their frame conversions ([`engine`]), and ONNX graphs built in code ([`onnx_build`]).
pub mod device;
pub mod engine;
pub mod fp16;
pub mod onnx_build;
pub mod registry;
pub mod runtime;

pub use engine::{Engine, EngineError, EngineOptions, Layout, ModelIo, Sample};
