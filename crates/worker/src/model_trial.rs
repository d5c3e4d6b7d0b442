//! The first load of a user's model, tried in a child process with memory and time limits.
//!
//! The static inspection ([`fresco_infer::inspect`]) refuses what it can see in the bytes, but
//! what ONNX Runtime builds while loading (constant folding over shapes that only its own
//! inference knows) can only be learned by loading. A worker may run inside the API server
//! (`fresco serve --workers N`), so that load must not happen in its process first: the
//! `fresco model-trial` child (hidden) loads the model on the CPU under `RLIMIT_AS`, prints
//! what it found and exits. A model that takes more memory or time fails its job with a
//! permanent error; the worker (and the server around it) stays up. The verdict is kept by the
//! model's digest, so each model is tried once per process.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use fresco_infer::{Engine, EngineOptions};
use fresco_media::process::{Pipes, Tool};

/// The hidden subcommand of the `fresco` binary that runs [`child_main`].
pub const SUBCOMMAND: &str = "model-trial";

/// The exit code of a child whose load ran out of memory.
const EXIT_OUT_OF_MEMORY: i32 = 70;
/// The exit code of a child that found no ONNX Runtime (or no device) to load with: no verdict.
const EXIT_NO_RUNTIME: i32 = 69;

/// How a worker tries a user's model before loading it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTrial {
    /// The `fresco` binary (its hidden [`SUBCOMMAND`] does the load).
    pub program: PathBuf,
    /// The address space the child may use, in MiB (`RLIMIT_AS`).
    pub memory_mib: u64,
    /// How long the load may take.
    pub timeout: Duration,
}

impl ModelTrial {
    /// The defaults: 4096 MiB (real style models load in a few hundred) and 120 s.
    pub fn new(program: PathBuf) -> ModelTrial {
        ModelTrial {
            program,
            memory_mib: 4096,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why a trial refused a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrialError {
    #[error(
        "model {model}: exceeded the {mib} MiB memory limit while loading (tried in a child \
         process; the worker's --model-memory-mib sets the limit)"
    )]
    Memory { model: String, mib: u64 },
    #[error("model {model}: did not load within {seconds} s (tried in a child process)")]
    Timeout { model: String, seconds: u64 },
    #[error("model {model}: ONNX Runtime cannot load it: {reason}")]
    Refused { model: String, reason: String },
    /// The child could not be run at all: not the model's fault, so the job is retried.
    #[error("model {model}: the trial load could not be run: {reason}")]
    Unavailable { model: String, reason: String },
}

impl TrialError {
    /// False for a verdict on the model (the same bytes fail again); true when the trial
    /// itself could not run.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TrialError::Unavailable { .. })
    }
}

/// Verdicts by model digest: a model is tried once per process.
static VERDICTS: Mutex<Option<HashMap<String, Result<(), TrialError>>>> = Mutex::new(None);

/// Tries loading the model file `path` (whose bytes have `digest`) in a child process, unless
/// this process already did.
pub fn trial_load(trial: &ModelTrial, path: &Path, digest: &str) -> Result<(), TrialError> {
    trial_load_as(trial, path, digest, Interface::Image)
}

/// How the child loads the model: as an image model (styles), or as any model with one float
/// input (records jobs' classifiers, detectors and embedders; the `--tensors` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Image,
    Tensors,
}

/// [`trial_load`] for a model loaded as `interface`.
pub fn trial_load_as(
    trial: &ModelTrial,
    path: &Path,
    digest: &str,
    interface: Interface,
) -> Result<(), TrialError> {
    let digest = &match interface {
        Interface::Image => digest.to_string(),
        Interface::Tensors => format!("{digest}/tensors"),
    };
    let known = |verdicts: &mut Option<HashMap<String, Result<(), TrialError>>>| {
        verdicts
            .get_or_insert_with(HashMap::new)
            .get(digest)
            .cloned()
    };
    if let Some(verdict) = known(&mut VERDICTS.lock().unwrap_or_else(|p| p.into_inner())) {
        return verdict;
    }
    let verdict = run_child(trial, path, interface);
    if !matches!(verdict, Err(TrialError::Unavailable { .. })) {
        VERDICTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(digest.to_string(), verdict.clone());
    }
    verdict
}

fn run_child(trial: &ModelTrial, path: &Path, interface: Interface) -> Result<(), TrialError> {
    let model = path.display().to_string();
    let unavailable = |reason: String| TrialError::Unavailable {
        model: model.clone(),
        reason,
    };
    let tool = Tool {
        name: "fresco model-trial",
        program: trial.program.clone(),
        install_hint: "the worker runs its own binary; reinstall fresco",
        cancel: None,
    };
    let mut command = tool.command([SUBCOMMAND, "--memory-mib"]);
    command.arg(trial.memory_mib.to_string());
    if interface == Interface::Tensors {
        command.arg("--tensors");
    }
    command.arg(path);
    // ONNX Runtime survives an allocation that fails while it folds constants: it warns and
    // skips the node, and the load succeeds. The same load without the limit (the worker's own)
    // would then fold it, so those warnings are what tells that the model needs more.
    // (`ORT_LOG` is the `ort` crate's level for ONNX Runtime's own logger, on stderr.)
    command.env("ORT_LOG", "warning");
    let mut running = tool
        .spawn(command, Pipes::stdout())
        .map_err(|e| unavailable(e.to_string()))?;
    let mut stdout = running.take_stdout().expect("stdout was piped");
    let reader = std::thread::spawn(move || {
        // What the child prints is one line of JSON: a cap keeps a broken child from filling
        // memory.
        let mut buf = Vec::new();
        let _ = (&mut stdout).take(64 * 1024).read_to_end(&mut buf);
        buf
    });
    let status = running.wait_timeout(trial.timeout);
    let _ = reader.join();
    let status = match status {
        Ok(status) => status,
        Err(fresco_media::process::ProcessError::Timeout { seconds, .. }) => {
            return Err(TrialError::Timeout { model, seconds });
        }
        Err(e) => return Err(unavailable(e.to_string())),
    };
    let tail = running.stderr_tail();
    let allocation_failed = ["bad_alloc", "bad allocation", "memory allocation of"]
        .iter()
        .any(|s| tail.contains(s));
    match (status.code(), status.signal()) {
        (Some(0), _) if !allocation_failed => Ok(()),
        (Some(0), _) => Err(TrialError::Memory {
            model,
            mib: trial.memory_mib,
        }),
        // An allocation that failed under the limit: ONNX Runtime's error, or an abort (C++
        // `bad_alloc` escaping, Rust's allocation failure) or a fault on a failed mapping.
        (Some(EXIT_OUT_OF_MEMORY), _)
        | (None, Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS | libc::SIGKILL)) => {
            Err(TrialError::Memory {
                model,
                mib: trial.memory_mib,
            })
        }
        (Some(EXIT_NO_RUNTIME), _) => Err(unavailable(fresco_media::process::last_lines(&tail, 2))),
        _ => Err(TrialError::Refused {
            model,
            reason: fresco_media::process::last_lines(&tail, 2),
        }),
    }
}

/// The child: limits its own address space to `memory_mib`, loads the model at `path` on the
/// CPU (one thread, external data from the model's folder) and prints its input and output as
/// JSON. Returns the exit code.
pub fn child_main(path: &Path, memory_mib: u64, interface: Interface) -> i32 {
    let bytes = memory_mib.saturating_mul(1 << 20);
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct it is given; nothing else is shared.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        eprintln!(
            "cannot limit the address space: {}",
            std::io::Error::last_os_error()
        );
        return 1;
    }
    let model = match std::fs::read(path) {
        Ok(model) => model,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return 1;
        }
    };
    let options = EngineOptions {
        threads: Some(1),
        ..EngineOptions::default()
    };
    let folder = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from));
    let label = path.display().to_string();
    let loaded = match interface {
        Interface::Image => Engine::from_bytes_in(&model, &label, &options, folder.as_deref())
            .map(|engine| serde_json::to_string(engine.io()).unwrap_or_default()),
        Interface::Tensors => {
            fresco_infer::TensorEngine::from_bytes_in(&model, &label, &options, folder.as_deref())
                .map(|engine| {
                    serde_json::json!({"input": engine.input(), "outputs": engine.outputs()})
                        .to_string()
                })
        }
    };
    match loaded {
        Ok(io) => {
            println!("{io}");
            0
        }
        Err(
            e @ (fresco_infer::EngineError::Runtime(_)
            | fresco_infer::EngineError::DeviceUnavailable(_)),
        ) => {
            eprintln!("{e}");
            EXIT_NO_RUNTIME
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!("{text}");
            let lower = text.to_lowercase();
            if [
                "bad_alloc",
                "bad allocation",
                "failed to allocate",
                "out of memory",
                "cannot allocate",
            ]
            .iter()
            .any(|s| lower.contains(s))
            {
                EXIT_OUT_OF_MEMORY
            } else {
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the `fresco` binary: a shell script that logs each run to `runs` and
    /// then does `body`.
    fn fake(dir: &Path, name: &str, body: &str) -> ModelTrial {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join(name);
        let runs = dir.join(format!("{name}.runs"));
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho run >> '{}'\n{body}\n", runs.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        ModelTrial {
            program: script,
            memory_mib: 256,
            timeout: Duration::from_secs(2),
        }
    }

    fn runs(dir: &Path, name: &str) -> usize {
        std::fs::read_to_string(dir.join(format!("{name}.runs")))
            .unwrap_or_default()
            .lines()
            .count()
    }

    #[test]
    fn verdicts_are_classified_and_kept_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        type Expected = fn(&TrialError) -> bool;
        let cases: [(&str, &str, Expected); 4] = [
            ("oom-exit", "exit 70", |e| {
                matches!(e, TrialError::Memory { mib: 256, .. })
            }),
            ("abort", "kill -ABRT $$", |e| {
                matches!(e, TrialError::Memory { .. })
            }),
            (
                "folding-skipped",
                "echo 'Exception during constant folding: std::bad_alloc' >&2; exit 0",
                |e| matches!(e, TrialError::Memory { .. }),
            ),
            (
                "refused",
                "echo 'no such operator' >&2; exit 1",
                |e| matches!(e, TrialError::Refused { reason, .. } if reason.contains("no such operator")),
            ),
        ];
        for (name, body, expected) in cases {
            let trial = fake(dir.path(), name, body);
            let digest = format!("digest-{name}");
            let first = trial_load(&trial, &model, &digest).unwrap_err();
            assert!(expected(&first), "{name}: {first:?}");
            assert!(!first.is_retryable(), "{name}");
            assert!(first.to_string().contains("m.onnx"), "{first}");
            // Tried once per process: the second answer comes from the cache.
            assert_eq!(trial_load(&trial, &model, &digest).unwrap_err(), first);
            assert_eq!(runs(dir.path(), name), 1, "{name}");
        }
        let memory = trial_load(&fake(dir.path(), "x", "exit 70"), &model, "digest-x").unwrap_err();
        assert!(
            memory
                .to_string()
                .contains("exceeded the 256 MiB memory limit while loading"),
            "{memory}"
        );
        let ok = fake(dir.path(), "ok", "echo '{}'");
        trial_load(&ok, &model, "digest-ok").unwrap();
        trial_load(&ok, &model, "digest-ok").unwrap();
        assert_eq!(runs(dir.path(), "ok"), 1);
    }

    #[test]
    fn a_slow_load_times_out_and_a_missing_program_is_retryable() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        let mut slow = fake(dir.path(), "slow", "sleep 30");
        slow.timeout = Duration::from_millis(300);
        let err = trial_load(&slow, &model, "digest-slow").unwrap_err();
        assert!(matches!(err, TrialError::Timeout { .. }), "{err:?}");
        let missing = ModelTrial::new(dir.path().join("no-such-fresco"));
        let err = trial_load(&missing, &model, "digest-missing").unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
    }
}
