#!/usr/bin/env bash
# Runs every test. Prepares the ONNX Runtime library and the tiny test models first.
# Extra arguments go to `cargo test` (e.g. ./scripts/test.sh engine).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/setup.sh" runtime test-models
printf '\033[1m==> cargo fmt --check\033[0m\n' >&2
cargo fmt --all -- --check
printf '\033[1m==> cargo test\033[0m\n' >&2
cargo test "$@"
