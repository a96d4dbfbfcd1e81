//! Processors end to end: files on the real file system, the agent's shell, the simulated Kinesis
//! (`kpl-mock-backend`); what the stream holds is read back as a KCL consumer would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kpl_agent::config::parse;
use kpl_agent::shell::{CheckpointStore, RunSummary, run_with_progress};
use kpl_deagg::Mode;
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::MockBackend;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Runs the agent on `flow` (a flow object's keys, without `filePattern` and `kinesisStream`) over
/// `dir/*.log` until `done`, stops it, and returns the summary and the records in the stream, in order.
async fn run_flow(dir: &Path, flow: &str, done: impl Fn(&RunSummary) -> bool) -> (RunSummary, Vec<String>) {
    let text = format!(
        r#"{{"checkpointIntervalMillis": 100, "checkpointFile": "{0}/checkpoints.redb",
            "flows": [{{"filePattern": "{0}/*.log", "kinesisStream": "logs", "initialPosition": "START_OF_FILE", {flow}}}]}}"#,
        dir.display()
    );
    let config = parse("agent.json", &text, &[], true).unwrap().config;
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 7).unwrap();
    kinesis.create_stream("logs", 1).unwrap();
    let backend = Arc::new(MockBackend::new(kinesis));
    let store = CheckpointStore::open(&dir.join("checkpoints.redb")).unwrap();
    let (stop, stopped) = mpsc::channel(2);
    let (progress, mut watching) = watch::channel(RunSummary::default());
    let agent = tokio::spawn(run_with_progress(config, backend.clone(), store, stopped, progress));
    tokio::time::timeout(Duration::from_secs(30), watching.wait_for(|summary| done(summary)))
        .await
        .expect("in time")
        .expect("running");
    stop.send(()).await.unwrap();
    let summary = agent.await.unwrap().unwrap();
    let records = backend.with_kinesis(|kinesis, _| {
        let (_, shard) = kinesis.all_shards().next().expect("one shard");
        let batch = shard.deaggregate(Mode::Strict);
        batch.records.iter().map(|record| String::from_utf8(record.data.to_vec()).unwrap()).collect()
    });
    (summary, records)
}

fn checkpoints(dir: &Path) -> Vec<u64> {
    let store = CheckpointStore::open(&dir.join("checkpoints.redb")).unwrap();
    store.rows().unwrap().iter().map(|row| row.offset).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csvtojson_flow_delivers_json() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..500).map(|n| format!("{n},user{n},\n")).collect();
    fs::write(dir.path().join("users.log"), &text).unwrap();
    let flow = r#""dataProcessingOptions": [{"optionName": "CSVTOJSON", "customFieldNames": ["id", "name", "team"]}]"#;
    let (summary, records) = run_flow(dir.path(), flow, |summary| summary.records_delivered == 500).await;
    assert_eq!((summary.records_read, summary.records_unconverted), (500, 0));
    let expected: Vec<String> =
        (0..500).map(|n| format!("{{\"id\":\"{n}\",\"name\":\"user{n}\",\"team\":null}}\n")).collect();
    assert_eq!(records, expected);
    assert_eq!(checkpoints(dir.path()), vec![text.len() as u64]);
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_logtojson_cannot_match_go_to_the_dead_letter_file_and_the_checkpoint_passes_them() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        "Nov  3 14:05:01 web7 sshd[4021]: Accepted publickey for deploy\n",
        "<34>Nov  3 14:05:02 web7 su[77]: not matched by the agent's SYSLOG\n",
        "Nov  3 14:05:03 web7 CRON: (root) CMD (run-parts /etc/cron.hourly)\n",
    ];
    fs::write(dir.path().join("syslog.log"), lines.concat()).unwrap();
    let dead = dir.path().join("dead/unconverted.jsonl");
    fs::create_dir(dir.path().join("dead")).unwrap();
    let flow = format!(
        r#""deadLetterFile": "{}", "dataProcessingOptions": [{{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}}]"#,
        dead.display()
    );
    let (summary, records) = run_flow(dir.path(), &flow, |summary| summary.records_delivered == 2).await;
    assert_eq!(summary.records_unconverted, 1);
    let programs: Vec<String> = records
        .iter()
        .map(|record| serde_json::from_str::<Value>(record).unwrap()["program"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(programs, ["sshd", "CRON"]);
    let kept: Value = serde_json::from_str(fs::read_to_string(&dead).unwrap().trim_end()).unwrap();
    assert_eq!(kept["record"], lines[1]);
    assert_eq!(
        (kept["converter"].as_str(), kept["offset"].as_u64()),
        (Some("LOGTOJSON"), Some(lines[0].len() as u64))
    );
    assert_eq!(checkpoints(dir.path()), vec![lines.concat().len() as u64], "the kept line is passed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_file_that_cannot_be_written_sends_the_record_raw() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("app.log"), "Nov  3 14:05:01 web7 cron: ok\nnot syslog\n").unwrap();
    let flow = format!(
        r#""deadLetterFile": "{}/missing-dir/dead.jsonl",
            "dataProcessingOptions": [{{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}}]"#,
        dir.path().display()
    );
    let (summary, records) = run_flow(dir.path(), &flow, |summary| summary.records_delivered == 2).await;
    assert_eq!(summary.records_unconverted, 1);
    assert_eq!(records[1], "not syslog\n", "nothing is lost");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_file_resumed_past_its_header_row_takes_its_names_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.log");
    fs::write(&path, "id,name\n1,ada\n").unwrap();
    let flow =
        r#""dataProcessingOptions": [{"optionName": "CSVTOJSON", "headerRow": true, "rfc4180": true}]"#;
    let (_, first) = run_flow(dir.path(), flow, |summary| summary.records_delivered == 1).await;
    assert_eq!(first, ["{\"id\":\"1\",\"name\":\"ada\"}\n"]);
    // After a restart the file is read from its checkpoint: the header row is read from the file.
    fs::write(&path, "id,name\n1,ada\n2,\"bob, jr\"\n").unwrap();
    let (summary, second) = run_flow(dir.path(), flow, |summary| summary.records_delivered == 1).await;
    assert_eq!((summary.records_read, summary.records_unconverted), (1, 0));
    assert_eq!(second, ["{\"id\":\"2\",\"name\":\"bob, jr\"}\n"]);
}

const IDENTITY: &str = r#"{"accountId": "123456789012", "availabilityZone": "eu-west-1b", "imageId": "ami-0abc",
    "instanceId": "i-0123", "instanceType": "m7g.large", "privateIp": "10.0.0.7", "region": "eu-west-1"}"#;

/// A fake IMDSv2 on 127.0.0.1: a session token for `PUT /latest/api/token`, the identity document and
/// two tags for GETs that carry that token, 401 without it. Returns its URL and how many documents it served.
async fn fake_imds() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0; 4096];
                while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).to_lowercase();
                let (status, body) = if request.starts_with("put /latest/api/token ") {
                    ("200 OK", "token-1")
                } else if request.starts_with("get /latest/dynamic/instance-identity/document ")
                    && request.contains("x-aws-ec2-metadata-token: token-1")
                {
                    counter.fetch_add(1, Ordering::SeqCst);
                    ("200 OK", IDENTITY)
                } else if request.contains("x-aws-ec2-metadata-token: token-1") {
                    match request.split(' ').nth(1) {
                        Some("/latest/meta-data/tags/instance") => ("200 OK", "Name\nTeam"),
                        Some("/latest/meta-data/tags/instance/name") => ("200 OK", "web-7"),
                        Some("/latest/meta-data/tags/instance/team") => ("200 OK", "shop"),
                        _ => ("404 Not Found", ""),
                    }
                } else {
                    ("401 Unauthorized", "")
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, served)
}

#[tokio::test(flavor = "multi_thread")]
async fn addec2metadata_adds_the_instance_identity_read_through_imdsv2() {
    let (url, served) = fake_imds().await;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("app.log"), "1,start\n2,stop\n").unwrap();
    let flow = format!(
        r#""dataProcessingOptions": [{{"optionName": "CSVTOJSON", "customFieldNames": ["n", "event"]}},
            {{"optionName": "ADDEC2METADATA", "logFormat": "COMMONAPACHELOG", "imdsEndpoint": "{url}",
              "tagsFromInstanceMetadata": true}}]"#
    );
    let (summary, records) = run_flow(dir.path(), &flow, |summary| summary.records_delivered == 2).await;
    assert_eq!(summary.records_unconverted, 0);
    assert_eq!(served.load(Ordering::SeqCst), 1, "read once (metadataTTL is an hour)");
    for (record, n) in records.iter().zip(["1", "2"]) {
        let object: serde_json::Map<String, Value> = serde_json::from_str(record).unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let expected = [
            "n",
            "event",
            "privateIp",
            "availabilityZone",
            "instanceId",
            "instanceType",
            "accountId",
            "amiId",
            "region",
            "metadataTimestamp",
            "tags",
        ];
        assert_eq!(keys, expected);
        assert_eq!((object["n"].as_str(), object["instanceId"].as_str()), (Some(n), Some("i-0123")));
        assert_eq!(object["amiId"], "ami-0abc");
        assert_eq!(object["tags"], serde_json::json!({"name": "web-7", "team": "shop"}));
    }
}
