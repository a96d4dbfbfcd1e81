//! The driver task: the only owner of the core. It feeds the core commands from the handles, responses
//! from the backend and timeouts from the runtime's clock, and follows the core's call contract: after
//! each batch of inputs, drain `poll_transmit`, then `poll_event`, then read `poll_timeout`.

use std::collections::{HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{AbortHandle, Abortable, Aborted, Either, select};
use kpl_core::{
    Event, Producer, RecordError, RecordId, RecordOutcome, Request, RequestError, RequestErrorKind,
    RequestId, Response, StreamTarget, Transmit,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::backend::Backend;
use crate::error::{DeliveryError, ShutdownError};
use crate::request_log::{RequestLabel, RequestLog};
use crate::runtime::Runtime;
use crate::shared::{Command, RecordResult, Shared};

/// Rounds of work in one poll before the driver yields to other tasks.
const ROUNDS_PER_POLL: usize = 64;

pub(crate) struct Driver<R: Runtime, B: Backend> {
    core: Producer,
    runtime: R,
    backend: Arc<B>,
    shared: Arc<Shared>,
    /// Responses of spawned requests.
    responses: mpsc::UnboundedReceiver<(RequestId, Response)>,
    responder: mpsc::UnboundedSender<(RequestId, Response)>,
    /// Requests in flight, to abort when the driver stops, and to name in the log.
    in_flight: HashMap<RequestId, (AbortHandle, RequestLabel)>,
    log: RequestLog,
    records: Records,
    flushes: Vec<FlushWaiter>,
    shutdowns: Vec<oneshot::Sender<Result<(), ShutdownError>>>,
    /// Earliest timeout of the `shutdown` calls.
    shutdown_deadline: Option<Instant>,
    closing: bool,
    /// How the driver ended, once it did.
    finished: Option<Result<(), ShutdownError>>,
    timer: Option<(Instant, Pin<Box<R::Sleep>>)>,
    /// Spare buffer the handles' queue is swapped into.
    commands: Vec<Command>,
    /// Capacity of completed records not yet given back to the handles.
    released_records: usize,
    released_bytes: usize,
    /// Records expired in this round, for the log.
    expired: usize,
}

/// A record accepted by the core and not completed.
struct PendingRecord {
    reply: oneshot::Sender<RecordResult>,
    stream: StreamTarget,
    size: usize,
}

/// Outstanding records by id. The core assigns ids in increasing order, so a queue indexed from the oldest
/// outstanding id holds them with O(1) insertion and removal.
#[derive(Default)]
struct Records {
    /// Id of the queue's front.
    base: u64,
    queue: VecDeque<Option<PendingRecord>>,
}

impl Records {
    fn insert(&mut self, id: RecordId, record: PendingRecord) {
        debug_assert!(id.0 >= self.end(), "record ids must increase");
        let gap = id.0.saturating_sub(self.end());
        self.queue.extend(std::iter::repeat_with(|| None).take(gap as usize));
        self.queue.push_back(Some(record));
    }

    fn take(&mut self, id: RecordId) -> Option<PendingRecord> {
        let index = usize::try_from(id.0.checked_sub(self.base)?).ok()?;
        let record = self.queue.get_mut(index)?.take();
        while let Some(None) = self.queue.front() {
            self.queue.pop_front();
            self.base += 1;
        }
        record
    }

    /// The id after the newest record.
    fn end(&self) -> u64 {
        self.base + self.queue.len() as u64
    }

    /// Outstanding records of `stream` (of all streams with `None`).
    fn count(&self, stream: Option<&StreamTarget>) -> usize {
        self.queue
            .iter()
            .flatten()
            .filter(|record| stream.is_none_or(|stream| *stream == record.stream))
            .count()
    }

    fn drain(&mut self) -> impl Iterator<Item = PendingRecord> + '_ {
        self.base = self.end();
        self.queue.drain(..).flatten()
    }
}

/// A `flush` call waiting for the records put before it.
struct FlushWaiter {
    /// Records with ids below this were put before the flush.
    upto: u64,
    stream: Option<StreamTarget>,
    /// Of those, how many are still outstanding.
    remaining: usize,
    reply: oneshot::Sender<()>,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<R: Runtime, B: Backend> Driver<R, B> {
    pub(crate) fn new(core: Producer, runtime: R, backend: B, shared: Arc<Shared>) -> Self {
        let (responder, responses) = mpsc::unbounded_channel();
        Self {
            core,
            runtime,
            backend: Arc::new(backend),
            shared,
            responses,
            responder,
            in_flight: HashMap::new(),
            log: RequestLog::default(),
            records: Records::default(),
            flushes: Vec::new(),
            shutdowns: Vec::new(),
            shutdown_deadline: None,
            closing: false,
            finished: None,
            timer: None,
            commands: Vec::new(),
            released_records: 0,
            released_bytes: 0,
            expired: 0,
        }
    }

    /// Runs until the producer is shut down, or drained after its last handle was dropped.
    pub(crate) async fn run(mut self) {
        debug!("producer driver started");
        poll_fn(|cx| self.poll_rounds(cx)).await;
        self.log.summarise(self.runtime.now(), true);
        debug!("producer driver stopped");
    }

    fn poll_rounds(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..ROUNDS_PER_POLL {
            self.shared.driver.register(cx.waker());
            let now = self.runtime.now();
            let mut worked = false;
            while let Poll::Ready(Some((id, response))) = self.responses.poll_recv(cx) {
                if let Some((_, label)) = self.in_flight.remove(&id)
                    && let Some(error) = response_error(&response)
                {
                    self.log.request_failed(now, &label, error);
                }
                self.core.handle_response(now, id, response);
                worked = true;
            }
            self.shared.take_commands(&mut self.commands);
            if !self.commands.is_empty() {
                let mut commands = std::mem::take(&mut self.commands);
                for command in commands.drain(..) {
                    self.command(now, command);
                }
                self.commands = commands;
                worked = true;
            }
            if self.core.poll_timeout().is_some_and(|at| at <= now) {
                self.core.handle_timeout(now);
                worked = true;
            }
            self.drain(now);
            self.settle(now);
            if self.finished.is_some() {
                return Poll::Ready(());
            }
            if !worked && self.poll_timer(cx).is_pending() {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Waits for the next deadline: the core's, or a shutdown's.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = earliest(self.core.poll_timeout(), self.shutdown_deadline) else {
            self.timer = None;
            return Poll::Pending;
        };
        if self.timer.as_ref().is_none_or(|(at, _)| *at != deadline) {
            self.timer = Some((deadline, Box::pin(self.runtime.sleep_until(deadline))));
        }
        let Some((_, sleep)) = self.timer.as_mut() else { return Poll::Pending };
        let fired = sleep.as_mut().poll(cx);
        if fired.is_ready() {
            self.timer = None;
        }
        fired
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Put { record, size, reply } => {
                let stream = record.stream.clone();
                match self.core.put_record(now, record) {
                    Ok(id) => self.records.insert(id, PendingRecord { reply, stream, size }),
                    Err(error) => {
                        self.release(size);
                        let _ = reply.send(Err(DeliveryError::Refused(error)));
                    }
                }
            }
            Command::Flush { stream, reply } => {
                self.core.flush(now, stream.as_ref());
                let remaining = self.records.count(stream.as_ref());
                self.flushes.push(FlushWaiter { upto: self.records.end(), stream, remaining, reply });
            }
            Command::Inspect(read) => read(&self.core, now),
            Command::Shutdown { timeout, reply } => {
                self.close(now);
                self.shutdown_deadline = earliest(self.shutdown_deadline, now.checked_add(timeout));
                self.shutdowns.push(reply);
            }
            Command::Release => self.close(now),
        }
    }

    fn close(&mut self, now: Instant) {
        if !self.closing {
            debug!(outstanding_records = self.core.outstanding_records(), "producer closing");
            self.closing = true;
            self.core.close(now);
        }
    }

    fn release(&mut self, size: usize) {
        self.released_records += 1;
        self.released_bytes += size;
    }

    /// The call contract's drain: every transmit, then every event.
    fn drain(&mut self, now: Instant) {
        while let Some(transmit) = self.core.poll_transmit(now) {
            self.send(now, transmit);
        }
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::RecordCompleted(outcome) => self.complete(outcome),
                Event::ShardMapUpdated { stream, open_shards } => {
                    info!(%stream, open_shards, "shard map refreshed");
                }
                Event::ShardMapUnavailable { stream, reason } => {
                    warn!(%stream, %reason, "no shard map: aggregating records by partition key only until a listing succeeds");
                }
                Event::ShardThrottled { stream, shard_id, rate_factor } => {
                    debug!(%stream, shard_id = %shard_id, rate_factor, "shard throttled; slowing down to it");
                    self.log.shard_throttled(now, &stream, shard_id, rate_factor);
                }
                Event::Drained => self.finished = Some(Ok(())),
                // The handles admit records with the core's own rule before they reach it, so the core never
                // reports backpressure; `CapacityAvailable` needs nothing.
                _ => {}
            }
        }
    }

    fn complete(&mut self, outcome: RecordOutcome) {
        let Some(record) = self.records.take(outcome.id) else { return };
        self.release(record.size);
        for flush in &mut self.flushes {
            if outcome.id.0 < flush.upto && flush.stream.as_ref().is_none_or(|s| *s == outcome.stream) {
                flush.remaining -= 1;
            }
        }
        if let Err(failure) = &outcome.result
            && matches!(failure.error, RecordError::Expired { .. })
        {
            self.expired += 1;
        }
        let _ = record.reply.send(outcome.result.map_err(DeliveryError::Failed));
    }

    /// Bookkeeping after a round: capacity back to the handles, flushes answered, the shutdown deadline.
    fn settle(&mut self, now: Instant) {
        if self.released_records > 0 {
            self.shared.release(self.released_records, self.released_bytes);
            self.released_records = 0;
            self.released_bytes = 0;
        }
        if self.expired > 0 {
            self.log.records_expired(now, self.expired);
            self.expired = 0;
        }
        self.log.summarise(now, false);
        let (done, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.flushes).into_iter().partition(|flush| flush.remaining == 0);
        self.flushes = waiting;
        for flush in done {
            let _ = flush.reply.send(());
        }
        if self.finished.is_none() && self.shutdown_deadline.is_some_and(|deadline| deadline <= now) {
            let mut abandoned = 0;
            for record in self.records.drain() {
                let _ = record.reply.send(Err(DeliveryError::ShutdownTimedOut));
                abandoned += 1;
            }
            warn!(abandoned, "shutdown timed out; the records still outstanding failed");
            self.finished = Some(Err(ShutdownError::TimedOut { abandoned }));
        }
        if let Some(result) = &self.finished {
            for reply in self.shutdowns.drain(..) {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// Sends a request on its own task, bounded by `request_timeout`. The core's contract wants exactly one
    /// response per request: however the task ends, it answers (see [`Answer`]).
    fn send(&mut self, now: Instant, transmit: Transmit) {
        let Transmit { id, request } = transmit;
        let timeout = self.core.config().request_timeout();
        let timer = self.runtime.sleep_until(now.checked_add(timeout).unwrap_or(now));
        let mut answer = Answer::new(id, &request, self.responder.clone());
        let (label, span) = match &request {
            Request::PutRecords(put) => (
                RequestLabel { operation: "PutRecords", stream: put.stream.clone() },
                info_span!("PutRecords", request = id.0, stream = %put.stream, entries = put.entries.len()),
            ),
            Request::ListShards(list) => (
                RequestLabel { operation: "ListShards", stream: list.stream.clone() },
                info_span!("ListShards", request = id.0, stream = %list.stream, next_page = list.next_token.is_some()),
            ),
            _ => (
                RequestLabel { operation: "unknown", stream: StreamTarget::name("") },
                info_span!("request", request = id.0),
            ),
        };
        let call = call(self.backend.clone(), request, timer, timeout).instrument(span);
        let (abort, registration) = AbortHandle::new_pair();
        self.in_flight.insert(id, (abort, label));
        let call = Abortable::new(call, registration);
        self.runtime.spawn(async move {
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
    }
}

/// The promise that a request gets its one response. Dropped unanswered (the task was cancelled, or its
/// runtime shut down with it), it answers with an ambiguous failure: the request may have been written, so
/// its records are retried and flagged as possibly duplicated.
struct Answer {
    id: RequestId,
    list_shards: bool,
    responder: Option<mpsc::UnboundedSender<(RequestId, Response)>>,
}

impl Answer {
    fn new(
        id: RequestId,
        request: &Request,
        responder: mpsc::UnboundedSender<(RequestId, Response)>,
    ) -> Self {
        Self { id, list_shards: matches!(request, Request::ListShards(_)), responder: Some(responder) }
    }

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
        let response = if self.list_shards {
            Response::ListShards(Err(error))
        } else {
            Response::PutRecords(Err(error))
        };
        self.send(response);
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

impl<R: Runtime, B: Backend> Drop for Driver<R, B> {
    fn drop(&mut self) {
        for (abort, _) in self.in_flight.values() {
            abort.abort();
        }
        // Commands that arrived too late: flushes and reads are answered by dropping their replies; a
        // shutdown gets the driver's ending (a driver dropped by its runtime did not finish).
        let ending = self.finished.clone().unwrap_or(Err(ShutdownError::DriverStopped));
        for command in self.shared.stop() {
            if let Command::Shutdown { reply, .. } = command {
                let _ = reply.send(ending.clone());
            }
        }
    }
}

fn response_error(response: &Response) -> Option<&RequestError> {
    match response {
        Response::ListShards(Err(error)) | Response::PutRecords(Err(error)) => Some(error),
        _ => None,
    }
}

/// One request to the backend, answered with a timeout error if `timer` fires first.
async fn call<B: Backend>(
    backend: Arc<B>,
    request: Request,
    timer: impl Future<Output = ()>,
    timeout: Duration,
) -> Response {
    match request {
        Request::ListShards(request) => {
            let stream = request.stream.clone();
            let result = within(backend.list_shards(request), timer, timeout).await;
            log_failure("ListShards", &stream, result.as_ref().err());
            Response::ListShards(result)
        }
        Request::PutRecords(request) => {
            let stream = request.stream.clone();
            let result = within(backend.put_records(request), timer, timeout).await;
            log_failure("PutRecords", &stream, result.as_ref().err());
            Response::PutRecords(result)
        }
        other => {
            error!(request = ?std::mem::discriminant(&other), "request kind unknown to this adapter");
            let error = RequestError::new(RequestErrorKind::Fatal, None, "request kind unknown to kpl-tokio");
            Response::PutRecords(Err(error))
        }
    }
}

async fn within<T>(
    call: impl Future<Output = Result<T, RequestError>>,
    timer: impl Future<Output = ()>,
    timeout: Duration,
) -> Result<T, RequestError> {
    match select(pin!(call), pin!(timer)).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(RequestError::new(
            RequestErrorKind::Timeout,
            None,
            format!("no response within request_timeout ({timeout:?})"),
        )),
    }
}

fn log_failure(operation: &'static str, stream: &StreamTarget, error: Option<&RequestError>) {
    if let Some(error) = error {
        debug!(operation, %stream, kind = ?error.kind, code = error.code.as_deref(), message = %error.message, "request failed");
    }
}
