//! Per-shard write limits: two token buckets (records, bytes) holding one second of capacity each and
//! refilled continuously, as a rolling one-second window.

use std::time::{Duration, Instant};

use crate::config::ShardLimits;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// A bucket in units of (item × nanosecond), so that refills are exact integers: `rate` items per second
/// refill `rate` units per nanosecond.
#[derive(Debug, Clone)]
struct Bucket {
    level: i128,
    capacity: i128,
    rate: i128,
}

impl Bucket {
    fn full(rate: u64) -> Self {
        let rate = i128::from(rate);
        let capacity = rate * NANOS_PER_SECOND;
        Self { level: capacity, capacity, rate }
    }

    fn refill(&mut self, elapsed: Duration) {
        let nanos = i128::try_from(elapsed.as_nanos()).unwrap_or(i128::MAX);
        self.level = self.level.saturating_add(nanos.saturating_mul(self.rate)).min(self.capacity);
    }

    fn cost(amount: usize) -> i128 {
        i128::try_from(amount).unwrap_or(i128::MAX).saturating_mul(NANOS_PER_SECOND)
    }

    /// Whether `amount` fits. A full bucket takes anything, leaving it in debt: a record larger than a
    /// second's worth of bytes (possible with 10 MiB records) is not refused forever.
    fn admits(&self, amount: usize) -> bool {
        self.level >= Self::cost(amount) || self.level == self.capacity
    }

    fn take(&mut self, amount: usize) {
        self.level = self.level.saturating_sub(Self::cost(amount));
    }
}

/// The write limits of one shard.
#[derive(Debug, Clone)]
pub(crate) struct ShardLimiter {
    records: Bucket,
    bytes: Bucket,
    /// When the buckets were last refilled; `None` until the first write.
    refilled_at: Option<Instant>,
}

impl ShardLimiter {
    pub(crate) fn new(limits: ShardLimits) -> Self {
        Self {
            records: Bucket::full(limits.records_per_second),
            bytes: Bucket::full(limits.bytes_per_second),
            refilled_at: None,
        }
    }

    /// Takes one record of `bytes` bytes if both limits allow it now; takes nothing otherwise.
    pub(crate) fn try_take(&mut self, now: Instant, bytes: usize) -> bool {
        if let Some(then) = self.refilled_at {
            let elapsed = now.saturating_duration_since(then);
            self.records.refill(elapsed);
            self.bytes.refill(elapsed);
        }
        self.refilled_at = Some(self.refilled_at.map_or(now, |then| then.max(now)));
        let admitted = self.records.admits(1) && self.bytes.admits(bytes);
        if admitted {
            self.records.take(1);
            self.bytes.take(bytes);
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::epoch;

    fn limiter(records: u64, bytes: u64) -> ShardLimiter {
        ShardLimiter::new(ShardLimits { records_per_second: records, bytes_per_second: bytes })
    }

    #[test]
    fn record_limit_is_a_rolling_second() {
        let t0 = epoch();
        let mut limiter = limiter(10, 1_000_000);
        assert_eq!((0..11).filter(|_| limiter.try_take(t0, 1)).count(), 10);
        // A tenth of a second refills one record, and no more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.try_take(t1, 1));
        assert!(!limiter.try_take(t1, 1));
        // A long pause refills a second's worth, not more.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..11).filter(|_| limiter.try_take(t2, 1)).count(), 10);
    }

    #[test]
    fn byte_limit_and_oversized_records() {
        let t0 = epoch();
        let mut limiter = limiter(1000, 100);
        assert!(limiter.try_take(t0, 60));
        assert!(!limiter.try_take(t0, 41));
        assert!(limiter.try_take(t0, 40));
        // A record above a second's worth waits for a full bucket, then goes and leaves a debt.
        let t1 = t0 + Duration::from_millis(500);
        assert!(!limiter.try_take(t1, 250));
        let t2 = t0 + Duration::from_secs(1);
        assert!(limiter.try_take(t2, 250));
        assert!(!limiter.try_take(t2 + Duration::from_secs(1), 1));
        assert!(limiter.try_take(t2 + Duration::from_millis(1510), 1));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let t0 = epoch() + Duration::from_secs(1);
        let mut limiter = limiter(1, 1000);
        assert!(limiter.try_take(t0, 1));
        assert!(!limiter.try_take(t0 - Duration::from_millis(500), 1));
        assert!(!limiter.try_take(t0 + Duration::from_millis(999), 1));
        assert!(limiter.try_take(t0 + Duration::from_secs(1), 1));
    }
}
