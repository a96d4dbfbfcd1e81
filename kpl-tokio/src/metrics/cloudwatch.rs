//! Uploads the KPL's metrics to CloudWatch, as the KPL does: every `upload_delay`, the seconds completed
//! since the previous upload as statistic sets (sum, count, min, max), with the KPL's dimensions in its
//! order, at most 20 data and about 38 KiB per `PutMetricData`.
//!
//! The uploader is its own task: it reads the core through the driver once per upload (one `Inspect`
//! command), builds and sends the requests itself, one at a time, each bounded by a timeout, so a slow or
//! failing CloudWatch never holds records back. Failures are logged and counted ([`UploadStats`]); their
//! data is dropped, as the KPL drops it. It stops once the producer has no handle left or was shut down;
//! the seconds since its last upload are then not uploaded (the KPL loses them too).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use kpl_core::{Metric, MetricUnit, MetricsGranularity, MetricsLevel, MetricsQuery, MetricsWindow};
use tracing::{debug, warn};

use super::{IntervalReader, MetricsConfig, MetricsError};
use crate::error::SpawnError;
use crate::producer::KinesisProducer;

/// Most data in one `PutMetricData` (the KPL's limit).
const MAX_DATA_PER_REQUEST: usize = 20;
/// Largest request payload, as the KPL keeps it (CloudWatch takes 1 MB now, 40 KB when the KPL was written).
const MAX_REQUEST_BYTES: usize = 38 * 1024;
/// Bytes of a datum's fixed parts (name key, four statistics, unit, timestamp) in the largest of
/// CloudWatch's encodings (awsQuery's form encoding), bar the variable text, and of one dimension's keys.
const DATUM_OVERHEAD_BYTES: usize = 400;
const DIMENSION_OVERHEAD_BYTES: usize = 120;
/// Default bound on one `PutMetricData` call, retries by the SDK included.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Uploads a producer's metrics to CloudWatch: build with [`new`](Self::new) (or
/// [`from_env`](Self::from_env)), then [`spawn`](Self::spawn) next to the producer.
///
/// ```no_run
/// # async fn run(producer: kpl_tokio::KinesisProducer) -> Result<(), Box<dyn std::error::Error>> {
/// use kpl_tokio::{CloudWatchUploader, MetricsConfig, MetricsGranularity};
///
/// let config = MetricsConfig::default().extra_dimension("Host", "web-1", MetricsGranularity::Global)?;
/// let uploader = CloudWatchUploader::from_env(config).await.spawn(&producer)?;
/// // ... later: uploader.stats() counts requests, failures and data uploaded.
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CloudWatchUploader {
    client: Client,
    config: MetricsConfig,
    request_timeout: Duration,
}

/// A datum of the application's own (not the producer's), for [`CloudWatchUploader::put_data`]: a
/// metric name, its dimensions in order, its unit and a statistic set.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomDatum {
    /// The metric name (CloudWatch: 1 to 255 characters).
    pub name: String,
    /// (name, value) pairs, in order (CloudWatch: at most 30). Empty values are left out, as for the
    /// producer's metrics.
    pub dimensions: Vec<(String, String)>,
    /// Its unit.
    pub unit: MetricUnit,
    /// The statistic set (sample count, sum, minimum, maximum).
    pub stat: kpl_core::Stat,
}

/// What an uploader did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Uploads done (one per `upload_delay` with anything to upload).
    pub rounds: u64,
    /// `PutMetricData` requests CloudWatch accepted.
    pub requests: u64,
    /// Data (metric, dimensions, statistic set) in them.
    pub data: u64,
    /// `PutMetricData` requests that failed or timed out (their data is dropped).
    pub failed_requests: u64,
}

#[derive(Debug, Default)]
struct Counters {
    rounds: AtomicU64,
    requests: AtomicU64,
    data: AtomicU64,
    failed_requests: AtomicU64,
}

/// A running uploader. Dropping it leaves the upload running (it stops with the producer);
/// [`stop`](Self::stop) stops it now.
#[derive(Debug)]
pub struct UploaderHandle {
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl UploaderHandle {
    /// What it did so far.
    pub fn stats(&self) -> UploadStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        UploadStats {
            rounds: read(&self.counters.rounds),
            requests: read(&self.counters.requests),
            data: read(&self.counters.data),
            failed_requests: read(&self.counters.failed_requests),
        }
    }

    /// Stops uploading (a request under way is abandoned).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl CloudWatchUploader {
    /// An uploader sending with `client` (its region, credentials and endpoint) as `config` says.
    pub fn new(client: Client, config: MetricsConfig) -> Self {
        Self { client, config, request_timeout: DEFAULT_REQUEST_TIMEOUT }
    }

    /// An uploader from the application's shared SDK configuration (with the KPL's `Cloudwatch*`,
    /// proxy and TLS settings: [`cloudwatch_config_loader`](crate::cloudwatch_config_loader)). A
    /// configuration without a behavior version gets `BehaviorVersion::latest()` (the SDK would panic).
    pub fn from_sdk_config(sdk_config: &aws_config::SdkConfig, config: MetricsConfig) -> Self {
        let mut builder = aws_sdk_cloudwatch::config::Builder::from(sdk_config);
        if sdk_config.behavior_version().is_none() {
            builder.set_behavior_version(Some(aws_config::BehaviorVersion::latest()));
        }
        Self::new(Client::from_conf(builder.build()), config)
    }

    /// An uploader with the region and credentials of the default chain (environment, profile, IMDS), and
    /// the SDK's latest behavior version: to pin one, use [`from_sdk_config`](Self::from_sdk_config).
    pub async fn from_env(config: MetricsConfig) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_sdk_config(&sdk, config)
    }

    /// The bound on one `PutMetricData` call, the SDK's retries included (default 20 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Starts uploading `producer`'s metrics every `upload_delay`, on the current tokio runtime. The
    /// uploader does not keep the producer open. With level `none` it uploads nothing.
    pub fn spawn(self, producer: &KinesisProducer) -> Result<UploaderHandle, SpawnError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoTokioRuntime)?;
        let counters = Arc::new(Counters::default());
        let reader = IntervalReader::new(producer);
        let task = runtime.spawn(self.run(reader, counters.clone()));
        Ok(UploaderHandle { counters, task })
    }

    async fn run(self, mut reader: IntervalReader, counters: Arc<Counters>) {
        if self.config.metrics_level() == MetricsLevel::None {
            return;
        }
        let delay = self.config.metrics_upload_delay();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + delay, delay);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let query =
            MetricsQuery::new(MetricsWindow::Cumulative).granularity(self.config.metrics_granularity());
        loop {
            ticker.tick().await;
            let metrics = match reader.read(query).await {
                Ok(metrics) => metrics,
                Err(MetricsError::DriverStopped) => break,
                Err(error) => {
                    warn!(%error, "cannot read the producer's metrics");
                    continue;
                }
            };
            let data = self.data(&metrics, DateTime::from(SystemTime::now()));
            if data.is_empty() {
                continue;
            }
            counters.rounds.fetch_add(1, Ordering::Relaxed);
            for batch in batches(data) {
                self.put(batch, &counters).await;
            }
        }
        debug!("metrics uploader stopped: the producer is gone");
    }

    /// Uploads `data` (the application's own metrics) now, under the configured namespace, timestamped
    /// now, in requests of at most 20 data and 38 KiB, one at a time, each bounded by the request
    /// timeout. Failures are logged and their data dropped, as for the producer's metrics; the returned
    /// counts say what happened (`rounds` is 1 when there was anything to upload).
    pub async fn put_data(&self, data: &[CustomDatum]) -> UploadStats {
        let counters = Counters::default();
        let timestamp = DateTime::from(SystemTime::now());
        let data: Vec<MetricDatum> = data
            .iter()
            .map(|datum| datum_of(&datum.name, datum.dimensions.clone(), datum.unit, &datum.stat, timestamp))
            .collect();
        if !data.is_empty() {
            counters.rounds.fetch_add(1, Ordering::Relaxed);
        }
        for batch in batches(data) {
            self.put(batch, &counters).await;
        }
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        UploadStats {
            rounds: read(&counters.rounds),
            requests: read(&counters.requests),
            data: read(&counters.data),
            failed_requests: read(&counters.failed_requests),
        }
    }

    async fn put(&self, batch: Vec<MetricDatum>, counters: &Counters) {
        let count = batch.len() as u64;
        let request = self
            .client
            .put_metric_data()
            .namespace(self.config.metrics_namespace())
            .set_metric_data(Some(batch))
            .send();
        let failure = match tokio::time::timeout(self.request_timeout, request).await {
            Ok(Ok(_)) => {
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters.data.fetch_add(count, Ordering::Relaxed);
                return;
            }
            Ok(Err(error)) => aws_sdk_cloudwatch::error::DisplayErrorContext(error).to_string(),
            Err(_) => format!("no response within {:?}", self.request_timeout),
        };
        counters.failed_requests.fetch_add(1, Ordering::Relaxed);
        warn!(data = count, error = %failure, "metrics upload to CloudWatch failed; its data is dropped");
    }

    /// The data of `metrics` (tree nodes), those of the configured level, with every dimension prefix the
    /// KPL uploads.
    fn data(&self, metrics: &[Metric], timestamp: DateTime) -> Vec<MetricDatum> {
        let mut data = Vec::new();
        for metric in metrics.iter().filter(|metric| self.config.reports(metric.name)) {
            for dimensions in self.dimension_lists(metric) {
                let name = metric.name.as_str();
                data.push(datum_of(name, dimensions, metric.name.unit(), &metric.stat, timestamp));
            }
        }
        data
    }

    /// The dimension lists `metric` stands for. The KPL's dimensions run `[extra global dims]`,
    /// `[ErrorCode]`, `StreamName`, `[extra stream dims]`, `ShardId`, `[extra shard dims]`, and every prefix
    /// of that list is a metric: a node of the core's tree is the prefix ending at its own dimension, and
    /// each extra dimension right after that adds one more prefix with the same statistics.
    fn dimension_lists(&self, metric: &Metric) -> Vec<Vec<(String, String)>> {
        let extras = |granularity: MetricsGranularity| -> Vec<(String, String)> {
            let extras = self.config.extra_dimensions().iter();
            extras
                .filter(|extra| extra.granularity == granularity)
                .map(|extra| (extra.name.clone(), extra.value.clone()))
                .collect()
        };
        let mut prefix = Vec::new();
        let following = match (&metric.error_code, &metric.stream, &metric.shard_id) {
            (None, None, _) => extras(MetricsGranularity::Global),
            (code, stream, shard) => {
                prefix.extend(extras(MetricsGranularity::Global));
                if let Some(code) = code {
                    prefix.push(("ErrorCode".to_owned(), code.clone()));
                }
                match (stream, shard) {
                    (None, _) => Vec::new(),
                    (Some(stream), None) => {
                        prefix.push(("StreamName".to_owned(), stream.stream_name().to_owned()));
                        extras(MetricsGranularity::Stream)
                    }
                    (Some(stream), Some(shard)) => {
                        prefix.push(("StreamName".to_owned(), stream.stream_name().to_owned()));
                        prefix.extend(extras(MetricsGranularity::Stream));
                        prefix.push(("ShardId".to_owned(), shard.to_string()));
                        extras(MetricsGranularity::Shard)
                    }
                }
            }
        };
        let mut lists = vec![prefix.clone()];
        for extra in following {
            prefix.push(extra);
            lists.push(prefix.clone());
        }
        lists
    }
}

/// One datum: a statistic set with its dimensions (those with an empty value left out).
fn datum_of(
    name: &str,
    dimensions: Vec<(String, String)>,
    unit_of: MetricUnit,
    stat: &kpl_core::Stat,
    timestamp: DateTime,
) -> MetricDatum {
    let statistics = StatisticSet::builder()
        .sample_count(stat.count as f64)
        .sum(stat.sum)
        .minimum(stat.min)
        .maximum(stat.max)
        .build();
    let dimensions = dimensions
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect();
    MetricDatum::builder()
        .metric_name(name)
        .set_dimensions(Some(dimensions))
        .statistic_values(statistics)
        .unit(unit(unit_of))
        .timestamp(timestamp)
        .build()
}

fn unit(unit: MetricUnit) -> StandardUnit {
    match unit {
        MetricUnit::Count => StandardUnit::Count,
        MetricUnit::Bytes => StandardUnit::Bytes,
        MetricUnit::Milliseconds => StandardUnit::Milliseconds,
    }
}

/// An upper bound of a datum's share of a `PutMetricData` payload.
fn encoded_size(datum: &MetricDatum) -> usize {
    let text = |s: Option<&str>| 3 * s.map_or(0, str::len);
    DATUM_OVERHEAD_BYTES
        + text(datum.metric_name())
        + datum
            .dimensions()
            .iter()
            .map(|d| DIMENSION_OVERHEAD_BYTES + text(d.name()) + text(d.value()))
            .sum::<usize>()
}

/// `data` in requests of at most [`MAX_DATA_PER_REQUEST`] data and [`MAX_REQUEST_BYTES`].
fn batches(data: Vec<MetricDatum>) -> Vec<Vec<MetricDatum>> {
    let mut batches: Vec<Vec<MetricDatum>> = Vec::new();
    let mut bytes = 0;
    for datum in data {
        let size = encoded_size(&datum);
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_DATA_PER_REQUEST && bytes + size <= MAX_REQUEST_BYTES => {
                bytes += size;
                batch.push(datum);
            }
            _ => {
                bytes = size;
                batches.push(vec![datum]);
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::config::{BehaviorVersion, Region};
    use kpl_core::{MetricName, ShardId, Stat, StreamTarget};

    use super::*;

    fn uploader(config: MetricsConfig) -> CloudWatchUploader {
        let sdk = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        CloudWatchUploader::new(Client::from_conf(sdk), config)
    }

    #[test]
    fn an_sdk_config_without_a_behavior_version_still_makes_an_uploader() {
        let sdk = aws_config::SdkConfig::builder().region(Region::new("eu-west-1")).build();
        let uploader = CloudWatchUploader::from_sdk_config(&sdk, MetricsConfig::default());
        assert_eq!(uploader.client.config().region().map(|region| region.as_ref()), Some("eu-west-1"));
    }

    fn node(code: Option<&str>, stream: Option<&str>, shard: Option<&str>) -> Metric {
        Metric {
            name: MetricName::ErrorsByCode,
            error_code: code.map(str::to_owned),
            stream: stream.map(StreamTarget::name),
            shard_id: shard.map(ShardId::from),
            stat: Stat { count: 2, sum: 2.0, min: 1.0, max: 1.0 },
        }
    }

    fn names(lists: Vec<Vec<(String, String)>>) -> Vec<String> {
        lists
            .iter()
            .map(|list| list.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            .collect()
    }

    #[test]
    fn dimensions_follow_the_kpl_order_with_every_prefix() {
        let config = MetricsConfig::default()
            .extra_dimension("Host", "h", MetricsGranularity::Global)
            .and_then(|c| c.extra_dimension("Tier", "t", MetricsGranularity::Stream))
            .and_then(|c| c.extra_dimension("Az", "a", MetricsGranularity::Shard))
            .unwrap();
        let uploader = uploader(config);
        let lists = |metric| names(uploader.dimension_lists(&metric));
        assert_eq!(lists(node(None, None, None)), ["", "Host=h"]);
        assert_eq!(lists(node(Some("E"), None, None)), ["Host=h,ErrorCode=E"]);
        assert_eq!(
            lists(node(Some("E"), Some("s"), None)),
            ["Host=h,ErrorCode=E,StreamName=s", "Host=h,ErrorCode=E,StreamName=s,Tier=t"]
        );
        assert_eq!(
            lists(node(Some("E"), Some("s"), Some("shardId-1"))),
            [
                "Host=h,ErrorCode=E,StreamName=s,Tier=t,ShardId=shardId-1",
                "Host=h,ErrorCode=E,StreamName=s,Tier=t,ShardId=shardId-1,Az=a"
            ]
        );
        let plain = super::tests::uploader(MetricsConfig::default());
        assert_eq!(
            names(plain.dimension_lists(&node(None, Some("s"), Some("x")))),
            ["StreamName=s,ShardId=x"]
        );
        // A stream given by ARN is named by its name, as the KPL names it.
        let arn = Metric {
            stream: Some(StreamTarget::arn("arn:aws:kinesis:us-east-1:1:stream/orders")),
            ..node(None, None, None)
        };
        assert_eq!(names(plain.dimension_lists(&arn)), ["StreamName=orders"]);
    }

    #[test]
    fn data_carry_statistic_sets_units_and_the_level_filter() {
        let summary = uploader(MetricsConfig::default().level(MetricsLevel::Summary));
        let mut request_time = node(None, None, None);
        request_time.name = MetricName::RequestTime;
        let data = summary.data(&[node(None, None, None), request_time.clone()], DateTime::from_secs(0));
        assert_eq!(data.len(), 1, "RequestTime is detailed");
        let statistics = data[0].statistic_values().unwrap();
        assert_eq!(
            (statistics.sample_count(), statistics.sum(), statistics.minimum(), statistics.maximum()),
            (Some(2.0), Some(2.0), Some(1.0), Some(1.0))
        );
        assert_eq!(data[0].unit(), Some(&StandardUnit::Count));
        let detailed = uploader(MetricsConfig::default());
        let data = detailed.data(&[request_time], DateTime::from_secs(0));
        assert_eq!(data[0].unit(), Some(&StandardUnit::Milliseconds));
    }

    #[test]
    fn batches_hold_at_most_20_data_and_38_kib() {
        let datum = |value_len: usize| {
            MetricDatum::builder()
                .metric_name("UserRecordsPut")
                .dimensions(Dimension::builder().name("StreamName").value("v".repeat(value_len)).build())
                .build()
        };
        let sizes = |batches: Vec<Vec<MetricDatum>>| batches.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(batches((0..45).map(|_| datum(10)).collect())), [20, 20, 5]);
        // Each about 3.6 KB encoded: 10 fit in 38 KiB.
        let big: Vec<_> = (0..25).map(|_| datum(1024)).collect();
        assert!(big.iter().all(|d| (3_500..3_900).contains(&encoded_size(d))));
        assert_eq!(sizes(batches(big)), [10, 10, 5]);
        assert!(batches(Vec::new()).is_empty());
    }
}
