//! The producer on tokio's paused clock against the in-process mock Kinesis: results, backpressure,
//! flushes, timeouts, shutdown and drop semantics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use kpl_deagg::Mode;
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::{
    Backend, DeliveryError, KinesisProducer, MetricName, MetricsGranularity, MetricsQuery, MetricsWindow,
    MockBackend, ProducerConfig, PutError, RecordError, Request, Response, ShardMapWait, ShutdownError,
    StreamTarget, UserRecord,
};

const STREAM: &str = "orders";

fn stream() -> StreamTarget {
    StreamTarget::name(STREAM)
}

fn mock(shards: u32) -> Arc<MockBackend> {
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 7).unwrap();
    kinesis.create_stream(STREAM, shards).unwrap();
    Arc::new(MockBackend::new(kinesis))
}

fn producer(config: ProducerConfig, backend: impl Backend) -> KinesisProducer {
    KinesisProducer::builder(config, backend).seed(1).spawn().unwrap()
}

/// The output of a future that is already complete. Outside tokio's cooperative budget, which would make a
/// complete oneshot look pending after many polls in one task.
fn ready<F: std::future::Future>(future: F) -> Option<F::Output> {
    tokio::task::unconstrained(future).now_or_never()
}

/// Every user record the mock committed, deaggregated as a KCL consumer would, per (partition key, data).
fn committed(backend: &MockBackend) -> BTreeMap<(String, Vec<u8>), usize> {
    backend.with_kinesis(|kinesis, _| {
        let mut seen = BTreeMap::new();
        for (_, shard) in kinesis.all_shards() {
            let batch = shard.deaggregate(Mode::Strict);
            assert!(batch.rejected.is_empty(), "rejected aggregates: {:?}", batch.rejected);
            for record in batch.records {
                *seen.entry((record.partition_key.to_string(), record.data.to_vec())).or_default() += 1;
            }
        }
        seen
    })
}

#[tokio::test(start_paused = true)]
async fn every_record_is_written_once_with_its_shard() {
    let backend = mock(4);
    let producer = producer(ProducerConfig::default(), backend.clone());
    let mut futures = Vec::new();
    for i in 0..2000 {
        futures.push(
            producer.put_data(&stream(), format!("key-{}", i % 97), format!("record {i}")).await.unwrap(),
        );
    }
    let mut shards = BTreeMap::new();
    for future in futures {
        let receipt = future.await.unwrap();
        assert_eq!(receipt.attempts.len(), 1);
        assert!(receipt.attempts[0].error.is_none());
        assert!(!receipt.maybe_duplicated);
        *shards.entry(receipt.shard_id.to_string()).or_insert(0) += 1;
    }
    assert_eq!(shards.len(), 4, "records spread over every shard: {shards:?}");
    let written = committed(&backend);
    assert_eq!(written.len(), 2000);
    assert!(written.values().all(|&count| count == 1));
    assert_eq!(producer.outstanding_records(), 0);
    producer.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn try_put_refuses_at_once_and_put_waits_for_capacity() {
    let backend = mock(1);
    let config = ProducerConfig::builder().max_outstanding_records(10).build().unwrap();
    let producer = producer(config, backend.clone());
    let record = |i: usize| UserRecord::new(stream(), format!("k{i}"), vec![0u8; 10]);
    let mut futures: Vec<_> = (0..10).map(|i| producer.try_put(record(i)).unwrap()).collect();
    assert_eq!(producer.outstanding_records(), 10);
    let refused = producer.try_put(record(10)).unwrap_err();
    assert!(matches!(refused, PutError::Backpressure { outstanding_records: 10, .. }), "{refused:?}");
    // `put` waits until records complete, then goes through.
    let start = tokio::time::Instant::now();
    futures.push(producer.put(record(11)).await.unwrap());
    assert!(start.elapsed() > Duration::ZERO, "put waited for capacity");
    for future in futures {
        future.await.unwrap();
    }
    assert_eq!(committed(&backend).len(), 11);
}

#[tokio::test(start_paused = true)]
async fn invalid_records_are_refused_at_once_without_affecting_others() {
    let backend = mock(2);
    let producer = producer(ProducerConfig::default(), backend.clone());
    let good = producer.put_data(&stream(), "a", &b"fine"[..]).await.unwrap();
    let oversized = producer.put_data(&stream(), "b", vec![0u8; 1024 * 1024]).await.unwrap_err();
    assert!(
        matches!(oversized, PutError::RecordTooLarge { size: 1_048_577, max: 1_048_576 }),
        "{oversized:?}"
    );
    let empty_key = producer.put_data(&stream(), "", &b"x"[..]).await.unwrap_err();
    assert_eq!(empty_key, PutError::EmptyPartitionKey);
    let bad_hash = producer.put(UserRecord::new(stream(), "c", &b"x"[..]).with_explicit_hash_key("-1")).await;
    assert!(matches!(bad_hash, Err(PutError::InvalidExplicitHashKey(_))));
    let also_good = producer.put_data(&stream(), "d", &b"fine too"[..]).await.unwrap();
    good.await.unwrap();
    also_good.await.unwrap();
    assert_eq!(committed(&backend).len(), 2);
    assert_eq!(producer.outstanding_records(), 0);
}

#[tokio::test(start_paused = true)]
async fn flush_resolves_when_earlier_records_completed_and_sends_at_once() {
    let backend = mock(2);
    // Records would wait up to a minute to be batched without the flush.
    let config = ProducerConfig::builder()
        .record_max_buffered_time(Duration::from_secs(60))
        .record_ttl(Duration::from_secs(120))
        .build()
        .unwrap();
    let producer = producer(config, backend.clone());
    let other = StreamTarget::name("payments");
    backend.with_kinesis(|kinesis, _| kinesis.create_stream("payments", 1)).unwrap();
    let mut orders = Vec::new();
    for i in 0..100 {
        orders.push(producer.put_data(&stream(), format!("k{i}"), vec![1u8; 50]).await.unwrap());
    }
    let payment = producer.put_data(&other, "p", &b"payment"[..]).await.unwrap();
    let start = tokio::time::Instant::now();
    producer.flush_stream(&stream()).await;
    assert!(start.elapsed() < Duration::from_secs(1), "flushed at once, not after the buffering time");
    for order in orders {
        assert!(ready(order).expect("completed before the flush returned").is_ok());
    }
    let mut payment = payment;
    assert!(ready(&mut payment).is_none(), "the other stream was not flushed");
    assert_eq!(producer.outstanding_records(), 1);
    assert!(producer.oldest_record_age().await.is_some());
    producer.flush().await;
    assert!(ready(payment).expect("flushed").is_ok());
    assert_eq!(producer.oldest_record_age().await, None);
    let stats = producer.stats().await.unwrap();
    assert_eq!(stats.user_records_put, 101);
}

#[tokio::test(start_paused = true)]
async fn flush_with_nothing_outstanding_returns_at_once() {
    let producer = producer(ProducerConfig::default(), mock(1));
    producer.flush().await;
    producer.flush_stream(&stream()).await;
}

/// Wraps the mock; the first `hang` PutRecords calls never answer.
struct Hanging {
    inner: Arc<MockBackend>,
    hang: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl Backend for Hanging {
    async fn send(&self, request: Request) -> Response {
        if matches!(request, Request::PutRecords(_)) && self.calls.fetch_add(1, Ordering::SeqCst) < self.hang
        {
            futures::future::pending::<()>().await;
        }
        self.inner.send(request).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_without_response_times_out_and_is_retried_as_ambiguous() {
    let inner = mock(1);
    let backend = Hanging { inner: inner.clone(), hang: 1, calls: AtomicUsize::new(0) };
    let config = ProducerConfig::builder().request_timeout(Duration::from_millis(500)).build().unwrap();
    let producer = producer(config, backend);
    let start = tokio::time::Instant::now();
    let receipt = producer.put_data(&stream(), "k", &b"late"[..]).await.unwrap().await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert_eq!(receipt.attempts.len(), 2);
    let first = receipt.attempts[0].error.as_ref().expect("the first attempt failed");
    assert_eq!(first.code, "Timeout");
    assert!(first.message.contains("request_timeout"), "{}", first.message);
    assert!(receipt.maybe_duplicated, "a timeout is ambiguous");
    assert_eq!(committed(&inner).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_completes_outstanding_records_then_refuses_puts() {
    let backend = mock(2);
    let producer = producer(ProducerConfig::default(), backend.clone());
    let clone = producer.clone();
    let mut futures = Vec::new();
    for i in 0..500 {
        futures.push(producer.put_data(&stream(), format!("k{i}"), vec![2u8; 100]).await.unwrap());
    }
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    for future in futures {
        assert!(ready(future).expect("completed by shutdown").is_ok());
    }
    assert_eq!(clone.put_data(&stream(), "late", &b"x"[..]).await.unwrap_err(), PutError::Closed);
    assert_eq!(clone.try_put(UserRecord::new(stream(), "late", &b"x"[..])).unwrap_err(), PutError::Closed);
    assert_eq!(clone.shutdown(Duration::from_secs(1)).await, Ok(()));
    clone.flush().await;
    assert_eq!(clone.stats().await, None, "the driver stopped");
    assert_eq!(committed(&backend).len(), 500);
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeout_fails_what_is_left_with_a_clear_error() {
    let backend = Hanging { inner: mock(1), hang: usize::MAX, calls: AtomicUsize::new(0) };
    let producer = producer(ProducerConfig::default(), backend);
    let mut futures = Vec::new();
    for i in 0..20 {
        futures.push(producer.put_data(&stream(), format!("k{i}"), &b"stuck"[..]).await.unwrap());
    }
    let start = tokio::time::Instant::now();
    let result = producer.shutdown(Duration::from_secs(2)).await;
    assert_eq!(result, Err(ShutdownError::TimedOut { abandoned: 20 }));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    for future in futures {
        assert_eq!(future.await.unwrap_err(), DeliveryError::ShutdownTimedOut);
    }
    assert_eq!(producer.try_put(UserRecord::new(stream(), "k", &b"x"[..])).unwrap_err(), PutError::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_drains_every_record() {
    let backend = mock(2);
    let producer = producer(ProducerConfig::default(), backend.clone());
    let clone = producer.clone();
    let mut futures = Vec::new();
    for i in 0..300 {
        futures.push(producer.put_data(&stream(), format!("k{i}"), vec![3u8; 100]).await.unwrap());
    }
    drop(producer);
    // Another handle is alive: still open.
    futures.push(clone.put_data(&stream(), "more", &b"x"[..]).await.unwrap());
    drop(clone);
    for future in futures {
        future.await.unwrap();
    }
    assert_eq!(committed(&backend).len(), 301);
}

#[tokio::test(start_paused = true)]
async fn records_expire_after_their_ttl_when_kinesis_never_answers() {
    let backend = Hanging { inner: mock(1), hang: usize::MAX, calls: AtomicUsize::new(0) };
    let config = ProducerConfig::builder()
        .record_ttl(Duration::from_secs(3))
        .request_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let producer = producer(config, backend);
    let future = producer.put_data(&stream(), "k", &b"doomed"[..]).await.unwrap();
    drop(producer);
    let failure = match future.await.unwrap_err() {
        DeliveryError::Failed(failure) => failure,
        other => panic!("expected an expiry, got {other:?}"),
    };
    assert!(matches!(failure.error, RecordError::Expired { .. }), "{failure:?}");
    assert!(failure.attempts.len() >= 2, "retried before expiring: {:?}", failure.attempts);
    assert!(failure.attempts.iter().all(|a| a.error.as_ref().is_some_and(|e| e.code == "Timeout")));
}

#[tokio::test(start_paused = true)]
async fn faults_are_retried_and_visible_in_the_attempts() {
    let mut config = MockConfig::hostile();
    config.faults.put_records.throttle = 0.3;
    config.faults.entry_internal_failure = 0.1;
    let mut kinesis = MockKinesis::new(config, 99).unwrap();
    kinesis.create_stream(STREAM, 4).unwrap();
    let backend = Arc::new(MockBackend::new(kinesis));
    // Sent unaggregated until the map arrives, the 3,000 records make many entries for the faults to hit.
    let config = ProducerConfig::builder().shard_map_wait(ShardMapWait::SendUnaggregated).build().unwrap();
    let producer = producer(config, backend.clone());
    let mut futures = Vec::new();
    for i in 0..3000 {
        futures.push(producer.put_data(&stream(), format!("key-{i}"), format!("data {i}")).await.unwrap());
    }
    let mut retried = 0;
    for future in futures {
        let receipt = future.await.unwrap();
        if receipt.attempts.len() > 1 {
            retried += 1;
            assert!(receipt.attempts[..receipt.attempts.len() - 1].iter().all(|a| a.error.is_some()));
        }
    }
    assert!(retried > 100, "faults were injected and retried: {retried}");
    let written = committed(&backend);
    assert_eq!(written.len(), 3000, "nothing lost");
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    let backend = MockBackend::new(MockKinesis::new(MockConfig::calm(), 1).unwrap());
    let error = KinesisProducer::builder(ProducerConfig::default(), backend).spawn().unwrap_err();
    assert_eq!(error, kpl_tokio::SpawnError::NoTokioRuntime);
}

#[test]
fn records_of_a_runtime_shut_down_fail_with_driver_stopped() {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let (producer, future) = runtime.block_on(async {
        let backend = Hanging { inner: mock(1), hang: usize::MAX, calls: AtomicUsize::new(0) };
        let producer = producer(ProducerConfig::default(), backend);
        let future = producer.put_data(&stream(), "k", &b"x"[..]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        (producer, future)
    });
    drop(runtime);
    assert_eq!(futures::executor::block_on(future).unwrap_err(), DeliveryError::DriverStopped);
    assert_eq!(producer.try_put(UserRecord::new(stream(), "k", &b"x"[..])).unwrap_err(), PutError::Closed);
    futures::executor::block_on(producer.flush());
    assert_eq!(
        futures::executor::block_on(producer.shutdown(Duration::from_secs(1))),
        Ok(()),
        "already stopped"
    );
}

#[test]
fn the_blocking_wrapper_works_from_plain_threads() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut config = MockConfig::calm();
    config.latency = Duration::from_millis(1);
    config.jitter = Duration::from_millis(1);
    let mut kinesis = MockKinesis::new(config, 3).unwrap();
    kinesis.create_stream(STREAM, 2).unwrap();
    let backend = Arc::new(MockBackend::new(kinesis));
    let producer = runtime
        .block_on(async { KinesisProducer::builder(ProducerConfig::default(), backend.clone()).spawn() })
        .unwrap()
        .blocking();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let producer = producer.clone();
            std::thread::spawn(move || {
                let records: Vec<_> = (0..200)
                    .map(|i| producer.put_data(&stream(), format!("t{t}-{i}"), &b"blocking"[..]).unwrap())
                    .collect();
                producer.flush();
                records
                    .into_iter()
                    .map(|record| record.wait().unwrap())
                    .filter(|receipt| receipt.attempts.len() == 1)
                    .count()
            })
        })
        .collect();
    let written: usize = threads.into_iter().map(|thread| thread.join().unwrap()).sum();
    assert_eq!(written, 400);
    assert_eq!(producer.outstanding_records(), 0);
    // The async handle's getters, from a plain thread.
    assert_eq!(producer.oldest_record_age(), None);
    assert_eq!(producer.stats().unwrap().user_records_put, 400);
    assert_eq!(producer.config().record_ttl(), ProducerConfig::default().record_ttl());
    let put = MetricsQuery::new(MetricsWindow::Cumulative)
        .name(MetricName::UserRecordsPut)
        .granularity(MetricsGranularity::Global);
    let metrics = producer.metrics_query(put).unwrap();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    assert_eq!(metrics[0].stat.sum, 400.0, "{metrics:?}");
    assert!(producer.metrics().is_some_and(|samples| !samples.is_empty()));
    producer.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(producer.stats(), None, "the driver stopped");
    assert_eq!(committed(&backend).len(), 400);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_task_putting_in_a_loop_lets_the_driver_run() {
    let backend = mock(2);
    let producer = producer(ProducerConfig::default(), backend.clone());
    let mut results = Vec::new();
    for i in 0..20_000 {
        results.push(producer.put_data(&stream(), format!("key-{i}"), &b"data"[..]).await.unwrap());
    }
    // The loop never awaited anything but `put`, yet on this single thread the driver ran meanwhile: it has
    // listed the shards already.
    let listed = backend.with_kinesis(|kinesis, _| kinesis.stats().list_shards_requests);
    assert!(listed >= 1, "the driver never ran during the put loop");
    producer.flush().await;
    assert!(results.into_iter().all(|result| ready(result).is_some_and(|r| r.is_ok())));
}

/// Reads completions until they end; asserts that every tag comes exactly once.
async fn every_completion<T: Ord + std::fmt::Debug + Send + 'static>(
    mut completions: kpl_tokio::Completions<T>,
) -> BTreeMap<T, Result<kpl_tokio::RecordReceipt, DeliveryError>> {
    let mut results = BTreeMap::new();
    let mut batches = 0;
    while let Some(batch) = completions.next_batch().await {
        assert!(!batch.is_empty(), "a batch has at least one result");
        batches += 1;
        for done in batch {
            let tag = format!("{:?}", done.tag);
            assert!(results.insert(done.tag, done.result).is_none(), "tag {tag} completed twice");
        }
    }
    assert!(batches <= results.len().max(1));
    results
}

#[tokio::test(start_paused = true)]
async fn tagged_batches_get_exactly_one_completion_per_record_under_faults() {
    let mut mock_config = MockConfig::hostile();
    mock_config.faults.put_records.throttle = 0.3;
    mock_config.faults.entry_internal_failure = 0.1;
    let mut kinesis = MockKinesis::new(mock_config, 11).unwrap();
    kinesis.create_stream(STREAM, 4).unwrap();
    let backend = Arc::new(MockBackend::new(kinesis));
    // Unaggregated, the 2,000 records make many entries for the faults to hit.
    let config = ProducerConfig::builder()
        .aggregation(kpl_tokio::AggregationPolicy::Off)
        .record_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    let producer = producer(config, backend.clone());
    let (tagged, completions) = producer.with_completions::<u32>();
    let reader = tokio::spawn(every_completion(completions));
    // Two handles feeding the same completions, in batches of 100.
    let putters: Vec<_> = (0..2u32)
        .map(|half| {
            let tagged = tagged.clone();
            tokio::spawn(async move {
                for batch in 0..10u32 {
                    let records = (0..100u32)
                        .map(|i| {
                            let tag = half * 1000 + batch * 100 + i;
                            (tag, UserRecord::new(stream(), format!("key-{tag}"), format!("record {tag}")))
                        })
                        .collect();
                    assert!(tagged.put_batch(records).await.is_empty());
                }
            })
        })
        .collect();
    drop(tagged);
    for putter in putters {
        putter.await.unwrap();
    }
    let results = reader.await.unwrap();
    assert_eq!(results.len(), 2000);
    let expected: Vec<u32> = (0..2).flat_map(|half| (0..1000).map(move |i| half * 1000 + i)).collect();
    assert_eq!(results.keys().copied().collect::<Vec<_>>(), expected);
    assert!(results.values().all(Result::is_ok), "nothing fails within an hour's TTL");
    let retried = results.values().filter(|r| r.as_ref().is_ok_and(|receipt| receipt.attempts.len() > 1));
    assert!(retried.count() > 100, "faults were injected and retried");
    // Each written at least once (a timeout may have written one twice).
    let written = committed(&backend);
    assert_eq!(written.len(), 2000);
    assert_eq!(producer.outstanding_records(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_batch_put_waits_for_capacity_and_every_record_completes() {
    let backend = Hanging { inner: mock(2), hang: 1, calls: AtomicUsize::new(0) };
    let config = ProducerConfig::builder()
        .max_outstanding_records(100)
        .request_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let producer = producer(config, backend);
    let (tagged, completions) = producer.with_completions::<usize>();
    let records: Vec<_> =
        (0..1000).map(|i| (i, UserRecord::new(stream(), format!("key-{i}"), vec![1u8; 50]))).collect();
    let put = tokio::spawn(async move { tagged.put_batch(records).await });
    // The first request hangs until its timeout: the batch stops at the limit and waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(producer.outstanding_records(), 100);
    assert!(!put.is_finished(), "the batch waits for capacity");
    assert!(put.await.unwrap().is_empty());
    let results = every_completion(completions).await;
    assert_eq!(results.keys().copied().collect::<Vec<_>>(), (0..1000).collect::<Vec<_>>());
    assert!(results.values().all(Result::is_ok));
    assert_eq!(producer.outstanding_records(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_batch_refuses_invalid_records_with_their_tags_and_takes_the_others() {
    let backend = mock(1);
    let producer = producer(ProducerConfig::default(), backend.clone());
    let (tagged, completions) = producer.with_completions::<&str>();
    let refused = tagged
        .put_batch(vec![
            ("good", UserRecord::new(stream(), "a", &b"x"[..])),
            ("empty key", UserRecord::new(stream(), "", &b"x"[..])),
            ("too large", UserRecord::new(stream(), "b", vec![0u8; 1024 * 1024])),
            ("also good", UserRecord::new(stream(), "c", &b"y"[..])),
        ])
        .await;
    let refused: Vec<_> = refused.into_iter().map(|refused| (refused.tag, refused.error)).collect();
    assert_eq!(refused[0], ("empty key", PutError::EmptyPartitionKey));
    assert_eq!(refused[1].0, "too large");
    assert!(matches!(refused[1].1, PutError::RecordTooLarge { .. }));
    assert_eq!(refused.len(), 2);
    // A flush returns once the results of the records before it were delivered.
    producer.flush().await;
    let mut completions = completions;
    let batch = ready(completions.next_batch()).expect("delivered before the flush returned").unwrap();
    let mut tags: Vec<_> = batch.iter().map(|done| done.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, ["also good", "good"]);
    producer.shutdown(Duration::from_secs(1)).await.unwrap();
    let late = tagged.put("late", UserRecord::new(stream(), "d", &b"z"[..])).await.unwrap_err();
    assert_eq!((late.tag, late.error), ("late", PutError::Closed));
    drop(tagged);
    assert!(completions.next_batch().await.is_none(), "the completions end with the last tagged producer");
    assert_eq!(committed(&backend).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn tagged_records_of_a_timed_out_shutdown_complete_with_its_error() {
    let backend = Hanging { inner: mock(1), hang: usize::MAX, calls: AtomicUsize::new(0) };
    let producer = producer(ProducerConfig::default(), backend);
    let (tagged, completions) = producer.with_completions::<u8>();
    let records = (0..20).map(|i| (i, UserRecord::new(stream(), format!("k{i}"), &b"stuck"[..]))).collect();
    assert!(tagged.put_batch(records).await.is_empty());
    drop(tagged);
    let result = producer.shutdown(Duration::from_secs(2)).await;
    assert_eq!(result, Err(ShutdownError::TimedOut { abandoned: 20 }));
    let results = every_completion(completions).await;
    assert_eq!(results.len(), 20);
    assert!(results.values().all(|result| result.as_ref().unwrap_err() == &DeliveryError::ShutdownTimedOut));
}

#[tokio::test(start_paused = true)]
async fn put_waits_under_sustained_overload_and_no_record_expires() {
    // One shard (1 MiB/s) offered 8 MiB at once, with a 6 s TTL: more than drains within the TTL. Each put
    // waits for room instead of queueing a record that would expire.
    let backend = mock(1);
    let ttl = Duration::from_secs(6);
    let config = ProducerConfig::builder().record_ttl(ttl).build().unwrap();
    let window = config.drain_window().unwrap();
    let producer = producer(config, backend.clone());
    let mut futures = Vec::new();
    let mut most_outstanding = 0;
    for i in 0..8000 {
        let future = producer.put_data(&stream(), format!("key-{i:05}"), vec![1u8; 1000]).await.unwrap();
        futures.push(future);
        most_outstanding = most_outstanding.max(producer.outstanding_records());
    }
    // The stream held at most about its drain window of data (2 s at one shard's quota, or what it was
    // measured to take), far from the 8,000 records offered.
    let window_records = (window.as_millis() as usize) * 1024 * 1024 / 1000 / 1010;
    assert!(most_outstanding <= 2 * window_records, "{most_outstanding} records outstanding");
    for future in futures {
        let receipt = future.await.expect("no record fails: none expires");
        assert!(!receipt.maybe_duplicated);
    }
    assert_eq!(committed(&backend).len(), 8000);
    producer.shutdown(Duration::from_secs(1)).await.unwrap();
}
