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

use std::time::Instant;

#[cfg(feature = "cloudwatch")]
pub use cloudwatch::{CloudWatchUploader, UploadStats, UploaderHandle};
pub use config::{ExtraDimension, MetricsConfig, MetricsConfigError};
#[cfg(feature = "metrics-facade")]
pub use facade::{ExporterHandle, FacadeSnapshot, MetricsExporter};
use kpl_core::{Metric, MetricsQuery, MetricsQueryError, MetricsWindow, Producer};

use crate::producer::{KinesisProducer, WeakProducer};

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
    /// KPL's `getMetrics(name, windowSeconds)`: see [`Producer::metrics_query`].
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

/// Reads the seconds completed since its previous read, so that periodic readers see every second once.
#[derive(Debug)]
pub(crate) struct IntervalReader {
    producer: WeakProducer,
    /// First second not read yet.
    next: u64,
}

impl IntervalReader {
    pub(crate) fn new(producer: &KinesisProducer) -> Self {
        Self { producer: producer.downgrade(), next: 0 }
    }

    /// The producer, while a handle to it exists: readers must not keep it alive (its last handle's drop
    /// closes it).
    pub(crate) fn producer(&self) -> Option<KinesisProducer> {
        self.producer.upgrade()
    }

    /// `query` (its window replaced) over the seconds completed since the previous read, on the driver.
    pub(crate) async fn read(&mut self, query: MetricsQuery) -> Result<Vec<Metric>, MetricsError> {
        let producer = self.producer().ok_or(MetricsError::DriverStopped)?;
        let from = self.next;
        let (to, metrics) = producer
            .inspect(move |core: &Producer, now: Instant| {
                let to = core.metrics_second(now);
                let query = MetricsQuery { window: MetricsWindow::Seconds { from, to }, ..query };
                (to, core.metrics_query(now, &query))
            })
            .await
            .ok_or(MetricsError::DriverStopped)?;
        self.next = to.max(from);
        Ok(metrics?)
    }
}
