#!/usr/bin/env bash
# Installs what building and running vigil needs on Debian 12 (bookworm),
# only what is missing, and mounts the kernel filesystems vigil uses.
# Sourced by run.sh and test.sh; safe to run again.
set -euo pipefail

VIGIL_APT_PACKAGES=(
  clang-19 llvm-19          # BPF programs (CO-RE), compiled at build time
  libclang-19-dev           # bindgen: the Rust view of bpf/include/intf.h
  libelf-dev zlib1g-dev pkg-config   # libbpf
  bpftool                   # regenerating vmlinux.h (scripts/gen-vmlinux.sh)
  util-linux                # setpriv, unshare (tests)
  procps                    # ps, pgrep (tests, benchmarks)
  systemtap-sdt-dev         # <sys/sdt.h>: the USDT probe target the kernel tests build
  openssl                   # certificates for the TLS API tests (and docs/api.md)
)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "vigil: run as root (loading BPF programs needs it): sudo $0" >&2
    exit 1
  fi
}

install_missing_packages() {
  local missing=()
  for p in "${VIGIL_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "vigil: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

require_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    for c in "$HOME/.cargo/bin/cargo" /root/.cargo/bin/cargo; do
      [ -x "$c" ] && export PATH="$(dirname "$c"):$PATH" && return
    done
    echo "vigil: Rust is missing: install stable Rust (>= 1.85) with rustup, then run this again" >&2
    exit 1
  fi
}

mount_kernel_filesystems() {
  mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
}

vigil_prepare() {
  need_root
  install_missing_packages
  require_cargo
  mount_kernel_filesystems
}
