//! fresco's domain types, shared by every other crate: what a user asks for (model, encoder
//! settings, device) with no I/O: also jobs, their tasks and states.

pub mod job;
pub mod limits;
pub mod settings;

pub use job::{split_frames, FrameRange, JobState, RetryBudgets, TaskKind, TaskState};
pub use limits::{LimitBreach, MediaLimits};

pub use settings::{ChannelOrder, Device, EncodeSettings, InputRange, ModelChoice, StreamKind};
