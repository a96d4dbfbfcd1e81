//! Shared by the kpl-tokio tests: a fault-injecting proxy, moto and a CBOR bridge for CloudWatch, and a
//! producer writing to a local server. kinesalite and the SDK helpers to create streams and read them back
//! are in `kpl_tests::kinesalite`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cbor_bridge;
pub mod forward_proxy;
pub mod metrics_workload;
pub mod moto;
pub mod proxy;

use kpl_tests::kinesalite::sdk_config;
use kpl_tokio::{AwsBackend, KinesisProducer, ProducerConfig};

/// A producer writing through `endpoint`.
pub fn producer(endpoint: &str, config: ProducerConfig) -> KinesisProducer {
    let backend = AwsBackend::from_conf(sdk_config(endpoint));
    KinesisProducer::builder(config, backend).seed(17).spawn().unwrap()
}
