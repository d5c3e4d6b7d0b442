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
cargo test --workspace
