//! Scoring models whose output is not an image: classifiers, detectors, anything that gives
//! tensors. Frames flow through:
//!
//! 1. [`resolve()`]: the model's declared input and outputs, the flags ([`ScoreSettings`]) and a
//!    model card ([`card`]) become a [`ScoringPlan`], with every misfit reported before any
//!    frame is scored;
//! 2. [`prep`]: the decoder scales a frame to [`PrepSpec::scaled_size`], [`PrepSpec::prepare`]
//!    pads or crops it into the input tensor; [`Geometry`] maps model pixels back to the frame;
//! 3. [`scorer`]: one inference call per batch ([`fresco_infer::TensorEngine`]), then the
//!    task's decoder (classes, [`detect`] boxes, tensors) into [`Record`]s, or (`segment`)
//!    a per-pixel map into a [`mask::Mask`] per picture, written as an image, not a record;
//! 4. [`record`]: rows into parts (JSONL or Parquet, by the output's extension) and the parts
//!    joined in order into the final file (docs/records.md).
//!
//! Image models (whose output is an image, written to a video or an image) are not scored
//! here, but their cards are read here too ([`image_card`]): the same file and digest, with
//! only the keys that apply to them.
pub mod card;
pub mod detect;
pub mod image_card;
pub mod known;
pub mod mask;
mod parquet_out;
pub mod prep;
pub mod record;
pub mod resolve;
pub mod scorer;

pub use card::{card_beside, card_task, AnchorGrid, CardError, Labels, ModelCard, ScoreSettings};
pub use detect::{DetectFormat, DetectSpec};
pub use image_card::{load_image_card, parse_image_card, IMAGE_KEYS};
pub use known::{
    known_by_name, known_model, named_by, KnownModel, LocateError, Located, KNOWN_MODELS,
};
pub use mask::{Mask, SegmentSpec};
pub use parquet_out::{dataset_schema as dataset_parquet_schema, schema as parquet_schema};
pub use prep::{Geometry, PrepSpec, Resize, Task};
pub use record::{
    count_rows, join_part_files, join_parts, write_dataset_part, write_part, Class, Detection,
    ItemRow, Record, RecordError, RecordFormat, Scores, Tensor,
};
pub use resolve::{resolve, Decoder, PlanError, ScoringPlan};
pub use scorer::{Frame, PinnedError, ScoreError, Scorer};
