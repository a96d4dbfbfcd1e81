//! What the KPL's metrics need, counted in the core (`kpl-internals.md` §5). Observations are kept at their
//! finest granularity (shard, else stream); coarser views are sums over the samples. Exporting, time windows
//! and uploading belong to the adapter layers.

use std::collections::BTreeMap;

use crate::ids::{ShardId, StreamTarget};

/// The KPL's metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum MetricName {
    /// User records accepted (stream).
    UserRecordsReceived,
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
    /// The name as the KPL writes it to CloudWatch.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRecordsReceived => "UserRecordsReceived",
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
}

/// Sum, count, minimum and maximum of a metric's observations.
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
}

/// Where an observation belongs: stream index, shard slot if shard-level, error code if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dimensions {
    pub(crate) stream: u32,
    pub(crate) slot: Option<u32>,
    pub(crate) error_code: Option<String>,
}

/// One metric at its finest granularity.
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

/// Cumulative observations, keyed by metric and dimensions.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    stats: BTreeMap<(MetricName, Dimensions), Stat>,
}

impl Metrics {
    pub(crate) fn merge(&mut self, name: MetricName, dimensions: Dimensions, stat: &Stat) {
        if stat.count > 0 {
            self.stats.entry((name, dimensions)).or_default().merge(stat);
        }
    }

    pub(crate) fn observe(&mut self, name: MetricName, dimensions: Dimensions, value: f64) {
        self.stats.entry((name, dimensions)).or_default().observe(value);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (MetricName, &Dimensions, &Stat)> {
        self.stats.iter().map(|((name, dimensions), stat)| (*name, dimensions, stat))
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
}
