#!/usr/bin/env bash
# The burst benchmark: N concurrent CRI create+starts through a private containerd with and
# without bulkhead registered, printed as wall-time ratios per N. Sets up the test bed (once,
# cached), builds bulkhead and the benchmark in release, and passes its arguments on
# (--sizes N,N,..., --rounds R, --bulkhead-arg ARG...). Needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/testbed/setup.sh
bash tests/toolchain.sh
cargo build --release -p bulkhead-daemon --bin bulkhead -p bulkhead-e2e --bin bulkhead-burst
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
BULKHEAD_BIN="$target_dir/release/bulkhead" exec "$target_dir/release/bulkhead-burst" "$@"
