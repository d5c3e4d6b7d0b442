//! fresco's domain types, shared by every other crate: what a user asks for (model, encoder
//! settings, device) with no I/O. Later issues add jobs, chunks and their states here.

pub mod settings;

pub use settings::{ChannelOrder, Device, EncodeSettings, InputRange, ModelChoice, StreamKind};
