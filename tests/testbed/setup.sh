#!/usr/bin/env bash
# Prepares everything the end-to-end test bed needs, once, and caches it:
#   * Debian packages: runc, busybox-static (image contents), protobuf-compiler (k8s-cri build);
#   * containerd 2.1.x from Debian unstable and 1.7.x from Debian trixie, each unpacked into a
#     private prefix (not installed);
#   * deterministic OCI image-layout tarballs built from the static busybox.
# Re-running it is cheap and changes nothing when everything is already there.
#
# State lives in ${BULKHEAD_TESTBED:-<repo>/.testbed}. Nothing outside it is touched except the
# Debian packages installed with apt-get.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="${BULKHEAD_TESTBED:-$repo/.testbed}"

# The containerd series the test bed runs, each from the Debian suite that carries it (Debian 12
# itself ships containerd 1.6, without NRI): 2.1 (NRI API v0.8; see the design notes) is the
# default; 1.7 (still common on managed Kubernetes nodes; NRI off unless configured) runs the
# baseline and decision e2e tests once more. tests/testbed/containerd.sh picks one of the prefixes.

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# The Debian archive this machine's apt already uses (the first source whose path ends in
# /debian), so the test bed follows the machine's mirror choice; BULKHEAD_DEBIAN_ARCHIVE overrides.
debian_archive() {
    if [ -n "${BULKHEAD_DEBIAN_ARCHIVE:-}" ]; then
        printf '%s\n' "$BULKHEAD_DEBIAN_ARCHIVE"
        return
    fi
    local uri
    uri="$( {
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -nE 's/^[[:space:]]*URIs:[[:space:]]*//p' | tr ' ' '\n'
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p'
    } | grep -E '/debian/?$' | head -n 1)"
    [ -n "$uri" ] || die "no Debian archive found in the apt sources; set BULKHEAD_DEBIAN_ARCHIVE"
    printf '%s\n' "${uri%/}"
}

[ "$(id -u)" = 0 ] || die "must run as root (containerd and runc need it)"
[ "$(uname -m)" = x86_64 ] || die "only linux/amd64 is supported, this is $(uname -m)"

# --- 1. Debian packages -------------------------------------------------------------------------
packages=(runc busybox-static protobuf-compiler ca-certificates python3 util-linux docker-registry)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Other apt users (unattended jobs, a colleague's build) may hold the dpkg lock: wait for it.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. containerd from Debian, unpacked privately ----------------------------------------------
# fetch_containerd SERIES SUITE PREFIX: the containerd package of Debian's SUITE, unpacked into
# PREFIX, which must then hold containerd SERIES.x. Does nothing when PREFIX is complete.
fetch_containerd() {
    local series="$1" suite="$2" prefix="$3"
    local bin="$prefix/usr/bin"
    if [ -x "$bin/containerd" ] && [ -x "$bin/ctr" ] && [ -x "$bin/containerd-shim-runc-v2" ]; then
        return 0
    fi
    log "fetching containerd $series from Debian $suite into $prefix"
    local apt_dir="$state/apt-$suite"
    rm -rf "$apt_dir"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$apt_dir/prefs" "$apt_dir/debs"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
        "$(debian_archive)" "$suite" > "$apt_dir/sources.list"
    # Every path apt would otherwise share with the system points into $apt_dir; the system's
    # package status is only read (apt needs it to build its cache), never written.
    local apt_opts=(
        -o "Dir::Etc::SourceList=$apt_dir/sources.list"
        -o "Dir::Etc::SourceParts=$apt_dir/parts"
        -o "Dir::Etc::PreferencesParts=$apt_dir/prefs"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache=$apt_dir/cache"
        -o "APT::Sandbox::User=root"
        -o "Acquire::Languages=none"
        -o "APT::Architecture=amd64"
        -o "APT::Architectures::=amd64"
    )
    apt-get "${apt_opts[@]}" -qq update
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download containerd)
    local deb version tool
    deb="$(ls "$apt_dir"/debs/containerd_*.deb 2>/dev/null | head -n1)"
    [ -n "$deb" ] || die "apt-get download containerd produced no .deb (Debian $suite)"
    rm -rf "$prefix.tmp"
    dpkg -x "$deb" "$prefix.tmp"
    for tool in containerd ctr containerd-shim-runc-v2; do
        [ -x "$prefix.tmp/usr/bin/$tool" ] || die "$deb has no usr/bin/$tool"
    done
    version="$("$prefix.tmp/usr/bin/containerd" --version)" || die "the unpacked containerd does not run: $deb"
    case "$version" in
        *" $series".*|*" v$series".*) ;;
        *) die "expected containerd $series.x from Debian $suite, got: $version (the archive moved on; pin another source)";;
    esac
    rm -rf "$prefix"
    mv "$prefix.tmp" "$prefix"
    rm -rf "$apt_dir"
    log "containerd $series ready: $version"
}

# The default; its prefix keeps the name it had before there were two.
fetch_containerd 2.1 sid "$state/containerd"
fetch_containerd 1.7 trixie "$state/containerd-1.7"

# --- 3. OCI image-layout tarballs ----------------------------------------------------------------
# The builder is deterministic: it only rewrites a tarball whose bytes would change.
python3 "$here/images.py" --busybox /bin/busybox --out "$state/images"

log "ready in $state"
