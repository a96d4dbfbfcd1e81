//! The agent's metrics at run time: each flow's counters and gauges ([`FlowMetrics`]), published to the
//! `metrics` facade and logged in the progress lines, and uploaded to CloudWatch
//! (`cloudwatch.emitMetrics`) by a task of their own, so a slow or failing CloudWatch never holds
//! records back.

use std::time::Instant;

use kpl_tokio::{CloudWatchUploader, CustomDatum, DeliveryError, RecordReceipt, Stat, UserRecord};
use tokio::sync::mpsc;

use super::flow::FlowRuntime;
use crate::core::metrics::{
    BYTES_BEHIND, BYTES_SENT, CHECKPOINT_LAG_BYTES, DESTINATION, Datum, DropCounters, FILES_BEHIND,
    FlowMetrics, MetricsDeltas, OLDEST_UNACKED_AGE_MS, REASON, RECORD_SEND_ATTEMPTS, RECORD_SEND_ERRORS,
    RECORDS_DROPPED, RECORDS_SENT, ROTATION_ANOMALIES, SERVICE_ERRORS,
};

/// Uploads waiting for the upload task; a CloudWatch slower than this many intervals loses the oldest.
const UPLOADS_QUEUED: usize = 4;

impl FlowRuntime {
    /// Counts the attempts of a completed delivery of `record`.
    pub(crate) fn count_attempts(
        &mut self,
        record: &UserRecord,
        result: &Result<RecordReceipt, DeliveryError>,
    ) {
        let attempts = match result {
            Ok(receipt) => {
                self.send.records_sent += 1;
                self.send.bytes_sent += record.data.len() as u64;
                receipt.attempts()
            }
            Err(DeliveryError::Failed(failure)) => {
                self.send.service_errors += 1;
                failure.attempts()
            }
            Err(_) => &[],
        };
        self.send.record_send_attempts += attempts.len() as u64;
        self.send.record_send_errors +=
            attempts.iter().filter(|attempt| attempt.error().is_some()).count() as u64;
    }

    /// The flow's figures at `now`. Sizes are read from the open handles (one `fstat` per open file).
    pub(crate) fn metrics(&self, now: Instant) -> FlowMetrics {
        let (mut bytes_behind, mut files_behind, mut checkpoint_lag_bytes) = (0, 0, 0);
        for file in self.tailer.files() {
            checkpoint_lag_bytes +=
                file.read_offset.saturating_sub(file.saved_checkpoint.unwrap_or(file.checkpoint));
            let size = self.files.get(&file.key).filter(|_| file.open).and_then(|f| f.metadata().ok());
            let behind = size.map_or(0, |meta| meta.len().saturating_sub(file.read_offset));
            bytes_behind += behind;
            files_behind += u64::from(behind > 0);
        }
        let stats = self.tailer.stats();
        FlowMetrics {
            flow: self.config.id(),
            destination: self.config.destination.to_string(),
            send: self.send,
            dropped: DropCounters {
                unconverted: self.config.processor.stats().dropped,
                oversize: stats.dropped_oversize,
                refused: self.refused,
            },
            rotation_anomalies: stats.anomalies,
            bytes_behind,
            files_behind,
            checkpoint_lag_bytes,
            oldest_unacked_age: self.unacked.values().min().map(|read| now.saturating_duration_since(*read)),
        }
    }
}

/// Where the figures go: the `metrics` facade always (a no-op without a recorder installed), CloudWatch
/// when an uploader is given.
pub(crate) struct MetricsPublisher {
    deltas: MetricsDeltas,
    uploads: Option<mpsc::Sender<Vec<Datum>>>,
}

impl MetricsPublisher {
    /// Uploads through `uploader` (on the current tokio runtime) when given.
    pub(crate) fn new(uploader: Option<CloudWatchUploader>) -> MetricsPublisher {
        let uploads = uploader.map(|uploader| {
            let (sender, mut receiver) = mpsc::channel::<Vec<Datum>>(UPLOADS_QUEUED);
            tokio::spawn(async move {
                while let Some(data) = receiver.recv().await {
                    let data: Vec<CustomDatum> = data.into_iter().map(custom).collect();
                    let stats = uploader.put_data(&data).await;
                    tracing::debug!(?stats, "agent metrics uploaded");
                }
            });
            sender
        });
        MetricsPublisher { deltas: MetricsDeltas::default(), uploads }
    }

    /// Sets the facade's counters and gauges to `flows`' figures.
    pub(crate) fn publish(&self, flows: &[FlowMetrics]) {
        for flow in flows {
            let labels = [("Flow", flow.flow.clone()), (DESTINATION, flow.destination.clone())];
            let counter = |name: &'static str, value: u64| metrics::counter!(name, &labels).absolute(value);
            counter(RECORD_SEND_ATTEMPTS, flow.send.record_send_attempts);
            counter(RECORDS_SENT, flow.send.records_sent);
            counter(RECORD_SEND_ERRORS, flow.send.record_send_errors);
            counter(BYTES_SENT, flow.send.bytes_sent);
            counter(SERVICE_ERRORS, flow.send.service_errors);
            counter(ROTATION_ANOMALIES, flow.rotation_anomalies);
            for (reason, value) in [
                ("unconverted", flow.dropped.unconverted),
                ("oversize", flow.dropped.oversize),
                ("refused", flow.dropped.refused),
            ] {
                let mut labels = labels.to_vec();
                labels.push((REASON, reason.to_owned()));
                metrics::counter!(RECORDS_DROPPED, &labels).absolute(value);
            }
            let gauge = |name: &'static str, value: u64| metrics::gauge!(name, &labels).set(value as f64);
            gauge(BYTES_BEHIND, flow.bytes_behind);
            gauge(FILES_BEHIND, flow.files_behind);
            gauge(CHECKPOINT_LAG_BYTES, flow.checkpoint_lag_bytes);
            let age =
                flow.oldest_unacked_age.map_or(0, |age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            gauge(OLDEST_UNACKED_AGE_MS, age);
        }
    }

    /// Queues `flows`' data (counters since the previous upload) for CloudWatch, if it is on. A full
    /// queue (CloudWatch slower than the interval) skips this upload, with a warning; the next one
    /// carries the counts.
    pub(crate) fn upload(&mut self, flows: &[FlowMetrics]) {
        let Some(uploads) = &self.uploads else { return };
        let Ok(permit) = uploads.try_reserve() else {
            tracing::warn!("CloudWatch uploads are behind; this interval's metrics are carried to the next");
            return;
        };
        permit.send(self.deltas.data(flows));
    }
}

fn custom(datum: Datum) -> CustomDatum {
    CustomDatum {
        name: datum.name.to_owned(),
        dimensions: datum.dimensions.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
        unit: datum.unit,
        stat: Stat { count: 1, sum: datum.value, min: datum.value, max: datum.value },
    }
}
