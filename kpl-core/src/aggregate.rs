//! Aggregation: user records packed into Kinesis records, one buffer per predicted shard (or per hash key),
//! each sent by its earliest record's deadline, or when full. Owns the buffers, their deadlines and timers,
//! and the creation order of Kinesis records (which `flush` reads).

use std::collections::BTreeSet;
use std::time::Instant;

use kpl_deagg::{AggregateBuilder, AggregateFull, AggregateLimits, KinesisRecord};

use crate::ids::{ShardSlot, StreamIx};
use crate::map::DetMap;
use crate::outgoing::{AcceptedRecord, OutgoingRecord};
use crate::time::{earliest, has_passed};

/// What an aggregation buffer collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum AggKey {
    /// Records predicted to this shard.
    Shard(ShardSlot),
    /// Records with this hash key.
    HashKey(u128),
}

/// What became of a record given to [`Aggregation::add`].
#[must_use]
#[derive(Debug)]
pub(crate) enum Added {
    /// It waits in its buffer (whose deadline has a timer, or is due at the end of the input).
    Buffered,
    /// It filled the buffer to `AggregationMaxCount`: the buffer is to be finished now.
    Complete,
    /// It does not fit: the buffer is to be finished, and the record added again to the emptied one.
    Full(AcceptedRecord),
}

/// User records being aggregated into one Kinesis record.
#[derive(Debug, Default)]
struct AggBuffer {
    builder: AggregateBuilder,
    users: Vec<AcceptedRecord>,
    /// Records the previous aggregate held: the next is likely to hold as many.
    last_count: usize,
    deadline: Option<Instant>,
    expiration: Option<Instant>,
}

impl AggBuffer {
    /// Adds the record unless it would break `limits`; then it is handed back, by value since the caller
    /// goes on with it (it is no error).
    #[allow(clippy::result_large_err)]
    fn try_add(&mut self, record: AcceptedRecord, limits: AggregateLimits) -> Result<(), AcceptedRecord> {
        let added =
            self.builder.try_add(&record.partition_key, record.explicit_hash_key(), &record.data, limits);
        match added {
            Ok(()) => {
                if self.users.capacity() == 0 {
                    // Room for as many as last time at once, rather than growing by doubling (reallocations
                    // and copies, and up to half the room unused while the records wait).
                    self.users.reserve_exact(self.last_count.max(1));
                }
                self.deadline = earliest(self.deadline, record.deadline);
                self.expiration = earliest(self.expiration, record.expiration);
                self.users.push(record);
                Ok(())
            }
            Err(AggregateFull { .. }) => Err(record),
        }
    }

    /// Finishes the Kinesis record, leaving the buffer empty. The user records' data is swapped for slices
    /// of the aggregate, so that while the Kinesis record waits for its shard's quota and its request, each
    /// record's data is held once (the user's copy is freed), not twice.
    fn take(&mut self, seq: u64, slot: Option<ShardSlot>) -> Option<OutgoingRecord> {
        let users = &mut self.users;
        let entry = self.builder.finish_sharing(|index, data| users[index].data = data)?;
        self.last_count = users.len();
        Some(OutgoingRecord {
            seq,
            entry,
            users: std::mem::take(users),
            slot,
            deadline: self.deadline.take(),
            expiration: self.expiration.take(),
        })
    }
}

/// The aggregation stage of every stream.
#[derive(Debug)]
pub(crate) struct Aggregation {
    limits: AggregateLimits,
    /// Per stream, its buffers.
    buffers: Vec<DetMap<AggKey, AggBuffer>>,
    /// Buffer deadlines. Never cancelled: one that no longer matches its buffer is stale and does nothing.
    timers: BTreeSet<(Instant, StreamIx, AggKey)>,
    /// Buffers that fell due during the current input, sent once it is done (see `Producer::send_due`).
    due: Vec<(StreamIx, AggKey)>,
    /// Kinesis records created so far: the next one's sequence number.
    created: u64,
}

impl Aggregation {
    pub(crate) fn new(limits: AggregateLimits) -> Self {
        Self { limits, buffers: Vec::new(), timers: BTreeSet::new(), due: Vec::new(), created: 0 }
    }

    pub(crate) fn stream_added(&mut self) {
        self.buffers.push(DetMap::default());
    }

    /// Kinesis records created so far; every later one has a sequence number at least this.
    pub(crate) fn created(&self) -> u64 {
        self.created
    }

    fn next_seq(&mut self) -> u64 {
        self.created += 1;
        self.created - 1
    }

    /// The fast path for a record that goes alone: its Kinesis record is itself, with no aggregate built
    /// (and no second MD5 of its key: its hash key is known).
    pub(crate) fn alone(&mut self, record: AcceptedRecord, slot: Option<ShardSlot>) -> OutgoingRecord {
        let entry = KinesisRecord {
            partition_key: record.partition_key.clone(),
            explicit_hash_key: record.hash_key,
            data: record.data.clone(),
            user_records: 1,
        };
        OutgoingRecord {
            seq: self.next_seq(),
            entry,
            slot,
            deadline: record.deadline,
            expiration: record.expiration,
            users: vec![record],
        }
    }

    /// Adds a record to the buffer of `key` in stream `s`.
    pub(crate) fn add(&mut self, now: Instant, s: StreamIx, key: AggKey, record: AcceptedRecord) -> Added {
        let buffer = self.buffers[s.index()].entry(key).or_default();
        let before = buffer.deadline;
        if let Err(record) = buffer.try_add(record, self.limits) {
            return Added::Full(record);
        }
        if buffer.users.len() >= self.limits.max_count {
            Added::Complete
        } else if has_passed(buffer.deadline, now) {
            // Already due (a held or retried record, or no buffering time): send it once this input is
            // done, with whatever else the input brings, rather than alone now.
            if !has_passed(before, now) {
                self.due.push((s, key));
            }
            Added::Buffered
        } else {
            if buffer.deadline != before
                && let Some(deadline) = buffer.deadline
            {
                self.timers.insert((deadline, s, key));
            }
            Added::Buffered
        }
    }

    /// Turns a buffer into a Kinesis record, predicted to `slot` (for a hash key's buffer, `predict` finds
    /// it). A shard's buffer is kept, empty, so its allocations serve the next aggregate; hash keys are
    /// unbounded in number, so their buffers go.
    pub(crate) fn finish(
        &mut self,
        s: StreamIx,
        key: AggKey,
        predict: impl FnOnce(u128) -> Option<ShardSlot>,
    ) -> Option<OutgoingRecord> {
        let seq = self.created;
        let record = match key {
            AggKey::Shard(slot) => {
                self.buffers[s.index()].get_mut(&key).and_then(|buffer| buffer.take(seq, Some(slot)))
            }
            AggKey::HashKey(hash_key) => self.buffers[s.index()]
                .remove(&key)
                .and_then(|mut buffer| buffer.take(seq, predict(hash_key))),
        };
        if record.is_some() {
            self.created += 1;
        }
        record
    }

    /// The buffers of stream `s` holding records, in key order (for `flush`).
    pub(crate) fn keys(&self, s: StreamIx) -> Vec<AggKey> {
        let mut keys: Vec<AggKey> = self.buffers[s.index()].keys().copied().collect();
        keys.sort_unstable();
        keys
    }

    /// [`finish`](Self::finish)es the buffer of `key` if it is due at `now` (it may have gone out since it
    /// fell due, or since its timer was set).
    pub(crate) fn finish_due(
        &mut self,
        now: Instant,
        s: StreamIx,
        key: AggKey,
        predict: impl FnOnce(u128) -> Option<ShardSlot>,
    ) -> Option<OutgoingRecord> {
        let due = self.buffers[s.index()].get(&key).is_some_and(|buffer| has_passed(buffer.deadline, now));
        if due { self.finish(s, key, predict) } else { None }
    }

    /// The buffers that fell due during this input, for [`finish_due`](Self::finish_due).
    pub(crate) fn take_due(&mut self) -> Vec<(StreamIx, AggKey)> {
        std::mem::take(&mut self.due)
    }

    pub(crate) fn has_due(&self) -> bool {
        !self.due.is_empty()
    }

    /// The earliest timer, stale or not.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _, _)| at)
    }

    /// Removes the earliest timer; its buffer is for [`finish_due`](Self::finish_due).
    pub(crate) fn pop_timer(&mut self) -> Option<(StreamIx, AggKey)> {
        self.timers.pop_first().map(|(_, s, key)| (s, key))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::ids::RecordId;

    fn record(id: u64, deadline: Instant, expiration: Instant) -> AcceptedRecord {
        AcceptedRecord {
            id: RecordId(id),
            partition_key: format!("key-{id}"),
            hash_key: 0,
            has_explicit_hash_key: false,
            data: Bytes::from_static(b"data"),
            arrival: deadline,
            deadline: Some(deadline),
            expiration: Some(expiration),
            retried: None,
        }
    }

    #[test]
    fn a_kinesis_record_inherits_the_earliest_deadline_and_expiration_of_its_records() {
        let t0 = crate::test_epoch();
        let ms = Duration::from_millis;
        let limits = AggregateLimits { max_size: 51_200, max_count: 100 };
        let mut buffer = AggBuffer::default();
        assert!(buffer.try_add(record(0, t0 + ms(100), t0 + ms(30_000)), limits).is_ok());
        // A retried record joins with an earlier deadline and an earlier expiration.
        assert!(buffer.try_add(record(1, t0 + ms(50), t0 + ms(20_000)), limits).is_ok());
        assert!(buffer.try_add(record(2, t0 + ms(150), t0 + ms(40_000)), limits).is_ok());
        assert_eq!(buffer.deadline, Some(t0 + ms(50)));
        let taken = buffer.take(7, Some(ShardSlot(3))).expect("three records");
        assert_eq!((taken.deadline, taken.expiration), (Some(t0 + ms(50)), Some(t0 + ms(20_000))));
        assert_eq!((taken.seq, taken.slot, taken.users.len()), (7, Some(ShardSlot(3)), 3));
        // The emptied buffer starts afresh.
        assert_eq!(buffer.deadline, None);
        assert!(buffer.take(8, None).is_none());
    }

    #[test]
    fn a_record_alone_is_its_own_kinesis_record() {
        let t0 = crate::test_epoch();
        let mut aggregation = Aggregation::new(AggregateLimits { max_size: 51_200, max_count: 100 });
        let mut lone = record(0, t0, t0 + Duration::from_secs(30));
        lone.hash_key = kpl_deagg::partition_key_hash(&lone.partition_key);
        let mut builder = AggregateBuilder::default();
        builder.try_add(&lone.partition_key, None, &lone.data, aggregation.limits).expect("fits");
        let built = builder.finish().expect("one record");
        let fast = aggregation.alone(lone, Some(ShardSlot(1)));
        assert_eq!(fast.entry, built, "the same entry as the builder makes");
        assert_eq!((fast.seq, fast.slot, aggregation.created()), (0, Some(ShardSlot(1)), 1));
    }
}
