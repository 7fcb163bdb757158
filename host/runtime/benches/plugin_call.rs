//! What a plugin call costs: the fixed cost (no-op plugin: fresh instance + call + drop), a
//! realistic policy over a full container view, compiling a plugin, and loading it from the
//! artifact cache. Run in release: `cargo bench -p bulkhead-runtime --bench plugin_call`.

use std::hint::black_box;
use std::path::Path;

use bulkhead_core::view::ContainerView;
use bulkhead_runtime::{PluginLimits, Runtime, RuntimeOptions};
use bulkhead_test_plugins::{NOOP, REALISTIC};
use criterion::{Criterion, criterion_group, criterion_main};

/// A container view with every part filled in, sized like a real Kubernetes workload.
fn full_view() -> ContainerView {
    let env: Vec<String> = (0..20).map(|i| format!("VAR_{i}=value-{i}")).collect();
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    let mut view: ContainerView = serde_json::from_value(serde_json::json!({
        "event": "post-create-container",
        "id": "3f2a9c1e7b5d4a60b8e1c2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3",
        "name": "web",
        "pod-sandbox-id": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
        "pod": {
            "name": "web-7d9f8c6b5-x2x4z", "namespace": "shop", "uid": "0b5c6d7e-8f90-4a1b-9c2d-3e4f5a6b7c8d",
            "labels": {"app": "web", "pod-template-hash": "7d9f8c6b5", "tier": "frontend"},
            "annotations": {"kubernetes.io/config.seen": "2026-11-27T10:00:00Z", "kubernetes.io/config.source": "api"}
        },
        "image": {
            "reference": "nginx:1.27", "normalized": "docker.io/library/nginx:1.27",
            "digest": "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
            "registry": "docker.io", "repository": "library/nginx", "tag": "1.27",
            "config": {"user": "101", "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.27.0"],
                       "labels": {"maintainer": "NGINX Docker Maintainers"}}
        },
        "process": {"args": ["nginx", "-g", "daemon off;"], "user": {"uid": 101, "gid": 101, "additional-gids": [101]}, "cwd": "/"},
        "host-namespaces": {},
        "mounts": [
            {"destination": "/etc/hosts", "source": "/var/lib/kubelet/pods/x/etc-hosts", "fs-type": "bind", "options": ["rbind", "rprivate", "rw"]},
            {"destination": "/dev/termination-log", "source": "/var/lib/kubelet/pods/x/containers/web/1", "fs-type": "bind", "options": ["rbind", "rprivate", "rw"]},
            {"destination": "/var/run/secrets/kubernetes.io/serviceaccount", "source": "/var/lib/kubelet/pods/x/volumes/token", "fs-type": "bind", "options": ["rbind", "rprivate", "ro"]},
            {"destination": "/proc", "source": "proc", "fs-type": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "source": "tmpfs", "fs-type": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "annotations": {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.image-name": "nginx:1.27",
                        "io.kubernetes.cri.sandbox-name": "web-7d9f8c6b5-x2x4z", "io.kubernetes.cri.sandbox-namespace": "shop"},
        "labels": {"io.kubernetes.container.name": "web", "io.kubernetes.pod.namespace": "shop"}
    }))
    .expect("valid view");
    view.process.env = env;
    view.capabilities.bounding = caps.clone();
    view.capabilities.effective = caps.clone();
    view.capabilities.permitted = caps;
    view
}

fn calls(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let noop = runtime
        .load(Path::new(NOOP), PluginLimits::default())
        .expect("noop");
    let realistic = runtime
        .load(Path::new(REALISTIC), PluginLimits::default())
        .expect("realistic");
    let empty = ContainerView::default();
    let full = full_view();
    assert!(!realistic.check_container(&full).expect("decides").is_deny());

    c.bench_function("noop call (fresh instance + call + drop)", |b| {
        b.iter(|| black_box(noop.check_container(black_box(&empty)).expect("ok")))
    });
    c.bench_function("realistic call over a full view", |b| {
        b.iter(|| black_box(realistic.check_container(black_box(&full)).expect("ok")))
    });
}

fn loading(c: &mut Criterion) {
    let wasm = std::fs::read(REALISTIC).expect("plugin file");
    let uncached = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("compile (no cache)", |b| {
        b.iter(|| {
            uncached
                .load_bytes(
                    Path::new("realistic.wasm"),
                    black_box(&wasm),
                    PluginLimits::default(),
                )
                .expect("loads")
        })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let cached = Runtime::new(RuntimeOptions {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    cached
        .load_bytes(Path::new("realistic.wasm"), &wasm, PluginLimits::default())
        .expect("warms the cache");
    group.sample_size(50);
    group.bench_function("load from cache", |b| {
        b.iter(|| {
            cached
                .load_bytes(
                    Path::new("realistic.wasm"),
                    black_box(&wasm),
                    PluginLimits::default(),
                )
                .expect("loads")
        })
    });
    group.finish();
}

criterion_group!(benches, calls, loading);
criterion_main!(benches);
