#!/usr/bin/env bash
# Quick start: install what is missing, build vigil, and run the agent with
# the default policies in policies/.
# Extra arguments go to `vigil agent` (e.g. --export-filename /var/log/vigil.json).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
vigil_prepare
cargo build --release -p vigil
# The gRPC API on a socket of this agent's own (named after its pid), so that
# several agents can run side by side, unless the arguments choose one.
api=()
case " $* " in
*" --server-address"*) ;;
*)
	mkdir -p /run/vigil
	sock="unix:///run/vigil/api-$$.sock"
	echo "vigil's API: export VIGIL_SERVER_ADDRESS=$sock" >&2
	api=("--server-address=$sock")
	;;
esac
exec ./target/release/vigil agent --tracing-policy-dir policies "${api[@]}" "$@"
