//! A KPL `.properties` file, as a Java KPL user has one: its producer settings, its connection settings
//! (region, endpoint, proxy, CA certificates, connect timeout) applied to the AWS SDK, and every setting the
//! library does not apply named, with the reason. Then a few records.
//!
//! ```sh
//! cargo run -p kpl-tokio --example properties_file -- kpl.properties my-stream
//! ```
//!
//! For a local server, e.g. kinesalite on port 4567: `Region = us-east-1`, `KinesisEndpoint =
//! http://127.0.0.1`, `KinesisPort = 4567`, and credentials in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`.

use std::time::Duration;

use kpl_tokio::aws_config::{self, BehaviorVersion};
use kpl_tokio::{
    AwsBackend, KinesisProducer, StreamTarget, from_properties_file, kinesis_config_loader,
    unapplied_settings,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(stream)) = (args.next(), args.next()) else {
        return Err("usage: properties_file <kpl.properties> <stream>".into());
    };

    let loaded = from_properties_file(&path)?;
    for warning in &loaded.warnings {
        eprintln!("{path}: {warning}");
    }
    for setting in unapplied_settings(&loaded) {
        eprintln!("{path}: {setting}");
    }
    // The application picks the behavior version and credentials; the file adds its connection settings.
    let loader = kinesis_config_loader(aws_config::defaults(BehaviorVersion::latest()), &loaded)?;
    let backend = AwsBackend::from_sdk_config(&loader.load().await);
    let producer = KinesisProducer::builder(loaded.config.clone(), backend).spawn()?;

    let stream = StreamTarget::name(&stream);
    let mut results = Vec::new();
    for i in 0..100 {
        results.push(producer.put_data(&stream, format!("key-{i}"), format!("record {i}")).await?);
    }
    for result in results {
        match result.await {
            Ok(receipt) => println!("{} {}", receipt.shard_id(), receipt.sequence_number()),
            Err(error) => eprintln!("failed: {error}"),
        }
    }
    producer.shutdown(Duration::from_secs(30)).await?;
    Ok(())
}
