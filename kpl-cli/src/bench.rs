//! `kpl bench`: the producer against the in-process simulated Kinesis of `kpl-mock-backend`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpl_mock_backend::{MockConfig, MockKinesis, ShardLimits};
use kpl_tokio::{
    AggregationPolicy, KinesisProducer, MockBackend, ProducerConfig, ShardMapWait, StreamTarget, UserRecord,
};
use serde::Serialize;

use crate::error::CliError;
use crate::rng::Rng;
use crate::track::{Completion, Tracker};

const EXAMPLES: &str = "\
Examples:
  kpl bench                                           # the defaults: about 10 s on 2 cores
  kpl bench --records 200000 --record-size 1000 --shards 8
  kpl bench --keys hot --hot-share 0.9                # one partition key takes 90% of the records
  kpl bench --aggregation off --shard-limits off      # one Kinesis record per user record, no shard quota
  kpl bench --hostile --json                          # throttling, 5xx, timeouts; machine-readable summary";

/// The stream the benchmark writes to.
const STREAM: &str = "bench";

/// Puts between two yields of a putting task to the runtime.
const YIELD_EVERY: u64 = 64;

/// Longest data a benchmark record may have: 1 MiB less room for the partition key.
const MAX_RECORD_SIZE: u64 = 1024 * 1024 - 256;

/// Options of `kpl bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct BenchArgs {
    /// User records to put.
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..))]
    records: u64,
    /// Bytes of data in each record.
    #[arg(long, value_name = "BYTES", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=MAX_RECORD_SIZE))]
    record_size: u64,
    /// How records are given their partition keys.
    #[arg(long, value_enum, default_value_t = Keys::Uniform)]
    keys: Keys,
    /// Distinct partition keys to choose from, uniformly.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    distinct_keys: u64,
    /// With `--keys hot`: the share of records that get the hot key (the others are uniform).
    #[arg(long, value_name = "SHARE", default_value_t = 0.5, value_parser = parse_share)]
    hot_share: f64,
    /// Shards of the stream.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    shards: u32,
    /// Kinesis's per-shard quota (1000 records and 1 MiB per second), for the mock and the producer's limiter.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    shard_limits: Switch,
    /// How user records are aggregated into Kinesis records.
    #[arg(long, value_enum, default_value_t = Aggregation::PerShard)]
    aggregation: Aggregation,
    /// Tasks putting records at once.
    #[arg(long, value_name = "TASKS", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: u64,
    /// A rough service: throttling, HTTP 500 and 503, lost and duplicated responses, 50 to 250 ms latency.
    #[arg(long)]
    hostile: bool,
    /// Seed of the keys, the mock's faults and the producer's retry jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
}

/// How partition keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Keys {
    /// Uniformly among `--distinct-keys` partition keys.
    Uniform,
    /// One hot partition key for `--hot-share` of the records, the others uniform.
    Hot,
    /// One partition key, and a uniformly random explicit hash key per record.
    Explicit,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

/// The producer's aggregation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Aggregation {
    /// As the KPL: one aggregate per predicted shard.
    PerShard,
    /// Only records with the same hash key together.
    SameHashKey,
    /// One Kinesis record per user record.
    Off,
}

impl From<Aggregation> for AggregationPolicy {
    fn from(aggregation: Aggregation) -> Self {
        match aggregation {
            Aggregation::PerShard => Self::PerShard,
            Aggregation::SameHashKey => Self::SameHashKey,
            Aggregation::Off => Self::Off,
        }
    }
}

fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{text:?} is not a share between 0 and 1")),
    }
}

/// What the benchmark measured.
#[derive(Debug, Serialize)]
struct Report {
    records: u64,
    record_size: u64,
    keys: Keys,
    shards: u32,
    shard_limits: bool,
    aggregation: Aggregation,
    concurrency: u64,
    hostile: bool,
    /// From the first put to the last result.
    seconds: f64,
    records_per_second: f64,
    /// Megabytes (10^6 bytes) of user data per second.
    megabytes_per_second: f64,
    user_records_per_kinesis_record: f64,
    kinesis_records_per_request: f64,
    /// PutRecords requests sent.
    requests: u64,
    /// User-record retries.
    retries: u64,
    /// PutRecords entries throttled by their shard.
    throttles: u64,
    /// Records not written.
    failed: u64,
    /// Put-to-result latency, in milliseconds.
    latency_ms: Latency,
    /// The process's peak resident memory (`VmHWM`); `null` where unknown.
    peak_memory_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
}

/// What one putting task saw of its records.
#[derive(Debug, Default)]
struct Share {
    latencies: Vec<Duration>,
    failed: u64,
}

/// Runs the benchmark and prints its summary.
pub async fn run(args: BenchArgs) -> Result<(), CliError> {
    let report = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&report));
    }
    Ok(())
}

async fn measure(args: &BenchArgs) -> Result<Report, CliError> {
    let limits = args.shard_limits == Switch::On;
    let base = if args.hostile { MockConfig::hostile() } else { MockConfig::calm() };
    let mock_config =
        MockConfig { shard_limits: limits.then_some(ShardLimits::KINESIS), retain_committed: false, ..base };
    let mut kinesis = MockKinesis::new(mock_config, args.seed)?;
    kinesis.create_stream(STREAM, args.shards)?;
    let mut config = ProducerConfig::builder()
        .aggregation(args.aggregation.into())
        // Aggregate from the first record on, rather than sending the first ones unaggregated.
        .shard_map_wait(ShardMapWait::Hold);
    if !limits {
        let unlimited = u64::from(u32::MAX);
        config = config.shard_max_records_per_second(unlimited).shard_max_bytes_per_second(unlimited);
    }
    let producer =
        KinesisProducer::builder(config.build()?, MockBackend::new(kinesis)).seed(args.seed).spawn()?;
    let bar = progress_bar(args);
    let data = Bytes::from(vec![b'x'; usize::try_from(args.record_size).unwrap_or(usize::MAX)]);

    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|task| {
            // The records split as evenly as they go.
            let count = args.records / args.concurrency + u64::from(task < args.records % args.concurrency);
            let keys = KeyChooser {
                keys: args.keys,
                distinct: args.distinct_keys,
                hot_share: args.hot_share,
                rng: Rng::new(args.seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            };
            tokio::spawn(put_share(producer.clone(), keys, data.clone(), count, bar.clone()))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let share = task.await??;
        latencies.extend(share.latencies);
        failed += share.failed;
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let stats = producer.stats().await.unwrap_or_default();
    // Every record has its result: nothing is left to send.
    producer.shutdown(Duration::from_secs(10)).await?;

    latencies.sort_unstable();
    let seconds = elapsed.as_secs_f64();
    Ok(Report {
        records: args.records,
        record_size: args.record_size,
        keys: args.keys,
        shards: args.shards,
        shard_limits: limits,
        aggregation: args.aggregation,
        concurrency: args.concurrency,
        hostile: args.hostile,
        seconds,
        records_per_second: ratio(args.records as f64, seconds),
        megabytes_per_second: ratio(args.records as f64 * args.record_size as f64 / 1e6, seconds),
        user_records_per_kinesis_record: ratio(
            stats.user_records_put as f64,
            stats.kinesis_records_put as f64,
        ),
        kinesis_records_per_request: ratio(
            stats.kinesis_records_put as f64,
            stats.put_records_requests as f64,
        ),
        requests: stats.put_records_requests,
        retries: stats.retries,
        throttles: stats.throttled_entries,
        failed,
        latency_ms: Latency {
            p50: millis(percentile(&latencies, 0.50)),
            p99: millis(percentile(&latencies, 0.99)),
            max: millis(latencies.last().copied().unwrap_or_default()),
        },
        peak_memory_bytes: peak_memory(),
    })
}

/// Puts `count` records from one task, and collects their results on another.
async fn put_share(
    producer: KinesisProducer,
    mut keys: KeyChooser,
    data: Bytes,
    count: u64,
    bar: ProgressBar,
) -> Result<Share, CliError> {
    let (tracker, results) =
        Tracker::spawn(Share::default(), move |share: &mut Share, done: Completion<()>| {
            share.latencies.push(done.latency);
            share.failed += u64::from(done.result.is_err());
            bar.inc(1);
        });
    let stream = StreamTarget::name(STREAM);
    for i in 0..count {
        // `put` returns without yielding while the producer has room: yield now and then, or the putting
        // tasks keep the runtime's threads from the producer's driver.
        if i % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
        let record = keys.record(&stream, data.clone());
        let put_at = Instant::now();
        tracker.track((), put_at, producer.put(record).await?);
    }
    drop(tracker);
    Ok(results.await?)
}

/// Partition (and explicit hash) keys by `--keys`.
#[derive(Debug)]
struct KeyChooser {
    keys: Keys,
    distinct: u64,
    hot_share: f64,
    rng: Rng,
}

impl KeyChooser {
    fn record(&mut self, stream: &StreamTarget, data: Bytes) -> UserRecord {
        match self.keys {
            Keys::Uniform => UserRecord::new(stream.clone(), self.uniform_key(), data),
            Keys::Hot if self.rng.chance(self.hot_share) => UserRecord::new(stream.clone(), "hot-key", data),
            Keys::Hot => UserRecord::new(stream.clone(), self.uniform_key(), data),
            Keys::Explicit => UserRecord::new(stream.clone(), "explicit", data)
                .with_explicit_hash_key(self.rng.next_u128().to_string()),
        }
    }

    fn uniform_key(&mut self) -> String {
        format!("key-{}", self.rng.below(self.distinct))
    }
}

fn progress_bar(args: &BenchArgs) -> ProgressBar {
    if args.json || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} records, {per_sec}, eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(args.records), ProgressDrawTarget::stderr()).with_style(style)
}

/// `a / b`, or 0 when `b` is 0.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The nearest-rank percentile of sorted `values`: the smallest value with at least `p` of them at or below
/// it. Zero for no values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or_default()
}

/// The peak resident set size, from `VmHWM` in `/proc/self/status` (Linux); `None` elsewhere.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

fn summary(report: &Report) -> String {
    let memory = report
        .peak_memory_bytes
        .map_or_else(|| "n/a".to_owned(), |bytes| format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)));
    let on_off = |on: bool| if on { "on" } else { "off" };
    let latency = &report.latency_ms;
    format!(
        "kpl bench: {} records of {} bytes, {} keys, {} shards (limits {}), aggregation {}, {} tasks{}\n\
         \x20 time          {:.2} s\n\
         \x20 throughput    {:.0} user records/s, {:.2} MB/s\n\
         \x20 aggregation   {:.1} user records per Kinesis record, {:.1} Kinesis records per request\n\
         \x20 requests      {} PutRecords, {} retries, {} throttled entries, {} records failed\n\
         \x20 latency       p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (put to result)\n\
         \x20 peak memory   {memory}\n",
        report.records,
        report.record_size,
        name(report.keys),
        report.shards,
        on_off(report.shard_limits),
        name(report.aggregation),
        report.concurrency,
        if report.hostile { ", hostile service" } else { "" },
        report.seconds,
        report.records_per_second,
        report.megabytes_per_second,
        report.user_records_per_kinesis_record,
        report.kinesis_records_per_request,
        report.requests,
        report.retries,
        report.throttles,
        report.failed,
        latency.p50,
        latency.p99,
        latency.max,
    )
}

/// A value's command-line name.
fn name(value: impl ValueEnum) -> String {
    value.to_possible_value().map_or_else(String::new, |value| value.get_name().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn shares_must_be_between_zero_and_one() {
        assert_eq!(parse_share("0.25"), Ok(0.25));
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("NaN").is_err());
        assert!(parse_share("x").is_err());
    }

    #[test]
    fn hot_keys_take_their_share() {
        let mut keys = KeyChooser { keys: Keys::Hot, distinct: 1000, hot_share: 0.9, rng: Rng::new(5) };
        let stream = StreamTarget::name("s");
        let hot = (0..1000).filter(|_| keys.record(&stream, Bytes::new()).partition_key == "hot-key").count();
        assert!((850..950).contains(&hot), "{hot}");
    }

    #[test]
    fn peak_memory_is_read_on_linux() {
        assert_eq!(peak_memory().is_some(), cfg!(target_os = "linux"));
    }
}
