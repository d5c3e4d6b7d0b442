#!/usr/bin/env bash
# The clip of docs/temporal.md, made from one real photo (no real footage is on the development
# machine): a 640x360 window over the photo while the camera zooms in (the photo scaled from
# 1280x960, growing 6x4.5 px a frame, bicubic) and pans (3 px right and 1 px down a frame), with
# a cut-out of the same photo (225x200) moving over it 5 px left and 2.5 px down a frame: camera
# and subject motion, with the occlusions the cut-out makes. 24 frames/s, lossless (FFV1).
# `bench/temporal_clip.sh OUT.mkv [PHOTO] [FRAMES]`; the photo defaults to
# $FRESCO_MODEL_DIR/scoring/dog.jpg (../shared/models/scoring/dog.jpg), FRAMES to 48.
set -euo pipefail
out=${1:?usage: bench/temporal_clip.sh OUT.mkv [PHOTO] [FRAMES]}
here=$(cd "$(dirname "$0")/.." && pwd)
photo=${2:-${FRESCO_MODEL_DIR:-$here/../shared/models}/scoring/dog.jpg}
frames=${3:-48}
ffmpeg -nostdin -v error -y -loop 1 -framerate 24 -i "$photo" -filter_complex \
  "[0:v]format=rgb24,split[a][b];\
[a]scale=w='1280+n*6':h='960+n*4.5':eval=frame:flags=bicubic,\
crop=640:360:x='(iw-640)/2-80+n*3':y='(ih-360)/2-40+n*1'[win];\
[b]crop=180:160:40:250,scale=225:200[cut];\
[win][cut]overlay=x='340-n*5':y='40+n*2.5':format=rgb,format=rgb24" \
  -frames:v "$frames" -c:v ffv1 -pix_fmt bgr0 "$out"
