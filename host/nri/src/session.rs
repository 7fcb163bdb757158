//! One NRI session after another: connect, register, get configured and synchronized, serve
//! events until the socket closes, then reconnect with capped backoff.
//!
//! containerd never calls Shutdown; its restart shows up as the socket closing. bulkhead then
//! reconnects by itself and re-synchronizes. Only a refused registration is fatal — retrying
//! with the same name and index would be refused again.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bulkhead_core::event::EventMask;
use bulkhead_proto::nri::{RUNTIME_SERVICE, RegisterPluginRequest};
use prost::Message as _;
use tokio::net::UnixStream;
use tokio::time::Instant;

use super::NriError;

/// The NRI contract bulkhead implements, sent at registration (a v0.12 runtime logs "NRI version
/// unknown" without it): v0.12's RPC per lifecycle event, and `StateChange` for older runtimes.
pub const NRI_CONTRACT: &str = "v0.12.0";
use super::handler::EventHandler;
use super::link::Link;
use super::plugin_service::{DEFAULT_REGISTRATION_TIMEOUT, PluginService};
use super::server;
use super::status::SessionStatus;

/// First wait before reconnecting after a lost connection.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Who bulkhead registers as, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The runtime's NRI socket.
    pub socket: PathBuf,
    /// Plugin name.
    pub name: String,
    /// Two-digit plugin index.
    pub index: String,
    /// Events to subscribe to.
    pub events: EventMask,
}

/// How one session ended, when it did not fail.
#[derive(Debug)]
pub enum SessionEnd {
    /// The socket closed (containerd restarted or went away), cleanly or with this error.
    Disconnected(Option<NriError>),
    /// The daemon is shutting down.
    Shutdown,
}

/// Runs sessions until `shutdown` resolves. Fails if the first connection or any registration
/// fails: at start-up a wrong socket or a refused registration is an operator error to report,
/// not to retry. Once registered, lost connections are retried forever with capped backoff.
pub async fn run<H: EventHandler>(
    registration: &Registration,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NriError> {
    run_observed(registration, handler, &SessionStatus::default(), shutdown).await
}

/// [`run`], publishing readiness and reconnections in `status` as they happen.
pub async fn run_observed<H: EventHandler>(
    registration: &Registration,
    handler: Arc<H>,
    status: &SessionStatus,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NriError> {
    tokio::pin!(shutdown);
    let mut backoff = BACKOFF_START;
    let mut ever_registered = false;
    loop {
        let started = Instant::now();
        if ever_registered {
            status.count_reconnect();
        }
        let end = tokio::select! {
            end = session(registration, handler.clone(), status, &mut ever_registered) => end,
            () = &mut shutdown => return Ok(()),
        };
        status.set_ready(false);
        match end {
            Ok(SessionEnd::Shutdown) => return Ok(()),
            Err(error @ NriError::RegistrationRejected { .. }) => return Err(error),
            Err(error) if !ever_registered => return Err(error),
            Ok(SessionEnd::Disconnected(reason)) => match reason {
                Some(error) => tracing::warn!(%error, "NRI connection lost; reconnecting"),
                None => tracing::warn!("NRI connection closed by the runtime; reconnecting"),
            },
            Err(error) => tracing::warn!(%error, "NRI session failed; reconnecting"),
        }
        // A session that lived a while was healthy: start the backoff over.
        if started.elapsed() > BACKOFF_CAP {
            backoff = BACKOFF_START;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

/// One session: connect, register, wait for Configure and Synchronize, serve until the end.
async fn session<H: EventHandler>(
    registration: &Registration,
    handler: Arc<H>,
    status: &SessionStatus,
    ever_registered: &mut bool,
) -> Result<SessionEnd, NriError> {
    let started = Instant::now();
    let stream = connect(&registration.socket).await?;
    let (link, incoming) = Link::start(stream);
    let service = Arc::new(PluginService::new(handler, registration.events));
    let server = tokio::spawn(server::serve(
        link.clone(),
        incoming.requests,
        service.clone(),
    ));
    let mut closed = incoming.closed;

    let result = async {
        register(&link, registration).await?;
        *ever_registered = true;
        wait_synchronized(&service, &mut closed).await?;
        status.set_ready(true);
        let runtime = service.runtime().unwrap_or_else(unreachable_runtime);
        tracing::info!(
            runtime = %runtime.name,
            version = %runtime.version,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "connected and synchronized"
        );
        Ok::<_, NriError>(())
    }
    .await;

    let end = match result {
        Ok(()) => match (&mut closed).await {
            Ok(Ok(())) => Ok(SessionEnd::Disconnected(None)),
            Ok(Err(error)) => Ok(SessionEnd::Disconnected(Some(error))),
            Err(_) => Ok(SessionEnd::Disconnected(None)),
        },
        Err(error) => Err(error),
    };
    server.abort();
    closed.abort();
    end
}

fn unreachable_runtime() -> bulkhead_core::event::RuntimeInfo {
    // wait_synchronized only returns after Synchronize, which NRI sends after Configure; a runtime
    // that skipped Configure still gets served with NRI's defaults.
    bulkhead_core::event::RuntimeInfo {
        name: "unknown".into(),
        version: "unknown".into(),
        nri_version: String::new(),
        request_timeout: super::plugin_service::DEFAULT_REQUEST_TIMEOUT,
        registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
    }
}

async fn connect(socket: &Path) -> Result<UnixStream, NriError> {
    UnixStream::connect(socket)
        .await
        .map_err(|source| NriError::Connect {
            path: socket.to_path_buf(),
            source,
        })
}

async fn register(link: &Link, registration: &Registration) -> Result<(), NriError> {
    let request = RegisterPluginRequest {
        plugin_name: registration.name.clone(),
        plugin_idx: registration.index.clone(),
        nri_version: NRI_CONTRACT.into(),
    };
    let answer = link
        .call(
            RUNTIME_SERVICE,
            "RegisterPlugin",
            request.encode_to_vec(),
            DEFAULT_REGISTRATION_TIMEOUT,
        )
        .await;
    match answer {
        Ok(_) => Ok(()),
        // containerd leaves the connection open after refusing: the refusal itself is final.
        Err(NriError::Status { message, .. }) => Err(NriError::RegistrationRejected {
            name: registration.name.clone(),
            index: registration.index.clone(),
            message,
        }),
        Err(other) => Err(other),
    }
}

async fn wait_synchronized<H: EventHandler>(
    service: &PluginService<H>,
    closed: &mut tokio::task::JoinHandle<Result<(), NriError>>,
) -> Result<(), NriError> {
    let mut synchronized = service.synchronized();
    let timeout = service
        .runtime()
        .map_or(DEFAULT_REGISTRATION_TIMEOUT, |r| r.registration_timeout)
        .max(DEFAULT_REGISTRATION_TIMEOUT);
    tokio::select! {
        result = synchronized.wait_for(|done| *done) => result.map(|_| ()).map_err(|_| NriError::Closed),
        result = closed => Err(match result {
            Ok(Err(error)) => error,
            _ => NriError::Closed,
        }),
        () = tokio::time::sleep(timeout) => Err(NriError::HandshakeTimeout { timeout_ms: timeout.as_millis() }),
    }
}
