//! The names and help texts of what workers count, through the `metrics` facade. Workers
//! record them (`fresco_worker::telemetry`); `fresco serve` describes them and reports every
//! family at zero from the start. Both see this module without either depending on the other.
//! The facade does no I/O: with no recorder installed, these calls cost nothing.

use crate::DeviceKind;

pub const CHUNKS_CLAIMED: &str = "fresco_chunks_claimed_total";
pub const CHUNKS_COMPLETED: &str = "fresco_chunks_completed_total";
pub const CHUNKS_FAILED: &str = "fresco_chunks_failed_total";
pub const CHUNKS_RETRIED: &str = "fresco_chunks_retried_total";
pub const FRAMES_SCORED: &str = "fresco_frames_scored_total";
pub const INFERENCE_SECONDS: &str = "fresco_inference_seconds";
pub const PREVIEWS_SAVED: &str = "fresco_previews_saved_total";
/// Rows of records jobs (`.jsonl`/`.parquet` outputs) written by scored chunks.
pub const RECORD_ROWS_WRITTEN: &str = "fresco_record_rows_written_total";
/// Items of dataset jobs scored into rows by chunks that completed (error rows not counted).
pub const DATASET_ITEMS_SCORED: &str = "fresco_dataset_items_scored_total";
/// Items of dataset jobs that became error rows, by `kind` (`not-image`, `empty`, ...).
pub const DATASET_ITEMS_FAILED: &str = "fresco_dataset_items_failed_total";

/// Bucket bounds of [`INFERENCE_SECONDS`] (model time per frame): from a small model on a GPU
/// to a large frame on a slow CPU.
pub const INFERENCE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Registers the help texts of the worker's metrics with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(CHUNKS_CLAIMED, "Chunks claimed by this process's workers.");
    describe_counter!(
        CHUNKS_COMPLETED,
        "Chunks this process's workers scored and recorded as done."
    );
    describe_counter!(
        CHUNKS_FAILED,
        "Errors reported on chunks (every failed attempt, retried or not)."
    );
    describe_counter!(
        CHUNKS_RETRIED,
        "Chunks put back for another attempt after an error."
    );
    describe_counter!(
        FRAMES_SCORED,
        "Frames run through a model, by model and device."
    );
    describe_histogram!(
        INFERENCE_SECONDS,
        Unit::Seconds,
        "Model time per frame, by model and device (each chunk adds its mean once per frame)."
    );
    describe_counter!(PREVIEWS_SAVED, "Before/after previews saved for jobs.");
    describe_counter!(
        RECORD_ROWS_WRITTEN,
        "Rows of records jobs written by scored chunks (one per sampled frame)."
    );
    describe_counter!(
        DATASET_ITEMS_SCORED,
        "Items of dataset jobs scored into rows (error rows are counted as failed)."
    );
    describe_counter!(
        DATASET_ITEMS_FAILED,
        "Items of dataset jobs written as error rows (unreadable, empty, not an image, ...)."
    );
}

/// Every family of [`describe`], at zero, for each label set this process can report on a
/// `device` kind: each of `models` (the registry's style names; `custom` is added). Prometheus
/// advises it: a family missing until its first event leaves gaps in dashboards, and `rate()`
/// or an alert over it sees nothing. Idempotent (adding zero); call it after the recorder is
/// installed.
pub fn zero_families<'a>(device: DeviceKind, models: impl IntoIterator<Item = &'a str>) {
    for name in [
        CHUNKS_CLAIMED,
        CHUNKS_COMPLETED,
        CHUNKS_FAILED,
        CHUNKS_RETRIED,
        PREVIEWS_SAVED,
        RECORD_ROWS_WRITTEN,
        DATASET_ITEMS_SCORED,
        DATASET_ITEMS_FAILED,
    ] {
        metrics::counter!(name).increment(0);
    }
    let device = device.as_str();
    for model in models.into_iter().chain(["custom"]) {
        let labels = [("model", model.to_string()), ("device", device.to_string())];
        metrics::counter!(FRAMES_SCORED, &labels).increment(0);
        // Registering the histogram is enough: it renders with empty buckets.
        let _ = metrics::histogram!(INFERENCE_SECONDS, &labels);
    }
}
