//! User records in, their results out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ids::{RecordId, ShardId, StreamTarget};
use crate::request::{RequestError, RequestErrorKind};

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

/// A record checked against a configuration's rules, with the hash key that routes it: what
/// [`Producer::put_prepared`](crate::Producer::put_prepared) takes. Made by
/// [`ProducerConfig::prepare`](crate::ProducerConfig::prepare), which needs no producer: an adapter whose
/// producer lives on one task prepares records on its callers' threads, so that the checks and the MD5 of
/// each partition key run there, in parallel, and the producer only routes. It cannot be changed once
/// prepared (read it with [`record`](Self::record)), which is why the producer need not check it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRecord {
    pub(crate) record: UserRecord,
    /// The explicit hash key, else the MD5 of the partition key (big-endian, as Kinesis reads it).
    pub(crate) hash_key: u128,
    /// Whether `hash_key` is the record's explicit hash key.
    pub(crate) has_explicit_hash_key: bool,
}

impl PreparedRecord {
    /// A checked record with its explicit hash key (parsed), if it has one.
    pub(crate) fn hashed(record: UserRecord, explicit_hash_key: Option<u128>) -> Self {
        let hash_key =
            explicit_hash_key.unwrap_or_else(|| kpl_deagg::partition_key_hash(&record.partition_key));
        Self { record, hash_key, has_explicit_hash_key: explicit_hash_key.is_some() }
    }

    /// The record.
    pub fn record(&self) -> &UserRecord {
        &self.record
    }

    /// The record back.
    pub fn into_record(self) -> UserRecord {
        self.record
    }

    /// The hash key that routes it: its explicit hash key, else the MD5 of its partition key.
    pub fn hash_key(&self) -> u128 {
        self.hash_key
    }
}

/// One try at writing a record, as the KPL's `Attempt`. Built by the producer only (`#[non_exhaustive]`):
/// read it through its fields or methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// When the request carrying the record was handed to the adapter.
    pub started: Instant,
    /// When its response came back.
    pub ended: Instant,
    /// Why it did not succeed, if it did not. Boxed: most attempts succeed, and an attempt sits inline in
    /// every receipt (see [`Attempts`]).
    pub error: Option<Box<AttemptError>>,
    /// Time between the record's put (for the first attempt) or the previous attempt's end and this
    /// attempt's start: buffering, rate limiting and backoff (the KPL's `Attempt.getDelay`).
    pub delay: Duration,
}

impl Attempt {
    /// An attempt that came after `previous_end` (the record's put time for a first attempt).
    pub(crate) fn new(
        previous_end: Instant,
        started: Instant,
        ended: Instant,
        error: Option<AttemptError>,
    ) -> Self {
        Self {
            started,
            ended,
            error: error.map(Box::new),
            delay: started.saturating_duration_since(previous_end),
        }
    }

    /// When the request carrying the record was handed to the adapter.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When its response came back.
    pub fn ended(&self) -> Instant {
        self.ended
    }

    /// How long the request took, `ended - started` (the KPL's `Attempt.getDuration`).
    pub fn duration(&self) -> Duration {
        self.ended.saturating_duration_since(self.started)
    }

    /// Time waited before this attempt: since the record's put for the first attempt, else since the
    /// previous attempt ended (the KPL's `Attempt.getDelay`).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Why it did not succeed; `None` for the successful attempt.
    pub fn error(&self) -> Option<&AttemptError> {
        self.error.as_deref()
    }

    /// Whether it succeeded (the KPL's `Attempt.isSuccessful`).
    pub fn is_successful(&self) -> bool {
        self.error.is_none()
    }
}

/// Every attempt of a written record, in order, the successful one last: read it as a slice
/// (`Deref<Target = [Attempt]>`; the KPL's `getAttempts`), or take it with [`into_vec`](Self::into_vec)
/// or `into_iter`. A lone attempt is held inline, so that a record written at its first try, as nearly all
/// are, costs no allocation for its attempts. [`RecordFailure::attempts`] is a plain `Vec`: failures are
/// rare, and an inline attempt there would make every result, written or not, larger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts(AttemptList);

#[derive(Debug, Clone, PartialEq, Eq)]
enum AttemptList {
    One(Attempt),
    Many(Vec<Attempt>),
}

impl Attempts {
    /// The earlier attempts (`earlier`, usually empty) followed by `last`.
    pub(crate) fn with_last(earlier: Vec<Attempt>, last: Attempt) -> Self {
        if earlier.is_empty() {
            return Self(AttemptList::One(last));
        }
        let mut all = earlier;
        all.push(last);
        Self(AttemptList::Many(all))
    }
}

impl Attempts {
    /// The attempts as a `Vec` (allocated here for a lone attempt).
    pub fn into_vec(self) -> Vec<Attempt> {
        match self.0 {
            AttemptList::One(only) => vec![only],
            AttemptList::Many(all) => all,
        }
    }
}

impl IntoIterator for Attempts {
    type Item = Attempt;
    type IntoIter = std::vec::IntoIter<Attempt>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl std::ops::Deref for Attempts {
    type Target = [Attempt];

    fn deref(&self) -> &[Attempt] {
        match &self.0 {
            AttemptList::One(only) => std::slice::from_ref(only),
            AttemptList::Many(all) => all,
        }
    }
}

impl<'a> IntoIterator for &'a Attempts {
    type Item = &'a Attempt;
    type IntoIter = std::slice::Iter<'a, Attempt>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The error of a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptError {
    /// Whose condition it is: the service's, or one the producer found itself.
    pub kind: AttemptErrorKind,
    /// The error code: the service's (`ProvisionedThroughputExceededException`, `InternalFailure`, ...)
    /// or the producer's (`Wrong Shard`, `Record Count Mismatch`, `Timeout`, as the KPL writes them).
    pub code: String,
    /// The message.
    pub message: String,
}

/// What kind of failure an [`AttemptError`] is: its code typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptErrorKind {
    /// Kinesis answered with this error code (for the entry, or for the whole request).
    Service,
    /// The request failed with no service error code (a timeout, a transport error): the code is the
    /// class's name, e.g. `Timeout`.
    Request(RequestErrorKind),
    /// Written to a shard other than predicted that does not hold all of its records: code `Wrong Shard`.
    WrongShard,
    /// The response held a different number of results than the request had entries: code
    /// `Record Count Mismatch`.
    RecordCountMismatch,
}

impl AttemptError {
    /// An error of the producer's own `kind` (not [`AttemptErrorKind::Service`]), with the KPL's code for it.
    pub(crate) fn producer(kind: AttemptErrorKind, message: String) -> Self {
        let code = match kind {
            AttemptErrorKind::WrongShard => "Wrong Shard".to_owned(),
            AttemptErrorKind::RecordCountMismatch => "Record Count Mismatch".to_owned(),
            AttemptErrorKind::Request(class) => format!("{class:?}"),
            AttemptErrorKind::Service => String::new(),
        };
        Self { kind, code, message }
    }

    /// An error Kinesis reported with `code`.
    pub(crate) fn service(code: String, message: String) -> Self {
        Self { kind: AttemptErrorKind::Service, code, message }
    }

    /// The error of a whole request that failed.
    pub(crate) fn request(error: &RequestError) -> Self {
        match &error.code {
            Some(code) => Self::service(code.clone(), error.message.clone()),
            None => Self::producer(AttemptErrorKind::Request(error.kind), error.message.clone()),
        }
    }

    /// The error code (the KPL's `Attempt.getErrorCode`).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message (the KPL's `Attempt.getErrorMessage`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A record was written. Built by the producer only (`#[non_exhaustive]`): read it through its fields or
/// methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordReceipt {
    /// The shard that holds it.
    pub shard_id: ShardId,
    /// The sequence number of the Kinesis record that carries it (shared by all user records of one
    /// aggregate, as in the KPL).
    pub sequence_number: Arc<str>,
    /// Every attempt, the successful one last.
    pub attempts: Attempts,
    /// An earlier attempt was ambiguous (timed out, or wrongly routed and written), so the record may be in
    /// the stream more than once.
    pub maybe_duplicated: bool,
    /// When `put_record` accepted it (the `now` it was given).
    pub put_time: Instant,
}

impl RecordReceipt {
    /// The shard that holds it (the KPL's `getShardId`).
    pub fn shard_id(&self) -> &ShardId {
        &self.shard_id
    }

    /// The sequence number of the Kinesis record that carries it (the KPL's `getSequenceNumber`).
    pub fn sequence_number(&self) -> &str {
        &self.sequence_number
    }

    /// Every attempt, the successful one last (the KPL's `getAttempts`).
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// Whether the record may be in the stream more than once.
    pub fn maybe_duplicated(&self) -> bool {
        self.maybe_duplicated
    }

    /// When `put_record` accepted it.
    pub fn put_time(&self) -> Instant {
        self.put_time
    }
}

/// A record was not written, and never will be by this producer. Built by the producer only
/// (`#[non_exhaustive]`): read it through its fields or methods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
#[non_exhaustive]
pub struct RecordFailure {
    /// Why.
    pub error: RecordError,
    /// Every attempt made.
    pub attempts: Vec<Attempt>,
    /// An ambiguous attempt may have written it after all.
    pub maybe_duplicated: bool,
    /// When `put_record` accepted it.
    pub put_time: Instant,
    /// The record itself, with `return_user_record_on_failure` set (the KPL's `ReturnUserRecordOnFailure`),
    /// to send it elsewhere or again; `None` otherwise. Boxed to keep failures small. Its data may be a slice
    /// of the aggregate it was last sent in (the producer holds each record's data once), which stays in
    /// memory, up to `aggregation_max_size`, while the slice does: copy the data out
    /// (`Bytes::copy_from_slice`) to keep many failed records for long.
    pub record: Option<Box<UserRecord>>,
}

impl RecordFailure {
    /// Why.
    pub fn error(&self) -> &RecordError {
        &self.error
    }

    /// Every attempt made (the KPL's `getAttempts`).
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// Whether an ambiguous attempt may have written it after all.
    pub fn maybe_duplicated(&self) -> bool {
        self.maybe_duplicated
    }

    /// When `put_record` accepted it.
    pub fn put_time(&self) -> Instant {
        self.put_time
    }

    /// The record, with `return_user_record_on_failure` set (its explicit hash key, if it had one, in
    /// canonical decimal form).
    pub fn record(&self) -> Option<&UserRecord> {
        self.record.as_deref()
    }

    /// Takes the record out, with `return_user_record_on_failure` set.
    pub fn into_record(self) -> Option<UserRecord> {
        self.record.map(|record| *record)
    }
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
    /// The producer holds `max_outstanding_records` or `max_outstanding_bytes` already, or the record's
    /// stream holds what it drains in its drain window
    /// ([`ProducerConfig::admits_to_stream`](crate::ProducerConfig::admits_to_stream)); wait for
    /// `Event::CapacityAvailable` and try again. The counts are the producer's, all streams together.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producers_own_attempt_errors_are_typed_with_the_kpls_codes() {
        let wrong = AttemptError::producer(AttemptErrorKind::WrongShard, "written elsewhere".into());
        assert_eq!((wrong.kind, wrong.code()), (AttemptErrorKind::WrongShard, "Wrong Shard"));
        let count = AttemptError::producer(AttemptErrorKind::RecordCountMismatch, "2 results for 3".into());
        assert_eq!(count.code(), "Record Count Mismatch");
        let timeout = AttemptError::request(&RequestError::new(RequestErrorKind::Timeout, None, "late"));
        assert_eq!(
            (timeout.kind, timeout.code()),
            (AttemptErrorKind::Request(RequestErrorKind::Timeout), "Timeout")
        );
        let service = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "no");
        let denied = AttemptError::request(&service);
        assert_eq!(
            (denied.kind, denied.code(), denied.message()),
            (AttemptErrorKind::Service, "AccessDeniedException", "no")
        );
    }

    #[test]
    fn attempts_read_as_a_slice_and_come_out_in_order() {
        let t0 = crate::test_epoch();
        let ms = std::time::Duration::from_millis;
        let failed =
            Attempt::new(t0, t0 + ms(1), t0 + ms(2), Some(AttemptError::service("X".into(), "x".into())));
        let success = Attempt::new(t0 + ms(2), t0 + ms(5), t0 + ms(6), None);
        let lone = Attempts::with_last(Vec::new(), success.clone());
        assert_eq!((lone.len(), lone[0].delay(), lone[0].is_successful()), (1, ms(3), true));
        assert_eq!(lone.into_vec(), vec![success.clone()]);
        let retried = Attempts::with_last(vec![failed.clone()], success.clone());
        assert_eq!(retried.iter().map(Attempt::is_successful).collect::<Vec<_>>(), vec![false, true]);
        assert_eq!(retried.into_iter().collect::<Vec<_>>(), vec![failed, success]);
    }
}
