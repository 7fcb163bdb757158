#!/usr/bin/env bash
# Builds the plugin component target/no_privileged.wasm from the Python sources and the WIT in
# ../../proto/wit, with componentize-py installed (pinned) in a private venv, .venv/.
#
#   build.sh                  install componentize-py if needed, then build
#   build.sh --install-only   only install componentize-py (tests/toolchain.sh does this)
#
# The only network use is the first `pip install` (PyPI); after that the build runs offline.
# Idempotent: an existing .venv with the pinned version is reused, an up-to-date component kept.
# Fails, never skips, when componentize-py cannot be installed. PYTHON (default python3) makes
# the venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# The componentize-py release this example is tested with; bump it deliberately.
componentize_py_version="0.25.1"
wit="../../proto/wit"
world="security-plugin"
out="target/no_privileged.wasm"

die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

install_only=0
case "$*" in
    --install-only) install_only=1 ;;
    "") ;;
    *) die "unknown arguments: $* (expected none or --install-only)" ;;
esac

cpy=".venv/bin/componentize-py"
if [ "$("$cpy" --version 2>/dev/null || true)" != "componentize-py $componentize_py_version" ]; then
    python="${PYTHON:-python3}"
    command -v "$python" >/dev/null || die "$python not found; install Python 3.11 or newer"
    if [ ! -x .venv/bin/pip ]; then
        rm -rf .venv
        "$python" -m venv .venv ||
            die "cannot create a venv with $python (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    printf 'build.sh: installing componentize-py==%s into %s/.venv\n' \
        "$componentize_py_version" "$here" >&2
    .venv/bin/pip install --quiet --disable-pip-version-check \
        "componentize-py==$componentize_py_version" ||
        die "cannot install componentize-py==$componentize_py_version from PyPI"
    [ "$("$cpy" --version)" = "componentize-py $componentize_py_version" ] ||
        die "$cpy is not version $componentize_py_version after installing it"
fi
[ "$install_only" = 0 ] || exit 0

# componentize-py output is not reproducible (a new digest every build, so bulkhead compiles it
# again and caches another ~35 MiB): rebuild only when a source, the WIT or the tool changed.
if [ -f "$out" ] && [ -z "$(find . -maxdepth 1 -name '*.py' -newer "$out" -print -quit)" ] &&
    [ -z "$(find "$wit" build.sh "$cpy" -newer "$out" -print -quit)" ]; then
    printf 'build.sh: %s/%s is up to date\n' "$here" "$out" >&2
    exit 0
fi

mkdir -p target
# --stub-wasi replaces every WASI import with a trapping stub inside the component. bulkhead
# links WASI imports as traps, and CPython asks wasi:cli/environment for its environment when an
# instance starts, so without the flag every call (metadata() at load first) traps. The app is
# imported at build time and the interpreter snapshotted: importing needs no WASI at run time.
"$cpy" -q -d "$wit" -w "$world" componentize --stub-wasi -p . app -o "$out.tmp"
mv "$out.tmp" "$out"
printf 'build.sh: built %s/%s (%s bytes)\n' "$here" "$out" "$(stat -c %s "$out")" >&2
