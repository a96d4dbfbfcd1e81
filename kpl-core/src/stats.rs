//! Counters of what the producer did.

/// Totals since the producer was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStats {
    /// User records accepted by `put_record`.
    pub user_records_received: u64,
    /// User records written.
    pub user_records_put: u64,
    /// User records failed (expired ones included).
    pub user_records_failed: u64,
    /// User records failed because their TTL passed.
    pub user_records_expired: u64,
    /// Kinesis records (PutRecords entries) written.
    pub kinesis_records_put: u64,
    /// PutRecords requests sent.
    pub put_records_requests: u64,
    /// ListShards requests sent.
    pub list_shards_requests: u64,
    /// ListShards listings that failed or came back incomplete.
    pub list_shards_failures: u64,
    /// Streams that fell back to same-hash-key aggregation for want of a shard map
    /// ([`Event::ShardMapUnavailable`](crate::Event::ShardMapUnavailable)).
    pub shard_map_fallbacks: u64,
    /// User-record retries scheduled.
    pub retries: u64,
    /// Entries throttled by their shard.
    pub throttled_entries: u64,
    /// Entries failed for another reason.
    pub failed_entries: u64,
    /// Whole requests failed.
    pub request_errors: u64,
    /// Entries written to a shard other than predicted.
    pub wrong_shard: u64,
    /// `put_record` calls refused for backpressure.
    pub backpressure_rejections: u64,
    /// Responses for ids not in flight (late, duplicated or unknown), ignored.
    pub unknown_responses: u64,
}
