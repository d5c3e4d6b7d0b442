#!/usr/bin/env bash
# The checks of the code that are not tests:
#   scripts/lint.sh licenses   the licences of the whole dependency tree (cargo-deny, deny.toml)
#   scripts/lint.sh code       clippy over every crate and target with every optional feature
#                              (`otel` included) as errors, then the binary without its default
#                              features (no Azure/S3 backends), so no feature combination rots;
#                              then the documentation (cargo doc), whose links must resolve
# scripts/test.sh runs `licenses` before the tests (seconds) and `code` after them (clippy of
# the whole tree costs a few CPU-minutes; the tests are the main verdict and report first).
# cargo-deny is installed from crates.io when missing; where it cannot be, this says so and
# exits 0, unless FRESCO_REQUIRE_DENY=1. A licence outside deny.toml's list always fails.
set -euo pipefail
cd "$(dirname "$0")/.."

licenses() {
  if ! cargo deny --version >/dev/null 2>&1; then
    echo "lint.sh: installing cargo-deny from crates.io"
    local started=$SECONDS
    if ! cargo install cargo-deny --locked --quiet; then
      if [ "${FRESCO_REQUIRE_DENY:-}" = 1 ]; then
        echo "lint.sh: FAILED: cargo-deny could not be installed (FRESCO_REQUIRE_DENY=1)" >&2
        exit 1
      fi
      echo "lint.sh: SKIPPED: cargo-deny could not be installed; licences not checked" >&2
      return 0
    fi
    echo "lint.sh: cargo-deny installed in $((SECONDS - started)) s"
  fi
  # cargo-deny reads `cargo metadata` for every platform and feature: fetch those crates (a
  # no-op when they are there), then check without the network (no advisory database needed).
  cargo fetch --locked --quiet
  cargo deny --offline check licenses
}

code() {
  cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
  # Without the cloud backends (fresco-store's features `azure` and `s3`): the code behind
  # `cfg(not(feature = ...))` compiles and stays clean too.
  cargo clippy -p fresco --no-default-features --locked -- -D warnings
  # The code's documentation, private items included (it is written for whoever works on the
  # code): every link must resolve. Links from public items to private ones are allowed, as
  # they resolve in this private build.
  RUSTDOCFLAGS="-D warnings -A rustdoc::private_intra_doc_links" \
    cargo doc --workspace --no-deps --document-private-items --locked
}

case "${1:-}" in
  licenses) licenses ;;
  code) code ;;
  *) echo "usage: scripts/lint.sh licenses|code" >&2; exit 2 ;;
esac
