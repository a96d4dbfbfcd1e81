//! The pipeline's wiring: where a record goes next, and the stages' timers.

use std::time::Instant;

use super::Producer;
use crate::aggregate::{Added, AggKey};
use crate::config::{AggregationPolicy, ShardMapWait};
use crate::ids::{ShardSlot, StreamIx, StreamTarget};
use crate::listing::TimerFired;
use crate::outgoing::{AcceptedRecord, OutgoingRecord};
use crate::time::has_passed;

/// The stages' timers, in the order they fire when due at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Aggregation,
    ShardQueues,
    Collection,
    Listing,
}

impl Producer {
    /// When the earliest stage timer is due (stale or not).
    pub(super) fn next_timer_at(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// The earliest stage timer, stale or not.
    fn next_timer(&self) -> Option<(Instant, Stage)> {
        [
            self.aggregation.next_timer().map(|at| (at, Stage::Aggregation)),
            self.shard_queues.next_timer().map(|at| (at, Stage::ShardQueues)),
            self.collection.next_timer().map(|at| (at, Stage::Collection)),
            self.listing.next_timer().map(|at| (at, Stage::Listing)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires the stages' timers due at `now`, in time order (and, at one instant, in pipeline order, as
    /// [`Stage`] sorts). Stale timers do nothing.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some((at, stage)) = self.next_timer()
            && at <= now
        {
            match stage {
                Stage::Aggregation => {
                    if let Some((s, key)) = self.aggregation.pop_timer() {
                        self.finish_buffer(now, s, key, true);
                    }
                }
                Stage::ShardQueues => {
                    if let Some((s, slot)) = self.shard_queues.pop_timer() {
                        self.drain_shard(now, s, slot);
                    }
                }
                Stage::Collection => self.collection.fire_timer(now),
                Stage::Listing => match self.listing.fire_timer(now) {
                    Some(TimerFired::HoldTimedOut(s)) => {
                        let waited = self.config.shard_map_wait_timeout();
                        let reason = format!("no shard map within shard_map_wait_timeout ({waited:?})");
                        self.give_up_holding(now, s, reason);
                    }
                    Some(TimerFired::HeldExpired(s, expired)) => {
                        for record in expired {
                            self.fail_expired(s, record);
                        }
                    }
                    None => {}
                },
            }
        }
    }

    /// Sends a record on its way: into an aggregation buffer, alone into a Kinesis record, or into the
    /// hold for the shard map.
    pub(super) fn route(&mut self, now: Instant, s: StreamIx, record: AcceptedRecord) {
        let slot = self.listing.predict(s, record.hash_key);
        let key = match (self.config.aggregation(), slot) {
            _ if record.isolated() => None,
            (AggregationPolicy::PerShard, Some(slot)) => Some(AggKey::Shard(slot)),
            (AggregationPolicy::PerShard, None)
                if self.listing.awaits_first_map(s) && self.config.shard_map_wait() == ShardMapWait::Hold =>
            {
                self.listing.hold(s, record);
                return;
            }
            // With no shard map to be had, records of one hash key still share aggregates: they land on one
            // shard whatever the map.
            (AggregationPolicy::PerShard, None) if self.listing.map_unavailable(s) => {
                Some(AggKey::HashKey(record.hash_key))
            }
            (AggregationPolicy::SameHashKey, _) => Some(AggKey::HashKey(record.hash_key)),
            _ => None,
        };
        match key {
            Some(key) => self.aggregate(now, s, key, record),
            None => {
                let alone = self.aggregation.alone(record, slot);
                self.enqueue(now, s, alone);
            }
        }
    }

    pub(super) fn aggregate(&mut self, now: Instant, s: StreamIx, key: AggKey, record: AcceptedRecord) {
        match self.aggregation.add(now, s, key, record) {
            Added::Buffered => {}
            Added::Complete => self.finish_buffer(now, s, key, false),
            Added::Full(record) => {
                // Send what it holds, start a new one with the record (an empty buffer takes anything).
                self.finish_buffer(now, s, key, false);
                self.aggregate(now, s, key, record);
            }
        }
    }

    /// Turns an aggregation buffer into a Kinesis record and sends it on (only if due, with `if_due`).
    pub(super) fn finish_buffer(&mut self, now: Instant, s: StreamIx, key: AggKey, if_due: bool) {
        let listing = &self.listing;
        let predict = |hash_key| listing.predict(s, hash_key);
        let record = if if_due {
            self.aggregation.finish_due(now, s, key, predict)
        } else {
            self.aggregation.finish(s, key, predict)
        };
        if let Some(record) = record {
            self.enqueue(now, s, record);
        }
    }

    /// A Kinesis record goes to its shard's limiter, or straight to collection when no shard is predicted.
    pub(super) fn enqueue(&mut self, now: Instant, s: StreamIx, record: OutgoingRecord) {
        match record.slot {
            Some(slot) => {
                self.shard_queues.push(s, slot, record);
                self.drain_shard(now, s, slot);
            }
            None => self.collection.collect(now, s, record),
        }
    }

    /// Lets a shard's queued Kinesis records through as fast as its limiter allows, after failing (or
    /// re-routing) what expired in the queue.
    pub(super) fn drain_shard(&mut self, now: Instant, s: StreamIx, slot: ShardSlot) {
        for record in self.shard_queues.take_expired(now, s, slot) {
            self.expire(now, s, record);
        }
        while let Some(record) = self.shard_queues.pop_ready(now, s, slot) {
            self.collection.collect(now, s, record);
        }
    }

    /// After a new shard map: what waits for a shard the map no longer has (closed by a merge or split), in
    /// its aggregation buffer or in its limiter's queue, is routed again by the new map. It then goes
    /// through the limiter of the shard that takes it; left where it was, it would drain through the closed
    /// shard's limiter on top of that shard's own traffic (a merged shard fed by three limiters), and an
    /// aggregate of a split shard would mix the children's keys.
    pub(super) fn reroute_closed_shards(&mut self, now: Instant, s: StreamIx) {
        for slot in self.listing.closed_slots(s) {
            let buffered = self.aggregation.finish(s, AggKey::Shard(slot), |_| None);
            for record in buffered.into_iter().chain(self.shard_queues.take_all(s, slot)) {
                self.expire(now, s, record);
            }
        }
    }

    /// A Kinesis record broken up (its earliest TTL passed, or its shard closed): its expired records fail,
    /// the others are routed again.
    pub(super) fn expire(&mut self, now: Instant, s: StreamIx, record: OutgoingRecord) {
        for user in record.users {
            if has_passed(user.expiration, now) {
                self.fail_expired(s, user);
            } else {
                self.route(now, s, user);
            }
        }
    }

    /// Sends the aggregation buffers and requests that fell due during an input. Called at the end of every
    /// input and command, so that records released together (a shard map arriving for held records, retries
    /// coming due, a limiter letting a backlog through) are aggregated and collected together.
    pub(super) fn send_due(&mut self, now: Instant) {
        while self.aggregation.has_due() || self.collection.has_due() {
            for (s, key) in self.aggregation.take_due() {
                self.finish_buffer(now, s, key, true);
            }
            self.collection.send_due(now);
        }
    }

    /// Sends everything buffered now (see [`flush`](Self::flush)).
    pub(super) fn send_buffered(&mut self, now: Instant, stream: Option<&StreamTarget>) {
        let selected: Vec<StreamIx> = match stream {
            Some(target) => self.listing.find(target).into_iter().collect(),
            None => self.listing.streams().collect(),
        };
        for s in selected {
            for key in self.aggregation.keys(s) {
                self.finish_buffer(now, s, key, false);
            }
            self.collection.flush(s, self.aggregation.created());
            // Records held for the shard map go out as soon as it arrives (or the hold gives up).
            self.listing.flush_held(now, s);
        }
        self.send_due(now);
    }
}
