//! The KPL's metrics (`kpl-internals.md` §5), counted in the core on the injected clock.
//!
//! Every observation is kept once, at its finest granularity (shard where the KPL has one, else stream), as a
//! [`Series`]: a cumulative [`Stat`] plus one `Stat` per second of the producer's clock for the last
//! [`RETENTION_SECONDS`], the KPL's one-second buckets. Coarser views (stream, global) are sums computed when
//! queried, so the hot path pays one map lookup per Kinesis record, never one per user record.
//!
//! `UserRecordsPending` is sampled here too, without a timer: the KPL samples every stream's outstanding
//! records every 200 ms. Outstanding counts only change inside calls, and every call first advances the
//! clock, so when a call moves the clock past one or more 200 ms ticks (counted from the first `now` the
//! producer saw) the count in force at each of those ticks is the one before the call: the samples are
//! recorded then, exactly as a 200 ms timer would have taken them, and a quiet producer stays quiet. A query
//! (a getter) counts the ticks due since the last call with the same rule, so it is exact at any `now`.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::ids::{ShardId, StreamTarget};

/// Longest window of [`MetricsWindow::LastSeconds`], in seconds (the KPL's 60 buckets).
pub const MAX_WINDOW_SECONDS: u32 = 60;
/// Seconds of per-second buckets kept. Twice the longest window, so that a reader of
/// [`MetricsWindow::Seconds`] (an uploader every 60 s) that runs late still finds every second since its
/// previous read.
pub const RETENTION_SECONDS: u64 = 120;
/// How often `UserRecordsPending` is sampled (the KPL's period).
pub const PENDING_SAMPLE_PERIOD: Duration = Duration::from_millis(200);
const SAMPLES_PER_SECOND: u64 = 1000 / PENDING_SAMPLE_PERIOD.as_millis() as u64;

/// The KPL's metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MetricName {
    /// User records accepted (stream).
    UserRecordsReceived,
    /// Outstanding user records, sampled every 200 ms (stream).
    UserRecordsPending,
    /// User records completed: 1 per success, 0 per failure, so the mean is the success rate (shard).
    UserRecordsPut,
    /// Data bytes of user records written (shard).
    UserRecordsDataPut,
    /// Kinesis records in responses: 1 per success, 0 per failure (shard).
    KinesisRecordsPut,
    /// Bytes of Kinesis records written (shard).
    KinesisRecordsDataPut,
    /// Failed Kinesis records and requests, by error code (shard, or stream for whole requests).
    ErrorsByCode,
    /// Failed Kinesis records and requests (shard, or stream for whole requests).
    AllErrors,
    /// Attempts beyond the first, per completed user record (shard).
    RetriesPerRecord,
    /// User records failed by their TTL (stream).
    UserRecordExpired,
    /// Milliseconds from a record's arrival (or previous attempt's end) to its attempt's start (shard).
    BufferingTime,
    /// Milliseconds a PutRecords request took (stream).
    RequestTime,
    /// User records per Kinesis record sent (shard).
    UserRecordsPerKinesisRecord,
    /// Kinesis records per PutRecords request (stream).
    KinesisRecordsPerPutRecordsRequest,
    /// User records per PutRecords request (stream).
    UserRecordsPerPutRecordsRequest,
}

impl MetricName {
    /// Every metric, in the KPL's order.
    pub const ALL: [MetricName; 15] = [
        Self::UserRecordsReceived,
        Self::UserRecordsPending,
        Self::UserRecordsPut,
        Self::UserRecordsDataPut,
        Self::KinesisRecordsPut,
        Self::KinesisRecordsDataPut,
        Self::ErrorsByCode,
        Self::AllErrors,
        Self::RetriesPerRecord,
        Self::UserRecordExpired,
        Self::BufferingTime,
        Self::RequestTime,
        Self::UserRecordsPerKinesisRecord,
        Self::KinesisRecordsPerPutRecordsRequest,
        Self::UserRecordsPerPutRecordsRequest,
    ];

    /// The name as the KPL writes it to CloudWatch.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRecordsReceived => "UserRecordsReceived",
            Self::UserRecordsPending => "UserRecordsPending",
            Self::UserRecordsPut => "UserRecordsPut",
            Self::UserRecordsDataPut => "UserRecordsDataPut",
            Self::KinesisRecordsPut => "KinesisRecordsPut",
            Self::KinesisRecordsDataPut => "KinesisRecordsDataPut",
            Self::ErrorsByCode => "ErrorsByCode",
            Self::AllErrors => "AllErrors",
            Self::RetriesPerRecord => "RetriesPerRecord",
            Self::UserRecordExpired => "UserRecordExpired",
            Self::BufferingTime => "BufferingTime",
            Self::RequestTime => "RequestTime",
            Self::UserRecordsPerKinesisRecord => "UserRecordsPerKinesisRecord",
            Self::KinesisRecordsPerPutRecordsRequest => "KinesisRecordsPerPutRecordsRequest",
            Self::UserRecordsPerPutRecordsRequest => "UserRecordsPerPutRecordsRequest",
        }
    }

    /// The CloudWatch unit.
    pub fn unit(self) -> MetricUnit {
        match self {
            Self::UserRecordsDataPut | Self::KinesisRecordsDataPut => MetricUnit::Bytes,
            Self::BufferingTime | Self::RequestTime => MetricUnit::Milliseconds,
            _ => MetricUnit::Count,
        }
    }

    /// The lowest `MetricsLevel` that reports it.
    pub fn level(self) -> MetricsLevel {
        match self {
            Self::UserRecordsPut
            | Self::KinesisRecordsPut
            | Self::ErrorsByCode
            | Self::AllErrors
            | Self::UserRecordExpired
            | Self::BufferingTime => MetricsLevel::Summary,
            _ => MetricsLevel::Detailed,
        }
    }

    /// The finest granularity it is observed at.
    pub fn finest_granularity(self) -> MetricsGranularity {
        match self {
            Self::UserRecordsReceived
            | Self::UserRecordsPending
            | Self::RequestTime
            | Self::KinesisRecordsPerPutRecordsRequest
            | Self::UserRecordsPerPutRecordsRequest => MetricsGranularity::Stream,
            _ => MetricsGranularity::Shard,
        }
    }
}

impl std::fmt::Display for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric's CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricUnit {
    /// A number of things.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
}

impl MetricUnit {
    /// The unit as CloudWatch names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// Which metrics are reported (the KPL's `MetricsLevel`): a metric is when its [`MetricName::level`] is at
/// most this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MetricsLevel {
    /// None at all.
    None,
    /// The few that summarise throughput and errors.
    Summary,
    /// All of them (the KPL's default).
    #[default]
    Detailed,
}

/// How finely metrics are broken down (the KPL's `MetricsGranularity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MetricsGranularity {
    /// One value per metric (and error code) for the whole producer.
    Global,
    /// Also per stream.
    Stream,
    /// Also per shard (the KPL's default).
    #[default]
    Shard,
}

/// Sum, count, minimum and maximum of a metric's observations (a CloudWatch statistic set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Number of observations.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Default for Stat {
    fn default() -> Self {
        Self { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Stat {
    /// Adds one observation.
    pub fn observe(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds another stat's observations.
    pub fn merge(&mut self, other: &Stat) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The mean, if anything was observed.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// `count` observations of `value`.
    fn repeated(value: f64, count: u64) -> Self {
        Self { count, sum: value * count as f64, min: value, max: value }
    }
}

/// Where an observation belongs: stream index, shard slot if shard-level, error code if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dimensions {
    pub(crate) stream: u32,
    pub(crate) slot: Option<u32>,
    pub(crate) error_code: Option<String>,
}

/// One metric at its finest granularity, cumulative ([`Producer::metrics`](crate::Producer::metrics)).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// The metric.
    pub name: MetricName,
    /// The stream.
    pub stream: StreamTarget,
    /// The shard, for shard-level observations.
    pub shard_id: Option<ShardId>,
    /// The error code, for `ErrorsByCode`.
    pub error_code: Option<String>,
    /// The observations.
    pub stat: Stat,
}

/// Which observations a query sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsWindow {
    /// Everything since the producer was created.
    Cumulative,
    /// The current second and the ones before it, this many in all (1 to [`MAX_WINDOW_SECONDS`]), as the
    /// KPL's `getMetrics(name, windowSeconds)`.
    LastSeconds(u32),
    /// Whole seconds of the producer's clock, `from` included, `to` excluded (see
    /// [`Producer::metrics_second`](crate::Producer::metrics_second)); seconds older than
    /// [`RETENTION_SECONDS`] are gone. An uploader reads `[previous, current)` each time, so every completed
    /// second is read exactly once.
    Seconds {
        /// First second.
        from: u64,
        /// Second after the last.
        to: u64,
    },
}

/// How a query lays its results out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsRollup {
    /// Every node of the KPL's dimension tree down to the granularity: per metric a global node, per
    /// error code a node, per stream a node, per shard a node, each the sum of those below it (what the
    /// KPL's `getMetrics` returns and uploads: 2 streams × 2 shards give 7 nodes per metric).
    #[default]
    Tree,
    /// Each observation once, under its finest dimensions cut to the granularity: no node sums another,
    /// so adding up nodes (as Prometheus does over labels) gives the totals.
    Leaves,
}

/// What [`Producer::metrics_query`](crate::Producer::metrics_query) returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsQuery {
    /// One metric, or all with `None`.
    pub name: Option<MetricName>,
    /// Which observations.
    pub window: MetricsWindow,
    /// The finest dimension reported.
    pub granularity: MetricsGranularity,
    /// Tree or leaves.
    pub rollup: MetricsRollup,
}

impl MetricsQuery {
    /// Every metric over `window`, as the KPL's dimension tree down to shards.
    pub fn new(window: MetricsWindow) -> Self {
        Self { name: None, window, granularity: MetricsGranularity::Shard, rollup: MetricsRollup::Tree }
    }

    /// Only `name`.
    pub fn name(mut self, name: MetricName) -> Self {
        self.name = Some(name);
        self
    }

    /// Down to `granularity` only.
    pub fn granularity(mut self, granularity: MetricsGranularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Laid out as `rollup`.
    pub fn rollup(mut self, rollup: MetricsRollup) -> Self {
        self.rollup = rollup;
        self
    }
}

/// A query the producer cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsQueryError {
    /// `LastSeconds` outside 1 to 60.
    #[error("a metrics window is 1 to {MAX_WINDOW_SECONDS} seconds, not {0}")]
    WindowOutOfRange(u32),
}

/// One node of a metric's dimension tree, over a query's window.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric.
    pub name: MetricName,
    /// The error code (`ErrorsByCode`), which the KPL puts above the stream.
    pub error_code: Option<String>,
    /// The stream, for stream and shard nodes.
    pub stream: Option<StreamTarget>,
    /// The shard, for shard nodes.
    pub shard_id: Option<ShardId>,
    /// The observations summed over the node.
    pub stat: Stat,
}

impl Metric {
    /// The node's granularity.
    pub fn granularity(&self) -> MetricsGranularity {
        match (&self.stream, &self.shard_id) {
            (_, Some(_)) => MetricsGranularity::Shard,
            (Some(_), None) => MetricsGranularity::Stream,
            (None, None) => MetricsGranularity::Global,
        }
    }
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

/// Per-Kinesis-record accumulators, merged into [`Metrics`] once per record rather than once per user record.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) user_records_put: Stat,
    pub(crate) user_records_data_put: Stat,
    pub(crate) retries_per_record: Stat,
    pub(crate) buffering_time: Stat,
}

impl Batch {
    pub(crate) fn merge_into(&self, metrics: &mut Metrics, dimensions: &Dimensions) {
        for (name, stat) in [
            (MetricName::UserRecordsPut, &self.user_records_put),
            (MetricName::UserRecordsDataPut, &self.user_records_data_put),
            (MetricName::RetriesPerRecord, &self.retries_per_record),
            (MetricName::BufferingTime, &self.buffering_time),
        ] {
            metrics.merge(name, dimensions.clone(), stat);
        }
    }
}

#[cfg(test)]
mod tests {
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
