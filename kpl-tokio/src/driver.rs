//! The driver task: the only owner of the core. It feeds the core commands from the handles, responses
//! from the backend and timeouts from the runtime's clock, and follows the core's call contract: after
//! each batch of inputs, drain `poll_transmit`, then `poll_event`, then read `poll_timeout`.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::AbortHandle;
use kpl_core::{Event, IdQueue, Producer, RecordError, RequestId, Response, StreamTarget};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::backend::Backend;
use crate::error::{DeliveryError, ShutdownError};
use crate::replies::Replies;
use crate::request_log::{RequestLabel, RequestLog};
use crate::request_task::{self, Responder};
use crate::runtime::Runtime;
use crate::shared::{Admitted, Command, Shared};

/// Rounds of work in one poll before the driver yields to other tasks.
const ROUNDS_PER_POLL: usize = 64;
/// Commands the handles' queue keeps room for between rounds (about 180 bytes each): a round usually
/// brings fewer; a burst beyond grows the queue for that round only.
const SPARE_COMMANDS: usize = 1024;

pub(crate) struct Driver<R: Runtime, B: Backend> {
    core: Producer,
    runtime: R,
    backend: Arc<B>,
    shared: Arc<Shared>,
    /// Responses of spawned requests.
    responses: mpsc::UnboundedReceiver<(RequestId, Response)>,
    responder: Responder,
    /// Requests in flight, to abort when the driver stops, and to name in the log.
    in_flight: HashMap<RequestId, (AbortHandle, RequestLabel)>,
    log: RequestLog,
    replies: Replies,
    /// `flush` calls waiting for the core's `FlushCompleted`, by flush id.
    flushes: IdQueue<oneshot::Sender<()>>,
    /// Flushes completed this round: answered once this round's results are delivered.
    flushed: Vec<oneshot::Sender<()>>,
    shutdowns: Vec<oneshot::Sender<Result<(), ShutdownError>>>,
    /// Earliest timeout of the `shutdown` calls.
    shutdown_deadline: Option<Instant>,
    closing: bool,
    /// How the driver ended, once it did.
    finished: Option<Result<(), ShutdownError>>,
    timer: Option<(Instant, Pin<Box<R::Sleep>>)>,
    /// Spare buffer the handles' queue is swapped into.
    commands: Vec<Command>,
    /// Records expired in this round, for the log.
    expired: usize,
    /// The drain rate of each of the core's streams last handed to the handles, in the core's order.
    drain_rates: Vec<u64>,
    /// Spare buffer of the drain rates that changed in a round.
    changed_rates: Vec<(StreamTarget, u64)>,
}

impl<R: Runtime, B: Backend> Driver<R, B> {
    /// A driver of `core`, which must have been built without outstanding limits of its own: the handles
    /// admit records (see `shared.rs`), so the core never refuses one for backpressure.
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
            replies: Replies::default(),
            flushes: IdQueue::new(),
            flushed: Vec::new(),
            shutdowns: Vec::new(),
            shutdown_deadline: None,
            closing: false,
            finished: None,
            timer: None,
            commands: Vec::new(),
            expired: 0,
            drain_rates: Vec::new(),
            changed_rates: Vec::new(),
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
                    && let Some(error) = response.error()
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
                // The buffer goes back to the handles at the next swap: after a burst, keep room for a usual
                // round only, not the burst's high-water mark (in both buffers) for the producer's life.
                commands.shrink_to(SPARE_COMMANDS);
                self.commands = commands;
                worked = true;
            }
            if self.core.poll_timeout().is_some_and(|at| at <= now) {
                self.core.handle_timeout(now);
                worked = true;
            }
            self.drain(now);
            self.after_round(now);
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
        let Some(deadline) = [self.core.poll_timeout(), self.shutdown_deadline].into_iter().flatten().min()
        else {
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
            Command::Put(Admitted { record, size, gauge, reply }) => {
                match self.core.put_prepared(now, record) {
                    Ok(id) => self.replies.insert(id, reply, size, gauge),
                    Err(refused) => {
                        // The handles check records with the core's rules and admit them with the only
                        // limits there are, and no put reaches a closed core: this does not happen.
                        debug_assert!(false, "the core refused an admitted record: {refused}");
                        error!(%refused, "the core refused an admitted record");
                        self.replies.refuse(reply, size, gauge, DeliveryError::DriverStopped);
                    }
                }
            }
            Command::Flush { stream, reply } => {
                let id = self.core.flush(now, stream.as_ref());
                if self.flushes.insert(id.0, reply).is_err() {
                    debug_assert!(false, "flush id {id:?} out of order");
                }
            }
            Command::Inspect(read) => read(&self.core, now),
            Command::Shutdown { timeout, reply } => {
                self.close(now);
                let deadline = now.checked_add(timeout);
                self.shutdown_deadline = [self.shutdown_deadline, deadline].into_iter().flatten().min();
                self.shutdowns.push(reply);
            }
            Command::LastHandleDropped => self.close(now),
        }
    }

    fn close(&mut self, now: Instant) {
        if !self.closing {
            debug!(outstanding_records = self.core.outstanding_records(), "producer closing");
            self.closing = true;
            self.core.close(now);
        }
    }

    /// The call contract's drain: every transmit, then every event.
    fn drain(&mut self, now: Instant) {
        while let Some(transmit) = self.core.poll_transmit(now) {
            let id = transmit.id;
            let timeout = self.core.config().request_timeout();
            let task =
                request_task::spawn(&self.runtime, &self.backend, &self.responder, now, timeout, transmit);
            self.in_flight.insert(id, task);
        }
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::RecordCompleted(outcome) => {
                    if let Err(failure) = &outcome.result
                        && matches!(failure.error, RecordError::Expired { .. })
                    {
                        self.expired += 1;
                    }
                    self.replies.complete(outcome.id, outcome.result.map_err(DeliveryError::Failed));
                }
                Event::FlushCompleted(id) => self.flushed.extend(self.flushes.remove(id.0)),
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
                // `CapacityAvailable` follows only a `Backpressure` refusal, which the core (given no
                // limits) never makes; other events are the application's to read, not the driver's.
                _ => {}
            }
        }
    }

    /// Bookkeeping after a round: results delivered and capacity given back to the handles, flushes
    /// answered, the shutdown deadline.
    fn after_round(&mut self, now: Instant) {
        if self.finished.is_none() && self.shutdown_deadline.is_some_and(|deadline| deadline <= now) {
            let abandoned = self.replies.fail_all(&DeliveryError::ShutdownTimedOut);
            warn!(abandoned, "shutdown timed out; the records still outstanding failed");
            self.finished = Some(Err(ShutdownError::TimedOut { abandoned }));
        }
        let released = self.replies.deliver();
        if released.records > 0 {
            self.shared.release(released);
        }
        self.refresh_drain_rates(now);
        for reply in self.flushed.drain(..) {
            let _ = reply.send(());
        }
        if self.expired > 0 {
            self.log.records_expired(now, self.expired);
            self.expired = 0;
        }
        self.log.summarise(now, false);
        if let Some(result) = &self.finished {
            for reply in self.shutdowns.drain(..) {
                let _ = reply.send(result.clone());
            }
        }
    }
}

impl<R: Runtime, B: Backend> Drop for Driver<R, B> {
    fn drop(&mut self) {
        for (abort, _) in self.in_flight.values() {
            abort.abort();
        }
        // Records still outstanding, and commands that arrived too late: records fail, flushes and reads
        // are answered by dropping their replies, a shutdown gets the driver's ending (a driver dropped by
        // its runtime did not finish).
        self.replies.fail_all(&DeliveryError::DriverStopped);
        let ending = self.finished.clone().unwrap_or(Err(ShutdownError::DriverStopped));
        for command in self.shared.stop() {
            match command {
                Command::Put(Admitted { reply, size, gauge, .. }) => {
                    self.replies.refuse(reply, size, gauge, DeliveryError::DriverStopped);
                }
                Command::Shutdown { reply, .. } => drop(reply.send(ending.clone())),
                _ => {}
            }
        }
        self.replies.deliver();
    }
}

impl<R: Runtime, B: Backend> Driver<R, B> {
    /// Hands the core's drain rates that changed since the last round to the handles' gauge, where they
    /// become the streams' admission limits.
    fn refresh_drain_rates(&mut self, now: Instant) {
        self.changed_rates.clear();
        for (index, (stream, rate)) in self.core.drain_rates(now).enumerate() {
            match self.drain_rates.get_mut(index) {
                Some(known) if *known == rate => continue,
                Some(known) => *known = rate,
                None => self.drain_rates.push(rate),
            }
            self.changed_rates.push((stream.clone(), rate));
        }
        if !self.changed_rates.is_empty() {
            self.shared.set_drain_rates(&self.changed_rates);
        }
    }
}
