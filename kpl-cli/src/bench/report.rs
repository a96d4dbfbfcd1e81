//! What a benchmark run measured: the summary (text and `--json`), shard utilisation, the per-shard table
//! and the bottleneck.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use kpl_mock_backend::ShardLimits;
use kpl_tokio::{ProducerConfig, ProducerStats};
use serde::Serialize;
use serde_json::{Value, json};

use super::observe::Counters;
use super::timeline::Percentiles;
use super::{BenchArgs, Keys, name};
use crate::failures::thousands;

/// A shard at or above this share of its quota (bytes or records) is saturated.
const SATURATED: f64 = 0.9;

/// The process is CPU-bound above this share of the cores.
const CPU_BOUND: f64 = 0.85;

/// Connections are the limit when all were busy for more than this share of the run.
const CONNECTIONS_BOUND: f64 = 0.5;

/// Shards listed in the text summary; `--json` lists them all.
const SHARDS_SHOWN: usize = 16;

/// Figures of the run besides the counters.
#[derive(Debug)]
pub struct Run {
    /// From the first put to the last result.
    pub elapsed: Duration,
    /// CPU time the process used meanwhile, where known.
    pub cpu: Option<Duration>,
    /// How long all `MaxConnections` were busy.
    pub connections_saturated: Duration,
    pub latency: Percentiles,
    /// Each shard's quota.
    pub quota: ShardLimits,
    pub shard_limits: bool,
    /// `--rate`.
    pub rate: Option<u64>,
    pub settings: Settings,
}

/// The producer settings used, by their KPL names, and where they come from.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub from: String,
    #[serde(flatten)]
    pub values: BTreeMap<&'static str, Value>,
}

/// The settings a benchmark depends on, by their KPL names (times in milliseconds, sizes in bytes, RateLimit
/// in percent of the shard quota).
pub fn settings(config: &ProducerConfig, from: String) -> Settings {
    let millis = |duration: Duration| json!(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    let values = BTreeMap::from([
        ("AggregationPolicy", json!(format!("{:?}", config.aggregation()))),
        ("AggregationMaxCount", json!(config.aggregation_max_count())),
        ("AggregationMaxSize", json!(config.aggregation_max_size())),
        ("CollectionMaxCount", json!(config.collection_max_count())),
        ("CollectionMaxSize", json!(config.collection_max_size())),
        ("RecordMaxBufferedTime", millis(config.record_max_buffered_time())),
        ("RecordTtl", millis(config.record_ttl())),
        ("MaxConnections", json!(config.max_connections())),
        ("RequestTimeout", millis(config.request_timeout())),
        ("RateLimit", json!(config.rate_limit())),
        ("ShardMapWait", json!(format!("{:?}", config.shard_map_wait()))),
        ("FailIfThrottled", json!(config.fail_if_throttled())),
    ]);
    Settings { from, values }
}

/// What the benchmark measured; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Report {
    /// User records put.
    pub records: u64,
    pub record_size_bytes: u64,
    pub keys: Keys,
    pub shards: u32,
    pub shard_limits: bool,
    pub concurrency: u64,
    pub hostile: bool,
    /// `--rate`: user records per second offered (open loop); `null` for all at once.
    pub offered_records_per_second: Option<u64>,
    pub producer_settings: Settings,
    /// From the first put to the last result.
    pub seconds: f64,
    /// User records with a result, per second.
    pub records_per_second: f64,
    /// Megabytes (10^6 bytes) of user data written per second.
    pub megabytes_per_second: f64,
    pub user_records_per_kinesis_record: f64,
    pub kinesis_records_per_request: f64,
    /// `PutRecords` requests sent.
    pub requests: u64,
    /// User records sent again (a user record in a throttled aggregate counts once per retry).
    pub user_record_retries: u64,
    /// Kinesis records (`PutRecords` entries) refused by their shard's quota.
    pub throttled_kinesis_records: u64,
    /// User records not written.
    pub failed: u64,
    /// The stream's use of its shards' quota over the run (at least one second), in percent. Above 100 %
    /// in short saturated runs: an idle shard takes a whole second's quota at once (its burst).
    pub utilisation_percent: Utilisation,
    pub per_shard: Vec<ShardRow>,
    pub bottleneck: Bottleneck,
    /// Put-to-result latency (open loop: from the record's scheduled time), in milliseconds.
    pub latency_ms: Percentiles,
    /// Most user records put and not yet completed at once.
    pub peak_outstanding_records: u64,
    /// Their data at most, in bytes.
    pub peak_outstanding_bytes: u64,
    /// CPU time used over the run, as a share of one core, in percent; `null` where unknown.
    pub cpu_percent_of_one_core: Option<f64>,
    pub cores: u64,
    /// The process's peak resident memory (`VmHWM`), in bytes; `null` where unknown.
    pub peak_memory_bytes: Option<u64>,
}

/// A share of the quota, in percent: Kinesis records and bytes (partition keys and data).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Utilisation {
    pub bytes: f64,
    pub records: f64,
}

/// One shard's figures.
#[derive(Debug, Serialize)]
pub struct ShardRow {
    pub shard_id: String,
    pub user_records: u64,
    pub user_bytes: u64,
    pub kinesis_records: u64,
    /// Partition keys and data of the Kinesis records written, as the quota counts them.
    pub kinesis_bytes: u64,
    pub throttled_kinesis_records: u64,
    pub utilisation_percent: Utilisation,
}

/// What limited the run.
#[derive(Debug, Serialize)]
pub struct Bottleneck {
    /// `shard-quota`, `cpu`, `connections`, `none` (an open-loop rate that was met), or `unknown`.
    pub kind: &'static str,
    pub detail: String,
}

/// Assembles the report.
pub fn build(args: &BenchArgs, run: &Run, counters: &Counters, stats: &ProducerStats) -> Report {
    let seconds = run.elapsed.as_secs_f64();
    // The quota is per rolling second: a shorter run still has a whole second's worth.
    let quota_seconds = seconds.max(1.0);
    let utilisation = |records: u64, bytes: u64, shards: u64| Utilisation {
        bytes: percent(bytes as f64, run.quota.bytes_per_second as f64 * shards as f64 * quota_seconds),
        records: percent(records as f64, run.quota.records_per_second as f64 * shards as f64 * quota_seconds),
    };
    let per_shard: Vec<ShardRow> = counters
        .shards
        .ids()
        .iter()
        .zip(&counters.per_shard)
        .map(|(id, shard)| ShardRow {
            shard_id: id.to_string(),
            user_records: shard.user_records.get(),
            user_bytes: shard.user_bytes.get(),
            kinesis_records: shard.kinesis_records.get(),
            kinesis_bytes: shard.kinesis_bytes.get(),
            throttled_kinesis_records: shard.throttled.get(),
            utilisation_percent: utilisation(shard.kinesis_records.get(), shard.kinesis_bytes.get(), 1),
        })
        .collect();
    let kinesis_bytes: u64 = per_shard.iter().map(|shard| shard.kinesis_bytes).sum();
    let records = counters.completed.get();
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get() as u64);
    let cpu_share = run.cpu.map(|cpu| cpu.as_secs_f64() / seconds.max(1e-9));
    let utilisation_percent =
        utilisation(counters.kinesis_records.get(), kinesis_bytes, per_shard.len() as u64);
    let bottleneck = bottleneck(run, &per_shard, cpu_share, cores, counters, records, seconds);
    Report {
        records,
        record_size_bytes: args.record_size,
        keys: args.keys,
        shards: args.shards,
        shard_limits: run.shard_limits,
        concurrency: args.concurrency,
        hostile: args.hostile,
        offered_records_per_second: run.rate,
        producer_settings: run.settings.clone(),
        seconds,
        records_per_second: ratio(records as f64, seconds),
        megabytes_per_second: ratio(counters.completed_bytes.get() as f64 / 1e6, seconds),
        user_records_per_kinesis_record: ratio(
            stats.user_records_put as f64,
            stats.kinesis_records_put as f64,
        ),
        kinesis_records_per_request: ratio(
            stats.kinesis_records_put as f64,
            stats.put_records_requests as f64,
        ),
        requests: stats.put_records_requests,
        user_record_retries: stats.retries,
        throttled_kinesis_records: stats.throttled_entries,
        failed: counters.failed.get(),
        utilisation_percent,
        per_shard,
        bottleneck,
        latency_ms: run.latency,
        peak_outstanding_records: counters.outstanding_records.peak(),
        peak_outstanding_bytes: counters.outstanding_bytes.peak(),
        cpu_percent_of_one_core: cpu_share.map(|share| share * 100.0),
        cores,
        peak_memory_bytes: peak_memory(),
    }
}

/// The first limit reached, in this order: a shard's quota, the CPU, the connections; else, with an
/// open-loop rate that was met, nothing.
fn bottleneck(
    run: &Run,
    shards: &[ShardRow],
    cpu_share: Option<f64>,
    cores: u64,
    counters: &Counters,
    records: u64,
    seconds: f64,
) -> Bottleneck {
    let busiest = shards.iter().max_by(|a, b| peak_use(a).total_cmp(&peak_use(b)));
    let saturated = shards.iter().filter(|shard| peak_use(shard) >= SATURATED * 100.0).count();
    if let Some(busiest) = busiest
        && (peak_use(busiest) >= SATURATED * 100.0 || busiest.throttled_kinesis_records > 0)
    {
        let (share, what) = if busiest.utilisation_percent.bytes >= busiest.utilisation_percent.records {
            (busiest.utilisation_percent.bytes, "bytes (1 MiB/s)")
        } else {
            (busiest.utilisation_percent.records, "records (1,000/s)")
        };
        let detail = if saturated > 1 {
            format!(
                "{saturated} of {} shards at {SATURATED_PERCENT:.0} % or more of their quota; the busiest, {}, at \
                 {share:.0} % of its {what}; add shards, or spread the keys",
                shards.len(),
                busiest.shard_id,
            )
        } else {
            format!(
                "shard {} at {share:.0} % of its quota of {what}, with {} throttled Kinesis records; {}",
                busiest.shard_id,
                thousands(busiest.throttled_kinesis_records),
                if shards.len() > 1 { "spread the keys, or add shards" } else { "add shards" }
            )
        };
        return Bottleneck { kind: "shard-quota", detail };
    }
    if let Some(share) = cpu_share
        && share >= CPU_BOUND * cores as f64
    {
        return Bottleneck {
            kind: "cpu",
            detail: format!(
                "the process used {share:.1} of {cores} cores; fewer --concurrency tasks, or more cores"
            ),
        };
    }
    let busy = run.connections_saturated.as_secs_f64() / seconds.max(1e-9);
    if busy >= CONNECTIONS_BOUND {
        return Bottleneck {
            kind: "connections",
            detail: format!(
                "all {} connections (MaxConnections) busy for {:.0} % of the run; raise MaxConnections",
                counters.max_connections(),
                busy * 100.0
            ),
        };
    }
    match run.rate {
        Some(rate) if ratio(records as f64, seconds) >= 0.9 * rate as f64 => Bottleneck {
            kind: "none",
            detail: format!(
                "the {} records/s offered were taken; latency is the producer's own (RecordMaxBufferedTime {} ms)",
                thousands(rate),
                run.settings.values.get("RecordMaxBufferedTime").map_or_else(String::new, Value::to_string),
            ),
        },
        _ => Bottleneck {
            kind: "unknown",
            detail: format!(
                "no shard at {SATURATED_PERCENT:.0} % of its quota, CPU {:.1} of {cores} cores, all connections busy \
                 {:.0} % of the time",
                cpu_share.unwrap_or(0.0),
                busy * 100.0
            ),
        },
    }
}

const SATURATED_PERCENT: f64 = SATURATED * 100.0;

/// A shard's higher use of its two quotas, in percent.
fn peak_use(shard: &ShardRow) -> f64 {
    shard.utilisation_percent.bytes.max(shard.utilisation_percent.records)
}

/// `100 × a / b`, or 0 when `b` is 0.
fn percent(a: f64, b: f64) -> f64 {
    ratio(a, b) * 100.0
}

/// `a / b`, or 0 when `b` is 0.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The CPU time the process used so far (user and system), from `/proc/self/stat` in clock ticks of
/// 1/100 s (`USER_HZ`, fixed at 100 by the Linux ABI); `None` elsewhere.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime
    // and stime are fields 14 and 15 (proc(5)).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
}

/// The peak resident set size, from `VmHWM` in `/proc/self/status` (Linux); `None` elsewhere.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The text summary.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let on_off = |on: bool| if on { "on" } else { "off" };
    let load = match report.offered_records_per_second {
        Some(rate) => format!("open loop at {} records/s", thousands(rate)),
        None => "closed loop (all offered at once)".to_owned(),
    };
    let _ = writeln!(
        out,
        "kpl bench: {} records of {} bytes, {} keys, {} shards (quota {}), {load}, {} tasks{}",
        thousands(report.records),
        report.record_size_bytes,
        name(report.keys),
        report.shards,
        on_off(report.shard_limits),
        report.concurrency,
        if report.hostile { ", hostile service" } else { "" },
    );
    let settings: Vec<String> = report
        .producer_settings
        .values
        .iter()
        .map(|(key, value)| {
            let unit = match *key {
                "RecordMaxBufferedTime" | "RecordTtl" | "RequestTimeout" => " ms",
                "AggregationMaxSize" | "CollectionMaxSize" => " B",
                "RateLimit" => " %",
                _ => "",
            };
            format!("{key} {}{unit}", value.as_str().map_or_else(|| value.to_string(), str::to_owned))
        })
        .collect();
    // A few settings per line, the source last.
    let mut settings = settings.into_iter().peekable();
    let mut label = "settings";
    while settings.peek().is_some() {
        let line: Vec<String> = settings.by_ref().take(4).collect();
        let _ = writeln!(out, "  {label:<13} {}", line.join(", "));
        label = "";
    }
    let _ = writeln!(out, "  {label:<13} (from {})", report.producer_settings.from);
    let _ = writeln!(out, "  time          {:.2} s", report.seconds);
    let _ = writeln!(
        out,
        "  throughput    {} user records/s, {:.2} MB/s of user data",
        thousands(report.records_per_second.round() as u64),
        report.megabytes_per_second,
    );
    let _ = writeln!(
        out,
        "  shard quota   {:.1} % of bytes ({} × 1 MiB/s), {:.1} % of records ({} × 1,000/s) used",
        report.utilisation_percent.bytes, report.shards, report.utilisation_percent.records, report.shards,
    );
    let _ = writeln!(
        out,
        "  aggregation   {:.1} user records per Kinesis record, {:.1} Kinesis records per request",
        report.user_records_per_kinesis_record, report.kinesis_records_per_request,
    );
    let _ = writeln!(
        out,
        "  requests      {} PutRecords, {} user-record retries, {} throttled Kinesis records, {} user records failed",
        thousands(report.requests),
        thousands(report.user_record_retries),
        thousands(report.throttled_kinesis_records),
        thousands(report.failed),
    );
    let latency = &report.latency_ms;
    let _ = writeln!(
        out,
        "  latency       p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms ({})",
        latency.p50,
        latency.p90,
        latency.p99,
        latency.p99_9,
        latency.max,
        if report.offered_records_per_second.is_some() {
            "scheduled time to result"
        } else {
            "put to result"
        },
    );
    let _ = writeln!(
        out,
        "  outstanding   at most {} user records, {} of user data",
        thousands(report.peak_outstanding_records),
        mebibytes(report.peak_outstanding_bytes),
    );
    let cpu = report.cpu_percent_of_one_core.map_or_else(
        || "n/a".to_owned(),
        |percent| format!("{percent:.0} % of one core ({} cores)", report.cores),
    );
    let memory = report.peak_memory_bytes.map_or_else(|| "n/a".to_owned(), mebibytes);
    let _ = writeln!(out, "  resources     CPU {cpu}, peak memory {memory} resident");
    let _ = writeln!(out, "  bottleneck    {}: {}", report.bottleneck.kind, report.bottleneck.detail);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<22} {:>13} {:>10} {:>15} {:>11} {:>10} {:>8} {:>10}",
        "shard",
        "user records",
        "user MB",
        "Kinesis records",
        "Kinesis MB",
        "throttled",
        "bytes %",
        "records %"
    );
    let mut rows: Vec<&ShardRow> = report.per_shard.iter().collect();
    if rows.len() > SHARDS_SHOWN {
        rows.sort_by(|a, b| peak_use(b).total_cmp(&peak_use(a)));
    }
    for row in rows.iter().take(SHARDS_SHOWN) {
        let _ = writeln!(
            out,
            "  {:<22} {:>13} {:>10.2} {:>15} {:>11.2} {:>10} {:>8.1} {:>10.1}",
            row.shard_id,
            thousands(row.user_records),
            row.user_bytes as f64 / 1e6,
            thousands(row.kinesis_records),
            row.kinesis_bytes as f64 / 1e6,
            thousands(row.throttled_kinesis_records),
            row.utilisation_percent.bytes,
            row.utilisation_percent.records,
        );
    }
    if rows.len() > SHARDS_SHOWN {
        let _ =
            writeln!(out, "  ... {} more shards, less busy (all of them: --json)", rows.len() - SHARDS_SHOWN);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_and_cpu_time_are_read_on_linux() {
        assert_eq!(peak_memory().is_some(), cfg!(target_os = "linux"));
        assert_eq!(cpu_time().is_some(), cfg!(target_os = "linux"));
    }

    #[test]
    fn percentages_of_nothing_are_zero() {
        assert_eq!(percent(5.0, 0.0), 0.0);
        assert_eq!(percent(1.0, 4.0), 25.0);
    }
}
