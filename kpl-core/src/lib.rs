//! The sans-IO Kinesis producer: everything the KPL decides, with no I/O.
//!
//! [`Producer`] takes user records and turns them into `ListShards` and `PutRecords` requests (as plain
//! values), takes the responses back, and reports one result per record. It never reads a clock (every call
//! takes `now`), never draws randomness of its own (jitter comes from a seed given at construction), never
//! spawns and never touches the network: same inputs, same outputs. `kpl-tokio` drives it on a runtime;
//! `kpl-mock-backend` and the simulation tests drive it on virtual time.
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod config;
mod event;
mod ids;
mod limiter;
mod map;
mod metrics;
mod oldest;
mod pending;
mod producer;
mod properties;
mod record;
mod request;
mod rng;
mod shard_map;
mod stats;
mod stream;
mod time;

pub use config::{AggregationPolicy, ConfigError, ProducerConfig, ProducerConfigBuilder, ShardMapWait};
pub use event::Event;
pub use ids::{RecordId, RequestId, ShardId, StreamTarget};
pub use metrics::{
    MAX_WINDOW_SECONDS, Metric, MetricName, MetricSample, MetricUnit, MetricsGranularity, MetricsLevel,
    MetricsQuery, MetricsQueryError, MetricsRollup, MetricsWindow, PENDING_SAMPLE_PERIOD, RETENTION_SECONDS,
    Stat,
};
pub use producer::Producer;
pub use properties::{LoadedProperties, NON_CORE_KPL_KEYS};
pub use record::{
    Attempt, AttemptError, PutError, RecordError, RecordFailure, RecordOutcome, RecordReceipt, UserRecord,
};
pub use request::{
    ListShardsOutput, ListShardsRequest, PutRecordsEntry, PutRecordsRequest, PutRecordsResultEntry, Request,
    RequestError, RequestErrorKind, Response, ShardDescription, Transmit,
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
