//! The producer's size and count limits at their exact boundaries, against the simulated Kinesis: the
//! aggregator, the collector, the record validation and the mock must agree on every limit (record,
//! aggregate, request), whatever the length of the outer partition key.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use kpl_core::{
    AggregationPolicy, Event, Producer, ProducerConfig, RecordOutcome, ShardMapWait, StreamTarget, UserRecord,
};
use kpl_deagg::limits::MAX_RECORD_SIZE;
use kpl_mock_backend::{MockConfig, MockKinesis};
use proptest::prelude::*;

const STREAM: &str = "limits";

/// Puts every record (as backpressure allows), closes, and drives producer and mock on virtual time until
/// the producer drains. Returns every outcome.
fn run(config: ProducerConfig, backend: &mut MockKinesis, records: Vec<UserRecord>) -> Vec<RecordOutcome> {
    let mut producer = Producer::new(config, 5);
    let mut now = Instant::now();
    let mut records = records.into_iter().peekable();
    let mut outcomes = Vec::new();
    let mut closed = false;
    for _ in 0..10_000_000 {
        while let Some(record) = records.peek() {
            match producer.put_record(now, record.clone()) {
                Ok(_) => drop(records.next()),
                Err(kpl_core::PutError::Backpressure { .. }) => break,
                Err(error) => panic!("a valid record was refused: {error}"),
            }
        }
        if records.peek().is_none() && !closed {
            producer.close(now);
            closed = true;
        }
        while let Some(transmit) = producer.poll_transmit(now) {
            backend.handle_request(now, transmit.id, transmit.request).unwrap();
        }
        while let Some(event) = producer.poll_event() {
            match event {
                Event::RecordCompleted(outcome) => outcomes.push(outcome),
                Event::Drained => return outcomes,
                _ => {}
            }
        }
        let next = [producer.poll_timeout(), backend.poll_timeout()].into_iter().flatten().min();
        now = next.expect("an undrained producer waits on something").max(now);
        while let Some((id, response)) = backend.poll_response(now) {
            producer.handle_response(now, id, response);
        }
        producer.handle_timeout(now);
    }
    panic!("did not drain");
}

fn failures(outcomes: &[RecordOutcome]) -> Vec<String> {
    outcomes.iter().filter_map(|o| o.result.as_ref().err()).map(|f| f.to_string()).take(3).collect()
}

/// The largest Kinesis record the stream holds, data plus partition key.
fn largest_record(backend: &MockKinesis) -> usize {
    backend
        .shards(STREAM)
        .unwrap()
        .iter()
        .flat_map(|shard| shard.received_records().map(|r| r.partition_key.len() + r.data.len()))
        .max()
        .unwrap_or(0)
}

#[test]
fn aggregates_at_a_1_mib_aggregation_limit_fit_a_1_mib_stream() {
    // As reported: AggregationMaxSize = 1048576 built aggregates of 1048576 data bytes, one over the limit with
    // their key "a", and the stream refused 299,586 of 300,000 records.
    let config = ProducerConfig::builder()
        .aggregation_max_size(MAX_RECORD_SIZE as u64)
        .record_max_buffered_time(Duration::from_millis(2000))
        .shard_map_wait(ShardMapWait::Hold)
        .build()
        .unwrap();
    let mut backend = MockKinesis::new(MockConfig::calm(), 1).unwrap();
    backend.create_stream(STREAM, 1).unwrap();
    let records: Vec<_> = (0..300_000)
        .map(|_| UserRecord::new(StreamTarget::name(STREAM), "abc", Bytes::from_static(b"x")))
        .collect();
    let outcomes = run(config, &mut backend, records);
    assert_eq!(outcomes.len(), 300_000);
    assert!(failures(&outcomes).is_empty(), "{:?}", failures(&outcomes));
    assert_eq!(backend.stats().rejected_requests, 0);
    // Full aggregates, each within 1 MiB with its key.
    let largest = largest_record(&backend);
    assert!((MAX_RECORD_SIZE - 16..=MAX_RECORD_SIZE).contains(&largest), "largest record {largest} bytes");
}

/// A partition key of `length` characters drawn from one-, two-, three- and four-byte UTF-8 characters.
fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['k', 'é', '中', '\u{1F511}']), 1..=64)
        .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// With the stream's record and request limits set to the producer's aggregate, record and request
    /// limits, every valid record is written: nothing the producer builds is refused, whatever the keys'
    /// lengths, the records' sizes (drawn toward the limits) and the aggregation policy.
    #[test]
    fn every_limit_holds_at_its_boundary(
        record_limit in 300usize..4096,
        request_limit in 52_224usize..60_000,
        collection_max_count in 1u64..=500,
        policy in prop::sample::select(vec![AggregationPolicy::PerShard, AggregationPolicy::SameHashKey, AggregationPolicy::Off]),
        shards in 1u32..4,
        records in prop::collection::vec((key(), 0.0f64..=1.0, 0u8..3), 1..300),
    ) {
        let config = ProducerConfig::builder()
            .aggregation(policy)
            .aggregation_max_size(record_limit as u64)
            .max_record_size(record_limit as u64)
            .collection_max_size(request_limit as u64)
            .collection_max_count(collection_max_count)
            .build()
            .unwrap();
        let mock = MockConfig {
            max_record_size: record_limit,
            max_request_size: request_limit,
            shard_limits: None,
            ..MockConfig::calm()
        };
        let mut backend = MockKinesis::new(mock, 3).unwrap();
        backend.create_stream(STREAM, shards).unwrap();
        let records: Vec<_> = records
            .into_iter()
            .map(|(key, share, kind)| {
                // Data up to the record limit with the key: at it exactly, tiny (aggregates then fill to
                // within a few bytes of their limit), or anywhere below.
                let room = record_limit - key.len();
                let len = match kind {
                    0 => room,
                    1 => (4.0 * share) as usize,
                    _ => (room as f64 * share) as usize,
                };
                UserRecord::new(StreamTarget::name(STREAM), key, vec![7u8; len])
            })
            .collect();
        let count = records.len();
        let outcomes = run(config, &mut backend, records);
        prop_assert_eq!(outcomes.len(), count);
        prop_assert!(failures(&outcomes).is_empty(), "{:?}", failures(&outcomes));
        prop_assert!(largest_record(&backend) <= record_limit);
        // Nothing was refused and then rescued by retrying records alone.
        prop_assert_eq!(backend.stats().rejected_requests, 0);
    }
}
