//! What a record's result reports after prepared puts, retries, isolation and failures: attempts, the
//! maybe-duplicated flag, and the record handed back (whose data may be a slice of its aggregate).
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{Harness, Reply, first_put_then_success, stream};
use kpl_core::{
    AggregationPolicy, ProducerConfig, PutError, RecordError, Request, RequestError, RequestErrorKind,
    UserRecord,
};

fn key(i: usize) -> String {
    format!("{i:08}-0000-0000-0000-000000000000")
}

#[test]
fn put_prepared_on_a_closed_producer_is_refused() {
    let config = ProducerConfig::builder().build().unwrap();
    let prepared = config.prepare(UserRecord::new(stream(), "k", "v")).unwrap();
    let mut h = Harness::new(config, 1);
    h.start();
    h.producer.close(h.now);
    assert_eq!(h.producer.put_prepared(h.now, prepared), Err(PutError::Closed));
}

#[test]
fn put_prepared_to_a_never_seen_stream_with_explicit_hash_key() {
    let config = ProducerConfig::builder().build().unwrap();
    let other = kpl_core::StreamTarget::name("other-stream");
    let rec = UserRecord::new(other, "k", "v").with_explicit_hash_key("42");
    let prepared = config.prepare(rec).unwrap();
    assert_eq!(prepared.hash_key(), 42);
    let mut p = kpl_core::Producer::new(config, 1);
    assert!(p.put_prepared(common::epoch(), prepared).is_ok());
}

/// Aggregated records failing fatally: the record handed back holds the same data and hash key.
#[test]
fn records_handed_back_from_an_aggregate_hold_their_own_data() {
    let denied = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "no");
    let mut h =
        Harness::new(ProducerConfig::builder().return_user_record_on_failure(true).build().unwrap(), 1);
    h.start();
    let mut ids = Vec::new();
    for i in 0..50 {
        let mut record = UserRecord::new(stream(), key(i), format!("data-{i}").repeat(i + 1).into_bytes());
        if i % 3 == 0 {
            record = record.with_explicit_hash_key(format!("{}", i * 1000));
        }
        let id = h.producer.put_record(h.now, record.clone()).unwrap();
        h.put.insert(id, record);
        ids.push(id);
    }
    h.producer.flush(h.now, None);
    h.run(Duration::ZERO, |_| Reply::Error(denied.clone()));
    let entries: usize =
        h.requests.iter().map(|r| if let Request::PutRecords(p) = r { p.entries.len() } else { 0 }).sum();
    assert!(entries < 50, "aggregated: {entries}");
    for id in ids {
        let failure = h.outcomes[&id].result.clone().unwrap_err();
        assert_eq!(failure.attempts().len(), 1);
        assert!(!failure.maybe_duplicated());
        let returned = failure.into_record().unwrap();
        assert_eq!(returned, h.put[&id]);
    }
}

/// Timeout (ambiguous), then a throttle, then fatal: maybe_duplicated kept across attempts; 3 attempts.
#[test]
fn maybe_duplicated_survives_later_retries_and_failure() {
    let denied = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "no");
    let timeout = RequestError::new(RequestErrorKind::Timeout, None, "no response");
    let mut h =
        Harness::new(ProducerConfig::builder().return_user_record_on_failure(true).build().unwrap(), 1);
    h.start();
    let ids: Vec<_> = (0..20).map(|i| h.put(&key(i), format!("payload-{i}").as_bytes())).collect();
    h.producer.flush(h.now, None);
    let mut n = 0;
    h.run(Duration::from_secs(30), |r| {
        if !matches!(r, Request::PutRecords(_)) {
            return Reply::Success;
        }
        n += 1;
        match n {
            1 => Reply::Error(timeout.clone()),
            2 => Reply::Entries(vec![Some("ProvisionedThroughputExceededException"); 20]),
            _ => Reply::Error(denied.clone()),
        }
    });
    for id in ids {
        let failure = h.outcomes[&id].result.clone().unwrap_err();
        assert_eq!(failure.attempts().len(), 3, "{failure:?}");
        assert!(failure.maybe_duplicated());
        assert_eq!(failure.record().unwrap(), &h.put[&id]);
    }
}

/// Success after a timeout then a throttle: 3 attempts, flagged, last success; data written intact.
#[test]
fn receipts_after_retries_report_every_attempt_and_the_written_data_is_intact() {
    let timeout = RequestError::new(RequestErrorKind::Timeout, None, "no response");
    let mut h = Harness::new(ProducerConfig::builder().build().unwrap(), 2);
    h.start();
    let ids: Vec<_> = (0..300).map(|i| h.put(&key(i), format!("payload-{i}").repeat(5).as_bytes())).collect();
    h.producer.flush(h.now, None);
    let mut n = 0;
    h.run(Duration::from_secs(30), |r| {
        let Request::PutRecords(p) = r else { return Reply::Success };
        n += 1;
        match n {
            1 => Reply::Error(timeout.clone()),
            2 => Reply::Entries(vec![Some("ProvisionedThroughputExceededException"); p.entries.len()]),
            _ => Reply::Success,
        }
    });
    assert_eq!(h.succeeded(), 300);
    let mut flagged = 0;
    for id in &ids {
        let receipt = h.outcomes[id].result.as_ref().unwrap();
        assert!(receipt.attempts.last().unwrap().is_successful());
        assert!(receipt.attempts[..receipt.attempts.len() - 1].iter().all(|a| !a.is_successful()));
        if receipt.maybe_duplicated {
            flagged += 1;
            assert!(
                receipt
                    .attempts
                    .iter()
                    .any(|a| a.error().is_some_and(|e| e.code() != "ProvisionedThroughputExceededException"))
            );
        }
        assert_eq!(receipt.attempts.iter().count(), receipt.attempts.len());
    }
    assert!(flagged > 0);
    // Every record written once in the final successful put (ignoring earlier ambiguous attempts the
    // responder never wrote: the harness writes only on success).
    let mut written: Vec<(String, Vec<u8>)> = h.written.values().flatten().cloned().collect();
    written.sort();
    let mut expected: Vec<(String, Vec<u8>)> =
        h.put.values().map(|r| (r.partition_key.clone(), r.data.to_vec())).collect();
    expected.sort();
    assert_eq!(written, expected);
}

/// Expired { attempts } counts the failed attempts.
#[test]
fn expired_counts_failed_attempts() {
    let down = RequestError::new(RequestErrorKind::Transient, None, "down");
    let mut h = Harness::new(
        ProducerConfig::builder()
            .record_ttl(Duration::from_secs(3))
            .return_user_record_on_failure(true)
            .build()
            .unwrap(),
        1,
    );
    h.start();
    let ids: Vec<_> = (0..10).map(|i| h.put(&key(i), b"v")).collect();
    h.producer.flush(h.now, None);
    let mut puts = 0;
    h.run(Duration::from_secs(10), |r| {
        if matches!(r, Request::PutRecords(_)) {
            puts += 1;
        }
        Reply::Error(down.clone())
    });
    for id in ids {
        let failure = h.outcomes[&id].result.clone().unwrap_err();
        let RecordError::Expired { attempts } = failure.error() else { panic!("{failure:?}") };
        assert_eq!(*attempts, failure.attempts().len());
        assert!(*attempts >= 1);
        assert_eq!(failure.record().unwrap().data, h.put[&id].data);
    }
    assert!(puts >= 1);
}

/// Anonymous InvalidRequest on an aggregate: innocents isolated and written, not flagged maybe_duplicated,
/// 2 attempts; culprit fails with 2 attempts and its data handed back intact.
#[test]
fn isolated_records_report_attempts_and_flags() {
    let anonymous =
        RequestError::new(RequestErrorKind::InvalidRequest, Some("ValidationException"), "too big");
    let mut h =
        Harness::new(ProducerConfig::builder().return_user_record_on_failure(true).build().unwrap(), 1);
    h.start();
    let ids: Vec<_> = (0..5).map(|i| h.put(&format!("k{i}"), format!("ok-{i}").as_bytes())).collect();
    let culprit = h.put("bad", b"too big for this stream");
    h.producer.flush(h.now, None);
    let holds = |p: &kpl_core::PutRecordsRequest| {
        p.entries.iter().any(|e| e.data.windows(7).any(|w| w == b"too big"))
    };
    h.run(Duration::from_secs(2), |r| match r {
        Request::PutRecords(p) if holds(p) => Reply::Error(anonymous.clone()),
        _ => Reply::Success,
    });
    let failure = h.outcomes[&culprit].result.clone().unwrap_err();
    assert_eq!(failure.attempts().len(), 2);
    assert!(!failure.maybe_duplicated());
    assert_eq!(failure.record().unwrap().data, &b"too big for this stream"[..]);
    for id in ids {
        let r = h.outcomes[&id].result.as_ref().unwrap();
        assert_eq!(r.attempts.len(), 2);
        assert!(!r.maybe_duplicated);
    }
    // Then: a later record with the same key, unflagged, is aggregated again (isolation is per record).
    let a = h.put("k0", b"again-0");
    let b = h.put("k1", b"again-1");
    h.producer.flush(h.now, None);
    let before = h.requests.len();
    h.run(Duration::from_secs(2), |_| Reply::Success);
    assert!(h.outcomes[&a].result.is_ok() && h.outcomes[&b].result.is_ok());
    let puts: Vec<usize> = h.requests[before..]
        .iter()
        .filter_map(|r| if let Request::PutRecords(p) = r { Some(p.entries.len()) } else { None })
        .collect();
    assert_eq!(puts, vec![1]);
}

/// Aggregation off and explicit hash keys: receipts and flags, first-try success allocs aside.
#[test]
fn unaggregated_prepared_records_with_explicit_keys_after_throttle() {
    let config = ProducerConfig::builder().aggregation(AggregationPolicy::Off).build().unwrap();
    let prepared: Vec<_> = (0..4u128)
        .map(|i| {
            config
                .prepare(
                    UserRecord::new(stream(), "same", format!("d{i}"))
                        .with_explicit_hash_key((i << 126).to_string()),
                )
                .unwrap()
        })
        .collect();
    let mut h = Harness::new(config, 4);
    h.start();
    let mut ids = Vec::new();
    for p in prepared {
        let r = p.record().clone();
        let id = h.producer.put_prepared(h.now, p).unwrap();
        h.put.insert(id, r);
        ids.push(id);
    }
    h.producer.flush(h.now, None);
    h.run(
        Duration::from_secs(10),
        first_put_then_success(Reply::Entries(vec![Some("ProvisionedThroughputExceededException"); 4])),
    );
    let shards: Vec<String> =
        ids.iter().map(|id| h.outcomes[id].result.as_ref().unwrap().shard_id.to_string()).collect();
    let expected: Vec<String> = h.shards.iter().map(|s| s.shard_id.to_string()).collect();
    assert_eq!(shards, expected);
}

/// Wrong shard after a split, with return_user_record_on_failure: the re-aggregated records (their data
/// slices of the first aggregate) are written intact, and flagged.
#[test]
fn wrong_shard_retries_write_each_records_own_data() {
    let mut h =
        Harness::new(ProducerConfig::builder().return_user_record_on_failure(true).build().unwrap(), 1);
    h.start();
    let mut split = common::even_shards(2);
    for shard in &mut split {
        shard.shard_id = format!("{}-child", shard.shard_id).as_str().into();
    }
    h.shards = split;
    let ids: Vec<_> =
        (0..200).map(|i| h.put(&key(i), format!("payload-{i}-").repeat(i % 7 + 1).as_bytes())).collect();
    h.producer.flush(h.now, None);
    h.run(Duration::from_secs(10), |_| Reply::Success);
    assert_eq!(h.succeeded(), 200);
    let mut flagged = 0;
    for id in &ids {
        let receipt = h.outcomes[id].result.as_ref().unwrap();
        let record = &h.put[id];
        let log = &h.written[&receipt.shard_id.to_string()];
        assert!(log.contains(&(record.partition_key.clone(), record.data.to_vec())), "{id:?}");
        if receipt.attempts.len() > 1 {
            assert!(receipt.maybe_duplicated);
            flagged += 1;
        } else {
            assert!(!receipt.maybe_duplicated);
        }
    }
    assert!(flagged > 0);
}
