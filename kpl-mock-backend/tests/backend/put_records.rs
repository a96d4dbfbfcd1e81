//! `PutRecords`: validation as the service does it, results, sequence numbers and per-shard limits.

use kpl_core::{PutRecordsResultEntry, RequestErrorKind};
use kpl_mock_backend::{MIB, MockKinesis};

use crate::*;

/// Content refusals: only the entries that caused them fail (see `RequestErrorKind::InvalidRequest`).
const VALIDATION: RequestErrorKind = RequestErrorKind::InvalidRequest;

/// Asserts a request is refused with `ValidationException` and `message`, and writes nothing.
fn assert_invalid(
    kinesis: &mut MockKinesis,
    entries: Vec<kpl_core::PutRecordsEntry>,
    code: &str,
    message: &str,
) {
    let error = put_err(kinesis, epoch(), entries);
    assert_error(&error, VALIDATION, code, message);
    assert_eq!(committed_count(kinesis), 0);
}

#[test]
fn entry_count_must_be_1_to_500() {
    let mut kinesis = kinesis(steady(), 1);
    assert_invalid(
        &mut kinesis,
        vec![],
        "ValidationException",
        "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length \
         greater than or equal to 1",
    );
    assert_invalid(
        &mut kinesis,
        vec![entry("k", None, "x"); 501],
        "ValidationException",
        "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length \
         less than or equal to 500",
    );
    let mut unlimited = kinesis_without_limits(1);
    assert_eq!(put_ok(&mut unlimited, epoch(), vec![entry("k", None, "x"); 500]).len(), 500);
}

fn kinesis_without_limits(shards: u32) -> MockKinesis {
    kinesis(MockConfig { shard_limits: None, ..steady() }, shards)
}

#[test]
fn partition_keys_must_have_1_to_256_utf16_code_units() {
    let mut kinesis = kinesis(steady(), 1);
    assert_invalid(
        &mut kinesis,
        vec![entry("ok", None, "x"), entry("", None, "x")],
        "ValidationException",
        "1 validation error detected: Value '' at 'records.2.member.partitionKey' failed to satisfy constraint: \
         Member must have length greater than or equal to 1",
    );
    let long = "k".repeat(257);
    assert_invalid(
        &mut kinesis,
        vec![entry(&long, None, "x")],
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{long}' at 'records.1.member.partitionKey' failed to satisfy \
             constraint: Member must have length less than or equal to 256"
        ),
    );
    // UTF-16 code units, as the service and kinesalite count: 129 characters outside the BMP are 258 units,
    // but 128 of them are fine, and so are 256 two-byte characters.
    let too_many = "\u{1F511}".repeat(129);
    assert_invalid(
        &mut kinesis,
        vec![entry("ok", None, "x"), entry(&too_many, None, "x")],
        "ValidationException",
        &format!(
            "1 validation error detected: Value '{too_many}' at 'records.2.member.partitionKey' failed to satisfy \
             constraint: Member must have length less than or equal to 256"
        ),
    );
    let wide = "é".repeat(256);
    assert_eq!(put_ok(&mut kinesis, epoch(), vec![entry(&wide, None, "x")]).len(), 1);
    let keys = "\u{1F511}".repeat(128);
    assert_eq!(put_ok(&mut kinesis, epoch(), vec![entry(&keys, None, "x")]).len(), 1);
}

#[test]
fn explicit_hash_keys_must_be_decimal_and_at_most_2_pow_128_minus_1() {
    let mut kinesis = kinesis(steady(), 1);
    for bad in ["", "01", "-1", "12a", "1".repeat(40).as_str()] {
        let mut bad_entry = entry("k", None, "x");
        bad_entry.explicit_hash_key = Some(bad.to_owned());
        assert_invalid(
            &mut kinesis,
            vec![bad_entry],
            "ValidationException",
            &format!(
                "1 validation error detected: Value '{bad}' at 'records.1.member.explicitHashKey' failed to \
                 satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}})"
            ),
        );
    }
    // 39 digits match the pattern; above 2^128 - 1 is an invalid argument instead.
    let mut above = entry("k", None, "x");
    above.explicit_hash_key = Some("340282366920938463463374607431768211456".to_owned());
    assert_invalid(
        &mut kinesis,
        vec![above],
        "InvalidArgumentException",
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was \
         340282366920938463463374607431768211456",
    );
    let results =
        put_ok(&mut kinesis, epoch(), vec![entry("k", Some(0), "x"), entry("k", Some(u128::MAX), "x")]);
    assert_eq!(results.len(), 2);
}

#[test]
fn records_must_fit_the_record_size_limit_with_their_partition_key() {
    let mut kinesis = kinesis_without_limits(1);
    assert_invalid(
        &mut kinesis,
        vec![entry("k", None, vec![0u8; MIB + 1])],
        "ValidationException",
        "1 validation error detected: Value at 'records.1.member.data' failed to satisfy constraint: Member must \
         have length less than or equal to 1048576",
    );
    assert_invalid(
        &mut kinesis,
        vec![entry("k", None, "x"), entry("key", None, vec![0u8; MIB - 2])],
        "InvalidArgumentException",
        "Record size of 1048577 bytes (data and partition key) at 'records.2' exceeds the maximum record size of \
         1048576 bytes.",
    );
    assert_eq!(put_ok(&mut kinesis, epoch(), vec![entry("key", None, vec![0u8; MIB - 3])]).len(), 1);
    // A stream of 10 MiB records.
    let mut large =
        crate::kinesis(MockConfig { max_record_size: 10 * MIB, max_request_size: 10 * MIB, ..steady() }, 1);
    assert_eq!(put_ok(&mut large, epoch(), vec![entry("k", None, vec![0u8; 10 * MIB - 1])]).len(), 1);
}

#[test]
fn requests_must_fit_5_mib_with_their_partition_keys() {
    let mut kinesis = kinesis_without_limits(1);
    // Five records of exactly 1 MiB each (data + key): 5 MiB, accepted.
    let full = || entry("k", None, vec![0u8; MIB - 1]);
    assert_eq!(put_ok(&mut kinesis, epoch(), vec![full(); 5]).len(), 5);
    let mut entries = vec![full(); 5];
    entries.push(entry("k", None, ""));
    let error = put_err(&mut kinesis, epoch(), entries);
    assert_error(&error, VALIDATION, "InvalidArgumentException", "Records size exceeds 5 MB limit");
    assert_eq!(committed_count(&kinesis), 5);
}

#[test]
fn every_constraint_violation_is_listed() {
    let mut kinesis = kinesis(steady(), 1);
    let mut bad_key = entry("k", None, "x");
    bad_key.explicit_hash_key = Some("x".to_owned());
    assert_invalid(
        &mut kinesis,
        vec![entry("", None, "x"), bad_key],
        "ValidationException",
        "2 validation errors detected: Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: \
         Member must have length greater than or equal to 1; Value 'x' at 'records.2.member.explicitHashKey' \
         failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
    );
}

#[test]
fn validation_comes_before_the_stream_lookup() {
    let mut kinesis = MockKinesis::new(steady(), 1).unwrap();
    let error = put_err(&mut kinesis, epoch(), vec![entry("", None, "x")]);
    assert_error(&error, VALIDATION, "ValidationException", "1 validation error detected: …");
    let mut above = entry("k", None, "x");
    above.explicit_hash_key = Some("340282366920938463463374607431768211456".to_owned());
    let error = put_err(&mut kinesis, epoch(), vec![above]);
    assert_eq!(error.kind, RequestErrorKind::StreamNotFound);
}

#[test]
fn results_keep_request_order_and_sequence_numbers_increase_per_shard() {
    let mut kinesis = kinesis(steady(), 2);
    let half = u128::MAX / 2;
    let keys = [0, half + 1, 5, half + 7, 9];
    let mut last_seen: Vec<(String, String)> = Vec::new();
    for round in 0..3u64 {
        let entries = keys.iter().map(|&key| entry("k", Some(key), format!("{round}-{key}"))).collect();
        let results = put_ok(&mut kinesis, epoch() + ms(round), entries);
        for (result, &key) in results.iter().zip(&keys) {
            let (shard, sequence) = written(result);
            assert_eq!(shard, if key > half { "shardId-000000000001" } else { "shardId-000000000000" });
            assert_eq!(sequence.len(), 56);
            assert!(sequence.bytes().all(|b| b.is_ascii_digit()));
            if let Some((_, previous)) = last_seen.iter().rev().find(|(s, _)| s == shard) {
                assert!(sequence > previous.as_str(), "{sequence} after {previous}");
            }
            last_seen.push((shard.to_owned(), sequence.to_owned()));
        }
    }
    for shard in kinesis.shards(STREAM).unwrap() {
        let log = shard.committed();
        assert_eq!(log.len(), if shard.id().as_str().ends_with('0') { 9 } else { 6 });
        assert!(log.windows(2).all(|pair| pair[0].sequence_number < pair[1].sequence_number));
        assert!(log.iter().all(|record| &record.shard_id == shard.id() && record.request_id == RequestId(1)));
    }
    let first = &kinesis.committed(STREAM, "shardId-000000000000").unwrap()[0];
    assert_eq!((first.partition_key.as_str(), first.explicit_hash_key.as_deref()), ("k", Some("0")));
    assert_eq!((&first.data[..], first.arrival), (&b"0-0"[..], epoch()));
    let stats = kinesis.stats();
    assert_eq!((stats.put_records_requests, stats.entries_received, stats.entries_committed), (3, 15, 15));
}

/// `count` one-byte records with the key `k` at `now` on a one-shard stream; how many were throttled.
fn throttled(kinesis: &mut MockKinesis, now: Instant, count: usize) -> usize {
    let results = put_ok(kinesis, now, vec![entry("k", None, "x"); count]);
    let failures: Vec<_> =
        results.iter().filter(|r| matches!(r, PutRecordsResultEntry::Failure { .. })).collect();
    for failure in &failures {
        assert_eq!(
            **failure,
            PutRecordsResultEntry::Failure {
                error_code: "ProvisionedThroughputExceededException".to_owned(),
                error_message: "Rate exceeded for shard shardId-000000000000 in stream orders under account \
                                123456789012."
                    .to_owned(),
            }
        );
    }
    failures.len()
}

#[test]
fn a_shard_takes_1000_records_per_rolling_second() {
    let mut kinesis = kinesis(steady(), 1);
    let t0 = epoch();
    assert_eq!(throttled(&mut kinesis, t0, 500), 0);
    assert_eq!(throttled(&mut kinesis, t0, 500), 0);
    assert_eq!(throttled(&mut kinesis, t0, 1), 1);
    // A millisecond refills one record.
    assert_eq!(throttled(&mut kinesis, t0 + ms(1), 2), 1);
    // Half a second refills half.
    assert_eq!(throttled(&mut kinesis, t0 + ms(501), 500), 0);
    assert_eq!(throttled(&mut kinesis, t0 + ms(501), 1), 1);
    // A second after that, a full second's worth again.
    assert_eq!(throttled(&mut kinesis, t0 + ms(1501), 500), 0);
    assert_eq!(throttled(&mut kinesis, t0 + ms(1501), 500), 0);
    assert_eq!(throttled(&mut kinesis, t0 + ms(1501), 500), 500);
    let stats = kinesis.stats();
    assert_eq!((stats.entries_committed, stats.entries_throttled), (2501, 503));
    assert_eq!(stats.faults.total(), 0);
}

#[test]
fn a_shard_takes_1_mib_per_rolling_second_counting_partition_keys() {
    let mut kinesis = kinesis(steady(), 1);
    let t0 = epoch();
    // 1 MiB = 8 records of 128 KiB, key included.
    let record = || entry("key", None, vec![0u8; 128 * 1024 - 3]);
    let results = put_ok(&mut kinesis, t0, vec![record(); 9]);
    assert!(results[..8].iter().all(|r| matches!(r, PutRecordsResultEntry::Success { .. })));
    assert_eq!(failure_code(&results[8]), "ProvisionedThroughputExceededException");
    // 125 ms refill 128 KiB.
    let results = put_ok(&mut kinesis, t0 + ms(125), vec![record(); 2]);
    written(&results[0]);
    assert_eq!(failure_code(&results[1]), "ProvisionedThroughputExceededException");
}

#[test]
fn throttled_entries_fail_alone_and_other_shards_take_theirs() {
    let mut kinesis = kinesis(steady(), 2);
    let t0 = epoch();
    let lower = || entry("k", Some(1), "x");
    let upper = || entry("k", Some(u128::MAX), "x");
    assert_eq!(put_ok(&mut kinesis, t0, vec![lower(); 500]).len(), 500);
    assert_eq!(put_ok(&mut kinesis, t0, vec![lower(); 500]).len(), 500);
    let results = put_ok(&mut kinesis, t0, vec![lower(), upper(), lower(), upper()]);
    assert_eq!(failure_code(&results[0]), "ProvisionedThroughputExceededException");
    assert_eq!(written(&results[1]).0, "shardId-000000000001");
    assert_eq!(failure_code(&results[2]), "ProvisionedThroughputExceededException");
    assert_eq!(written(&results[3]).0, "shardId-000000000001");
    // Split children start with full buckets.
    kinesis.split_shard(t0, STREAM, "shardId-000000000000", 1 << 64).unwrap();
    assert_eq!(
        put_ok(&mut kinesis, t0, vec![lower(); 500]).iter().filter(|r| written(r).0.ends_with('2')).count(),
        500
    );
}

#[test]
fn limits_can_be_switched_off() {
    let mut kinesis = kinesis_without_limits(1);
    for _ in 0..10 {
        assert_eq!(throttled(&mut kinesis, epoch(), 500), 0);
    }
    assert_eq!(committed_count(&kinesis), 5000);
}

#[test]
fn without_retention_only_counters_and_sequence_numbers_advance() {
    let mut kinesis = kinesis(MockConfig { shard_limits: None, retain_committed: false, ..steady() }, 1);
    let results = put_ok(&mut kinesis, epoch(), vec![entry("key", None, "data"); 3]);
    assert_eq!(results.len(), 3);
    assert_eq!(committed_count(&kinesis), 0);
    assert_eq!(kinesis.stats().entries_committed, 3);
    assert_eq!(kinesis.stats().bytes_committed, 3 * 7);
    let sequence_numbers: Vec<_> = results
        .iter()
        .map(|r| match r {
            PutRecordsResultEntry::Success { sequence_number, .. } => sequence_number.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(sequence_numbers.windows(2).all(|pair| pair[0] < pair[1]));
}
