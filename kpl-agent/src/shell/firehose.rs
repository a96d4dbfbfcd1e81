//! Firehose flows' calls: the client from `agent.json`'s keys, and one `PutRecordBatch` per
//! [`PutBatch`] the core's batcher decides, its answer turned into a [`BatchOutcome`].

use aws_sdk_firehose::Client;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;

use super::aws::{SetupError, endpoint_url, sdk_config};
use crate::config::AgentConfig;
use crate::core::{BatchOutcome, PutBatch};

/// The Firehose client of `deliveryStream` flows on [`sdk_config`] (so in `kinesis.region`: the agent has
/// no `firehose.region`), with `firehose.endpoint` when given.
pub async fn firehose_client(config: &AgentConfig) -> Result<Client, SetupError> {
    let mut firehose = aws_sdk_firehose::config::Builder::from(&sdk_config(config).await?);
    if let Some(endpoint) = &config.firehose_endpoint {
        firehose.set_endpoint_url(Some(endpoint_url(endpoint)));
    }
    Ok(Client::from_conf(firehose.build()))
}

/// Makes the call `batch` to delivery stream `name`; every failure is an outcome (retried by the core).
pub(crate) async fn put_record_batch(client: Client, name: String, batch: PutBatch) -> BatchOutcome {
    let records: Result<Vec<Record>, _> = batch
        .records
        .into_iter()
        .map(|data| Record::builder().data(Blob::from_maybe_shared(data)).build())
        .collect();
    let records = match records {
        Ok(records) => records,
        Err(error) => return BatchOutcome::Failed(error.to_string()),
    };
    match client.put_record_batch().delivery_stream_name(name).set_records(Some(records)).send().await {
        Ok(answer) => BatchOutcome::Answered(
            answer.request_responses().iter().map(|entry| entry.error_code().map(str::to_owned)).collect(),
        ),
        Err(error) => BatchOutcome::Failed(aws_sdk_firehose::error::DisplayErrorContext(&error).to_string()),
    }
}
