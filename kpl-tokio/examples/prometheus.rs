//! The producer's KPL metrics served to Prometheus through the `metrics` facade
//! (`MetricsExporter`, feature `metrics-facade`) and `metrics-exporter-prometheus`, on the in-process mock.
//!
//! ```sh
//! cargo run -p kpl-tokio --example prometheus                    # prints the exposition text once
//! cargo run -p kpl-tokio --example prometheus -- 127.0.0.1:9898  # and serves it at /metrics until Ctrl-C
//! ```
//!
//! Names are the KPL's (`UserRecordsPut`, `BufferingTime_sum`, ...), labels `stream`, `shard` and
//! `error_code` at the configured granularity; see `kpl_tokio::metrics` for how each metric maps to a
//! counter or gauge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kpl_tokio::{
    KinesisProducer, MetricsConfig, MetricsExporter, MetricsGranularity, MockBackend, MockConfig,
    MockKinesis, ProducerConfig, StreamTarget,
};
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: Option<SocketAddr> = std::env::args().nth(1).map(|addr| addr.parse()).transpose()?;

    // The recorder the facade publishes to; `render` gives the text Prometheus scrapes.
    let mut builder = PrometheusBuilder::new();
    if let Some(addr) = listen {
        builder = builder.with_http_listener(addr);
    }
    let (recorder, serve) = builder.build()?;
    let scrape = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    tokio::spawn(serve);

    let mut kinesis = MockKinesis::new(MockConfig::calm(), 42)?;
    kinesis.create_stream("demo", 4)?;
    let producer =
        KinesisProducer::builder(ProducerConfig::default(), Arc::new(MockBackend::new(kinesis))).spawn()?;
    // Per-shard labels; the default granularity is per shard too, as the KPL's.
    let metrics_config = MetricsConfig::default().granularity(MetricsGranularity::Shard);
    let mut exporter = MetricsExporter::new(&producer, metrics_config);

    let stream = StreamTarget::name("demo");
    let mut results = Vec::new();
    for i in 0..10_000 {
        results
            .push(producer.put_data(&stream, format!("device-{}", i % 100), format!("reading {i}")).await?);
    }
    for result in results {
        result.await?;
    }
    exporter.export().await?;
    print!("{}", scrape.render());

    if let Some(addr) = listen {
        println!("# serving http://{addr}/metrics, exported every 10 s; Ctrl-C stops");
        let _periodic = exporter.spawn()?;
        tokio::signal::ctrl_c().await?;
    }
    producer.shutdown(Duration::from_secs(10)).await?;
    Ok(())
}
