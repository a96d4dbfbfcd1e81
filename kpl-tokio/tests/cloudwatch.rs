//! The CloudWatch uploader against a real local server implementing `PutMetricData`: moto, installed and
//! started by the test setup (`support/moto.rs`), behind a CBOR-to-JSON protocol bridge since the SDK
//! speaks only CBOR to CloudWatch and moto only JSON and awsQuery (`support/cbor_bridge.rs`). What moto
//! stored is read from its own backend and compared, exactly, with what the producer did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use kpl_tokio::{CloudWatchUploader, MetricsConfig, MetricsGranularity, MetricsLevel};
use serde_json::Value;
use support::cbor_bridge::CborBridge;
use support::metrics_workload::{producer, put_records};
use support::moto::Moto;

const UPLOAD_DELAY: Duration = Duration::from_millis(300);

fn client(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        // The bridge reads plain CBOR (the SDK gzips large PutMetricData bodies otherwise).
        .disable_request_compression(true)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

/// (count, sum, min, max) per (metric, dimensions as `k=v,k=v`), summed over moto's data; and units.
#[derive(Debug, Default, PartialEq)]
struct Stored {
    stats: BTreeMap<(String, String), (f64, f64, f64, f64)>,
    units: BTreeMap<String, String>,
    data: usize,
}

fn stored(moto: &mut Moto, namespace: &str) -> Stored {
    let data = tokio::task::block_in_place(|| moto.metric_data(namespace));
    let mut stored = Stored { data: data.len(), ..Stored::default() };
    for datum in data {
        let name = datum["name"].as_str().unwrap().to_owned();
        let number = |field: &str| datum[field].as_f64().unwrap_or_else(|| panic!("{field} of {datum}"));
        let entry = stored.stats.entry((name.clone(), support::moto::dimensions(&datum))).or_insert((
            0.0,
            0.0,
            f64::MAX,
            f64::MIN,
        ));
        entry.0 += number("count");
        entry.1 += number("sum");
        entry.2 = entry.2.min(number("min"));
        entry.3 = entry.3.max(number("max"));
        stored.units.insert(
            name,
            datum["unit"].as_str().map(str::to_owned).unwrap_or_else(|| Value::Null.to_string()),
        );
    }
    stored
}

/// Waits until `ready` holds for what moto stored, for up to 30 s.
async fn wait_for(moto: &mut Moto, namespace: &str, ready: impl Fn(&Stored) -> bool) -> Stored {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = stored(moto, namespace);
        if ready(&stored) {
            return stored;
        }
        assert!(Instant::now() < deadline, "moto never got the expected metrics; it holds {stored:#?}");
        tokio::time::sleep(UPLOAD_DELAY).await;
    }
}

fn stat(stored: &Stored, name: &str, dimensions: &str) -> (f64, f64) {
    let found = stored.stats.get(&(name.to_owned(), dimensions.to_owned()));
    let (count, sum, ..) =
        found.unwrap_or_else(|| panic!("no {name} [{dimensions}] in {:#?}", stored.stats.keys()));
    (*count, *sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_the_kpl_metrics_in_the_kpl_dimension_order_exactly_once() {
    let mut moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let bridge = CborBridge::start(moto.endpoint()).await;
    let producer = producer();
    let detailed = MetricsConfig::default()
        .namespace("KplDetailed")
        .and_then(|c| c.upload_delay(UPLOAD_DELAY))
        .and_then(|c| c.extra_dimension("Host", "test-host", MetricsGranularity::Global))
        .and_then(|c| c.extra_dimension("Tier", "gold", MetricsGranularity::Stream))
        .and_then(|c| c.extra_dimension("Az", "az-1", MetricsGranularity::Shard))
        .unwrap();
    let summary = MetricsConfig::default()
        .namespace("KplSummary")
        .and_then(|c| c.upload_delay(UPLOAD_DELAY))
        .unwrap()
        .level(MetricsLevel::Summary)
        .granularity(MetricsGranularity::Global);
    let uploader = CloudWatchUploader::new(client(bridge.endpoint()), detailed).spawn(&producer).unwrap();
    let summary_uploader =
        CloudWatchUploader::new(client(bridge.endpoint()), summary).spawn(&producer).unwrap();
    put_records(&producer).await;

    let all = |name: &'static str| {
        move |stored: &Stored| {
            stored.stats.get(&(name.to_owned(), String::new())).is_some_and(|s| s.0 == 10.0)
        }
    };
    // The first second's data can take several PutMetricData calls: wait for every metric checked below.
    let checked = [
        "KinesisRecordsDataPut",
        "BufferingTime",
        "RequestTime",
        "UserRecordsPending",
        "UserRecordsPerKinesisRecord",
        "KinesisRecordsPerPutRecordsRequest",
        "UserRecordsPerPutRecordsRequest",
    ];
    let first = wait_for(&mut moto, "KplDetailed", |stored| {
        all("UserRecordsPut")(stored)
            && all("UserRecordsReceived")(stored)
            && checked.iter().all(|name| stored.units.contains_key(*name))
    })
    .await;
    // Every prefix of the KPL's dimension list is a metric: [], [Host], ..., [Host, StreamName, Tier].
    let (host, stream) = ("Host=test-host", "Host=test-host,StreamName=orders");
    for dims in ["", host, stream, &format!("{stream},Tier=gold")] {
        assert_eq!(stat(&first, "UserRecordsReceived", dims), (10.0, 10.0), "[{dims}]");
        assert_eq!(stat(&first, "UserRecordsPut", dims), (10.0, 10.0), "[{dims}]");
        assert_eq!(stat(&first, "UserRecordsDataPut", dims), (10.0, 160.0), "[{dims}]");
        assert_eq!(stat(&first, "RetriesPerRecord", dims), (10.0, 0.0), "[{dims}]");
    }
    let shard = |index: u32| format!("{stream},Tier=gold,ShardId=shardId-{index:012}");
    for dims in [shard(0), format!("{},Az=az-1", shard(0))] {
        assert_eq!(stat(&first, "UserRecordsPut", &dims), (6.0, 6.0), "[{dims}]");
        assert_eq!(stat(&first, "UserRecordsDataPut", &dims), (6.0, 60.0), "[{dims}]");
    }
    assert_eq!(stat(&first, "UserRecordsPut", &shard(1)), (4.0, 4.0));
    assert_eq!(stat(&first, "UserRecordsDataPut", &shard(1)), (4.0, 100.0));
    // UserRecordsReceived is a stream-level metric: no shard node.
    assert!(
        !first.stats.keys().any(|(name, dims)| name == "UserRecordsReceived" && dims.contains("ShardId"))
    );
    let (kinesis_records, written) = stat(&first, "KinesisRecordsPut", "");
    assert_eq!(kinesis_records, written, "every Kinesis record written");
    assert_eq!(stat(&first, "AllErrors", "").1, 0.0);
    assert!(!first.stats.keys().any(|(name, _)| name == "ErrorsByCode"));
    assert_eq!(first.units["UserRecordsDataPut"], "Bytes");
    assert_eq!(first.units["KinesisRecordsDataPut"], "Bytes");
    assert_eq!(first.units["BufferingTime"], "Milliseconds");
    assert_eq!(first.units["RequestTime"], "Milliseconds");
    assert_eq!(first.units["UserRecordsPending"], "Count");
    for name in [
        "UserRecordsPerKinesisRecord",
        "KinesisRecordsPerPutRecordsRequest",
        "UserRecordsPerPutRecordsRequest",
    ] {
        assert!(first.stats.contains_key(&(name.to_owned(), String::new())), "{name}");
    }

    // Each second is uploaded once: later uploads add nothing to the records' metrics.
    tokio::time::sleep(UPLOAD_DELAY * 4).await;
    let later = stored(&mut moto, "KplDetailed");
    for (key, value) in &first.stats {
        if key.0 != "UserRecordsPending" {
            assert_eq!(later.stats.get(key), Some(value), "{key:?}");
        }
    }
    let stats = uploader.stats();
    assert_eq!(stats.failed_requests, 0);
    assert_eq!(stats.data as usize, later.data, "every datum sent is stored");
    assert!(stats.requests as usize >= later.data.div_ceil(20), "{stats:?}: at most 20 data a request");
    assert!(bridge.forwarded.load(std::sync::atomic::Ordering::SeqCst) >= stats.requests as usize);

    // Summary level, global granularity: summary metrics only, no stream or shard dimension.
    let summary = wait_for(&mut moto, "KplSummary", all("UserRecordsPut")).await;
    assert!(summary.stats.keys().all(|(_, dims)| dims.is_empty()), "{:?}", summary.stats.keys());
    let names: Vec<&str> = summary.stats.keys().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["AllErrors", "BufferingTime", "KinesisRecordsPut", "UserRecordsPut"]);
    assert_eq!(stat(&summary, "UserRecordsPut", ""), (10.0, 10.0));
    summary_uploader.stop();
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_uploads_are_counted_and_never_hold_records_back() {
    // A server that accepts connections and closes them at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let refusing = tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            drop(connection);
        }
    });
    let producer = producer();
    let config = MetricsConfig::default().upload_delay(UPLOAD_DELAY).unwrap();
    let uploader = CloudWatchUploader::new(client(&endpoint), config)
        .request_timeout(Duration::from_secs(2))
        .spawn(&producer)
        .unwrap();
    put_records(&producer).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while uploader.stats().failed_requests == 0 {
        assert!(Instant::now() < deadline, "no failed upload counted: {:?}", uploader.stats());
        tokio::time::sleep(UPLOAD_DELAY).await;
    }
    // Records still flow while uploads fail.
    put_records(&producer).await;
    let stats = uploader.stats();
    assert_eq!((stats.requests, stats.data), (0, 0));
    producer.shutdown(Duration::from_secs(5)).await.unwrap();
    refusing.abort();
}
