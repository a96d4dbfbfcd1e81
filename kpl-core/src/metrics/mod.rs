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

mod query;
mod series;
mod telemetry;

use std::time::Duration;

use crate::ids::{ShardId, StreamTarget};

/// Longest window of [`MetricsWindow::LastSeconds`], in seconds (the KPL's 60 buckets).
pub const MAX_WINDOW_SECONDS: u32 = 60;
/// Seconds of per-second buckets kept. Twice the longest window, so that a reader of
/// [`MetricsWindow::Seconds`] (an uploader every 60 s) that runs late still finds every second since its
/// previous read.
pub const RETENTION_SECONDS: u64 = 120;
/// How often `UserRecordsPending` is sampled (the KPL's period).
pub const PENDING_SAMPLE_PERIOD: Duration = Duration::from_millis(200);
/// Pending samples per second of the producer's clock.
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

pub(crate) use query::Names;
pub(crate) use telemetry::Telemetry;
