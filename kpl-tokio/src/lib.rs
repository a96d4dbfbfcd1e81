//! The async Kinesis producer: [`kpl_core`]'s state machine driven on tokio (or async-std), sending to
//! Kinesis through aws-sdk-kinesis ([`AwsBackend`], feature `aws`, on by default) or to the in-process
//! simulated Kinesis of `kpl-mock-backend` (`MockBackend`, feature `mock`). This crate re-exports what an
//! application needs (the core's types, [`kpl_core`] itself, the SDK crates as [`aws_config`] and
//! [`aws_sdk_kinesis`], and with `mock` the simulated Kinesis), so it is the one dependency to add.
//!
//! ```
//! use kpl_tokio::{KinesisProducer, MockBackend, MockConfig, MockKinesis, ProducerConfig, StreamTarget};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A simulated Kinesis in the process; with AWS, `AwsBackend::from_sdk_config(&sdk_config)` instead.
//! let mut kinesis = MockKinesis::new(MockConfig::calm(), 42)?;
//! kinesis.create_stream("orders", 2)?;
//! let producer = KinesisProducer::builder(ProducerConfig::default(), MockBackend::new(kinesis)).spawn()?;
//! let stream = StreamTarget::name("orders");
//! // `put_data` waits only while the producer is backpressured; the record's result comes later.
//! let result = producer.put_data(&stream, "customer-42", &b"{\"total\": 12}"[..]).await?;
//! let receipt = result.await?;
//! println!("written to {} as {}", receipt.shard_id(), receipt.sequence_number());
//! assert_eq!(receipt.attempts().len(), 1);
//! producer.shutdown(std::time::Duration::from_secs(30)).await?; // flushes, waits for every record
//! # Ok(()) }
//! ```
//!
//! # Results in batches
//!
//! [`KinesisProducer::put`] gives each record a [`RecordFuture`]. At high rates, or to handle every result in
//! one place (the KPL's `Futures.addCallback`), [`KinesisProducer::with_completions`] gives a
//! [`TaggedProducer`], whose [`put_batch`](TaggedProducer::put_batch) takes records with a tag of yours, and
//! the [`Completions`] their results arrive on, tag and result together, in batches: one hand-over per batch
//! put and one wake-up per batch of results, instead of a channel and a wake-up per record.
//!
//! # AWS configuration
//!
//! [`AwsBackend::from_sdk_config`] takes the application's `SdkConfig` (the Rust SDK's convention: the
//! application chooses the behavior version, region, credentials and HTTP client); [`AwsBackend::from_env`]
//! loads the default chain with the SDK's latest behavior version. The SDK's retries are always turned off:
//! the producer retries per record.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use kpl_tokio::aws_config::{self, BehaviorVersion};
//! use kpl_tokio::{AwsBackend, KinesisProducer, ProducerConfig};
//!
//! let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
//! let producer = KinesisProducer::builder(ProducerConfig::default(), AwsBackend::from_sdk_config(&sdk_config))
//!     .spawn()?;
//! # Ok(()) }
//! ```
//!
//! # KPL `.properties` files
//!
//! [`from_properties_file`] loads a KPL file: its core settings into a [`ProducerConfig`], its connection
//! settings (`Region`, `KinesisEndpoint`/`KinesisPort`, `Proxy*`, `CaCertFile`/`CaCertPath`,
//! `ConnectTimeout`) onto an aws-config loader with `kinesis_config_loader` (and `cloudwatch_config_loader`
//! for the metrics uploader), its `Metrics*` settings with [`MetricsConfig::from_settings`]. What the
//! library cannot apply (threading, the native process, `LogLevel`, `VerifyCertificate = false`, ...) is
//! listed, by key and with the reason, by [`unapplied_settings`]: log it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use kpl_tokio::aws_config::{self, BehaviorVersion};
//! use kpl_tokio::{AwsBackend, KinesisProducer, from_properties_file, kinesis_config_loader, unapplied_settings};
//!
//! let loaded = from_properties_file("kpl.properties")?;
//! for warning in &loaded.warnings {
//!     eprintln!("kpl.properties: {warning}");
//! }
//! for setting in unapplied_settings(&loaded) {
//!     eprintln!("kpl.properties: {setting}");
//! }
//! let loader = kinesis_config_loader(aws_config::defaults(BehaviorVersion::latest()), &loaded)?;
//! let backend = AwsBackend::from_sdk_config(&loader.load().await);
//! let producer = KinesisProducer::builder(loaded.config.clone(), backend).spawn()?;
//! # Ok(()) }
//! ```
//!
//! # Logging
//!
//! Events go through `tracing`; install a subscriber to see them. Each request runs in a span (`request`,
//! with the operation, `PutRecords` or `ListShards`, the stream and the request id; for `PutRecords` also
//! the entry count, the shards its entries go to and the attempt, the highest among its entries). A request that fails
//! as a whole is logged at `error` when retrying cannot cure it (access denied, stream not found, a request
//! Kinesis refuses) and at `warn` otherwise (5xx, timeouts, lost connections): the first at once, repeats
//! summarised every 10 seconds. Throttling is summarised at `info` per stream every 10 seconds (shards
//! throttled, throttles, lowest rate), and expiries at `warn` likewise. No credentials and no record data
//! are logged; error messages are the service's, cut to 512 characters.
//!
//! # Design
//!
//! A [`KinesisProducer`] is a handle; one driver task owns the core exclusively. Handles check records (with
//! the core's own validation rules) and admit them: the handles' gauge of outstanding records and bytes, in
//! all and per stream, is the producer's one admission point (the core is given no limits of its own), so a
//! put waits or is refused with [`PutError::Backpressure`] there and nowhere else. Its rules are the core's:
//! `max_outstanding_records`, `max_outstanding_bytes`, and per stream the drain-time limit
//! ([`ProducerConfig::admits_to_stream`]) of the drain rate the driver reads from the core after each round
//! ([`Producer::drain_rates`](kpl_core::Producer::drain_rates)), so that under sustained overload a put waits
//! instead of queueing a record that could not be sent within its TTL. Admitted records go to a shared queue that the
//! driver swaps out whole, so a burst of puts costs the driver one lock, not one message per record. The
//! driver feeds the core those records, the backend's responses and the runtime's timer, and drains its
//! outputs in the order of the core's call contract; it keeps, per record the core holds, only where the
//! result goes. Flushes are answered when the core reports them complete. Requests run on their own
//! tasks, at most `max_connections` PutRecords at once (the core's cap), each bounded by `request_timeout`,
//! which is reported as an ambiguous [`RequestErrorKind::Timeout`]. Retries, backoff and throttling
//! decisions are the core's: backends never retry.
//!
//! # Features
//!
//! - `aws` (default): [`AwsBackend`], on aws-sdk-kinesis and aws-config. Without it the crate has no AWS
//!   dependency; the mock backend and [`Backend`]s of your own still work.
//! - `mock`: `MockBackend`, the simulated Kinesis of `kpl-mock-backend` in process (re-exported with
//!   `MockKinesis` and `MockConfig`), for tests, demos and benchmarks. Off by default: production builds do
//!   not link the simulator.
//! - `async-std`: `AsyncStdRuntime`, a [`Runtime`] to run the driver on async-std (with a backend that
//!   does not need tokio: the SDK's HTTP client does). async-std is discontinued upstream
//!   (RUSTSEC-2025-0052): the adapter is kept for applications that cannot move yet.
//! - `smol`: `SmolRuntime`, a [`Runtime`] on smol's global executor (with a backend that does not need
//!   tokio).
//! - `cloudwatch`: `CloudWatchUploader`, uploading the KPL's metrics to CloudWatch with aws-sdk-cloudwatch.
//! - `metrics-facade`: `MetricsExporter`, publishing them through the `metrics` crate (Prometheus,
//!   OpenTelemetry, ... exporters).
//!
//! # Metrics
//!
//! The core counts the KPL's metrics (same names, units, levels and granularities) cumulatively and per
//! second; [`KinesisProducer::metrics_query`] reads them like the KPL's `getMetrics(name, windowSeconds)`,
//! and [`MetricsConfig`] holds the KPL's `Metrics*` settings for the uploader and the exporter.
//!
//! # Lifecycle
//!
//! [`KinesisProducer::shutdown`] stops accepting records, flushes, and waits for every outstanding record,
//! failing the rest with [`DeliveryError::ShutdownTimedOut`] when its timeout passes. Dropping the last
//! handle instead closes gracefully: the driver keeps running until every record completed (bounded by
//! `record_ttl` plus `request_timeout`) and every [`RecordFuture`] resolves with its real result.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "aws")]
mod aws;
mod backend;
mod blocking;
mod completions;
mod driver;
mod error;
mod metrics;
#[cfg(feature = "mock")]
mod mock;
mod producer;
mod properties;
mod replies;
mod request_log;
mod request_task;
mod runtime;
#[cfg(any(feature = "aws", feature = "cloudwatch"))]
mod settings;
mod shared;

/// The attribute to implement [`Backend`] with.
pub use async_trait::async_trait;
#[cfg(feature = "aws")]
pub use aws::{AwsBackend, classify};
/// The AWS SDK crates this one is built on, for configurations and clients of the same versions.
#[cfg(any(feature = "aws", feature = "cloudwatch"))]
pub use aws_config;
#[cfg(feature = "cloudwatch")]
pub use aws_sdk_cloudwatch;
#[cfg(feature = "aws")]
pub use aws_sdk_kinesis;
pub use backend::Backend;
pub use blocking::{BlockingProducer, BlockingRecord};
pub use completions::{Completion, Completions, Refused, TaggedProducer};
pub use error::{DeliveryError, ShutdownError, SpawnError};
/// The sans-IO core, for everything not re-exported here (a [`Runtime`] of your own, the `Producer` state
/// machine itself).
pub use kpl_core;
pub use kpl_core::{
    AggregationPolicy, Attempt, AttemptError, ConfigError, ListShardsOutput, ListShardsRequest,
    LoadedProperties, Metric, MetricName, MetricSample, MetricUnit, MetricsGranularity, MetricsLevel,
    MetricsQuery, MetricsQueryError, MetricsRollup, MetricsWindow, NON_CORE_KPL_KEYS, ProducerConfig,
    ProducerConfigBuilder, ProducerStats, PutError, PutRecordsEntry, PutRecordsRequest,
    PutRecordsResultEntry, RecordError, RecordFailure, RecordReceipt, Request, RequestError,
    RequestErrorKind, RequestKind, Response, ShardDescription, ShardId, ShardMapWait, Stat, StreamTarget,
    UserRecord,
};
/// The simulated Kinesis that [`MockBackend`] serves.
#[cfg(feature = "mock")]
pub use kpl_mock_backend;
#[cfg(feature = "mock")]
pub use kpl_mock_backend::{MockConfig, MockError, MockKinesis};
#[cfg(feature = "cloudwatch")]
pub use metrics::{CloudWatchUploader, CustomDatum, UploadStats, UploaderHandle};
#[cfg(feature = "metrics-facade")]
pub use metrics::{ExporterHandle, FacadeSnapshot, MetricsExporter};
pub use metrics::{ExtraDimension, MetricsConfig, MetricsConfigError, MetricsError};
#[cfg(feature = "mock")]
pub use mock::MockBackend;
pub use producer::{KinesisProducer, ProducerBuilder, RecordFuture};
pub use properties::{PropertiesFileError, UnappliedSetting, from_properties_file, unapplied_settings};
#[cfg(feature = "async-std")]
pub use runtime::AsyncStdRuntime;
#[cfg(feature = "smol")]
pub use runtime::SmolRuntime;
pub use runtime::{Runtime, TokioRuntime};
#[cfg(any(feature = "aws", feature = "cloudwatch"))]
pub use settings::ConnectionSettingsError;
#[cfg(feature = "cloudwatch")]
pub use settings::cloudwatch_config_loader;
#[cfg(feature = "aws")]
pub use settings::kinesis_config_loader;
