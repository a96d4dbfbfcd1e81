//! End-to-end rate of the producer: records per second from the first `put` to the last record's result,
//! with 100-byte records and 36-byte partition keys, on a 2-worker tokio runtime.
//!
//! ```sh
//! cargo bench -p kpl-tokio --bench end_to_end                 # both backends
//! cargo bench -p kpl-tokio --bench end_to_end -- mock 2000000 # one backend, that many records
//! ```
//!
//! `mock`: the in-process simulated Kinesis (5 ms latency, no shard limits). `kinesalite`: a local
//! kinesalite (installed into `target/kinesalite` on first use), over HTTP through aws-sdk-kinesis. The
//! producer's per-shard rate limit is lifted in both, so that what is measured is the producer and the
//! server, not Kinesis's 1 MiB/s per shard. Measures only: asserts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tests::kinesalite::{Kinesalite, client, create_stream, sdk_config};
use kpl_tokio::{
    Backend, KinesisProducer, MockBackend, ProducerConfig, ShardMapWait, StreamTarget, UserRecord,
};

const SHARDS: u32 = 4;

fn config() -> ProducerConfig {
    ProducerConfig::builder().rate_limit(1_000_000).shard_map_wait(ShardMapWait::Hold).build().unwrap()
}

/// Puts `records` records and waits for every result; returns (seconds to put them all, seconds to the last
/// result).
async fn run(backend: impl Backend, stream: &str, records: usize) -> (f64, f64) {
    let producer = KinesisProducer::builder(config(), backend).seed(1).spawn().unwrap();
    let stream = StreamTarget::name(stream);
    let data = bytes::Bytes::from(vec![b'x'; 100]);
    let keys: Vec<String> = (0..10_000).map(|i| format!("{:036}", i)).collect();
    let started = Instant::now();
    let mut futures = Vec::with_capacity(records);
    for i in 0..records {
        let record = UserRecord::new(stream.clone(), keys[i % keys.len()].clone(), data.clone());
        futures.push(producer.put(record).await.unwrap());
    }
    let put = started.elapsed().as_secs_f64();
    let mut failed = 0;
    for future in futures {
        failed += usize::from(future.await.is_err());
    }
    let done = started.elapsed().as_secs_f64();
    assert_eq!(failed, 0, "records failed");
    producer.shutdown(Duration::from_secs(60)).await.unwrap();
    (put, done)
}

fn report(name: &str, records: usize, (put, done): (f64, f64)) {
    println!(
        "{name:<11} {records:>9} records: all put in {put:.2} s, all written in {done:.2} s: {:>9.0} records/s end to end",
        records as f64 / done
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let which = args.first().map(String::as_str);
    let count = args.get(1).and_then(|n| n.parse().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if which.is_none_or(|w| w == "mock") {
        let records = count.unwrap_or(1_000_000);
        let result = runtime.block_on(async {
            let config = MockConfig {
                shard_limits: None,
                latency: Duration::from_millis(5),
                jitter: Duration::ZERO,
                ..MockConfig::calm()
            };
            let mut kinesis = MockKinesis::new(config, 1).unwrap();
            kinesis.create_stream("bench", SHARDS).unwrap();
            run(Arc::new(MockBackend::new(kinesis)), "bench", records).await
        });
        report("mock", records, result);
    }
    if which.is_none_or(|w| w == "kinesalite") {
        let records = count.unwrap_or(200_000);
        let server = Kinesalite::start();
        let result = runtime.block_on(async {
            let client = client(server.endpoint());
            create_stream(&client, "bench", SHARDS as i32).await;
            let backend = kpl_tokio::AwsBackend::from_conf(sdk_config(server.endpoint()));
            run(backend, "bench", records).await
        });
        report("kinesalite", records, result);
    }
}
