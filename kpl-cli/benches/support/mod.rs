//! What the benchmarks share: the stream's shard layout and a backend that answers at once.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use kpl_core::{
    ListShardsOutput, PutRecordsResultEntry, Request, RequestError, RequestErrorKind, Response,
    ShardDescription,
};
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::Backend;

pub const STREAM: &str = "bench";
pub const SHARDS: u32 = 4;

/// The stream's shards as Kinesis lays them out (taken from the mock, which follows the service).
pub fn shard_layout() -> Vec<ShardDescription> {
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 1).unwrap();
    kinesis.create_stream(STREAM, SHARDS).unwrap();
    kinesis.shards(STREAM).unwrap().iter().map(|shard| shard.description()).collect()
}

/// The shard holding `hash_key`.
pub fn route(shards: &[ShardDescription], hash_key: u128) -> &ShardDescription {
    shards.iter().find(|shard| (shard.starting_hash_key..=shard.ending_hash_key).contains(&hash_key)).unwrap()
}

/// A record's hash key: its explicit hash key, else the MD5 of its partition key.
pub fn hash_key(explicit_hash_key: Option<&str>, partition_key: &str) -> u128 {
    match explicit_hash_key {
        Some(key) => kpl_deagg::parse_explicit_hash_key(key).unwrap(),
        None => kpl_deagg::partition_key_hash(partition_key),
    }
}

/// Sequence numbers handed out by a sink, one counter per process (they only need to be unique).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

pub fn sequence_number() -> String {
    format!("49{:054}", SEQUENCE.fetch_add(1, Ordering::Relaxed))
}

/// Answers every request at once, in process; or, with `stall_puts`, answers `ListShards` and never
/// `PutRecords` (the producer keeps every record it was given).
pub struct NullBackend {
    pub shards: Vec<ShardDescription>,
    pub stall_puts: bool,
}

#[async_trait]
impl Backend for NullBackend {
    async fn send(&self, request: Request) -> Response {
        match request {
            Request::ListShards(_) => {
                Response::ListShards(Ok(ListShardsOutput { shards: self.shards.clone(), next_token: None }))
            }
            Request::PutRecords(put) => {
                if self.stall_puts {
                    std::future::pending::<()>().await;
                }
                Response::PutRecords(Ok(put
                    .entries
                    .iter()
                    .map(|entry| PutRecordsResultEntry::Success {
                        shard_id: route(
                            &self.shards,
                            hash_key(entry.explicit_hash_key.as_deref(), &entry.partition_key),
                        )
                        .shard_id
                        .clone(),
                        sequence_number: sequence_number(),
                    })
                    .collect()))
            }
            other => other.kind().failure(RequestError::new(
                RequestErrorKind::Fatal,
                None,
                "the benchmark's backend only lists shards and puts records",
            )),
        }
    }
}
