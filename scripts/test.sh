#!/usr/bin/env bash
# Runs the whole test suite. Needs what scripts/setup.sh installs (it runs it with --deps-only).
# Tests that need the real style models read FRESCO_MODEL_DIR (default: ../shared/models when
# present) and skip with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps-only
export PATH="$PWD/.fresco/venv/bin:$PATH"
if [ -z "${FRESCO_MODEL_DIR:-}" ] && [ -d ../shared/models ]; then
  export FRESCO_MODEL_DIR="$(cd ../shared/models && pwd)"
fi
cargo test --workspace
