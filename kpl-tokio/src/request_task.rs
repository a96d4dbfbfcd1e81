//! One request on a task of its own: sent to the backend, bounded by `request_timeout`, and answered
//! exactly once however the task ends.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{AbortHandle, Abortable, Aborted, Either, select};
use kpl_core::{Request, RequestError, RequestErrorKind, RequestId, RequestKind, Response, Transmit};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, error, field, info_span};

use crate::backend::Backend;
use crate::request_log::RequestLabel;
use crate::runtime::Runtime;

/// Where request tasks send their responses.
pub(crate) type Responder = mpsc::UnboundedSender<(RequestId, Response)>;

/// Starts `transmit` on its own task; returns what the driver keeps to abort it and to name it in the log.
pub(crate) fn spawn<R: Runtime, B: Backend>(
    runtime: &R,
    backend: &Arc<B>,
    responder: &Responder,
    now: Instant,
    timeout: Duration,
    transmit: Transmit,
) -> (AbortHandle, RequestLabel) {
    let Transmit { id, request } = transmit;
    let kind = request.kind();
    let label = RequestLabel { operation: kind.operation(), stream: request.stream().clone() };
    let span = info_span!(
        "request",
        operation = kind.operation(),
        request = id.0,
        stream = %label.stream,
        entries = field::Empty,
        shards = field::Empty,
        attempt = field::Empty,
    );
    if let Request::PutRecords(put) = &request {
        span.record("entries", put.entries.len());
        span.record("shards", put.shards);
        span.record("attempt", put.attempt);
    }
    let timer = runtime.sleep_until(now.checked_add(timeout).unwrap_or(now));
    let mut answer = Answer { id, kind, responder: Some(responder.clone()) };
    let call = within(backend.clone(), request, timer, timeout).instrument(span);
    let (abort, registration) = AbortHandle::new_pair();
    let call = Abortable::new(call, registration);
    runtime.spawn(async move {
        match AssertUnwindSafe(call).catch_unwind().await {
            Ok(Ok(response)) => answer.send(response),
            // Aborted: the driver is stopping and nobody waits for the response.
            Ok(Err(Aborted)) => answer.disarm(),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                error!(request = ?id, panic = %message, "a request task panicked; its records are retried");
                answer.fail(format!("the request task panicked: {message}"));
            }
        }
    });
    (abort, label)
}

/// The promise that a request gets its one response. Dropped unanswered (the task was cancelled, or its
/// runtime shut down with it), it answers with an ambiguous failure: the request may have been written, so
/// its records are retried and flagged as possibly duplicated.
struct Answer {
    id: RequestId,
    kind: RequestKind,
    responder: Option<Responder>,
}

impl Answer {
    fn send(&mut self, response: Response) {
        if let Some(responder) = self.responder.take() {
            // The driver is gone when this fails: nobody is waiting for the response.
            let _ = responder.send((self.id, response));
        }
    }

    fn disarm(mut self) {
        self.responder = None;
    }

    /// Answers with an ambiguous failure (`Timeout`: the records are retried and may be duplicated).
    fn fail(&mut self, message: String) {
        let error = RequestError::new(RequestErrorKind::Timeout, Some("RequestTaskEnded"), message);
        self.send(self.kind.failure(error));
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if self.responder.is_some() {
            error!(request = ?self.id, "a request task ended without an answer (cancelled, or its runtime shut down); its records are retried");
            self.fail("the request task ended without an answer".into());
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

/// One request to the backend, failed with a timeout error if `timer` fires first.
async fn within<B: Backend>(
    backend: Arc<B>,
    request: Request,
    timer: impl Future<Output = ()>,
    timeout: Duration,
) -> Response {
    let kind = request.kind();
    let response = match select(pin!(backend.send(request)), pin!(timer)).await {
        Either::Left((response, _)) => response,
        Either::Right(((), _)) => kind.failure(RequestError::new(
            RequestErrorKind::Timeout,
            None,
            format!("no response within request_timeout ({timeout:?})"),
        )),
    };
    if let Some(error) = response.error() {
        debug!(kind = ?error.kind, code = error.code.as_deref(), message = %error.message, "request failed");
    }
    response
}
