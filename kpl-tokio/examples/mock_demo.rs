//! The producer against the in-process simulated Kinesis of `kpl-mock-backend`: no network, no AWS account.
//!
//! ```sh
//! cargo run -p kpl-tokio --example mock_demo            # a healthy service
//! cargo run -p kpl-tokio --example mock_demo -- hostile  # throttling, 5xx, timeouts, lost responses
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kpl_tokio::{
    KinesisProducer, MockBackend, MockConfig, MockKinesis, ProducerConfig, ShardMapWait, StreamTarget,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let hostile = std::env::args().any(|arg| arg == "hostile");
    let mock_config = if hostile { MockConfig::hostile() } else { MockConfig::calm() };
    let mut kinesis = MockKinesis::new(mock_config, 42)?;
    kinesis.create_stream("demo", 4)?;
    // Keep a handle on the backend to read what was written.
    let backend = Arc::new(MockBackend::new(kinesis));
    // Without `Hold`, records put before the shard map arrives go out unaggregated (as with the KPL), and a
    // burst of them gets throttled by the shards.
    let config = ProducerConfig::builder().shard_map_wait(ShardMapWait::Hold).build()?;
    let producer = KinesisProducer::builder(config, backend.clone()).spawn()?;
    let stream = StreamTarget::name("demo");

    let started = Instant::now();
    let mut futures = Vec::new();
    for i in 0..20_000 {
        futures
            .push(producer.put_data(&stream, format!("device-{}", i % 500), format!("reading {i}")).await?);
    }
    let mut per_shard = BTreeMap::new();
    let (mut retried, mut failed) = (0, 0);
    for future in futures {
        match future.await {
            Ok(receipt) => {
                *per_shard.entry(receipt.shard_id.to_string()).or_insert(0) += 1;
                retried += usize::from(receipt.attempts.len() > 1);
            }
            Err(error) => {
                failed += 1;
                eprintln!("{error}");
            }
        }
    }
    println!("written in {:.2?}: {per_shard:?}; {retried} after retries, {failed} failed", started.elapsed());
    if let Some(stats) = producer.stats().await {
        println!(
            "{} user records in {} Kinesis records, {} PutRecords requests",
            stats.user_records_put, stats.kinesis_records_put, stats.put_records_requests
        );
    }
    producer.shutdown(Duration::from_secs(30)).await?;
    backend.with_kinesis(|kinesis, _| {
        println!("the mock committed {} Kinesis records", kinesis.stats().entries_committed)
    });
    Ok(())
}
