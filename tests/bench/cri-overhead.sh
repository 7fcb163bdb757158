#!/usr/bin/env bash
# The CRI overhead benchmark: latency of CreateContainer and StartContainer through a private
# containerd in five arms (without bulkhead, with its baseline, with no plugins; containers with
# and without RuntimeDefault seccomp), printed as the performance goals' ratios. Sets up the
# test bed (once, cached), builds bulkhead and the benchmark in release, and passes its
# arguments on (--rounds R, --batch K, --arms A,B,..., --bulkhead-arg ARG...). Needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/testbed/setup.sh
bash tests/toolchain.sh
cargo build --release -p bulkhead-daemon --bin bulkhead -p bulkhead-e2e --bin bulkhead-cri-overhead
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
BULKHEAD_BIN="$target_dir/release/bulkhead" exec "$target_dir/release/bulkhead-cri-overhead" "$@"
