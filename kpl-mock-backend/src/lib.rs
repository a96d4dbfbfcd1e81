//! A simulated Kinesis Data Streams for deterministic tests of the producer: in memory, sans-IO, seeded, on
//! the caller's virtual time. It plays the part str0m's `netem` plays for a WebRTC stack: a machine of the
//! same shape as the one under test (`handle_request` / `poll_response` / `poll_timeout`), with every fault
//! drawn from one seed.
//!
//! [`MockKinesis`] takes `kpl_core::Request`s and answers `kpl_core::Response`s:
//!
//! - **Streams and shards.** [`MockKinesis::create_stream`] lays out the hash-key space as Kinesis does;
//!   [`MockKinesis::split_shard`] and [`MockKinesis::merge_shards`] reshard, closing parents and opening
//!   children with the next shard numbers.
//! - **`ListShards`** with paging (`MaxResults`, `NextToken`s that expire after 300 s) and the open-shard
//!   filter.
//! - **`PutRecords`** validated as the service does (1..=500 entries, 5 MiB per request, 1 MiB per record,
//!   keys of 1..=256 characters, explicit hash keys in range), routed by explicit hash key or the MD5 of the
//!   partition key to the open shard holding it, limited per shard (1000 records and 1 MiB per rolling
//!   second: the excess fails entry by entry with `ProvisionedThroughputExceededException`), and committed
//!   with increasing sequence numbers to a per-shard log ([`Shard::committed`]) that tests read back and
//!   deaggregate ([`Shard::deaggregate`]).
//! - **Latency and faults** ([`MockConfig`], [`Faults`]): latency with jitter (responses can overtake each
//!   other), per-entry `InternalFailure`, whole-request throttling, HTTP 500 and 503, requests dropped
//!   (answered `Timeout` after `request_timeout`, nothing written) and responses lost after the write (a
//!   `Timeout` for records that were written: the ambiguous case that makes duplicates).
//! - **Counters** of all of it ([`MockStats`]) for a simulation's report.
//!
//! Not modelled: stream creation and resharding delays (both take effect at once), on-demand streams,
//! `UpdateShardCount`, stream deletion, retention (nothing expires), KMS, consumers, account-level API rate
//! limits, and the service's read side beyond handing the committed log back as `GetRecords` would.
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod backend;
mod config;
mod error;
mod limits;
mod stats;
mod stream;
mod validate;

pub use backend::{MAX_LIST_SHARDS_RESULTS, MockKinesis, NEXT_TOKEN_LIFETIME};
pub use config::{ConfigError, Faults, MAX_RECORD_SIZE_LIMIT, MIB, MockConfig, RequestFaults, ShardLimits};
pub use error::MockError;
pub use stats::{FaultCounts, MockStats};
pub use stream::{CommittedRecord, Shard};

#[cfg(test)]
mod tests {
    /// A fixed starting instant for unit tests: the mock never reads the clock, tests add virtual time to
    /// this.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn epoch() -> std::time::Instant {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *EPOCH.get_or_init(std::time::Instant::now)
    }
}
