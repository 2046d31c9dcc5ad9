#!/usr/bin/env bash
# Quick start: install what is missing, build vigil, and run the agent with
# the default policies in policies/.
# Extra arguments go to `vigil agent` (e.g. --export-filename /var/log/vigil.json).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
vigil_prepare
cargo build --release -p vigil
exec ./target/release/vigil agent --tracing-policy-dir policies "$@"
