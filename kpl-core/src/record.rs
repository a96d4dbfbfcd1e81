//! User records in, their results out.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::ids::{RecordId, ShardId, StreamTarget};
use crate::request::RequestError;

/// A record as the application hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The stream to write to.
    pub stream: StreamTarget,
    /// Partition key: 1 to 256 UTF-16 code units (characters, with those outside the Basic Multilingual
    /// Plane counted twice, as Kinesis counts). Routes the record unless an explicit hash key is set.
    pub partition_key: String,
    /// Explicit hash key: a decimal number in 0..=2^128−1 that routes the record instead.
    pub explicit_hash_key: Option<String>,
    /// The payload.
    pub data: Bytes,
}

impl UserRecord {
    /// A record routed by its partition key.
    pub fn new(stream: StreamTarget, partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self { stream, partition_key: partition_key.into(), explicit_hash_key: None, data: data.into() }
    }

    /// Bytes it counts for, against `max_record_size` and `max_outstanding_bytes`: data plus partition key,
    /// as Kinesis counts.
    pub fn size(&self) -> usize {
        self.partition_key.len() + self.data.len()
    }

    /// Routes the record by an explicit hash key instead of its partition key.
    pub fn with_explicit_hash_key(mut self, explicit_hash_key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(explicit_hash_key.into());
        self
    }
}

/// One try at writing a record, as the KPL's `Attempt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When the request carrying the record was handed to the adapter.
    pub started: Instant,
    /// When its response came back.
    pub ended: Instant,
    /// Why it did not succeed, if it did not.
    pub error: Option<AttemptError>,
}

/// The error of a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    /// The error code: the service's (`ProvisionedThroughputExceededException`, `InternalFailure`, ...)
    /// or the producer's (`Wrong Shard`, `Timeout`).
    pub code: String,
    /// The message.
    pub message: String,
}

/// A record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordReceipt {
    /// The shard that holds it.
    pub shard_id: ShardId,
    /// The sequence number of the Kinesis record that carries it (shared by all user records of one
    /// aggregate, as in the KPL).
    pub sequence_number: Arc<str>,
    /// Every attempt, the successful one last.
    pub attempts: Vec<Attempt>,
    /// An earlier attempt was ambiguous (timed out, or wrongly routed and written), so the record may be in
    /// the stream more than once.
    pub maybe_duplicated: bool,
}

/// A record was not written, and never will be by this producer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct RecordFailure {
    /// Why.
    pub error: RecordError,
    /// Every attempt made.
    pub attempts: Vec<Attempt>,
    /// An ambiguous attempt may have written it after all.
    pub maybe_duplicated: bool,
}

/// Why a record failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Its `record_ttl` passed before it was written.
    #[error("record expired after {attempts} attempts")]
    Expired {
        /// Attempts made.
        attempts: usize,
    },
    /// Throttled with `fail_if_throttled` set.
    #[error("throttled: {message}")]
    Throttled {
        /// The throttling message.
        message: String,
    },
    /// The request failed with an error retrying cannot fix (fatal, or the stream does not exist).
    #[error("rejected: {0}")]
    Rejected(RequestError),
}

/// The completion of one record: exactly one per accepted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOutcome {
    /// The record.
    pub id: RecordId,
    /// Its stream.
    pub stream: StreamTarget,
    /// Written, or failed.
    pub result: Result<RecordReceipt, RecordFailure>,
}

/// Why `put_record` refused a record. Nothing was buffered; other records are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// The stream name or ARN is not one Kinesis accepts: a name of 1 to 128 characters of
    /// `[a-zA-Z0-9_.-]`, or an ARN `arn:aws…:kinesis:<region>:<12-digit account>:stream/<name>` of at most
    /// 2048 characters (see [`kpl_deagg::limits`]).
    #[error("invalid stream name or ARN {0:?}")]
    InvalidStream(String),
    /// The partition key is empty.
    #[error("partition key is empty")]
    EmptyPartitionKey,
    /// The partition key is longer than 256 UTF-16 code units, the unit Kinesis counts it in (a character
    /// outside the Basic Multilingual Plane, such as an emoji, counts twice).
    #[error("partition key is {length} UTF-16 code units long, more than 256")]
    PartitionKeyTooLong {
        /// Its length in UTF-16 code units.
        length: usize,
    },
    /// The explicit hash key is not a decimal in 0..=2^128−1.
    #[error("invalid explicit hash key: {0}")]
    InvalidExplicitHashKey(#[from] kpl_deagg::HashKeyError),
    /// The data is larger than `max_record_size`.
    #[error("record of {size} bytes is over the {max} byte limit")]
    RecordTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The producer holds `max_outstanding_records` or `max_outstanding_bytes` already; wait for
    /// `Event::CapacityAvailable` and try again.
    #[error("backpressure: {outstanding_records} records, {outstanding_bytes} bytes outstanding")]
    Backpressure {
        /// Records outstanding.
        outstanding_records: usize,
        /// Bytes outstanding.
        outstanding_bytes: usize,
    },
    /// `close` was called.
    #[error("the producer is closed")]
    Closed,
}
