#!/usr/bin/env bash
# The README's test command: every test of the workspace, the e2e suite against a real
# containerd included. Sets up what it needs first (idempotent, cached in .testbed/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/testbed/setup.sh
bash tests/toolchain.sh
# Release build: the e2e tests run the bulkhead binary (built before any test starts), and
# plugin compilation and decision latency in a debug host are 10-25x slower than on a node.
cargo build --release --workspace --bins
# Plugin component tests share one wasm build of the SDK instead of one per plugin crate.
export BULKHEAD_COMPONENT_TARGET_DIR="$PWD/target/bulkhead-component"
cargo test --release --workspace "$@"
# The Python example plugin: built with componentize-py and run against its cases by the
# bulkhead built above; it fails (never skips) when componentize-py cannot be installed.
BULKHEAD="$PWD/target/release/bulkhead" bash examples/python-no-privileged/test.sh
