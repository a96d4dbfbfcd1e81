//! The agent's CloudWatch metrics end to end: files on the real file system, the agent's shell, the
//! simulated Kinesis, and the uploader built from `agent.json` (`cloudwatch.endpoint`, static keys)
//! uploading to moto (through kpl-tokio's test support: moto's server and a CBOR bridge, since the SDK
//! speaks CBOR to CloudWatch and moto does not). What moto stored is compared, exactly, with what was
//! written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../kpl-tokio/tests/support/cbor_bridge.rs"]
#[allow(dead_code)]
mod cbor_bridge;
#[path = "../../kpl-tokio/tests/support/moto.rs"]
mod moto;
#[path = "../../kpl-tokio/tests/support/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cbor_bridge::CborBridge;
use kpl_agent::config::parse;
use kpl_agent::shell::{
    CheckpointStore, RunControls, RunSummary, aws_backend, cloudwatch_uploader, run_with, sdk_config,
};
use kpl_deagg::Mode;
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::MockBackend;
use moto::Moto;
use tokio::sync::{mpsc, watch};

const APACHE: &str = r#"10.1.2.3 - - [03/Nov/2026:14:05:01 +0100] "GET /index.html HTTP/1.1" 200 5120"#;

/// Sums of (metric, dimensions `k=v,...`) over what moto stored.
fn sums(moto: &mut Moto) -> BTreeMap<(String, String), f64> {
    let mut sums = BTreeMap::new();
    for datum in tokio::task::block_in_place(|| moto.metric_data("AWSKinesisAgent")) {
        let key = (datum["name"].as_str().unwrap().to_owned(), moto::dimensions(&datum));
        *sums.entry(key).or_insert(0.0) += datum["sum"].as_f64().unwrap();
    }
    sums
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_metrics_reach_cloudwatch_under_its_namespace_and_destination() {
    let mut moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let bridge = CborBridge::start(moto.endpoint()).await;
    let dir = tempfile::tempdir().unwrap();
    // 10 lines the parser reads and 3 it cannot: the agent drops those (counted as unconverted).
    let mut text: String = (0..10).map(|_| format!("{APACHE}\n")).collect();
    text.push_str("not an access log line\nnor this\nnor that\n");
    fs::write(dir.path().join("access.log"), &text).unwrap();
    let config = format!(
        r#"{{"checkpointIntervalMillis": 100, "kinesis.region": "us-east-1",
            "awsAccessKeyId": "test", "awsSecretAccessKey": "test",
            "cloudwatch.endpoint": "{}", "cloudwatch.metricsBufferTimeMillis": 300,
            "flows": [{{"filePattern": "{}/*.log", "kinesisStream": "logs", "initialPosition": "START_OF_FILE",
                "dataProcessingOptions": [{{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"}}]}}]}}"#,
        bridge.endpoint(),
        dir.path().display()
    );
    let config = parse("agent.json", &config, &[], true).unwrap().config;
    let sdk = sdk_config(&config).await.unwrap();
    // The Kinesis endpoint is not used: records go to the simulated Kinesis.
    let _ = aws_backend(&config, &sdk);
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 7).unwrap();
    kinesis.create_stream("logs", 1).unwrap();
    let (stop, stopped) = mpsc::channel(2);
    let (progress, mut watching) = watch::channel(RunSummary::default());
    let mut controls = RunControls::new(stopped);
    controls.progress = progress;
    controls.cloudwatch = cloudwatch_uploader(&config, &sdk);
    assert!(controls.cloudwatch.is_some(), "cloudwatch.emitMetrics defaults to true");
    let store = CheckpointStore::open(&dir.path().join("checkpoints.redb")).unwrap();
    let backend = Arc::new(MockBackend::new(kinesis));
    let agent = tokio::spawn(run_with(config, backend.clone(), store, controls));
    tokio::time::timeout(Duration::from_secs(30), watching.wait_for(|s| s.records_delivered == 10))
        .await
        .expect("in time")
        .expect("running");

    let destination = "Destination=KinesisStream:logs";
    let key = |name: &str, dimensions: &str| (name.to_owned(), dimensions.to_owned());
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let stored = sums(&mut moto);
        if stored.get(&key("RecordsSent", destination)) == Some(&10.0) {
            break stored;
        }
        assert!(Instant::now() < deadline, "moto never got every record's metrics: {stored:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Counters are uploaded as increases: their sums over every upload are the totals.
    let sent_bytes: usize = backend.with_kinesis(|kinesis, _| {
        let (_, shard) = kinesis.all_shards().next().expect("one shard");
        shard.deaggregate(Mode::Strict).records.iter().map(|record| record.data.len()).sum()
    });
    assert_eq!(stored[&key("BytesSent", destination)], sent_bytes as f64);
    assert!(stored[&key("RecordSendAttempts", destination)] >= 10.0);
    assert_eq!(stored[&key("RecordSendErrors", destination)], 0.0);
    assert_eq!(stored[&key("ServiceErrors", destination)], 0.0);
    assert_eq!(stored[&key("RecordsDropped", &format!("{destination},Reason=unconverted"))], 3.0);
    assert_eq!(stored[&key("RecordsDropped", &format!("{destination},Reason=oversize"))], 0.0);
    assert_eq!(stored[&key("RotationAnomalies", destination)], 0.0);
    for gauge in ["BytesBehind", "FilesBehind", "CheckpointLagBytes", "OldestUnackedAgeMs"] {
        assert!(stored.contains_key(&key(gauge, destination)), "{gauge} in {stored:#?}");
    }
    stop.send(()).await.unwrap();
    let summary = agent.await.unwrap().unwrap();
    assert_eq!((summary.records_delivered, summary.records_unconverted), (10, 3));
}
