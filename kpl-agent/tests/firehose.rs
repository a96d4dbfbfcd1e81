//! Firehose flows end to end: files on the real file system, the agent's shell, and moto's Firehose on
//! 127.0.0.1 (started by the test, through kpl-tokio's test support) delivering to moto's S3; every line
//! is read back from the bucket, once, and the checkpoints reach the files' ends. Partial failures (which
//! moto never answers) against a small fake Firehose of the test's own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../../kpl-tokio/tests/support/moto.rs"]
#[allow(dead_code)]
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Reloadable, start_reloadable, wait_for};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use kpl_agent::config::parse;
use kpl_agent::shell::{CheckpointStore, RunSummary, run_with_progress};
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tests::python::{MOTO, PythonEnv};
use kpl_tokio::MockBackend;
use moto::Moto;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// boto3 against moto: `setup STREAM...` creates a bucket per delivery stream and the stream into it;
/// `read STREAM...` prints, per stream, the objects its calls wrote (one per `PutRecordBatch`).
const BOTO: &str = r#"
import json, sys, boto3
endpoint, command, streams = sys.argv[1], sys.argv[2], sys.argv[3:]
session = boto3.session.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="secret", region_name="us-east-1")
s3 = session.client("s3", endpoint_url=endpoint)
firehose = session.client("firehose", endpoint_url=endpoint)
out = {}
for stream in streams:
    bucket = "bucket-" + stream
    if command == "setup":
        s3.create_bucket(Bucket=bucket)
        firehose.create_delivery_stream(
            DeliveryStreamName=stream,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose", "BucketARN": "arn:aws:s3:::" + bucket})
    else:
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
        out[stream] = [s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode() for key in sorted(keys)]
print(json.dumps(out))
"#;

fn boto(moto: &Moto, command: &str, streams: &[&str]) -> Value {
    let env = PythonEnv::ensure(&MOTO).unwrap();
    let output = env.command().args(["-c", BOTO, moto.endpoint(), command]).args(streams).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn append(path: &Path, lines: std::ops::Range<usize>, tag: &str) -> u64 {
    let mut file = fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let text: String = lines.map(|n| format!("{tag}-{n:06} {}\n", "x".repeat(n % 40))).collect();
    file.write_all(text.as_bytes()).unwrap();
    file.metadata().unwrap().len()
}

/// The agent running in this process on `agent.json` text, checkpoints at `store_path` (Kinesis: the
/// simulated one, unused by Firehose flows).
struct Running {
    agent: tokio::task::JoinHandle<Result<RunSummary, kpl_agent::shell::AgentError>>,
    stop: mpsc::Sender<()>,
    watching: watch::Receiver<RunSummary>,
}

impl Running {
    fn start(text: &str, store_path: &Path) -> Running {
        let config = parse("agent.json", text, &[], true).unwrap().config;
        let store = CheckpointStore::open(store_path).unwrap();
        let kinesis = MockBackend::new(MockKinesis::new(MockConfig::calm(), 1).unwrap());
        let (stop, stopped) = mpsc::channel(2);
        let (progress, watching) = watch::channel(RunSummary::default());
        let agent = tokio::spawn(run_with_progress(config, kinesis, store, stopped, progress));
        Running { agent, stop, watching }
    }

    /// Waits (at most 60 s) for `lines` delivered, then stops gracefully (what waits is sent).
    async fn stop_once_delivered(mut self, lines: u64) -> RunSummary {
        let delivered = self.watching.wait_for(|summary| summary.records_delivered >= lines);
        let waited = tokio::time::timeout(Duration::from_secs(60), delivered).await.map(|_| ());
        waited.unwrap_or_else(|_| panic!("not delivered in time: {:?}", *self.watching.borrow()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop.send(()).await.unwrap();
        self.agent.await.unwrap().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_reach_firehose_delivery_streams_joined_or_not_and_checkpoints_follow() {
    const LINES: usize = 3000;
    const BIG: usize = 10_000;
    let moto = Moto::start();
    tokio::task::block_in_place(|| boto(&moto, "setup", &["plain", "joined", "big"]));
    let dir = tempfile::tempdir().unwrap();
    let (plain, joined) = (dir.path().join("plain.log"), dir.path().join("joined.log"));
    append(&plain, 0..LINES / 2, "plain");
    append(&joined, 0..LINES / 2, "joined");
    // More lines than the agent keeps in flight (4,096) fit in one joined record: with reading paused,
    // the record goes without waiting for its 15-minute buffer age; the last one goes at the stop.
    let big = dir.path().join("big.log");
    let big_size = append(&big, 0..BIG, "big");
    let text = format!(
        r#"{{"firehose.endpoint": "{endpoint}", "kinesis.region": "us-east-1",
            "awsAccessKeyId": "AKIDTEST", "awsSecretAccessKey": "secret", "checkpointIntervalMillis": 100,
            "flows": [
              {{"filePattern": "{plain}", "deliveryStream": "plain", "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": 1000}},
              {{"filePattern": "{joined}", "deliveryStream": "joined", "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": 1000, "aggregatedRecordSizeBytes": 4000}},
              {{"filePattern": "{big}", "deliveryStream": "big", "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": 900000, "aggregatedRecordSizeBytes": 1024000}}]}}"#,
        endpoint = moto.endpoint(),
        plain = plain.display(),
        joined = joined.display(),
        big = big.display(),
    );
    let store_path = dir.path().join("checkpoints.redb");
    let agent = Running::start(&text, &store_path);
    // More lines while it runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sizes =
        [append(&plain, LINES / 2..LINES, "plain"), append(&joined, LINES / 2..LINES, "joined"), big_size];
    let total = (2 * LINES + BIG) as u64;
    let summary = agent.stop_once_delivered((2 * LINES + 4097) as u64).await;
    assert!(summary.drained);
    assert_eq!((summary.records_read, summary.records_delivered), (total, total));

    let objects = tokio::task::block_in_place(|| boto(&moto, "read", &["plain", "joined", "big"]));
    for (stream, lines) in [("plain", LINES), ("joined", LINES), ("big", BIG)] {
        let calls = objects[stream].as_array().unwrap();
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        for call in calls {
            let text = call.as_str().unwrap();
            assert!(text.ends_with('\n'), "whole lines only");
            for line in text.lines() {
                let number = line.strip_prefix(&format!("{stream}-")).unwrap()[..6].parse().unwrap();
                *seen.entry(number).or_default() += 1;
            }
            if stream == "plain" {
                assert!(text.lines().count() <= 500, "at most 500 records per call");
            }
        }
        assert_eq!(seen.len(), lines, "{stream}: every line");
        assert!(seen.values().all(|times| *times == 1), "{stream}: each line once");
        println!("{stream}: {lines} lines in {} PutRecordBatch calls", calls.len());
    }
    let mut offsets: Vec<u64> =
        CheckpointStore::open(&store_path).unwrap().rows().unwrap().iter().map(|row| row.offset).collect();
    offsets.sort_unstable();
    let mut expected = sizes.to_vec();
    expected.sort_unstable();
    assert_eq!(offsets, expected, "checkpoints at the files' ends");
}

/// A Firehose on 127.0.0.1 answering `PutRecordBatch` (JSON 1.1) and failing, on its first sight, every
/// record whose line number is a multiple of 3 (`ServiceUnavailableException`); what it accepted goes to
/// `accepted`.
async fn flaky_firehose(accepted: Arc<Mutex<Vec<String>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let failed_once = Arc::new(Mutex::new(BTreeSet::new()));
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (accepted, failed_once) = (accepted.clone(), failed_once.clone());
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                socket.read_exact(&mut body).await.unwrap();
                let request: Value = serde_json::from_slice(&body).unwrap();
                let mut responses = Vec::new();
                for record in request["Records"].as_array().unwrap() {
                    let data = BASE64.decode(record["Data"].as_str().unwrap()).unwrap();
                    let line = String::from_utf8(data).unwrap();
                    let number: u64 = line[..6].parse().unwrap();
                    if number.is_multiple_of(3) && failed_once.lock().unwrap().insert(number) {
                        responses.push(
                            json!({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"}),
                        );
                    } else {
                        accepted.lock().unwrap().push(line);
                        responses.push(json!({"RecordId": format!("r-{number}")}));
                    }
                }
                let failed = responses.iter().filter(|r| r.get("ErrorCode").is_some()).count();
                let answer =
                    json!({"FailedPutCount": failed, "Encrypted": false, "RequestResponses": responses})
                        .to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                let socket = socket.get_mut();
                socket.write_all(head.as_bytes()).await.unwrap();
                socket.write_all(answer.as_bytes()).await.unwrap();
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread")]
async fn records_a_partial_failure_names_are_retried_alone_and_the_checkpoint_waits_for_them() {
    const LINES: usize = 1200;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let endpoint = flaky_firehose(accepted.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let text: String = (0..LINES).map(|n| format!("{n:06} line\n")).collect();
    fs::write(&log, &text).unwrap();
    let config = format!(
        r#"{{"firehose.endpoint": "{endpoint}", "kinesis.region": "us-east-1",
            "awsAccessKeyId": "AKIDTEST", "awsSecretAccessKey": "secret", "checkpointIntervalMillis": 100,
            "flows": [{{"filePattern": "{}", "deliveryStream": "s", "initialPosition": "START_OF_FILE",
                "maxBufferAgeMillis": 1000, "retryInitialBackoffMillis": 10}}]}}"#,
        log.display()
    );
    let store_path = dir.path().join("checkpoints.redb");
    let summary = Running::start(&config, &store_path).stop_once_delivered(LINES as u64).await;
    assert_eq!(summary.delivery_failures, LINES as u64 / 3, "one failure per third line, each retried");
    let mut lines = accepted.lock().unwrap().clone();
    lines.sort();
    let expected: Vec<String> = text.lines().map(|line| format!("{line}\n")).collect();
    assert_eq!(lines, expected, "every line once: only the failed records were sent again");
    let rows = CheckpointStore::open(&store_path).unwrap().rows().unwrap();
    assert_eq!(rows.iter().map(|row| row.offset).collect::<Vec<_>>(), vec![text.len() as u64]);
}

/// A reload (SIGHUP) that brings the first `deliveryStream` flow to an agent started with Kinesis flows
/// only: the Firehose client is set up then, and the new flow's lines all arrive.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_can_bring_the_first_firehose_flow() {
    const LINES: usize = 300;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let endpoint = flaky_firehose(accepted.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (to_kinesis, to_firehose) = (dir.path().join("kinesis.log"), dir.path().join("firehose.log"));
    append(&to_kinesis, 0..100, "k");
    let text: String = (0..LINES).map(|n| format!("{n:06} line\n")).collect();
    fs::write(&to_firehose, &text).unwrap();
    let kinesis_flow = format!(
        r#"{{"filePattern": "{}", "kinesisStream": "logs", "initialPosition": "START_OF_FILE"}}"#,
        to_kinesis.display()
    );
    let firehose_flow = format!(
        r#"{{"filePattern": "{}", "deliveryStream": "s", "initialPosition": "START_OF_FILE",
            "maxBufferAgeMillis": 1000, "retryInitialBackoffMillis": 10}}"#,
        to_firehose.display()
    );
    let config = |flows: &str| {
        let text = format!(
            r#"{{"firehose.endpoint": "{endpoint}", "kinesis.region": "us-east-1",
                "awsAccessKeyId": "AKIDTEST", "awsSecretAccessKey": "secret", "checkpointIntervalMillis": 100,
                "cloudwatch.emitMetrics": false, "flows": [{flows}]}}"#
        );
        parse("agent.json", &text, &[], true).unwrap().config
    };
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 1).unwrap();
    kinesis.create_stream("logs", 1).unwrap();
    let store = CheckpointStore::open(&dir.path().join("checkpoints.redb")).unwrap();
    let Reloadable { agent, stop, reload, mut watching } =
        start_reloadable(config(&kinesis_flow), MockBackend::new(kinesis), store, None);
    wait_for(&mut watching, |s| s.records_delivered >= 100).await;
    reload.send(config(&format!("{kinesis_flow}, {firehose_flow}"))).await.unwrap();
    wait_for(&mut watching, |s| s.records_delivered >= 100 + LINES as u64).await;
    stop.send(()).await.unwrap();
    agent.await.unwrap().unwrap();
    let mut lines = accepted.lock().unwrap().clone();
    lines.sort();
    let expected: Vec<String> = text.lines().map(|line| format!("{line}\n")).collect();
    assert_eq!(lines, expected, "every line of the new Firehose flow, once");
}
