//! Tagged puts whose results arrive in batches: the Rust equivalent of the KPL's
//! `Futures.addCallback(addUserRecord(..), callback)`, without a future, a channel, a task or a wake-up per
//! record.

use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;
use kpl_core::{IdQueue, PutError, RecordReceipt, UserRecord};

use crate::error::DeliveryError;
use crate::producer::KinesisProducer;
use crate::shared::{RecordResult, Reply, Sink, Submitted};

/// The result of one tagged record.
#[derive(Debug)]
#[non_exhaustive]
pub struct Completion<T> {
    /// The tag it was put with.
    pub tag: T,
    /// Written (shard, sequence number, attempts), or why not.
    pub result: Result<RecordReceipt, DeliveryError>,
}

/// A record a tagged put could not take, with its tag: invalid ([`PutError`]'s validation variants), or
/// put after shutdown began ([`PutError::Closed`]). Nothing was sent; no other record is affected.
#[derive(Debug)]
#[non_exhaustive]
pub struct Refused<T> {
    /// The tag it was put with.
    pub tag: T,
    /// The record, to fix or send elsewhere.
    pub record: UserRecord,
    /// Why.
    pub error: PutError,
}

/// A producer handle whose records carry a tag of yours (`T`: an offset, a request id, a counter, or `()`)
/// and whose results go, tag and result together, to the [`Completions`] made with it by
/// [`KinesisProducer::with_completions`]. `Clone`: the clones feed the same completions.
///
/// Per record it costs a `Vec` slot and a queue slot for the tag: no channel, no task and no wake-up of its
/// own. Records are admitted under the producer's limits (`max_outstanding_records`,
/// `max_outstanding_bytes`, each stream's drain-time limit) as with [`KinesisProducer::put`], counted together with the producer's other
/// records. The handle keeps the producer open.
pub struct TaggedProducer<T: Send + 'static> {
    producer: KinesisProducer,
    queue: Arc<Queue<T>>,
}

/// The results of the records put through a [`TaggedProducer`] (and its clones), in batches: every
/// result gathered since the last read, in the order the records completed. Every record a tagged put
/// accepted gets exactly one [`Completion`]. Read it with [`next_batch`](Self::next_batch), as a
/// [`Stream`], or with [`for_each`](Self::for_each); the stream ends once every tagged producer was
/// dropped and every result was read.
///
/// Results wait here until read: a consumer that stops reading does not slow the producer, but holds the
/// results (memory). Dropping it drops the results to come.
pub struct Completions<T: Send + 'static> {
    queue: Arc<Queue<T>>,
}

struct Queue<T> {
    state: Mutex<QueueState<T>>,
    /// The [`Completions`] reader.
    reader: AtomicWaker,
}

struct QueueState<T> {
    /// Tags of records not completed, by key.
    tags: IdQueue<T>,
    next_key: u64,
    /// Results not read yet.
    ready: Vec<Completion<T>>,
    /// Live [`TaggedProducer`] handles.
    producers: usize,
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, QueueState<T>> {
        // Nothing panics while the lock is held; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> QueueState<T> {
    /// Keeps a tag until its record completes; returns its key.
    fn keep(&mut self, tag: T) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        // Keys only increase, so the queue takes every one.
        let kept = self.tags.insert(key, tag);
        debug_assert!(kept.is_ok());
        key
    }
}

impl<T: Send + 'static> Sink for Queue<T> {
    fn deliver(&self, results: &mut Vec<(u64, RecordResult)>) {
        let mut state = self.lock();
        for (key, result) in results.drain(..) {
            if let Some(tag) = state.tags.remove(key) {
                state.ready.push(Completion { tag, result });
            }
        }
        drop(state);
        self.reader.wake();
    }
}

impl KinesisProducer {
    /// A [`TaggedProducer`] and the [`Completions`] its records' results go to: for high rates, and for
    /// results handled in one place rather than awaited one [`RecordFuture`](crate::RecordFuture) at a time.
    ///
    /// ```
    /// # use kpl_tokio::{KinesisProducer, MockBackend, MockConfig, MockKinesis, ProducerConfig, StreamTarget, UserRecord};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut kinesis = MockKinesis::new(MockConfig::calm(), 42)?;
    /// # kinesis.create_stream("orders", 2)?;
    /// # let producer = KinesisProducer::builder(ProducerConfig::default(), MockBackend::new(kinesis)).spawn()?;
    /// let stream = StreamTarget::name("orders");
    /// let (tagged, completions) = producer.with_completions::<u64>();
    /// // The callback side: every result, with its tag, in batches.
    /// let results = tokio::spawn(completions.for_each(|done| {
    ///     if let Err(error) = &done.result {
    ///         eprintln!("order {} not written: {error}", done.tag);
    ///     }
    /// }));
    /// let batch = (0..1000).map(|i| (i, UserRecord::new(stream.clone(), format!("order-{i}"), "{}"))).collect();
    /// let refused = tagged.put_batch(batch).await;
    /// assert!(refused.is_empty());
    /// drop(tagged); // the completions end once every result is in
    /// results.await?;
    /// # Ok(()) }
    /// ```
    pub fn with_completions<T: Send + 'static>(&self) -> (TaggedProducer<T>, Completions<T>) {
        let state = QueueState { tags: IdQueue::new(), next_key: 0, ready: Vec::new(), producers: 1 };
        let queue = Arc::new(Queue { state: Mutex::new(state), reader: AtomicWaker::new() });
        (TaggedProducer { producer: self.clone(), queue: queue.clone() }, Completions { queue })
    }
}

impl<T: Send + 'static> TaggedProducer<T> {
    /// The producer it puts into.
    pub fn producer(&self) -> &KinesisProducer {
        &self.producer
    }

    /// Puts records, each with its tag, waiting while the producer's outstanding limits are reached (as
    /// [`KinesisProducer::put`] does, for as many records as do not fit). Returns once every record was
    /// accepted or refused, with the refused ones (the invalid ones, then those put after shutdown began,
    /// each in order); each accepted one's result comes through the [`Completions`]. Records are checked
    /// and their partition keys hashed here, on the caller's task, not on the producer's.
    ///
    /// Records are taken under one lock for as many as fit, so a batch costs the producer one hand-over.
    /// Cancel safety: dropping the future drops the records not yet accepted (those accepted still get their
    /// results).
    pub async fn put_batch(&self, records: Vec<(T, UserRecord)>) -> Vec<Refused<T>> {
        // As `put`: a task putting in a loop must yield now and then (tokio's cooperative budget).
        tokio::task::consume_budget().await;
        let shared = self.producer.shared();
        let sink: Arc<dyn Sink> = self.queue.clone();
        let mut refused = Vec::new();
        // Checked and hashed here, on the caller's thread, before any lock is taken.
        let mut prepared = Vec::with_capacity(records.len());
        for (tag, record) in records {
            match shared.config.prepare(record) {
                Ok(record) => prepared.push((tag, record)),
                Err((error, record)) => refused.push(Refused { tag, record, error }),
            }
        }
        let mut records = prepared.into_iter();
        let mut next = records.next();
        loop {
            // Registered before trying, so a release between the try and the wait is not missed.
            let mut released = pin!(shared.capacity.notified());
            released.as_mut().enable();
            let submitted = {
                // Tags are kept before the driver can see their records (lock order: queue, then producer).
                let mut state = self.queue.lock();
                shared.submit(
                    &mut next,
                    &mut records,
                    |tag| Reply::Sink { sink: sink.clone(), key: state.keep(tag) },
                    |tag, record, error| refused.push(Refused { tag, record: record.into_record(), error }),
                )
            };
            match submitted {
                Submitted::All => return refused,
                Submitted::Full(_) => released.await,
            }
        }
    }

    /// [`put_batch`](Self::put_batch) of one record.
    pub async fn put(&self, tag: T, record: UserRecord) -> Result<(), Refused<T>> {
        match self.put_batch(vec![(tag, record)]).await.pop() {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }
}

impl<T: Send + 'static> Clone for TaggedProducer<T> {
    fn clone(&self) -> Self {
        self.queue.lock().producers += 1;
        Self { producer: self.producer.clone(), queue: self.queue.clone() }
    }
}

impl<T: Send + 'static> Drop for TaggedProducer<T> {
    fn drop(&mut self) {
        self.queue.lock().producers -= 1;
        self.queue.reader.wake();
    }
}

impl<T: Send + 'static> std::fmt::Debug for TaggedProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaggedProducer").field("producer", &self.producer).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Completions<T> {
    /// The results gathered since the last read, waiting for at least one; `None` once every
    /// [`TaggedProducer`] was dropped and every result was read.
    pub async fn next_batch(&mut self) -> Option<Vec<Completion<T>>> {
        std::future::poll_fn(|cx| self.poll_batch(cx)).await
    }

    /// Calls `on_result` with every result until the completions end: the KPL's `Futures.addCallback`,
    /// for every record at once. Spawn it to run beside the puts.
    pub async fn for_each(mut self, mut on_result: impl FnMut(Completion<T>)) {
        while let Some(batch) = self.next_batch().await {
            batch.into_iter().for_each(&mut on_result);
        }
    }

    /// Records put and not completed yet.
    pub fn outstanding(&self) -> usize {
        self.queue.lock().tags.len()
    }

    fn poll_batch(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<Completion<T>>>> {
        self.queue.reader.register(cx.waker());
        let mut state = self.queue.lock();
        if !state.ready.is_empty() {
            return Poll::Ready(Some(std::mem::take(&mut state.ready)));
        }
        if state.producers == 0 && state.tags.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl<T: Send + 'static> Stream for Completions<T> {
    type Item = Vec<Completion<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_batch(cx)
    }
}

impl<T: Send + 'static> std::fmt::Debug for Completions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completions").field("outstanding", &self.outstanding()).finish_non_exhaustive()
    }
}
