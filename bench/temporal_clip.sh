#!/usr/bin/env bash
# The clip of docs/temporal.md: a 640x360 window panning over a real photo (3 px right and 1 px
# down a frame) with a cut-out of the photo moving over it (5 px left and 2 px down a frame),
# 24 frames/s, 48 frames, lossless (FFV1). `bench/temporal_clip.sh OUT.mkv [PHOTO]`; the photo
# defaults to $FRESCO_MODEL_DIR/scoring/dog.jpg (../shared/models/scoring/dog.jpg).
set -euo pipefail
out=${1:?usage: bench/temporal_clip.sh OUT.mkv [PHOTO]}
here=$(cd "$(dirname "$0")/.." && pwd)
photo=${2:-${FRESCO_MODEL_DIR:-$here/../shared/models}/scoring/dog.jpg}
ffmpeg -nostdin -v error -y -loop 1 -framerate 24 -i "$photo" -filter_complex \
  "[0:v]format=rgb24,scale=1280:960,split[bg][fg];\
[fg]crop=160:120:640:480,scale=200:150[cut];\
[bg]crop=640:360:x='20+n*3':y='20+n*1',format=rgb24[win];\
[win][cut]overlay=x='320-n*5':y='72+n*2':format=rgb,format=rgb24" \
  -frames:v 48 -c:v ffv1 -pix_fmt bgr0 "$out"
