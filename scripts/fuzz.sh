#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each for SECONDS (default 15):
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Targets: the parsers that take outside input (job specs, storage events, signed URLs,
# ffprobe output, log redaction), from fresco-wire and fresco-media only, so the instrumented
# build is a few light crates (about 3 CPU-minutes and 0.5 GB; docs/security.md). scripts/test.sh
# runs this after the tests. Needs cargo-fuzz (installed from crates.io when missing), a C++
# compiler for libFuzzer (g++ from apt when missing) and libFuzzer's nightly-only flags, which the
# stable toolchain accepts with RUSTC_BOOTSTRAP=1.
# AddressSanitizer is used when the toolchain has its runtime, otherwise the targets build
# without a sanitizer (Rust is memory-safe; panics and assertion failures are still caught).
# Where cargo-fuzz cannot be had or the targets do not build, it says so and exits 0, unless
# FRESCO_REQUIRE_FUZZ=1; a crash always fails it. It prints how many inputs each target ran.
# Crashes are saved under fuzz/artifacts/TARGET/; the corpus grows in fuzz/corpus/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
shift || true
all_targets=(submit_request storage_events signed_url ffprobe_json redact)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

skip() {
  if [ "${FRESCO_REQUIRE_FUZZ:-}" = 1 ]; then
    echo "fuzz.sh: FAILED: $1 (FRESCO_REQUIRE_FUZZ=1)" >&2
    exit 1
  fi
  echo "fuzz.sh: SKIPPED: $1" >&2
  exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io"
  started=$SECONDS
  cargo install cargo-fuzz --locked --quiet || skip "cargo-fuzz could not be installed"
  echo "fuzz.sh: cargo-fuzz installed in $((SECONDS - started)) s"
fi
if ! command -v c++ >/dev/null && command -v apt-get >/dev/null; then
  if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
    echo "fuzz.sh: installing g++ (apt) to build libFuzzer"
    as_root_n() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
    { as_root_n apt-get update -qq && as_root_n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; } || true
  fi
fi
command -v c++ >/dev/null || skip "no C++ compiler (c++) to build libFuzzer; install g++"
export RUSTC_BOOTSTRAP=1

# Seeds: real examples of each input, so that the fuzzer starts from the interesting shapes.
seed() { mkdir -p "fuzz/corpus/$1"; printf '%s' "$3" > "fuzz/corpus/$1/$2"; }
seed submit_request valid '{"input":"/data/in.mp4","output":"az://videos/in/out.mp4","style":"mosaic","crf":18,"drop_streams":["subtitle"],"priority":5}'
seed submit_request traversal '{"input":"file:///data/../etc/passwd","output":"s3://bucket/a/b.mkv","model":"/m.onnx"}'
seed storage_events grid '[{"eventType":"Microsoft.Storage.BlobCreated","subject":"/blobServices/default/containers/in/blobs/a%20b.mp4","data":{"url":"https://acct.blob.core.windows.net/in/a%20b.mp4","contentLength":10}}]'
seed storage_events validation '[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"abc"}}]'
seed storage_events sns '{"Type":"Notification","Message":"{\"Records\":[{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":\"b\"},\"object\":{\"key\":\"in/a+b.mp4\",\"size\":5}}}]}"}'
seed storage_events eventbridge '{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"in/x.mp4","size":3}}}'
seed signed_url put $'PUT\n/v1/objects/uploads/1/clip.mp4\nexpires=1700000600&perm=w&kid=0a1b2c3d&sig=AAAA'
seed ffprobe_json report '{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":64,"height":48,"pix_fmt":"yuv420p","r_frame_rate":"25/1","time_base":"1/12800","side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]},{"index":1,"codec_type":"audio"}],"format":{"format_name":"mov,mp4","duration":"0.400000","nb_streams":2,"tags":{"title":"x"}}}'
seed ffprobe_json frames $'0\n512\n1024,\nN/A\n'
seed redact sas 'https://acct.blob.core.windows.net/c/x.mp4?sv=2022&se=2030&sp=r&sig=abc%2F: Invalid data; ftp://u:p@h/x'

build_started=$SECONDS
sanitizer=address
if ! (cd fuzz && cargo fuzz build -s address "${targets[0]}" >/dev/null 2>&1); then
  echo "fuzz.sh: no AddressSanitizer runtime in this toolchain; building without a sanitizer"
  sanitizer=none
fi
(cd fuzz && cargo fuzz build -s "$sanitizer") || skip "the fuzz targets did not build"
echo "fuzz.sh: targets built (sanitizer: $sanitizer) in $((SECONDS - build_started)) s"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  echo "fuzz.sh: $target for ${seconds}s"
  status=0
  (cd fuzz && cargo fuzz run -s "$sanitizer" "$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1) >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  echo "fuzz.sh: $target: ${runs:-?} runs in ${seconds}s (peak RSS ${rss:-?} MB)"
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz.sh: FAILED: $target found a crash (see fuzz/artifacts/$target/)" >&2
    exit 1
  fi
done
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
