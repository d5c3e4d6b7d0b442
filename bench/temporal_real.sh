#!/usr/bin/env bash
# Real footage for docs/temporal.md's figures: a hand-held camera filming a hand that turns and
# moves a printed box over a table (OpenCV's tracking tutorial clip `box.mp4`, 640x480 H.264 at
# 29.97 frames/s), frames 120 to 311 (192 frames, 6.4 s: the camera tilts and sways while the box
# moves, turns and occludes the table and the room behind it), cropped to 640x360 (rows 60 to 419)
# and stored lossless (FFV1), so that every run styles the same decoded pixels.
#
# The clip ships in Debian's `opencv-doc` package (examples of OpenCV 4.6.0, Apache 2.0 / BSD
# licensed), which this script fetches with `apt-get download` (no root needed, Debian's package
# registry only) into a cache folder and unpacks with dpkg-deb. Nothing of it is committed.
# `bench/temporal_real.sh OUT.mkv [FIRST] [FRAMES]` (defaults 120 and 192).
set -euo pipefail
out=${1:?usage: bench/temporal_real.sh OUT.mkv [FIRST] [FRAMES]}
first=${2:-120}
frames=${3:-192}
cache=${FRESCO_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fresco-bench}
mkdir -p "$cache"
box="$cache/box.mp4"
if [ ! -s "$box" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download opencv-doc >/dev/null 2>&1) || {
    echo "temporal_real.sh: could not fetch Debian's opencv-doc package (apt-get download opencv-doc); run apt-get update first?" >&2
    exit 1
  }
  dpkg-deb --fsys-tarfile "$work"/opencv-doc_*.deb |
    tar -xO ./usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz | gunzip > "$box.part"
  mv "$box.part" "$box"
fi
# The stream's first packet is damaged (ffmpeg warns of a non-intra slice in an IDR unit); the
# frames taken here start four seconds later.
ffmpeg -nostdin -v error -y -i "$box" \
  -vf "trim=start_frame=$first:end_frame=$((first + frames)),setpts=PTS-STARTPTS,crop=640:360:0:60" \
  -an -c:v ffv1 -pix_fmt bgr0 "$out" 2>&1 | grep -v -e 'non-intra slice in an IDR' -e decode_slice_header >&2 || true
test "$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$out")" = "$frames"
