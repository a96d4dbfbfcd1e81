//! `kpl bench`: the producer against the in-process simulated Kinesis of `kpl-mock-backend`.

mod observe;
mod plot;
mod report;
mod timeline;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use indicatif::ProgressBar;
use kpl_mock_backend::{MockConfig, MockKinesis, ShardLimits};
use kpl_tokio::{
    AggregationPolicy, KinesisProducer, MockBackend, ProducerConfig, ShardMapWait, StreamTarget, UserRecord,
};
use serde::Serialize;

use self::observe::{Counters, Observed, Shards};
use self::report::{Report, Run};
use self::timeline::Latencies;
use crate::error::CliError;
use crate::rng::Rng;

const EXAMPLES: &str = "\
Examples:
  kpl bench                                           # 300,000 records as fast as they go: about 10 s
  kpl bench --rate 2000 --duration 30                 # open loop: 2,000 records/s offered for 30 s
  kpl bench --config kpl.properties --record-size 1000 --shards 8
  kpl bench --keys hot --hot-share 0.9                # one partition key takes 90% of the records
  kpl bench --aggregation off --shard-limits off      # one Kinesis record per user record, no shard quota
  kpl bench --timeline run.csv --plot run.svg         # per-second figures, and a chart of them
  kpl bench --hostile --json                          # throttling, 5xx, timeouts; machine-readable summary

The summary gives the share of the shards' quota used (Kinesis: 1,000 records and 1 MiB per second per
shard, partition keys included), a per-shard table, the bottleneck (shard quota, CPU, connections), latency
percentiles from put to result (an HDR histogram: p50, p90, p99, p99.9, max), and the peak outstanding
records and bytes. Without --rate, every record is offered at once (closed loop): latency then includes
the wait in the producer's queue behind the shard quota. With --rate, records are offered on a fixed
schedule (open loop) and latency counts from each record's scheduled time.";

/// The stream the benchmark writes to.
const STREAM: &str = "bench";

/// Records of one batch put (closed loop), between two yields of a putting task to the runtime.
const YIELD_EVERY: u64 = 64;

/// Longest data a benchmark record may have: 1 MiB less room for the partition key.
const MAX_RECORD_SIZE: u64 = 1024 * 1024 - 256;

/// Records put when neither `--records` nor `--duration` is given, without `--rate`.
const DEFAULT_RECORDS: u64 = 300_000;

/// Seconds of the run when neither `--records` nor `--duration` is given, with `--rate`.
const DEFAULT_OPEN_LOOP_SECONDS: f64 = 10.0;

/// Options of `kpl bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct BenchArgs {
    /// User records to put [default: 300,000; with --rate, as many as 10 s take].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    records: Option<u64>,
    /// Stop putting after this many seconds (and after --records, if both are given). Without --rate, records
    /// are offered as fast as the producer takes them (up to MaxOutstandingRecords, 200,000, and what the
    /// stream drains in DrainWindowPercent of RecordTtl), and when the stream is the bottleneck their results
    /// arrive long after: use --rate for a run of a set length.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<f64>,
    /// Offer this many records per second, on a fixed schedule whatever the producer does (open loop)
    /// [default: all at once, as fast as the producer takes them].
    #[arg(long, value_name = "RECORDS_PER_SECOND", value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
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
    /// Kinesis's per-shard quota (1000 records and 1 MiB per second), for the mock and the producer's limiter
    /// (with --config, the limiter follows the file's ShardMaxRecordsPerSecond and ShardMaxBytesPerSecond).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    shard_limits: Switch,
    /// How user records are aggregated into Kinesis records [default: per-shard, or the --config file's].
    #[arg(long, value_enum, conflicts_with = "config")]
    aggregation: Option<Aggregation>,
    /// The producer's settings from a KPL properties file (RecordMaxBufferedTime, AggregationMaxSize,
    /// RateLimit, MaxConnections, ...) [default: the KPL's, with ShardMapWait = Hold].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Tasks putting records at once.
    #[arg(long, value_name = "TASKS", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: u64,
    /// A rough service: throttling, HTTP 500 and 503, lost and duplicated responses, 50 to 250 ms latency.
    #[arg(long)]
    hostile: bool,
    /// Seed of the keys, the mock's faults and the producer's retry jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Write per-second figures (throughput, latency, outstanding records) to FILE as CSV.
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
    /// Draw throughput, latency and outstanding records over time into FILE, an SVG picture.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 1e9 => Ok(seconds),
        _ => Err(format!("{text:?} is not a number of seconds above 0")),
    }
}

/// When the putting stops.
#[derive(Debug, Clone, Copy)]
struct Limits {
    records: Option<u64>,
    deadline: Option<Duration>,
}

impl Limits {
    fn of(args: &BenchArgs) -> Self {
        let deadline = args.duration.map(Duration::from_secs_f64);
        match (args.records, deadline, args.rate) {
            (None, None, None) => Self { records: Some(DEFAULT_RECORDS), deadline },
            (None, None, Some(_)) => {
                Self { records: None, deadline: Some(Duration::from_secs_f64(DEFAULT_OPEN_LOOP_SECONDS)) }
            }
            (records, deadline, _) => Self { records, deadline },
        }
    }
}

/// Runs the benchmark and prints its summary; writes the timeline and the plot when asked.
pub async fn run(args: BenchArgs) -> Result<(), CliError> {
    let (report, seconds) = measure(&args).await?;
    if let Some(path) = &args.timeline {
        timeline::write_csv(path, &seconds)?;
    }
    if let Some(path) = &args.plot {
        plot::write_svg(path, &seconds)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::summary(&report));
    }
    Ok(())
}

/// The producer's settings, and where they come from.
fn producer_config(args: &BenchArgs, limits: bool) -> Result<(ProducerConfig, String), CliError> {
    if let Some(path) = &args.config {
        let loaded = crate::properties::load(path)?;
        if !loaded.other_settings.is_empty() {
            let keys: Vec<&str> = loaded.other_settings.keys().map(String::as_str).collect();
            eprintln!("kpl: warning: {}: not used by kpl bench: {}", path.display(), keys.join(", "));
        }
        return Ok((loaded.config, path.display().to_string()));
    }
    let mut config = ProducerConfig::builder()
        .aggregation(args.aggregation.unwrap_or(Aggregation::PerShard).into())
        // Aggregate from the first record on, rather than sending the first ones unaggregated.
        .shard_map_wait(ShardMapWait::Hold);
    if !limits {
        let unlimited = u64::from(u32::MAX);
        config = config.shard_max_records_per_second(unlimited).shard_max_bytes_per_second(unlimited);
    }
    Ok((config.build()?, "the KPL's defaults, except ShardMapWait Hold".to_owned()))
}

async fn measure(args: &BenchArgs) -> Result<(Report, Vec<timeline::Second>), CliError> {
    let limits = args.shard_limits == Switch::On;
    let base = if args.hostile { MockConfig::hostile() } else { MockConfig::calm() };
    let mock_config =
        MockConfig { shard_limits: limits.then_some(ShardLimits::KINESIS), retain_committed: false, ..base };
    let mut kinesis = MockKinesis::new(mock_config, args.seed)?;
    kinesis.create_stream(STREAM, args.shards)?;
    let shards = Shards::new(
        kinesis
            .shards(STREAM)
            .unwrap_or_default()
            .iter()
            .map(|shard| (shard.id().clone(), *shard.hash_range().start(), *shard.hash_range().end()))
            .collect(),
    );
    let (config, settings_from) = producer_config(args, limits)?;
    let counters = Arc::new(Counters::new(shards, config.max_connections() as u64));
    let backend = Observed::new(MockBackend::new(kinesis), Arc::clone(&counters));
    let producer = KinesisProducer::builder(config.clone(), backend).seed(args.seed).spawn()?;
    let latencies = Arc::new(Mutex::new(Latencies::new()?));
    let limit = Limits::of(args);
    let bar = progress_bar(limit);
    let data = Bytes::from(vec![b'x'; usize::try_from(args.record_size).unwrap_or(usize::MAX)]);

    let cpu_before = report::cpu_time();
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let sampler =
        tokio::spawn(timeline::sample(Arc::clone(&counters), Arc::clone(&latencies), started, stopped));
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|task| {
            let share = Share {
                // The records split as evenly as they go.
                records: limit
                    .records
                    .map(|records| records / args.concurrency + u64::from(task < records % args.concurrency)),
                deadline: limit.deadline.map(|deadline| started + deadline),
                // Each task offers its share of the rate, the tasks' schedules interleaved.
                schedule: args.rate.map(|rate| {
                    let interval = Duration::from_secs_f64(args.concurrency as f64 / rate as f64);
                    (started + interval.mul_f64(task as f64 / args.concurrency as f64), interval)
                }),
            };
            let keys = KeyChooser {
                keys: args.keys,
                distinct: args.distinct_keys,
                hot_share: args.hot_share,
                rng: Rng::new(args.seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            };
            let putter = Putter {
                producer: producer.clone(),
                counters: Arc::clone(&counters),
                latencies: Arc::clone(&latencies),
                bar: bar.clone(),
            };
            tokio::spawn(putter.put_share(share, keys, data.clone()))
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let cpu = report::cpu_time().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let connections_saturated = counters.connections_saturated(Instant::now());
    // Nothing is sent after the last result: the sampler's last row closes the run.
    let _ = stop.send(());
    let seconds = sampler.await?;
    bar.finish_and_clear();
    let stats = producer.stats().await.unwrap_or_default();
    // Every record has its result: nothing is left to send.
    producer.shutdown(Duration::from_secs(10)).await?;
    let latency = latencies.lock().unwrap_or_else(PoisonError::into_inner).total();
    let run = Run {
        elapsed,
        cpu,
        connections_saturated,
        latency,
        quota: ShardLimits::KINESIS,
        shard_limits: limits,
        rate: args.rate,
        settings: report::settings(&config, settings_from),
    };
    let report = report::build(args, &run, &counters, &stats);
    Ok((report, seconds))
}

/// What one putting task puts.
#[derive(Debug, Clone, Copy)]
struct Share {
    /// How many records, at most.
    records: Option<u64>,
    /// Until when.
    deadline: Option<Instant>,
    /// Open loop: when the first record is due, and the interval between two.
    schedule: Option<(Instant, Duration)>,
}

/// A putting task's handles.
struct Putter {
    producer: KinesisProducer,
    counters: Arc<Counters>,
    latencies: Arc<Mutex<Latencies>>,
    bar: ProgressBar,
}

impl Putter {
    /// Puts a share of the records, and counts their results as they come, in batches, on a task of their
    /// own. Closed loop: `YIELD_EVERY` records per batch put. Open loop: each record when it is due.
    async fn put_share(self, share: Share, mut keys: KeyChooser, data: Bytes) -> Result<(), CliError> {
        let Self { producer, counters, latencies, bar } = self;
        let size = data.len() as u64;
        // Each record's tag is when it was due: open loop, latency counts from then, so a producer that
        // makes the putter wait is not flattered by it (no coordinated omission).
        let (tagged, completions) = producer.with_completions::<Instant>();
        let results = tokio::spawn({
            let counters = Arc::clone(&counters);
            let mut completions = completions;
            async move {
                // One clock read, one lock and one bar update per batch of results.
                while let Some(batch) = completions.next_batch().await {
                    let now = Instant::now();
                    let mut latencies = latencies.lock().unwrap_or_else(PoisonError::into_inner);
                    for done in &batch {
                        latencies.record(now.saturating_duration_since(done.tag));
                        counters.completed(size, done.result.as_ref().ok().map(|receipt| &receipt.shard_id));
                    }
                    drop(latencies);
                    bar.inc(batch.len() as u64);
                }
            }
        });
        let stream = StreamTarget::name(STREAM);
        let mut put = 0u64;
        let mut batch = Vec::with_capacity(YIELD_EVERY as usize);
        while share.records.is_none_or(|records| put < records) {
            let due = match share.schedule {
                Some((first, interval)) => {
                    let due = first + interval.mul_f64(put as f64);
                    if share.deadline.is_some_and(|deadline| due >= deadline) {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    due
                }
                None => {
                    if share.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        break;
                    }
                    Instant::now()
                }
            };
            let records = match share.schedule {
                Some(_) => 1,
                None => share.records.map_or(YIELD_EVERY, |records| (records - put).min(YIELD_EVERY)),
            };
            batch.extend((0..records).map(|_| (due, keys.record(&stream, data.clone()))));
            counters.put(records, records * size);
            if let Some(refused) = tagged.put_batch(std::mem::take(&mut batch)).await.into_iter().next() {
                return Err(refused.error.into());
            }
            put += records;
            // `put_batch` returns without yielding while the producer has room: yield now and then, or the
            // putting tasks keep the runtime's threads from the producer's driver.
            tokio::task::yield_now().await;
        }
        drop(tagged);
        Ok(results.await?)
    }
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

/// A bar of records when their number is known, else a spinner; on standard error when it is a terminal.
fn progress_bar(limit: Limits) -> ProgressBar {
    match limit.records {
        Some(records) => crate::progress::on_stderr(
            Some(records),
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} records, {rate}, eta {eta}",
        ),
        None => crate::progress::on_stderr(None, "{spinner} {elapsed_precise} {human_pos} records, {rate}"),
    }
}

/// A value's command-line name.
fn name(value: impl ValueEnum) -> String {
    value.to_possible_value().map_or_else(String::new, |value| value.get_name().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_seconds_are_checked() {
        assert_eq!(parse_share("0.25"), Ok(0.25));
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("NaN").is_err());
        assert!(parse_share("x").is_err());
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
    }

    #[test]
    fn hot_keys_take_their_share() {
        let mut keys = KeyChooser { keys: Keys::Hot, distinct: 1000, hot_share: 0.9, rng: Rng::new(5) };
        let stream = StreamTarget::name("s");
        let hot = (0..1000).filter(|_| keys.record(&stream, Bytes::new()).partition_key == "hot-key").count();
        assert!((850..950).contains(&hot), "{hot}");
    }
}
