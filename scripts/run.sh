#!/usr/bin/env bash
# Runs shopkeep (default: `shopkeep run`, the Discord bot; without DISCORD_TOKEN it opens
# the terminal chat on the default model). Prepares the runtime, the default model and the
# sentence-embedding model first.
#   ./scripts/run.sh                      # the bot, or the terminal chat
#   ./scripts/run.sh chat --once "Where is my parcel?"
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/setup.sh" runtime default-model embedding-model
printf '\033[1m==> Building shopkeep (release; the first build takes a few minutes)\033[0m\n' >&2
cargo build --release --quiet
exec "$ROOT/target/release/shopkeep" "$@"
