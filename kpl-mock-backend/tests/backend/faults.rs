//! Latency, ordering, injected faults and determinism.

use kpl_core::{PutRecordsResultEntry, RequestErrorKind, RequestId, Response};
use kpl_mock_backend::{FaultCounts, Faults, MockConfig, MockKinesis, MockStats, RequestFaults};

use crate::*;

const TIMEOUT: Duration = Duration::from_secs(6);

fn with_faults(faults: Faults) -> MockKinesis {
    kinesis(MockConfig { faults, ..steady() }, 2)
}

fn put_faults(faults: RequestFaults) -> MockKinesis {
    with_faults(Faults { put_records: faults, ..Faults::NONE })
}

fn list_faults(faults: RequestFaults) -> MockKinesis {
    with_faults(Faults { list_shards: faults, ..Faults::NONE })
}

fn some_entries() -> Vec<kpl_core::PutRecordsEntry> {
    vec![entry("a", None, "1"), entry("b", None, "2"), entry("c", None, "3")]
}

#[test]
fn a_dropped_request_times_out_and_writes_nothing() {
    let mut kinesis = put_faults(RequestFaults { drop_request: 1.0, ..RequestFaults::NONE });
    let (due, response) = call(&mut kinesis, epoch(), 1, put(some_entries()));
    assert_eq!(due, epoch() + TIMEOUT);
    let error = put_error(response);
    assert_eq!((error.kind, error.code), (RequestErrorKind::Timeout, None));
    assert_eq!(committed_count(&kinesis), 0);
    let (_, response) = call(&mut kinesis, epoch(), 2, list(None, 10, true));
    assert_eq!(list_page(response).shards.len(), 2, "ListShards has its own faults");
    assert_eq!(kinesis.stats().faults.dropped_requests, 1);
    assert_eq!(kinesis.stats().faults.total(), 1);

    let mut kinesis = list_faults(RequestFaults { drop_request: 1.0, ..RequestFaults::NONE });
    let (due, response) = call(&mut kinesis, epoch(), 1, list(None, 10, true));
    assert_eq!((due, list_error(response).kind), (epoch() + TIMEOUT, RequestErrorKind::Timeout));
}

#[test]
fn a_lost_response_times_out_but_the_records_are_written() {
    let mut kinesis = put_faults(RequestFaults { lose_response: 1.0, ..RequestFaults::NONE });
    let (due, response) = call(&mut kinesis, epoch(), 4, put(some_entries()));
    assert_eq!(due, epoch() + TIMEOUT);
    assert_eq!(put_error(response).kind, RequestErrorKind::Timeout);
    assert_eq!(committed_count(&kinesis), 3);
    for (_, shard) in kinesis.all_shards() {
        assert!(
            shard.committed().iter().all(|record| record.response_lost && record.request_id == RequestId(4))
        );
    }
    let stats = kinesis.stats();
    assert_eq!((stats.faults.lost_responses, stats.entries_committed), (1, 3));
}

#[test]
fn a_duplicated_response_arrives_twice_for_one_write() {
    let mut kinesis = put_faults(RequestFaults { duplicate_response: 1.0, ..RequestFaults::NONE });
    kinesis.handle_request(epoch(), RequestId(5), put(some_entries())).unwrap();
    assert_eq!(kinesis.pending_responses(), 2);
    let answers: Vec<_> = std::iter::from_fn(|| kinesis.poll_response(epoch() + ms(10))).collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, RequestId(5));
    assert_eq!(put_results(answers[0].1.clone()).len(), 3);
    assert_eq!(committed_count(&kinesis), 3);
    assert_eq!(kinesis.stats().faults.duplicated_responses, 1);
}

#[test]
fn whole_request_throttling_500_and_503() {
    type Case = (fn(&mut RequestFaults), RequestErrorKind, &'static str, &'static str, &'static str);
    let cases: [Case; 3] = [
        (
            |f| f.throttle = 1.0,
            RequestErrorKind::Throttling,
            "ProvisionedThroughputExceededException",
            "LimitExceededException",
            "Rate exceeded for stream orders under account 123456789012.",
        ),
        (
            |f| f.internal_failure = 1.0,
            RequestErrorKind::Transient,
            "InternalFailure",
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        ),
        (
            |f| f.service_unavailable = 1.0,
            RequestErrorKind::Transient,
            "ServiceUnavailable",
            "ServiceUnavailable",
            "The request has failed due to a temporary failure of the server.",
        ),
    ];
    for (set, kind, put_code, list_code, message) in cases {
        let mut faults = RequestFaults::NONE;
        set(&mut faults);
        let mut kinesis = with_faults(Faults { put_records: faults, list_shards: faults, ..Faults::NONE });
        let (due, response) = call(&mut kinesis, epoch(), 1, put(some_entries()));
        assert_eq!(due, epoch() + ms(10), "answered after the usual latency");
        assert_error(&put_error(response), kind, put_code, message);
        assert_error(
            &list_error(call(&mut kinesis, epoch(), 2, list(None, 10, true)).1),
            kind,
            list_code,
            message,
        );
        assert_eq!(committed_count(&kinesis), 0);
        let counts = kinesis.stats().faults;
        assert_eq!(
            [counts.throttled_requests, counts.internal_failures, counts.service_unavailable]
                .iter()
                .sum::<u64>(),
            2
        );
        assert_eq!(kinesis.stats().rejected_requests, 0, "faults are not rejections");
    }
}

#[test]
fn entry_internal_failures_fail_entries_alone() {
    let mut kinesis = with_faults(Faults { entry_internal_failure: 1.0, ..Faults::NONE });
    let results = put_ok(&mut kinesis, epoch(), some_entries());
    for result in &results {
        assert_eq!(
            *result,
            PutRecordsResultEntry::Failure {
                error_code: "InternalFailure".to_owned(),
                error_message: "Internal service failure.".to_owned()
            }
        );
    }
    assert_eq!(committed_count(&kinesis), 0);
    assert_eq!(kinesis.stats().faults.entry_internal_failures, 3);
    // Half the entries, roughly, at 0.5.
    let mut kinesis = with_faults(Faults { entry_internal_failure: 0.5, ..Faults::NONE });
    let results = put_ok(&mut kinesis, epoch(), (0..400).map(|i| entry(&i.to_string(), None, "x")).collect());
    let failed = results.iter().filter(|r| matches!(r, PutRecordsResultEntry::Failure { .. })).count();
    assert!((150..250).contains(&failed), "{failed}");
    assert_eq!(committed_count(&kinesis), 400 - failed);
}

#[test]
fn faults_at_probability_zero_never_fire() {
    let mut kinesis = kinesis(MockConfig::calm(), 4);
    let mut now = epoch();
    for id in 0..300 {
        now += ms(100);
        let request = if id % 10 == 0 { list(None, 100, false) } else { put(some_entries()) };
        let (due, response) = call(&mut kinesis, now, id, request);
        assert!(due >= now + ms(20) && due <= now + ms(30), "calm latency is 20 ms ± 10 ms");
        assert!(!matches!(response, Response::PutRecords(Err(_)) | Response::ListShards(Err(_))));
    }
    let stats = kinesis.stats();
    assert_eq!(stats.faults.total(), 0);
    assert_eq!(
        (stats.put_records_requests, stats.list_shards_requests, stats.entries_committed),
        (270, 30, 810)
    );
}

#[test]
fn responses_come_in_due_order_ties_by_request_id() {
    let mut kinesis = kinesis(steady(), 1);
    let t0 = epoch();
    kinesis.handle_request(t0 + ms(5), RequestId(1), put(some_entries())).unwrap();
    kinesis.handle_request(t0, RequestId(9), put(some_entries())).unwrap();
    kinesis.handle_request(t0, RequestId(3), list(None, 10, true)).unwrap();
    assert_eq!(kinesis.pending_responses(), 3);
    assert_eq!(kinesis.poll_timeout(), Some(t0 + ms(10)));
    assert!(kinesis.poll_response(t0 + ms(9)).is_none());
    let order: Vec<_> =
        std::iter::from_fn(|| kinesis.poll_response(t0 + ms(20))).map(|(id, _)| id.0).collect();
    assert_eq!(order, [3, 9, 1]);
    assert_eq!(kinesis.poll_timeout(), None);
}

#[test]
fn jitter_spreads_responses_and_reorders_them() {
    let config = MockConfig { latency: ms(50), jitter: ms(200), ..MockConfig::calm() };
    let mut kinesis = kinesis(config, 1);
    for id in 0..100 {
        kinesis.handle_request(epoch(), RequestId(id), list(None, 10, true)).unwrap();
    }
    let mut answers = Vec::new();
    while let Some(due) = kinesis.poll_timeout() {
        let (id, _) = kinesis.poll_response(due).unwrap();
        assert!(due >= epoch() + ms(50) && due <= epoch() + ms(250));
        answers.push((due, id.0));
    }
    assert_eq!(answers.len(), 100);
    assert!(answers.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    assert!(answers.windows(2).any(|pair| pair[0].1 > pair[1].1), "some responses overtake others");
}

/// A hostile run: requests to a resharding stream over a few virtual seconds; every response with its
/// time offset, plus the final counters.
fn hostile_run(seed: u64) -> (Vec<(Duration, RequestId, Response)>, MockStats) {
    let mut kinesis = MockKinesis::new(MockConfig::hostile(), seed).unwrap();
    kinesis.create_stream(STREAM, 4).unwrap();
    let mut trace = Vec::new();
    let mut now = epoch();
    for id in 0..400u64 {
        now += ms(7);
        if id == 200 {
            kinesis.split_shard(now, STREAM, "shardId-000000000001", (1 << 126) + (1 << 120)).unwrap();
        }
        let request = if id % 25 == 0 {
            list(None, 2, id % 50 == 0)
        } else {
            put((0..(id % 40 + 1)).map(|i| entry(&format!("key-{id}-{i}"), None, vec![0u8; 1000])).collect())
        };
        kinesis.handle_request(now, RequestId(id), request).unwrap();
        while let Some((answered, response)) = kinesis.poll_response(now) {
            trace.push((now - epoch(), answered, response));
        }
    }
    while let Some(due) = kinesis.poll_timeout() {
        let (answered, response) = kinesis.poll_response(due).unwrap();
        trace.push((due - epoch(), answered, response));
    }
    (trace, *kinesis.stats())
}

#[test]
fn the_same_seed_gives_the_same_responses() {
    let (first, first_stats) = hostile_run(2024);
    let (second, second_stats) = hostile_run(2024);
    assert_eq!(first.len() as u64, 400 + first_stats.faults.duplicated_responses);
    assert_eq!(first, second);
    assert_eq!(first_stats, second_stats);
    let (other, other_stats) = hostile_run(2025);
    assert_ne!(first, other);
    assert_ne!(first_stats, other_stats);
    // The hostile preset injects every kind of fault over such a run.
    let FaultCounts {
        dropped_requests,
        lost_responses,
        duplicated_responses,
        throttled_requests,
        internal_failures,
        service_unavailable,
        entry_internal_failures,
    } = first_stats.faults;
    for count in [
        dropped_requests,
        lost_responses,
        duplicated_responses,
        throttled_requests,
        internal_failures,
        service_unavailable,
        entry_internal_failures,
    ] {
        assert!(count > 0, "{first_stats}");
    }
    let report = first_stats.to_string();
    assert!(report.starts_with("requests: 16 ListShards, 384 PutRecords, 0 rejected; entries: "), "{report}");
    assert!(
        report.contains(&format!("{dropped_requests} dropped, {lost_responses} lost responses")),
        "{report}"
    );
}

#[test]
fn faults_can_be_healed() {
    let mut kinesis = with_faults(Faults {
        put_records: RequestFaults { drop_request: 1.0, ..RequestFaults::NONE },
        ..Faults::NONE
    });
    assert_eq!(
        put_error(call(&mut kinesis, epoch(), 1, put(some_entries())).1).kind,
        RequestErrorKind::Timeout
    );
    kinesis.set_faults(Faults::NONE).unwrap();
    assert_eq!(put_ok(&mut kinesis, epoch(), some_entries()).len(), 3);
    let mut bad = Faults::NONE;
    bad.list_shards.throttle = -0.1;
    assert!(kinesis.set_faults(bad).is_err());
    assert_eq!(kinesis.config().faults, Faults::NONE);
}
