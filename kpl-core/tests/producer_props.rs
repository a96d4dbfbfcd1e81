//! Random workloads against a responder that fails at random: every record completes exactly once, and
//! every request the producer emits respects the Kinesis limits.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{Harness, Reply};
use kpl_core::{AggregationPolicy, ProducerConfig, Request, RequestError, RequestErrorKind, UserRecord};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put { key: u16, size: usize, explicit: Option<u128> },
    Advance(u16),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u16..300, 0usize..3000, proptest::option::weighted(0.2, any::<u128>()))
            .prop_map(|(key, size, explicit)| Op::Put { key, size, explicit }),
        2 => (0u16..500).prop_map(Op::Advance),
        1 => Just(Op::Flush),
    ]
}

fn reply(choice: u8) -> Reply {
    let error = |kind| Reply::Error(RequestError::new(kind, None, "injected"));
    match choice % 16 {
        0 => error(RequestErrorKind::Throttling),
        1 => error(RequestErrorKind::Transient),
        2 => error(RequestErrorKind::Timeout),
        3 => Reply::Entries(vec![Some("ProvisionedThroughputExceededException"); 500]),
        4 => Reply::Entries(vec![Some("InternalFailure"); 500]),
        _ => Reply::Success,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_record_completes_once_within_the_limits(
        ops in proptest::collection::vec(op(), 1..300),
        replies in proptest::collection::vec(any::<u8>(), 64),
        shards in 1u32..6,
        policy in prop_oneof![
            Just(AggregationPolicy::PerShard),
            Just(AggregationPolicy::SameHashKey),
            Just(AggregationPolicy::Off),
        ],
        aggregation_max_size in 64u64..20_000,
        collection_max_count in 1u64..20,
    ) {
        let config = ProducerConfig::builder()
            .aggregation(policy)
            .aggregation_max_size(aggregation_max_size)
            .collection_max_count(collection_max_count)
            .collection_max_size(60_000)
            .max_connections(3)
            .record_ttl(Duration::from_secs(5))
            .build()
            .unwrap();
        let mut h = Harness::new(config, shards);
        let mut n = 0usize;
        let mut responder = |request: &Request| {
            n += 1;
            match request {
                Request::PutRecords(put) => {
                    assert!((1..=collection_max_count as usize).contains(&put.entries.len()));
                    let size: usize = put.entries.iter().map(|e| e.partition_key.len() + e.data.len()).sum();
                    assert!(size <= 60_000 || put.entries.len() == 1, "request of {size} bytes");
                    for entry in &put.entries {
                        let aggregated = entry.data.starts_with(&kpl_deagg::MAGIC);
                        assert!(!aggregated || entry.data.len() as u64 <= aggregation_max_size);
                    }
                    reply(replies[n % replies.len()])
                }
                _ => Reply::Success,
            }
        };
        // Each flush, with how many records were accepted before it (ids are 0, 1, ...).
        let mut flushes = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, size, explicit } => {
                    let mut record = UserRecord::new(common::stream(), format!("key-{key}"), vec![7u8; size]);
                    if let Some(explicit) = explicit {
                        record = record.with_explicit_hash_key(explicit.to_string());
                    }
                    let id = h.producer.put_record(h.now, record.clone()).unwrap();
                    h.put.insert(id, record);
                }
                Op::Advance(ms) => {
                    let target = h.now + Duration::from_millis(u64::from(ms));
                    h.run(target - h.now, &mut responder);
                    h.now = h.now.max(target);
                    h.producer.handle_timeout(h.now);
                }
                Op::Flush => {
                    let id = h.producer.flush(h.now, None);
                    flushes.push((id, h.put.len()));
                }
            }
        }
        h.producer.close(h.now);
        h.run(Duration::from_secs(3600), &mut responder);
        prop_assert_eq!(h.outcomes.len(), h.put.len(), "every record completed");
        prop_assert_eq!(h.producer.outstanding_records(), 0);
        prop_assert_eq!(h.producer.outstanding_bytes(), 0);
        prop_assert!(matches!(h.events.last(), Some(kpl_core::Event::Drained)));
        // Each flush completed once, after every record accepted before it.
        for (id, before) in flushes {
            let at = h.events.iter().position(|e| *e == kpl_core::Event::FlushCompleted(id));
            prop_assert!(at.is_some(), "flush {:?} never completed", id);
            let completed_before = h.events[..at.unwrap_or(0)]
                .iter()
                .filter(|e| matches!(e, kpl_core::Event::RecordCompleted(o) if (o.id.0 as usize) < before))
                .count();
            prop_assert_eq!(completed_before, before);
        }
        // Every success was written, on the shard its receipt names.
        for outcome in h.outcomes.values() {
            if let Ok(receipt) = &outcome.result {
                let record = &h.put[&outcome.id];
                let log = &h.written[receipt.shard_id.as_str()];
                prop_assert!(log.iter().any(|(k, d)| *k == record.partition_key && *d == record.data.to_vec()));
            }
        }
    }
}
