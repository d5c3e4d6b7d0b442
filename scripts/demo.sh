#!/usr/bin/env bash
# Sets up fresco, makes (or takes) a short clip with sound, styles it, and says where it is.
#   scripts/demo.sh [INPUT_VIDEO]
# Uses the mosaic style when its model can be had (FRESCO_MODEL_DIR, the cache, or a
# download), otherwise the built-in `vintage` filter, and says which.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p out
input="${1:-}"
if [ -z "$input" ]; then
  input=out/sample.mp4
  ffmpeg -v error -y -f lavfi -i "testsrc2=s=640x360:r=25:d=2" -f lavfi -i "sine=f=440:d=2" \
    -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$input"
  echo "demo: made a 2 s sample clip with sound: $input"
fi
if [ -z "${FRESCO_MODEL_DIR:-}" ] && [ -d ../shared/models ]; then
  export FRESCO_MODEL_DIR="$(cd ../shared/models && pwd)"
fi
# cargo builds into $CARGO_TARGET_DIR where one is set (scripts/setup.sh's `cargo build`).
fresco="${CARGO_TARGET_DIR:-target}/release/fresco"
style=mosaic
# The list is read whole before grep looks at it: `grep -q` stops reading at its match, and
# under pipefail the listing's write to the closed pipe would fail the test.
if ! "$fresco" models pull mosaic >/dev/null 2>&1 && \
   ! grep -q '^mosaic *yes' <<<"$("$fresco" models list)"; then
  style=vintage
  echo "demo: the mosaic model is not available offline here; using the built-in vintage filter (a hand-built ONNX graph, not a learned style)"
fi
out="out/$(basename "${input%.*}").$style.mp4"
"$fresco" run "$input" -o "$out" --style "$style" --overwrite
echo "demo: styled with '$style': $out"
