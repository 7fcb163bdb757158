//! A live NRI socket: one task reads and demultiplexes frames, one writes, and calls to the
//! runtime (connection 2) are matched to their answers by stream id.
//!
//! Requests arriving on connection 1 are handed to the server through a channel, so a slow
//! handler never stops the reader — in particular the runtime's `Configure` is served even while
//! bulkhead still waits for the answer to its own `RegisterPlugin`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bulkhead_proto::ttrpc::{Request, Response};
use bytes::Bytes;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::NriError;
use super::mux::{self, PLUGIN_CONNECTION, RUNTIME_CONNECTION};
use super::ttrpc::{self, Message, TYPE_REQUEST, TYPE_RESPONSE};

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Message>>>>;

/// The sending side of a live NRI socket, shared by the session and the server.
#[derive(Debug)]
pub struct Link {
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_stream_id: AtomicU32,
}

/// What the reader task hands out: requests from the runtime, and how the socket ended.
pub struct Incoming {
    /// ttrpc requests received on connection 1, in arrival order.
    pub requests: mpsc::UnboundedReceiver<Message>,
    /// Finishes when the socket closes: `Ok` on a clean end of stream, otherwise why it broke.
    pub closed: JoinHandle<Result<(), NriError>>,
}

impl Link {
    /// Starts the reader and writer tasks on `stream`.
    pub fn start<S>(stream: S) -> (Arc<Link>, Incoming)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let (outgoing, mut to_write) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(bytes) = to_write.recv().await {
                if let Err(error) = writer.write_all(&bytes).await {
                    tracing::warn!(%error, "writing to the NRI socket failed");
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });

        let pending: Pending = Arc::default();
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let reader_pending = pending.clone();
        let closed = tokio::spawn(async move {
            let result = read_loop(&mut reader, &requests_tx, &reader_pending).await;
            // Dropping the waiting senders wakes every caller with `Closed`.
            reader_pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            result
        });

        let link = Arc::new(Link {
            outgoing,
            pending,
            next_stream_id: AtomicU32::new(1),
        });
        (link, Incoming { requests, closed })
    }

    /// Sends a ttrpc message on a logical connection, cut into mux frames.
    pub fn send(&self, connection: u32, message: &[u8]) -> Result<(), NriError> {
        self.outgoing
            .send(mux::encode_frames(connection, message))
            .map_err(|_| NriError::Closed)
    }

    /// Answers request `stream_id` from the runtime on connection 1.
    pub fn respond(&self, stream_id: u32, response: &Response) -> Result<(), NriError> {
        let message = ttrpc::encode(stream_id, TYPE_RESPONSE, &response.encode_to_vec())?;
        self.send(PLUGIN_CONNECTION, &message)
    }

    /// Calls `service/method` on the runtime (connection 2) and returns the response payload.
    pub async fn call(
        &self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, NriError> {
        // Client stream ids are odd and strictly increasing on a connection.
        let stream_id = self.next_stream_id.fetch_add(2, Ordering::Relaxed);
        let request = Request {
            service: service.into(),
            method: method.into(),
            payload,
            timeout_nano: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            metadata: Vec::new(),
        };
        let message = ttrpc::encode(stream_id, TYPE_REQUEST, &request.encode_to_vec())?;
        let (answer_tx, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stream_id, answer_tx);
        if let Err(error) = self.send(RUNTIME_CONNECTION, &message) {
            self.forget(stream_id);
            return Err(error);
        }
        let answer = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => return Err(NriError::Closed),
            Err(_) => {
                self.forget(stream_id);
                return Err(NriError::Timeout {
                    method: method.into(),
                    timeout_ms: timeout.as_millis(),
                });
            }
        };
        // containerd answers OK with an empty message: no status, no payload.
        let response = Response::decode(answer.payload).map_err(|source| NriError::Decode {
            what: "ttrpc response",
            source,
        })?;
        match response.status {
            Some(status) if status.code != 0 => Err(NriError::Status {
                method: method.into(),
                code: status.code,
                message: status.message,
            }),
            _ => Ok(Bytes::from(response.payload)),
        }
    }

    fn forget(&self, stream_id: u32) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&stream_id);
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    reader: &mut R,
    requests: &mpsc::UnboundedSender<Message>,
    pending: &Pending,
) -> Result<(), NriError> {
    let mut plugin_stream = ttrpc::Decoder::default();
    let mut runtime_stream = ttrpc::Decoder::default();
    while let Some((connection, payload)) = mux::read_frame(reader).await? {
        let decoder = match connection {
            PLUGIN_CONNECTION => &mut plugin_stream,
            RUNTIME_CONNECTION => &mut runtime_stream,
            other => {
                tracing::warn!(
                    connection = other,
                    "ignoring a frame on an unknown mux connection"
                );
                continue;
            }
        };
        decoder.push(&payload);
        while let Some(message) = decoder.next_message()? {
            route(connection, message, requests, pending);
        }
    }
    Ok(())
}

fn route(
    connection: u32,
    message: Message,
    requests: &mpsc::UnboundedSender<Message>,
    pending: &Pending,
) {
    match (connection, message.kind) {
        (PLUGIN_CONNECTION, TYPE_REQUEST) => {
            // The receiver only goes away when the session is ending.
            let _ = requests.send(message);
        }
        (RUNTIME_CONNECTION, TYPE_RESPONSE) => {
            let waiter = pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&message.stream_id);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(message);
                }
                None => tracing::warn!(
                    stream_id = message.stream_id,
                    "ignoring a response nobody waits for (late or unknown stream id)"
                ),
            }
        }
        (connection, kind) => tracing::warn!(
            connection,
            kind,
            stream_id = message.stream_id,
            "ignoring a ttrpc message of unexpected type"
        ),
    }
}
