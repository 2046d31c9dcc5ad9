#!/usr/bin/env bash
# Regenerates the committed x86_64 vmlinux.h from this machine's kernel BTF.
# CO-RE relocates field offsets at load time, so one header serves all kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
bpftool btf dump file "${1:-/sys/kernel/btf/vmlinux}" format c > crates/vigil-bpf/bpf/include/vmlinux.h
