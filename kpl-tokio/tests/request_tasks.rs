//! Every request is answered, however its task ends: the core's contract wants exactly one response per
//! request, and records whose request was never answered would wait forever (a flush and a shutdown with
//! them). A request task that panics, is cancelled, or loses its runtime is answered as an ambiguous
//! failure: its records are retried, flagged as possibly duplicated, and complete within their TTL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::{
    Backend, KinesisProducer, MockBackend, ProducerConfig, RecordFuture, RecordReceipt, Request, Response,
    Runtime, StreamTarget, TokioRuntime, UserRecord,
};
use tokio::sync::Notify;

const STREAM: &str = "orders";

/// How the first `PutRecords` call carrying the second burst misbehaves.
#[derive(Clone, Copy)]
enum Fault {
    /// It panics.
    Panic,
    /// It never returns (the test ends its task).
    Hang,
}

/// The mock Kinesis, with the first `PutRecords` that carries a record of burst 1 misbehaving (whatever the
/// timing, burst 0 is written first).
struct FaultyBackend {
    mock: MockBackend,
    fault: Fault,
    faulted: AtomicBool,
    /// Told when the misbehaving call has started.
    hanging: Arc<Notify>,
}

#[async_trait]
impl Backend for FaultyBackend {
    async fn send(&self, request: Request) -> Response {
        // Keys are `key-<burst>-<i>`; inside an aggregate they are in its data.
        let carries_burst_1 = matches!(&request, Request::PutRecords(put) if put.entries.iter().any(|entry| {
            entry.partition_key.starts_with("key-1-")
                || entry.data.windows(6).any(|window| window == b"key-1-")
        }));
        if carries_burst_1 && !self.faulted.swap(true, Ordering::SeqCst) {
            match self.fault {
                Fault::Panic => panic!("backend bug on the second call"),
                Fault::Hang => {
                    self.hanging.notify_one();
                    std::future::pending::<()>().await;
                }
            }
        }
        self.mock.send(request).await
    }
}

fn backend(fault: Fault) -> (Arc<FaultyBackend>, Arc<Notify>) {
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 7).unwrap();
    kinesis.create_stream(STREAM, 2).unwrap();
    let hanging = Arc::new(Notify::new());
    let backend = FaultyBackend {
        mock: MockBackend::new(kinesis),
        fault,
        faulted: AtomicBool::new(false),
        hanging: hanging.clone(),
    };
    (Arc::new(backend), hanging)
}

fn config() -> ProducerConfig {
    // One request at a time, so that the second call is one whole burst's request.
    ProducerConfig::builder().record_ttl(Duration::from_secs(3)).max_connections(1).build().unwrap()
}

/// Puts 1,000 records; with `flush`, waits until they completed (a flush waits for every record put before
/// it, so it hangs if a request is never answered).
async fn put_burst(producer: &KinesisProducer, burst: u32, flush: bool) -> Vec<RecordFuture> {
    let mut futures = Vec::new();
    for i in 0..1000 {
        let record = UserRecord::new(StreamTarget::name(STREAM), format!("key-{burst}-{i}"), vec![b'x'; 100]);
        futures.push(producer.put(record).await.unwrap());
    }
    if flush {
        tokio::time::timeout(Duration::from_secs(30), producer.flush()).await.expect("the flush completed");
    }
    futures
}

/// Awaits every record: all must be written; returns their receipts. A record never answered fails the
/// test after 30 s instead of hanging it.
async fn written(futures: Vec<RecordFuture>) -> Vec<RecordReceipt> {
    let mut receipts = Vec::new();
    for future in futures {
        let result = tokio::time::timeout(Duration::from_secs(30), future).await;
        receipts.push(result.expect("the record completed").expect("written"));
    }
    receipts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_task_panics_is_answered_and_its_records_retried() {
    // As reported: a custom backend whose second call panics, 3,000 records in three bursts, a 3 s TTL:
    // 500 records never completed and shutdown timed out with 500 abandoned.
    let (backend, _) = backend(Fault::Panic);
    let producer = KinesisProducer::builder(config(), backend).seed(1).spawn().unwrap();
    let mut futures = Vec::new();
    for burst in 0..3 {
        futures.extend(put_burst(&producer, burst, true).await);
    }
    // Written, so within their 3 s TTL (an expired record would fail `written`).
    let receipts = written(futures).await;
    assert_eq!(receipts.len(), 3000);
    assert!(receipts.iter().any(|r| r.maybe_duplicated), "the panicked request's records are flagged");
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A task as the driver hands it to its runtime.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Tokio's clock and timers, with the test deciding where each spawned task runs.
#[derive(Clone)]
struct Spawning(Arc<dyn Fn(Task) + Send + Sync>);

impl Runtime for Spawning {
    type Sleep = tokio::time::Sleep;
    fn now(&self) -> Instant {
        TokioRuntime.now()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        TokioRuntime.sleep_until(deadline)
    }
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        (self.0)(Box::pin(task));
    }
}

/// Puts a burst and waits for it, then puts a second burst whose first call hangs;
/// `end_task` then ends the hanging call's task, and every record must still be written.
async fn end_the_hanging_request(
    runtime: Spawning,
    hanging: Arc<Notify>,
    backend: Arc<FaultyBackend>,
    end_task: impl FnOnce(),
) {
    let producer = KinesisProducer::builder(config(), backend).seed(1).spawn_on(runtime);
    let mut receipts = written(put_burst(&producer, 0, false).await).await;
    let second = put_burst(&producer, 1, false).await;
    hanging.notified().await;
    end_task();
    receipts.extend(written(second).await);
    assert_eq!(receipts.len(), 2000);
    assert!(receipts.iter().any(|r| r.maybe_duplicated), "the ended request's records are flagged");
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_task_is_cancelled_is_answered_and_its_records_retried() {
    // Tokio, remembering the tasks it spawns so the test can cancel one.
    let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
    let recorded = tasks.clone();
    let runtime =
        Spawning(Arc::new(move |task| recorded.lock().unwrap().push(tokio::spawn(task).abort_handle())));
    let (backend, hanging) = backend(Fault::Hang);
    // The newest task is the hanging request's.
    end_the_hanging_request(runtime, hanging, backend, || tasks.lock().unwrap().last().unwrap().abort())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_runtime_shuts_down_is_answered_and_its_records_retried() {
    // The requests' runtime runs on a thread of its own until told to stop; dropping it drops its tasks.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (handle_sender, handle) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let requests = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        handle_sender.send(requests.handle().clone()).unwrap();
        requests.block_on(async {
            let _ = stopped.await;
        });
    });
    // Tokio for the driver (the first task); request tasks on that runtime until it is gone, then on tokio.
    let requests: tokio::runtime::Handle = handle.recv().unwrap();
    let spawned = AtomicUsize::new(0);
    let gone = Arc::new(AtomicBool::new(false));
    let requests_gone = gone.clone();
    let runtime = Spawning(Arc::new(move |task| {
        let driver = spawned.fetch_add(1, Ordering::SeqCst) == 0;
        if driver || requests_gone.load(Ordering::SeqCst) {
            TokioRuntime.spawn(task);
        } else {
            drop(requests.spawn(task));
        }
    }));
    let (backend, hanging) = backend(Fault::Hang);
    end_the_hanging_request(runtime, hanging, backend, move || {
        gone.store(true, Ordering::SeqCst);
        stop.send(()).unwrap();
        thread.join().unwrap();
    })
    .await;
}
