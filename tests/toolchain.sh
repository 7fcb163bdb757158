#!/usr/bin/env bash
# Adds what the Rust toolchain needs beyond a plain install: the Wasm target plugins are built
# for, and the formatter and linter CI runs; and componentize-py for the Python example plugin
# (PyPI, pinned, into the example's .venv). Idempotent.
set -euo pipefail
installed="$(rustup target list --installed)"
grep -qx wasm32-wasip2 <<<"$installed" || rustup target add wasm32-wasip2
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
# The Python example plugin (examples/python-no-privileged) is built with componentize-py, which
# its build.sh installs from PyPI into a private venv. Debian's python3 makes venvs only with
# python3-venv (it carries ensurepip).
if ! python3 -c 'import ensurepip' 2>/dev/null; then
    command -v apt-get >/dev/null || { echo "toolchain: python3 has no venv support" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends python3-venv >/dev/null
fi
bash "$(dirname "${BASH_SOURCE[0]}")/../examples/python-no-privileged/build.sh" --install-only
