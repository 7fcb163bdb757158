#!/usr/bin/env bash
# Builds the bulkhead container image from an already built `bulkhead` binary, without a
# container engine, as an OCI image layout: a directory and a tar of it, which
# `ctr -n k8s.io images import`, `skopeo copy oci-archive:...` and other OCI tools accept.
#
#   deploy/image/build.sh [--binary PATH] [--name REF] [--out DIR] [--keep-debug-info]
#
#   --binary PATH      the bulkhead binary ($BULKHEAD_BIN, else <repo>/target/release/bulkhead,
#                      from `cargo build --release --workspace --bins`); never rebuilt here
#   --name REF         the image reference recorded in the layout
#                      (default registry.example.com/bulkhead/bulkhead:<version of the binary>)
#   --out DIR          where to write (default <repo>/target/image); it gets DIR/oci/ (the
#                      layout) and DIR/bulkhead.oci.tar (the same, as one tar), both replaced
#   --keep-debug-info  copy the binary as it is (the release profile keeps line tables, ~4x
#                      the size); by default the copy is `strip --strip-debug`ped, which keeps
#                      the symbol table, so backtraces still name functions
#
# The image is distroless: one layer with /usr/bin/bulkhead, exactly the shared libraries `ldd`
# lists for it plus the dynamic loader (glibc, libgcc_s, libm), and empty /etc/bulkhead,
# /var/cache/bulkhead, /run, /tmp. No shell, no package manager, no CA certificates or time
# zones (bulkhead speaks only unix sockets and plain-HTTP metrics, and logs in UTC). The
# first-party plugins are embedded in the binary; the image is checked to run them (`bulkhead
# check-config` in a chroot of the layer, when run as root). It runs as root, as bulkhead must
# (NRI socket, stored-spec patches, its secrets tmpfs).
#   Entrypoint ["/usr/bin/bulkhead"]
#   Cmd        ["run", "--config", "/etc/bulkhead/bulkhead.toml", "--log-format", "json"]
#
# Reproducible: the same binary, SOURCE_DATE_EPOCH and git commit give the same manifest digest.
# Every file has mtime SOURCE_DATE_EPOCH, owner 0:0, a fixed mode; entries are sorted by name;
# gzip runs with -n; the config's `created` is SOURCE_DATE_EPOCH, which defaults to the commit
# time of the checkout's HEAD (0 outside a git checkout). The libraries come from the build
# machine, so build on the distribution the binary was built on (Debian 12 here).
#
# Prints KEY=VALUE lines: IMAGE_NAME, IMAGE_DIGEST (the manifest's), IMAGE_LAYOUT, IMAGE_TAR,
# LAYER_BYTES (compressed), UNPACKED_BYTES, IMAGE_TAR_BYTES. Needs GNU tar, gzip, python3,
# binutils (strip) and ldd (libc-bin): all on Debian 12.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

binary="${BULKHEAD_BIN:-$repo/target/release/bulkhead}"
name=""
out="$repo/target/image"
strip_debug=1
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        --name) name="${2:?--name needs an image reference}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --keep-debug-info) strip_debug=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

{ [ -f "$binary" ] && [ -x "$binary" ]; } || die "no executable bulkhead binary at $binary: cargo build --release --workspace --bins"
version="$("$binary" --version | awk '{ print $2 }')"
[ -n "$version" ] || die "$binary --version printed no version"
name="${name:-registry.example.com/bulkhead/bulkhead:$version}"

case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) die "unsupported machine $(uname -m)" ;;
esac

epoch="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}"
revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The absolute paths of the shared libraries and the dynamic loader the binary loads, one a line.
# Fails on a library the loader cannot find; prints nothing for a static binary.
shared_libraries() {
    local listing
    if ! listing="$(ldd "$1" 2>&1)"; then
        case "$listing" in
            *"not a dynamic executable"*|*"statically linked"*) return 0 ;;
            *) die "ldd $1 failed: $listing" ;;
        esac
    fi
    if grep -q 'not found' <<<"$listing"; then
        die "ldd $1 cannot resolve every library:"$'\n'"$listing"
    fi
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)";
    # linux-vdso has no file.
    awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' <<<"$listing"
}

# Fills directory $1 with the image's file system, every mode set explicitly (no umask leaks).
stage_rootfs() {
    local root="$1" lib
    install -d -m 0755 "$root/usr/bin" "$root/etc/bulkhead" "$root/var/cache/bulkhead" \
        "$root/run" "$root/proc" "$root/sys" "$root/dev"
    install -d -m 1777 "$root/tmp"
    if [ "$strip_debug" = 1 ]; then
        strip --strip-debug -o "$root/usr/bin/bulkhead" "$binary"
    else
        cp "$binary" "$root/usr/bin/bulkhead"
    fi
    chmod 0755 "$root/usr/bin/bulkhead"
    while read -r lib; do
        [ -n "$lib" ] || continue
        # install follows symlinks: the image gets the file's content under the name ldd used.
        install -D -m 0644 "$lib" "$root$lib"
        case "$lib" in */ld-linux*) chmod 0755 "$root$lib" ;; esac
    done < <(shared_libraries "$binary")
    find "$root" -type d ! -path "$root/tmp" -exec chmod 0755 {} +
}

# A reproducible tar of the contents of directory $1 (entries named without a ./ prefix) at $2.
deterministic_tar() {
    local dir="$1" tarball="$2"
    local entries
    mapfile -t entries < <(cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)
    LC_ALL=C tar --create --file "$tarball" --directory "$dir" \
        --format=posix --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
        --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
        --no-acls --no-xattrs --no-selinux \
        -- "${entries[@]}"
}

# Runs the staged image in a chroot: the binary starts with only the layer's libraries and loads
# its embedded plugins. Needs root; skipped (with a note) otherwise.
smoke_test() {
    local root="$1"
    if [ "$(id -u)" != 0 ]; then
        log "not root: skipping the chroot check of the image"
        return
    fi
    chroot "$root" /usr/bin/bulkhead --version >/dev/null ||
        die "the image's bulkhead does not start in a chroot of its layer"
    local output
    output="$(chroot "$root" /usr/bin/bulkhead check-config 2>&1)" ||
        die "bulkhead check-config fails inside the image:"$'\n'"$output"
    local plugin
    for plugin in image-policy seccomp capabilities secrets; do
        grep -q "builtin = \"$plugin\"" <<<"$output" ||
            die "the image's bulkhead does not load the embedded plugin $plugin:"$'\n'"$output"
    done
}

root="$work/rootfs"
stage_rootfs "$root"
deterministic_tar "$root" "$work/layer.tar"
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
# After the layer is made: check-config writes compiled plugins to the staged cache directory.
smoke_test "$root"

labels=(
    --label "org.opencontainers.image.title=bulkhead"
    --label "org.opencontainers.image.description=WebAssembly security plugins for containerd (NRI plugin)"
    --label "org.opencontainers.image.version=$version"
    --label "org.opencontainers.image.source=https://github.com/bulkhead-dev/bulkhead"
    --label "org.opencontainers.image.licenses=Apache-2.0"
    --label "org.opencontainers.image.created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
)
[ -z "$revision" ] || labels+=(--label "org.opencontainers.image.revision=$revision")

layout="$work/oci"
digest="$(python3 "$here/oci_layout.py" --layer-tar "$work/layer.tar" --layer-gz "$work/layer.tar.gz" \
    --out "$layout" --name "$name" --arch "$arch" --created "$epoch" \
    --entrypoint '["/usr/bin/bulkhead"]' \
    --cmd '["run", "--config", "/etc/bulkhead/bulkhead.toml", "--log-format", "json"]' \
    "${labels[@]}")"
# The layout's files are blobs and JSON: readable by all, whatever the umask.
find "$layout" -type d -exec chmod 0755 {} +
find "$layout" -type f -exec chmod 0644 {} +
deterministic_tar "$layout" "$work/bulkhead.oci.tar"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -rf "$out/oci"
mv "$layout" "$out/oci"
mv "$work/bulkhead.oci.tar" "$out/bulkhead.oci.tar"
log "built $name ($digest) in $out"
echo "IMAGE_NAME=$name"
echo "IMAGE_DIGEST=$digest"
echo "IMAGE_LAYOUT=$out/oci"
echo "IMAGE_TAR=$out/bulkhead.oci.tar"
echo "LAYER_BYTES=$(stat -c %s "$work/layer.tar.gz")"
echo "UNPACKED_BYTES=$(stat -c %s "$work/layer.tar")"
echo "IMAGE_TAR_BYTES=$(stat -c %s "$out/bulkhead.oci.tar")"
