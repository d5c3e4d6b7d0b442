//! Where a model runs: the CPU, or an NVIDIA GPU through ONNX Runtime's CUDA provider, and why
//! a GPU cannot be used, said before any frame is decoded.
//!
//! One process drives one GPU (`--device cuda:N`); several GPUs take one worker each. A worker
//! then owns its device's memory and its failures, the queue spreads the chunks, and nothing
//! needs to share a session between devices (see docs/gpu.md).
//!
//! The checks, in order: the loaded library must have the CUDA provider (PyPI's `onnxruntime`
//! is the CPU build; `onnxruntime-gpu` has it), an NVIDIA GPU must be visible (device nodes
//! `/dev/nvidiaN`, narrowed by `CUDA_VISIBLE_DEVICES`), and `N` must name one of them. What the
//! CUDA provider itself then reports (driver or cuDNN missing, out of memory) comes from the
//! session, wrapped with the same advice.

use std::path::Path;

use fresco_core::Device;

use crate::runtime::{self, RuntimeError};

/// How to get a working CUDA setup, said in every error about it.
pub const CUDA_HINT: &str = "the CUDA provider needs an NVIDIA GPU with its driver, CUDA 12 and \
cuDNN 9, and the GPU build of ONNX Runtime (`pip install onnxruntime-gpu`, then point \
FRESCO_ORT_LIB at its libonnxruntime.so); or use --device cpu";

/// Why the asked device cannot run models here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "device {device}: the ONNX Runtime library {library} has no CUDA provider (it is a CPU \
         build); {CUDA_HINT}"
    )]
    NoCudaProvider { device: Device, library: String },
    #[error("device {device}: no NVIDIA GPU is visible here ({seen}); {CUDA_HINT}")]
    NoGpu { device: Device, seen: String },
    #[error(
        "device {device}: out of range: {count} NVIDIA GPU{} visible here (cuda:0{})",
        if *count == 1 { " is" } else { "s are" },
        if *count > 1 { format!(" to cuda:{}", count - 1) } else { String::new() }
    )]
    OutOfRange { device: Device, count: usize },
}

impl DeviceError {
    /// True when the user named a device that does not exist (a bad argument), rather than a
    /// machine that lacks what a GPU needs.
    pub fn is_bad_argument(&self) -> bool {
        matches!(self, DeviceError::OutOfRange { .. })
    }
}

/// GPUs that CUDA would number here: `None` where this cannot be told (not Linux).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibleGpus {
    pub count: usize,
    /// How the count was found, for messages.
    pub seen: String,
}

/// Checks `device` against what is known: whether the library has the CUDA provider and which
/// GPUs are visible (`None`: unknown, leave it to the provider).
pub fn check(
    device: Device,
    cuda_provider: bool,
    library: &str,
    gpus: Option<&VisibleGpus>,
) -> Result<(), DeviceError> {
    let Device::Cuda(ordinal) = device else {
        return Ok(());
    };
    if !cuda_provider {
        return Err(DeviceError::NoCudaProvider {
            device,
            library: library.to_string(),
        });
    }
    match gpus {
        None => Ok(()),
        Some(gpus) if gpus.count == 0 => Err(DeviceError::NoGpu {
            device,
            seen: gpus.seen.clone(),
        }),
        Some(gpus) if ordinal as usize >= gpus.count => Err(DeviceError::OutOfRange {
            device,
            count: gpus.count,
        }),
        Some(_) => Ok(()),
    }
}

/// Counts the GPUs CUDA would see: the `/dev/nvidiaN` device nodes (present wherever a GPU is
/// usable, containers included), narrowed by `CUDA_VISIBLE_DEVICES` when it is set.
pub fn visible_gpus() -> Option<VisibleGpus> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let nodes = count_device_nodes(Path::new("/dev"));
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    Some(narrow(nodes, visible.as_deref()))
}

/// `/dev/nvidia0`, `/dev/nvidia1`, ... (not `nvidiactl`, `nvidia-uvm`).
fn count_device_nodes(dev: &Path) -> usize {
    std::fs::read_dir(dev)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("nvidia"))
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The GPUs left of `nodes` by `CUDA_VISIBLE_DEVICES` (a list of indexes or UUIDs; CUDA stops
/// at the first entry it cannot use, and `-1` or an empty value hides every GPU).
fn narrow(nodes: usize, cuda_visible_devices: Option<&str>) -> VisibleGpus {
    let found = format!(
        "{nodes} /dev/nvidiaN device node{}",
        if nodes == 1 { "" } else { "s" }
    );
    let Some(list) = cuda_visible_devices else {
        return VisibleGpus {
            count: nodes,
            seen: found,
        };
    };
    let mut count = 0;
    for entry in list.split(',').map(str::trim) {
        let usable = match entry.parse::<i64>() {
            Ok(index) => index >= 0 && (index as usize) < nodes,
            // A UUID (GPU-...) or MIG name: trust it while there are GPUs at all.
            Err(_) => !entry.is_empty() && nodes > 0,
        };
        if !usable {
            break;
        }
        count += 1;
    }
    VisibleGpus {
        count: count.min(nodes),
        seen: format!("{found}, CUDA_VISIBLE_DEVICES={list:?}"),
    }
}

/// Loads the runtime and checks that `device` can be used, before any work: `fresco worker`
/// and `fresco serve` call this at start, so a worker that cannot use its GPU says so and exits
/// instead of failing every task it claims.
pub fn preflight(device: Device) -> Result<(), PreflightError> {
    if device == Device::Cpu {
        return Ok(());
    }
    runtime::environment()?;
    let library = runtime::loaded_library()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(unknown)".into());
    let cuda = cuda_provider_available();
    check(device, cuda, &library, visible_gpus().as_ref())?;
    Ok(())
}

/// Whether the loaded ONNX Runtime library was built with the CUDA provider.
pub fn cuda_provider_available() -> bool {
    use ort::ep::ExecutionProvider as _;
    ort::ep::CUDA::is_available().unwrap_or(false)
}

/// Why [`preflight`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus(count: usize) -> VisibleGpus {
        VisibleGpus {
            count,
            seen: format!("{count} test GPUs"),
        }
    }

    #[test]
    fn the_cpu_needs_nothing() {
        assert_eq!(check(Device::Cpu, false, "lib", Some(&gpus(0))), Ok(()));
    }

    #[test]
    fn a_cpu_build_of_the_library_is_named() {
        let err = check(Device::Cuda(0), false, "/x/libonnxruntime.so.1.32.0", None).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("device cuda:0: the ONNX Runtime library /x/libonnxruntime.so.1.32.0 has no CUDA provider"), "{text}");
        assert!(text.contains("onnxruntime-gpu"), "{text}");
        assert!(!err.is_bad_argument());
    }

    #[test]
    fn no_gpu_and_out_of_range_are_told_apart() {
        let err = check(Device::Cuda(0), true, "lib", Some(&gpus(0))).unwrap_err();
        assert!(matches!(err, DeviceError::NoGpu { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("no NVIDIA GPU is visible here (0 test GPUs)"));

        let err = check(Device::Cuda(2), true, "lib", Some(&gpus(2))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device cuda:2: out of range: 2 NVIDIA GPUs are visible here (cuda:0 to cuda:1)"
        );
        assert!(err.is_bad_argument());
        let err = check(Device::Cuda(1), true, "lib", Some(&gpus(1))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device cuda:1: out of range: 1 NVIDIA GPU is visible here (cuda:0)"
        );
        assert_eq!(check(Device::Cuda(1), true, "lib", Some(&gpus(2))), Ok(()));
        // Unknown GPU count: the provider decides.
        assert_eq!(check(Device::Cuda(7), true, "lib", None), Ok(()));
    }

    #[test]
    fn cuda_visible_devices_narrows_the_gpus() {
        assert_eq!(narrow(4, None).count, 4);
        assert_eq!(narrow(4, Some("1,3")).count, 2);
        assert_eq!(narrow(4, Some("")).count, 0);
        assert_eq!(narrow(4, Some("-1")).count, 0);
        // CUDA stops at the first index it cannot use.
        assert_eq!(narrow(2, Some("0,5,1")).count, 1);
        assert_eq!(narrow(2, Some("GPU-8f3e,GPU-1a2b")).count, 2);
        assert_eq!(narrow(0, Some("GPU-8f3e")).count, 0);
        assert!(narrow(2, Some("1"))
            .seen
            .contains("CUDA_VISIBLE_DEVICES=\"1\""));
    }

    #[test]
    fn device_nodes_are_counted_without_control_nodes() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "nvidia0",
            "nvidia1",
            "nvidiactl",
            "nvidia-uvm",
            "nvidia-modeset",
            "null",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(count_device_nodes(dir.path()), 2);
        assert_eq!(count_device_nodes(&dir.path().join("missing")), 0);
    }
}
