//! The producer from plain threads: `BlockingProducer`, with the driver on a tokio runtime the program keeps,
//! writing to the in-process mock Kinesis (no AWS account).
//!
//! ```sh
//! cargo run -p kpl-tokio --example blocking
//! ```

use std::time::Duration;

use kpl_tokio::{KinesisProducer, MockBackend, MockConfig, MockKinesis, ProducerConfig, StreamTarget};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The driver runs on this runtime's worker threads; keep the runtime alive as long as the producer.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 42)?;
    kinesis.create_stream("clicks", 2)?;
    let backend = MockBackend::new(kinesis);
    let producer = runtime
        .block_on(async { KinesisProducer::builder(ProducerConfig::default(), backend).spawn() })?
        .blocking();

    let stream = StreamTarget::name("clicks");
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let producer = producer.clone();
            let stream = stream.clone();
            std::thread::spawn(move || -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
                // `put_data` blocks only while the producer is backpressured.
                let records = (0..1_000)
                    .map(|i| producer.put_data(&stream, format!("user-{worker}-{i}"), format!("click {i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut written = 0;
                for record in records {
                    record.wait()?; // the record's result: written, or why not
                    written += 1;
                }
                Ok(written)
            })
        })
        .collect();
    let mut written = 0;
    for worker in workers {
        written += worker.join().map_err(|_| "a worker panicked")??;
    }
    println!("{written} records written");
    if let Some(stats) = producer.stats() {
        println!(
            "{} PutRecords requests, {} Kinesis records",
            stats.put_records_requests, stats.kinesis_records_put
        );
    }
    producer.shutdown(Duration::from_secs(30))?;
    Ok(())
}
