//! The record path allocates per Kinesis record and per request, not per user record: a record written at its
//! first try costs no allocation of its own beyond what the caller handed over (issue: "per-record state
//! that is small and allocation-free on the happy path").
//!
//! A test binary of its own: its global allocator counts every allocation of the process, so it must not run
//! beside other tests.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::System;

use bytes::Bytes;
use kpl_core::{
    Event, ListShardsOutput, Producer, ProducerConfig, PutRecordsResultEntry, Request, Response, UserRecord,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RECORDS: usize = 20_000;

#[test]
fn a_record_written_at_its_first_try_allocates_nothing_of_its_own() {
    let now = common::epoch();
    let shards = common::even_shards(4);
    let config = ProducerConfig::builder().rate_limit(1_000_000).build().unwrap();
    let mut producer = Producer::new(config, 1);
    producer.add_stream(now, common::stream()).unwrap();
    let listing = producer.poll_transmit(now).unwrap();
    let listed = ListShardsOutput { shards: shards.clone(), next_token: None };
    producer.handle_response(now, listing.id, Response::ListShards(Ok(listed)));
    while producer.poll_event().is_some() {}
    // The caller's part, made before the count: each record's own key and data.
    let records: Vec<UserRecord> = (0..RECORDS)
        .map(|n| UserRecord::new(common::stream(), format!("{n:036}"), Bytes::from(vec![b'x'; 100])))
        .collect();

    // Twice: the first round grows the producer's reusable buffers (aggregation tables, event queue) to
    // their working size; the second is the steady state.
    let mut counts = Vec::new();
    for round in 0..2 {
        let batch = records.clone();
        let region = Region::new(ALLOCATOR);
        let (mut entries, mut completed) = (0, 0);
        for record in batch {
            producer.put_record(now, record).unwrap();
        }
        producer.flush(now, None);
        while let Some(transmit) = producer.poll_transmit(now) {
            let Request::PutRecords(put) = transmit.request else { panic!("only puts are left") };
            entries += put.entries.len();
            let results = put
                .entries
                .iter()
                .map(|entry| {
                    let hash_key: u128 = entry.explicit_hash_key.as_deref().unwrap().parse().unwrap();
                    let shard = shards.iter().find(|shard| hash_key <= shard.ending_hash_key).unwrap();
                    PutRecordsResultEntry::Success {
                        shard_id: shard.shard_id.clone(),
                        sequence_number: "1".into(),
                    }
                })
                .collect();
            producer.handle_response(now, transmit.id, Response::PutRecords(Ok(results)));
        }
        while let Some(event) = producer.poll_event() {
            if let Event::RecordCompleted(outcome) = event {
                assert_eq!(outcome.result.expect("written").attempts.len(), 1);
                completed += 1;
            }
        }
        let change = region.change();
        let allocations = change.allocations + change.reallocations;
        assert_eq!(completed, RECORDS, "round {round}");
        counts.push((allocations, entries));
    }
    let (allocations, entries) = counts[1];
    println!(
        "{allocations} allocations for {RECORDS} records in {entries} Kinesis records (both rounds: {counts:?})"
    );
    // Aggregated, 20,000 records make a few dozen Kinesis records, each with a handful of allocations (its
    // aggregate, its list of user records, its entry's keys, its sequence number); a single allocation per
    // user record would be 20,000.
    assert!(entries < RECORDS / 100, "{entries} Kinesis records: the records were aggregated");
    assert!(
        allocations < RECORDS / 20,
        "{allocations} allocations for {RECORDS} records in {entries} Kinesis records: {:.2} per record",
        allocations as f64 / RECORDS as f64
    );
}
