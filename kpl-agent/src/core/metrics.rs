//! The agent's metrics: what each flow counted and what it is behind, turned into CloudWatch data.
//!
//! The Kinesis Agent's five sender metrics (`KinesisSender.java` L42–46; see
//! `shared/reference/kinesis-agent.md` (c)) keep their names, their namespace ([`NAMESPACE`]) and their
//! dimension ([`DESTINATION`] = `KinesisStream:<name>`), so its dashboards and alarms keep working. What
//! the agent only logs, or does not know, is added under the same dimension: [`BYTES_BEHIND`],
//! [`FILES_BEHIND`], [`CHECKPOINT_LAG_BYTES`], [`OLDEST_UNACKED_AGE_MS`], [`RECORDS_DROPPED`] (with a
//! `Reason` dimension) and [`ROTATION_ANOMALIES`].
//!
//! The shell gathers one [`FlowMetrics`] per flow (cumulative counters and current gauges), logs them
//! in the progress line, publishes them to the `metrics` facade, and hands them to
//! [`MetricsDeltas::data`], which turns counters into what happened since the previous upload.

use std::collections::HashMap;
use std::time::Duration;

use kpl_core::MetricUnit;

/// The CloudWatch namespace, the agent's default (`cloudwatch.namespace`).
pub const NAMESPACE: &str = "AWSKinesisAgent";
/// The dimension naming the destination: `KinesisStream:<stream>` (the agent's `Destination`).
pub const DESTINATION: &str = "Destination";
/// The dimension of [`RECORDS_DROPPED`]: `unconverted`, `oversize` or `refused`.
pub const REASON: &str = "Reason";

/// Records in delivery attempts (each attempt of each record: the agent counts the records of each
/// PutRecords call).
pub const RECORD_SEND_ATTEMPTS: &str = "RecordSendAttempts";
/// Records confirmed written.
pub const RECORDS_SENT: &str = "RecordsSent";
/// Record attempts that failed (each is retried: the producer's retries, then the agent's).
pub const RECORD_SEND_ERRORS: &str = "RecordSendErrors";
/// Bytes of record data confirmed written (after processing, without the partition key).
pub const BYTES_SENT: &str = "BytesSent";
/// Records the producer gave up on and handed back (the agent retries them, pausing the flow). The
/// agent counts failed PutRecords calls here; the producer retries those itself, so they show as
/// [`RECORD_SEND_ERRORS`] and, when they persist, here.
pub const SERVICE_ERRORS: &str = "ServiceErrors";
/// Bytes in open files past their read offset (the agent's "Tailing is X MB behind" log line).
pub const BYTES_BEHIND: &str = "BytesBehind";
/// Open files with bytes past their read offset.
pub const FILES_BEHIND: &str = "FilesBehind";
/// Bytes read and not yet covered by the checkpoint in the store (what a crash would read again).
pub const CHECKPOINT_LAG_BYTES: &str = "CheckpointLagBytes";
/// Age of the oldest record read and not yet confirmed written, in milliseconds (0: none).
pub const OLDEST_UNACKED_AGE_MS: &str = "OldestUnackedAgeMs";
/// Records not sent, by [`REASON`]: `unconverted` (a converter could not convert it and the flow drops
/// such records, as the agent does), `oversize` (`oversizeRecordPolicy` `DROP`), `refused` (the producer
/// refused it as invalid).
pub const RECORDS_DROPPED: &str = "RecordsDropped";
/// Anomalies the tailer met on the file system (a file truncated without a copy, a handle lost, a
/// rotated file given up on), each also logged with the decision taken.
pub const ROTATION_ANOMALIES: &str = "RotationAnomalies";

/// A flow's delivery counters, cumulative since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendCounters {
    /// See [`RECORD_SEND_ATTEMPTS`].
    pub record_send_attempts: u64,
    /// See [`RECORDS_SENT`].
    pub records_sent: u64,
    /// See [`RECORD_SEND_ERRORS`].
    pub record_send_errors: u64,
    /// See [`BYTES_SENT`].
    pub bytes_sent: u64,
    /// See [`SERVICE_ERRORS`].
    pub service_errors: u64,
}

/// A flow's dropped records by reason (see [`RECORDS_DROPPED`]), cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Unconverted records dropped by the processing chain.
    pub unconverted: u64,
    /// Records dropped for their size.
    pub oversize: u64,
    /// Records the producer refused.
    pub refused: u64,
}

/// One flow's figures at one moment: counters since the flow started, gauges now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowMetrics {
    /// The flow's id (`kinesis:<stream>:<pattern>`).
    pub flow: String,
    /// The [`DESTINATION`] value: `KinesisStream:<stream>`.
    pub destination: String,
    /// Delivery counters.
    pub send: SendCounters,
    /// Dropped records.
    pub dropped: DropCounters,
    /// See [`ROTATION_ANOMALIES`] (cumulative).
    pub rotation_anomalies: u64,
    /// See [`BYTES_BEHIND`].
    pub bytes_behind: u64,
    /// See [`FILES_BEHIND`].
    pub files_behind: u64,
    /// See [`CHECKPOINT_LAG_BYTES`].
    pub checkpoint_lag_bytes: u64,
    /// See [`OLDEST_UNACKED_AGE_MS`] (`None`: nothing in flight).
    pub oldest_unacked_age: Option<Duration>,
}

/// One value to upload: a metric name, its dimensions in order, its unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    /// One of this module's metric names.
    pub name: &'static str,
    /// [`DESTINATION`] first, then [`REASON`] for [`RECORDS_DROPPED`].
    pub dimensions: Vec<(&'static str, String)>,
    /// Count, bytes or milliseconds.
    pub unit: MetricUnit,
    /// The count or bytes since the previous upload (counters), or the value now (gauges).
    pub value: f64,
}

/// Turns cumulative counters into the counts since the previous call, per flow. A flow seen for the
/// first time (or restarted by a reload, its counters lower than before) counts from zero.
#[derive(Debug, Default)]
pub struct MetricsDeltas {
    previous: HashMap<String, FlowMetrics>,
}

impl MetricsDeltas {
    /// The data to upload for `flows` now: every counter as its increase since the previous call (zeros
    /// included, as the agent uploads them), every gauge as it is.
    pub fn data(&mut self, flows: &[FlowMetrics]) -> Vec<Datum> {
        let mut data = Vec::new();
        for flow in flows {
            let zero = FlowMetrics {
                send: SendCounters::default(),
                dropped: DropCounters::default(),
                rotation_anomalies: 0,
                ..flow.clone()
            };
            let before = self.previous.get(&flow.flow).unwrap_or(&zero);
            let since = |now: u64, then: u64| if now >= then { now - then } else { now };
            let destination = || vec![(DESTINATION, flow.destination.clone())];
            let mut push = |name, dimensions, unit, value: u64| {
                data.push(Datum { name, dimensions, unit, value: value as f64 })
            };
            let (send, was) = (flow.send, before.send);
            let count = MetricUnit::Count;
            push(
                RECORD_SEND_ATTEMPTS,
                destination(),
                count,
                since(send.record_send_attempts, was.record_send_attempts),
            );
            push(RECORDS_SENT, destination(), count, since(send.records_sent, was.records_sent));
            push(
                RECORD_SEND_ERRORS,
                destination(),
                count,
                since(send.record_send_errors, was.record_send_errors),
            );
            push(BYTES_SENT, destination(), MetricUnit::Bytes, since(send.bytes_sent, was.bytes_sent));
            push(SERVICE_ERRORS, destination(), count, since(send.service_errors, was.service_errors));
            let (dropped, was) = (flow.dropped, before.dropped);
            for (reason, now, then) in [
                ("unconverted", dropped.unconverted, was.unconverted),
                ("oversize", dropped.oversize, was.oversize),
                ("refused", dropped.refused, was.refused),
            ] {
                let dimensions = vec![(DESTINATION, flow.destination.clone()), (REASON, reason.to_owned())];
                push(RECORDS_DROPPED, dimensions, count, since(now, then));
            }
            push(
                ROTATION_ANOMALIES,
                destination(),
                count,
                since(flow.rotation_anomalies, before.rotation_anomalies),
            );
            push(BYTES_BEHIND, destination(), MetricUnit::Bytes, flow.bytes_behind);
            push(FILES_BEHIND, destination(), count, flow.files_behind);
            push(CHECKPOINT_LAG_BYTES, destination(), MetricUnit::Bytes, flow.checkpoint_lag_bytes);
            let age =
                flow.oldest_unacked_age.map_or(0, |age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            push(OLDEST_UNACKED_AGE_MS, destination(), MetricUnit::Milliseconds, age);
        }
        self.previous = flows.iter().map(|flow| (flow.flow.clone(), flow.clone())).collect();
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(sent: u64, anomalies: u64, behind: u64) -> FlowMetrics {
        FlowMetrics {
            flow: "kinesis:logs:/var/log/*.log".into(),
            destination: "KinesisStream:logs".into(),
            send: SendCounters {
                record_send_attempts: sent + 2,
                records_sent: sent,
                record_send_errors: 2,
                bytes_sent: sent * 10,
                service_errors: 1,
            },
            dropped: DropCounters { unconverted: 3, oversize: 0, refused: 0 },
            rotation_anomalies: anomalies,
            bytes_behind: behind,
            files_behind: u64::from(behind > 0),
            checkpoint_lag_bytes: 7,
            oldest_unacked_age: Some(Duration::from_millis(1500)),
        }
    }

    fn value(data: &[Datum], name: &str) -> f64 {
        let found: Vec<&Datum> = data.iter().filter(|d| d.name == name).collect();
        assert_eq!(found.len(), 1, "{name} once");
        found[0].value
    }

    #[test]
    fn counters_go_up_as_deltas_and_gauges_as_they_are() {
        let mut deltas = MetricsDeltas::default();
        let first = deltas.data(&[flow(100, 1, 4096)]);
        assert_eq!(value(&first, RECORDS_SENT), 100.0);
        assert_eq!(value(&first, RECORD_SEND_ATTEMPTS), 102.0);
        assert_eq!(value(&first, BYTES_SENT), 1000.0);
        assert_eq!(value(&first, ROTATION_ANOMALIES), 1.0);
        assert_eq!(value(&first, BYTES_BEHIND), 4096.0);
        assert_eq!(value(&first, FILES_BEHIND), 1.0);
        assert_eq!(value(&first, OLDEST_UNACKED_AGE_MS), 1500.0);
        let second = deltas.data(&[flow(150, 1, 0)]);
        assert_eq!(value(&second, RECORDS_SENT), 50.0);
        assert_eq!(value(&second, RECORD_SEND_ERRORS), 0.0, "no new errors");
        assert_eq!(value(&second, ROTATION_ANOMALIES), 0.0);
        assert_eq!((value(&second, BYTES_BEHIND), value(&second, FILES_BEHIND)), (0.0, 0.0));
        // A flow restarted by a reload counts from zero again.
        let third = deltas.data(&[flow(20, 0, 0)]);
        assert_eq!(value(&third, RECORDS_SENT), 20.0);
    }

    #[test]
    fn every_datum_has_the_agent_destination_and_drops_a_reason() {
        let data = MetricsDeltas::default().data(&[flow(1, 0, 0)]);
        assert!(data.iter().all(|d| d.dimensions[0] == (DESTINATION, "KinesisStream:logs".to_owned())));
        let dropped: Vec<(String, f64)> = data
            .iter()
            .filter(|d| d.name == RECORDS_DROPPED)
            .map(|d| (d.dimensions[1].1.clone(), d.value))
            .collect();
        assert_eq!(dropped, [("unconverted".into(), 3.0), ("oversize".into(), 0.0), ("refused".into(), 0.0)]);
        let units: HashMap<&str, MetricUnit> = data.iter().map(|d| (d.name, d.unit)).collect();
        assert_eq!(units[BYTES_SENT], MetricUnit::Bytes);
        assert_eq!(units[OLDEST_UNACKED_AGE_MS], MetricUnit::Milliseconds);
        assert_eq!(units[RECORDS_SENT], MetricUnit::Count);
    }
}
