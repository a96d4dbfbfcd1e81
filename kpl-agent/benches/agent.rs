//! `kpl agent`'s throughput and memory against a baseline in the same run, on the in-process simulated
//! Kinesis (no network): the agent tailing N files of M lines (read, framed, put, confirmed, checkpointed)
//! against the producer alone fed the same lines from memory.
//!
//! `cargo bench -p kpl-agent --bench agent -- [FILES] [LINES_PER_FILE]` (default 1000 × 1000, 100-byte
//! lines). Prints lines/s of both, their ratio, user records per Kinesis record, and the process's peak
//! resident memory (VmHWM) after the agent's run, against the agent's memory budget.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kpl_agent::config::parse;
use kpl_agent::shell::{CheckpointStore, RunSummary, run_with_progress};
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::{KinesisProducer, MockBackend, StreamTarget};
use tokio::sync::{mpsc, watch};

const LINE: usize = 100;
const SHARDS: u32 = 8;
const BUDGET: u64 = 64 << 20;

fn backend() -> Arc<MockBackend> {
    let config = MockConfig { retain_committed: false, ..MockConfig::calm() };
    let mut kinesis = MockKinesis::new(config, 1).unwrap();
    kinesis.create_stream("logs", SHARDS).unwrap();
    Arc::new(MockBackend::new(kinesis))
}

fn line(n: usize) -> String {
    let mut text = format!("{n:012} ");
    text.push_str(&"x".repeat(LINE - text.len() - 1));
    text.push('\n');
    text
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The agent over `files` files; returns (seconds, user records per Kinesis record).
async fn agent(dir: &std::path::Path, total: u64) -> (f64, f64) {
    let text = format!(
        r#"{{"memoryBudgetBytes": {BUDGET}, "flows": [{{"filePattern": "{}/*.log", "kinesisStream": "logs",
            "initialPosition": "START_OF_FILE"}}]}}"#,
        dir.display()
    );
    let config = parse("agent.json", &text, &[], true).unwrap().config;
    let store = CheckpointStore::open(&dir.join("state/checkpoints.redb")).unwrap();
    let backend = backend();
    let (stop, stopped) = mpsc::channel(2);
    let (progress, mut watching) = watch::channel(RunSummary::default());
    let started = Instant::now();
    let run = tokio::spawn(run_with_progress(config, backend.clone(), store, stopped, progress));
    watching.wait_for(|summary| summary.records_delivered >= total).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    stop.send(()).await.unwrap();
    run.await.unwrap().unwrap();
    let stats = backend.with_kinesis(|kinesis, _| *kinesis.stats());
    (seconds, total as f64 / stats.entries_committed as f64)
}

/// The producer alone, fed the same lines from memory.
async fn baseline(total: u64) -> f64 {
    let producer = KinesisProducer::builder(kpl_tokio::ProducerConfig::default(), backend()).spawn().unwrap();
    let stream = StreamTarget::name("logs");
    let started = Instant::now();
    let mut futures = Vec::new();
    for n in 0..total as usize {
        let future =
            producer.put_data(&stream, format!("{}", n % 100_000), line(n).into_bytes()).await.unwrap();
        futures.push(future);
        if futures.len() >= 100_000 {
            for future in futures.drain(..) {
                future.await.unwrap();
            }
        }
    }
    for future in futures {
        future.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    seconds
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let files = args.first().copied().unwrap_or(1000);
    let lines = args.get(1).copied().unwrap_or(1000);
    let total = (files * lines) as u64;
    let dir = tempfile::tempdir().unwrap();
    for f in 0..files {
        let mut out = BufWriter::new(File::create(dir.path().join(format!("{f:05}.log"))).unwrap());
        for n in 0..lines {
            out.write_all(line(f * lines + n).as_bytes()).unwrap();
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let before = peak_rss_kib();
    let (agent_s, per_record) = runtime.block_on(agent(dir.path(), total));
    let agent_peak = peak_rss_kib();
    let baseline_s = runtime.block_on(baseline(total));
    println!(
        "{files} files x {lines} lines of {LINE} bytes ({total} lines), {SHARDS} shards, simulated Kinesis"
    );
    println!("agent:    {:>10.0} lines/s ({agent_s:.2} s)", total as f64 / agent_s);
    println!(
        "baseline: {:>10.0} lines/s ({baseline_s:.2} s) (the producer alone, lines from memory)",
        total as f64 / baseline_s
    );
    println!("ratio agent/baseline: {:.2}", baseline_s / agent_s);
    println!("user records per Kinesis record: {per_record:.1}");
    println!(
        "peak RSS: {} MiB before the agent, {} MiB after it (budget {} MiB)",
        before / 1024,
        agent_peak / 1024,
        BUDGET >> 20
    );
}
