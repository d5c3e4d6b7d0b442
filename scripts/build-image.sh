#!/usr/bin/env bash
# Builds the image from the Dockerfile where a container engine can (a docker client with a
# daemon that answers), runs it once (`fresco --version` as user 10001 with a read-only root)
# and prints its size; where none can, says so and exits 0 (scripts/lint-dockerfile.sh still
# lints the file). scripts/test.sh runs it; FRESCO_BUILD_IMAGE=0 skips it, and
# FRESCO_REQUIRE_IMAGE=1 makes a missing engine an error.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${FRESCO_IMAGE_TAG:-fresco:ci}
if [ "${FRESCO_BUILD_IMAGE:-1}" = 0 ]; then
  echo "build-image: FRESCO_BUILD_IMAGE=0: not built" >&2
  exit 0
fi
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  if [ "${FRESCO_REQUIRE_IMAGE:-}" = 1 ]; then
    echo "build-image: FRESCO_REQUIRE_IMAGE=1 but no container engine answers (docker info failed)" >&2
    exit 1
  fi
  echo "build-image: SKIPPED: no container engine answers here (docker info failed); the Dockerfile is linted instead" >&2
  exit 0
fi
DOCKER_BUILDKIT=1 docker build -t "$tag" .
docker run --rm --read-only --tmpfs /tmp "$tag" --version
bytes=$(docker image inspect --format '{{.Size}}' "$tag")
echo "build-image: $tag built: $((bytes / 1000000)) MB ($bytes bytes, docker image inspect .Size)"
