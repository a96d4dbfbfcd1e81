//! Deterministic simulation of the producer against the simulated Kinesis (see `kpl_tests::sim`).
//!
//! - `KPL_SIM_SEED=n` runs that one seed (to replay a failure);
//! - `KPL_SIM_SEEDS=n` runs n seeds from `KPL_SIM_BASE` (default 0) for soaking; CI runs a fixed set.
//!
//! Every seed runs twice and the traces must agree. A failing seed is printed as `KPL_SIM_SEED=<seed>`; add
//! it to `REGRESSIONS` once fixed.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use kpl_tests::sim::{Mode, Report, run_seed};

/// Seeds that once failed. Each stays here for good.
const REGRESSIONS: &[(u64, Mode)] = &[
    // Stale limiter timers each re-armed another: steps multiplied into a busy loop.
    (3, Mode::Liveness),
    // Requests waiting for a connection were sent after their records' TTL: drained 16 s after a 4.4 s TTL.
    (33, Mode::Safety),
    // An expired record in a request waiting for a connection re-routed the rest of its aggregate from
    // `poll_transmit`, which left that work due with no timer: 102 records never completed.
    (1428, Mode::Safety),
    (1428, Mode::Liveness),
    // Requests built unaggregated before the shard map arrived still went out after it, unlimited: 8 MB to
    // one shard in a second. They now go back through aggregation and the limiter.
    (4616, Mode::Safety),
    (4616, Mode::Liveness),
    // Kinesis records queued for the two parents of a merged shard kept draining through the parents'
    // limiters after the new map arrived, on top of the child's own: 6.8 MB to one shard in a second. They
    // are now routed again by the new map.
    (303_586, Mode::Liveness),
];

/// Seeds CI runs, per mode.
const CI_SEEDS: u64 = 200;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

fn run(seeds: impl IntoIterator<Item = (u64, Mode)>) -> Report {
    let epoch = Instant::now();
    let mut total = Report::default();
    let mut runs = 0;
    for (seed, mode) in seeds {
        match run_seed(seed, mode, epoch) {
            Ok(report) => {
                runs += 1;
                total.records += report.records;
                total.succeeded += report.succeeded;
                total.failed += report.failed;
                total.lost += report.lost;
                total.duplicates += report.duplicates;
                total.entries_throttled += report.entries_throttled;
                total.reshards += report.reshards;
                total.steps += report.steps;
                for (sum, n) in total.faults.iter_mut().zip(report.faults) {
                    *sum += n;
                }
            }
            Err(error) => panic!("simulation failed: {error}\nreplay with KPL_SIM_SEED={seed} ({mode:?})"),
        }
    }
    eprintln!(
        "{runs} scenarios: {} records, {} succeeded, {} failed, {} lost, {} duplicate copies; faults \
         [dropped requests, lost responses, throttled requests, 500s, 503s, entry failures] = {:?}; {} entries \
         throttled by shard limits; {} reshards; {} steps",
        total.records,
        total.succeeded,
        total.failed,
        total.lost,
        total.duplicates,
        total.faults,
        total.entries_throttled,
        total.reshards,
        total.steps
    );
    total
}

fn seeds(mode: Mode) -> Vec<(u64, Mode)> {
    if let Some(seed) = env_u64("KPL_SIM_SEED") {
        return vec![(seed, mode)];
    }
    let count = env_u64("KPL_SIM_SEEDS").unwrap_or(CI_SEEDS);
    let base = env_u64("KPL_SIM_BASE").unwrap_or(0);
    (base..base + count).map(|seed| (seed, mode)).collect()
}

#[test]
fn safety_faults_throughout() {
    let report = run(seeds(Mode::Safety));
    assert_eq!(report.lost, 0);
}

#[test]
fn liveness_faults_heal() {
    let report = run(seeds(Mode::Liveness));
    assert_eq!(report.lost, 0);
    assert!(report.succeeded > 0);
}

#[test]
fn regressions() {
    run(REGRESSIONS.iter().copied());
}
