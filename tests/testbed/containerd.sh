#!/usr/bin/env bash
# Runs a private containerd 2.1 or 1.7 (NRI enabled, runc, CRI, no CNI) in DIR for end-to-end tests.
#
#   containerd.sh up DIR       write DIR/config.toml, start containerd, import the test images,
#                              print CONTAINERD_SOCKET=, NRI_SOCKET=, CONTAINERD_LOG=,
#                              CGROUP_PARENT=, CONTAINERD_SERIES= lines
#   containerd.sh down DIR     kill every container and shim, stop containerd, unmount, rm -rf DIR
#   containerd.sh restart DIR  SIGTERM containerd and start it again (containers and shims survive)
#   containerd.sh stop DIR     SIGTERM containerd and leave it stopped (containers and shims survive)
#   containerd.sh start DIR    start a stopped containerd again
#   containerd.sh down-all     down every DIR under <state>/run (test beds of killed test runs;
#                              only when no tests are running)
#
# BULKHEAD_CONTAINERD picks the containerd `up` runs: 2.1 (the default; Debian unstable's, config
# version 3) or 1.7 (Debian trixie's, config version 2, where NRI is off unless the config turns it
# on). The choice is kept in DIR, so restart and down use the same containerd whatever the
# variable says then.
#
# Opt-in: BULKHEAD_GUARD_BASE_SPEC=/abs/spec.json makes `up` set it as the runc runtime's
# base_runtime_spec (every CRI container's spec starts from it), e.g. the output of
# `bulkhead-guard print-base-spec`. Unset: containerd's built-in default spec, as always.
#
# Run tests/testbed/setup.sh first. Keep DIR short: unix socket paths are limited to 108 bytes.
# Several instances can run side by side, each in its own DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="${BULKHEAD_TESTBED:-$repo/.testbed}"
images="$state/images"
runc_bin="/usr/sbin/runc"

log() { printf 'containerd.sh: %s\n' "$*" >&2; }
die() { printf 'containerd.sh: error: %s\n' "$*" >&2; exit 1; }

usage() { die "usage: $0 up|down|restart|stop|start DIR | down-all"; }
[ "$(id -u)" = 0 ] || die "must run as root (containerd and runc need it)"
if [ "${1:-}" = down-all ] && [ $# -eq 1 ]; then
    for d in "$state"/run/*/; do
        [ -d "$d" ] || continue
        log "tearing down $d"
        "$0" down "$d"
    done
    exit 0
fi
[ $# -eq 2 ] || usage
cmd="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"

sock="$dir/containerd.sock"
series_file="$dir/containerd-series"
nri_sock="$dir/nri.sock"
pidfile="$dir/containerd.pid"
logfile="$dir/containerd.log"
# Pods made by the Rust fixtures use this cgroup parent, so teardown can remove every cgroup
# this instance created (containerd's default, /k8s.io/<id>, is shared by all instances).
cgroup_parent="/bulkhead-$(basename "$dir")"

# The containerd series of this DIR: the one `up` recorded, else the one asked for.
if [ -f "$series_file" ] && [ "$cmd" != up ]; then
    series="$(cat "$series_file")"
else
    series="${BULKHEAD_CONTAINERD:-2.1}"
fi
case "$series" in
    2.1) prefix="$state/containerd/usr/bin" ;;
    1.7) prefix="$state/containerd-1.7/usr/bin" ;;
    *) die "BULKHEAD_CONTAINERD=$series: the test bed has containerd 2.1 (the default) and 1.7" ;;
esac

export PATH="$prefix:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ctr() { "$prefix/ctr" --address "$sock" --namespace k8s.io "$@"; }

check_ready() {
    [ -x "$prefix/containerd" ] && [ -x "$runc_bin" ] && [ -d "$images" ] ||
        die "the test bed is not set up: run tests/testbed/setup.sh (as root)"
    # sun_path is 108 bytes including the NUL; the ttrpc socket has the longest name.
    [ "${#sock}" -le 96 ] || die "DIR is too long for unix sockets (${#sock} > 96 bytes): $dir"
}

write_config() {
    # The cgroupfs driver works on cgroup v1, hybrid and v2 hosts, with or without systemd as
    # PID 1 (test machines have none), and takes plain paths as pod cgroup parents.
    local systemd_cgroup=false
    # Opt-in base runtime spec: one extra line in the runc runtime table, nothing otherwise.
    local base_spec=""
    if [ -n "${BULKHEAD_GUARD_BASE_SPEC:-}" ]; then
        [ -f "$BULKHEAD_GUARD_BASE_SPEC" ] || die "BULKHEAD_GUARD_BASE_SPEC: no file $BULKHEAD_GUARD_BASE_SPEC"
        base_spec=$'\n        base_runtime_spec = "'"$BULKHEAD_GUARD_BASE_SPEC"'"'
    fi
    # The same in both config versions: NRI must be switched on (1.7 ships with it off) and its
    # socket kept private to this instance.
    local nri
    nri="$(cat <<TOML
  [plugins."io.containerd.nri.v1.nri"]
    disable = false
    disable_connections = false
    socket_path = "$nri_sock"
    plugin_path = "$dir/nri/plugins"
    plugin_config_path = "$dir/nri/conf.d"
    plugin_registration_timeout = "5s"
    plugin_request_timeout = "2s"
TOML
)"
    case "$series" in
        2.1) config_v3 ;;
        1.7) config_v2 ;;
    esac > "$dir/config.toml"
    printf '%s\n' "$series" > "$series_file"
    mkdir -p "$dir/nri/plugins" "$dir/nri/conf.d" "$dir/cni/bin" "$dir/cni/net.d" "$dir/opt"
}

# containerd 2.x: config version 3, where CRI is split into images and runtime plugins.
config_v3() {
    cat <<TOML
# Generated by tests/testbed/containerd.sh: a private containerd 2.1 for end-to-end tests.
version = 3
root = "$dir/root"
state = "$dir/state"

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[plugins]
$nri

  [plugins."io.containerd.cri.v1.images"]
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "registry.k8s.io/pause:3.10"

  [plugins."io.containerd.cri.v1.runtime"]
    # Test machines lack CAP_SYS_RESOURCE: a negative oom_score_adj would make runc fail.
    restrict_oom_score_adj = true
    cdi_spec_dirs = []
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"$base_spec
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = "$runc_bin"
          Root = "$dir/runc"
          SystemdCgroup = $systemd_cgroup
    # No CNI: pods use the host network. Point CNI at empty private directories.
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["$dir/cni/bin"]
      conf_dir = "$dir/cni/net.d"

  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins."io.containerd.internal.v1.opt"]
    path = "$dir/opt"
TOML
}

# containerd 1.7: config version 2, one CRI plugin holding images, runtimes and CNI.
config_v2() {
    cat <<TOML
# Generated by tests/testbed/containerd.sh: a private containerd 1.7 for end-to-end tests.
version = 2
root = "$dir/root"
state = "$dir/state"

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[plugins]
$nri

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.10"
    # Test machines lack CAP_SYS_RESOURCE: a negative oom_score_adj would make runc fail.
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"$base_spec
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "$runc_bin"
          Root = "$dir/runc"
          SystemdCgroup = $systemd_cgroup
    # No CNI: pods use the host network. Point CNI at empty private directories.
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$dir/cni/bin"
      conf_dir = "$dir/cni/net.d"

  [plugins."io.containerd.internal.v1.opt"]
    path = "$dir/opt"
TOML
}

running_pid() {
    local pid
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: the process must be our containerd.
    { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$dir/config.toml" || return 1
    echo "$pid"
}

start() {
    if running_pid >/dev/null; then
        log "containerd already running in $dir"
    else
        rm -f "$sock" "$sock.ttrpc" "$nri_sock"
        # setsid: containerd must not die with the caller's terminal or process group.
        setsid "$prefix/containerd" --config "$dir/config.toml" --log-level debug \
            </dev/null >>"$logfile" 2>&1 &
        echo $! > "$pidfile"
    fi
    local i
    for i in $(seq 1 200); do
        if [ -S "$sock" ] && ctr version >/dev/null 2>&1; then
            return 0
        fi
        # kill -0, not running_pid: until the background job has exec'd containerd its command
        # line is still this script's, which running_pid would take for a dead containerd.
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 30 "$logfile" >&2; die "containerd exited during startup (log: $logfile)"; }
        sleep 0.05
    done
    tail -n 30 "$logfile" >&2
    die "containerd did not open $sock within 10 s (log: $logfile)"
}

stop_containerd() {
    local pid i
    pid="$(running_pid)" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.1
    done
    log "containerd did not stop on SIGTERM within 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$pidfile"
}

import_images() {
    local tarball
    for tarball in "$images"/*.tar; do
        [ -e "$tarball" ] || die "no images in $images: run tests/testbed/setup.sh"
        ctr images import --platform linux/amd64 "$tarball" >>"$logfile" 2>&1 ||
            die "importing $tarball failed (log: $logfile)"
    done
}

# Pids of the shims that serve this containerd: their command line names its socket.
shim_pids() {
    local p
    for p in /proc/[0-9]*; do
        if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -- "^[^ ]*containerd-shim.* -address $sock "; then
            echo "${p#/proc/}"
        fi
    done
}

remove_workloads() {
    local id
    if running_pid >/dev/null && ctr version >/dev/null 2>&1; then
        # The orderly way: through containerd, so shims clean up and exit by themselves.
        for id in $(ctr tasks ls -q 2>/dev/null); do
            ctr tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || true
        done
        for id in $(ctr tasks ls -q 2>/dev/null); do
            ctr tasks delete --force "$id" >/dev/null 2>&1 || true
        done
        for id in $(ctr containers ls -q 2>/dev/null); do
            ctr containers delete "$id" >/dev/null 2>&1 || true
        done
    fi
    # Whatever is left (containerd was dead, or a delete failed): straight to runc.
    if [ -d "$dir/runc/k8s.io" ]; then
        for id in $(runc --root "$dir/runc/k8s.io" list -q 2>/dev/null); do
            runc --root "$dir/runc/k8s.io" delete --force "$id" >/dev/null 2>&1 || true
        done
    fi
    local pids i
    pids="$(shim_pids)"
    [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
    for i in $(seq 1 50); do
        pids="$(shim_pids)"
        [ -n "$pids" ] || return 0
        sleep 0.1
    done
    kill -KILL $pids 2>/dev/null || true
}

# Mount points under DIR, deepest first (mountinfo escapes spaces etc. as \ooo).
mounts_under_dir() {
    awk '{ print $5 }' /proc/self/mountinfo | while read -r m; do
        m="$(printf '%b' "$m")"
        case "$m" in "$dir"|"$dir"/*) echo "$m";; esac
    done | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}

# Removes the cgroups under this instance's cgroup parent in every hierarchy, deepest first.
# runc removes a container's own cgroup but never the parents it created.
remove_cgroups() {
    local root
    for root in $(awk '$9 == "cgroup" || $9 == "cgroup2" { print $5 }' /proc/self/mountinfo); do
        [ -d "$root$cgroup_parent" ] || continue
        find "$root$cgroup_parent" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [ ! -d "$root$cgroup_parent" ] || log "could not remove cgroup $root$cgroup_parent"
    done
}

unmount_all() {
    local m pass
    for pass in 1 2 3; do
        [ -n "$(mounts_under_dir)" ] || return 0
        while read -r m; do
            [ -n "$m" ] || continue
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done < <(mounts_under_dir)
    done
    [ -z "$(mounts_under_dir)" ] || die "could not unmount: $(mounts_under_dir | tr '\n' ' ')"
}

case "$cmd" in
    up)
        check_ready
        write_config
        start
        import_images
        echo "CONTAINERD_SOCKET=$sock"
        echo "NRI_SOCKET=$nri_sock"
        echo "CONTAINERD_LOG=$logfile"
        echo "CGROUP_PARENT=$cgroup_parent"
        echo "CONTAINERD_SERIES=$series"
        ;;
    restart|stop|start)
        check_ready
        [ -f "$dir/config.toml" ] || die "no test bed in $dir: run '$0 up $dir' first"
        [ "$cmd" = start ] || stop_containerd
        [ "$cmd" = stop ] || start
        ;;
    down)
        remove_workloads
        stop_containerd
        unmount_all
        remove_cgroups
        rm -rf "$dir"
        ;;
    *) usage ;;
esac
