#!/usr/bin/env bash
# Tests the example twice, like every bulkhead plugin: the policy natively (CPython + unittest,
# against the bindings componentize-py generates), then the built component in bulkhead's real
# runtime against cases.json (`bulkhead plugin test`). Fails on any failure; the last line is
# `N passed, M failed`.
#
# BULKHEAD names the bulkhead binary (default: the workspace's target/release/bulkhead, else
# `bulkhead` on PATH). Building needs componentize-py, which build.sh installs (PyPI, once).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

bulkhead="${BULKHEAD:-}"
if [ -z "$bulkhead" ]; then
    if [ -x ../../target/release/bulkhead ]; then
        bulkhead="../../target/release/bulkhead"
    else
        bulkhead="$(command -v bulkhead)" ||
            die "no bulkhead binary: set BULKHEAD or run cargo build --release -p bulkhead-daemon"
    fi
fi
[ -x "$bulkhead" ] || die "$bulkhead is not an executable"

bash build.sh

# The policy natively: the generated bindings stand in for the component's.
rm -rf target/bindings
.venv/bin/componentize-py -q -d ../../proto/wit -w security-plugin bindings target/bindings
PYTHONPATH="target/bindings:." PYTHONDONTWRITEBYTECODE=1 .venv/bin/python -m unittest test_policy

# The component, in the runtime the daemon uses, with the daemon's default limits (16 MiB, 100 ms).
"$bulkhead" plugin test target/no_privileged.wasm cases.json
