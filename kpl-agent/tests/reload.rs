//! A new configuration while the agent runs (what SIGHUP delivers), on the real file system with the
//! simulated Kinesis: a changed flow resumes where the old one stopped (every line once, the new lines
//! processed the new way), an added flow starts, and the status file shows each file's offsets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::{Reloadable, start_reloadable, wait_for};

use kpl_agent::config::{AgentConfig, parse};
use kpl_agent::shell::{CheckpointStore, StatusSource, read_status, status_file};
use kpl_deagg::Mode;
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::MockBackend;

fn config(dir: &Path, flows: &str) -> AgentConfig {
    let text = format!(
        r#"{{"checkpointIntervalMillis": 100, "cloudwatch.emitMetrics": false, "flows": [{flows}]}}"#
    );
    parse(&dir.join("agent.json").display().to_string(), &text, &[], true).unwrap().config
}

fn flow(dir: &Path, name: &str, extra: &str) -> String {
    format!(
        r#"{{"filePattern": "{}/{name}/*.log", "kinesisStream": "logs", "initialPosition": "START_OF_FILE"{extra}}}"#,
        dir.display()
    )
}

fn append(path: &Path, prefix: &str, lines: std::ops::Range<usize>) {
    let mut file = OpenOptions::new().create(true).append(true).open(path).unwrap();
    let text: String = lines.map(|n| format!("{prefix}-{n:05}\n")).collect();
    file.write_all(text.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_diffs_flows_and_keeps_every_files_progress() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let (a, b) = (dir.path().join("a/app.log"), dir.path().join("b/other.log"));
    append(&a, "a", 0..1000);
    let first = config(dir.path(), &flow(dir.path(), "a", ""));
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 7).unwrap();
    kinesis.create_stream("logs", 1).unwrap();
    let backend = Arc::new(MockBackend::new(kinesis));
    let store_path = dir.path().join("checkpoints.redb");
    let store = CheckpointStore::open(&store_path).unwrap();
    let Reloadable { agent, stop, reload, mut watching } =
        start_reloadable(first, backend.clone(), store, Some(status_file(&store_path)));
    wait_for(&mut watching, |s| s.records_delivered >= 1000).await;

    // Flow a changed (its lines now go out in braces); flow b added.
    let changed = flow(dir.path(), "a", r#", "dataProcessingOptions": [{"optionName": "ADDBRACKETS"}]"#);
    let second = config(dir.path(), &format!("{changed}, {}", flow(dir.path(), "b", "")));
    reload.send(second).await.unwrap();
    // Lines written once the agent took the reload (it does before anything else it is woken for).
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(&a, "a", 1000..1500);
    append(&b, "b", 0..300);
    wait_for(&mut watching, |s| s.records_delivered >= 1800).await;
    // The status file, once the checkpoints passed every line.
    let size = |path: &Path| fs::metadata(path).unwrap().len();
    let mut status = read_status(&store_path).unwrap();
    for _ in 0..50 {
        if status.files.iter().filter(|row| row.saved_checkpoint == row.size).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = read_status(&store_path).unwrap();
    }
    assert_eq!(status.source, StatusSource::Running { pid: std::process::id() });
    let row = |path: &Path| status.files.iter().find(|row| row.path == path).cloned().unwrap();
    for path in [&a, &b] {
        let row = row(path);
        assert_eq!(
            (row.read_offset, row.checkpoint, row.saved_checkpoint, row.in_flight_records),
            (Some(size(path)), Some(size(path)), Some(size(path)), Some(0)),
            "{row:?}"
        );
    }
    assert!(status.to_string().contains("running (pid"), "{status}");
    stop.send(()).await.unwrap();
    let summary = agent.await.unwrap().unwrap();
    assert_eq!(summary.records_delivered, 1800);

    let records: Vec<String> = backend.with_kinesis(|kinesis, _| {
        let (_, shard) = kinesis.all_shards().next().expect("one shard");
        let batch = shard.deaggregate(Mode::Strict);
        batch.records.iter().map(|record| String::from_utf8(record.data.to_vec()).unwrap()).collect()
    });
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &records {
        *seen.entry(record.as_str()).or_default() += 1;
    }
    assert!(seen.values().all(|times| *times == 1), "every line once");
    assert_eq!(records.len(), 1800);
    assert!((0..1000).all(|n| seen.contains_key(format!("a-{n:05}\n").as_str())), "before: raw lines");
    assert!(
        (1000..1500).all(|n| seen.contains_key(format!("{{a-{n:05}\n}}").as_str())),
        "after: ADDBRACKETS"
    );
    assert!((0..300).all(|n| seen.contains_key(format!("b-{n:05}\n").as_str())), "the added flow");

    // Stopped: the status comes from the store.
    let stopped = read_status(&store_path).unwrap();
    assert_eq!(stopped.source, StatusSource::Store);
    let mut saved: Vec<Option<u64>> = stopped.files.iter().map(|row| row.saved_checkpoint).collect();
    saved.sort();
    assert_eq!(saved, [Some(size(&b)), Some(size(&a))]);
    let _ = CheckpointStore::open(&store_path).unwrap();
}
