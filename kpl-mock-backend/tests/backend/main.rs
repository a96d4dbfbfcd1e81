//! The mock driven through its public API, as a simulation drives it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod layout;
mod list_shards;
mod put_records;
mod resharding;
mod round_trip;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kpl_core::{
    ListShardsOutput, ListShardsRequest, PutRecordsEntry, PutRecordsRequest, PutRecordsResultEntry, Request,
    RequestError, RequestErrorKind, RequestId, Response, ShardDescription, StreamTarget,
};
use kpl_mock_backend::{MockConfig, MockKinesis};

/// The stream every test writes to.
pub const STREAM: &str = "orders";

/// A fixed starting instant: the mock never reads the clock, tests add virtual time to this.
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `millis` milliseconds.
pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// Kinesis's limits, no faults, a fixed 10 ms latency.
pub fn steady() -> MockConfig {
    MockConfig { latency: ms(10), jitter: Duration::ZERO, ..MockConfig::calm() }
}

/// A mock with the stream [`STREAM`] of `shards` shards.
pub fn kinesis(config: MockConfig, shards: u32) -> MockKinesis {
    let mut kinesis = MockKinesis::new(config, 7).unwrap();
    kinesis.create_stream(STREAM, shards).unwrap();
    kinesis
}

/// A `PutRecords` entry.
pub fn entry(
    partition_key: &str,
    explicit_hash_key: Option<u128>,
    data: impl Into<Bytes>,
) -> PutRecordsEntry {
    PutRecordsEntry {
        partition_key: partition_key.to_owned(),
        explicit_hash_key: explicit_hash_key.map(|key| key.to_string()),
        data: data.into(),
    }
}

/// `PutRecords` of `entries` to [`STREAM`].
pub fn put(entries: Vec<PutRecordsEntry>) -> Request {
    Request::PutRecords(PutRecordsRequest::new(StreamTarget::name(STREAM), entries))
}

/// `ListShards` of [`STREAM`].
pub fn list(next_token: Option<String>, max_results: u32, only_open_shards: bool) -> Request {
    Request::ListShards(ListShardsRequest {
        stream: StreamTarget::name(STREAM),
        next_token,
        max_results,
        only_open_shards,
    })
}

/// Sends one request at `now` and waits for its answer, the only one pending. Returns when it came and
/// what it was.
pub fn call(kinesis: &mut MockKinesis, now: Instant, id: u64, request: Request) -> (Instant, Response) {
    assert_eq!(kinesis.pending_responses(), 0);
    kinesis.handle_request(now, RequestId(id), request).unwrap();
    let due = kinesis.poll_timeout().expect("an answer is pending");
    assert!(kinesis.poll_response(due - Duration::from_nanos(1)).is_none(), "not due before its time");
    let (answered, response) = kinesis.poll_response(due).expect("due");
    assert_eq!(answered, RequestId(id));
    assert_eq!(kinesis.poll_timeout(), None);
    (due, response)
}

/// The entry results of a successful `PutRecords`; panics otherwise.
pub fn put_results(response: Response) -> Vec<PutRecordsResultEntry> {
    match response {
        Response::PutRecords(Ok(results)) => results,
        other => panic!("expected PutRecords results, got {other:?}"),
    }
}

/// The error of a failed `PutRecords`; panics otherwise.
pub fn put_error(response: Response) -> RequestError {
    match response {
        Response::PutRecords(Err(error)) => error,
        other => panic!("expected a PutRecords error, got {other:?}"),
    }
}

/// The page of a successful `ListShards`; panics otherwise.
pub fn list_page(response: Response) -> ListShardsOutput {
    match response {
        Response::ListShards(Ok(page)) => page,
        other => panic!("expected a ListShards page, got {other:?}"),
    }
}

/// The error of a failed `ListShards`; panics otherwise.
pub fn list_error(response: Response) -> RequestError {
    match response {
        Response::ListShards(Err(error)) => error,
        other => panic!("expected a ListShards error, got {other:?}"),
    }
}

/// Sends a PutRecords request and returns its per-entry results.
pub fn put_ok(
    kinesis: &mut MockKinesis,
    now: Instant,
    entries: Vec<PutRecordsEntry>,
) -> Vec<PutRecordsResultEntry> {
    put_results(call(kinesis, now, 1, put(entries)).1)
}

/// Sends a PutRecords request that must fail as a whole; returns its error.
pub fn put_err(kinesis: &mut MockKinesis, now: Instant, entries: Vec<PutRecordsEntry>) -> RequestError {
    put_error(call(kinesis, now, 1, put(entries)).1)
}

/// Every page of a listing, concatenated.
pub fn list_all(
    kinesis: &mut MockKinesis,
    now: Instant,
    only_open: bool,
    page_size: u32,
) -> Vec<ShardDescription> {
    let mut shards = Vec::new();
    let mut token = None;
    loop {
        let page = list_page(call(kinesis, now, 1, list(token, page_size, only_open)).1);
        assert!(page.shards.len() <= page_size as usize);
        shards.extend(page.shards);
        match page.next_token {
            Some(next) => token = Some(next),
            None => return shards,
        }
    }
}

/// The shard an entry was written to, and its sequence number; panics on a failed entry.
pub fn written(result: &PutRecordsResultEntry) -> (&str, &str) {
    match result {
        PutRecordsResultEntry::Success { shard_id, sequence_number } => (shard_id.as_str(), sequence_number),
        PutRecordsResultEntry::Failure { error_code, error_message } => {
            panic!("entry failed: {error_code}: {error_message}")
        }
    }
}

/// The error code of a failed entry; panics on a written one.
pub fn failure_code(result: &PutRecordsResultEntry) -> &str {
    match result {
        PutRecordsResultEntry::Failure { error_code, .. } => error_code,
        PutRecordsResultEntry::Success { shard_id, .. } => panic!("entry written to {shard_id}"),
    }
}

/// Asserts a whole-request error's class, code and message (or message start, ending with `…`).
pub fn assert_error(error: &RequestError, kind: RequestErrorKind, code: &str, message: &str) {
    assert_eq!(error.kind, kind, "{error}");
    assert_eq!(error.code.as_deref(), Some(code), "{error}");
    match message.strip_suffix('…') {
        Some(start) => assert!(error.message.starts_with(start), "{error}"),
        None => assert_eq!(error.message, message),
    }
}

/// Records committed to the whole stream.
pub fn committed_count(kinesis: &MockKinesis) -> usize {
    kinesis.all_shards().map(|(_, shard)| shard.committed().len()).sum()
}
