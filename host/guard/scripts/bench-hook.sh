#!/usr/bin/env bash
# Measures what the guard hook costs per container: one run of `bulkhead-guard hook` as runc
# makes it (OCI state on stdin), for a sandbox, an admitted (marked) workload and a refused one.
#
#   host/guard/scripts/bench-hook.sh [path/to/bulkhead-guard]   (default: the release build)
#
# Needs python3. Numbers vary with the machine's load; this
# is a measurement to report, not a test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
guard="${1:-$repo/target/release/bulkhead-guard}"
[ -x "$guard" ] || { echo "no $guard: cargo build --release -p bulkhead-guard" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$guard" init-key "$work/guard.key" 2>/dev/null
id="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
marker="$(python3 -c 'import hmac,hashlib,sys; print(hmac.new(open(sys.argv[1],"rb").read(), sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$work/guard.key" "$id")"

# The annotations containerd 2.1 puts on a CRI container, as runc passes them in the state.
state() { # type extra-annotations
    cat <<JSON
{"ociVersion":"1.0.2-dev","id":"$id","status":"creating","pid":4242,
 "bundle":"/run/containerd/io.containerd.runtime.v2.task/k8s.io/$id",
 "annotations":{"io.kubernetes.cri.container-type":"$1",
  "io.kubernetes.cri.container-name":"app","io.kubernetes.cri.image-name":"docker.io/library/busybox:latest",
  "io.kubernetes.cri.sandbox-id":"5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592",
  "io.kubernetes.cri.sandbox-name":"demo","io.kubernetes.cri.sandbox-namespace":"default",
  "io.kubernetes.cri.sandbox-uid":"8f14e45f-ceea-467e-9ad1-0b3a5c5e2d3f"$2}}
JSON
}
state sandbox "" > "$work/sandbox.json"
state container ",\"io.bulkhead.guard\":\"$marker\"" > "$work/marked.json"
state container "" > "$work/unmarked.json"

"$guard" hook --key "$work/guard.key" < "$work/marked.json"
if "$guard" hook --key "$work/guard.key" < "$work/unmarked.json" 2>/dev/null; then
    echo "the unmarked workload was allowed" >&2; exit 1
fi

# Spawn it the way runc does (fork + exec, state on stdin, wait) and time each run; /bin/true
# through the same driver is the floor of spawning any process at all.
python3 - "$guard" "$work" <<'PY'
import subprocess, sys, time
guard, work = sys.argv[1], sys.argv[2]
import resource
def run(argv, stdin_path, n=2000):
    samples = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(n):
        with open(stdin_path, "rb") as f:
            t = time.perf_counter_ns()
            subprocess.run(argv, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples.append(time.perf_counter_ns() - t)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of the child itself (user + system), much less sensitive to machine load.
    cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / n * 1e6
    samples.sort()
    q = lambda p: samples[min(len(samples) - 1, int(p * len(samples)))] / 1000
    return q(0.5), q(0.99), cpu
print(f"{'':30}{'wall median':>12}{'wall p99':>10}{'CPU/run':>9}")
floor = run(["/bin/true"], f"{work}/sandbox.json")
print(f"{'/bin/true (spawn floor)':30}{floor[0]:10.0f}µs{floor[1]:8.0f}µs{floor[2]:7.0f}µs")
for case in ("sandbox", "marked", "unmarked"):
    med, p99, cpu = run([guard, "hook", "--key", f"{work}/guard.key"], f"{work}/{case}.json")
    print(f"{'hook, ' + case:30}{med:10.0f}µs{p99:8.0f}µs{cpu:7.0f}µs")
PY
