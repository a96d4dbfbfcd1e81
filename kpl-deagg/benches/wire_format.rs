//! Throughput of the wire format: building and deaggregating 51,200-byte aggregates (the KPL's default
//! `AggregationMaxSize`) of 100-byte and 1 KiB user records with 36-byte distinct partition keys, next to a
//! plain MD5 of the same bytes, so that the cost of encoding can be read as a multiple of the digest it must
//! compute anyway.
//!
//! `cargo bench -p kpl-deagg -- --warm-up-time 1 --measurement-time 3`

mod support;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kpl_deagg::{AggregateBuilder, AggregateLimits, Deaggregator, Mode, ReceivedRecord};
use md5::{Digest, Md5};
use support::uuid_like;

const AGGREGATE_SIZE: usize = 51_200;

struct Workload {
    name: &'static str,
    keys: Vec<String>,
    data: Vec<Bytes>,
    /// The records that fill one aggregate.
    count: usize,
    aggregate: Bytes,
}

impl Workload {
    fn new(name: &'static str, record_size: usize) -> Self {
        let limits = AggregateLimits { max_size: AGGREGATE_SIZE, max_count: usize::MAX };
        let mut keys = Vec::new();
        let mut data = Vec::new();
        let mut builder = AggregateBuilder::new();
        for n in 0.. {
            let key = uuid_like(n);
            assert_eq!(key.len(), 36);
            let payload = Bytes::from((0..record_size).map(|i| (i as u64 ^ n) as u8).collect::<Vec<_>>());
            if builder.try_add(&key, None, &payload, limits).is_err() {
                break;
            }
            keys.push(key);
            data.push(payload);
        }
        let count = keys.len();
        let aggregate = builder.finish().map(|record| record.data).unwrap_or_default();
        Self { name, keys, data, count, aggregate }
    }

    fn encode(&self, builder: &mut AggregateBuilder) -> Bytes {
        let limits = AggregateLimits { max_size: AGGREGATE_SIZE, max_count: usize::MAX };
        for (key, data) in self.keys.iter().zip(&self.data) {
            if builder.try_add(key, None, data, limits).is_err() {
                unreachable!("the workload fits one aggregate");
            }
        }
        builder.finish().map(|record| record.data).unwrap_or_default()
    }

    fn throughput(&self) -> Throughput {
        Throughput::ElementsAndBytes { elements: self.count as u64, bytes: self.aggregate.len() as u64 }
    }
}

fn wire_format(c: &mut Criterion) {
    for workload in [Workload::new("100B", 100), Workload::new("1KiB", 1024)] {
        let mut group = c.benchmark_group(format!("wire_format/{}", workload.name));
        group.throughput(workload.throughput());
        eprintln!(
            "{}: {} records of {} bytes in an aggregate of {} bytes",
            workload.name,
            workload.count,
            workload.data[0].len(),
            workload.aggregate.len()
        );

        let mut builder = AggregateBuilder::new();
        assert_eq!(workload.encode(&mut builder), workload.aggregate);
        group.bench_function(BenchmarkId::new("encode", workload.count), |b| {
            b.iter(|| black_box(workload.encode(&mut builder)))
        });

        let deaggregator = Deaggregator::new(Mode::Strict);
        let received = ReceivedRecord {
            data: workload.aggregate.clone(),
            partition_key: "a".to_owned(),
            explicit_hash_key: None,
            sequence_number: "49590338271490256608559692538361571095921575989136588898".to_owned(),
        };
        group.bench_function(BenchmarkId::new("decode", workload.count), |b| {
            b.iter(|| match deaggregator.deaggregate(black_box(received.clone())) {
                Ok(records) => records.map(|r| r.data.len()).sum::<usize>(),
                Err(error) => panic!("{error}"),
            })
        });

        group.bench_function(BenchmarkId::new("md5", workload.count), |b| {
            b.iter(|| Md5::digest(black_box(&workload.aggregate[..])))
        });
        group.finish();
    }
}

criterion_group!(benches, wire_format);
criterion_main!(benches);
