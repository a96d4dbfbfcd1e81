//! Shared by the tests against kinesalite: the server, a fault-injecting proxy, and SDK helpers to create
//! streams and read them back.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cbor_bridge;
pub mod kinesalite;
pub mod moto;
pub mod proxy;

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use kpl_deagg::{Batch, Deaggregator, Mode, ReceivedRecord};
use kpl_tokio::{AwsBackend, KinesisProducer, ProducerConfig};

/// SDK configuration for a local server: static test credentials, plain http.
pub fn sdk_config(endpoint: &str) -> aws_sdk_kinesis::Config {
    aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "static"))
        .endpoint_url(endpoint)
        .build()
}

/// A client for setting up and reading streams.
pub fn client(endpoint: &str) -> Client {
    Client::from_conf(sdk_config(endpoint))
}

/// A producer writing through `endpoint`.
pub fn producer(endpoint: &str, config: ProducerConfig) -> KinesisProducer {
    let backend = AwsBackend::from_conf(sdk_config(endpoint));
    KinesisProducer::builder(config, backend).seed(17).spawn().unwrap()
}

/// Creates a stream and waits until it is active.
pub async fn create_stream(client: &Client, name: &str, shards: i32) {
    client.create_stream().stream_name(name).shard_count(shards).send().await.unwrap();
    wait_active(client, name).await;
}

/// Waits until a stream is active (after creation or resharding).
pub async fn wait_active(client: &Client, name: &str) {
    for _ in 0..200 {
        let summary = client.describe_stream_summary().stream_name(name).send().await.unwrap();
        if summary.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("stream {name} did not become active");
}

/// One shard as read back.
pub struct ShardContents {
    pub shard_id: String,
    pub range: std::ops::RangeInclusive<u128>,
    pub is_open: bool,
    /// The Kinesis records, in sequence-number order.
    pub records: Vec<ReceivedRecord>,
    /// The user records a KCL consumer of this shard sees.
    pub users: Batch,
}

/// Every shard of a stream (closed ones too) and everything in it, deaggregated with the KCL's filter.
pub async fn read_stream(client: &Client, name: &str) -> Vec<ShardContents> {
    let listing = client.list_shards().stream_name(name).send().await.unwrap();
    let mut shards = Vec::new();
    for shard in listing.shards() {
        let range = shard.hash_key_range().unwrap();
        let range: std::ops::RangeInclusive<u128> =
            range.starting_hash_key().parse().unwrap()..=range.ending_hash_key().parse().unwrap();
        let is_open = shard.sequence_number_range().unwrap().ending_sequence_number().is_none();
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        let mut records = Vec::new();
        while let Some(current) = iterator {
            let page = client.get_records().shard_iterator(current).limit(10_000).send().await.unwrap();
            let got = page.records();
            records.extend(got.iter().map(|record| ReceivedRecord {
                data: bytes::Bytes::copy_from_slice(record.data().as_ref()),
                partition_key: record.partition_key().unwrap_or_default().to_owned(),
                explicit_hash_key: None,
                sequence_number: record.sequence_number().to_owned(),
            }));
            iterator = if got.is_empty() { None } else { page.next_shard_iterator().map(str::to_owned) };
        }
        let users = Deaggregator::new(Mode::Strict)
            .with_hash_range(range.clone())
            .deaggregate_all(records.iter().cloned());
        shards.push(ShardContents { shard_id: shard.shard_id().to_owned(), range, is_open, records, users });
    }
    shards
}
