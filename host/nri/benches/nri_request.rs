//! Per-event protocol overhead: a 13 KB CreateContainer request, as containerd frames it,
//! through reassembly, ttrpc and protobuf decoding, conversion to core types, the (no-op)
//! handler, and the framed response. Measures bulkhead's own cost, without plugins.
//!
//! Run: `cargo bench -p bulkhead-nri --bench nri_request`

use std::hint::black_box;
use std::sync::Arc;

use bulkhead_core::event::EventMask;
use bulkhead_nri::ObserveOnly;
use bulkhead_nri::mux::{self, PLUGIN_CONNECTION};
use bulkhead_nri::plugin_service::PluginService;
use bulkhead_nri::server;
use bulkhead_nri::ttrpc::{self, Decoder, TYPE_REQUEST, TYPE_RESPONSE};
use bulkhead_proto::nri as api;
use bulkhead_proto::ttrpc::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message as _;

/// A CreateContainer request shaped like containerd's for a CRI container, padded to ~13 KB.
fn create_container_request() -> Vec<u8> {
    let mut pod = api::PodSandbox {
        id: "a".repeat(64),
        name: "web-7d9f8b6c5-abcde".into(),
        uid: "0f4c3a1e-3e55-4d3b-9d0e-8f1b2a3c4d5e".into(),
        namespace: "production".into(),
        ..Default::default()
    };
    for i in 0..20 {
        pod.labels
            .insert(format!("app.kubernetes.io/label-{i}"), format!("value-{i}"));
        pod.annotations
            .insert(format!("example.com/annotation-{i}"), "v".repeat(60));
    }
    let mut container = api::Container {
        id: "b".repeat(64),
        pod_sandbox_id: "a".repeat(64),
        name: "web".into(),
        args: vec![
            "/bin/server".into(),
            "--port=8080".into(),
            "--verbose".into(),
        ],
        env: (0..90)
            .map(|i| format!("ENV_VARIABLE_{i}={}", "x".repeat(40)))
            .collect(),
        mounts: (0..20)
            .map(|i| api::Mount {
                destination: format!("/var/lib/data/{i}"),
                r#type: "bind".into(),
                source: format!(
                    "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~empty-dir/vol-{i}"
                ),
                options: vec!["rbind".into(), "rprivate".into(), "rw".into()],
            })
            .collect(),
        linux: Some(api::LinuxContainer {
            namespaces: ["pid", "ipc", "uts", "mount", "network"]
                .into_iter()
                .map(|kind| api::LinuxNamespace {
                    r#type: kind.into(),
                    path: String::new(),
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    for i in 0..30 {
        container
            .annotations
            .insert(format!("io.kubernetes.cri.annotation-{i}"), "w".repeat(60));
    }
    let payload = api::CreateContainerRequest {
        pod: Some(pod),
        container: Some(container),
    }
    .encode_to_vec();
    let request = Request {
        service: api::PLUGIN_SERVICE.into(),
        method: "CreateContainer".into(),
        payload,
        timeout_nano: 2_000_000_000,
        metadata: Vec::new(),
    };
    ttrpc::encode(1, TYPE_REQUEST, &request.encode_to_vec()).expect("fits")
}

fn decode_and_respond(c: &mut Criterion) {
    let wire = create_container_request();
    assert!(wire.len() > 13_000, "request is {} bytes", wire.len());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let service = Arc::new(PluginService::new(Arc::new(ObserveOnly), EventMask::all()));
    let half = wire.len() / 2;
    c.bench_function("create_container_13kb_decode_and_respond", |b| {
        b.iter(|| {
            let mut decoder = Decoder::default();
            decoder.push(black_box(&wire[..half]));
            decoder.push(black_box(&wire[half..]));
            let message = decoder.next_message().expect("valid").expect("complete");
            let (response, _answered) = runtime.block_on(server::answer(
                &service,
                &message,
                tokio::time::Instant::now(),
            ));
            let encoded =
                ttrpc::encode(message.stream_id, TYPE_RESPONSE, &response.encode_to_vec())
                    .expect("fits");
            black_box(mux::encode_frames(PLUGIN_CONNECTION, &encoded))
        })
    });
}

criterion_group!(benches, decode_and_respond);
criterion_main!(benches);
