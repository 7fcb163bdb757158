//! The metrics endpoint: `/metrics` (OpenMetrics text), `/healthz` (the process answers) and
//! `/readyz` (registered and synchronized with the runtime, chain loaded), over TCP or a unix
//! socket.
//!
//! It shares the daemon's runtime with the NRI session, so it is kept small and bounded: at most
//! [`MAX_CONNECTIONS`] at once (more wait to be accepted), each cut off after
//! [`CONNECTION_LIFETIME`], only `GET` of three paths. A scraper flooding the port slows its own
//! scrapes, never a decision.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::Telemetry;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long one connection may stay open, idle or not.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where the endpoint listens: `[metrics] address`, a `host:port` or an absolute socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP address.
    Tcp(String),
    /// A unix socket path (created by bulkhead, mode 0600).
    Unix(PathBuf),
}

impl Address {
    /// Reads `[metrics] address`; `None` when it is empty (the endpoint is off).
    pub fn parse(text: &str) -> Option<Address> {
        let text = text.trim();
        if text.is_empty() {
            None
        } else if text.starts_with('/') {
            Some(Address::Unix(PathBuf::from(text)))
        } else {
            Some(Address::Tcp(text.to_string()))
        }
    }
}

/// A bound endpoint, ready to serve.
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket.
    Unix(UnixListener),
}

impl Listener {
    /// Binds `address`. A leftover socket file at a unix path is replaced; any other file there
    /// is an error.
    pub async fn bind(address: &Address) -> anyhow::Result<Listener> {
        match address {
            Address::Tcp(addr) => {
                Ok(Listener::Tcp(TcpListener::bind(addr).await.with_context(
                    || format!("cannot listen on {addr} (metrics.address)"),
                )?))
            }
            Address::Unix(path) => {
                if let Ok(metadata) = std::fs::symlink_metadata(path) {
                    use std::os::unix::fs::FileTypeExt;
                    anyhow::ensure!(
                        metadata.file_type().is_socket(),
                        "{} (metrics.address) exists and is not a socket",
                        path.display()
                    );
                    std::fs::remove_file(path)
                        .with_context(|| format!("cannot replace {}", path.display()))?;
                }
                let listener = UnixListener::bind(path).with_context(|| {
                    format!("cannot listen on {} (metrics.address)", path.display())
                })?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot restrict {}", path.display()))?;
                Ok(Listener::Unix(listener))
            }
        }
    }

    /// The TCP address actually bound (for port 0), if TCP.
    pub fn local_tcp(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    /// Serves until the task is dropped.
    pub async fn serve(self, telemetry: Arc<Telemetry>) {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let accepted = match &self {
                Listener::Tcp(listener) => listener
                    .accept()
                    .await
                    .map(|(stream, _)| Box::new(stream) as Box<dyn Stream>),
                Listener::Unix(listener) => listener
                    .accept()
                    .await
                    .map(|(stream, _)| Box::new(stream) as Box<dyn Stream>),
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let telemetry = telemetry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let telemetry = telemetry.clone();
                    async move { Ok::<_, Infallible>(answer(&telemetry, &request)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
                drop(permit);
            });
        }
    }
}

/// Any accepted stream.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The response to one request.
fn answer(telemetry: &Telemetry, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(telemetry.metrics_text())));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match telemetry.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{why}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz\n",
        ),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_unix_or_off() {
        assert_eq!(Address::parse(""), None);
        assert_eq!(Address::parse("  "), None);
        assert_eq!(
            Address::parse("127.0.0.1:9464"),
            Some(Address::Tcp("127.0.0.1:9464".into()))
        );
        assert_eq!(
            Address::parse("/run/bulkhead/metrics.sock"),
            Some(Address::Unix("/run/bulkhead/metrics.sock".into()))
        );
    }

    #[tokio::test]
    async fn a_regular_file_is_not_replaced_by_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.sock");
        std::fs::write(&path, "keep").unwrap();
        let error = Listener::bind(&Address::Unix(path.clone()))
            .await
            .err()
            .unwrap();
        assert!(error.to_string().contains("not a socket"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
    }
}
