//! Inference: the model registry, ONNX Runtime sessions, and ONNX graphs built in code.
pub mod onnx_build;
pub mod registry;
