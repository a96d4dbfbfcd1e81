//! The producer handle: what the application holds.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use kpl_core::{
    MetricSample, PreparedRecord, Producer, ProducerConfig, ProducerStats, PutError, StreamTarget, UserRecord,
};
use tokio::sync::oneshot;

use crate::backend::Backend;
use crate::driver::Driver;
use crate::error::{DeliveryError, ShutdownError, SpawnError};
use crate::runtime::{Runtime, TokioRuntime};
use crate::shared::{Command, RecordResult, Reply, Shared, Submitted};

/// An asynchronous Kinesis producer: the KPL's aggregation, batching, rate limiting and retries, with a
/// result per record.
///
/// A cheap handle (`Clone`, `Send`, `Sync`) to a driver task that owns the [`kpl_core::Producer`]. Build one
/// with [`KinesisProducer::builder`]; it must be built inside a tokio runtime (or given a [`Runtime`] with
/// [`ProducerBuilder::spawn_on`]).
///
/// # Dropping
///
/// Dropping the last handle is a graceful close, not a loss: the driver flushes everything, keeps sending
/// and retrying until every record completed, resolves every [`RecordFuture`] with its real result, then
/// stops. That takes at most `record_ttl` plus `request_timeout` (records expire after their TTL). The
/// driver needs its runtime meanwhile: if the runtime itself is shut down first, outstanding records fail
/// with [`DeliveryError::DriverStopped`]. To bound the wait, or to know when it is over, call
/// [`shutdown`](Self::shutdown) instead.
#[derive(Clone)]
pub struct KinesisProducer {
    handle: Arc<Handle>,
}

/// A handle that does not keep the producer open (for its metrics readers): dropping the last
/// [`KinesisProducer`] still closes it.
#[cfg(any(feature = "cloudwatch", feature = "metrics-facade"))]
#[derive(Debug, Clone)]
pub(crate) struct WeakProducer {
    handle: std::sync::Weak<Handle>,
}

#[cfg(any(feature = "cloudwatch", feature = "metrics-facade"))]
impl WeakProducer {
    /// The producer, while any handle to it exists.
    pub(crate) fn upgrade(&self) -> Option<KinesisProducer> {
        self.handle.upgrade().map(|handle| KinesisProducer { handle })
    }
}

/// One per producer, shared by its clones: when the last clone drops, the driver is told.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Refused only when the driver is already gone: then there is nothing to release.
        let _ = self.shared.send(Command::LastHandleDropped);
    }
}

impl std::fmt::Debug for KinesisProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KinesisProducer")
            .field("outstanding_records", &self.outstanding_records())
            .finish_non_exhaustive()
    }
}

/// Builds a [`KinesisProducer`].
#[derive(Debug)]
pub struct ProducerBuilder<B> {
    config: ProducerConfig,
    backend: B,
    seed: Option<u64>,
}

impl<B: Backend> ProducerBuilder<B> {
    /// The seed of the core's retry jitter (default: random). Fix it for reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Starts the driver on the current tokio runtime.
    pub fn spawn(self) -> Result<KinesisProducer, SpawnError> {
        tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoTokioRuntime)?;
        Ok(self.spawn_on(TokioRuntime))
    }

    /// Starts the driver on `runtime`.
    ///
    /// # Panics
    ///
    /// With [`TokioRuntime`], outside a tokio runtime (as `tokio::spawn`): [`spawn`](Self::spawn) checks.
    pub fn spawn_on<R: Runtime>(self, runtime: R) -> KinesisProducer {
        let seed = self.seed.unwrap_or_else(random_seed);
        let shared = Arc::new(Shared::new(self.config.clone()));
        let core = Producer::new(without_limits(self.config), seed);
        let driver = Driver::new(core, runtime.clone(), self.backend, shared.clone());
        runtime.spawn(driver.run());
        KinesisProducer { handle: Arc::new(Handle { shared }) }
    }
}

/// The core's settings: the handles are the one place records are admitted (under the configured
/// `max_outstanding_records`, `max_outstanding_bytes` and the streams' drain-time limits of
/// `drain_window_percent`), so the core gets the largest limits it takes and no drain-time limit.
fn without_limits(config: ProducerConfig) -> ProducerConfig {
    let unlimited = i64::MAX as u64;
    // These two values are in range: the build cannot fail, and if it did the configured limits would do
    // (the handles admit first, so the core's equal limits would never refuse).
    config
        .to_builder()
        .max_outstanding_records(unlimited)
        .max_outstanding_bytes(unlimited)
        .drain_window_percent(0)
        .build()
        .unwrap_or(config)
}

/// A seed from the standard library's per-process random hasher keys.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

impl KinesisProducer {
    /// A builder with the core's settings and where requests go.
    pub fn builder<B: Backend>(config: ProducerConfig, backend: B) -> ProducerBuilder<B> {
        ProducerBuilder { config, backend, seed: None }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// A handle that does not keep the producer open.
    #[cfg(any(feature = "cloudwatch", feature = "metrics-facade"))]
    pub(crate) fn downgrade(&self) -> WeakProducer {
        WeakProducer { handle: Arc::downgrade(&self.handle) }
    }

    /// The settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.shared().config
    }

    /// Puts a record, waiting while `max_outstanding_records` or `max_outstanding_bytes` is reached, or its
    /// stream holds what it drains in its drain window ([`ProducerConfig::admits_to_stream`]).
    /// Returns once the record is accepted, with a future of its result; fails at once for an invalid
    /// record (empty or long partition key, bad explicit hash key, over `max_record_size`) or after
    /// shutdown began ([`PutError::Closed`]).
    pub async fn put(&self, record: UserRecord) -> Result<RecordFuture, PutError> {
        // A put with room completes at once; without this, a task putting in a loop would never yield and
        // could starve the driver (on a current-thread runtime, entirely) while records pile up unsent.
        // tokio's cooperative budget makes it yield every so many puts; elsewhere this is free.
        tokio::task::consume_budget().await;
        let record = self.shared().config.prepare(record).map_err(|(error, _)| error)?;
        let mut next = Some(((), record));
        loop {
            match self.submit(&mut next) {
                Ok(future) => return Ok(future),
                Err(PutError::Backpressure { .. }) => {}
                Err(error) => return Err(error),
            }
            // Registered before the retry, so a release between the check and the wait is not missed.
            let mut released = pin!(self.shared().capacity.notified());
            released.as_mut().enable();
            match self.submit(&mut next) {
                Ok(future) => return Ok(future),
                Err(PutError::Backpressure { .. }) => released.await,
                Err(error) => return Err(error),
            }
        }
    }

    /// Submits the record in `next` (left there when it does not fit).
    fn submit(&self, next: &mut Option<((), PreparedRecord)>) -> Result<RecordFuture, PutError> {
        let mut receiver = None;
        let mut refused = None;
        let submitted = self.shared().submit(
            next,
            &mut std::iter::empty(),
            |()| {
                let (reply, future) = futures::channel::oneshot::channel();
                receiver = Some(future);
                Reply::Future(reply)
            },
            |(), _, error| refused = Some(error),
        );
        match (submitted, receiver, refused) {
            (Submitted::Full(error), _, _) | (Submitted::All, _, Some(error)) => Err(error),
            (Submitted::All, Some(receiver), None) => Ok(RecordFuture { receiver }),
            // Taken, or refused: one of the two happened.
            (Submitted::All, None, None) => Err(PutError::Closed),
        }
    }

    /// [`put`](Self::put) of a record routed by its partition key.
    pub async fn put_data(
        &self,
        stream: &StreamTarget,
        partition_key: impl Into<String>,
        data: impl Into<Bytes>,
    ) -> Result<RecordFuture, PutError> {
        self.put(UserRecord::new(stream.clone(), partition_key, data)).await
    }

    /// Puts a record without waiting: [`PutError::Backpressure`] at once when the limits are reached.
    pub fn try_put(&self, record: UserRecord) -> Result<RecordFuture, PutError> {
        let record = self.shared().config.prepare(record).map_err(|(error, _)| error)?;
        self.submit(&mut Some(((), record)))
    }

    /// Sends everything buffered now and resolves once every record put before the call completed
    /// (written or failed). Records put meanwhile are not waited for.
    pub async fn flush(&self) {
        self.flush_target(None).await;
    }

    /// [`flush`](Self::flush) for one stream only.
    pub async fn flush_stream(&self, stream: &StreamTarget) {
        self.flush_target(Some(stream.clone())).await;
    }

    async fn flush_target(&self, stream: Option<StreamTarget>) {
        let (reply, done) = oneshot::channel();
        // A refused command or a dropped reply both mean the driver is gone: nothing is left to wait for.
        if self.shared().send(Command::Flush { stream, reply }).is_ok() {
            let _ = done.await;
        }
    }

    /// Records put and not yet completed.
    pub fn outstanding_records(&self) -> usize {
        self.shared().outstanding_records()
    }

    /// How long the oldest outstanding record has been waiting; `None` when there is none.
    pub async fn oldest_record_age(&self) -> Option<Duration> {
        self.inspect(|core, now| core.oldest_record_put_at().map(|at| now.saturating_duration_since(at)))
            .await
            .flatten()
    }

    /// The core's counters; `None` once the driver stopped.
    pub async fn stats(&self) -> Option<ProducerStats> {
        self.inspect(|core, _| core.stats().clone()).await
    }

    /// The KPL's metrics so far (see [`Producer::metrics`]); `None` once the driver stopped.
    pub async fn metrics(&self) -> Option<Vec<MetricSample>> {
        self.inspect(|core, _| core.metrics()).await
    }

    /// Runs `read` on the driver's core, after the commands sent before it.
    pub(crate) async fn inspect<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Producer, std::time::Instant) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Inspect(Box::new(move |core, now| {
            let _ = reply.send(read(core, now));
        }));
        self.shared().send(command).ok()?;
        answer.await.ok()
    }

    /// Stops accepting records (later puts fail with [`PutError::Closed`]), flushes, and waits until every
    /// outstanding record completed, then stops the driver. When `timeout` passes first, the records still
    /// outstanding fail with [`DeliveryError::ShutdownTimedOut`] and this returns
    /// [`ShutdownError::TimedOut`]. Any handle may call it; every handle is closed by it.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), ShutdownError> {
        let (reply, done) = oneshot::channel();
        if self.shared().send(Command::Shutdown { timeout, reply }).is_err() {
            // Already stopped, after an earlier shutdown.
            return Ok(());
        }
        done.await.unwrap_or(Err(ShutdownError::DriverStopped))
    }

    /// A blocking wrapper of this producer, for threads that do not run async code.
    pub fn blocking(&self) -> crate::BlockingProducer {
        crate::BlockingProducer::new(self.clone())
    }
}

/// The result of one record: resolves once it was written (with its shard, sequence number and attempts)
/// or failed. Dropping it does not cancel the record.
///
/// A result that is in resolves at once, outside tokio's cooperative budget: an application awaiting many
/// futures in a `FuturesUnordered` gets every result that is in on each poll. (With a budgeted channel,
/// every future past the budget answered "pending" and was woken again, so each round re-polled every
/// completed record: with 40,000 records in flight, the agent's rate fell from 30,000 to 6,700 lines/s.)
#[derive(Debug)]
#[must_use = "a record's result says whether it was written"]
pub struct RecordFuture {
    receiver: futures::channel::oneshot::Receiver<RecordResult>,
}

impl Future for RecordFuture {
    type Output = Result<kpl_core::RecordReceipt, DeliveryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(DeliveryError::DriverStopped)))
    }
}
