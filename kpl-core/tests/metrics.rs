//! The KPL's metrics for scripted scenarios against the in-test responder, on virtual time: exact sums and
//! counts per metric, per node of the dimension tree, and per window, including windows expiring.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, Reply, epoch, stream};
use kpl_core::MetricName::{self, *};
use kpl_core::{
    Metric, MetricsGranularity, MetricsQuery, MetricsQueryError, MetricsRollup, MetricsWindow,
    ProducerConfig, Request, StreamTarget, UserRecord,
};

const THROTTLED: &str = "ProvisionedThroughputExceededException";
/// Explicit hash keys of the first and last of two shards.
const SHARD_0: &str = "0";
const SHARD_1: &str = "340282366920938463463374607431768211455";

fn other() -> StreamTarget {
    StreamTarget::name("other-stream")
}

fn put(h: &mut Harness, stream: StreamTarget, hash_key: &str, data: &[u8]) {
    let record = UserRecord::new(stream, "key", data.to_vec()).with_explicit_hash_key(hash_key);
    let id = h.producer.put_record(h.now, record.clone()).unwrap();
    h.put.insert(id, record);
}

fn query(h: &Harness, at: Duration, query: MetricsQuery) -> Vec<Metric> {
    h.producer.metrics_query(epoch() + at, &query).unwrap()
}

/// (count, sum) of the one node of `name` with these dimensions among `metrics`.
fn node(
    metrics: &[Metric],
    name: MetricName,
    code: Option<&str>,
    stream: Option<&StreamTarget>,
    shard: Option<&str>,
) -> (u64, f64) {
    let found: Vec<_> = metrics
        .iter()
        .filter(|m| {
            m.name == name
                && m.error_code.as_deref() == code
                && m.stream.as_ref() == stream
                && m.shard_id.as_ref().map(|id| id.as_str()) == shard
        })
        .collect();
    assert_eq!(found.len(), 1, "{name:?} {code:?} {stream:?} {shard:?}: {found:?}");
    (found[0].stat.count, found[0].stat.sum)
}

fn global(metrics: &[Metric], name: MetricName) -> (u64, f64) {
    node(metrics, name, None, None, None)
}

#[test]
fn every_metric_sums_exactly_up_the_tree_and_over_windows() {
    let mut h = Harness::new(ProducerConfig::builder().build().unwrap(), 2);
    h.start();
    h.producer.add_stream(h.now, other()).unwrap();
    h.run(Duration::ZERO, |_| Reply::Success);
    let (test, other) = (stream(), other());
    // Second 0: 3 + 1 records to the test stream's two shards, 1 to the other stream's shard 0.
    for _ in 0..3 {
        put(&mut h, test.clone(), SHARD_0, &[1; 10]);
    }
    put(&mut h, test.clone(), SHARD_1, &[2; 20]);
    put(&mut h, other.clone(), SHARD_0, &[3; 5]);
    h.producer.flush(h.now, None);
    // The test stream's first request: its shard-0 aggregate is throttled, the shard-1 one written.
    let mut first = true;
    h.run(Duration::from_secs(5), |request| match request {
        Request::PutRecords(put) if put.stream == stream() && std::mem::take(&mut first) => {
            assert_eq!(put.entries.len(), 2);
            Reply::Entries(vec![Some(THROTTLED), None])
        }
        _ => Reply::Success,
    });
    assert_eq!(h.succeeded(), 5);
    assert!(h.now < epoch() + Duration::from_secs(1), "the retry went out within second 0");
    // Bytes of every Kinesis record written: all entries but the throttled one.
    let puts: Vec<_> = h
        .requests
        .iter()
        .filter_map(|r| if let Request::PutRecords(p) = r { Some(p) } else { None })
        .collect();
    assert_eq!(puts.len(), 3);
    let written_bytes: usize =
        puts.iter().flat_map(|p| &p.entries).skip(1).map(|e| e.partition_key.len() + e.data.len()).sum();

    let all = query(&h, Duration::from_millis(900), MetricsQuery::new(MetricsWindow::Cumulative));
    let shard0 = Some("shardId-000000000000");
    let shard1 = Some("shardId-000000000001");
    let (t, o) = (Some(&test), Some(&other));
    assert_eq!(global(&all, UserRecordsReceived), (5, 5.0));
    assert_eq!(node(&all, UserRecordsReceived, None, t, None), (4, 4.0));
    assert_eq!(node(&all, UserRecordsReceived, None, o, None), (1, 1.0));
    assert_eq!(global(&all, UserRecordsPut), (5, 5.0));
    assert_eq!(node(&all, UserRecordsPut, None, t, shard0), (3, 3.0));
    assert_eq!(node(&all, UserRecordsPut, None, t, shard1), (1, 1.0));
    assert_eq!(node(&all, UserRecordsPut, None, t, None), (4, 4.0));
    assert_eq!(node(&all, UserRecordsPut, None, o, shard0), (1, 1.0));
    assert_eq!(global(&all, UserRecordsDataPut), (5, 55.0));
    assert_eq!(node(&all, UserRecordsDataPut, None, t, shard0), (3, 30.0));
    // Each Kinesis record answered: 1 written, 0 failed.
    assert_eq!(global(&all, KinesisRecordsPut), (4, 3.0));
    assert_eq!(node(&all, KinesisRecordsPut, None, t, shard0), (2, 1.0));
    assert_eq!(global(&all, KinesisRecordsDataPut), (3, written_bytes as f64));
    assert_eq!(global(&all, AllErrors), (4, 1.0));
    assert_eq!(node(&all, AllErrors, None, t, shard0), (2, 1.0));
    assert_eq!(node(&all, AllErrors, None, o, None), (1, 0.0));
    // The error code sits above the stream: [ErrorsByCode], [+ErrorCode], [+StreamName], [+ShardId].
    let code = Some(THROTTLED);
    assert_eq!(global(&all, ErrorsByCode), (1, 1.0));
    assert_eq!(node(&all, ErrorsByCode, code, None, None), (1, 1.0));
    assert_eq!(node(&all, ErrorsByCode, code, t, None), (1, 1.0));
    assert_eq!(node(&all, ErrorsByCode, code, t, shard0), (1, 1.0));
    assert_eq!(all.iter().filter(|m| m.name == ErrorsByCode).count(), 4);
    assert_eq!(global(&all, RetriesPerRecord), (5, 3.0));
    assert_eq!(node(&all, RetriesPerRecord, None, t, shard0), (3, 3.0));
    assert!(!all.iter().any(|m| m.name == UserRecordExpired));
    // Per attempt of each user record: 3 + 3 on shard 0 (first try and retry), 1 + 1 elsewhere.
    assert_eq!(global(&all, BufferingTime).0, 8);
    assert_eq!(node(&all, BufferingTime, None, t, shard0).0, 6);
    // Answered at once, on virtual time.
    assert_eq!(global(&all, RequestTime), (3, 0.0));
    assert_eq!(node(&all, RequestTime, None, t, None), (2, 0.0));
    assert_eq!(global(&all, UserRecordsPerKinesisRecord), (4, 8.0));
    let per_record =
        all.iter().find(|m| m.name == UserRecordsPerKinesisRecord && m.stream.is_none()).unwrap();
    assert_eq!((per_record.stat.min, per_record.stat.max), (1.0, 3.0));
    assert_eq!(global(&all, KinesisRecordsPerPutRecordsRequest), (3, 4.0));
    assert_eq!(node(&all, KinesisRecordsPerPutRecordsRequest, None, t, None), (2, 3.0));
    assert_eq!(global(&all, UserRecordsPerPutRecordsRequest), (3, 8.0));
    // 2 streams, 3 stream-shards: 1 + 2 + 3 nodes at shard granularity.
    assert_eq!(all.iter().filter(|m| m.name == UserRecordsPut).count(), 6);
    let coarse = MetricsQuery::new(MetricsWindow::Cumulative).name(UserRecordsPut);
    let streams = query(&h, Duration::ZERO, coarse.granularity(MetricsGranularity::Stream));
    assert_eq!(streams.len(), 3);
    let only_global = query(&h, Duration::ZERO, coarse.granularity(MetricsGranularity::Global));
    assert_eq!((only_global.len(), global(&only_global, UserRecordsPut)), (1, (5, 5.0)));
    // Leaves: each observation once; they add up to the global node.
    let leaves = query(&h, Duration::ZERO, coarse.rollup(MetricsRollup::Leaves));
    assert_eq!(leaves.len(), 3);
    assert_eq!(leaves.iter().map(|m| m.stat.count).sum::<u64>(), 5);

    // Second 30: one more record.
    h.now = epoch() + Duration::from_secs(30);
    put(&mut h, test.clone(), SHARD_1, &[4; 7]);
    h.producer.flush(h.now, None);
    h.run(Duration::ZERO, |_| Reply::Success);
    let received = |at: u64, window| {
        let metrics = query(&h, Duration::from_secs(at), MetricsQuery::new(window).name(UserRecordsReceived));
        assert!(metrics.iter().all(|m| m.name == UserRecordsReceived));
        metrics.iter().find(|m| m.stream.is_none()).map_or(0, |m| m.stat.count)
    };
    assert_eq!(received(30, MetricsWindow::LastSeconds(1)), 1);
    assert_eq!(received(30, MetricsWindow::LastSeconds(31)), 6);
    assert_eq!(received(30, MetricsWindow::LastSeconds(30)), 1, "seconds 1 to 30");
    assert_eq!(received(30, MetricsWindow::Seconds { from: 0, to: 30 }), 5);
    assert_eq!(received(30, MetricsWindow::Seconds { from: 30, to: 31 }), 1);
    // Windows expire: at 61 s the last 60 seconds start at second 2, at 90 s at second 31.
    assert_eq!(received(59, MetricsWindow::LastSeconds(60)), 6);
    assert_eq!(received(61, MetricsWindow::LastSeconds(60)), 1);
    assert_eq!(received(89, MetricsWindow::LastSeconds(60)), 1);
    assert_eq!(received(90, MetricsWindow::LastSeconds(60)), 0);
    assert_eq!(received(91, MetricsWindow::Cumulative), 6);
    let late = query(&h, Duration::from_secs(30), MetricsQuery::new(MetricsWindow::LastSeconds(1)));
    assert_eq!(global(&late, UserRecordsPut), (1, 1.0));
    assert_eq!(global(&late, UserRecordsDataPut), (1, 7.0));
    assert_eq!(global(&late, KinesisRecordsPut), (1, 1.0));
    assert!(!late.iter().any(|m| m.name == ErrorsByCode));
    assert_eq!(
        h.producer.metrics_query(h.now, &MetricsQuery::new(MetricsWindow::LastSeconds(61))),
        Err(MetricsQueryError::WindowOutOfRange(61))
    );
}

#[test]
fn pending_records_are_sampled_every_200_ms_of_virtual_time() {
    // Records wait in their aggregate for up to 5 s unless flushed.
    let config = ProducerConfig::builder().record_max_buffered_time(Duration::from_secs(5)).build().unwrap();
    let mut h = Harness::new(config, 1);
    h.start();
    let at = |ms: u64| epoch() + Duration::from_millis(ms);
    put(&mut h, stream(), SHARD_0, b"a");
    put(&mut h, stream(), SHARD_0, b"b");
    // Ticks at 200, 400, 600, 800 and 1000 ms see 2 outstanding records.
    h.now = at(1000);
    h.producer.handle_timeout(h.now);
    put(&mut h, stream(), SHARD_0, b"c");
    // 1200 and 1400 ms see 3.
    h.now = at(1500);
    h.producer.flush(h.now, None);
    h.run(Duration::ZERO, |_| Reply::Success);
    assert_eq!(h.succeeded(), 3);
    // 1600, 1800 and 2000 ms see none.
    h.now = at(2000);
    h.producer.handle_timeout(h.now);
    let pending = |h: &Harness, window| {
        let metrics =
            h.producer.metrics_query(h.now, &MetricsQuery::new(window).name(UserRecordsPending)).unwrap();
        let stat = metrics.iter().find(|m| m.stream.is_none()).unwrap().stat;
        (stat.count, stat.sum, stat.min, stat.max)
    };
    assert_eq!(pending(&h, MetricsWindow::Cumulative), (10, 16.0, 0.0, 3.0));
    assert_eq!(pending(&h, MetricsWindow::LastSeconds(1)), (1, 0.0, 0.0, 0.0));
    assert_eq!(pending(&h, MetricsWindow::LastSeconds(2)), (6, 8.0, 0.0, 3.0));
    // A producer left alone takes the samples it missed when next called; a query counts them already
    // (nothing changed meanwhile), and the call does not count them twice.
    h.now = at(12_000);
    for _ in 0..2 {
        assert_eq!(pending(&h, MetricsWindow::Cumulative).0, 60);
        // Seconds 3 to 12: five ticks in each of 3 to 11, and the one at 12 000 ms.
        assert_eq!(pending(&h, MetricsWindow::LastSeconds(10)), (46, 0.0, 0.0, 0.0));
        assert_eq!(pending(&h, MetricsWindow::Seconds { from: 1, to: 2 }), (5, 8.0, 0.0, 3.0));
        h.producer.handle_timeout(h.now);
    }
    let samples = h.producer.metrics();
    let cumulative = samples.iter().find(|s| s.name == UserRecordsPending).unwrap();
    assert_eq!((cumulative.stat.count, cumulative.stat.sum), (60, 16.0));
}
