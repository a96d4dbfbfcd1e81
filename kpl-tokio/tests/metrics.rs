//! The producer's metrics through the adapter, on tokio's paused clock against the in-process mock: the
//! local query API, and the `metrics` facade exporter (read back with metrics-util's debugging recorder).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kpl_tokio::{
    MetricName, MetricsConfig, MetricsError, MetricsExporter, MetricsGranularity, MetricsLevel, MetricsQuery,
    MetricsQueryError, MetricsWindow,
};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use support::metrics_workload::{producer, put_records};

type Published = BTreeMap<(MetricKind, String, String), f64>;

/// What a recorder holds: (kind, name, labels as `k=v,k=v`) → value.
fn published(recorder: &DebuggingRecorder) -> Published {
    let mut values = BTreeMap::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let labels: Vec<String> = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        let value = match value {
            DebugValue::Counter(count) => count as f64,
            DebugValue::Gauge(gauge) => gauge.into_inner(),
            DebugValue::Histogram(_) => panic!("no histogram is published"),
        };
        values.insert((key.kind(), key.key().name().to_owned(), labels.join(",")), value);
    }
    values
}

fn get(values: &Published, kind: MetricKind, name: &str, labels: &str) -> f64 {
    *values
        .get(&(kind, name.to_owned(), labels.to_owned()))
        .unwrap_or_else(|| panic!("{name}{{{labels}}} in {values:#?}"))
}

/// A metric summed over its labels.
fn total(values: &Published, kind: MetricKind, name: &str) -> f64 {
    values.iter().filter(|((k, n, _), _)| *k == kind && n == name).map(|(_, value)| value).sum()
}

#[tokio::test(start_paused = true)]
async fn local_queries_sum_the_tree_over_windows() {
    let producer = producer();
    put_records(&producer).await;
    let put = producer
        .metrics_query(MetricsQuery::new(MetricsWindow::LastSeconds(60)).name(MetricName::UserRecordsPut))
        .await
        .unwrap();
    let global = put.iter().find(|m| m.stream.is_none()).unwrap();
    assert_eq!((global.stat.count, global.stat.sum), (10, 10.0));
    let shards: Vec<u64> = put.iter().filter(|m| m.shard_id.is_some()).map(|m| m.stat.count).collect();
    assert_eq!(shards, [6, 4]);
    // Two minutes later the last 60 seconds hold none of it; the cumulative view still does.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let window = MetricsQuery::new(MetricsWindow::LastSeconds(60)).name(MetricName::UserRecordsPut);
    assert!(producer.metrics_query(window).await.unwrap().is_empty());
    let cumulative = MetricsQuery::new(MetricsWindow::Cumulative)
        .name(MetricName::UserRecordsDataPut)
        .granularity(MetricsGranularity::Global);
    let bytes = producer.metrics_query(cumulative).await.unwrap();
    assert_eq!(bytes.len(), 1);
    assert_eq!(bytes[0].stat.sum, 160.0);
    assert_eq!(
        producer.metrics_query(MetricsQuery::new(MetricsWindow::LastSeconds(0))).await,
        Err(MetricsError::Query(MetricsQueryError::WindowOutOfRange(0)))
    );
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(producer.metrics_query(cumulative).await, Err(MetricsError::DriverStopped));
}

#[tokio::test(start_paused = true)]
async fn the_facade_gets_counters_and_gauges_with_stream_and_shard_labels() {
    let producer = producer();
    let mut exporter = MetricsExporter::new(&producer, MetricsConfig::default());
    put_records(&producer).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let recorder = DebuggingRecorder::new();
    let snapshot = exporter.snapshot().await.unwrap();
    metrics::with_local_recorder(&recorder, || snapshot.publish());
    let values = published(&recorder);
    let (stream, shard0, shard1) = (
        "stream=orders",
        "stream=orders,shard=shardId-000000000000",
        "stream=orders,shard=shardId-000000000001",
    );
    use MetricKind::{Counter, Gauge};
    assert_eq!(get(&values, Counter, "UserRecordsReceived", stream), 10.0);
    assert_eq!(get(&values, Counter, "UserRecordsPut", shard0), 6.0);
    assert_eq!(get(&values, Counter, "UserRecordsPut", shard1), 4.0);
    assert_eq!(get(&values, Counter, "UserRecordsDataPut", shard0), 60.0);
    assert_eq!(get(&values, Counter, "UserRecordsDataPut", shard1), 100.0);
    assert_eq!(get(&values, Counter, "AllErrors", shard0), 0.0);
    assert_eq!(get(&values, Counter, "RetriesPerRecord_count", shard0), 6.0);
    assert_eq!(get(&values, Counter, "RetriesPerRecord_sum", shard0), 0.0);
    assert_eq!(get(&values, Gauge, "RetriesPerRecord_max", shard0), 0.0);
    // Kinesis records sent before the shard map was known count at stream level, the others at their
    // shard: summed over labels, every user record is in one, and every Kinesis record was written.
    assert_eq!(total(&values, Counter, "UserRecordsPerKinesisRecord_sum"), 10.0);
    assert_eq!(
        total(&values, Counter, "UserRecordsPerKinesisRecord_count"),
        total(&values, Counter, "KinesisRecordsPut")
    );
    assert_eq!(
        get(&values, Counter, "RequestTime_count", stream),
        get(&values, Counter, "KinesisRecordsPerPutRecordsRequest_count", stream)
    );
    assert_eq!(
        get(&values, Gauge, "UserRecordsPending", stream),
        0.0,
        "nothing outstanding since the last read's start"
    );
    // No node sums another: nothing without a stream label at shard granularity.
    assert!(values.keys().all(|(_, _, labels)| labels.starts_with("stream=orders")), "{values:#?}");

    // Summary level, global granularity: summary metrics only, no label.
    let mut summary = MetricsExporter::new(
        &producer,
        MetricsConfig::default().level(MetricsLevel::Summary).granularity(MetricsGranularity::Global),
    );
    let recorder = DebuggingRecorder::new();
    let snapshot = summary.snapshot().await.unwrap();
    metrics::with_local_recorder(&recorder, || snapshot.publish());
    let values = published(&recorder);
    assert_eq!(get(&values, Counter, "UserRecordsPut", ""), 10.0);
    assert!(!values.keys().any(|(_, name, _)| name == "UserRecordsReceived"), "detailed only");
    assert!(values.keys().all(|(_, _, labels)| labels.is_empty()));
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_spawned_exporter_publishes_periodically_to_the_global_recorder() {
    // The only test of this binary that touches the global recorder.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let producer = producer();
    let exporter = MetricsExporter::new(&producer, MetricsConfig::default())
        .interval(Duration::from_secs(1))
        .spawn()
        .unwrap();
    put_records(&producer).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let put: f64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "UserRecordsPut")
        .map(|(.., value)| match value {
            DebugValue::Counter(count) => count as f64,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(put, 10.0);
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
    exporter.stop();
}
