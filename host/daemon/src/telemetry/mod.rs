//! What an operator's monitoring sees of a running bulkhead: Prometheus metrics
//! ([`metrics::Metrics`]), liveness and readiness, served by [`http`] on `[metrics] address`.
//!
//! Metrics are always counted (a few atomic additions per decision); only the endpoint is
//! optional. Readiness means events are being served: registered and synchronized with the
//! runtime — which happens only after the chain is loaded — and not since disconnected.

pub mod http;
pub mod metrics;

use std::sync::Arc;

use bulkhead_nri::SessionStatus;

pub use metrics::Metrics;

/// Metrics plus the NRI session's state, shared by the engine, the reloader and the endpoint.
#[derive(Default)]
pub struct Telemetry {
    /// The metric families.
    pub metrics: Metrics,
    /// The NRI session's readiness and reconnections.
    pub session: Arc<SessionStatus>,
}

impl Telemetry {
    /// `Ok` when bulkhead is serving the runtime's events; otherwise why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.session.is_ready() {
            Ok(())
        } else {
            Err("not registered and synchronized with the runtime")
        }
    }

    /// The metrics text, with the session's counters brought up to date.
    pub fn metrics_text(&self) -> String {
        self.metrics.nri_reconnects(self.session.reconnects());
        self.metrics.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(port: u16, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn the_endpoint_serves_health_readiness_and_metrics() {
        let telemetry = Arc::new(Telemetry::default());
        telemetry
            .metrics
            .decision("CreateContainer", "allow", "allowed");
        let listener = http::Listener::bind(&http::Address::Tcp("127.0.0.1:0".into()))
            .await
            .unwrap();
        let port = listener.local_tcp().unwrap().port();
        let server = tokio::spawn(listener.serve(telemetry.clone()));

        let health = get(port, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        let ready = get(port, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(ready.contains("not registered"), "{ready}");
        let metrics = get(port, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(
            metrics.contains("application/openmetrics-text"),
            "{metrics}"
        );
        assert!(
            metrics.contains(
                r#"bulkhead_decisions_total{point="CreateContainer",verdict="allow",action="allowed"} 1"#
            ),
            "{metrics}"
        );
        let missing = get(port, "/secrets").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        server.abort();
    }

    #[tokio::test]
    async fn idle_connections_beyond_the_limit_do_not_block_forever() {
        let telemetry = Arc::new(Telemetry::default());
        let listener = http::Listener::bind(&http::Address::Tcp("127.0.0.1:0".into()))
            .await
            .unwrap();
        let port = listener.local_tcp().unwrap().port();
        let server = tokio::spawn(listener.serve(telemetry));
        // Every permit held by a connection that never sends a byte: a new scrape waits for a
        // permit, it is not refused, and the held ones are cut at CONNECTION_LIFETIME.
        let mut idle = Vec::new();
        for _ in 0..http::MAX_CONNECTIONS {
            idle.push(
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap(),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let waiting = tokio::spawn(async move { get(port, "/healthz").await });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "a connection beyond the limit was served"
        );
        drop(idle);
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the waiting scrape was not served once others closed")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        server.abort();
    }
}
