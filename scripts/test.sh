#!/usr/bin/env bash
# Checks formatting and lints, then runs every test. Prepares the ONNX Runtime library, the
# tiny test models, the sentence-embedding model, Chromium (Debian's package, for the HTML
# report's test) and llama.cpp's server (built once, in the background while the rest is
# prepared and linted) first. Extra arguments go to `cargo test`
# (e.g. ./scripts/test.sh --test engine).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/setup.sh" runtime
llama_log=$(mktemp)
"$ROOT/scripts/setup.sh" llama-server >"$llama_log" 2>&1 &
llama_setup=$!
"$ROOT/scripts/setup.sh" test-models embedding-model chromium
printf '\033[1m==> cargo fmt --check\033[0m\n' >&2
cargo fmt --all -- --check
printf '\033[1m==> cargo clippy\033[0m\n' >&2
cargo clippy --all-targets -- -D warnings
if ! wait "$llama_setup"; then
    cat "$llama_log" >&2
    rm -f "$llama_log"
    echo "preparing llama.cpp's server failed (see above)" >&2
    exit 1
fi
grep -v '^$' "$llama_log" | tail -n 3 >&2 || true
rm -f "$llama_log"
printf '\033[1m==> cargo test\033[0m\n' >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo's last block is often an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
