//! The one sink for what the producer counts: its [`ProducerStats`] and the KPL's metrics. The pipeline calls
//! it once per event, with the event's name; what each event counts is decided here, not in the routing code.

use std::time::{Duration, Instant};

use super::series::{Dimensions, Metrics, Series};
use super::{MetricName, Stat};
use crate::ids::{ShardSlot, StreamIx};
use crate::outgoing::{AcceptedRecord, OutgoingRecord};
use crate::stats::ProducerStats;

/// What is counted per stream on every put, kept apart from the metrics map so that a put costs no lookup.
#[derive(Debug, Default)]
pub(super) struct StreamCounts {
    /// Records accepted (`UserRecordsReceived`).
    pub(super) received: Series,
    /// Records accepted and not completed.
    pub(super) pending: u64,
    /// Samples of `pending` every 200 ms (`UserRecordsPending`).
    pub(super) pending_samples: Series,
}

/// Stats and metrics of one producer.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    pub(super) stats: ProducerStats,
    pub(super) metrics: Metrics,
    pub(super) streams: Vec<StreamCounts>,
}

impl Telemetry {
    pub(crate) fn stats(&self) -> &ProducerStats {
        &self.stats
    }

    /// Records of stream `s` accepted and not completed.
    pub(crate) fn pending(&self, s: StreamIx) -> u64 {
        self.streams[s.index()].pending
    }

    /// The clock moved to `now`: takes the `UserRecordsPending` samples due since the last call.
    pub(crate) fn advance(&mut self, now: Instant) {
        if let Some(ticks) = self.metrics.advance(now) {
            // Nothing changed between the previous call and this one: what is outstanding now was
            // outstanding at each of these ticks.
            for stream in &mut self.streams {
                stream.pending_samples.sample(stream.pending as f64, ticks.clone());
            }
        }
    }

    /// A stream was seen for the first time; it gets the next index.
    pub(crate) fn stream_added(&mut self) {
        self.streams.push(StreamCounts::default());
    }

    pub(crate) fn accepted(&mut self, s: StreamIx) {
        self.stats.user_records_received += 1;
        let second = self.metrics.second();
        let stream = &mut self.streams[s.index()];
        stream.received.observe(second, 1.0);
        stream.pending += 1;
    }

    pub(crate) fn refused_for_backpressure(&mut self) {
        self.stats.backpressure_rejections += 1;
    }

    pub(crate) fn unknown_response(&mut self) {
        self.stats.unknown_responses += 1;
    }

    pub(crate) fn list_shards_sent(&mut self) {
        self.stats.list_shards_requests += 1;
    }

    pub(crate) fn list_shards_failed(&mut self) {
        self.stats.list_shards_failures += 1;
    }

    pub(crate) fn shard_map_fallback(&mut self) {
        self.stats.shard_map_fallbacks += 1;
    }

    pub(crate) fn wrong_shard(&mut self) {
        self.stats.wrong_shard += 1;
    }

    pub(crate) fn retried(&mut self) {
        self.stats.retries += 1;
    }

    /// A PutRecords request of `records` goes out at `now`.
    pub(crate) fn put_sent(&mut self, now: Instant, s: StreamIx, records: &[OutgoingRecord]) {
        let mut user_records = 0;
        for record in records {
            user_records += record.users.len();
            let mut buffering = Stat::default();
            for user in &record.users {
                let since = user.failed_attempts().last().map_or(user.arrival, |attempt| attempt.ended());
                buffering.observe(millis(now.saturating_duration_since(since)));
            }
            let shard = dims(s, record.slot, None);
            self.metrics.merge(MetricName::BufferingTime, shard.clone(), &buffering);
            self.metrics.observe(MetricName::UserRecordsPerKinesisRecord, shard, record.users.len() as f64);
        }
        let stream = dims(s, None, None);
        self.metrics.observe(
            MetricName::KinesisRecordsPerPutRecordsRequest,
            stream.clone(),
            records.len() as f64,
        );
        self.metrics.observe(MetricName::UserRecordsPerPutRecordsRequest, stream, user_records as f64);
        self.stats.put_records_requests += 1;
    }

    /// The answer to a PutRecords request sent at `started` arrived at `now`.
    pub(crate) fn put_answered(&mut self, now: Instant, s: StreamIx, started: Instant) {
        self.metrics.observe(
            MetricName::RequestTime,
            dims(s, None, None),
            millis(now.saturating_duration_since(started)),
        );
    }

    /// A whole PutRecords request failed with `code`.
    pub(crate) fn request_failed(&mut self, s: StreamIx, code: &str) {
        self.stats.request_errors += 1;
        self.metrics.observe(MetricName::AllErrors, dims(s, None, None), 1.0);
        self.metrics.observe(MetricName::ErrorsByCode, dims(s, None, Some(code)), 1.0);
    }

    /// One entry of a PutRecords response failed with `code`.
    pub(crate) fn entry_failed(&mut self, s: StreamIx, slot: Option<ShardSlot>, code: &str, throttled: bool) {
        let shard = dims(s, slot, None);
        self.metrics.observe(MetricName::KinesisRecordsPut, shard.clone(), 0.0);
        self.metrics.observe(MetricName::AllErrors, shard, 1.0);
        self.metrics.observe(MetricName::ErrorsByCode, dims(s, slot, Some(code)), 1.0);
        if throttled {
            self.stats.throttled_entries += 1;
        } else {
            self.stats.failed_entries += 1;
        }
    }

    /// A Kinesis record was written to the shard in `slot` (if the producer knows it); counted before its
    /// user records complete, with the attempts they made before this one.
    pub(crate) fn kinesis_record_put(
        &mut self,
        s: StreamIx,
        slot: Option<ShardSlot>,
        record: &OutgoingRecord,
    ) {
        self.stats.kinesis_records_put += 1;
        let shard = dims(s, slot, None);
        self.metrics.observe(MetricName::KinesisRecordsPut, shard.clone(), 1.0);
        self.metrics.observe(MetricName::KinesisRecordsDataPut, shard.clone(), record.wire_size() as f64);
        self.metrics.observe(MetricName::AllErrors, shard.clone(), 0.0);
        let mut batch = CompletionStats::default();
        for user in &record.users {
            batch.user_records_put.observe(1.0);
            batch.user_records_data_put.observe(user.data.len() as f64);
            batch.retries_per_record.observe(user.failed_attempts().len() as f64);
        }
        self.stats.user_records_put += record.users.len() as u64;
        batch.merge_into(&mut self.metrics, &shard);
    }

    /// A user record failed for good, after its attempts.
    pub(crate) fn failed(&mut self, s: StreamIx, record: &AcceptedRecord) {
        self.stats.user_records_failed += 1;
        let stream = dims(s, None, None);
        self.metrics.observe(MetricName::UserRecordsPut, stream.clone(), 0.0);
        self.metrics.observe(
            MetricName::RetriesPerRecord,
            stream,
            record.failed_attempts().len().saturating_sub(1) as f64,
        );
    }

    /// A user record's TTL passed (it fails too: [`failed`](Self::failed) follows).
    pub(crate) fn expired(&mut self, s: StreamIx) {
        self.stats.user_records_expired += 1;
        self.metrics.observe(MetricName::UserRecordExpired, dims(s, None, None), 1.0);
    }

    /// A user record of stream `s` completed, either way.
    pub(crate) fn completed(&mut self, s: StreamIx) {
        self.streams[s.index()].pending -= 1;
    }
}

/// Per-Kinesis-record accumulators, merged into [`Metrics`] once per record rather than once per user record.
#[derive(Debug, Default)]
struct CompletionStats {
    user_records_put: Stat,
    user_records_data_put: Stat,
    retries_per_record: Stat,
}

impl CompletionStats {
    fn merge_into(&self, metrics: &mut Metrics, dimensions: &Dimensions) {
        for (name, stat) in [
            (MetricName::UserRecordsPut, &self.user_records_put),
            (MetricName::UserRecordsDataPut, &self.user_records_data_put),
            (MetricName::RetriesPerRecord, &self.retries_per_record),
        ] {
            metrics.merge(name, dimensions.clone(), stat);
        }
    }
}

fn dims(stream: StreamIx, slot: Option<ShardSlot>, error_code: Option<&str>) -> Dimensions {
    Dimensions { stream, slot, error_code: error_code.map(str::to_owned) }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
