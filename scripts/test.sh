#!/usr/bin/env bash
# Runs every test. Prepares the ONNX Runtime library, the tiny test models and the
# sentence-embedding model first.
# Extra arguments go to `cargo test` (e.g. ./scripts/test.sh --test engine).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/setup.sh" runtime test-models embedding-model
printf '\033[1m==> cargo fmt --check\033[0m\n' >&2
cargo fmt --all -- --check
printf '\033[1m==> cargo test\033[0m\n' >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo's last block is often an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
