//! The shell on the real file system with the in-process simulated Kinesis (`kpl-mock-backend`): delivery,
//! checkpoints at the files' ends, a graceful stop, and a stream that cannot be written stalling the flow
//! with reading paused at the memory budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;
use support::wait_for;

use kpl_agent::config::{AgentConfig, parse};
use kpl_agent::shell::{CheckpointStore, RECORD_OVERHEAD, RunSummary, run_with_progress};
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::MockBackend;
use tokio::sync::{mpsc, watch};

fn agent_config(dir: &Path, stream: &str) -> AgentConfig {
    // Records go out before the shard map is known, so that a missing stream fails them (with the
    // agent's default, `Hold`, they wait for a map that never comes, and the stall is warned about).
    let text = format!(
        r#"{{"memoryBudgetBytes": 4194304, "checkpointIntervalMillis": 100, "shutdownTimeoutMillis": 5000,
            "producer": {{"ShardMapWait": "SendUnaggregated"}},
            "flows": [{{"filePattern": "{}/*.log", "kinesisStream": "{stream}", "initialPosition": "START_OF_FILE"}}]}}"#,
        dir.display()
    );
    parse("agent.json", &text, &[], true).unwrap().config
}

fn backend() -> MockBackend {
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 7).unwrap();
    kinesis.create_stream("logs", 2).unwrap();
    MockBackend::new(kinesis)
}

fn write_lines(path: &Path, count: usize, width: usize) -> u64 {
    let text: String = (0..count).map(|n| format!("{n:0width$}\n")).collect();
    fs::write(path, &text).unwrap();
    text.len() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_delivered_and_checkpointed_at_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let sizes: Vec<u64> = (0..3).map(|i| write_lines(&logs.join(format!("{i}.log")), 1000, 20)).collect();
    let store_path = dir.path().join("checkpoints.redb");
    let store = CheckpointStore::open(&store_path).unwrap();
    let (stop, stopped) = mpsc::channel(2);
    let (progress, mut watching) = watch::channel(RunSummary::default());
    let agent =
        tokio::spawn(run_with_progress(agent_config(&logs, "logs"), backend(), store, stopped, progress));
    wait_for(&mut watching, |summary| summary.records_delivered == 3000).await;
    stop.send(()).await.unwrap();
    let summary = agent.await.unwrap().unwrap();
    assert!(summary.drained);
    assert_eq!((summary.records_read, summary.delivery_failures, summary.records_refused), (3000, 0, 0));
    let mut offsets: Vec<u64> =
        CheckpointStore::open(&store_path).unwrap().rows().unwrap().iter().map(|r| r.offset).collect();
    offsets.sort();
    assert_eq!(offsets, sizes, "every file is checkpointed at its end");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_cannot_be_written_stalls_the_flow_and_reading_pauses_at_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    // 16 MiB of 1 KiB lines, four times the budget.
    write_lines(&logs.join("big.log"), 16 * 1024, 1023);
    let store_path = dir.path().join("checkpoints.redb");
    let store = CheckpointStore::open(&store_path).unwrap();
    let (stop, stopped) = mpsc::channel(2);
    let (progress, mut watching) = watch::channel(RunSummary::default());
    let config = agent_config(&logs, "missing");
    let agent = tokio::spawn(run_with_progress(config, backend(), store, stopped, progress));
    let stalled = wait_for(&mut watching, |summary| summary.records_read > 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = *watching.borrow();
    assert_eq!(later.records_delivered, 0);
    assert!(later.delivery_failures > 0, "the failures are reported: {later:?}");
    // Reading paused at the budget: 4 MiB of 1 KiB records (plus the overhead of each in flight).
    assert!(later.records_read <= 4 * 1024 * 1024 / (1024 + RECORD_OVERHEAD) + 64, "{later:?}");
    assert!(later.records_read >= stalled.records_read);
    stop.send(()).await.unwrap();
    stop.send(()).await.unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), agent).await.unwrap().unwrap().unwrap();
    assert!(!summary.drained);
    let rows = CheckpointStore::open(&store_path).unwrap().rows().unwrap();
    assert_eq!(
        rows.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0],
        "nothing confirmed, nothing passed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_matched_by_two_flows_feeds_one() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(&dir.path().join("x.log"), 100, 10);
    let text = format!(
        r#"{{"flows": [
            {{"filePattern": "{0}/*.log", "kinesisStream": "logs", "initialPosition": "START_OF_FILE"}},
            {{"filePattern": "{0}/x*", "kinesisStream": "logs", "initialPosition": "START_OF_FILE"}}]}}"#,
        dir.path().display()
    );
    let config = parse("agent.json", &text, &[], true).unwrap().config;
    let store = CheckpointStore::open(&dir.path().join("state/checkpoints.redb")).unwrap();
    let (stop, stopped) = mpsc::channel(2);
    let (progress, mut watching) = watch::channel(RunSummary::default());
    let agent = tokio::spawn(run_with_progress(config, backend(), store, stopped, progress));
    wait_for(&mut watching, |summary| summary.records_delivered == 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(()).await.unwrap();
    let summary = agent.await.unwrap().unwrap();
    assert_eq!(summary.records_read, 100, "read once, not once per flow");
}

/// Descriptors of this process open on files under `dir`.
fn open_under(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir("/proc/self/fd") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter(|p| p.starts_with(dir))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_more_files_than_max_open_files_every_file_is_read_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let sizes: Vec<u64> = (0..60).map(|i| write_lines(&logs.join(format!("{i:02}.log")), 200, 20)).collect();
    let text = format!(
        r#"{{"maxOpenFiles": 4, "checkpointIntervalMillis": 100,
            "flows": [{{"filePattern": "{}/*.log", "kinesisStream": "logs", "initialPosition": "START_OF_FILE"}}]}}"#,
        logs.display()
    );
    let config = parse("agent.json", &text, &[], true).unwrap().config;
    let store_path = dir.path().join("checkpoints.redb");
    let store = CheckpointStore::open(&store_path).unwrap();
    let (stop, stopped) = mpsc::channel(2);
    let (progress, mut watching) = watch::channel(RunSummary::default());
    let agent = tokio::spawn(run_with_progress(config, backend(), store, stopped, progress));
    let mut most_open = 0;
    while watching.borrow().records_delivered < 60 * 200 {
        most_open = most_open.max(open_under(&logs));
        let _ = tokio::time::timeout(Duration::from_millis(5), watching.changed()).await;
    }
    stop.send(()).await.unwrap();
    let summary = agent.await.unwrap().unwrap();
    assert_eq!((summary.records_read, summary.records_delivered), (12_000, 12_000), "each line once");
    // A scan holds one more for a moment (to read its head).
    assert!(most_open <= 4 + 1, "{most_open} files open at once");
    assert!(most_open > 0, "the count sees the agent's files");
    let mut offsets: Vec<u64> =
        CheckpointStore::open(&store_path).unwrap().rows().unwrap().iter().map(|r| r.offset).collect();
    offsets.sort();
    let mut expected = sizes;
    expected.sort();
    assert_eq!(offsets, expected, "every file is checkpointed at its end");
}
