//! Records on their way: user records the producer holds, and the Kinesis records built from them.

use std::time::Instant;

use bytes::Bytes;

use crate::ids::{RecordId, ShardSlot};
use crate::record::{Attempt, AttemptError, Attempts};

/// A user record accepted and not yet completed.
#[derive(Debug)]
pub(crate) struct AcceptedRecord {
    pub(crate) id: RecordId,
    pub(crate) partition_key: String,
    /// The explicit hash key, else the MD5 of the partition key.
    pub(crate) hash_key: u128,
    /// Whether `hash_key` is an explicit hash key the user gave (which an aggregate then carries).
    pub(crate) has_explicit_hash_key: bool,
    pub(crate) data: Bytes,
    /// When `put_record` took it.
    pub(crate) arrival: Instant,
    /// When it must be on its way (buffering deadline of the current attempt); `None` is never.
    pub(crate) deadline: Option<Instant>,
    /// When its TTL passes; `None` is never.
    pub(crate) expiration: Option<Instant>,
    /// What a failed attempt left: `None`, and nothing allocated, until an attempt fails (most records never
    /// need it, so it costs a pointer rather than its fields inline).
    pub(crate) retried: Option<Box<Retried>>,
}

/// What a record carries once an attempt at it failed.
#[derive(Debug, Default)]
pub(crate) struct Retried {
    /// The failed attempts, in order.
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) maybe_duplicated: bool,
    /// A request carrying it was refused for its content and the culprit is not known: it goes alone, in
    /// a request of its own, so that a refusal names it.
    pub(crate) isolated: bool,
}

impl AcceptedRecord {
    /// What it counts against the outstanding-bytes limit: data plus partition key, as Kinesis counts.
    pub(crate) fn cost(&self) -> usize {
        self.partition_key.len() + self.data.len()
    }

    /// The explicit hash key the user gave, if any.
    pub(crate) fn explicit_hash_key(&self) -> Option<u128> {
        self.has_explicit_hash_key.then_some(self.hash_key)
    }

    /// Its failed attempts so far.
    pub(crate) fn failed_attempts(&self) -> &[Attempt] {
        self.retried.as_ref().map_or(&[], |retried| &retried.attempts)
    }

    /// Whether an ambiguous attempt may have written it already.
    pub(crate) fn maybe_duplicated(&self) -> bool {
        self.retried.as_ref().is_some_and(|retried| retried.maybe_duplicated)
    }

    /// Whether it must go alone (see [`Retried::isolated`]).
    pub(crate) fn isolated(&self) -> bool {
        self.retried.as_ref().is_some_and(|retried| retried.isolated)
    }

    /// An attempt from `started` to `ended`; its delay runs from the previous attempt's end, or the record's
    /// arrival.
    fn attempt(&self, started: Instant, ended: Instant, error: Option<AttemptError>) -> Attempt {
        let previous_end = self.failed_attempts().last().map_or(self.arrival, |attempt| attempt.ended);
        Attempt::new(previous_end, started, ended, error)
    }

    /// Records a failed attempt from `started` to `ended`; returns what the record now carries, to flag.
    pub(crate) fn push_attempt(
        &mut self,
        started: Instant,
        ended: Instant,
        error: AttemptError,
    ) -> &mut Retried {
        let attempt = self.attempt(started, ended, Some(error));
        let retried = self.retried.get_or_insert_with(Box::default);
        retried.attempts.push(attempt);
        retried
    }

    /// Every attempt, the successful one from `started` to `ended` last: no allocation for a record written
    /// at its first try.
    pub(crate) fn attempts_with_success(&mut self, started: Instant, ended: Instant) -> Attempts {
        let success = self.attempt(started, ended, None);
        let earlier = self.retried.as_mut().map(|retried| std::mem::take(&mut retried.attempts));
        Attempts::with_last(earlier.unwrap_or_default(), success)
    }

    /// Its failed attempts, taken out (for its failure).
    pub(crate) fn take_attempts(&mut self) -> Vec<Attempt> {
        self.retried.as_mut().map(|retried| std::mem::take(&mut retried.attempts)).unwrap_or_default()
    }
}

/// One Kinesis record (a PutRecords entry) and the user records inside it.
#[derive(Debug)]
pub(crate) struct OutgoingRecord {
    /// Creation order of Kinesis records within the producer; `flush` uses it to know what was buffered
    /// before it.
    pub(crate) seq: u64,
    pub(crate) entry: kpl_deagg::KinesisRecord,
    pub(crate) users: Vec<AcceptedRecord>,
    /// Slot of the shard it was predicted to, if any.
    pub(crate) slot: Option<ShardSlot>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) expiration: Option<Instant>,
}

impl OutgoingRecord {
    /// Bytes it counts in a PutRecords request and against a shard's rate: partition key plus data.
    pub(crate) fn wire_size(&self) -> usize {
        self.entry.partition_key.len() + self.entry.data.len()
    }

    /// Whether it must be sent in a request of its own (see `AcceptedRecord::isolated`). An isolated record
    /// always goes alone, so only a single-record Kinesis record can be one: no scan of an aggregate.
    pub(crate) fn isolated(&self) -> bool {
        matches!(self.users.as_slice(), [only] if only.isolated())
    }
}

/// What a request's log span tells about `records` (see `PutRecordsRequest::attempt` and `shards`): the
/// highest attempt among them, counting each by its first user record (an aggregate's users move together,
/// and looking at one per entry keeps this off the per-record path), and how many shards they were
/// predicted to.
pub(crate) fn request_context(records: &[OutgoingRecord]) -> (u32, u32) {
    let attempts =
        records.iter().filter_map(|record| record.users.first()).map(|user| user.failed_attempts().len());
    let attempt = u32::try_from(attempts.max().unwrap_or(0)).unwrap_or(u32::MAX).saturating_add(1);
    let mut slots: Vec<ShardSlot> = records.iter().filter_map(|record| record.slot).collect();
    slots.sort_unstable();
    slots.dedup();
    (attempt, u32::try_from(slots.len()).unwrap_or(u32::MAX))
}
