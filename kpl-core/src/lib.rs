//! The sans-IO Kinesis producer: everything the KPL decides, with no I/O.
//!
//! [`Producer`] takes user records and turns them into `ListShards` and `PutRecords` requests (as plain
//! values), takes the responses back, and reports one result per record. It never reads a clock (every call
//! takes `now`), never draws randomness of its own (jitter comes from a seed given at construction), never
//! spawns and never touches the network: same inputs, same outputs. `kpl-tokio` drives it on a runtime;
//! `kpl-mock-backend` and the simulation tests drive it on virtual time.
//!
//! # The loop
//!
//! On a runtime of your own, you own the clock and the network: hand the producer records, send the requests
//! it asks for, hand their responses back, take its results, and wake it at its deadlines. Here a fake
//! Kinesis with one shard answers every request at once, and time jumps to each deadline:
//!
//! ```
//! use std::time::Instant;
//!
//! use kpl_core::{
//!     Event, ListShardsOutput, Producer, ProducerConfig, PutRecordsResultEntry, Request, Response,
//!     ShardDescription, StreamTarget, UserRecord,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut now = Instant::now(); // your clock: the core never reads one
//! let mut producer = Producer::new(ProducerConfig::default(), 7); // 7: the seed of the retry jitter
//! let stream = StreamTarget::name("orders");
//! for i in 0..10 {
//!     let record = UserRecord::new(stream.clone(), format!("customer-{i}"), &b"{\"total\": 12}"[..]);
//!     producer.put_record(now, record)?; // refused at once if invalid, or under backpressure
//! }
//! producer.close(now); // send everything now; `Event::Drained` once every record completed
//! let mut written = 0;
//! 'run: loop {
//!     // 1. Every request the producer wants sent (your HTTP client's job), answered later or at once.
//!     let mut transmits = Vec::new();
//!     while let Some(transmit) = producer.poll_transmit(now) {
//!         transmits.push(transmit);
//!     }
//!     for transmit in transmits {
//!         let response = match transmit.request {
//!             Request::ListShards(_) => Response::ListShards(Ok(ListShardsOutput {
//!                 shards: vec![ShardDescription {
//!                     shard_id: "shardId-000000000000".into(),
//!                     starting_hash_key: 0,
//!                     ending_hash_key: u128::MAX,
//!                     is_open: true,
//!                 }],
//!                 next_token: None,
//!             })),
//!             Request::PutRecords(put) => Response::PutRecords(Ok((0..put.entries.len())
//!                 .map(|i| PutRecordsResultEntry::Success {
//!                     shard_id: "shardId-000000000000".into(),
//!                     sequence_number: format!("4960000000000000000{i}"),
//!                 })
//!                 .collect())),
//!             _ => continue, // `Request` is non-exhaustive
//!         };
//!         producer.handle_response(now, transmit.id, response);
//!     }
//!     // 2. Results: exactly one `RecordCompleted` per accepted record.
//!     while let Some(event) = producer.poll_event() {
//!         match event {
//!             Event::RecordCompleted(outcome) => {
//!                 let receipt = outcome.result?;
//!                 assert_eq!(receipt.shard_id().as_str(), "shardId-000000000000");
//!                 written += 1;
//!             }
//!             Event::Drained => break 'run,
//!             _ => {}
//!         }
//!     }
//!     // 3. Sleep until the next deadline (buffering, backoff, expiry); here time just jumps there.
//!     match producer.poll_timeout() {
//!         Some(deadline) => {
//!             now = now.max(deadline);
//!             producer.handle_timeout(now);
//!         }
//!         None => break,
//!     }
//! }
//! assert_eq!(written, 10);
//! # Ok(())
//! # }
//! ```
//!
//! The call contract (poll order, what `now` must satisfy, late and duplicate responses) is on [`Producer`].
//!
//! # Inside
//!
//! `Producer` is a router between stage machines, each owning its data, rules and timers: aggregation
//! (`aggregate.rs`), per-shard queues behind the rate limiter (`shard_queue.rs`, `limiter.rs`), collection
//! into requests (`collect.rs`), shard listing (`listing.rs`, over the pure `shard_map.rs`), retry with
//! backoff (`retry.rs`) and completion (`completion.rs`: outstanding records, flushes, drain). Each exposes
//! its next deadline; [`Producer::poll_timeout`] is the earliest. Stats and the KPL's metrics go to one
//! telemetry sink (`metrics/`); configuration, its value grammar ([`KplValue`]), the `.properties` loader and
//! record admission are under `config/`.
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod aggregate;
mod collect;
mod completion;
mod config;
mod drain;
mod event;
mod id_queue;
mod ids;
mod limiter;
mod listing;
mod map;
mod metrics;
mod oldest;
mod outgoing;
mod producer;
mod record;
mod request;
mod retry;
mod rng;
mod shard_map;
mod shard_queue;
mod stats;
mod time;

pub use config::properties::{LoadedProperties, NON_CORE_KPL_KEYS};
pub use config::{
    AggregationPolicy, ConfigError, KplValue, ProducerConfig, ProducerConfigBuilder, ShardMapWait,
    parse_value as parse_kpl_value,
};
pub use event::Event;
pub use id_queue::IdQueue;
pub use ids::{FlushId, RecordId, RequestId, ShardId, StreamIndex, StreamTarget};
pub use metrics::{
    MAX_WINDOW_SECONDS, Metric, MetricName, MetricSample, MetricUnit, MetricsGranularity, MetricsLevel,
    MetricsQuery, MetricsQueryError, MetricsRollup, MetricsWindow, PENDING_SAMPLE_PERIOD, RETENTION_SECONDS,
    Stat,
};
pub use producer::Producer;
pub use record::{
    Attempt, AttemptError, AttemptErrorKind, Attempts, PreparedRecord, PutError, RecordError, RecordFailure,
    RecordOutcome, RecordReceipt, UserRecord,
};
pub use request::{
    ListShardsOutput, ListShardsRequest, PutRecordsEntry, PutRecordsRequest, PutRecordsResultEntry, Request,
    RequestError, RequestErrorKind, RequestKind, Response, ShardDescription, Transmit,
};
pub use rng::SplitMix64;
pub use stats::ProducerStats;

/// A fixed starting instant for unit tests. The core itself never reads the clock; tests need one `Instant`
/// to add virtual time to.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
