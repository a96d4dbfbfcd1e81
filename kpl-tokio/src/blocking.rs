//! A blocking face of the producer for threads that do not run async code.

use std::time::Duration;

use futures::executor::block_on;
use kpl_core::{
    Metric, MetricSample, MetricsQuery, ProducerConfig, ProducerStats, PutError, RecordReceipt, StreamTarget,
    UserRecord,
};

use crate::error::{DeliveryError, ShutdownError};
use crate::metrics::MetricsError;
use crate::producer::{KinesisProducer, RecordFuture};

/// [`KinesisProducer`] with blocking methods. The driver still runs on its async runtime (build the producer
/// there, e.g. `runtime.block_on(async { builder.spawn() })` on a multi-threaded tokio runtime you keep);
/// these methods only wait, on the calling thread.
///
/// Do not call them from async code: they block the thread, and on a single-threaded runtime the driver
/// would never run.
#[derive(Debug, Clone)]
pub struct BlockingProducer {
    producer: KinesisProducer,
}

impl BlockingProducer {
    /// Wraps a producer.
    pub fn new(producer: KinesisProducer) -> Self {
        Self { producer }
    }

    /// The async producer.
    pub fn producer(&self) -> &KinesisProducer {
        &self.producer
    }

    /// [`KinesisProducer::put`]: blocks while the outstanding limits are reached.
    pub fn put(&self, record: UserRecord) -> Result<BlockingRecord, PutError> {
        block_on(self.producer.put(record)).map(|future| BlockingRecord { future })
    }

    /// [`KinesisProducer::put_data`].
    pub fn put_data(
        &self,
        stream: &StreamTarget,
        partition_key: impl Into<String>,
        data: impl Into<bytes::Bytes>,
    ) -> Result<BlockingRecord, PutError> {
        self.put(UserRecord::new(stream.clone(), partition_key, data))
    }

    /// [`KinesisProducer::try_put`]: never blocks.
    pub fn try_put(&self, record: UserRecord) -> Result<BlockingRecord, PutError> {
        self.producer.try_put(record).map(|future| BlockingRecord { future })
    }

    /// [`KinesisProducer::flush`]: blocks until every record put before it completed.
    pub fn flush(&self) {
        block_on(self.producer.flush());
    }

    /// [`KinesisProducer::flush_stream`].
    pub fn flush_stream(&self, stream: &StreamTarget) {
        block_on(self.producer.flush_stream(stream));
    }

    /// [`KinesisProducer::config`].
    pub fn config(&self) -> &ProducerConfig {
        self.producer.config()
    }

    /// [`KinesisProducer::outstanding_records`].
    pub fn outstanding_records(&self) -> usize {
        self.producer.outstanding_records()
    }

    /// [`KinesisProducer::oldest_record_age`] (the KPL's `getOldestRecordTimeInMillis`).
    pub fn oldest_record_age(&self) -> Option<Duration> {
        block_on(self.producer.oldest_record_age())
    }

    /// [`KinesisProducer::stats`].
    pub fn stats(&self) -> Option<ProducerStats> {
        block_on(self.producer.stats())
    }

    /// [`KinesisProducer::metrics`].
    pub fn metrics(&self) -> Option<Vec<MetricSample>> {
        block_on(self.producer.metrics())
    }

    /// [`KinesisProducer::metrics_query`] (the KPL's `getMetrics`).
    ///
    /// # Errors
    ///
    /// As [`KinesisProducer::metrics_query`].
    pub fn metrics_query(&self, query: MetricsQuery) -> Result<Vec<Metric>, MetricsError> {
        block_on(self.producer.metrics_query(query))
    }

    /// [`KinesisProducer::shutdown`].
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ShutdownError> {
        block_on(self.producer.shutdown(timeout))
    }
}

/// A record's pending result, waited for by blocking.
#[derive(Debug)]
#[must_use = "a record's result says whether it was written"]
pub struct BlockingRecord {
    future: RecordFuture,
}

impl BlockingRecord {
    /// Blocks until the record was written or failed.
    pub fn wait(self) -> Result<RecordReceipt, DeliveryError> {
        block_on(self.future)
    }

    /// The async future, to await instead.
    pub fn into_future(self) -> RecordFuture {
        self.future
    }
}
