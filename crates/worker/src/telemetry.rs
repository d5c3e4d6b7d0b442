//! What workers count, through the `metrics` facade: whichever recorder the binary installed
//! (Prometheus text on `fresco serve`'s `/metrics`) receives them; with none installed they
//! cost nothing. Labels are bounded: the model is a registry style's name or `custom`, the
//! device `cpu` or `cuda`.
//!
//! The worker reports through [`record`] (from every [`WorkerEvent`] it emits) and
//! [`chunk_error`]; the names are listed, with their help texts, in [`describe`].

use fresco_core::{Device, TaskKind};

use crate::worker::WorkerEvent;

pub const CHUNKS_CLAIMED: &str = "fresco_chunks_claimed_total";
pub const CHUNKS_COMPLETED: &str = "fresco_chunks_completed_total";
pub const CHUNKS_FAILED: &str = "fresco_chunks_failed_total";
pub const CHUNKS_RETRIED: &str = "fresco_chunks_retried_total";
pub const FRAMES_SCORED: &str = "fresco_frames_scored_total";
pub const INFERENCE_SECONDS: &str = "fresco_inference_seconds";
pub const PREVIEWS_SAVED: &str = "fresco_previews_saved_total";

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
}

/// Every family of [`describe`], at zero, for each label set this process can report on
/// `device`: each registry style and `custom`. Prometheus advises it: a family missing until
/// its first event leaves gaps in dashboards, and `rate()` or an alert over it sees nothing.
/// Idempotent (adding zero); call it after the recorder is installed.
pub fn zero_families(device: Device) {
    for name in [
        CHUNKS_CLAIMED,
        CHUNKS_COMPLETED,
        CHUNKS_FAILED,
        CHUNKS_RETRIED,
        PREVIEWS_SAVED,
    ] {
        metrics::counter!(name).increment(0);
    }
    let device = crate::spec::device_kind(device);
    let models = fresco_infer::registry::builtin_styles()
        .iter()
        .map(|s| s.name)
        .chain(["custom"]);
    for model in models {
        let labels = [("model", model), ("device", device)];
        metrics::counter!(FRAMES_SCORED, &labels).increment(0);
        // Registering the histogram is enough: it renders with empty buckets.
        let _ = metrics::histogram!(INFERENCE_SECONDS, &labels);
    }
}

/// The `model` label: a registry style's name, or `custom` for model files (whose names are
/// unbounded).
pub fn model_label(name: &str) -> &'static str {
    fresco_infer::registry::builtin_styles()
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.name)
        .unwrap_or("custom")
}

/// Counts what an event says. `model` is the name of the model the worker has loaded.
pub(crate) fn record(event: &WorkerEvent, model: Option<&str>, device: Device) {
    match event {
        WorkerEvent::Claimed { kind, .. } => {
            if *kind == TaskKind::Score {
                metrics::counter!(CHUNKS_CLAIMED).increment(1);
            }
        }
        WorkerEvent::ChunkDone {
            frames,
            reused,
            model_seconds,
            ..
        } => {
            metrics::counter!(CHUNKS_COMPLETED).increment(1);
            if !*reused && *frames > 0 {
                let labels = [
                    ("model", model_label(model.unwrap_or("custom"))),
                    ("device", crate::spec::device_kind(device)),
                ];
                metrics::counter!(FRAMES_SCORED, &labels).increment(*frames);
                let per_frame = model_seconds / *frames as f64;
                metrics::histogram!(INFERENCE_SECONDS, &labels)
                    .record_many(per_frame, usize::try_from(*frames).unwrap_or(usize::MAX));
            }
        }
        WorkerEvent::Retrying { kind, .. } => {
            if *kind == TaskKind::Score {
                metrics::counter!(CHUNKS_RETRIED).increment(1);
            }
        }
        WorkerEvent::Frames { .. }
        | WorkerEvent::Planned { .. }
        | WorkerEvent::ChunkAbandoned { .. }
        | WorkerEvent::Succeeded { .. }
        | WorkerEvent::Failed { .. } => {}
    }
}

/// The span of one task: every line logged inside carries the job's id and the chunk (plain
/// fields in JSON logs, `task{job_id=.. chunk=..}` in text ones).
pub(crate) fn task_span(worker: &str, lease: &fresco_queue::TaskLease) -> tracing::Span {
    tracing::info_span!(
        "task",
        job_id = %lease.job_id,
        chunk = lease.chunk,
        kind = %lease.kind,
        worker = %worker,
    )
}

/// Counts an error reported on a task (chunks only).
pub(crate) fn chunk_error(kind: TaskKind) {
    if kind == TaskKind::Score {
        metrics::counter!(CHUNKS_FAILED).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::model_label;

    #[test]
    fn model_labels_are_bounded() {
        assert_eq!(model_label("mosaic"), "mosaic");
        assert_eq!(model_label("vintage"), "vintage");
        assert_eq!(model_label("my-own-model-v7"), "custom");
    }
}
