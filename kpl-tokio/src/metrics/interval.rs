//! Periodic reads of the metrics: every completed second once.

use std::time::Instant;

use kpl_core::{Metric, MetricsQuery, MetricsWindow, Producer};

use super::MetricsError;
use crate::producer::{KinesisProducer, WeakProducer};

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
