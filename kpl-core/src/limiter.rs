//! Per-shard rate limiting: token buckets for records and bytes, slowed down by throttling.
//!
//! Like the KPL's, each shard has two buckets refilled continuously at `rate_limit`% of the shard's limits
//! and holding at most one second of that rate. Unlike the KPL's (whose `add_error` is a TODO), the rate
//! adapts, AIMD-style as TCP's congestion window does:
//! - a throttling result for the shard halves its rate factor (down to [`MIN_FACTOR`]); throttles within
//!   [`THROTTLE_DEBOUNCE`] of the last decrease count once, because one request's many throttled entries
//!   are one signal;
//! - the factor then climbs back by [`RECOVERY_PER_SECOND`] per second, up to 1.
//!
//! Several producers writing one shard each back off this way, so together they settle near what the shard
//! accepts instead of retrying into it at full rate; a lone producer loses little, since the factor
//! recovers within seconds.

use std::time::{Duration, Instant};

/// Lowest rate factor: the limiter never stops a shard entirely.
pub(crate) const MIN_FACTOR: f64 = 0.05;
/// How fast the factor recovers after a throttle.
pub(crate) const RECOVERY_PER_SECOND: f64 = 0.1;
/// Throttles closer together than this after a decrease are one signal.
pub(crate) const THROTTLE_DEBOUNCE: Duration = Duration::from_millis(200);

/// Rounding slack, so that a wake-up computed from a shortfall really finds the tokens there.
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone)]
struct TokenBucket {
    tokens: f64,
    /// Tokens per second at factor 1; also the capacity.
    rate: f64,
}

impl TokenBucket {
    fn full(rate: f64) -> Self {
        Self { tokens: rate, rate }
    }

    fn refill(&mut self, seconds: f64, factor: f64) {
        self.tokens = (self.tokens + seconds * self.rate * factor).min(self.rate);
    }

    /// What a take of `amount` needs available: all of it, or a full bucket for an amount over capacity
    /// (which then goes negative and is paid back before anything else passes).
    fn needed(&self, amount: f64) -> f64 {
        amount.min(self.rate)
    }

    /// Seconds until `amount` can be taken, at `factor`.
    fn wait(&self, amount: f64, factor: f64) -> f64 {
        ((self.needed(amount) - self.tokens) / (self.rate * factor)).max(0.0)
    }
}

/// The limiter of one shard.
#[derive(Debug, Clone)]
pub(crate) struct ShardLimiter {
    records: TokenBucket,
    bytes: TokenBucket,
    last_refill: Option<Instant>,
    /// Rate factor right after the last decrease, and when that was.
    decreased: Option<(Instant, f64)>,
}

impl ShardLimiter {
    /// A limiter at `percent`% of `records_per_second` and `bytes_per_second`, starting full.
    pub(crate) fn new(percent: u64, records_per_second: u64, bytes_per_second: u64) -> Self {
        let scale = percent as f64 / 100.0;
        Self {
            records: TokenBucket::full(records_per_second as f64 * scale),
            bytes: TokenBucket::full(bytes_per_second as f64 * scale),
            last_refill: None,
            decreased: None,
        }
    }

    /// The share of the configured rate allowed at `now`, in [`MIN_FACTOR`]..=1.
    pub(crate) fn factor(&self, now: Instant) -> f64 {
        match self.decreased {
            None => 1.0,
            Some((at, factor)) => {
                let recovered = RECOVERY_PER_SECOND * now.saturating_duration_since(at).as_secs_f64();
                (factor + recovered).min(1.0)
            }
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last_refill {
            let seconds = now.saturating_duration_since(last).as_secs_f64();
            let factor = self.factor(now);
            self.records.refill(seconds, factor);
            self.bytes.refill(seconds, factor);
        }
        self.last_refill = Some(now);
    }

    /// Takes one record of `bytes` if the shard's rate allows it now; otherwise says when it will.
    pub(crate) fn try_take(&mut self, now: Instant, bytes: usize) -> Result<(), Instant> {
        self.refill(now);
        let bytes = bytes as f64;
        if self.records.tokens + EPSILON >= self.records.needed(1.0)
            && self.bytes.tokens + EPSILON >= self.bytes.needed(bytes)
        {
            self.records.tokens -= 1.0;
            self.bytes.tokens -= bytes;
            return Ok(());
        }
        let factor = self.factor(now);
        let seconds = self.records.wait(1.0, factor).max(self.bytes.wait(bytes, factor));
        // Round up to the next microsecond, so the wake-up is never early.
        let wait = Duration::from_micros((seconds * 1e6).ceil() as u64 + 1);
        Err(now + wait)
    }

    /// A throttling result for this shard: halve the rate, unless a decrease just happened. Returns the new
    /// factor if it changed.
    pub(crate) fn on_throttled(&mut self, now: Instant) -> Option<f64> {
        if let Some((at, _)) = self.decreased
            && now.saturating_duration_since(at) < THROTTLE_DEBOUNCE
        {
            return None;
        }
        // Settle the refill at the old rate before the rate changes.
        self.refill(now);
        let factor = (self.factor(now) / 2.0).max(MIN_FACTOR);
        self.decreased = Some((now, factor));
        Some(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records admitted over `seconds`, offering four 100-byte records every millisecond.
    fn admitted(limiter: &mut ShardLimiter, start: Instant, seconds: u64) -> usize {
        (0..seconds * 4000)
            .filter(|n| limiter.try_take(start + Duration::from_millis(*n / 4), 100).is_ok())
            .count()
    }

    #[test]
    fn starts_full_then_refills_at_the_configured_rate() {
        let start = crate::test_epoch();
        let mut limiter = ShardLimiter::new(100, 1000, 1 << 20);
        // A full bucket: 1000 records at once, then none.
        for _ in 0..1000 {
            assert!(limiter.try_take(start, 10).is_ok());
        }
        let next = limiter.try_take(start, 10).expect_err("bucket is empty");
        assert_eq!(next, start + Duration::from_micros(1001));
        assert!(limiter.try_take(next, 10).is_ok());
        assert!(limiter.try_take(next, 10).is_err());
    }

    #[test]
    fn byte_bucket_limits_and_oversized_records_wait_for_a_full_bucket() {
        let start = crate::test_epoch();
        let mut limiter = ShardLimiter::new(100, 1000, 1000);
        assert!(limiter.try_take(start, 600).is_ok());
        let next = limiter.try_take(start, 600).expect_err("400 bytes left");
        // 200 more bytes at 1000 B/s: 0.2 s.
        assert_eq!(next, start + Duration::from_micros(200_001));
        assert!(limiter.try_take(next, 600).is_ok());
        // A record over capacity waits for a full bucket, then drives it negative.
        let later = next + Duration::from_secs(5);
        assert!(limiter.try_take(later, 5000).is_ok());
        let after = limiter.try_take(later, 1).expect_err("in debt");
        assert!(after >= later + Duration::from_secs(4));
    }

    #[test]
    fn rate_limit_percent_scales_both_buckets() {
        let start = crate::test_epoch();
        let mut limiter = ShardLimiter::new(150, 1000, 1 << 30);
        // 1500 up front, then 1.5 per ms for the 1999 ms that follow.
        assert_eq!(admitted(&mut limiter, start, 2), 1500 + 2998);
    }

    #[test]
    fn throttling_halves_the_rate_and_it_recovers() {
        let start = crate::test_epoch();
        let mut steady = ShardLimiter::new(100, 1000, 1 << 30);
        let mut throttled = ShardLimiter::new(100, 1000, 1 << 30);
        assert_eq!(throttled.on_throttled(start), Some(0.5));
        // Debounced: the rest of the same burst of throttles is one signal.
        assert_eq!(throttled.on_throttled(start + Duration::from_millis(50)), None);
        // 200 ms on, the factor recovered to 0.52; halved, 0.26.
        let factor = throttled.on_throttled(start + THROTTLE_DEBOUNCE).expect("a new signal");
        assert!((factor - 0.26).abs() < 1e-12, "{factor}");

        let one = Duration::from_secs(1);
        let steady_first = admitted(&mut steady, start + one, 1);
        let throttled_first = admitted(&mut throttled, start + one, 1);
        assert!(steady_first > throttled_first + 400, "{steady_first} vs {throttled_first}");
        // Ten seconds on, the factor is back to 1 and both admit the same.
        let later = start + Duration::from_secs(20);
        assert_eq!(throttled.factor(later), 1.0);
        assert_eq!(admitted(&mut steady, later, 1), admitted(&mut throttled, later, 1));
        // Never below the floor.
        let mut floor = ShardLimiter::new(100, 1000, 1000);
        for i in 0..20 {
            floor.on_throttled(start + THROTTLE_DEBOUNCE * i);
        }
        assert_eq!(floor.factor(start + THROTTLE_DEBOUNCE * 19), MIN_FACTOR);
    }
}
