//! The same driver on async-std, with the in-process mock backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::{AsyncStdRuntime, KinesisProducer, MockBackend, ProducerConfig, PutError, StreamTarget};

#[test]
fn records_are_written_and_flushed_on_async_std() {
    async_std::task::block_on(async {
        let mut config = MockConfig::calm();
        config.latency = Duration::from_millis(2);
        config.jitter = Duration::from_millis(2);
        let mut kinesis = MockKinesis::new(config, 5).unwrap();
        kinesis.create_stream("events", 2).unwrap();
        let backend = Arc::new(MockBackend::with_runtime(kinesis, AsyncStdRuntime));
        let config =
            ProducerConfig::builder().record_max_buffered_time(Duration::from_millis(20)).build().unwrap();
        let producer = KinesisProducer::builder(config, backend.clone()).spawn_on(AsyncStdRuntime);
        let stream = StreamTarget::name("events");
        let mut futures = Vec::new();
        for i in 0..500 {
            futures.push(producer.put_data(&stream, format!("k{i}"), format!("event {i}")).await.unwrap());
        }
        producer.flush().await;
        assert_eq!(producer.outstanding_records(), 0);
        for future in futures {
            let receipt = future.await.unwrap();
            assert!(receipt.shard_id.as_str().starts_with("shardId-"));
        }
        let committed: usize = backend.with_kinesis(|kinesis, _| {
            kinesis
                .all_shards()
                .map(|(_, shard)| shard.deaggregate(kpl_deagg::Mode::Strict).records.len())
                .sum()
        });
        assert_eq!(committed, 500);
        producer.shutdown(Duration::from_secs(5)).await.unwrap();
        assert_eq!(producer.put_data(&stream, "k", &b"late"[..]).await.unwrap_err(), PutError::Closed);
    });
}
