//! The per-stream pipeline state: shard map, aggregation buffers, per-shard queues and the collector.
//! The `Producer` moves records between these; this module only keeps them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kpl_deagg::{AggregateBuilder, AggregateFull, AggregateLimits};

use crate::ids::{ShardId, StreamTarget};
use crate::limiter::ShardLimiter;
use crate::map::DetMap;
use crate::metrics::Series;
use crate::pending::{KinesisRecordState, PendingRecord};
use crate::request::ShardDescription;
use crate::shard_map::ShardMap;
use crate::time::earliest;

/// First delay before retrying a failed `ListShards`; then ×1.5 per failure up to the maximum (the KPL's).
pub(crate) const LIST_SHARDS_MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Largest delay before retrying a failed `ListShards`.
pub(crate) const LIST_SHARDS_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What an aggregation buffer collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum AggKey {
    /// Records predicted to this shard slot.
    Shard(u32),
    /// Records with this hash key.
    HashKey(u128),
}

/// User records being aggregated into one Kinesis record.
#[derive(Debug, Default)]
pub(crate) struct AggBuffer {
    builder: AggregateBuilder,
    users: Vec<PendingRecord>,
    pub(crate) deadline: Option<Instant>,
    expiration: Option<Instant>,
}

impl AggBuffer {
    /// Adds the record unless it would break `limits`; then it is handed back, by value since the caller
    /// goes on with it (it is no error).
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_add(
        &mut self,
        record: PendingRecord,
        limits: AggregateLimits,
    ) -> Result<(), PendingRecord> {
        let added =
            self.builder.try_add(&record.partition_key, record.explicit_hash_key, &record.data, limits);
        match added {
            Ok(()) => {
                self.deadline = earliest(self.deadline, record.deadline);
                self.expiration = earliest(self.expiration, record.expiration);
                self.users.push(record);
                Ok(())
            }
            Err(AggregateFull { .. }) => Err(record),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// Finishes the Kinesis record, leaving the buffer empty.
    pub(crate) fn take(&mut self, seq: u64, slot: Option<u32>) -> Option<KinesisRecordState> {
        let entry = self.builder.finish()?;
        let deadline = self.deadline.take();
        let expiration = self.expiration.take();
        Some(KinesisRecordState {
            seq,
            entry,
            users: std::mem::take(&mut self.users),
            slot,
            deadline,
            expiration,
        })
    }
}

/// One shard the producer has seen in a listing.
#[derive(Debug)]
pub(crate) struct ShardState {
    pub(crate) id: ShardId,
    pub(crate) starting_hash_key: u128,
    pub(crate) ending_hash_key: u128,
    pub(crate) limiter: ShardLimiter,
    /// Kinesis records waiting for the limiter, oldest first.
    pub(crate) queue: VecDeque<KinesisRecordState>,
    /// When the limiter is due to let the queue's head through (a timer is set for it).
    pub(crate) wake: Option<Instant>,
    /// No queued record expires before this (a lower bound; `None`: none expires).
    pub(crate) queue_expiry: Option<Instant>,
    /// Consecutive failed responses, for the retry backoff.
    pub(crate) failures: u32,
}

impl ShardState {
    pub(crate) fn contains(&self, hash_key: u128) -> bool {
        (self.starting_hash_key..=self.ending_hash_key).contains(&hash_key)
    }
}

/// Kinesis records being collected into the next PutRecords request.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub(crate) records: Vec<KinesisRecordState>,
    pub(crate) size: usize,
    pub(crate) shard_bytes: DetMap<u32, usize>,
    pub(crate) deadline: Option<Instant>,
    /// A record buffered before a `flush` is here: send without waiting for the deadline.
    pub(crate) flush_requested: bool,
}

impl Collector {
    /// Adds a record; returns the bytes now collected for its shard.
    pub(crate) fn add(&mut self, record: KinesisRecordState) -> usize {
        let size = record.wire_size();
        self.size += size;
        self.deadline = earliest(self.deadline, record.deadline);
        let shard_bytes = match record.slot {
            Some(slot) => {
                let bytes = self.shard_bytes.entry(slot).or_default();
                *bytes += size;
                *bytes
            }
            None => 0,
        };
        self.records.push(record);
        shard_bytes
    }

    /// Takes everything collected.
    pub(crate) fn take(&mut self) -> Vec<KinesisRecordState> {
        self.size = 0;
        self.deadline = None;
        self.flush_requested = false;
        self.shard_bytes.clear();
        std::mem::take(&mut self.records)
    }
}

/// Where fetching the shard map stands.
#[derive(Debug)]
pub(crate) enum Fetch {
    /// Nothing to do.
    Idle,
    /// A `ListShards` page should be sent.
    Wanted { next_token: Option<String>, shards: Vec<ShardDescription> },
    /// A page is in flight.
    InFlight { shards: Vec<ShardDescription> },
    /// The last listing failed; try again then.
    Waiting { until: Instant },
}

/// Everything the producer keeps for one stream.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) target: StreamTarget,
    /// Prediction map over open shards; `None` until the first listing.
    pub(crate) map: Option<ShardMap>,
    /// When the current map was installed.
    pub(crate) map_updated_at: Option<Instant>,
    pub(crate) fetch: Fetch,
    pub(crate) fetch_backoff: Duration,
    /// Every shard seen, open or recently closed, by slot.
    pub(crate) shards: Vec<ShardState>,
    pub(crate) slot_by_id: DetMap<ShardId, u32>,
    pub(crate) buffers: DetMap<AggKey, AggBuffer>,
    /// Records waiting for the first shard map (`ShardMapWait::Hold`).
    pub(crate) held: Vec<PendingRecord>,
    /// When holding for the first shard map gives up (`shard_map_wait_timeout` after the stream was seen).
    pub(crate) hold_until: Option<Instant>,
    /// No shard map could be had in time: records are aggregated by hash key until one arrives.
    pub(crate) map_unavailable: bool,
    pub(crate) collector: Collector,
    /// Kinesis records created before this sequence number are being flushed.
    pub(crate) flush_through: u64,
    /// Consecutive failures of records with no predicted shard, for their retry backoff.
    pub(crate) unpredicted_failures: u32,
    /// Records accepted for the stream (`UserRecordsReceived`), counted here since it is per put: no map
    /// lookup on the hot path.
    pub(crate) user_records_received: Series,
    /// Records accepted for the stream and not completed.
    pub(crate) pending: u64,
    /// Samples of `pending` every 200 ms (`UserRecordsPending`), kept here like `user_records_received`.
    pub(crate) pending_samples: Series,
}

impl Stream {
    pub(crate) fn new(target: StreamTarget, hold_until: Option<Instant>) -> Self {
        Self {
            target,
            hold_until,
            map_unavailable: false,
            map: None,
            map_updated_at: None,
            fetch: Fetch::Wanted { next_token: None, shards: Vec::new() },
            fetch_backoff: LIST_SHARDS_MIN_BACKOFF,
            shards: Vec::new(),
            slot_by_id: DetMap::default(),
            buffers: DetMap::default(),
            held: Vec::new(),
            collector: Collector::default(),
            flush_through: 0,
            unpredicted_failures: 0,
            user_records_received: Series::default(),
            pending: 0,
            pending_samples: Series::default(),
        }
    }

    /// The slot of a shard id, if it was ever listed.
    pub(crate) fn shard(&self, id: &ShardId) -> Option<&ShardState> {
        self.slot_by_id.get(id).map(|&slot| &self.shards[slot as usize])
    }

    /// Installs a complete listing: updates or adds every shard, and predicts over the open ones.
    /// Returns the number of open shards.
    pub(crate) fn install_map(
        &mut self,
        now: Instant,
        listing: Vec<ShardDescription>,
        new_limiter: impl Fn() -> ShardLimiter,
    ) -> usize {
        let mut ends = Vec::new();
        for shard in listing {
            let slot = match self.slot_by_id.get(&shard.shard_id) {
                Some(&slot) => slot,
                None => {
                    let slot = self.shards.len() as u32;
                    self.slot_by_id.insert(shard.shard_id.clone(), slot);
                    self.shards.push(ShardState {
                        id: shard.shard_id.clone(),
                        starting_hash_key: shard.starting_hash_key,
                        ending_hash_key: shard.ending_hash_key,
                        limiter: new_limiter(),
                        queue: VecDeque::new(),
                        wake: None,
                        queue_expiry: None,
                        failures: 0,
                    });
                    slot
                }
            };
            if shard.is_open {
                ends.push((shard.ending_hash_key, slot));
            }
        }
        let open = ends.len();
        self.map = Some(ShardMap::new(ends));
        self.map_unavailable = false;
        self.map_updated_at = Some(now);
        self.fetch = Fetch::Idle;
        self.fetch_backoff = LIST_SHARDS_MIN_BACKOFF;
        open
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::ids::RecordId;

    fn record(id: u64, deadline: Instant, expiration: Instant) -> PendingRecord {
        PendingRecord {
            id: RecordId(id),
            partition_key: format!("key-{id}"),
            explicit_hash_key: None,
            hash_key: 0,
            data: Bytes::from_static(b"data"),
            arrival: deadline,
            deadline: Some(deadline),
            expiration: Some(expiration),
            attempts: Vec::new(),
            maybe_duplicated: false,
            isolated: false,
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
        let taken = buffer.take(7, Some(3)).expect("three records");
        assert_eq!((taken.deadline, taken.expiration), (Some(t0 + ms(50)), Some(t0 + ms(20_000))));
        assert_eq!((taken.seq, taken.slot, taken.users.len()), (7, Some(3), 3));
        // The emptied buffer starts afresh.
        assert_eq!(buffer.deadline, None);
        assert!(buffer.take(8, None).is_none());
    }
}
