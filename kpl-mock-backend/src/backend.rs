//! The simulated service: requests in, responses out, on the caller's clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kpl_core::{
    ListShardsOutput, ListShardsRequest, PutRecordsRequest, PutRecordsResultEntry, Request, RequestError,
    RequestErrorKind, RequestId, Response, ShardId, StreamTarget,
};

use crate::config::{ConfigError, Faults, MockConfig, RequestFaults};
use crate::error::MockError;
use crate::stats::MockStats;
use crate::stream::{Commit, CommittedRecord, Shard, Stream};
use crate::validate::{check_arguments, check_constraints, client_error};
use kpl_core::SplitMix64;

/// How long a `ListShards` `NextToken` stays valid, as in the service.
pub const NEXT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The largest `MaxResults` of `ListShards`.
pub const MAX_LIST_SHARDS_RESULTS: u32 = 10_000;

/// The API a request calls.
#[derive(Debug, Clone, Copy)]
enum Api {
    ListShards,
    PutRecords,
}

impl Api {
    fn faults(self, faults: &Faults) -> RequestFaults {
        match self {
            Self::ListShards => faults.list_shards,
            Self::PutRecords => faults.put_records,
        }
    }

    fn throttle_code(self) -> &'static str {
        match self {
            Self::ListShards => "LimitExceededException",
            Self::PutRecords => "ProvisionedThroughputExceededException",
        }
    }

    fn failed(self, error: RequestError) -> Response {
        match self {
            Self::ListShards => Response::ListShards(Err(error)),
            Self::PutRecords => Response::PutRecords(Err(error)),
        }
    }
}

/// A request the mock simulates.
enum Call {
    ListShards(ListShardsRequest),
    PutRecords(PutRecordsRequest),
}

/// Where a `ListShards` page starts.
#[derive(Debug, Clone)]
struct PageCursor {
    stream: String,
    /// Index of the first shard to consider.
    from: usize,
    only_open: bool,
}

#[derive(Debug, Clone)]
struct IssuedToken {
    cursor: PageCursor,
    issued_at: Instant,
}

/// The stream `target` designates, if the mock has it. An ARN must name the mock's region and account.
fn find_stream<'s>(
    streams: &'s mut BTreeMap<String, Stream>,
    config: &MockConfig,
    target: &StreamTarget,
) -> Result<&'s mut Stream, RequestError> {
    let name = target.stream_name();
    let designated = match target {
        StreamTarget::Name(_) => true,
        StreamTarget::Arn(arn) => **arn == stream_arn(config, name),
    };
    streams.get_mut(name).filter(|_| designated).ok_or_else(|| stream_not_found(config, name))
}

fn stream_arn(config: &MockConfig, stream: &str) -> String {
    format!("arn:aws:kinesis:{}:{}:stream/{stream}", config.region, config.account_id)
}

fn stream_not_found(config: &MockConfig, stream: &str) -> RequestError {
    RequestError::new(
        RequestErrorKind::StreamNotFound,
        Some("ResourceNotFoundException"),
        format!("Stream {stream} under account {} not found.", config.account_id),
    )
}

/// `now + duration`, or `now` if that is past the end of `Instant`'s range.
fn later(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration).unwrap_or(now)
}

/// A simulated Kinesis Data Streams: in memory, sans-IO, deterministic from its seed.
///
/// It takes the core's [`Request`]s with [`handle_request`](Self::handle_request) and hands back
/// [`Response`]s through [`poll_response`](Self::poll_response) once their latency has passed. It reads no
/// clock: every call that depends on time takes `now`, which should not go backwards. It draws randomness
/// (faults, jitter) only from the seed given to [`new`](Self::new): the same seed and the same calls give the
/// same responses.
///
/// A request takes effect (records are written, throttling buckets drained) at the `now` it is handled;
/// only its response waits. A simulation hands it each `Transmit` of the producer, and wakes at
/// [`poll_timeout`](Self::poll_timeout) to hand the due responses back:
///
/// ```
/// # use std::time::Instant;
/// # use kpl_core::{Request, RequestId, Response, PutRecordsEntry, PutRecordsRequest, StreamTarget};
/// use kpl_mock_backend::{MockConfig, MockKinesis};
///
/// let mut kinesis = MockKinesis::new(MockConfig::calm(), 42).unwrap();
/// kinesis.create_stream("orders", 4).unwrap();
/// let now = Instant::now(); // the caller's clock (virtual in a simulation)
/// let entry = PutRecordsEntry { partition_key: "customer-42".into(), explicit_hash_key: None, data: "hi".into() };
/// let request = Request::PutRecords(PutRecordsRequest::new(StreamTarget::name("orders"), vec![entry]));
/// kinesis.handle_request(now, RequestId(1), request).unwrap();
/// let due = kinesis.poll_timeout().unwrap();
/// let (id, response) = kinesis.poll_response(due).unwrap();
/// assert_eq!(id, RequestId(1));
/// assert!(matches!(response, Response::PutRecords(Ok(_))));
/// assert_eq!(kinesis.stats().entries_committed, 1);
/// ```
#[derive(Debug, Clone)]
pub struct MockKinesis {
    config: MockConfig,
    rng: SplitMix64,
    streams: BTreeMap<String, Stream>,
    /// Responses not yet handed out, by (due time, request id, order of arrival).
    pending: BTreeMap<(Instant, RequestId, u64), Response>,
    arrivals: u64,
    tokens: BTreeMap<String, IssuedToken>,
    stats: MockStats,
}

impl MockKinesis {
    /// A service with no streams, behaving as `config` says, drawing its randomness from `seed`.
    pub fn new(config: MockConfig, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            rng: SplitMix64::new(seed),
            streams: BTreeMap::new(),
            pending: BTreeMap::new(),
            arrivals: 0,
            tokens: BTreeMap::new(),
            stats: MockStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// Replaces the faults injected from now on, e.g. [`Faults::NONE`] to let a simulation heal.
    pub fn set_faults(&mut self, faults: Faults) -> Result<(), ConfigError> {
        faults.validate()?;
        self.config.faults = faults;
        Ok(())
    }

    /// What the mock has done so far.
    pub fn stats(&self) -> &MockStats {
        &self.stats
    }

    /// The ARN of a stream of this mock's account and region; requests may target a stream by it.
    pub fn stream_arn(&self, stream: &str) -> String {
        stream_arn(&self.config, stream)
    }

    /// `CreateStream`: a stream of `shard_count` open shards laid out as Kinesis does (see
    /// [`Shard::hash_range`]), numbered from `shardId-000000000000`. Active at once.
    pub fn create_stream(&mut self, name: &str, shard_count: u32) -> Result<(), MockError> {
        if shard_count == 0 {
            return Err(MockError::NoShards);
        }
        if self.streams.contains_key(name) {
            return Err(MockError::StreamExists { stream: name.to_owned() });
        }
        self.streams.insert(name.to_owned(), Stream::new(name, shard_count, self.config.shard_limits));
        Ok(())
    }

    /// `SplitShard`, effective at once: the shard closes at `now` and two children open with the next shard
    /// numbers, the first covering `[start, new_starting_hash_key − 1]`, the second
    /// `[new_starting_hash_key, end]`. As in the service, the key must be above `start + 1` and below `end`.
    /// Returns the children's ids.
    pub fn split_shard(
        &mut self,
        now: Instant,
        stream: &str,
        shard_id: &str,
        new_starting_hash_key: u128,
    ) -> Result<[ShardId; 2], MockError> {
        self.stream_mut(stream)?.split(now, shard_id, new_starting_hash_key)
    }

    /// `MergeShards`, effective at once: both shards close at `now` and one child covering both ranges
    /// opens with the next shard number, its parent `shard_id` and adjacent parent `adjacent_shard_id`. The
    /// two must be open and their ranges must meet (in either order). Returns the child's id.
    pub fn merge_shards(
        &mut self,
        now: Instant,
        stream: &str,
        shard_id: &str,
        adjacent_shard_id: &str,
    ) -> Result<ShardId, MockError> {
        self.stream_mut(stream)?.merge(now, shard_id, adjacent_shard_id)
    }

    fn stream_mut(&mut self, stream: &str) -> Result<&mut Stream, MockError> {
        self.streams.get_mut(stream).ok_or_else(|| MockError::StreamNotFound { stream: stream.to_owned() })
    }

    /// Every shard of a stream, open or closed, in shard-number order.
    pub fn shards(&self, stream: &str) -> Option<&[Shard]> {
        self.streams.get(stream).map(Stream::shards)
    }

    /// One shard of a stream.
    pub fn shard(&self, stream: &str, shard_id: &str) -> Option<&Shard> {
        self.shards(stream)?.iter().find(|shard| shard.id().as_str() == shard_id)
    }

    /// Every shard of every stream, with its stream's name, by stream name then shard number.
    pub fn all_shards(&self) -> impl Iterator<Item = (&str, &Shard)> + '_ {
        self.streams
            .iter()
            .flat_map(|(name, stream)| stream.shards().iter().map(move |shard| (name.as_str(), shard)))
    }

    /// The records committed to one shard, in sequence-number order.
    pub fn committed(&self, stream: &str, shard_id: &str) -> Option<&[CommittedRecord]> {
        self.shard(stream, shard_id).map(Shard::committed)
    }

    /// Takes a request sent at `now` under `id`. It takes effect now; its response (or a `Timeout`, if a
    /// fault swallowed the request or its response) becomes due later: see
    /// [`poll_timeout`](Self::poll_timeout). An `id` is not checked for reuse: each request is answered on
    /// its own.
    ///
    /// Fails only for a kind of request the mock does not simulate; nothing is answered then.
    pub fn handle_request(&mut self, now: Instant, id: RequestId, request: Request) -> Result<(), MockError> {
        let call = match request {
            Request::ListShards(list) => {
                self.stats.list_shards_requests += 1;
                Call::ListShards(list)
            }
            Request::PutRecords(put) => {
                self.stats.put_records_requests += 1;
                self.stats.entries_received += put.entries.len() as u64;
                Call::PutRecords(put)
            }
            other => return Err(MockError::UnsupportedRequest(format!("{other:?}"))),
        };
        let (api, target) = match &call {
            Call::ListShards(list) => (Api::ListShards, &list.stream),
            Call::PutRecords(put) => (Api::PutRecords, &put.stream),
        };
        let faults = api.faults(&self.config.faults);
        if self.rng.chance(faults.drop_request) {
            self.stats.faults.dropped_requests += 1;
            self.time_out(now, id, api);
            return Ok(());
        }
        let response_lost = self.rng.chance(faults.lose_response);
        let response = match self.injected_error(&faults, api, target) {
            Some(error) => api.failed(error),
            None => {
                let response = match call {
                    Call::ListShards(list) => Response::ListShards(self.list_shards(now, list)),
                    Call::PutRecords(put) => {
                        Response::PutRecords(self.put_records(now, id, put, response_lost))
                    }
                };
                if matches!(response, Response::ListShards(Err(_)) | Response::PutRecords(Err(_))) {
                    self.stats.rejected_requests += 1;
                }
                response
            }
        };
        if response_lost {
            self.stats.faults.lost_responses += 1;
            self.time_out(now, id, api);
            return Ok(());
        }
        let due = self.response_due(now);
        if self.rng.chance(faults.duplicate_response) {
            self.stats.faults.duplicated_responses += 1;
            let again = self.response_due(now);
            self.schedule(again, id, response.clone());
        }
        self.schedule(due, id, response);
        Ok(())
    }

    /// When a response to a request handled at `now` arrives: after the latency and a jitter drawn for it.
    fn response_due(&mut self, now: Instant) -> Instant {
        let jitter_nanos = u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(self.rng.below_or_equal(jitter_nanos));
        later(now, self.config.latency.saturating_add(jitter))
    }

    /// The next response due at or before `now`: the earliest first, ties in request-id order.
    pub fn poll_response(&mut self, now: Instant) -> Option<(RequestId, Response)> {
        let (&(due, _, _), _) = self.pending.first_key_value()?;
        if due > now {
            return None;
        }
        self.pending.pop_first().map(|((_, id, _), response)| (id, response))
    }

    /// When the next response becomes due; `None` when none is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.keys().next().map(|&(due, _, _)| due)
    }

    /// Responses not yet handed out.
    pub fn pending_responses(&self) -> usize {
        self.pending.len()
    }

    fn schedule(&mut self, due: Instant, id: RequestId, response: Response) {
        self.arrivals += 1;
        self.pending.insert((due, id, self.arrivals), response);
    }

    /// Answers `Timeout` after `request_timeout`, as the adapter does when the service never answers.
    fn time_out(&mut self, now: Instant, id: RequestId, api: Api) {
        let timeout = self.config.request_timeout;
        let error =
            RequestError::new(RequestErrorKind::Timeout, None, format!("no response within {timeout:?}"));
        self.schedule(later(now, timeout), id, api.failed(error));
    }

    /// Rolls the whole-request faults other than dropping and losing.
    fn injected_error(
        &mut self,
        faults: &RequestFaults,
        api: Api,
        target: &StreamTarget,
    ) -> Option<RequestError> {
        let counts = &mut self.stats.faults;
        if self.rng.chance(faults.throttle) {
            counts.throttled_requests += 1;
            let message = format!(
                "Rate exceeded for stream {} under account {}.",
                target.stream_name(),
                self.config.account_id
            );
            return Some(RequestError::new(RequestErrorKind::Throttling, Some(api.throttle_code()), message));
        }
        if self.rng.chance(faults.internal_failure) {
            counts.internal_failures += 1;
            let message =
                "The request processing has failed because of an unknown error, exception or failure.";
            return Some(RequestError::new(RequestErrorKind::Transient, Some("InternalFailure"), message));
        }
        if self.rng.chance(faults.service_unavailable) {
            counts.service_unavailable += 1;
            let message = "The request has failed due to a temporary failure of the server.";
            return Some(RequestError::new(RequestErrorKind::Transient, Some("ServiceUnavailable"), message));
        }
        None
    }

    /// `ListShards`, one page. A first page lists from the first shard; a follow-up is identified by its
    /// token alone (the request's stream and filter are ignored; the token carries them). Without the
    /// open-shard filter, closed shards are listed too, with `is_open: false`.
    ///
    /// An unknown token is refused with `InvalidArgumentException`, one older than
    /// [`NEXT_TOKEN_LIFETIME`] with `ExpiredNextTokenException`; both `Fatal` (the core's classes have no
    /// "restart the listing" reaction).
    fn list_shards(
        &mut self,
        now: Instant,
        request: ListShardsRequest,
    ) -> Result<ListShardsOutput, RequestError> {
        let max_results = request.max_results;
        if !(1..=MAX_LIST_SHARDS_RESULTS).contains(&max_results) {
            let bound = if max_results == 0 {
                "greater than or equal to 1".to_owned()
            } else {
                format!("less than or equal to {MAX_LIST_SHARDS_RESULTS}")
            };
            return Err(client_error(
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy \
                     constraint: Member must have value {bound}"
                ),
            ));
        }
        let cursor = match &request.next_token {
            Some(token) => self.redeem(now, token)?,
            None => PageCursor {
                stream: find_stream(&mut self.streams, &self.config, &request.stream)?.name().to_owned(),
                from: 0,
                only_open: request.only_open_shards,
            },
        };
        // A token outliving its stream would name none.
        let stream =
            self.streams.get(&cursor.stream).ok_or_else(|| stream_not_found(&self.config, &cursor.stream))?;
        let mut listed = stream
            .shards()
            .iter()
            .enumerate()
            .skip(cursor.from)
            .filter(|(_, shard)| !cursor.only_open || shard.is_open());
        let shards =
            listed.by_ref().take(max_results as usize).map(|(_, shard)| shard.description()).collect();
        let next_from = listed.next().map(|(index, _)| index);
        let next_token = next_from.map(|from| self.issue(now, PageCursor { from, ..cursor }));
        Ok(ListShardsOutput { shards, next_token })
    }

    fn issue(&mut self, now: Instant, cursor: PageCursor) -> String {
        let token = format!("mock-next-token-{}", self.tokens.len() + 1);
        self.tokens.insert(token.clone(), IssuedToken { cursor, issued_at: now });
        token
    }

    fn redeem(&self, now: Instant, token: &str) -> Result<PageCursor, RequestError> {
        let issued = self.tokens.get(token).ok_or_else(|| {
            client_error("InvalidArgumentException", format!("Invalid NextToken: {token}."))
        })?;
        if now.saturating_duration_since(issued.issued_at) > NEXT_TOKEN_LIFETIME {
            return Err(client_error(
                "ExpiredNextTokenException",
                format!(
                    "The NextToken has expired; a NextToken is valid for {} seconds.",
                    NEXT_TOKEN_LIFETIME.as_secs()
                ),
            ));
        }
        Ok(issued.cursor.clone())
    }

    /// `PutRecords`: validation (see the `validate` module), then per entry in order: the injected
    /// `InternalFailure`, the shard's write limits, and the write.
    fn put_records(
        &mut self,
        now: Instant,
        id: RequestId,
        request: PutRecordsRequest,
        response_lost: bool,
    ) -> Result<Vec<PutRecordsResultEntry>, RequestError> {
        check_constraints(&request.entries, self.config.max_record_size)?;
        let Self { config, rng, streams, stats, .. } = self;
        let stream = find_stream(streams, config, &request.stream)?;
        let hash_keys = check_arguments(&request.entries, config)?;
        let results = request
            .entries
            .into_iter()
            .zip(hash_keys)
            .map(|(entry, hash_key)| {
                if rng.chance(config.faults.entry_internal_failure) {
                    stats.faults.entry_internal_failures += 1;
                    return PutRecordsResultEntry::Failure {
                        error_code: "InternalFailure".to_owned(),
                        error_message: "Internal service failure.".to_owned(),
                    };
                }
                let shard = stream.route(hash_key);
                if !stream.try_take(shard, now, entry.partition_key.len() + entry.data.len()) {
                    stats.entries_throttled += 1;
                    return PutRecordsResultEntry::Failure {
                        error_code: "ProvisionedThroughputExceededException".to_owned(),
                        error_message: format!(
                            "Rate exceeded for shard {} in stream {} under account {}.",
                            stream.shards()[shard].id(),
                            stream.name(),
                            config.account_id
                        ),
                    };
                }
                stats.entries_committed += 1;
                stats.bytes_committed += (entry.partition_key.len() + entry.data.len()) as u64;
                let (shard_id, sequence_number) = stream.commit(
                    shard,
                    config.retain_committed,
                    Commit {
                        partition_key: entry.partition_key,
                        explicit_hash_key: entry.explicit_hash_key,
                        hash_key,
                        data: entry.data,
                        arrival: now,
                        request_id: id,
                        response_lost,
                    },
                );
                PutRecordsResultEntry::Success { shard_id, sequence_number }
            })
            .collect();
        Ok(results)
    }
}
