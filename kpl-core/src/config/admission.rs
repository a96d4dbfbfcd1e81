//! Record validation and admission: the rules `put_record` applies before it takes a record, kept apart
//! from the state machine so that an adapter refusing records on another task applies the same ones.

use std::time::Duration;

use kpl_deagg::limits::{MAX_PARTITION_KEY_LENGTH, is_valid_stream_arn, is_valid_stream_name, utf16_length};
use kpl_deagg::parse_explicit_hash_key;

use super::ProducerConfig;
use crate::ids::StreamTarget;
use crate::record::{PreparedRecord, PutError, UserRecord};

impl ProducerConfig {
    /// Checks a record as [`Producer::put_record`](crate::Producer::put_record) does (stream, partition key, explicit hash key, size),
    /// without a producer: an adapter whose producer lives on another task refuses bad records at once.
    pub fn check_record(&self, record: &UserRecord) -> Result<(), PutError> {
        validate_record(self, record).map(drop)
    }

    /// Checks a record as [`check_record`](Self::check_record) does and computes the hash key that routes
    /// it, for [`Producer::put_prepared`](crate::Producer::put_prepared); a refused record comes back with
    /// the error. Pure: callable on any thread, before the producer sees the record.
    #[allow(
        clippy::result_large_err,
        reason = "a refused record goes back to its caller, without an allocation"
    )]
    pub fn prepare(&self, record: UserRecord) -> Result<PreparedRecord, (PutError, UserRecord)> {
        match validate_record(self, &record) {
            Ok(explicit_hash_key) => Ok(PreparedRecord::hashed(record, explicit_hash_key)),
            Err(error) => Err((error, record)),
        }
    }

    /// The backpressure rule of [`Producer::put_record`](crate::Producer::put_record): whether a record of `size` bytes
    /// ([`UserRecord::size`]) is accepted while `outstanding_records` records of `outstanding_bytes` bytes
    /// are outstanding. A record larger than the byte limit is still taken when nothing else is
    /// outstanding, or it could never be.
    pub fn admits(&self, outstanding_records: usize, outstanding_bytes: usize, size: usize) -> bool {
        (outstanding_records as u64) < self.max_outstanding_records()
            && (outstanding_records == 0
                || (outstanding_bytes.saturating_add(size)) as u64 <= self.max_outstanding_bytes())
    }

    /// How long a stream may take to drain what it holds: `drain_window_percent` of `record_ttl`; `None`
    /// when the rule is off (percent 0).
    ///
    /// The default, a third of the TTL (10 s of the KPL's default 30 s), leaves a record admitted at the
    /// limit two thirds of its TTL after it reaches its shards: for retries after throttling or a transient
    /// failure (backoffs up to `retry_max_backoff`, 5 s), and for a drain rate up to three times slower than
    /// estimated. A larger window holds more in memory for no more throughput; a smaller one makes `put`
    /// wait while a stream could still take more.
    pub fn drain_window(&self) -> Option<Duration> {
        let percent = u32::try_from(self.drain_window_percent()).unwrap_or(100);
        (percent > 0).then(|| self.record_ttl().saturating_mul(percent) / 100)
    }

    /// What a stream drains at the quota of `open_shards` shards, in user-record bytes (data plus partition
    /// keys) per second: per shard, the lower of Kinesis's byte quota (`shard_max_bytes_per_second`, 1 MiB/s)
    /// and its record quota (`shard_max_records_per_second`, 1,000/s) times the user bytes in one Kinesis
    /// record, `bytes_per_kinesis_record` (an aggregate holds many user records, so the record quota rarely
    /// binds once records are aggregated; `None` counts the byte quota only), times `rate_limit` capped at 100
    /// %: a rate limit above the quota lets bursts through, not more in the long run.
    pub fn quota_drain_rate(&self, open_shards: usize, bytes_per_kinesis_record: Option<u64>) -> u64 {
        let bytes = self.shard_max_bytes_per_second();
        let per_shard = bytes_per_kinesis_record.map_or(bytes, |per_record| {
            bytes.min(self.shard_max_records_per_second().saturating_mul(per_record))
        });
        (per_shard.saturating_mul(self.rate_limit().min(100)) / 100).saturating_mul(open_shards as u64)
    }

    /// The most bytes (data plus partition keys) a stream draining `bytes_per_second` may hold: its drain
    /// rate times the [`drain_window`](Self::drain_window); `None` when the rule is off.
    pub fn stream_admission_limit(&self, bytes_per_second: u64) -> Option<u64> {
        let window = self.drain_window()?;
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Some(u64::try_from(u128::from(bytes_per_second) * u128::from(millis) / 1000).unwrap_or(u64::MAX))
    }

    /// The admission limit of a stream the producer has not measured yet (nor listed): the quota of one
    /// shard, the least a stream has, over the drain window.
    pub fn initial_stream_admission_limit(&self) -> Option<u64> {
        self.stream_admission_limit(self.quota_drain_rate(1, None))
    }

    /// The drain-time rule, per stream, on top of [`admits`](Self::admits): whether a stream holding
    /// `stream_bytes` bytes takes a record of `size` bytes under its admission `limit`
    /// ([`stream_admission_limit`](Self::stream_admission_limit) of its drain rate; `None`: no limit). A
    /// stream holding nothing always takes one record, so a stream is never shut out.
    ///
    /// This is where we differ from the KPL, which has no such rule: it accepts records until
    /// `RecordTtl` expires them in its queues or it runs out of memory.
    pub fn admits_to_stream(&self, stream_bytes: usize, limit: Option<u64>, size: usize) -> bool {
        limit.is_none_or(|limit| stream_bytes == 0 || stream_bytes.saturating_add(size) as u64 <= limit)
    }
}

/// Checks a record; returns its explicit hash key, parsed.
pub(crate) fn validate_record(
    config: &ProducerConfig,
    record: &UserRecord,
) -> Result<Option<u128>, PutError> {
    validate_stream(&record.stream)?;
    validate_content(config, record)
}

/// Checks a record's partition key, explicit hash key and size (its stream is checked apart: a stream the
/// producer already knows was checked when it was first seen); returns its explicit hash key, parsed.
pub(crate) fn validate_content(
    config: &ProducerConfig,
    record: &UserRecord,
) -> Result<Option<u128>, PutError> {
    let key = &record.partition_key;
    if key.is_empty() {
        return Err(PutError::EmptyPartitionKey);
    }
    // A key of at most 256 bytes has at most 256 UTF-16 units: count only when it could matter.
    if key.len() > MAX_PARTITION_KEY_LENGTH {
        let length = utf16_length(key);
        if length > MAX_PARTITION_KEY_LENGTH {
            return Err(PutError::PartitionKeyTooLong { length });
        }
    }
    let explicit_hash_key = record.explicit_hash_key.as_deref().map(parse_explicit_hash_key).transpose()?;
    validate_size(config, record)?;
    Ok(explicit_hash_key)
}

/// Checks a record's size (data plus partition key) against `max_record_size`: the one rule that depends on
/// the configuration.
pub(crate) fn validate_size(config: &ProducerConfig, record: &UserRecord) -> Result<(), PutError> {
    let size = record.size();
    let max = config.max_record_size() as usize;
    if size > max {
        return Err(PutError::RecordTooLarge { size, max });
    }
    Ok(())
}

/// Checks a stream's name or ARN.
pub(crate) fn validate_stream(stream: &StreamTarget) -> Result<(), PutError> {
    let valid = match stream {
        StreamTarget::Name(name) => is_valid_stream_name(name),
        StreamTarget::Arn(arn) => is_valid_stream_arn(arn),
    };
    if !valid {
        return Err(PutError::InvalidStream(stream.to_string()));
    }
    Ok(())
}
