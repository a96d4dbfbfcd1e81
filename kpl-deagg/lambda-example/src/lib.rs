//! The handler of an AWS Lambda function that reads a Kinesis stream written by the KPL (or by kpl-rs):
//! it deaggregates each event's records and logs every user record; see `src/main.rs` for the function.
//!
//! A record that cannot be deaggregated is logged at `error` and named in the partial batch response, so
//! enable `ReportBatchItemFailures` on the event source mapping (with `MaximumRetryAttempts` and an
//! on-failure destination) and Lambda retries it or sets it aside instead of losing it.

use kpl_deagg::lambda::aws_lambda_events::event::kinesis::KinesisEvent;
use kpl_deagg::lambda::aws_lambda_events::event::streams::KinesisEventResponse;
use lambda_runtime::tracing::{error, info};
use lambda_runtime::{Error, LambdaEvent};

/// Deaggregates `event` and logs each user record at `info` (sequence number, sub-sequence number,
/// partition key, data length); returns the records that yielded none as Lambda's batch item failures.
pub async fn handler(event: LambdaEvent<KinesisEvent>) -> Result<KinesisEventResponse, Error> {
    let deaggregated = kpl_deagg::lambda::deaggregate_event(event.payload);
    for user in &deaggregated.records {
        let record = &user.record;
        info!(
            sequence_number = &*record.sequence_number,
            sub_sequence_number = record.sub_sequence_number,
            partition_key = &*record.partition_key,
            bytes = record.data.len(),
            "user record"
        );
    }
    for failure in &deaggregated.failures {
        error!("{failure}");
    }
    Ok(deaggregated.batch_item_failures())
}
