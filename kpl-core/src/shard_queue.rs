//! Shard queues: Kinesis records predicted to a shard wait here for its rate limiter (`limiter.rs`), in
//! order. Owns each queue's wake-up (one timer per shard) and the expiry of what waits in it.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use crate::ids::{ShardSlot, StreamIx};
use crate::limiter::ShardLimiter;
use crate::outgoing::OutgoingRecord;
use crate::time::{earliest, has_passed};

/// One shard's queue.
#[derive(Debug)]
struct ShardQueue {
    limiter: ShardLimiter,
    /// Kinesis records waiting for the limiter, oldest first.
    queue: VecDeque<OutgoingRecord>,
    /// When the limiter is due to let the queue's head through (a timer is set for it).
    wake: Option<Instant>,
    /// No queued record expires before this (a lower bound; `None`: none expires).
    expiry: Option<Instant>,
}

/// The limits every shard's limiter starts with: `RateLimit` percent of the shard's records and bytes per
/// second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShardRate {
    pub(crate) percent: u64,
    pub(crate) records_per_second: u64,
    pub(crate) bytes_per_second: u64,
}

/// The queues of every shard of every stream, by slot.
#[derive(Debug)]
pub(crate) struct ShardQueues {
    rate: ShardRate,
    queues: Vec<Vec<ShardQueue>>,
    /// Wake-ups. Never cancelled: one that is not its queue's current `wake` is stale and does nothing.
    timers: BTreeSet<(Instant, StreamIx, ShardSlot)>,
}

impl ShardQueues {
    pub(crate) fn new(rate: ShardRate) -> Self {
        Self { rate, queues: Vec::new(), timers: BTreeSet::new() }
    }

    pub(crate) fn stream_added(&mut self) {
        self.queues.push(Vec::new());
    }

    /// Gives stream `s` queues for `count` shards in all (new slots get fresh limiters).
    pub(crate) fn grow(&mut self, s: StreamIx, count: usize) {
        let rate = self.rate;
        let queues = &mut self.queues[s.index()];
        while queues.len() < count {
            queues.push(ShardQueue {
                limiter: ShardLimiter::new(rate.percent, rate.records_per_second, rate.bytes_per_second),
                queue: VecDeque::new(),
                wake: None,
                expiry: None,
            });
        }
    }

    fn shard(&mut self, s: StreamIx, slot: ShardSlot) -> &mut ShardQueue {
        &mut self.queues[s.index()][slot.index()]
    }

    /// Queues a Kinesis record behind the others of its shard.
    pub(crate) fn push(&mut self, s: StreamIx, slot: ShardSlot, record: OutgoingRecord) {
        let shard = self.shard(s, slot);
        shard.expiry = earliest(shard.expiry, record.expiration);
        shard.queue.push_back(record);
    }

    /// Takes the Kinesis records whose earliest TTL passed out of a shard's queue, wherever they wait in it.
    pub(crate) fn take_expired(&mut self, now: Instant, s: StreamIx, slot: ShardSlot) -> Vec<OutgoingRecord> {
        let shard = self.shard(s, slot);
        if !has_passed(shard.expiry, now) {
            return Vec::new();
        }
        let (expired, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut shard.queue)
            .into_iter()
            .partition(|record| has_passed(record.expiration, now));
        shard.expiry = kept.iter().fold(None, |acc, record| earliest(acc, record.expiration));
        shard.queue = kept;
        expired.into()
    }

    /// The queue's head if the limiter lets it through now. Otherwise `None`, with a wake-up set for when it
    /// will (or for the first TTL in the queue, if that comes sooner).
    /// Takes every record queued for a shard (its limiter stays: the shard may be listed again).
    pub(crate) fn take_all(&mut self, s: StreamIx, slot: ShardSlot) -> VecDeque<OutgoingRecord> {
        let shard = self.shard(s, slot);
        shard.expiry = None;
        std::mem::take(&mut shard.queue)
    }

    pub(crate) fn pop_ready(&mut self, now: Instant, s: StreamIx, slot: ShardSlot) -> Option<OutgoingRecord> {
        let shard = &mut self.queues[s.index()][slot.index()];
        let Some(head) = shard.queue.front() else {
            shard.wake = None;
            return None;
        };
        match shard.limiter.try_take(now, head.wire_size()) {
            Ok(()) => shard.queue.pop_front(),
            Err(tokens_at) => {
                // A record stuck behind a slow shard still fails at its TTL, not when the queue moves.
                let at = earliest(Some(tokens_at), shard.expiry).unwrap_or(tokens_at);
                // One wake-up per shard: a timer already due earlier re-evaluates then. (A timer per attempt
                // would multiply, each stale one re-arming another: a busy loop.)
                if shard.wake.is_none_or(|wake| wake > at) {
                    shard.wake = Some(at);
                    self.timers.insert((at, s, slot));
                }
                None
            }
        }
    }

    /// The shard throttled a request: its limiter slows down. Returns the new share of the configured rate,
    /// if it changed.
    pub(crate) fn throttled(&mut self, now: Instant, s: StreamIx, slot: ShardSlot) -> Option<f64> {
        self.shard(s, slot).limiter.on_throttled(now)
    }

    /// The earliest wake-up, stale or not.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _, _)| at)
    }

    /// Removes the earliest wake-up; returns its shard if it is still the one the queue waits for (the
    /// queue is then to be drained).
    pub(crate) fn pop_timer(&mut self) -> Option<(StreamIx, ShardSlot)> {
        let (at, s, slot) = self.timers.pop_first()?;
        let shard = self.shard(s, slot);
        (shard.wake == Some(at)).then(|| {
            shard.wake = None;
            (s, slot)
        })
    }
}
