#!/usr/bin/env bash
# The whole test suite: lint, unit tests, kernel integration tests on this kernel,
# and the same kernel tests in VMs on Debian's stock kernels (scripts/vm-test).
# Prints one summary line per suite and a final "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
vigil_prepare
set -e

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

echo "== lint (rustfmt, clippy; the kernel suite is not an --all-targets test)"
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo clippy --release -p vigil --test kernel -- -D warnings

echo "== build"
cargo build --release --workspace --all-targets

echo "== unit tests"
cargo test --release --workspace 2>&1 | tee "$log/unit"
# The kernel suite has its own harness and is run only when named.
echo "== kernel tests on this host ($(uname -r))"
cargo test --release -p vigil --test kernel 2>&1 | grep -v '^\[agent\]' | tee "$log/kernel"

set +e
vm_status=0
if [ "${VIGIL_SKIP_VM:-0}" = 1 ]; then
  echo "== VM matrix: skipped (VIGIL_SKIP_VM=1)"
  : > "$log/vm"
else
  echo "== VM matrix (Debian stock kernels under QEMU)"
  cargo xtask vm-test 2>&1 | tee "$log/vm"
  vm_status=${PIPESTATUS[0]}
fi
set -e

unit_passed=$(grep -h '^test result:' "$log/unit" | awk '{s+=$4} END{print s+0}')
unit_failed=$(grep -h '^test result:' "$log/unit" | awk '{s+=$6} END{print s+0}')
k_line=$(grep -h '^kernel tests:' "$log/kernel" | tail -1)
k_passed=$(echo "$k_line" | awk '{print $3}'); k_failed=$(echo "$k_line" | awk '{print $5}'); k_skipped=$(echo "$k_line" | awk '{print $7}')
vm_line=$(grep -h '^vm-test:' "$log/vm" 2>/dev/null | tail -1 || true)
vm_passed=$(echo "${vm_line:-x 0 p, 0 f, 0 s}" | awk '{print $2}'); vm_failed=$(echo "${vm_line:-x 0 p, 0 f, 0 s}" | awk '{print $4}'); vm_skipped=$(echo "${vm_line:-x 0 p, 0 f, 0 s}" | awk '{print $6}')

echo "== summary"
echo "unit: $unit_passed passed, $unit_failed failed"
echo "kernel ($(uname -r)): ${k_passed:-0} passed, ${k_failed:-0} failed, ${k_skipped:-0} skipped"
[ -n "${vm_line:-}" ] && echo "$vm_line"
echo "skipped (what this machine or kernel lacks):"
grep -h '^SKIP:' "$log/kernel" 2>/dev/null | sed "s/^SKIP: /  host $(uname -r): /" || true
grep -h '^ *SKIP ' "$log/vm" 2>/dev/null | sed 's/^ *SKIP /  vm: /' || true
total_passed=$((unit_passed + ${k_passed:-0} + ${vm_passed:-0}))
total_failed=$((unit_failed + ${k_failed:-0} + ${vm_failed:-0}))
total_skipped=$((${k_skipped:-0} + ${vm_skipped:-0}))
echo "all: $total_passed passed, $total_failed failed, $total_skipped skipped"
if [ "$total_failed" -ne 0 ] || [ -z "$k_line" ] || [ "$vm_status" -ne 0 ]; then
  exit 1
fi
