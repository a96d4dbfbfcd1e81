//! Where the metrics' observations are kept: one [`Series`] per metric and dimensions, bucketed by second of
//! the producer's clock (see the module above).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::time::Instant;

use super::{
    MAX_WINDOW_SECONDS, MetricName, MetricsQueryError, MetricsWindow, PENDING_SAMPLE_PERIOD,
    RETENTION_SECONDS, SAMPLES_PER_SECOND, Stat,
};
use crate::ids::{ShardSlot, StreamIx};

/// Where an observation belongs: stream index, shard slot if shard-level, error code if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dimensions {
    pub(crate) stream: StreamIx,
    pub(crate) slot: Option<ShardSlot>,
    pub(crate) error_code: Option<String>,
}

/// A query's window in bucket seconds.
#[derive(Debug, Clone)]
pub(crate) enum Span {
    Cumulative,
    Seconds(Range<u64>),
}

impl Span {
    /// `count` samples of `value` at those of `ticks` that fall in the span.
    pub(crate) fn samples(&self, value: f64, ticks: Range<u64>) -> Stat {
        let ticks = match self {
            Span::Cumulative => ticks,
            Span::Seconds(seconds) => {
                let start = ticks.start.max(seconds.start.saturating_mul(SAMPLES_PER_SECOND));
                start..ticks.end.min(seconds.end.saturating_mul(SAMPLES_PER_SECOND)).max(start)
            }
        };
        if ticks.is_empty() { Stat::default() } else { Stat::repeated(value, ticks.end - ticks.start) }
    }

    pub(crate) fn resolve(window: MetricsWindow, current: u64) -> Result<Self, MetricsQueryError> {
        Ok(match window {
            MetricsWindow::Cumulative => Self::Cumulative,
            MetricsWindow::LastSeconds(n) if (1..=MAX_WINDOW_SECONDS).contains(&n) => {
                Self::Seconds((current + 1).saturating_sub(u64::from(n))..current + 1)
            }
            MetricsWindow::LastSeconds(n) => return Err(MetricsQueryError::WindowOutOfRange(n)),
            MetricsWindow::Seconds { from, to } => Self::Seconds(from..to),
        })
    }
}

/// One metric's observations under one set of dimensions: cumulative, and per second for the last
/// [`RETENTION_SECONDS`] seconds in which anything was observed.
#[derive(Debug, Default)]
pub(crate) struct Series {
    total: Stat,
    /// `(second, stat)`, seconds increasing.
    recent: VecDeque<(u64, Stat)>,
}

impl Series {
    pub(crate) fn observe(&mut self, second: u64, value: f64) {
        self.total.observe(value);
        self.with_bucket(second, |bucket| bucket.observe(value));
    }

    pub(crate) fn merge(&mut self, second: u64, stat: &Stat) {
        self.total.merge(stat);
        self.with_bucket(second, |bucket| bucket.merge(stat));
    }

    fn with_bucket(&mut self, second: u64, update: impl FnOnce(&mut Stat)) {
        // Seconds never go backwards (the producer's clock does not): the current bucket is the last one.
        if self.recent.back().is_none_or(|&(last, _)| last < second) {
            while self.recent.front().is_some_and(|&(first, _)| first + RETENTION_SECONDS <= second) {
                self.recent.pop_front();
            }
            self.recent.push_back((second, Stat::default()));
        }
        if let Some((_, bucket)) = self.recent.back_mut() {
            update(bucket);
        }
    }

    /// The observations in `span`.
    pub(crate) fn stat(&self, span: &Span) -> Stat {
        match span {
            Span::Cumulative => self.total,
            Span::Seconds(seconds) => {
                let mut stat = Stat::default();
                for (_, bucket) in self.recent.iter().filter(|(second, _)| seconds.contains(second)) {
                    stat.merge(bucket);
                }
                stat
            }
        }
    }

    /// Adds `value` once per 200 ms tick in `ticks` (tick `i` is `i × 200 ms` after the epoch).
    pub(crate) fn sample(&mut self, value: f64, ticks: Range<u64>) {
        // Ticks too old for a bucket only count in the total.
        let kept_from =
            (ticks.end / SAMPLES_PER_SECOND).saturating_sub(RETENTION_SECONDS) * SAMPLES_PER_SECOND;
        let mut tick = ticks.start.max(kept_from);
        if tick > ticks.start {
            self.total.merge(&Stat::repeated(value, tick - ticks.start));
        }
        while tick < ticks.end {
            let second = tick / SAMPLES_PER_SECOND;
            let end = ticks.end.min((second + 1) * SAMPLES_PER_SECOND);
            self.merge(second, &Stat::repeated(value, end - tick));
            tick = end;
        }
    }
}

/// Observations keyed by metric and dimensions, and the clock they are bucketed by.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    series: BTreeMap<(MetricName, Dimensions), Series>,
    /// The first `now` seen: second 0 and tick 0.
    epoch: Option<Instant>,
    /// The current second.
    second: u64,
    /// Index of the next `UserRecordsPending` tick.
    next_tick: u64,
    next_tick_at: Option<Instant>,
}

impl Metrics {
    /// Moves the clock to `now` (never backwards). Returns the pending-sample ticks passed since the last
    /// call, if any: the caller samples what was outstanding before `now`.
    pub(crate) fn advance(&mut self, now: Instant) -> Option<Range<u64>> {
        let Some(epoch) = self.epoch else {
            self.epoch = Some(now);
            self.next_tick = 1;
            self.next_tick_at = now.checked_add(PENDING_SAMPLE_PERIOD);
            return None;
        };
        let elapsed = now.saturating_duration_since(epoch);
        self.second = elapsed.as_secs();
        if self.next_tick_at.is_none_or(|at| now < at) {
            return None;
        }
        let last = u64::try_from(elapsed.as_nanos() / PENDING_SAMPLE_PERIOD.as_nanos()).unwrap_or(u64::MAX);
        let ticks = self.next_tick..last.saturating_add(1);
        self.next_tick = ticks.end;
        self.next_tick_at = u32::try_from(ticks.end)
            .ok()
            .and_then(|tick| PENDING_SAMPLE_PERIOD.checked_mul(tick))
            .and_then(|offset| epoch.checked_add(offset));
        Some(ticks)
    }

    /// The second of the producer's clock that `now` falls in (0 before the first call).
    pub(crate) fn second_of(&self, now: Instant) -> u64 {
        self.epoch.map_or(0, |epoch| now.saturating_duration_since(epoch).as_secs().max(self.second))
    }

    /// The current second.
    pub(crate) fn second(&self) -> u64 {
        self.second
    }

    pub(crate) fn merge(&mut self, name: MetricName, dimensions: Dimensions, stat: &Stat) {
        if stat.count > 0 {
            let second = self.second;
            self.series.entry((name, dimensions)).or_default().merge(second, stat);
        }
    }

    pub(crate) fn observe(&mut self, name: MetricName, dimensions: Dimensions, value: f64) {
        let second = self.second;
        self.series.entry((name, dimensions)).or_default().observe(second, value);
    }

    /// The pending-sample ticks from the last call up to `now`, not taken yet: a query at `now` counts them
    /// with the outstanding records of the last call (unchanged since), so that it is exact without
    /// waiting for the next call.
    pub(crate) fn ticks_due(&self, now: Instant) -> Range<u64> {
        let Some(epoch) = self.epoch else { return 0..0 };
        let elapsed = now.saturating_duration_since(epoch);
        let last = u64::try_from(elapsed.as_nanos() / PENDING_SAMPLE_PERIOD.as_nanos()).unwrap_or(u64::MAX);
        self.next_tick..last.saturating_add(1).max(self.next_tick)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (MetricName, &Dimensions, &Series)> {
        self.series.iter().map(|((name, dimensions), series)| (*name, dimensions, series))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn stat_tracks_sum_count_min_max() {
        let mut stat = Stat::default();
        assert_eq!(stat.mean(), None);
        for value in [3.0, 1.0, 2.0] {
            stat.observe(value);
        }
        assert_eq!((stat.count, stat.sum, stat.min, stat.max), (3, 6.0, 1.0, 3.0));
        let mut other = Stat::default();
        other.observe(10.0);
        stat.merge(&other);
        assert_eq!((stat.count, stat.max, stat.mean()), (4, 10.0, Some(4.0)));
        // Merging nothing changes nothing.
        stat.merge(&Stat::default());
        assert_eq!(stat.count, 4);
    }

    #[test]
    fn series_buckets_by_second_and_forgets_after_retention() {
        let mut series = Series::default();
        series.observe(0, 1.0);
        series.observe(0, 3.0);
        series.observe(5, 10.0);
        let last = |n: u32, current: u64| {
            series.stat(&Span::resolve(MetricsWindow::LastSeconds(n), current).unwrap())
        };
        assert_eq!(last(1, 5).count, 1);
        assert_eq!((last(6, 5).count, last(6, 5).sum), (3, 14.0));
        assert_eq!(last(60, 70).count, 0, "seconds 0 and 5 are out of the last 60 at second 70");
        series.observe(RETENTION_SECONDS + 1, 7.0);
        // Seconds 0 (and not 5) dropped out of the buckets; the total keeps everything.
        assert_eq!(series.recent.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![5, RETENTION_SECONDS + 1]);
        assert_eq!(series.stat(&Span::Cumulative).count, 4);
        assert_eq!(
            Span::resolve(MetricsWindow::LastSeconds(61), 0).map(drop),
            Err(MetricsQueryError::WindowOutOfRange(61))
        );
        assert!(Span::resolve(MetricsWindow::LastSeconds(0), 0).is_err());
    }

    #[test]
    fn pending_ticks_are_counted_per_second_and_in_total() {
        let mut metrics = Metrics::default();
        let epoch = crate::test_epoch();
        assert_eq!(metrics.advance(epoch), None);
        assert_eq!(metrics.advance(epoch + Duration::from_millis(199)), None);
        assert_eq!(metrics.advance(epoch + Duration::from_millis(200)), Some(1..2));
        assert_eq!(metrics.advance(epoch + Duration::from_millis(399)), None);
        assert_eq!(metrics.advance(epoch + Duration::from_millis(1000)), Some(2..6));
        assert_eq!(metrics.second(), 1);
        let mut series = Series::default();
        // Ticks 3..12: seconds 0 (3, 4), 1 (5..=9), 2 (10, 11).
        series.sample(2.0, 3..12);
        let seconds: Vec<_> = series.recent.iter().map(|(s, stat)| (*s, stat.count)).collect();
        assert_eq!(seconds, vec![(0, 2), (1, 5), (2, 2)]);
        assert_eq!((series.total.count, series.total.sum), (9, 18.0));
        // An hour of ticks: all in the total, only the retained seconds in buckets.
        let mut long = Series::default();
        long.sample(1.0, 0..3600 * 5);
        assert_eq!(long.total.count, 18_000);
        assert_eq!(long.recent.len() as u64, RETENTION_SECONDS);
    }
}
