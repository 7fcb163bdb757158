#!/usr/bin/env bash
# The README's demo: set up the test bed (once), build bulkhead, then run a private containerd
# with bulkhead registered and show it checking real containers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/testbed/setup.sh
bash tests/toolchain.sh
cargo build --quiet --release -p bulkhead-daemon --bin bulkhead
cargo run --quiet --release -p bulkhead-e2e --bin bulkhead-demo
