//! Retry: user records of failed attempts wait out a backoff here, with full jitter, doubling with their
//! shard's consecutive failures. Owns the backoff queue, the failure counts and the jitter's generator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ids::{ShardSlot, StreamIx};
use crate::map::DetMap;
use crate::outgoing::AcceptedRecord;
use crate::rng::SplitMix64;

/// Largest exponent of the doubling: 2^30 × any initial backoff is past every maximum a `Duration` of the
/// configured range can reach, and a larger shift would overflow the `u32` factor.
const MAX_DOUBLINGS: u32 = 30;

/// The backoff queue.
#[derive(Debug)]
pub(crate) struct Retries {
    initial: Duration,
    max: Duration,
    rng: SplitMix64,
    /// Records waiting, by due time and then order of failure.
    queue: BTreeMap<(Instant, u64), (StreamIx, AcceptedRecord)>,
    /// The next order of failure.
    next_order: u64,
    /// Consecutive failed responses per shard (`None`: records with no predicted shard).
    failures: DetMap<(StreamIx, Option<ShardSlot>), u32>,
}

impl Retries {
    /// Backoffs from `initial` doubling up to `max`, with jitter drawn from `seed`.
    pub(crate) fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Self {
            initial,
            max,
            rng: SplitMix64::new(seed),
            queue: BTreeMap::new(),
            next_order: 0,
            failures: DetMap::default(),
        }
    }

    /// The delay before retrying records of a shard whose response just failed: full jitter, up to the
    /// initial backoff doubled per consecutive failure, capped at the maximum.
    pub(crate) fn backoff(&mut self, s: StreamIx, slot: Option<ShardSlot>) -> Duration {
        let failures = self.failures.entry((s, slot)).or_default();
        let exponent = (*failures).min(MAX_DOUBLINGS);
        *failures = failures.saturating_add(1);
        let cap = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.rng.below_or_equal(micros))
    }

    /// A response for the shard succeeded: its backoff starts over.
    pub(crate) fn succeeded(&mut self, s: StreamIx, slot: Option<ShardSlot>) {
        if let Some(failures) = self.failures.get_mut(&(s, slot)) {
            *failures = 0;
        }
    }

    /// Queues a record to be routed again at `due`.
    pub(crate) fn schedule(&mut self, due: Instant, s: StreamIx, record: AcceptedRecord) {
        let order = self.next_order;
        self.next_order += 1;
        self.queue.insert((due, order), (s, record));
    }

    /// The earliest due time.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(&(at, _), _)| at)
    }

    /// The next record due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(StreamIx, AcceptedRecord)> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }
}
