//! Publishes the KPL's metrics through the `metrics` crate's facade, so that any of its exporters
//! (Prometheus, OpenTelemetry, StatsD, ...) serves them.
//!
//! # Mapping
//!
//! Names are the KPL's; labels are `stream` (the stream's name), `shard` and `error_code`, each present only
//! where the metric has that dimension at the configured granularity (`MetricsConfig::granularity`; the
//! level filters as for CloudWatch). Each observation is published once, at its finest dimensions cut to
//! the granularity ([`MetricsRollup::Leaves`](kpl_core::MetricsRollup)): summing a metric over its labels
//! gives the producer's total, with no stream or global node counted twice.
//!
//! - Counts of things and bytes, whose sum is what matters (`UserRecordsReceived`, `UserRecordsPut`,
//!   `UserRecordsDataPut`, `KinesisRecordsPut`, `KinesisRecordsDataPut`, `ErrorsByCode`, `AllErrors`,
//!   `UserRecordExpired`): a **counter** of that name holding the cumulative sum (`UserRecordsPut` counts the
//!   records written, `AllErrors` the errors).
//! - Distributions (`RetriesPerRecord`, `BufferingTime`, `RequestTime`, `UserRecordsPerKinesisRecord`,
//!   `KinesisRecordsPerPutRecordsRequest`, `UserRecordsPerPutRecordsRequest`): **counters** `<name>_sum`
//!   (rounded to a whole number) and `<name>_count`, cumulative, as a Prometheus summary's (the mean over
//!   any range is the ratio of their rates), and **gauges** `<name>_min` and `<name>_max` over the seconds
//!   since the previous export.
//! - `UserRecordsPending`: a **gauge** holding the mean of its 200 ms samples since the previous export.
//!
//! No histogram: the core keeps statistic sets (sum, count, min, max), as the KPL does, not the single
//! observations a histogram's buckets need.

use std::time::Duration;

use kpl_core::{Metric, MetricName, MetricUnit, MetricsQuery, MetricsRollup, MetricsWindow};

use super::{IntervalReader, MetricsConfig, MetricsError};
use crate::error::SpawnError;
use crate::producer::KinesisProducer;

/// Default time between two exports of [`MetricsExporter::spawn`].
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// How a metric is published.
enum Shape {
    /// A counter of the cumulative sum.
    Total,
    /// `_sum` and `_count` counters, `_min` and `_max` gauges.
    Distribution,
    /// A gauge of the mean since the previous export.
    Level,
}

fn shape(name: MetricName) -> Shape {
    match name {
        MetricName::UserRecordsPending => Shape::Level,
        MetricName::RetriesPerRecord
        | MetricName::BufferingTime
        | MetricName::RequestTime
        | MetricName::UserRecordsPerKinesisRecord
        | MetricName::KinesisRecordsPerPutRecordsRequest
        | MetricName::UserRecordsPerPutRecordsRequest => Shape::Distribution,
        _ => Shape::Total,
    }
}

/// Publishes a producer's metrics to the `metrics` facade: periodically with [`spawn`](Self::spawn), or
/// when you choose with [`export`](Self::export).
#[derive(Debug)]
pub struct MetricsExporter {
    config: MetricsConfig,
    interval: Duration,
    reader: IntervalReader,
    /// Units and descriptions were registered with the recorder.
    described: bool,
}

/// A running periodic export; dropping it leaves it running (it stops with the producer),
/// [`stop`](Self::stop) stops it now.
#[derive(Debug)]
pub struct ExporterHandle {
    task: tokio::task::JoinHandle<()>,
}

impl ExporterHandle {
    /// Stops exporting.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// The values of one export, read from the producer and not yet published.
#[derive(Debug, Clone, PartialEq)]
pub struct FacadeSnapshot {
    /// Cumulative, for the counters.
    cumulative: Vec<Metric>,
    /// Since the previous export, for the gauges.
    recent: Vec<Metric>,
}

impl MetricsExporter {
    /// An exporter of `producer`'s metrics at `config`'s level and granularity, every 10 s once spawned.
    /// It does not keep the producer open.
    pub fn new(producer: &KinesisProducer, config: MetricsConfig) -> Self {
        Self { config, interval: DEFAULT_INTERVAL, reader: IntervalReader::new(producer), described: false }
    }

    /// Time between two exports of [`spawn`](Self::spawn) (default 10 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Exports now to the installed recorder.
    pub async fn export(&mut self) -> Result<(), MetricsError> {
        let snapshot = self.snapshot().await?;
        if !std::mem::replace(&mut self.described, true) {
            describe();
        }
        snapshot.publish();
        Ok(())
    }

    /// Reads what the next export publishes: the cumulative values and those since the previous read.
    pub async fn snapshot(&mut self) -> Result<FacadeSnapshot, MetricsError> {
        let query = MetricsQuery::new(MetricsWindow::Cumulative)
            .granularity(self.config.metrics_granularity())
            .rollup(MetricsRollup::Leaves);
        let recent = self.reader.read(query).await?;
        let producer = self.reader.producer().ok_or(MetricsError::DriverStopped)?;
        let cumulative = producer.metrics_query(query).await?;
        let reported = |metrics: Vec<Metric>| -> Vec<Metric> {
            metrics.into_iter().filter(|metric| self.config.reports(metric.name)).collect()
        };
        Ok(FacadeSnapshot { cumulative: reported(cumulative), recent: reported(recent) })
    }

    /// Exports every `interval` on the current tokio runtime, until the producer is gone.
    pub fn spawn(mut self) -> Result<ExporterHandle, SpawnError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoTokioRuntime)?;
        let task = runtime.spawn(async move {
            let mut ticker = tokio::time::interval(self.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(MetricsError::DriverStopped) = self.export().await {
                    break;
                }
            }
        });
        Ok(ExporterHandle { task })
    }
}

/// Registers every metric's unit and description with the installed recorder.
fn describe() {
    for name in MetricName::ALL {
        let unit = match name.unit() {
            MetricUnit::Count => metrics::Unit::Count,
            MetricUnit::Bytes => metrics::Unit::Bytes,
            MetricUnit::Milliseconds => metrics::Unit::Milliseconds,
        };
        let key = name.as_str();
        match shape(name) {
            Shape::Total => {
                metrics::describe_counter!(key, unit, "the KPL's metric of this name, cumulative")
            }
            Shape::Level => {
                metrics::describe_gauge!(key, unit, "mean of the 200 ms samples since the last export")
            }
            Shape::Distribution => {
                metrics::describe_counter!(format!("{key}_sum"), unit, "cumulative sum of the KPL's metric");
                metrics::describe_counter!(
                    format!("{key}_count"),
                    metrics::Unit::Count,
                    "observations of it"
                );
                metrics::describe_gauge!(format!("{key}_min"), unit, "smallest since the last export");
                metrics::describe_gauge!(format!("{key}_max"), unit, "largest since the last export");
            }
        }
    }
}

impl FacadeSnapshot {
    /// Publishes to the installed recorder (the global one, or a local one within
    /// `metrics::with_local_recorder`).
    pub fn publish(&self) {
        for metric in &self.cumulative {
            let labels = labels(metric);
            let name = metric.name.as_str();
            let total = metric.stat.sum.round().max(0.0) as u64;
            match shape(metric.name) {
                Shape::Total => metrics::counter!(name, &labels).absolute(total),
                Shape::Distribution => {
                    metrics::counter!(format!("{name}_sum"), &labels).absolute(total);
                    metrics::counter!(format!("{name}_count"), &labels).absolute(metric.stat.count);
                }
                Shape::Level => {}
            }
        }
        for metric in &self.recent {
            let labels = labels(metric);
            let name = metric.name.as_str();
            match shape(metric.name) {
                Shape::Total => {}
                Shape::Distribution => {
                    metrics::gauge!(format!("{name}_min"), &labels).set(metric.stat.min);
                    metrics::gauge!(format!("{name}_max"), &labels).set(metric.stat.max);
                }
                Shape::Level => {
                    if let Some(mean) = metric.stat.mean() {
                        metrics::gauge!(name, &labels).set(mean);
                    }
                }
            }
        }
    }
}

fn labels(metric: &Metric) -> Vec<(&'static str, String)> {
    let mut labels = Vec::with_capacity(3);
    if let Some(stream) = &metric.stream {
        labels.push(("stream", stream.stream_name().to_owned()));
    }
    if let Some(shard) = &metric.shard_id {
        labels.push(("shard", shard.to_string()));
    }
    if let Some(code) = &metric.error_code {
        labels.push(("error_code", code.clone()));
    }
    labels
}

#[cfg(test)]
mod tests {
    use kpl_core::{ShardId, Stat, StreamTarget};

    use super::*;

    #[test]
    fn labels_are_stream_shard_and_error_code_where_present() {
        let metric = Metric {
            name: MetricName::ErrorsByCode,
            error_code: Some("ProvisionedThroughputExceededException".into()),
            stream: Some(StreamTarget::arn("arn:aws:kinesis:us-east-1:1:stream/orders")),
            shard_id: Some(ShardId::from("shardId-000000000001")),
            stat: Stat::default(),
        };
        let labels = labels(&metric);
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            labels,
            [
                ("stream", "orders"),
                ("shard", "shardId-000000000001"),
                ("error_code", "ProvisionedThroughputExceededException")
            ]
        );
        let global = Metric { error_code: None, stream: None, shard_id: None, ..metric };
        assert!(super::labels(&global).is_empty());
    }
}
