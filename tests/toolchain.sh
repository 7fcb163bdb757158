#!/usr/bin/env bash
# Adds what the Rust toolchain needs beyond a plain install: the Wasm target plugins are built
# for, and the formatter and linter CI runs. Idempotent.
set -euo pipefail
installed="$(rustup target list --installed)"
grep -qx wasm32-wasip2 <<<"$installed" || rustup target add wasm32-wasip2
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
