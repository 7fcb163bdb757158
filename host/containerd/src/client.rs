//! The gRPC connection to containerd's main socket.
//!
//! containerd scopes every object (containers, images, content leases) by namespace, read from
//! the `containerd-namespace` request header. CRI — and so every container NRI reports — lives
//! in `k8s.io`; forgetting the header silently looks in `default` and finds nothing. So the
//! header is added by an interceptor on every request, never by call sites.
//!
//! The same interceptor sets a per-call gRPC deadline: these calls run inside NRI handlers that
//! must answer containerd within its request timeout, so a stuck containerd call must fail fast
//! rather than make containerd disconnect bulkhead (which fails open).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::image::ImageCache;
use crate::{Error, Result};

/// The namespace CRI keeps its containers and images in.
pub const DEFAULT_NAMESPACE: &str = "k8s.io";
/// Default deadline of one gRPC call: well inside NRI's 2 s default request timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(1000);

/// Header containerd reads the namespace from.
const NAMESPACE_HEADER: &str = "containerd-namespace";

/// A channel with the namespace header and deadline applied to each request.
pub(crate) type NsChannel = InterceptedService<Channel, NamespaceInterceptor>;

/// Adds the namespace header and the call deadline to every outgoing request.
#[derive(Clone, Debug)]
pub(crate) struct NamespaceInterceptor {
    namespace: AsciiMetadataValue,
    timeout: Duration,
}

impl Interceptor for NamespaceInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert(NAMESPACE_HEADER, self.namespace.clone());
        request.set_timeout(self.timeout);
        Ok(request)
    }
}

/// A connection to containerd, scoped to one namespace, with the image cache that belongs to it.
///
/// Cheap to clone: clones share the channel (tonic multiplexes calls over it and reconnects
/// after a containerd restart) and the cache.
#[derive(Clone)]
pub struct Containerd {
    channel: Channel,
    namespace: String,
    interceptor: NamespaceInterceptor,
    pub(crate) images: Arc<ImageCache>,
}

impl std::fmt::Debug for Containerd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containerd")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Containerd {
    /// Connects to containerd's gRPC socket (not the ttrpc one, which does not serve the
    /// Containers service) in the CRI namespace `k8s.io`.
    ///
    /// # Errors
    /// [`Error::Connect`] when the socket cannot be reached.
    pub async fn connect(socket: impl AsRef<Path>) -> Result<Self> {
        Self::connect_in(socket, DEFAULT_NAMESPACE).await
    }

    /// Like [`Containerd::connect`], for another namespace (tests, non-CRI tooling).
    ///
    /// # Errors
    /// [`Error::Connect`], or [`Error::InvalidNamespace`] for a name that is not a valid header.
    pub async fn connect_in(socket: impl AsRef<Path>, namespace: &str) -> Result<Self> {
        let socket = socket.as_ref();
        let channel =
            containerd_client::connect(socket)
                .await
                .map_err(|source| Error::Connect {
                    socket: socket.to_owned(),
                    source,
                })?;
        Self::from_channel(channel, namespace)
    }

    /// Wraps an existing channel, e.g. one a test made over an in-process transport.
    ///
    /// # Errors
    /// [`Error::InvalidNamespace`] for a name that cannot be sent as a header.
    pub fn from_channel(channel: Channel, namespace: &str) -> Result<Self> {
        let value = MetadataValue::try_from(namespace)
            .ok()
            .filter(|_| !namespace.is_empty())
            .ok_or_else(|| Error::InvalidNamespace {
                namespace: namespace.to_owned(),
            })?;
        Ok(Self {
            channel,
            namespace: namespace.to_owned(),
            interceptor: NamespaceInterceptor {
                namespace: value,
                timeout: DEFAULT_CALL_TIMEOUT,
            },
            images: Arc::new(ImageCache::default()),
        })
    }

    /// Sets the deadline of each gRPC call (default [`DEFAULT_CALL_TIMEOUT`]), so callers can
    /// fit it into the NRI request budget they have.
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.interceptor.timeout = timeout;
        self
    }

    /// The containerd namespace every request is scoped to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn intercepted(&self) -> NsChannel {
        InterceptedService::new(self.channel.clone(), self.interceptor.clone())
    }

    pub(crate) fn containers(&self) -> ContainersClient<NsChannel> {
        ContainersClient::new(self.intercepted())
    }

    pub(crate) fn images_client(&self) -> ImagesClient<NsChannel> {
        ImagesClient::new(self.intercepted())
    }

    pub(crate) fn content(&self) -> ContentClient<NsChannel> {
        ContentClient::new(self.intercepted())
    }

    pub(crate) fn tasks(&self) -> TasksClient<NsChannel> {
        TasksClient::new(self.intercepted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interceptor_adds_namespace_and_deadline() {
        let mut interceptor = NamespaceInterceptor {
            namespace: MetadataValue::from_static("k8s.io"),
            timeout: Duration::from_millis(250),
        };
        let request = interceptor.call(tonic::Request::new(())).unwrap();
        assert_eq!(request.metadata().get(NAMESPACE_HEADER).unwrap(), "k8s.io");
        assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "250000u");
    }

    #[test]
    fn namespace_must_be_a_header_value() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let channel = tonic::transport::Endpoint::from_static("http://[::]").connect_lazy();
        assert!(Containerd::from_channel(channel.clone(), "k8s.io").is_ok());
        for bad in ["", "bad\nname"] {
            let error = Containerd::from_channel(channel.clone(), bad).unwrap_err();
            assert!(matches!(error, Error::InvalidNamespace { .. }), "{bad:?}");
        }
    }

    /// A containerd that accepts connections but never answers must cost a call its deadline,
    /// not the NRI handler's whole budget.
    #[tokio::test]
    async fn a_silent_containerd_costs_one_call_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("silent.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let containerd = tokio::time::timeout(Duration::from_secs(5), Containerd::connect(&socket))
            .await
            .expect("connect does not wait for the server to speak")
            .unwrap()
            .with_call_timeout(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let error = tokio::time::timeout(Duration::from_secs(5), containerd.get_spec("c1"))
            .await
            .expect("the call deadline fired")
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                error,
                Error::Rpc {
                    call: "Containers.Get",
                    ..
                }
            ),
            "{error}"
        );
    }
}
