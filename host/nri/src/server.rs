//! The ttrpc server on mux connection 1: turns each request from the runtime into exactly one
//! response, always before the runtime's deadline.
//!
//! The runtime gives two limits — Configure's request timeout and each request's `timeout_nano` —
//! and disconnects a plugin that misses them, after which containers are created unchecked.
//! The server takes the smaller, keeps a safety margin, and gives the handler a [`Deadline`]
//! inside it. If the handler is still busy at the last moment the server answers by itself:
//! with an error for events the runtime can refuse (fail closed), with OK otherwise. The same
//! holds for the server's own failures: a handler that panics, or an answer that cannot be
//! encoded or sent, is replaced by a short fixed refusal where the runtime honours one — never
//! by silence, which containerd punishes by disconnecting bulkhead and starting the container.

use std::sync::Arc;
use std::time::Duration;

use bulkhead_core::event::EventKind;
use bulkhead_proto::nri::PLUGIN_SERVICE;
use bulkhead_proto::ttrpc::{Request, Response, Status};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::handler::{Deadline, EventHandler};
use super::link::Link;
use super::plugin_service::{
    Answered, CODE_INVALID_ARGUMENT, CODE_UNIMPLEMENTED, PluginService, RpcStatus,
};
use super::ttrpc::Message;

/// gRPC status code the server answers with when the handler missed its deadline.
pub const CODE_DEADLINE_EXCEEDED: i32 = 4;
/// gRPC status code of a refusal caused by bulkhead's own failure.
pub const CODE_INTERNAL: i32 = 13;

/// Smallest safety margin kept between the handler's deadline and the runtime's.
const MIN_MARGIN: Duration = Duration::from_millis(50);

/// The time budget of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// When the handler must have decided.
    pub decide_by: Instant,
    /// When the server answers on its own if the handler has not.
    pub answer_by: Instant,
}

/// Computes the budget of a request that arrived at `arrival`: the runtime's limit is the
/// smaller of its configured request timeout and the request's own `timeout_nano` (0 = none);
/// the handler gets that minus a margin of a quarter (at least 50 ms), and the server's own
/// answer goes out halfway through the margin.
pub fn budget(arrival: Instant, request_timeout: Duration, timeout_nano: i64) -> Budget {
    let mut limit = request_timeout;
    if let Ok(nanos) = u64::try_from(timeout_nano)
        && nanos > 0
    {
        limit = limit.min(Duration::from_nanos(nanos));
    }
    let margin = (limit / 4).max(MIN_MARGIN).min(limit);
    Budget {
        decide_by: arrival + (limit - margin),
        answer_by: arrival + (limit - margin / 2),
    }
}

/// Serves requests until the link closes. Each request is handled in its own task so a slow
/// one never delays reading the socket.
pub async fn serve<H: EventHandler>(
    link: Arc<Link>,
    mut requests: mpsc::UnboundedReceiver<Message>,
    service: Arc<PluginService<H>>,
) {
    while let Some(message) = requests.recv().await {
        let arrival = Instant::now();
        let link = link.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let stream_id = message.stream_id;
            let (response, answered) = answer(&service, &message, arrival).await;
            if let Err(error) = link.respond(stream_id, &response) {
                tracing::error!(%error, stream_id, "could not send a response to the runtime; sending a fixed one");
                let fallback = fallback_response(&message);
                if let Err(error) = link.respond(stream_id, &fallback) {
                    tracing::error!(%error, stream_id, "could not send the fixed response either");
                }
            }
            if let Some(answered) = answered {
                answered.log();
            }
        });
    }
}

/// The response to one request message, and for a lifecycle event the log line to write once
/// the response is sent.
pub async fn answer<H: EventHandler>(
    service: &Arc<PluginService<H>>,
    message: &Message,
    arrival: Instant,
) -> (Response, Option<Answered>) {
    let mut answered = None;
    let response = respond_to(service, message, arrival, &mut answered).await;
    (response, answered)
}

async fn respond_to<H: EventHandler>(
    service: &Arc<PluginService<H>>,
    message: &Message,
    arrival: Instant,
    answered: &mut Option<Answered>,
) -> Response {
    let request = match Request::decode(message.payload.clone()) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, stream_id = message.stream_id, "undecodable ttrpc request");
            return error_response(
                CODE_INVALID_ARGUMENT,
                format!("malformed ttrpc request: {error}"),
            );
        }
    };
    if request.service != PLUGIN_SERVICE {
        tracing::warn!(service = %request.service, method = %request.method, "call to an unknown service");
        return error_response(
            CODE_UNIMPLEMENTED,
            format!(
                "bulkhead does not implement {}/{}",
                request.service, request.method
            ),
        );
    }
    let budget = budget(arrival, service.request_timeout(), request.timeout_nano);
    let deadline = Deadline {
        at: budget.decide_by,
    };
    // The handler runs in its own task so that a panic in it becomes an answer, not silence.
    let work = tokio::spawn({
        let service = service.clone();
        let method = request.method.clone();
        let payload = request.payload.clone();
        async move { service.dispatch(&method, &payload, deadline).await }
    });
    let abort = work.abort_handle();
    let response = match tokio::time::timeout_at(budget.answer_by, work).await {
        Ok(Ok((reply, event))) => {
            *answered = event;
            match reply {
                Ok(payload) => Response {
                    status: None,
                    payload,
                },
                Err(RpcStatus { code, message }) => error_response(code, message),
            }
        }
        Ok(Err(join)) => {
            tracing::error!(method = %request.method, error = %join, "the handler failed");
            fixed_answer(
                &request,
                CODE_INTERNAL,
                "bulkhead: internal error; refused (fail closed)",
            )
        }
        Err(_) => {
            abort.abort();
            tracing::error!(
                method = %request.method,
                "no decision before the runtime's deadline; answering without one"
            );
            fixed_answer(
                &request,
                CODE_DEADLINE_EXCEEDED,
                "bulkhead: no decision within the runtime's deadline; refused (fail closed)",
            )
        }
    };
    if response.encoded_len() > MAX_RESPONSE_BYTES {
        tracing::error!(
            method = %request.method,
            bytes = response.encoded_len(),
            "the answer is too large to send; answering with a fixed one"
        );
        return fixed_answer(
            &request,
            CODE_INTERNAL,
            "bulkhead: answer too large; refused (fail closed)",
        );
    }
    response
}

/// Largest encoded response sent as is. ttrpc refuses messages over 4 MiB; bulkhead's own
/// answers are a few KiB (reasons are cut to 1 KiB), so anything larger is a bug.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Whether the runtime honours an error answer to `request` (and so refuses the container).
fn refusable(request: &Request) -> bool {
    match request.method.as_str() {
        "CreateContainer" => true,
        "StateChange" => bulkhead_proto::nri::StateChangeEvent::decode(request.payload.as_slice())
            .ok()
            .and_then(|event| EventKind::from_nri_number(event.event))
            .is_some_and(EventKind::can_refuse),
        _ => false,
    }
}

/// The answer when the handler produced none bulkhead can send: a refusal with `reason` where
/// the runtime honours one, OK otherwise (an error there would only be logged by the runtime).
fn fixed_answer(request: &Request, code: i32, reason: &str) -> Response {
    if refusable(request) {
        error_response(code, reason.into())
    } else {
        Response::default()
    }
}

/// The fixed answer to a raw request message whose real answer could not be sent.
fn fallback_response(message: &Message) -> Response {
    match Request::decode(message.payload.clone()) {
        Ok(request) => fixed_answer(
            &request,
            CODE_INTERNAL,
            "bulkhead: answer could not be sent; refused (fail closed)",
        ),
        Err(_) => error_response(CODE_INVALID_ARGUMENT, "malformed ttrpc request".into()),
    }
}

fn error_response(code: i32, message: String) -> Response {
    Response {
        status: Some(Status { code, message }),
        payload: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_keeps_a_quarter_of_the_runtime_timeout() {
        let now = Instant::now();
        let b = budget(now, Duration::from_secs(2), 0);
        assert_eq!(b.decide_by - now, Duration::from_millis(1500));
        assert_eq!(b.answer_by - now, Duration::from_millis(1750));
    }

    #[test]
    fn request_timeout_nano_shortens_the_budget() {
        let now = Instant::now();
        let b = budget(now, Duration::from_secs(2), 400_000_000);
        assert_eq!(b.decide_by - now, Duration::from_millis(300));
    }

    #[test]
    fn longer_request_timeout_does_not_extend_the_budget() {
        let now = Instant::now();
        let b = budget(now, Duration::from_secs(2), 10_000_000_000);
        assert_eq!(b.decide_by - now, Duration::from_millis(1500));
    }

    #[test]
    fn tiny_timeouts_keep_at_least_a_50ms_margin_without_underflow() {
        let now = Instant::now();
        let b = budget(now, Duration::from_millis(100), 0);
        assert_eq!(b.decide_by - now, Duration::from_millis(50));
        let b = budget(now, Duration::from_millis(20), 0);
        assert_eq!(b.decide_by, now);
        assert!(b.answer_by >= b.decide_by);
    }
}
