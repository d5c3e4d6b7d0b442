#!/usr/bin/env bash
# Prints 1080p model-only and end-to-end frames/s of `fresco` on an NVIDIA GPU (`--device
# cuda`), through `fresco bench`, and records them as the cuda calibration that `fresco
# estimate` reads. Needs an NVIDIA GPU with its driver and the GPU build of ONNX Runtime
# (`pip install 'onnxruntime-gpu[cuda,cudnn]'` into .fresco/venv, or FRESCO_ORT_LIB pointing
# at its libonnxruntime.so); says so and exits 2 where either is missing. Finishes in under
# 8 minutes (the bench is stopped after GPU_CHECK_TIMEOUT seconds, 420 by default).
#
#   scripts/gpu-check.sh                 # mosaic (or vintage when no model file can be had)
#   STYLE=candy GPU=1 BATCH=4 FRAMES=200 scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STYLE=${STYLE:-mosaic}
GPU=${GPU:-0}
BATCH=${BATCH:-1}
FRAMES=${FRAMES:-100}
LIMIT=${GPU_CHECK_TIMEOUT:-420}

say() { printf 'gpu-check: %s\n' "$*" >&2; }

# 1. A GPU and its driver.
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    say "no NVIDIA GPU here (nvidia-smi is missing or lists none): nothing to measure"
    exit 2
fi
say "GPUs: $(nvidia-smi -L | tr '\n' ';')"

# 2. The fresco binary.
FRESCO=${FRESCO:-target/release/fresco}
if [[ ! -x $FRESCO ]]; then
    if command -v cargo >/dev/null 2>&1; then
        say "building $FRESCO"
        cargo build --release -p fresco >&2
    else
        say "no $FRESCO and no cargo to build it; set FRESCO=/path/to/fresco"
        exit 2
    fi
fi

# 3. The GPU build of ONNX Runtime, and the CUDA/cuDNN libraries its wheel extras installed.
PY=.fresco/venv/bin/python3
[[ -x $PY ]] || PY=python3
if [[ -z ${FRESCO_ORT_LIB:-} ]]; then
    providers=$("$PY" -c 'import onnxruntime as o; print(",".join(o.get_available_providers()))' 2>/dev/null || true)
    if [[ $providers != *CUDAExecutionProvider* ]]; then
        say "no GPU build of ONNX Runtime for $PY (providers: ${providers:-none}); install it with"
        say "  $PY -m pip install 'onnxruntime-gpu[cuda,cudnn]'   (replacing onnxruntime)"
        say "or point FRESCO_ORT_LIB at a GPU build's libonnxruntime.so"
        exit 2
    fi
fi
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
if [[ -n $site && -d $site/nvidia ]]; then
    for lib in "$site"/nvidia/*/lib; do
        LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    done
    export LD_LIBRARY_PATH
fi

# 4. A model: the style if its file can be had (FRESCO_MODEL_DIR, the cache, a download),
#    otherwise the built-in vintage filter (a 1x1 convolution: it measures the pipeline, not a
#    style network).
if ! "$FRESCO" models pull "$STYLE" >/dev/null 2>&1 && [[ $STYLE != vintage ]]; then
    if ! "$FRESCO" models list 2>/dev/null | grep -E "^ *$STYLE\b" | grep -qv missing; then
        say "no model file for $STYLE here (set FRESCO_MODEL_DIR); measuring the built-in vintage filter instead"
        STYLE=vintage
    fi
fi

say "fresco bench --style $STYLE --device cuda:$GPU, 1920x1080, $FRAMES frames, batch $BATCH (at most $LIMIT s)"
set +e
out=$(timeout "$LIMIT" "$FRESCO" bench --style "$STYLE" --device "cuda:$GPU" --width 1920 --height 1080 \
    --frames "$FRAMES" --batch "$BATCH" --no-python 2>&1)
status=$?
set -e
if [[ $status -eq 124 ]]; then
    say "the bench did not finish within $LIMIT s; try fewer FRAMES"
    exit 1
fi
if [[ $status -ne 0 ]]; then
    printf '%s\n' "$out" >&2
    say "fresco bench failed (exit $status)"
    exit "$status"
fi
printf '%s\n' "$out"
model=$(printf '%s\n' "$out" | awk '/model-only/ {print $2}')
e2e=$(printf '%s\n' "$out" | awk '/end-to-end/ {print $2}')
echo "1080p model-only: $model frames/s"
echo "1080p end-to-end: $e2e frames/s"
