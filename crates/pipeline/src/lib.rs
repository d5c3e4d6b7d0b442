//! The data path for one input. A video is probed and planned ([`plan`]; a job's chunks sized
//! by [`sizing`]), then decoded to raw frames, scored (run through the model) and encoded with
//! its other streams copied ([`video`]); a still image goes straight through the model
//! ([`image`]). Models come from [`model`]. Outputs appear only when complete ([`output`]).

pub mod chunk;
pub mod container;
pub mod error;
pub mod hardware;
pub mod image;
pub mod model;
pub mod output;
pub mod pix_fmt;
pub mod plan;
pub mod records;
pub mod sizing;
pub mod video;

pub use chunk::{ChunkStats, JobPlan};
pub use error::{FailureClass, RunError};
pub use model::{check_model, load_model, CheckedModel, LoadedModel, ModelError};
pub use plan::{VideoOptions, VideoSettings};
pub use sizing::ChunkSizing;
pub use video::{prepare_video, score_video, PreparedVideo, Progress, Tools, VideoSummary};
