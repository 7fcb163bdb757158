#!/usr/bin/env bash
# The README's test command: every test of the workspace, the e2e suite against a real
# containerd included. Sets up what it needs first (idempotent, cached in .testbed/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/testbed/setup.sh
bash tests/toolchain.sh
# The e2e tests run the bulkhead binary: build it before any test starts.
cargo build --workspace --bins
cargo test --workspace "$@"
