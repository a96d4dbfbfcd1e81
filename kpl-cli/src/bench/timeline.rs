//! Latency histograms (`hdrhistogram`: fixed memory whatever the number of records) and the per-second
//! timeline of a run: throughput, latency and records outstanding, sampled once a second.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::observe::Counters;
use crate::error::CliError;

/// Latencies are recorded in microseconds, to 3 significant digits (0.1 % error), from 1 µs to an hour;
/// longer ones are clamped to an hour.
const LATENCY_MAX_MICROS: u64 = 3_600_000_000;

/// The whole run's latencies, and the current second's.
#[derive(Debug)]
pub struct Latencies {
    total: Histogram<u64>,
    window: Histogram<u64>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    pub max: f64,
}

impl Latencies {
    pub fn new() -> Result<Self, CliError> {
        let histogram = || Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3);
        Ok(Self { total: histogram()?, window: histogram()? })
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, LATENCY_MAX_MICROS);
        self.total.saturating_record(micros);
        self.window.saturating_record(micros);
    }

    /// The whole run's percentiles.
    pub fn total(&self) -> Percentiles {
        percentiles(&self.total)
    }

    /// The percentiles since the last call, and a fresh window.
    fn take_window(&mut self) -> Percentiles {
        let window = percentiles(&self.window);
        self.window.reset();
        window
    }
}

fn percentiles(histogram: &Histogram<u64>) -> Percentiles {
    if histogram.is_empty() {
        return Percentiles::default();
    }
    let millis = |micros: u64| micros as f64 / 1e3;
    Percentiles {
        p50: millis(histogram.value_at_quantile(0.50)),
        p90: millis(histogram.value_at_quantile(0.90)),
        p99: millis(histogram.value_at_quantile(0.99)),
        p99_9: millis(histogram.value_at_quantile(0.999)),
        max: millis(histogram.max()),
    }
}

/// One second of the run (the last one may be shorter), as rates per second over it.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// End of the interval, seconds from the start.
    pub time_s: f64,
    /// User records with a result (written or failed), per second.
    pub records_per_s: f64,
    /// User data written, megabytes (10^6 bytes) per second.
    pub megabytes_per_s: f64,
    /// Kinesis records written, per second.
    pub kinesis_records_per_s: f64,
    /// `PutRecords` requests, per second.
    pub requests_per_s: f64,
    /// Kinesis records throttled by their shard, per second.
    pub throttled_per_s: f64,
    /// Latency of the records completed in the interval, milliseconds.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// User records put and without a result, at the end of the interval.
    pub outstanding_records: u64,
    /// Their data, bytes.
    pub outstanding_bytes: u64,
}

/// The cumulative counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    at: Duration,
    records: u64,
    bytes: u64,
    kinesis_records: u64,
    requests: u64,
    throttled: u64,
}

impl Totals {
    fn read(counters: &Counters, at: Duration) -> Self {
        Self {
            at,
            records: counters.completed.get(),
            bytes: counters.completed_bytes.get(),
            kinesis_records: counters.kinesis_records.get(),
            requests: counters.requests.get(),
            throttled: counters.throttled.get(),
        }
    }
}

/// Samples `counters` and `latencies` every second from `started` until `stop` resolves, then once more.
pub async fn sample(
    counters: Arc<Counters>,
    latencies: Arc<Mutex<Latencies>>,
    started: Instant,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Second> {
    let mut seconds = Vec::new();
    let mut last = Totals::default();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(started) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        let now = Totals::read(&counters, started.elapsed());
        let window = latencies.lock().unwrap_or_else(PoisonError::into_inner).take_window();
        let span = (now.at - last.at).as_secs_f64();
        if span > 0.0 {
            let rate = |now: u64, then: u64| round(now.saturating_sub(then) as f64 / span, 1);
            seconds.push(Second {
                time_s: round(now.at.as_secs_f64(), 3),
                records_per_s: rate(now.records, last.records),
                megabytes_per_s: round(now.bytes.saturating_sub(last.bytes) as f64 / span / 1e6, 4),
                kinesis_records_per_s: rate(now.kinesis_records, last.kinesis_records),
                requests_per_s: rate(now.requests, last.requests),
                throttled_per_s: rate(now.throttled, last.throttled),
                latency_p50_ms: window.p50,
                latency_p99_ms: window.p99,
                latency_max_ms: window.max,
                outstanding_records: counters.outstanding_records.get(),
                outstanding_bytes: counters.outstanding_bytes.get(),
            });
        }
        last = now;
        if stopping {
            return seconds;
        }
    }
}

/// `value` to `digits` decimals: the timeline's precision, not the float's.
fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Writes `seconds` to `path` as CSV, one row per second, with a header naming each column and its unit.
pub fn write_csv(path: &Path, seconds: &[Second]) -> Result<(), CliError> {
    let failed = |source: csv::Error| CliError::WriteFile { path: path.to_owned(), source: source.into() };
    let mut writer = csv::Writer::from_path(path).map_err(failed)?;
    for second in seconds {
        writer.serialize(second).map_err(failed)?;
    }
    writer.flush().map_err(|source| CliError::WriteFile { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram_within_its_precision() {
        let mut latencies = Latencies::new().unwrap();
        for millis in 1..=1000 {
            latencies.record(Duration::from_millis(millis));
        }
        let total = latencies.total();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(total.p50, 500.0), "{total:?}");
        assert!(close(total.p90, 900.0), "{total:?}");
        assert!(close(total.p99, 990.0), "{total:?}");
        assert!(close(total.p99_9, 999.0), "{total:?}");
        assert!(close(total.max, 1000.0), "{total:?}");
        assert_eq!(latencies.take_window(), total);
        assert_eq!(latencies.take_window(), Percentiles::default());
        assert_eq!(latencies.total(), total);
        assert_eq!(Latencies::new().unwrap().total(), Percentiles::default());
    }

    #[test]
    fn latencies_past_an_hour_are_clamped() {
        let mut latencies = Latencies::new().unwrap();
        latencies.record(Duration::from_secs(10_000));
        assert!((latencies.total().max - 3_600_000.0).abs() < 3_600.0, "{:?}", latencies.total());
    }
}
