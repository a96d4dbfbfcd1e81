//! The workload the metrics tests observe: a producer on the in-process mock, and records whose metrics are
//! known exactly.

use std::sync::Arc;

use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::{KinesisProducer, MockBackend, ProducerConfig, StreamTarget, UserRecord};

/// The stream written to: two shards.
const STREAM: &str = "orders";

/// A producer on an in-process mock stream of two shards.
pub fn producer() -> KinesisProducer {
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 7).unwrap();
    kinesis.create_stream(STREAM, 2).unwrap();
    let backend = Arc::new(MockBackend::new(kinesis));
    KinesisProducer::builder(ProducerConfig::default(), backend).seed(1).spawn().unwrap()
}

/// 6 records of 10 bytes to shard 0, 4 of 25 bytes to shard 1, all written.
pub async fn put_records(producer: &KinesisProducer) {
    let stream = StreamTarget::name(STREAM);
    let mut results = Vec::new();
    for (hash_key, size, count) in [("0", 10, 6), ("340282366920938463463374607431768211455", 25, 4)] {
        for _ in 0..count {
            let record =
                UserRecord::new(stream.clone(), "key", vec![7u8; size]).with_explicit_hash_key(hash_key);
            results.push(producer.put(record).await.unwrap());
        }
    }
    for result in results {
        result.await.unwrap();
    }
}
