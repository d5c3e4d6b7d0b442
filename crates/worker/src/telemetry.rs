//! What workers count, through the `metrics` facade: whichever recorder the binary installed
//! (Prometheus text on `fresco serve`'s `/metrics`) receives them; with none installed they
//! cost nothing. Labels are bounded: the model is a registry style's name or `custom`, the
//! device `cpu` or `cuda`.
//!
//! The worker reports through [`record`] (from every [`WorkerEvent`] it emits) and
//! [`chunk_error`]; the names are listed, with their help texts, in [`describe`] (in
//! `fresco_core::telemetry`, which the server reads without depending on workers).

use fresco_core::{Device, TaskKind};

use crate::worker::WorkerEvent;

// The names and help texts are shared with the server, which reports the families at zero.
pub use fresco_core::telemetry::{
    describe, CHUNKS_CLAIMED, CHUNKS_COMPLETED, CHUNKS_FAILED, CHUNKS_RETRIED, FRAMES_SCORED,
    INFERENCE_BUCKETS, INFERENCE_SECONDS, PREVIEWS_SAVED,
};

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
                    ("device", device.kind().as_str()),
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
