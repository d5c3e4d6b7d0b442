#!/usr/bin/env bash
# Installs what fresco needs on a Debian/Ubuntu machine and builds it:
#   - ffmpeg/ffprobe (apt), and python3-venv where venvs are missing
#   - ONNX Runtime from PyPI's `onnxruntime` wheel (plus onnx and numpy for the tests) in a
#     project-local virtual environment, .fresco/venv; fresco loads libonnxruntime from there
#   - the release build of fresco (target/release/fresco)
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install $* with your package manager" >&2; exit 1
  fi
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  echo "setup: installing ffmpeg"
  apt_install ffmpeg
fi

if [ ! -x .fresco/venv/bin/python3 ]; then
  echo "setup: creating .fresco/venv"
  if ! python3 -m venv .fresco/venv >/dev/null 2>&1; then
    rm -rf .fresco/venv
    apt_install python3-venv
    python3 -m venv .fresco/venv
  fi
fi
if ! .fresco/venv/bin/python3 -c "import onnxruntime, onnx, numpy" >/dev/null 2>&1; then
  echo "setup: installing onnxruntime, onnx and numpy from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check onnxruntime onnx numpy
fi

if [ "${1:-}" != "--deps-only" ]; then
  echo "setup: building fresco (release)"
  cargo build --release --quiet -p fresco
fi
