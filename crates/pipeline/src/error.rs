//! What can go wrong in a run, classified so that the command line can give each its own exit
//! code and a one-line message that names the file and the problem.

use std::path::PathBuf;

use fresco_infer::EngineError;
use fresco_media::process::ProcessError;

/// Why styling one input failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}: no such file", path.display())]
    InputMissing { path: PathBuf },
    #[error("{}: the file is empty (0 bytes)", path.display())]
    InputEmpty { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    NotMedia { path: PathBuf, reason: String },
    #[error("{}: has no video stream to style (it holds {streams})", path.display())]
    NoVideo { path: PathBuf, streams: String },
    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    /// The file is of a kind that can open other files (a playlist, a concat script, an
    /// image-sequence pattern) or names a protocol: fresco reads only the one file.
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
    /// What the input holds (as probed, or as the frame scan measured) is over a limit; the
    /// breach's code names the limit.
    #[error(transparent)]
    OverLimit(fresco_core::LimitBreach),
    #[error("{}: already exists; pass --overwrite to replace it", path.display())]
    OutputExists { path: PathBuf },
    #[error("{}: cannot write the output: {reason}", path.display())]
    OutputUnwritable { path: PathBuf, reason: String },
    #[error("{}: {stream} cannot be stored in a .{container} file; choose another container (e.g. .mkv) or drop it with --drop-streams {kind}", path.display())]
    StreamNotSupported {
        path: PathBuf,
        stream: String,
        container: String,
        kind: String,
    },
    /// The video encoder cannot write this output: this ffmpeg lacks it, or the container
    /// cannot hold its video (found by a one-frame trial when the job is planned).
    #[error("{}: {reason}", path.display())]
    EncoderUnusable { path: PathBuf, reason: String },
    #[error("{}: decoding failed: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error("{}: encoding failed: {reason}", path.display())]
    Encode { path: PathBuf, reason: String },
    #[error("{} and {} are the same file", input.display(), output.display())]
    SameFile { input: PathBuf, output: PathBuf },
    #[error("{}: {source}", path.display())]
    Model {
        path: PathBuf,
        #[source]
        source: EngineError,
    },
    /// Hardware the job asks for (`--hwaccel`, an NVENC encoder) does not work here.
    #[error("{}: {what} does not work on this machine: {reason} (ffmpeg lists the methods and encoders it was built with, whether or not there is a device for them)", path.display())]
    Hardware {
        path: PathBuf,
        what: String,
        reason: String,
    },
    #[error(transparent)]
    Tool(ProcessError),
    #[error("canceled")]
    Canceled,
}

/// Broad classes of failure; the command line maps each to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The input does not exist.
    InputMissing,
    /// The input exists but cannot be styled (empty, not media, no video, corrupt, HDR).
    BadInput,
    /// The output cannot be written where asked.
    Output,
    /// A program or library fresco needs is missing.
    MissingDependency,
    /// The model is missing, corrupt or of the wrong kind.
    Model,
    /// Something failed while working (a tool crashed, a timeout).
    Processing,
    /// The user stopped it.
    Canceled,
}

impl RunError {
    pub fn class(&self) -> FailureClass {
        match self {
            RunError::InputMissing { .. } => FailureClass::InputMissing,
            RunError::InputEmpty { .. }
            | RunError::NotMedia { .. }
            | RunError::NoVideo { .. }
            | RunError::Unsupported { .. }
            | RunError::Refused { .. }
            | RunError::OverLimit(_)
            | RunError::Decode { .. } => FailureClass::BadInput,
            RunError::OutputExists { .. }
            | RunError::OutputUnwritable { .. }
            | RunError::StreamNotSupported { .. }
            | RunError::EncoderUnusable { .. }
            | RunError::SameFile { .. } => FailureClass::Output,
            RunError::Encode { .. } => FailureClass::Processing,
            RunError::Model { source, .. } => match source {
                EngineError::Runtime(_)
                | EngineError::Device { .. }
                | EngineError::DeviceUnavailable(_) => FailureClass::MissingDependency,
                EngineError::Run { .. } => FailureClass::Processing,
                EngineError::InvalidModel { .. } | EngineError::NotImageModel { .. } => {
                    FailureClass::Model
                }
            },
            RunError::Hardware { .. } => FailureClass::MissingDependency,
            RunError::Tool(e) if e.is_missing_tool() => FailureClass::MissingDependency,
            RunError::Tool(_) => FailureClass::Processing,
            RunError::Canceled => FailureClass::Canceled,
        }
    }
}

impl From<ProcessError> for RunError {
    /// A tool stopped by the job's cancel flag is the job's cancel, not a tool failure.
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::Canceled { .. } => RunError::Canceled,
            other => RunError::Tool(other),
        }
    }
}
