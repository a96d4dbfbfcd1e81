//! A small in-test Kinesis for driving the producer: evenly split shards, routing by explicit hash key,
//! and a per-request hook to inject failures. The faithful simulation lives in `kpl-mock-backend`.
#![allow(dead_code, clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kpl_core::{
    Event, ListShardsOutput, Producer, ProducerConfig, PutRecordsResultEntry, RecordId, RecordOutcome,
    Request, RequestError, Response, ShardDescription, ShardId, StreamTarget, Transmit, UserRecord,
};

/// A fixed epoch, the same for every harness of the process: the core never reads the clock, the tests add
/// virtual time to this.
pub fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn stream() -> StreamTarget {
    StreamTarget::name("test-stream")
}

/// `count` shards splitting the key space as Kinesis does: each `floor(2^128 / count)` wide, the last one
/// reaching 2^128 − 1.
pub fn even_shards(count: u32) -> Vec<ShardDescription> {
    let count_wide = u128::from(count);
    // floor(2^128 / n) without 2^128: one more than floor((2^128 − 1) / n) exactly when n divides 2^128.
    // (For one shard that wraps to 0, unused: the only shard is the last.)
    let width = (u128::MAX / count_wide).wrapping_add(u128::from(u128::MAX % count_wide == count_wide - 1));
    (0..count)
        .map(|i| ShardDescription {
            shard_id: ShardId::from(format!("shardId-{i:012}")),
            starting_hash_key: width * u128::from(i),
            ending_hash_key: if i + 1 == count { u128::MAX } else { width * u128::from(i + 1) - 1 },
            is_open: true,
        })
        .collect()
}

/// What the responder does with one PutRecords request.
#[derive(Clone)]
pub enum Reply {
    /// Route every entry and succeed.
    Success,
    /// Fail the whole request.
    Error(RequestError),
    /// Per entry: `Some(code)` fails it, `None` routes it.
    Entries(Vec<Option<&'static str>>),
    /// Fail a `ListShards` with this error (a PutRecords given it succeeds).
    ListShardsError(RequestError),
}

/// A responder that answers the first PutRecords with `first` and everything else with success.
pub fn first_put_then_success(first: Reply) -> impl FnMut(&Request) -> Reply {
    let mut first = Some(first);
    move |request| match request {
        Request::PutRecords(_) => first.take().unwrap_or(Reply::Success),
        _ => Reply::Success,
    }
}

pub struct Harness {
    pub producer: Producer,
    pub now: Instant,
    /// The shards the responder routes to (its truth), and the ones it lists.
    pub shards: Vec<ShardDescription>,
    pub outcomes: BTreeMap<RecordId, RecordOutcome>,
    pub events: Vec<Event>,
    pub requests: Vec<Request>,
    /// Every user record written, per shard: (partition key, data) as a consumer would see them.
    pub written: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    pub put: BTreeMap<RecordId, UserRecord>,
    sequence: u64,
}

impl Harness {
    pub fn new(config: ProducerConfig, shards: u32) -> Self {
        Self {
            producer: Producer::new(config, 42),
            now: epoch(),
            shards: even_shards(shards),
            outcomes: BTreeMap::new(),
            events: Vec::new(),
            requests: Vec::new(),
            written: BTreeMap::new(),
            put: BTreeMap::new(),
            sequence: 0,
        }
    }

    /// Lists the stream's shards, so that records put next are aggregated per shard.
    pub fn start(&mut self) {
        self.producer.add_stream(self.now, stream()).expect("valid stream");
        self.run(Duration::ZERO, |_| Reply::Success);
        assert!(matches!(self.events.last(), Some(Event::ShardMapUpdated { .. })));
    }

    pub fn put(&mut self, key: &str, data: &[u8]) -> RecordId {
        let record = UserRecord::new(stream(), key, data.to_vec());
        let id = self.producer.put_record(self.now, record.clone()).expect("accepted");
        self.put.insert(id, record);
        id
    }

    fn route(&self, hash_key: u128) -> &ShardDescription {
        self.shards
            .iter()
            .find(|s| s.is_open && (s.starting_hash_key..=s.ending_hash_key).contains(&hash_key))
            .expect("shards cover the key space")
    }

    /// Answers one request the way `reply` says.
    pub fn answer(&mut self, transmit: Transmit, reply: Reply) {
        let response = match &transmit.request {
            Request::ListShards(_) => match reply {
                Reply::ListShardsError(error) => Response::ListShards(Err(error)),
                _ => Response::ListShards(Ok(ListShardsOutput {
                    shards: self.shards.clone(),
                    next_token: None,
                })),
            },
            Request::PutRecords(put) => match reply {
                Reply::Error(error) => Response::PutRecords(Err(error)),
                Reply::Success | Reply::Entries(_) | Reply::ListShardsError(_) => {
                    let codes = match reply {
                        Reply::Entries(codes) => codes,
                        _ => vec![None; put.entries.len()],
                    };
                    let mut results = Vec::new();
                    for (entry, code) in put.entries.iter().zip(codes) {
                        if let Some(code) = code {
                            results.push(PutRecordsResultEntry::Failure {
                                error_code: code.to_string(),
                                error_message: format!("{code} for test"),
                            });
                            continue;
                        }
                        let hash_key: u128 =
                            entry.explicit_hash_key.as_deref().expect("always set").parse().expect("decimal");
                        let shard_id = self.route(hash_key).shard_id.clone();
                        self.sequence += 1;
                        let received = kpl_deagg::ReceivedRecord {
                            data: entry.data.clone(),
                            partition_key: entry.partition_key.clone(),
                            explicit_hash_key: None,
                            sequence_number: self.sequence.to_string(),
                        };
                        let users = kpl_deagg::Deaggregator::new(kpl_deagg::Mode::Strict)
                            .deaggregate(received)
                            .expect("valid aggregate");
                        let log = self.written.entry(shard_id.to_string()).or_default();
                        log.extend(users.map(|u| (u.partition_key.to_string(), u.data.to_vec())));
                        results.push(PutRecordsResultEntry::Success {
                            shard_id,
                            sequence_number: self.sequence.to_string(),
                        });
                    }
                    Response::PutRecords(Ok(results))
                }
            },
            other => panic!("unexpected request {other:?}"),
        };
        self.requests.push(transmit.request);
        self.producer.handle_response(self.now, transmit.id, response);
    }

    /// Collects what the producer emitted.
    pub fn drain_events(&mut self) {
        while let Some(event) = self.producer.poll_event() {
            if let Event::RecordCompleted(outcome) = &event {
                let previous = self.outcomes.insert(outcome.id, outcome.clone());
                assert!(previous.is_none(), "record {:?} completed twice", outcome.id);
                assert!(self.put.contains_key(&outcome.id), "unknown record {:?} completed", outcome.id);
            }
            self.events.push(event);
        }
    }

    /// Answers every transmit with `reply(request number)`, advancing virtual time to each timeout, until
    /// nothing is left or `limit` virtual time passed. Returns the number of steps.
    pub fn run(&mut self, limit: Duration, mut reply: impl FnMut(&Request) -> Reply) -> usize {
        let end = self.now + limit;
        let mut steps = 0;
        loop {
            steps += 1;
            while let Some(transmit) = self.producer.poll_transmit(self.now) {
                let chosen = reply(&transmit.request);
                self.answer(transmit, chosen);
            }
            self.drain_events();
            let Some(next) = self.producer.poll_timeout() else { return steps };
            assert!(next >= self.now, "poll_timeout in the past after a full drain");
            if next > end {
                return steps;
            }
            self.now = next;
            self.producer.handle_timeout(self.now);
        }
    }

    pub fn succeeded(&self) -> usize {
        self.outcomes.values().filter(|o| o.result.is_ok()).count()
    }
}
