//! The same driver on the other runtimes shipped, smol and async-std, with the in-process mock backend
//! sleeping on the same runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use kpl_tokio::{
    AsyncStdRuntime, KinesisProducer, MockBackend, MockConfig, MockKinesis, ProducerConfig, PutError,
    Runtime, SmolRuntime, StreamTarget,
};

/// 500 records put, flushed, written once each, then a shutdown that refuses later puts.
async fn records_are_written_and_flushed<R: Runtime>(runtime: R) {
    let mut config = MockConfig::calm();
    config.latency = Duration::from_millis(2);
    config.jitter = Duration::from_millis(2);
    let mut kinesis = MockKinesis::new(config, 5).unwrap();
    kinesis.create_stream("events", 2).unwrap();
    let backend = Arc::new(MockBackend::with_runtime(kinesis, runtime.clone()));
    let config =
        ProducerConfig::builder().record_max_buffered_time(Duration::from_millis(20)).build().unwrap();
    let producer = KinesisProducer::builder(config, backend.clone()).spawn_on(runtime);
    let stream = StreamTarget::name("events");
    let mut futures = Vec::new();
    for i in 0..500 {
        futures.push(producer.put_data(&stream, format!("k{i}"), format!("event {i}")).await.unwrap());
    }
    producer.flush().await;
    assert_eq!(producer.outstanding_records(), 0);
    for future in futures {
        let receipt = future.await.unwrap();
        assert!(receipt.shard_id().as_str().starts_with("shardId-"));
    }
    let committed: usize = backend.with_kinesis(|kinesis, _| {
        kinesis.all_shards().map(|(_, shard)| shard.deaggregate(kpl_deagg::Mode::Strict).records.len()).sum()
    });
    assert_eq!(committed, 500);
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(producer.put_data(&stream, "k", &b"late"[..]).await.unwrap_err(), PutError::Closed);
}

#[test]
fn records_are_written_and_flushed_on_smol() {
    smol::block_on(records_are_written_and_flushed(SmolRuntime));
}

#[test]
fn records_are_written_and_flushed_on_async_std() {
    async_std::task::block_on(records_are_written_and_flushed(AsyncStdRuntime));
}
