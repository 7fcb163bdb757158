//! The NRI layer against an in-process fake runtime peer: handshake ordering, Synchronize in
//! batches, events and refusals, deadlines, unknown methods, refused registration, reconnection.
//!
//! The fake speaks the runtime's side of the protocol over a real unix socket, built from the
//! same framing primitives, and checks what bulkhead sends byte by byte where it matters (frame
//! sizes, stream ids, status codes).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bulkhead_core::decision::{SeccompAction, SeccompProfile, SeccompSyscall};
use bulkhead_core::event::{EventKind, EventMask, LifecycleEvent, RequestedSeccomp};
use bulkhead_nri::mux::{self, MAX_OUTGOING_PAYLOAD, PLUGIN_CONNECTION, RUNTIME_CONNECTION};
use bulkhead_nri::ttrpc::{self, Decoder, Message, TYPE_REQUEST, TYPE_RESPONSE};
use bulkhead_nri::{self as nri, Deadline, EventHandler, NriError, Outcome, Registration};
use bulkhead_proto::nri as api;
use bulkhead_proto::ttrpc::{Request, Response, Status};
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

/// The runtime's side of one connection.
struct Peer {
    stream: UnixStream,
    plugin_stream: Decoder,
    runtime_stream: Decoder,
    inbox: VecDeque<(u32, Message)>,
    next_stream_id: u32,
}

impl Peer {
    fn new(stream: UnixStream) -> Peer {
        Peer {
            stream,
            plugin_stream: Decoder::default(),
            runtime_stream: Decoder::default(),
            inbox: VecDeque::new(),
            next_stream_id: 1,
        }
    }

    /// Next ttrpc message from bulkhead; asserts every frame respects the 4096-byte limit.
    async fn receive(&mut self) -> (u32, Message) {
        loop {
            if let Some(message) = self.inbox.pop_front() {
                return message;
            }
            let (connection, payload) =
                tokio::time::timeout(Duration::from_secs(5), mux::read_frame(&mut self.stream))
                    .await
                    .expect("bulkhead sent nothing for 5 s")
                    .unwrap()
                    .expect("bulkhead closed the socket");
            assert!(payload.len() <= MAX_OUTGOING_PAYLOAD, "oversized frame");
            let decoder = match connection {
                PLUGIN_CONNECTION => &mut self.plugin_stream,
                RUNTIME_CONNECTION => &mut self.runtime_stream,
                other => panic!("frame on unexpected connection {other}"),
            };
            decoder.push(&payload);
            while let Some(message) = decoder.next_message().unwrap() {
                self.inbox.push_back((connection, message));
            }
        }
    }

    async fn send(&mut self, connection: u32, message: Vec<u8>, frame_size: usize) {
        // The runtime may use frames larger than 4096 bytes; vary the size to test reassembly.
        for chunk in message.chunks(frame_size) {
            let mut frame = Vec::new();
            frame.extend_from_slice(&connection.to_be_bytes());
            frame.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            frame.extend_from_slice(chunk);
            self.stream.write_all(&frame).await.unwrap();
        }
    }

    /// Expects RegisterPlugin on connection 2 and returns its stream id and request.
    async fn expect_register(&mut self) -> (u32, api::RegisterPluginRequest) {
        let (connection, message) = self.receive().await;
        assert_eq!(
            (connection, message.kind),
            (RUNTIME_CONNECTION, TYPE_REQUEST)
        );
        assert_eq!(message.stream_id % 2, 1, "client stream ids are odd");
        let request = Request::decode(message.payload).unwrap();
        assert_eq!(request.service, "nri.pkg.api.v1alpha1.Runtime");
        assert_eq!(request.method, "RegisterPlugin");
        (
            message.stream_id,
            api::RegisterPluginRequest::decode(request.payload.as_slice()).unwrap(),
        )
    }

    async fn answer_register(&mut self, stream_id: u32, status: Option<Status>) {
        let response = match status {
            // containerd answers OK with a zero-length message.
            None => Vec::new(),
            Some(status) => Response {
                status: Some(status),
                payload: Vec::new(),
            }
            .encode_to_vec(),
        };
        let message = ttrpc::encode(stream_id, TYPE_RESPONSE, &response).unwrap();
        self.send(RUNTIME_CONNECTION, message, 4096).await;
    }

    /// Calls a Plugin method on bulkhead and returns the raw response.
    async fn call(
        &mut self,
        method: &str,
        payload: Vec<u8>,
        timeout: Duration,
        frame_size: usize,
    ) -> Response {
        let stream_id = self.next_stream_id;
        self.next_stream_id += 2;
        let request = Request {
            service: "nri.pkg.api.v1alpha1.Plugin".into(),
            method: method.into(),
            payload,
            timeout_nano: timeout.as_nanos() as i64,
            metadata: Vec::new(),
        };
        let message = ttrpc::encode(stream_id, TYPE_REQUEST, &request.encode_to_vec()).unwrap();
        self.send(PLUGIN_CONNECTION, message, frame_size).await;
        let (connection, message) = self.receive().await;
        assert_eq!(
            (connection, message.kind),
            (PLUGIN_CONNECTION, TYPE_RESPONSE)
        );
        assert_eq!(
            message.stream_id, stream_id,
            "response matches the request's stream id"
        );
        Response::decode(message.payload).unwrap()
    }

    async fn configure(&mut self, request_timeout_ms: i64) -> api::ConfigureResponse {
        self.configure_as(api::ConfigureRequest {
            runtime_name: "fake".into(),
            runtime_version: "2.1.9+fake".into(),
            registration_timeout: 5000,
            request_timeout: request_timeout_ms,
            ..Default::default()
        })
        .await
    }

    /// Configure as the runtime `request` describes.
    async fn configure_as(&mut self, request: api::ConfigureRequest) -> api::ConfigureResponse {
        let response = self
            .call(
                "Configure",
                request.encode_to_vec(),
                Duration::from_secs(2),
                4096,
            )
            .await;
        assert_eq!(response.status, None);
        api::ConfigureResponse::decode(response.payload.as_slice()).unwrap()
    }

    async fn synchronize(
        &mut self,
        pods: Vec<api::PodSandbox>,
        containers: Vec<api::Container>,
        more: bool,
    ) -> api::SynchronizeResponse {
        let request = api::SynchronizeRequest {
            pods,
            containers,
            more,
        };
        let response = self
            .call(
                "Synchronize",
                request.encode_to_vec(),
                Duration::from_secs(2),
                9000,
            )
            .await;
        assert_eq!(response.status, None);
        api::SynchronizeResponse::decode(response.payload.as_slice()).unwrap()
    }

    /// The usual handshake: Configure arrives before the RegisterPlugin reply.
    async fn handshake(&mut self) {
        let (register_id, _) = self.expect_register().await;
        self.configure(2000).await;
        self.answer_register(register_id, None).await;
        let response = self.synchronize(vec![], vec![], false).await;
        assert!(!response.more);
    }
}

/// Records events and refuses containers named `deny-me`; sleeps on containers named `slow`;
/// panics on `panic`; refuses `shout` with a reason too large to send; sets a seccomp profile
/// on `harden`.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<LifecycleEvent>>,
    synchronized: Mutex<Vec<(usize, usize)>>,
    runtimes: Mutex<Vec<bulkhead_core::event::RuntimeInfo>>,
    validated: Mutex<Vec<nri::PendingAdjustment>>,
}

impl EventHandler for Recorder {
    async fn synchronized(
        &self,
        runtime: &bulkhead_core::event::RuntimeInfo,
        pods: &[bulkhead_core::event::Pod],
        containers: &[bulkhead_core::event::Container],
    ) {
        self.runtimes.lock().unwrap().push(runtime.clone());
        self.synchronized
            .lock()
            .unwrap()
            .push((pods.len(), containers.len()));
    }

    /// Validates on runtimes that can (v0.10+): rejects what a plugin named `40-rogue` set.
    fn validates_adjustments(&self) -> bool {
        true
    }

    async fn validate_adjustment(&self, pending: &nri::PendingAdjustment) -> Option<String> {
        self.validated.lock().unwrap().push(pending.clone());
        pending
            .owned
            .iter()
            .find(|o| o.plugin == "40-rogue")
            .map(|o| format!("test-validator: 40-rogue may not set field {}", o.field))
    }

    async fn handle(&self, event: &LifecycleEvent, _deadline: Deadline) -> Outcome {
        self.events.lock().unwrap().push(event.clone());
        match event.container.as_ref().map(|c| c.name.as_str()) {
            Some("deny-me") => Outcome::Refuse {
                reason: "test-plugin: containers named deny-me are not allowed".into(),
            },
            Some("slow") => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Outcome::Allow
            }
            Some("panic") => panic!("a handler bug"),
            Some("shout") => Outcome::Refuse {
                reason: "x".repeat(5 << 20),
            },
            Some("harden") => Outcome::Adjust(nri::Adjustment {
                seccomp: Some(Arc::new(SeccompProfile {
                    default_action: SeccompAction::Errno,
                    default_errno: None,
                    architectures: vec!["SCMP_ARCH_X86_64".into()],
                    syscalls: vec![SeccompSyscall {
                        names: vec!["read".into(), "write".into()],
                        action: SeccompAction::Allow,
                        errno: None,
                        args: Vec::new(),
                    }],
                })),
                ..nri::Adjustment::default()
            }),
            _ => Outcome::Allow,
        }
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    listener: UnixListener,
    recorder: Arc<Recorder>,
    stop: Option<oneshot::Sender<()>>,
    daemon: tokio::task::JoinHandle<Result<(), NriError>>,
}

impl Harness {
    fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let socket: PathBuf = dir.path().join("nri.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let recorder = Arc::new(Recorder::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let registration = Registration {
            socket,
            name: "bulkhead".into(),
            index: "50".into(),
            events: EventMask::all(),
        };
        let handler = recorder.clone();
        let daemon = tokio::spawn(async move {
            nri::run(&registration, handler, async {
                let _ = stopped.await;
            })
            .await
        });
        Harness {
            _dir: dir,
            listener,
            recorder,
            stop: Some(stop),
            daemon,
        }
    }

    async fn accept(&self) -> Peer {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(5), self.listener.accept())
            .await
            .expect("bulkhead did not connect")
            .unwrap();
        Peer::new(stream)
    }

    async fn stop(mut self) -> Result<(), NriError> {
        let _ = self.stop.take().unwrap().send(());
        self.daemon.await.unwrap()
    }
}

fn pod(name: &str) -> api::PodSandbox {
    api::PodSandbox {
        id: format!("pod-{name}"),
        name: name.into(),
        namespace: "default".into(),
        ..Default::default()
    }
}

fn container(name: &str) -> api::Container {
    api::Container {
        id: format!("ctr-{name}"),
        pod_sandbox_id: "pod-p".into(),
        name: name.into(),
        ..Default::default()
    }
}

fn create_request(name: &str) -> Vec<u8> {
    api::CreateContainerRequest {
        pod: Some(pod("p")),
        container: Some(container(name)),
    }
    .encode_to_vec()
}

#[tokio::test]
async fn registers_with_name_and_index_and_an_explicit_mask() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    let (register_id, register) = peer.expect_register().await;
    assert_eq!(register.plugin_name, "bulkhead");
    assert_eq!(register.plugin_idx, "50");
    // Configure arrives before the RegisterPlugin reply, as containerd does it.
    let configured = peer.configure(2000).await;
    assert_eq!(configured.events, 0x7FF);
    peer.answer_register(register_id, None).await;
    peer.synchronize(vec![], vec![], false).await;
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn synchronize_honours_more_and_delivers_everything_once() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    let (register_id, _) = peer.expect_register().await;
    peer.configure(2000).await;
    peer.answer_register(register_id, None).await;
    // A large first batch (over 13 KB) in frames bigger than 4096 bytes.
    let pods: Vec<_> = (0..60)
        .map(|i| {
            let mut pod = pod(&format!("pod-{i}"));
            pod.annotations.insert("note".into(), "x".repeat(200));
            pod
        })
        .collect();
    let first = peer.synchronize(pods, vec![container("a")], true).await;
    assert!(first.more, "bulkhead asks for the next batch");
    assert!(harness.recorder.synchronized.lock().unwrap().is_empty());
    let last = peer
        .synchronize(vec![], vec![container("b"), container("c")], false)
        .await;
    assert!(!last.more);
    assert_eq!(*harness.recorder.synchronized.lock().unwrap(), [(60, 3)]);
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn events_reach_the_handler_and_refusals_reach_the_runtime() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    peer.handshake().await;

    let allowed = peer
        .call(
            "CreateContainer",
            create_request("web"),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(allowed.status, None);
    api::CreateContainerResponse::decode(allowed.payload.as_slice()).unwrap();

    let refused = peer
        .call(
            "CreateContainer",
            create_request("deny-me"),
            Duration::from_secs(2),
            4096,
        )
        .await;
    let status = refused.status.unwrap();
    assert_eq!(status.code, 7, "PermissionDenied");
    assert!(status.message.contains("test-plugin"), "{}", status.message);

    let start = api::StateChangeEvent {
        event: api::Event::StartContainer as i32,
        pod: Some(pod("p")),
        container: Some(container("deny-me")),
    };
    let refused_start = peer
        .call(
            "StateChange",
            start.encode_to_vec(),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(refused_start.status.unwrap().code, 7);

    // A refusal at PostCreate cannot stop anything; it is answered OK (and logged).
    let post_create = api::StateChangeEvent {
        event: api::Event::PostCreateContainer as i32,
        pod: Some(pod("p")),
        container: Some(container("deny-me")),
    };
    let answered = peer
        .call(
            "StateChange",
            post_create.encode_to_vec(),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(answered.status, None);

    let kinds: Vec<_> = harness
        .recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::CreateContainer,
            EventKind::CreateContainer,
            EventKind::StartContainer,
            EventKind::PostCreateContainer
        ]
    );
    let events = harness.recorder.events.lock().unwrap().clone();
    assert_eq!(events[0].pod.namespace, "default");
    assert_eq!(events[0].container.as_ref().unwrap().name, "web");
    harness.stop().await.unwrap();
}

/// containerd 2.3 (NRI v0.12): versions are exchanged both ways, and each lifecycle event comes
/// in an RPC of its own, not as a StateChange, which it would record as a deprecation.
#[tokio::test]
async fn a_v0_12_runtime_exchanges_versions_and_calls_one_rpc_per_event() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    let (register_id, register) = peer.expect_register().await;
    assert_eq!(register.nri_version, "v0.12.0");
    let configured = peer
        .configure_as(api::ConfigureRequest {
            runtime_name: "containerd".into(),
            runtime_version: "v2.3.4".into(),
            registration_timeout: 5000,
            request_timeout: 2000,
            nri_version: "v0.12.2".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        configured.events as u32,
        0x7FF | nri::plugin_service::VALIDATE_CONTAINER_ADJUSTMENT_BIT,
        "a v0.12 runtime is asked for validation requests too"
    );
    peer.answer_register(register_id, None).await;
    peer.synchronize(vec![], vec![], false).await;
    let runtime = harness.recorder.runtimes.lock().unwrap()[0].clone();
    assert_eq!(runtime.nri_version, "v0.12.2");
    assert_eq!(
        runtime.nri_level(),
        bulkhead_core::nri_level::NriLevel::V0_12
    );

    let event = |name: &str| api::LifecycleEventRequest {
        pod: Some(pod("p")),
        container: Some(container(name)),
    };
    let call = |method: &'static str, request: api::LifecycleEventRequest| (method, request);
    let mut statuses = Vec::new();
    for (method, request) in [
        call("RunPodSandbox", event("ignored")),
        call("PostCreateContainer", event("web")),
        call("StartContainer", event("web")),
        call("StartContainer", event("deny-me")),
        call("RemoveContainer", event("web")),
        call("RemovePodSandbox", event("ignored")),
    ] {
        let response = peer
            .call(
                method,
                request.encode_to_vec(),
                Duration::from_secs(2),
                4096,
            )
            .await;
        assert!(
            response.payload.is_empty(),
            "{method}: empty response message"
        );
        statuses.push(response.status.map(|s| (s.code, s.message)));
    }
    assert_eq!(statuses[..3], [None, None, None]);
    let (code, message) = statuses[3].clone().expect("the start is refused");
    assert_eq!(code, 7, "PermissionDenied");
    assert!(message.contains("test-plugin"), "{message}");
    assert_eq!(statuses[4..], [None, None]);

    let events = harness.recorder.events.lock().unwrap().clone();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::RunPodSandbox,
            EventKind::PostCreateContainer,
            EventKind::StartContainer,
            EventKind::StartContainer,
            EventKind::RemoveContainer,
            EventKind::RemovePodSandbox
        ]
    );
    // Pod events carry no container, whatever the request held.
    assert!(events[0].container.is_none() && events[5].container.is_none());
    assert_eq!(events[1].container.as_ref().unwrap().name, "web");
    harness.stop().await.unwrap();
}

/// NRI v0.10+: containerd asks validators about every container's pending adjustment, naming
/// the plugin behind each field; a rejection (with its reason) fails the creation.
#[tokio::test]
async fn validation_requests_reach_the_handler_with_every_fields_owner() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    peer.handshake().await;
    let owners = |simple: Vec<(i32, &str)>, compound: Vec<(i32, &str, &str)>| {
        let mut fields = api::FieldOwners::default();
        for (field, plugin) in simple {
            fields.simple.insert(field, plugin.into());
        }
        for (field, entry, plugin) in compound {
            fields
                .compound
                .entry(field)
                .or_default()
                .owners
                .insert(entry.into(), plugin.into());
        }
        api::OwningPlugins {
            owners: [("ctr-web".to_string(), fields)].into(),
        }
    };
    let request = |owners: api::OwningPlugins| api::ValidateContainerAdjustmentRequest {
        pod: Some(pod("p")),
        container: Some(container("web")),
        owners: Some(owners),
        plugins: vec![api::PluginInstance {
            name: "topology".into(),
            index: "10".into(),
        }],
    };

    let fine = request(owners(
        vec![(21, "10-topology")],
        vec![(6, "TRACE", "20-injector"), (1, "b", "20-injector")],
    ));
    let response = peer
        .call(
            "ValidateContainerAdjustment",
            fine.encode_to_vec(),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(response.status, None);
    let answer =
        api::ValidateContainerAdjustmentResponse::decode(response.payload.as_slice()).unwrap();
    assert!(!answer.reject, "{}", answer.reason);
    let pending = harness.recorder.validated.lock().unwrap()[0].clone();
    assert_eq!(pending.container.unwrap().name, "web");
    let owned: Vec<_> = pending
        .owned
        .iter()
        .map(|o| (o.field, o.entry.clone(), o.plugin.as_str()))
        .collect();
    assert_eq!(
        owned,
        [
            (21, None, "10-topology"),
            (1, Some("b".into()), "20-injector"),
            (6, Some("TRACE".into()), "20-injector")
        ]
    );

    let rogue = request(owners(vec![(32, "40-rogue")], vec![]));
    let response = peer
        .call(
            "ValidateContainerAdjustment",
            rogue.encode_to_vec(),
            Duration::from_secs(2),
            4096,
        )
        .await;
    let answer =
        api::ValidateContainerAdjustmentResponse::decode(response.payload.as_slice()).unwrap();
    assert!(answer.reject);
    assert_eq!(
        answer.reason,
        "test-validator: 40-rogue may not set field 32"
    );
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_methods_get_unimplemented_and_garbage_gets_invalid_argument() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    peer.handshake().await;

    let unknown = peer
        .call(
            "FrobnicateContainer",
            Vec::new(),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(unknown.status.unwrap().code, 12);

    let garbage = peer
        .call(
            "CreateContainer",
            vec![0xFF, 0xFF, 0xFF],
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(garbage.status.unwrap().code, 3);

    // The session is still healthy afterwards.
    let fine = peer
        .call(
            "CreateContainer",
            create_request("web"),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(fine.status, None);
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn a_stuck_handler_is_answered_before_the_runtime_deadline_and_fails_closed() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    peer.handshake().await;
    let started = tokio::time::Instant::now();
    let response = peer
        .call(
            "CreateContainer",
            create_request("slow"),
            Duration::from_millis(400),
            4096,
        )
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(400),
        "answered after {elapsed:?}"
    );
    assert_eq!(
        response.status.unwrap().code,
        4,
        "refused: DeadlineExceeded"
    );
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn the_hosts_own_failures_get_a_fixed_refusal_not_silence() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    peer.handshake().await;
    for name in ["panic", "shout"] {
        let response = peer
            .call(
                "CreateContainer",
                create_request(name),
                Duration::from_secs(2),
                4096,
            )
            .await;
        let status = response.status.expect("a refusal");
        assert_eq!(status.code, 13, "{name}: {status:?}");
        assert!(status.message.contains("fail closed"), "{name}: {status:?}");
        assert!(status.message.len() < 100, "{name}");
    }
    // The session goes on serving.
    let response = peer
        .call(
            "CreateContainer",
            create_request("fine"),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert!(response.status.is_none(), "{:?}", response.status);
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_registration_is_fatal_and_carries_the_runtime_message() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    let (register_id, _) = peer.expect_register().await;
    peer.answer_register(
        register_id,
        Some(Status {
            code: 2,
            message: "invalid plugin index \"5\"".into(),
        }),
    )
    .await;
    // containerd leaves the socket open; bulkhead must end on its own.
    let result = tokio::time::timeout(Duration::from_secs(5), harness.daemon)
        .await
        .expect("bulkhead kept waiting after a refused registration")
        .unwrap();
    let error = result.unwrap_err();
    assert!(matches!(error, NriError::RegistrationRejected { .. }));
    assert!(
        error.to_string().contains("invalid plugin index"),
        "{error}"
    );
    drop(peer);
}

#[tokio::test]
async fn reconnects_and_resynchronizes_after_the_runtime_goes_away() {
    let harness = Harness::start();
    let mut first = harness.accept().await;
    first.handshake().await;
    drop(first);
    let mut second = harness.accept().await;
    second.handshake().await;
    assert_eq!(harness.recorder.synchronized.lock().unwrap().len(), 2);
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn a_malformed_frame_ends_the_session_and_bulkhead_reconnects() {
    let harness = Harness::start();
    let mut first = harness.accept().await;
    first.handshake().await;
    // A frame announcing 4 GiB.
    let mut frame = PLUGIN_CONNECTION.to_be_bytes().to_vec();
    frame.extend_from_slice(&u32::MAX.to_be_bytes());
    first.stream.write_all(&frame).await.unwrap();
    let mut second = harness.accept().await;
    second.handshake().await;
    harness.stop().await.unwrap();
}

#[tokio::test]
async fn the_first_connection_failing_is_an_error_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let registration = Registration {
        socket: dir.path().join("absent.sock"),
        name: "bulkhead".into(),
        index: "50".into(),
        events: EventMask::all(),
    };
    let error = nri::run(
        &registration,
        Arc::new(nri::ObserveOnly),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("absent.sock"), "{error}");
}

/// NRI v0.10+ (containerd 2.2): the caller's seccomp request reaches the handler, and a seccomp
/// profile goes back as `LinuxContainerAdjustment.seccomp_policy` (field 6 of field 5 of the
/// `ContainerAdjustment`), in OCI names.
#[tokio::test]
async fn a_v0_10_runtime_gets_the_seccomp_profile_at_create() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    let (register_id, _) = peer.expect_register().await;
    peer.configure_as(api::ConfigureRequest {
        runtime_name: "containerd".into(),
        runtime_version: "v2.2.3".into(),
        registration_timeout: 5000,
        request_timeout: 2000,
        ..Default::default()
    })
    .await;
    peer.answer_register(register_id, None).await;
    peer.synchronize(vec![], vec![], false).await;

    let mut harden = container("harden");
    harden.linux = Some(api::LinuxContainer {
        seccomp_profile: Some(api::SecurityProfile {
            profile_type: 1,
            localhost_ref: String::new(),
        }),
        ..Default::default()
    });
    let request = api::CreateContainerRequest {
        pod: Some(pod("p")),
        container: Some(harden),
    };
    let answer = peer
        .call(
            "CreateContainer",
            request.encode_to_vec(),
            Duration::from_secs(2),
            4096,
        )
        .await;
    assert_eq!(answer.status, None);
    let response = api::CreateContainerResponse::decode(answer.payload.as_slice()).unwrap();
    let policy = response
        .adjust
        .and_then(|adjust| adjust.linux)
        .and_then(|linux| linux.seccomp_policy)
        .expect("no seccomp_policy in the adjustment");
    assert_eq!(policy.default_action, "SCMP_ACT_ERRNO");
    assert_eq!(policy.architectures, ["SCMP_ARCH_X86_64"]);
    assert_eq!(policy.syscalls[0].names, ["read", "write"]);
    assert_eq!(policy.syscalls[0].action, "SCMP_ACT_ALLOW");
    let events = harness.recorder.events.lock().unwrap().clone();
    assert_eq!(
        events[0].container.as_ref().unwrap().requested_seccomp,
        Some(RequestedSeccomp::Unconfined)
    );
    harness.stop().await.unwrap();
}

/// NRI v0.8 (containerd 2.0/2.1) drops `seccomp_policy` silently: a handler asking for one
/// there gets the creation refused, never a container without its profile.
#[tokio::test]
async fn a_seccomp_adjustment_an_older_runtime_would_drop_refuses_the_creation() {
    let harness = Harness::start();
    let mut peer = harness.accept().await;
    peer.handshake().await;
    let answer = peer
        .call(
            "CreateContainer",
            create_request("harden"),
            Duration::from_secs(2),
            4096,
        )
        .await;
    let status = answer.status.expect("the creation went through");
    assert_eq!(status.code, 7, "PermissionDenied");
    assert!(
        status.message.contains("seccomp") && status.message.contains("fail closed"),
        "{}",
        status.message
    );
    harness.stop().await.unwrap();
}
