//! Put records into a Kinesis stream and print what happened to them: the example to copy first.
//!
//! Against AWS, with the region and credentials of the default chain (environment, `~/.aws`, SSO, instance
//! role):
//!
//! ```sh
//! AWS_REGION=us-east-1 cargo run -p kpl-tokio --example put_records -- --stream my-stream
//! ```
//!
//! Against a local Kinesis-compatible server (kinesalite, LocalStack):
//!
//! ```sh
//! AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \
//!   cargo run -p kpl-tokio --example put_records -- --stream my-stream --endpoint-url http://127.0.0.1:4567
//! ```
//!
//! Options: `--stream NAME` (or `KPL_STREAM`), `--endpoint-url URL`, `--records N` (default 10000).
//! `RUST_LOG=kpl_tokio=debug` shows the producer's log.

use std::time::{Duration, Instant};

use kpl_tokio::{AwsBackend, KinesisProducer, ProducerConfig, ShardMapWait, StreamTarget};

struct Options {
    stream: String,
    endpoint_url: Option<String>,
    records: usize,
}

fn options() -> Result<Options, String> {
    let mut stream = std::env::var("KPL_STREAM").ok();
    let mut endpoint_url = None;
    let mut records = 10_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--stream" => stream = Some(value()?),
            "--endpoint-url" => endpoint_url = Some(value()?),
            "--records" => records = value()?.parse().map_err(|e| format!("--records: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let stream = stream.ok_or("name the stream with --stream or KPL_STREAM")?;
    Ok(Options { stream, endpoint_url, records })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let options = options()?;

    // The SDK's retries are turned off: the producer retries each record itself.
    let backend = match &options.endpoint_url {
        Some(url) => AwsBackend::from_env_with_endpoint(url).await,
        None => AwsBackend::from_env().await,
    };
    // The KPL's settings, names in snake_case. Holding the first records until the shard map is known
    // aggregates them too.
    let config = ProducerConfig::builder()
        .record_max_buffered_time(Duration::from_millis(100))
        .shard_map_wait(ShardMapWait::Hold)
        .build()?;
    let producer = KinesisProducer::builder(config, backend).spawn()?;
    let stream = StreamTarget::name(&options.stream);

    let started = Instant::now();
    // Results arrive out of order; collect them on another task while putting.
    let (results, mut completed) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..options.records {
        // `put` waits while too much is outstanding (backpressure), then returns the record's future.
        let record =
            producer.put_data(&stream, format!("customer-{}", i % 1000), format!("order {i}")).await?;
        let results = results.clone();
        tokio::spawn(async move {
            let _ = results.send(record.await);
        });
    }
    drop(results);
    let (mut written, mut failed, mut retried) = (0, 0, 0);
    while let Some(result) = completed.recv().await {
        match result {
            Ok(receipt) => {
                written += 1;
                retried += usize::from(receipt.attempts.len() > 1);
                if written == 1 {
                    println!("first record: shard {} sequence {}", receipt.shard_id, receipt.sequence_number);
                }
            }
            Err(error) => {
                failed += 1;
                eprintln!("record failed: {error}");
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{written} written ({retried} after retries), {failed} failed in {elapsed:.2?} ({:.0} records/s)",
        written as f64 / elapsed.as_secs_f64()
    );
    // Stop accepting, send what is left, wait for it (at most 30 s).
    producer.shutdown(Duration::from_secs(30)).await?;
    Ok(())
}
