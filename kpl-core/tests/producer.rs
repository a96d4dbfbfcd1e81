//! The producer driven through its public API against a small in-test responder, on virtual time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{Harness, Reply, first_put_then_success, stream};
use kpl_core::{
    AggregationPolicy, Event, ProducerConfig, PutError, PutRecordsRequest, RecordError, Request,
    RequestError, RequestErrorKind, ShardMapWait, UserRecord,
};
use kpl_deagg::partition_key_hash;

fn config() -> kpl_core::ProducerConfigBuilder {
    ProducerConfig::builder()
}

fn key(i: usize) -> String {
    format!("{i:08}-0000-0000-0000-000000000000")
}

#[test]
fn every_record_is_written_once_to_the_shard_its_key_hashes_to() {
    let mut h = Harness::new(config().build().unwrap(), 4);
    // Learn the shard map first, so that records are aggregated per shard.
    h.start();
    for i in 0..5000 {
        h.put(&key(i), &[i as u8; 100]);
    }
    h.producer.flush(h.now, None);
    h.run(Duration::from_secs(5), |_| Reply::Success);
    assert_eq!(h.succeeded(), 5000);
    for outcome in h.outcomes.values() {
        let receipt = outcome.result.as_ref().unwrap();
        let record = &h.put[&outcome.id];
        let shard = h.shards.iter().find(|s| s.shard_id == receipt.shard_id).unwrap();
        let hash = partition_key_hash(&record.partition_key);
        assert!((shard.starting_hash_key..=shard.ending_hash_key).contains(&hash));
        assert_eq!(receipt.attempts.len(), 1);
        assert!(!receipt.maybe_duplicated);
    }
    let written: usize = h.written.values().map(Vec::len).sum();
    assert_eq!(written, 5000, "each record written exactly once");
    // 5000 × ~140 bytes aggregate into ~14 Kinesis records of ≤ 51200 bytes: a handful of requests.
    let puts = h.requests.iter().filter(|r| matches!(r, Request::PutRecords(_))).count();
    assert!(puts <= 8, "{puts} PutRecords requests");
    assert_eq!(h.producer.outstanding_records(), 0);
}

#[test]
fn requests_respect_every_size_and_count_limit() {
    let config = config().aggregation_max_size(4096).collection_max_count(7).collection_max_size(60_000);
    let mut h = Harness::new(config.build().unwrap(), 3);
    h.start();
    for i in 0..3000 {
        h.put(&key(i), &vec![1u8; (i * 37) % 900]);
    }
    h.producer.close(h.now);
    h.run(Duration::from_secs(60), |_| Reply::Success);
    assert_eq!(h.succeeded(), 3000);
    assert!(matches!(h.events.last(), Some(Event::Drained)));
    for request in &h.requests {
        if let Request::PutRecords(put) = request {
            assert!(!put.entries.is_empty() && put.entries.len() <= 7);
            let size: usize = put.entries.iter().map(|e| e.partition_key.len() + e.data.len()).sum();
            assert!(size <= 60_000, "request of {size} bytes");
            for entry in &put.entries {
                assert!(entry.data.len() <= 4096 || entry.data[..4] != kpl_deagg::MAGIC);
            }
        }
    }
}

#[test]
fn a_lone_record_waits_for_its_buffering_deadline_then_goes() {
    let mut h =
        Harness::new(config().record_max_buffered_time(Duration::from_millis(100)).build().unwrap(), 1);
    h.start();
    let start = h.now;
    h.put("k", b"v");
    assert!(h.producer.poll_transmit(h.now).is_none(), "nothing is sent before the deadline");
    // The record's deadline, then the collection window of an aggregate (min(50 ms, 20 ms)).
    assert_eq!(h.producer.poll_timeout(), Some(start + Duration::from_millis(100)));
    h.run(Duration::from_secs(1), |_| Reply::Success);
    let receipt = h.outcomes.values().next().unwrap().result.as_ref().unwrap();
    assert_eq!(receipt.attempts[0].started, start + Duration::from_millis(120));
}

#[test]
fn throttled_entries_are_retried_and_their_attempts_reported() {
    let mut h = Harness::new(config().build().unwrap(), 1);
    h.start();
    let id = h.put("k", b"v");
    h.producer.flush(h.now, None);
    h.run(
        Duration::from_secs(10),
        first_put_then_success(Reply::Entries(vec![Some("ProvisionedThroughputExceededException")])),
    );
    let receipt = h.outcomes[&id].result.as_ref().unwrap();
    assert_eq!(receipt.attempts.len(), 2);
    let error = receipt.attempts[0].error.as_ref().unwrap();
    assert_eq!(error.code, "ProvisionedThroughputExceededException");
    assert!(receipt.attempts[1].error.is_none());
    assert!(receipt.attempts[1].started >= receipt.attempts[0].ended);
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::ShardThrottled { rate_factor, .. } if *rate_factor == 0.5))
    );
    assert_eq!(h.producer.stats().throttled_entries, 1);
}

#[test]
fn requests_tell_their_attempt_and_shards_for_the_logs() {
    let mut h = Harness::new(config().build().unwrap(), 4);
    h.start();
    for key in 0..32 {
        h.put(&format!("key-{key}"), b"v");
    }
    h.producer.flush(h.now, None);
    let throttled = RequestError::new(RequestErrorKind::Transient, Some("InternalFailure"), "try again");
    h.run(Duration::from_secs(10), first_put_then_success(Reply::Error(throttled)));
    let puts: Vec<&PutRecordsRequest> = (h.requests.iter())
        .filter_map(|request| match request {
            Request::PutRecords(put) => Some(put),
            _ => None,
        })
        .collect();
    // 32 keys over 4 shards: one aggregate per shard, each entry on a shard of its own.
    assert_eq!((puts[0].attempt, puts[0].shards, puts[0].entries.len()), (1, 4, 4));
    // The retries (each shard backs off on its own, so they may go in several requests) are the
    // aggregates' second attempt, on the same four shards.
    let retries = &puts[1..];
    assert!(
        retries.iter().all(|put| put.attempt == 2 && put.shards as usize == put.entries.len()),
        "{retries:#?}"
    );
    assert_eq!(retries.iter().map(|put| put.shards).sum::<u32>(), 4);
}

#[test]
fn fail_if_throttled_fails_at_once() {
    let mut h = Harness::new(config().fail_if_throttled(true).build().unwrap(), 1);
    h.start();
    let id = h.put("k", b"v");
    h.producer.flush(h.now, None);
    h.run(Duration::from_secs(10), |_| Reply::Entries(vec![Some("ProvisionedThroughputExceededException")]));
    let failure = h.outcomes[&id].result.as_ref().unwrap_err();
    assert!(matches!(failure.error, RecordError::Throttled { .. }));
    assert_eq!(failure.attempts.len(), 1);
}

#[test]
fn fatal_errors_fail_records_at_once_and_only_those() {
    let mut h = Harness::new(config().build().unwrap(), 1);
    h.start();
    let doomed = h.put("k", b"v");
    h.producer.flush(h.now, None);
    let denied = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "no");
    h.run(Duration::ZERO, |_| Reply::Error(denied.clone()));
    let failure = h.outcomes[&doomed].result.as_ref().unwrap_err();
    assert_eq!(failure.error, RecordError::Rejected(denied));
    assert_eq!(failure.attempts[0].error.as_ref().unwrap().code, "AccessDeniedException");
    // Later records are unaffected.
    let fine = h.put("k", b"w");
    h.run(Duration::from_secs(1), |_| Reply::Success);
    assert!(h.outcomes[&fine].result.is_ok());
}

#[test]
fn records_expire_at_their_ttl_and_not_before() {
    let ttl = Duration::from_secs(2);
    let mut h = Harness::new(config().record_ttl(ttl).build().unwrap(), 1);
    h.start();
    let start = h.now;
    let id = h.put("k", b"v");
    let unavailable = RequestError::new(RequestErrorKind::Transient, Some("ServiceUnavailable"), "503");
    h.run(Duration::from_secs(10), |_| Reply::Error(unavailable.clone()));
    let failure = h.outcomes[&id].result.as_ref().unwrap_err();
    assert!(matches!(failure.error, RecordError::Expired { attempts } if attempts >= 2));
    let last = failure.attempts.last().unwrap();
    assert!(last.ended <= start + ttl);
    assert!(h.now >= start + ttl);
    assert_eq!(h.producer.stats().user_records_expired, 1);
}

#[test]
fn a_huge_ttl_never_expires() {
    let mut h = Harness::new(config().record_ttl(Duration::MAX).build().unwrap(), 1);
    h.start();
    let id = h.put("k", b"v");
    let mut failures = 20;
    h.run(Duration::from_secs(3600), |_| {
        if failures > 0 {
            failures -= 1;
            Reply::Error(RequestError::new(RequestErrorKind::Transient, None, "down"))
        } else {
            Reply::Success
        }
    });
    let receipt = h.outcomes[&id].result.as_ref().unwrap();
    assert_eq!(receipt.attempts.len(), 21);
}

#[test]
fn timeouts_are_retried_and_flagged_as_possible_duplicates() {
    let mut h = Harness::new(config().build().unwrap(), 1);
    h.start();
    let id = h.put("k", b"v");
    h.producer.flush(h.now, None);
    h.run(
        Duration::from_secs(10),
        first_put_then_success(Reply::Error(RequestError::new(
            RequestErrorKind::Timeout,
            None,
            "no response in 6 s",
        ))),
    );
    let receipt = h.outcomes[&id].result.as_ref().unwrap();
    assert!(receipt.maybe_duplicated);
    assert_eq!(receipt.attempts.len(), 2);
}

#[test]
fn wrong_shard_after_a_split_retries_the_whole_aggregate_and_refreshes_the_map() {
    let mut h = Harness::new(config().build().unwrap(), 1);
    h.start();
    // The stream splits into two after the producer listed it; the responder routes by the new shards.
    let mut split = common::even_shards(2);
    for shard in &mut split {
        shard.shard_id = format!("{}-child", shard.shard_id).as_str().into();
    }
    h.shards = split;
    let ids: Vec<_> = (0..200).map(|i| h.put(&key(i), b"payload")).collect();
    h.producer.flush(h.now, None);
    h.run(Duration::from_secs(10), |_| Reply::Success);
    assert_eq!(h.succeeded(), 200);
    assert!(h.producer.stats().wrong_shard >= 1);
    let listings = h.requests.iter().filter(|r| matches!(r, Request::ListShards(_))).count();
    assert_eq!(listings, 2, "the map is listed again after the wrong-shard result");
    for id in ids {
        let receipt = h.outcomes[&id].result.as_ref().unwrap();
        let hash = partition_key_hash(&h.put[&id].partition_key);
        let shard = h.shards.iter().find(|s| s.shard_id == receipt.shard_id).unwrap();
        assert!((shard.starting_hash_key..=shard.ending_hash_key).contains(&hash));
        // The first aggregate landed whole on one child and was retried: those records say so.
        if receipt.attempts.len() > 1 {
            assert_eq!(receipt.attempts[0].error.as_ref().unwrap().code, "Wrong Shard");
            assert!(receipt.maybe_duplicated);
        }
    }
}

/// PutRecords entries the harness has answered so far.
fn entries_sent(h: &Harness) -> usize {
    (h.requests.iter())
        .map(|request| match request {
            Request::PutRecords(put) => put.entries.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn records_queued_for_merged_shards_go_through_the_merged_shards_limiter() {
    // Unaggregated, so that each record is one entry and each shard's limiter passes 1,000 per second; the
    // drain-time admission off, so that the backlog this needs is accepted.
    let mut h = Harness::new(config().aggregation_enabled(false).drain_window_percent(0).build().unwrap(), 2);
    h.start();
    // 10,000 records per shard: a second's worth goes at once, the rest queues behind each limiter.
    for i in 0..20_000 {
        h.put(&key(i), b"x");
    }
    h.run(Duration::from_millis(100), |_| Reply::Success);
    // The two shards merge: results now name the merged shard, and the producer lists the stream again.
    let mut merged = common::even_shards(1);
    merged[0].shard_id = "shardId-000000000002".into();
    h.shards = merged;
    let maps = |h: &Harness| h.events.iter().filter(|e| matches!(e, Event::ShardMapUpdated { .. })).count();
    while maps(&h) < 2 {
        h.run(Duration::from_millis(10), |_| Reply::Success);
    }
    // From the new map on, one shard's limiter governs: a full bucket (1,000) plus 1,000 a second, and at
    // most a request (500) that had passed the parents' limiters already. The parents' queues draining
    // through their own limiters as well (as they did) sent 9,000.
    let before = entries_sent(&h);
    h.run(Duration::from_secs(3), |_| Reply::Success);
    let sent = entries_sent(&h) - before;
    assert!((3_900..=4_500).contains(&sent), "{sent} entries in the 3 s after the merge");
    h.run(Duration::from_secs(30), |_| Reply::Success);
    assert_eq!(h.succeeded(), 20_000, "nothing is lost on the way");
}

#[test]
fn backpressure_refuses_past_the_limit_and_signals_capacity() {
    let mut h = Harness::new(config().max_outstanding_records(3).build().unwrap(), 1);
    h.start();
    for i in 0..3 {
        h.put(&key(i), b"x");
    }
    let refused = h.producer.put_record(h.now, UserRecord::new(stream(), "k", &b"x"[..]));
    assert_eq!(refused, Err(PutError::Backpressure { outstanding_records: 3, outstanding_bytes: 3 * 37 }));
    h.run(Duration::from_secs(1), |_| Reply::Success);
    assert_eq!(h.succeeded(), 3);
    assert_eq!(h.events.iter().filter(|e| matches!(e, Event::CapacityAvailable)).count(), 1);
    assert!(h.producer.put_record(h.now, UserRecord::new(stream(), "k", &b"x"[..])).is_ok());
}

#[test]
fn invalid_records_get_typed_errors_and_buffer_nothing() {
    let mut h = Harness::new(config().max_record_size(600).build().unwrap(), 1);
    let cases = [
        (UserRecord::new(stream(), "", &b"x"[..]), PutError::EmptyPartitionKey),
        (
            UserRecord::new(stream(), "é".repeat(257), &b"x"[..]),
            PutError::PartitionKeyTooLong { length: 257 },
        ),
        // 129 code points outside the BMP are 258 UTF-16 units: Kinesis refuses them, so must the producer.
        (
            UserRecord::new(stream(), "\u{1F511}".repeat(129), &b"x"[..]),
            PutError::PartitionKeyTooLong { length: 258 },
        ),
        (UserRecord::new(stream(), "k", vec![0u8; 600]), PutError::RecordTooLarge { size: 601, max: 600 }),
        (
            UserRecord::new(stream(), "k", &b"x"[..]).with_explicit_hash_key("-1"),
            PutError::InvalidExplicitHashKey(kpl_deagg::HashKeyError::NotADigit { offset: 0 }),
        ),
        (
            UserRecord::new(kpl_core::StreamTarget::name(""), "k", &b"x"[..]),
            PutError::InvalidStream(String::new()),
        ),
        (
            UserRecord::new(kpl_core::StreamTarget::name("my stream"), "k", &b"x"[..]),
            PutError::InvalidStream("my stream".into()),
        ),
        (
            UserRecord::new(
                kpl_core::StreamTarget::arn("arn:aws:kinesis:us-east-1:1:stream/s"),
                "k",
                &b"x"[..],
            ),
            PutError::InvalidStream("arn:aws:kinesis:us-east-1:1:stream/s".into()),
        ),
    ];
    for (record, error) in cases {
        assert_eq!(h.producer.put_record(h.now, record), Err(error));
    }
    // 256 two-byte characters is within the limit, and so are 128 four-byte ones (256 UTF-16 units).
    assert!(h.producer.put_record(h.now, UserRecord::new(stream(), "é".repeat(256), &b""[..])).is_ok());
    assert!(
        h.producer.put_record(h.now, UserRecord::new(stream(), "\u{1F511}".repeat(128), &b""[..])).is_ok()
    );
    assert_eq!(h.producer.outstanding_records(), 2);
}

#[test]
fn close_drains_then_refuses() {
    let mut h = Harness::new(config().build().unwrap(), 2);
    for i in 0..10 {
        h.put(&key(i), b"x");
    }
    h.producer.close(h.now);
    assert_eq!(
        h.producer.put_record(h.now, UserRecord::new(stream(), "k", &b"x"[..])),
        Err(PutError::Closed)
    );
    h.run(Duration::from_secs(1), |_| Reply::Success);
    assert_eq!(h.succeeded(), 10);
    assert_eq!(h.events.iter().filter(|e| matches!(e, Event::Drained)).count(), 1);
}

#[test]
fn until_the_map_is_known_records_go_unaggregated_or_are_held() {
    for wait in [ShardMapWait::SendUnaggregated, ShardMapWait::Hold] {
        let mut h = Harness::new(config().shard_map_wait(wait).build().unwrap(), 2);
        for i in 0..50 {
            h.put(&key(i), b"x");
        }
        h.producer.flush(h.now, None);
        let listing = h.producer.poll_transmit(h.now).expect("the shard map is listed first");
        assert!(matches!(listing.request, Request::ListShards(_)));
        // What goes out before the listing is answered: every record unaggregated, or nothing.
        let early: Vec<_> = std::iter::from_fn(|| h.producer.poll_transmit(h.now)).collect();
        let early_entries: usize = early
            .iter()
            .map(|t| if let Request::PutRecords(p) = &t.request { p.entries.len() } else { 0 })
            .sum();
        let expected = if wait == ShardMapWait::Hold { 0 } else { 50 };
        assert_eq!(early_entries, expected, "{wait:?}");
        h.answer(listing, Reply::Success);
        for transmit in early {
            h.answer(transmit, Reply::Success);
        }
        h.run(Duration::from_secs(1), |_| Reply::Success);
        assert_eq!(h.succeeded(), 50, "{wait:?}");
    }
}

#[test]
fn records_not_yet_sent_unaggregated_are_aggregated_once_the_map_arrives() {
    let config =
        config().shard_map_wait(ShardMapWait::SendUnaggregated).collection_max_count(10).max_connections(1);
    let mut h = Harness::new(config.build().unwrap(), 2);
    for i in 0..50 {
        h.put(&key(i), b"x");
    }
    h.producer.flush(h.now, None);
    let listing = h.producer.poll_transmit(h.now).expect("the shard map is listed first");
    // One connection: one request of 10 unaggregated records leaves, four wait for it.
    let first = h.producer.poll_transmit(h.now).expect("a PutRecords");
    assert!(h.producer.poll_transmit(h.now).is_none());
    h.answer(listing, Reply::Success);
    h.answer(first, Reply::Success);
    h.run(Duration::from_secs(1), |_| Reply::Success);
    assert_eq!(h.succeeded(), 50);
    let entries: Vec<usize> = h
        .requests
        .iter()
        .filter_map(|r| if let Request::PutRecords(p) = r { Some(p.entries.len()) } else { None })
        .collect();
    // The 40 that waited went back through aggregation: one aggregate per shard.
    assert_eq!(entries, [10, 2]);
}

#[test]
fn same_hash_key_policy_needs_no_map() {
    let mut h = Harness::new(config().aggregation(AggregationPolicy::SameHashKey).build().unwrap(), 4);
    for i in 0..100 {
        h.put(&key(i % 5), b"x");
    }
    h.producer.flush(h.now, None);
    h.run(Duration::from_secs(1), |_| Reply::Success);
    assert_eq!(h.succeeded(), 100);
    let entries: usize =
        h.requests.iter().map(|r| if let Request::PutRecords(p) = r { p.entries.len() } else { 0 }).sum();
    assert_eq!(entries, 5, "one aggregate per partition key");
}

#[test]
fn same_inputs_same_outputs() {
    let trace = || {
        let mut h = Harness::new(config().build().unwrap(), 3);
        let mut n = 0u32;
        for i in 0..500 {
            h.put(&key(i), &[1; 50]);
            if i % 100 == 0 {
                h.run(Duration::from_millis(30), |_| {
                    n += 1;
                    if n.is_multiple_of(3) {
                        Reply::Error(RequestError::new(RequestErrorKind::Throttling, None, "slow down"))
                    } else {
                        Reply::Success
                    }
                });
            }
        }
        h.producer.close(h.now);
        h.run(Duration::from_secs(60), |_| Reply::Success);
        format!("{:?}{:?}", h.requests, h.events)
    };
    assert_eq!(trace(), trace());
}

#[test]
fn metrics_count_what_the_kpl_reports() {
    use kpl_core::MetricName::*;
    let mut h = Harness::new(config().build().unwrap(), 1);
    h.start();
    for i in 0..3 {
        h.put(&key(i), &[0u8; 10]);
    }
    h.producer.flush(h.now, None);
    h.run(
        Duration::from_secs(10),
        first_put_then_success(Reply::Entries(vec![Some("ProvisionedThroughputExceededException")])),
    );
    let samples = h.producer.metrics();
    let stat = |name, code: Option<&str>| {
        let matching: Vec<_> =
            samples.iter().filter(|s| s.name == name && s.error_code.as_deref() == code).collect();
        assert_eq!(matching.len(), 1, "{name:?}: {matching:?}");
        (matching[0].stat.count, matching[0].stat.sum)
    };
    assert_eq!(stat(UserRecordsReceived, None), (3, 3.0));
    assert_eq!(stat(KinesisRecordsPut, None), (2, 1.0));
    assert_eq!(stat(AllErrors, None), (2, 1.0));
    assert_eq!(stat(ErrorsByCode, Some("ProvisionedThroughputExceededException")), (1, 1.0));
    assert_eq!(stat(UserRecordsPut, None), (3, 3.0));
    assert_eq!(stat(UserRecordsDataPut, None), (3, 30.0));
    assert_eq!(stat(RetriesPerRecord, None), (3, 3.0));
    assert_eq!(stat(UserRecordsPerKinesisRecord, None), (2, 6.0));
    assert_eq!(stat(KinesisRecordsPerPutRecordsRequest, None), (2, 2.0));
    assert_eq!(stat(UserRecordsPerPutRecordsRequest, None), (2, 6.0));
    assert_eq!(stat(RequestTime, None).0, 2);
    assert_eq!(stat(BufferingTime, None).0, 6);
    let shard_level = samples.iter().find(|s| s.name == UserRecordsPut).unwrap();
    assert_eq!(shard_level.shard_id.as_ref().map(|id| id.as_str()), Some("shardId-000000000000"));
}

#[test]
fn records_released_together_are_aggregated_together() {
    // Held for a shard map that arrives long after their buffering deadline, records still go out
    // aggregated, not one Kinesis record each.
    let mut h = Harness::new(config().shard_map_wait(ShardMapWait::Hold).build().unwrap(), 2);
    for i in 0..300 {
        h.put(&key(i), b"x");
    }
    let listing = h.producer.poll_transmit(h.now).expect("the shard map is listed first");
    assert!(matches!(listing.request, Request::ListShards(_)));
    h.now += Duration::from_millis(500);
    h.answer(listing, Reply::Success);
    h.run(Duration::from_secs(1), |_| Reply::Success);
    assert_eq!(h.succeeded(), 300);
    let entries: usize =
        h.requests.iter().map(|r| if let Request::PutRecords(p) = r { p.entries.len() } else { 0 }).sum();
    assert_eq!(entries, 2, "one aggregate per shard");
}

/// Entries of every PutRecords the harness answered, in order.
fn put_entries(h: &Harness) -> Vec<Vec<kpl_core::PutRecordsEntry>> {
    h.requests
        .iter()
        .filter_map(|r| if let Request::PutRecords(p) = r { Some(p.entries.clone()) } else { None })
        .collect()
}

fn unavailable_events(h: &Harness) -> usize {
    h.events.iter().filter(|e| matches!(e, Event::ShardMapUnavailable { .. })).count()
}

#[test]
fn a_refused_list_shards_falls_back_to_same_key_aggregation_then_to_the_map() {
    let mut h = Harness::new(config().build().unwrap(), 2);
    for i in 0..30 {
        h.put(&format!("customer-{}", i % 3), b"x");
    }
    h.producer.flush(h.now, None);
    let denied = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "no ListShards");
    // Refused at once: no waiting out the hold (5 s), only the records' buffering time (100 ms).
    h.run(Duration::from_millis(500), |request| match request {
        Request::ListShards(_) => Reply::ListShardsError(denied.clone()),
        _ => Reply::Success,
    });
    assert_eq!(h.succeeded(), 30);
    assert_eq!(unavailable_events(&h), 1);
    assert_eq!(h.producer.stats().shard_map_fallbacks, 1);
    // One aggregate per key: three Kinesis records of ten user records each, each routed by its own key.
    let entries = put_entries(&h).concat();
    assert_eq!(entries.len(), 3, "{entries:?}");
    for entry in &entries {
        let users = kpl_deagg::Deaggregator::new(kpl_deagg::Mode::Strict)
            .deaggregate(kpl_deagg::ReceivedRecord {
                data: entry.data.clone(),
                partition_key: entry.partition_key.clone(),
                explicit_hash_key: None,
                sequence_number: "1".into(),
            })
            .unwrap()
            .collect::<Vec<_>>();
        assert_eq!(users.len(), 10);
        assert!(users.iter().all(|u| u.partition_key == users[0].partition_key));
    }
    // The listing is retried in the background; once it succeeds, records aggregate per shard again.
    h.run(Duration::from_secs(5), |_| Reply::Success);
    assert!(h.events.iter().any(|e| matches!(e, Event::ShardMapUpdated { .. })));
    let before = put_entries(&h).len();
    for i in 0..40 {
        h.put(&key(i), b"y");
    }
    h.producer.flush(h.now, None);
    h.run(Duration::from_secs(1), |_| Reply::Success);
    assert_eq!(h.succeeded(), 70);
    let after: usize = put_entries(&h)[before..].iter().map(Vec::len).sum();
    assert_eq!(after, 2, "40 keys over two shards: one aggregate per shard");
    assert_eq!(unavailable_events(&h), 1, "reported once");
}

#[test]
fn holding_for_the_shard_map_gives_up_after_shard_map_wait_timeout() {
    let wait = Duration::from_secs(3);
    let mut h = Harness::new(config().shard_map_wait_timeout(wait).build().unwrap(), 2);
    let start = h.now;
    for i in 0..20 {
        h.put(&format!("customer-{}", i % 2), b"x");
    }
    let failing = RequestError::new(RequestErrorKind::Transient, Some("InternalFailure"), "500");
    let mut first_put = None;
    h.run(Duration::from_secs(4), |request| match request {
        Request::ListShards(_) => Reply::ListShardsError(failing.clone()),
        Request::PutRecords(_) => {
            first_put.get_or_insert(());
            Reply::Success
        }
        _ => Reply::Success,
    });
    assert_eq!(h.succeeded(), 20);
    assert_eq!(unavailable_events(&h), 1);
    // Nothing was sent before the wait ran out, and then two aggregates (one per key) went at once.
    let written_at =
        h.outcomes.values().map(|o| o.result.as_ref().unwrap().attempts[0].started).min().unwrap();
    assert!(
        written_at >= start + wait && written_at < start + wait + Duration::from_millis(200),
        "{:?}",
        written_at - start
    );
    assert_eq!(put_entries(&h).concat().len(), 2);
}

fn refusal(message: &str) -> RequestError {
    RequestError::new(RequestErrorKind::InvalidRequest, Some("ValidationException"), message)
}

#[test]
fn a_request_refused_for_one_named_entry_fails_only_that_entry() {
    let mut h = Harness::new(config().aggregation(AggregationPolicy::Off).build().unwrap(), 1);
    h.start();
    let small_1 = h.put("k", b"small-1");
    let big = h.put("k", &[0u8; 2000]);
    let small_3 = h.put("k", b"small-3");
    h.producer.flush(h.now, None);
    let named =
        refusal("1 validation error detected: Value at 'records.2.member.data' failed to satisfy constraint");
    h.run(Duration::from_secs(1), first_put_then_success(Reply::Error(named.clone())));
    assert_eq!(h.outcomes[&big].result.as_ref().unwrap_err().error, RecordError::Rejected(named));
    for id in [small_1, small_3] {
        let receipt = h.outcomes[&id].result.as_ref().unwrap();
        assert_eq!(receipt.attempts.len(), 2, "re-sent once");
    }
}

#[test]
fn a_refusal_that_names_no_entry_isolates_each_to_find_the_culprit() {
    // Aggregated: the culprit hides inside an aggregate with innocent records.
    let mut h = Harness::new(config().build().unwrap(), 1);
    h.start();
    let ids: Vec<_> = (0..5).map(|i| h.put(&format!("k{i}"), format!("ok-{i}").as_bytes())).collect();
    let culprit = h.put("bad", b"too big for this stream");
    h.producer.flush(h.now, None);
    let anonymous = refusal("Records size exceeds the limit");
    let holds_culprit = |put: &kpl_core::PutRecordsRequest| {
        put.entries.iter().any(|e| e.data.windows(7).any(|w| w == b"too big"))
    };
    h.run(Duration::from_secs(2), |request| match request {
        Request::PutRecords(put) if holds_culprit(put) => Reply::Error(anonymous.clone()),
        _ => Reply::Success,
    });
    assert_eq!(h.outcomes[&culprit].result.as_ref().unwrap_err().error, RecordError::Rejected(anonymous));
    for id in ids {
        assert!(h.outcomes[&id].result.is_ok(), "{id:?}");
    }
    // After the refusal every suspect went alone, in a request of its own.
    let puts = put_entries(&h);
    assert_eq!(puts[0].len(), 1, "one aggregate first");
    assert!(puts[1..].iter().all(|entries| entries.len() == 1), "{puts:?}");
    assert_eq!(puts.len(), 1 + 6);
}

#[test]
fn attempts_carry_their_delay_from_the_put_or_the_previous_attempt() {
    let buffered = Duration::from_millis(100);
    let mut h = Harness::new(config().record_max_buffered_time(buffered).build().unwrap(), 1);
    h.start();
    let put_at = h.now;
    let id = h.put("k", b"v");
    h.run(
        Duration::from_secs(10),
        first_put_then_success(Reply::Entries(vec![Some("ProvisionedThroughputExceededException")])),
    );
    let receipt = h.outcomes[&id].result.as_ref().unwrap();
    assert_eq!(receipt.put_time(), put_at);
    let [first, second] = receipt.attempts() else { panic!("{:?}", receipt.attempts()) };
    // The first attempt waited for the buffering deadline; the second for its backoff after the first.
    assert_eq!(first.delay(), first.started() - put_at);
    assert!(first.delay() >= buffered, "{:?}", first.delay());
    assert_eq!(second.delay(), second.started() - first.ended());
    assert!(!first.is_successful() && second.is_successful());
    assert_eq!(first.error().map(|error| error.code()), Some("ProvisionedThroughputExceededException"));
    assert_eq!(first.duration(), first.ended() - first.started());
}

#[test]
fn a_failed_record_is_handed_back_only_when_asked() {
    let denied = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "no");
    for returned in [false, true] {
        let mut h = Harness::new(config().return_user_record_on_failure(returned).build().unwrap(), 1);
        h.start();
        let record = UserRecord::new(stream(), "k", &b"the data"[..]).with_explicit_hash_key("42");
        let id = h.producer.put_record(h.now, record.clone()).unwrap();
        h.put.insert(id, record.clone());
        h.producer.flush(h.now, None);
        h.run(Duration::ZERO, |_| Reply::Error(denied.clone()));
        let failure = h.outcomes[&id].result.clone().unwrap_err();
        assert_eq!(failure.error(), &RecordError::Rejected(denied.clone()));
        assert_eq!(failure.put_time(), common::epoch());
        assert_eq!(failure.record().is_some(), returned);
        assert_eq!(failure.into_record(), returned.then_some(record));
    }
}

#[test]
fn a_flush_while_records_wait_for_the_shard_map_sends_them_when_it_arrives() {
    // Long enough that waiting for it would show, shorter than the records' TTL.
    let buffered = Duration::from_secs(10);
    let mut h = Harness::new(
        config().shard_map_wait(ShardMapWait::Hold).record_max_buffered_time(buffered).build().unwrap(),
        2,
    );
    for i in 0..5 {
        h.put(&key(i), b"x");
    }
    h.producer.flush(h.now, None);
    let listing = h.producer.poll_transmit(h.now).expect("the shard map is listed first");
    assert!(h.producer.poll_transmit(h.now).is_none(), "held until the map arrives");
    h.answer(listing, Reply::Success);
    // Within the collection window (milliseconds), not a buffering time later: the flush covered the held
    // records.
    let mapped_at = h.now;
    let mut sent = 0;
    while sent == 0 {
        sent = std::iter::from_fn(|| h.producer.poll_transmit(h.now))
            .map(|t| if let Request::PutRecords(p) = &t.request { p.entries.len() } else { 0 })
            .sum();
        if sent == 0 {
            let next = h.producer.poll_timeout().expect("a deadline while records are outstanding");
            h.now = h.now.max(next);
            h.producer.handle_timeout(h.now);
        }
    }
    assert!(h.now - mapped_at < Duration::from_secs(1), "sent after {:?}", h.now - mapped_at);
    assert_eq!(sent, 2, "one aggregate per shard");
}

#[test]
fn prepared_records_are_checked_and_hashed_before_the_producer_and_routed_alike() {
    let strict = config().max_record_size(1000).build().unwrap();
    // A refused record comes back with the error.
    let empty_key = UserRecord::new(stream(), "", "data");
    assert_eq!(strict.prepare(empty_key.clone()), Err((PutError::EmptyPartitionKey, empty_key)));
    let bad_stream = UserRecord::new(kpl_core::StreamTarget::name("no spaces"), "key", "data");
    assert!(matches!(strict.prepare(bad_stream), Err((PutError::InvalidStream(_), _))));
    // The hash key routes it: the MD5 of its partition key, or its explicit hash key.
    let by_key = strict.prepare(UserRecord::new(stream(), key(1), "data")).unwrap();
    assert_eq!(by_key.hash_key(), partition_key_hash(&key(1)));
    let top = u128::MAX.to_string();
    let by_hash =
        strict.prepare(UserRecord::new(stream(), key(2), "data").with_explicit_hash_key(top)).unwrap();
    assert_eq!(by_hash.hash_key(), u128::MAX);

    let mut h = Harness::new(strict, 4);
    h.start();
    for prepared in [by_key, by_hash] {
        let record = prepared.record().clone();
        let id = h.producer.put_prepared(h.now, prepared).unwrap();
        h.put.insert(id, record);
    }
    // Prepared under a laxer configuration: this producer's own size limit still holds.
    let lax = config().max_record_size(10_000).build().unwrap();
    let large = lax.prepare(UserRecord::new(stream(), key(3), vec![0u8; 2000])).unwrap();
    assert_eq!(
        h.producer.put_prepared(h.now, large),
        Err(PutError::RecordTooLarge { size: 2036, max: 1000 })
    );
    h.producer.flush(h.now, None);
    h.run(Duration::from_secs(5), |_| Reply::Success);
    let shards: Vec<_> =
        h.outcomes.values().map(|o| o.result.as_ref().unwrap().shard_id.to_string()).collect();
    // Key 1's shard (as `put_record` routes it, see the first test), and the last shard for 2^128 − 1.
    let by_key_shard = h.shards.iter().find(|s| s.ending_hash_key >= partition_key_hash(&key(1))).unwrap();
    assert_eq!(shards, vec![by_key_shard.shard_id.to_string(), h.shards[3].shard_id.to_string()]);
}
