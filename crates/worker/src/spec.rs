//! Loading the model a job pinned. The job's types themselves ([`JobSpec`], [`ModelPin`]) live
//! in `fresco_core`, object URLs in `fresco_store`.

use fresco_core::{Device, ModelChoice};
use fresco_infer::inspect::ModelBudget;
use fresco_infer::registry::Registry;
use fresco_infer::EngineOptions;
use fresco_pipeline::{check_model, load_model, LoadedModel, ModelError};

pub use fresco_core::{JobSpec, ModelPin};

/// Why a pinned model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("model {name}: its bytes changed since the job was submitted (sha256 {found}, the job pinned {pinned}); restore the file or submit a new job")]
    DigestChanged {
        name: String,
        pinned: String,
        found: String,
    },
    /// The trial load in a child process refused the model (see [`crate::model_trial`]).
    #[error(transparent)]
    Trial(#[from] crate::model_trial::TrialError),
}

/// Loads the model a job pinned, on this worker's device, and checks that its bytes are the ones
/// pinned. Never downloads: a worker uses what its model folder or cache holds. A user's model
/// file is first inspected statically, then (with `trial`) tried in a child process.
pub fn load_pinned_model(
    pin: &ModelPin,
    registry: &Registry,
    device: Device,
    threads: Option<usize>,
    trial: Option<&crate::model_trial::ModelTrial>,
) -> Result<LoadedModel, PinError> {
    let options = EngineOptions {
        threads,
        device,
        input_range: pin.input_range,
        channel_order: pin.channel_order,
        precision: pin.precision,
        ..EngineOptions::default()
    }
    // The card the job was submitted with (mean/std, layout, output range), not a file read now.
    .with_card(pin.image_card.as_ref());
    // The same static inspection the server made, before ONNX Runtime sees the bytes: a job
    // queued directly (or a model file changed since) must not bring external data or a
    // constant-folding bomb into this process.
    let checked = check_model(&pin.choice, registry, false, &ModelBudget::default())?;
    if checked.digest != pin.digest {
        return Err(PinError::DigestChanged {
            name: pin.name.clone(),
            pinned: pin.digest.clone(),
            found: checked.digest,
        });
    }
    // A user's file: what loading builds is learned in a child process with limits first.
    if let (Some(trial), ModelChoice::File(path)) = (trial, &pin.choice) {
        crate::model_trial::trial_load(trial, path, &checked.digest)?;
    }
    let loaded = load_model(&pin.choice, registry, &options, false)?;
    if loaded.digest != pin.digest {
        return Err(PinError::DigestChanged {
            name: pin.name.clone(),
            pinned: pin.digest.clone(),
            found: loaded.digest,
        });
    }
    Ok(loaded)
}
