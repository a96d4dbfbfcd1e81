//! Deaggregation of AWS Lambda Kinesis events (feature `lambda`): what the "KPL deaggregation modules for
//! AWS Lambda" of `awslabs/kinesis-aggregation` (Python `deaggregate_records`, Node `deaggregateSync`, Java
//! `RecordDeaggregator`) do, for Rust functions built on `lambda_runtime` and `aws_lambda_events`.
//!
//! A Lambda function reading a Kinesis stream is handed the stream's Kinesis records: one written by the KPL
//! (or by `kpl-core`) may hold many user records. [`deaggregate_event`] turns a whole
//! [`KinesisEvent`] into its user records, each with the
//! metadata of the Kinesis record that carried it; [`Deaggregator::deaggregate_event_record`] does one
//! record. Plain (non-aggregated) records pass through as one user record each (`aggregated == false`,
//! sub-sequence number 0), as the official modules do.
//!
//! ```
//! use kpl_deagg::lambda::aws_lambda_events::event::kinesis::KinesisEvent;
//! use kpl_deagg::lambda::aws_lambda_events::event::streams::KinesisEventResponse;
//!
//! fn handle(event: KinesisEvent) -> KinesisEventResponse {
//!     let deaggregated = kpl_deagg::lambda::deaggregate_event(event);
//!     for user in &deaggregated.records {
//!         println!("{} #{}: {} bytes", user.record.sequence_number, user.record.sub_sequence_number,
//!                  user.record.data.len());
//!     }
//!     // Damaged aggregates, by sequence number, for Lambda to retry or send to the on-failure destination.
//!     deaggregated.batch_item_failures()
//! }
//! # assert!(handle(KinesisEvent::default()).batch_item_failures.is_empty());
//! ```
//!
//! # A damaged aggregate
//!
//! A record that opens with the aggregate magic but is not a valid aggregate (its MD5 does not match, its
//! protobuf does not parse, a sub-record points outside a key table, an explicit hash key is not a 128-bit
//! decimal) yields no user records. The official modules differ here: Python's and Java's (the KCL's
//! semantics) deliver a record whose checksum or protobuf is bad unchanged, as if it were a plain record, so
//! the function gets protobuf bytes as user data; Python's stops at a sub-record with a bad table index,
//! prints to standard error and drops the rest of that aggregate; Node's `deaggregateSync` hands its callback
//! an error for the record (checksums are verified only when asked).
//!
//! Here, [`deaggregate_event`] (strict, [`Mode::Strict`]) reports each such record in
//! [`DeaggregatedEvent::failures`], with its sequence number and a typed [`DeaggError`], and still
//! deaggregates every other record of the event: nothing is dropped without the caller being told, and no
//! bytes are passed off as user data. [`DeaggregatedEvent::batch_item_failures`] turns the failures into
//! Lambda's partial batch response (`ReportBatchItemFailures`), so Lambda retries from the first failed
//! record and, with `MaximumRetryAttempts` and an on-failure destination set on the event source mapping,
//! sets it aside. (Lambda then re-delivers the records after it as well: make processing idempotent, as
//! any Kinesis consumer must.) To get the KCL's and the Python module's behaviour instead, deaggregate with
//! `Deaggregator::new(Mode::KclCompatible)`: a record with a bad checksum or protobuf then comes out
//! unchanged as one plain user record; one with a bad index or key is still reported.
//!
//! # Arrival time
//!
//! [`LambdaUserRecord::approximate_arrival_timestamp`] is the time `aws_lambda_events` (1.2.1) parsed from
//! `approximateArrivalTimestamp`, which reads the digits after the point as milliseconds whatever their
//! number: `1700000002.25` (a JSON writer drops the trailing zero of `.250`) comes out as `.025`, and more than
//! three digits can fail the event's deserialization. Three-digit fractions, as in AWS's sample events, are
//! read right. `kpl deagg` parses the field itself.
//!
//! Lambda's events carry no explicit hash key for the Kinesis record itself; a user record's
//! [`UserRecord::explicit_hash_key`] is the one its producer gave it inside the aggregate (Python's module
//! reports the table's first key for a sub-record that has none; this one reports `None`).

use std::sync::Arc;

pub use aws_lambda_events;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{DeaggError, Deaggregator, Mode, ReceivedRecord, UserRecord};

/// One user record from a Lambda Kinesis event, with the metadata of the Kinesis record that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaUserRecord {
    /// The user record: its partition key and explicit hash key, its data, the parent Kinesis record's
    /// sequence number and its sub-sequence number within it, and whether it came out of an aggregate.
    pub record: UserRecord,
    /// When the Kinesis record carrying it reached the stream (`kinesis.approximateArrivalTimestamp`,
    /// millisecond precision).
    pub approximate_arrival_timestamp: DateTime<Utc>,
    /// The stream it was read from (`eventSourceARN`).
    pub event_source_arn: Option<Arc<str>>,
    /// The AWS service of the event (`eventSource`, `aws:kinesis`).
    pub event_source: Option<Arc<str>>,
    /// The event's ID (`eventID`, `shardId-…:<sequence number>`): names the shard.
    pub event_id: Option<Arc<str>>,
    /// The stream's region (`awsRegion`).
    pub aws_region: Option<Arc<str>>,
}

/// A Kinesis record of an event that yielded no user records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {sequence_number}: {error}")]
pub struct FailedEventRecord {
    /// The Kinesis record's sequence number (what Lambda's batch item failure names).
    pub sequence_number: String,
    /// The stream it was read from (`eventSourceARN`).
    pub event_source_arn: Option<String>,
    /// Why it yielded nothing.
    #[source]
    pub error: DeaggError,
}

/// The outcome of deaggregating a whole event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeaggregatedEvent {
    /// Every user record, in the order of the event's records and, within one, of their sub-sequence numbers.
    pub records: Vec<LambdaUserRecord>,
    /// Every Kinesis record that yielded no user records, in the event's order.
    pub failures: Vec<FailedEventRecord>,
}

impl DeaggregatedEvent {
    /// Lambda's partial batch response (`ReportBatchItemFailures` on the event source mapping): one item per
    /// failure, named by its sequence number; empty when everything was deaggregated. Records dropped by a
    /// hash-range filter ([`DeaggError::OutOfShardRange`]) are not failures: the KCL drops them on purpose.
    pub fn batch_item_failures(&self) -> KinesisEventResponse {
        let mut response = KinesisEventResponse::default();
        response.batch_item_failures = self
            .failures
            .iter()
            .filter(|failure| !matches!(failure.error, DeaggError::OutOfShardRange { .. }))
            .map(|failure| {
                let mut item = KinesisBatchItemFailure::default();
                item.item_identifier = Some(failure.sequence_number.clone());
                item
            })
            .collect();
        response
    }
}

/// Deaggregates a whole event in [`Mode::Strict`]: see the [module documentation](self) for how a damaged
/// aggregate is reported. The event's data is moved, not copied: user records' data are slices of it.
pub fn deaggregate_event(event: KinesisEvent) -> DeaggregatedEvent {
    Deaggregator::new(Mode::Strict).deaggregate_event(event)
}

impl Deaggregator {
    /// The user records of one record of a Lambda Kinesis event, in order, each with the record's metadata.
    /// Errors as [`Deaggregator::deaggregate`]: in [`Mode::Strict`] a damaged aggregate is an error; in
    /// [`Mode::KclCompatible`] one with a bad checksum or protobuf comes out as one plain user record.
    pub fn deaggregate_event_record(
        &self,
        record: KinesisEventRecord,
    ) -> Result<Vec<LambdaUserRecord>, DeaggError> {
        let KinesisEventRecord { aws_region, event_id, event_source, event_source_arn, kinesis, .. } = record;
        let received = ReceivedRecord {
            data: Bytes::from(kinesis.data.0),
            partition_key: kinesis.partition_key,
            explicit_hash_key: None,
            sequence_number: kinesis.sequence_number,
        };
        let users = self.deaggregate(received)?;
        let approximate_arrival_timestamp = kinesis.approximate_arrival_timestamp.0;
        let [event_source_arn, event_source, event_id, aws_region] =
            [event_source_arn, event_source, event_id, aws_region].map(|field| field.map(Arc::from));
        Ok(users
            .map(|record| LambdaUserRecord {
                record,
                approximate_arrival_timestamp,
                event_source_arn: event_source_arn.clone(),
                event_source: event_source.clone(),
                event_id: event_id.clone(),
                aws_region: aws_region.clone(),
            })
            .collect())
    }

    /// Deaggregates every record of `event`: user records of the records that deaggregate, and the others
    /// as failures, whatever their position (one damaged record never takes the others down).
    pub fn deaggregate_event(&self, event: KinesisEvent) -> DeaggregatedEvent {
        let mut out = DeaggregatedEvent::default();
        for record in event.records {
            let sequence_number = record.kinesis.sequence_number.clone();
            let event_source_arn = record.event_source_arn.clone();
            match self.deaggregate_event_record(record) {
                Ok(users) => out.records.extend(users),
                Err(error) => {
                    out.failures.push(FailedEventRecord { sequence_number, event_source_arn, error })
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use aws_lambda_events::encodings::SecondTimestamp;
    use aws_lambda_events::event::kinesis::KinesisRecord;

    use super::*;
    use crate::AggregateBuilder;

    const ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";

    fn event_record(
        sequence_number: &str,
        partition_key: &str,
        data: &[u8],
        millis: i64,
    ) -> KinesisEventRecord {
        let mut kinesis = KinesisRecord::default();
        kinesis.data.0 = data.to_vec();
        kinesis.partition_key = partition_key.to_owned();
        kinesis.sequence_number = sequence_number.to_owned();
        kinesis.approximate_arrival_timestamp =
            SecondTimestamp(DateTime::from_timestamp_millis(millis).unwrap());
        let mut record = KinesisEventRecord::default();
        record.kinesis = kinesis;
        record.event_source_arn = Some(ARN.to_owned());
        record.event_source = Some("aws:kinesis".to_owned());
        record.event_id = Some(format!("shardId-000000000000:{sequence_number}"));
        record.aws_region = Some("us-east-1".to_owned());
        record
    }

    fn aggregate(records: &[(&str, Option<u128>, &str)]) -> Vec<u8> {
        let mut builder = AggregateBuilder::new();
        for (partition_key, explicit_hash_key, data) in records {
            builder.add(partition_key, *explicit_hash_key, &Bytes::copy_from_slice(data.as_bytes()));
        }
        builder.to_aggregated_bytes().to_vec()
    }

    fn event(records: Vec<KinesisEventRecord>) -> KinesisEvent {
        let mut event = KinesisEvent::default();
        event.records = records;
        event
    }

    #[test]
    fn user_records_carry_their_parents_metadata() {
        let blob = aggregate(&[("a", None, "one"), ("b", Some(7), "two")]);
        let out = deaggregate_event(event(vec![
            event_record("100", "outer", &blob, 1_700_000_000_123),
            event_record("200", "plain-key", b"plain", 1_700_000_001_000),
        ]));
        assert!(out.failures.is_empty());
        let summary: Vec<_> = out
            .records
            .iter()
            .map(|u| {
                (
                    &*u.record.sequence_number,
                    u.record.sub_sequence_number,
                    &*u.record.partition_key,
                    u.record.explicit_hash_key.as_deref(),
                    &u.record.data[..],
                    u.record.aggregated,
                    u.approximate_arrival_timestamp.timestamp_millis(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("100", 0, "a", None, &b"one"[..], true, 1_700_000_000_123),
                ("100", 1, "b", Some("7"), &b"two"[..], true, 1_700_000_000_123),
                ("200", 0, "plain-key", None, &b"plain"[..], false, 1_700_000_001_000),
            ]
        );
        for user in &out.records {
            assert_eq!(user.event_source_arn.as_deref(), Some(ARN));
            assert_eq!(user.event_source.as_deref(), Some("aws:kinesis"));
            assert_eq!(user.aws_region.as_deref(), Some("us-east-1"));
            let expected_id = format!("shardId-000000000000:{}", user.record.sequence_number);
            assert_eq!(user.event_id.as_deref(), Some(&*expected_id));
        }
        assert!(out.batch_item_failures().batch_item_failures.is_empty());
    }

    #[test]
    fn a_damaged_aggregate_is_a_failure_and_the_others_still_come_out() {
        let good = aggregate(&[("a", None, "one"), ("b", None, "two")]);
        let mut bad_checksum = good.clone();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 1;
        let records = vec![
            event_record("1", "outer", &good, 0),
            event_record("2", "outer", &bad_checksum, 0),
            event_record("3", "outer", b"plain", 0),
        ];

        let strict = deaggregate_event(event(records.clone()));
        let sequence: Vec<_> = strict.records.iter().map(|u| &*u.record.sequence_number).collect();
        assert_eq!(sequence, ["1", "1", "3"]);
        assert_eq!(strict.failures.len(), 1);
        assert_eq!(strict.failures[0].sequence_number, "2");
        assert_eq!(strict.failures[0].event_source_arn.as_deref(), Some(ARN));
        assert_eq!(strict.failures[0].error, DeaggError::ChecksumMismatch);
        let response = strict.batch_item_failures();
        let items: Vec<_> =
            response.batch_item_failures.iter().map(|item| item.item_identifier.as_deref()).collect();
        assert_eq!(items, [Some("2")]);

        // The KCL's (and Python's) behaviour: delivered unchanged, as a plain record.
        let kcl = Deaggregator::new(Mode::KclCompatible).deaggregate_event(event(records));
        assert!(kcl.failures.is_empty());
        let passed: Vec<_> = kcl.records.iter().filter(|u| &*u.record.sequence_number == "2").collect();
        assert_eq!(passed.len(), 1);
        assert!(!passed[0].record.aggregated);
        assert_eq!(passed[0].record.data[..], bad_checksum[..]);
    }

    /// A canary for the upstream fault described in the module documentation: when this fails,
    /// `aws_lambda_events` reads the fraction right and the note can go.
    #[test]
    fn aws_lambda_events_reads_a_short_fraction_as_milliseconds() {
        let json = r#"{"approximateArrivalTimestamp": 1700000002.25, "data": "", "partitionKey": "k",
            "sequenceNumber": "1"}"#;
        let record: KinesisRecord = serde_json::from_str(json).unwrap();
        assert_eq!(record.approximate_arrival_timestamp.timestamp_millis(), 1_700_000_002_025);
    }

    #[test]
    fn records_dropped_by_a_hash_range_are_reported_but_not_retried() {
        let blob = aggregate(&[("a", Some(5), "in"), ("b", Some(500), "out")]);
        let out = Deaggregator::new(Mode::Strict)
            .with_hash_range(0..=100)
            .deaggregate_event(event(vec![event_record("9", "outer", &blob, 0)]));
        assert!(out.records.is_empty());
        assert!(matches!(out.failures[0].error, DeaggError::OutOfShardRange { hash_key: 500, .. }));
        assert!(out.batch_item_failures().batch_item_failures.is_empty());
    }
}
