//! fresco's domain types, shared by every other crate: what a user asks for (model, encoder
//! settings, device) with no I/O: also jobs, their specs, tasks and states, and the names of the
//! metrics every process reports ([`telemetry`]).

pub mod dataset;
pub mod image_prep;
pub mod job;
pub mod limits;
pub mod scoring;
pub mod settings;
pub mod spec;
pub mod telemetry;

pub use image_prep::{ImageCard, Layout, Normalization};
pub use job::{split_frames, FrameRange, JobState, RetryBudgets, TaskKind, TaskState};
pub use limits::{LimitBreach, MediaLimits};

pub use settings::{
    ChannelOrder, Device, DeviceKind, EncodeSettings, InputRange, ModelChoice, Precision,
    StreamKind, UnknownDeviceKind, UnknownPrecision,
};
pub use spec::{JobSpec, ModelPin, VideoOptions};
