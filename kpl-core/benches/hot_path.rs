//! The producer's hot path: `put_record` for a batch, then drain `poll_transmit`, answer every request with
//! success, and drain the events. 100-byte records with 36-byte distinct keys, over 4 and 64 shards.
//!
//! Baseline, measured in the same run: the MD5 work the KPL format requires for the same records (MD5 of
//! each partition key, and MD5 of the aggregates' bytes), so the result reads as a ratio to that floor.
#![allow(missing_docs, clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kpl_core::{
    Event, ListShardsOutput, Producer, ProducerConfig, PutRecordsResultEntry, Request, Response,
    ShardDescription, StreamTarget, UserRecord,
};
use md5::{Digest, Md5};

// The in-test Kinesis of the producer tests, for its shard layout.
#[path = "../tests/common/mod.rs"]
mod common;

const BATCH: usize = 20_000;

fn keys() -> Vec<String> {
    (0..BATCH).map(|i| format!("{:08x}-{:04x}-4000-8000-{:012x}", i * 7919, i % 65536, i * 104_729)).collect()
}

/// A producer that has listed `count` shards, with rate limits out of the way.
fn producer(count: u32, now: Instant) -> Producer {
    let config = ProducerConfig::builder()
        .rate_limit(1_000_000)
        .max_outstanding_records(10 * BATCH as u64)
        .build()
        .unwrap();
    let mut producer = Producer::new(config, 1);
    producer.add_stream(now, StreamTarget::name("bench")).unwrap();
    let transmit = producer.poll_transmit(now).unwrap();
    let listing = ListShardsOutput { shards: common::even_shards(count), next_token: None };
    producer.handle_response(now, transmit.id, Response::ListShards(Ok(listing)));
    while producer.poll_event().is_some() {}
    producer
}

/// One batch through the producer; returns the records completed.
fn cycle(
    producer: &mut Producer,
    now: Instant,
    keys: &[String],
    data: &Bytes,
    shards: &[ShardDescription],
) -> usize {
    let stream = StreamTarget::name("bench");
    for key in keys {
        let record = UserRecord {
            stream: stream.clone(),
            partition_key: key.clone(),
            explicit_hash_key: None,
            data: data.clone(),
        };
        producer.put_record(now, record).unwrap();
    }
    producer.flush(now, None);
    let mut completed = 0;
    while let Some(transmit) = producer.poll_transmit(now) {
        let Request::PutRecords(put) = transmit.request else { continue };
        let results = put.entries.iter().map(|entry| success(entry, shards)).collect();
        producer.handle_response(now, transmit.id, Response::PutRecords(Ok(results)));
    }
    while let Some(event) = producer.poll_event() {
        completed += usize::from(matches!(event, Event::RecordCompleted(_)));
    }
    completed
}

/// Kinesis's answer: the shard that holds the entry's explicit hash key.
fn success(entry: &kpl_core::PutRecordsEntry, shards: &[ShardDescription]) -> PutRecordsResultEntry {
    let hash_key: u128 = entry.explicit_hash_key.as_deref().unwrap().parse().unwrap();
    let shard = shards.iter().find(|s| hash_key <= s.ending_hash_key).unwrap();
    PutRecordsResultEntry::Success { shard_id: shard.shard_id.clone(), sequence_number: "1".into() }
}

fn hot_path(c: &mut Criterion) {
    let keys = keys();
    let data = Bytes::from(vec![0xAB; 100]);
    let mut group = c.benchmark_group("producer_hot_path");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(5));

    // Floor: MD5 of every key, plus MD5 over as many bytes as the aggregates hold (~150 bytes per record).
    let aggregate_bytes = vec![0x5Au8; 51_200];
    let per_aggregate = 51_200 / 150;
    group.bench_function("md5_floor", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for key in &keys {
                acc ^= Md5::digest(key.as_bytes())[0];
            }
            for _ in 0..BATCH / per_aggregate {
                acc ^= Md5::digest(&aggregate_bytes)[0];
            }
            acc
        })
    });

    for count in [4u32, 64] {
        let now = Instant::now();
        let mut producer = producer(count, now);
        let shards = common::even_shards(count);
        group.bench_with_input(BenchmarkId::new("put_to_transmit", count), &count, |b, _| {
            b.iter(|| assert_eq!(cycle(&mut producer, now, &keys, &data, &shards), BATCH))
        });
        assert_eq!(producer.stats().wrong_shard, 0);
    }
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
