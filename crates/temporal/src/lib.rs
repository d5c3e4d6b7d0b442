//! Temporal consistency of a styled video. [`flow`] computes dense optical flow between two
//! frames; [`warp`] turns a backward and a forward flow into where each pixel came from and
//! whether it was visible; [`measure`] gives Lai et al.'s warping error of a clip (ECCV 2018,
//! "Learning Blind Video Temporal Consistency") from frame pairs; [`decode`] reads the frames
//! of a file from ffmpeg as raw RGB over a pipe; [`blend`] lowers it, blending each styled
//! frame with the previous output carried along the flow. docs/temporal.md describes the measure and
//! the flow's settings.

pub mod blend;
pub mod decode;
pub mod flow;
pub mod measure;
pub mod sample;
pub mod warp;

pub use blend::{BlendSettings, Blender, Motion, MotionTracker, Stabilizer, Step};
pub use decode::{measure_files, MeasureError, MeasureOptions};
pub use flow::{dense_flow, Flow, FlowSettings, Plane};
pub use measure::{ClipMeter, TemporalReport};
pub use sample::Sample;
