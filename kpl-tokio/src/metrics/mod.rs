//! The KPL's metrics out of the producer: queried locally ([`KinesisProducer::metrics_query`]), uploaded to
//! CloudWatch (`CloudWatchUploader`, feature `cloudwatch`) or published through the `metrics` crate's facade
//! (`MetricsExporter`, feature `metrics-facade`).
//!
//! The core counts and windows every metric (see [`kpl_core::Producer::metrics_query`]); this module only
//! reads it through the driver, a few times a minute, so neither reader slows records down.

#[cfg(feature = "cloudwatch")]
mod cloudwatch;
mod config;
#[cfg(feature = "metrics-facade")]
mod facade;
#[cfg(any(feature = "cloudwatch", feature = "metrics-facade"))]
mod interval;

#[cfg(feature = "cloudwatch")]
pub use cloudwatch::{CloudWatchUploader, CustomDatum, UploadStats, UploaderHandle};
pub use config::{ExtraDimension, MetricsConfig, MetricsConfigError};
#[cfg(feature = "metrics-facade")]
pub use facade::{ExporterHandle, FacadeSnapshot, MetricsExporter};
#[cfg(any(feature = "cloudwatch", feature = "metrics-facade"))]
pub(crate) use interval::IntervalReader;
use kpl_core::{Metric, MetricsQuery, MetricsQueryError};

use crate::producer::KinesisProducer;

/// Why metrics could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The query itself is invalid (a window outside 1 to 60 seconds).
    #[error(transparent)]
    Query(#[from] MetricsQueryError),
    /// The producer's driver stopped (after shutdown): there is nothing left to read.
    #[error("the producer's driver stopped")]
    DriverStopped,
}

impl KinesisProducer {
    /// The KPL's metrics over `query.window`, summed up the dimension tree to `query.granularity`, as the
    /// KPL's `getMetrics(name, windowSeconds)`: see [`kpl_core::Producer::metrics_query`].
    ///
    /// ```no_run
    /// # async fn run(producer: kpl_tokio::KinesisProducer) -> Result<(), kpl_tokio::MetricsError> {
    /// use kpl_tokio::{MetricName, MetricsGranularity, MetricsQuery, MetricsWindow};
    ///
    /// let query = MetricsQuery::new(MetricsWindow::LastSeconds(60))
    ///     .name(MetricName::UserRecordsPut)
    ///     .granularity(MetricsGranularity::Stream);
    /// for metric in producer.metrics_query(query).await? {
    ///     println!("{:?} {:?}: success rate {:?}", metric.stream, metric.error_code, metric.stat.mean());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn metrics_query(&self, query: MetricsQuery) -> Result<Vec<Metric>, MetricsError> {
        self.inspect(move |core, now| core.metrics_query(now, &query))
            .await
            .ok_or(MetricsError::DriverStopped)?
            .map_err(MetricsError::from)
    }
}
