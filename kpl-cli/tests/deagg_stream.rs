//! `kpl deagg --stream` against kinesalite: records put with the library (`kpl-tokio`), read back by `kpl`
//! directly from every shard, user record for user record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{kpl_command, text};
use kpl_tests::kinesalite::{Kinesalite, client, create_stream, read_stream, sdk_config};
use kpl_tokio::{AwsBackend, KinesisProducer, ProducerConfig, ShardMapWait, StreamTarget, UserRecord};
use serde_json::Value;

/// (partition key, explicit hash key, data) of one user record.
type Put = (String, Option<String>, String);

/// Puts `records` into `stream` with the library's producer, aggregating from the first record.
async fn produce(server: &Kinesalite, stream: &str, records: &[Put]) {
    let config = ProducerConfig::builder().shard_map_wait(ShardMapWait::Hold).build().unwrap();
    let backend = AwsBackend::from_conf(sdk_config(server.endpoint()));
    let producer = KinesisProducer::builder(config, backend).seed(1).spawn().unwrap();
    let target = StreamTarget::name(stream);
    let mut results = Vec::new();
    for (key, explicit_hash_key, data) in records {
        let mut record = UserRecord::new(target.clone(), key.clone(), data.clone().into_bytes());
        if let Some(explicit_hash_key) = explicit_hash_key {
            record = record.with_explicit_hash_key(explicit_hash_key.clone());
        }
        results.push(producer.put(record).await.unwrap());
    }
    for result in results {
        result.await.unwrap();
    }
    producer.shutdown(Duration::from_secs(30)).await.unwrap();
}

/// `kpl deagg --region us-east-1 --endpoint-url <server> --utf8 args...`, with test credentials and no other
/// AWS configuration from the machine.
fn deagg(server: &Kinesalite, args: &[&str]) -> Command {
    let mut command = kpl_command();
    command
        .args(["deagg", "--region", "us-east-1", "--endpoint-url", server.endpoint(), "--utf8"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/kpl-cli-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/kpl-cli-test/credentials")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// The user records printed, as (partition key, explicit hash key, data), sorted; and each line's shard.
fn printed(output: &Output) -> (Vec<Put>, Vec<String>) {
    let lines: Vec<Value> =
        text(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let mut users: Vec<Put> = lines
        .iter()
        .map(|line| {
            (
                line["partition_key"].as_str().unwrap().to_owned(),
                line["explicit_hash_key"].as_str().map(str::to_owned),
                line["data"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    users.sort();
    let shards = lines.iter().map(|line| line["shard_id"].as_str().unwrap().to_owned()).collect();
    (users, shards)
}

fn records(range: std::ops::Range<u32>) -> Vec<Put> {
    range
        .map(|i| {
            let explicit_hash_key = (i % 10 == 0).then(|| (u128::from(i) << 100).to_string());
            (format!("customer-{}", i % 37), explicit_hash_key, format!("{{\"order\":{i}}}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deagg_reads_every_shard_from_trim_horizon_until_caught_up() {
    let server = Kinesalite::start();
    let kinesis = client(server.endpoint());
    create_stream(&kinesis, "orders", 3).await;
    let mut put = records(0..1_500);
    produce(&server, "orders", &put).await;

    let output = deagg(&server, &["--stream", "orders"]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("reading 3 shards of orders from TRIM_HORIZON until caught up"));
    let (users, shards) = printed(&output);
    put.sort();
    assert_eq!(users, put, "every user record, once");

    // Each on the shard a KCL consumer of that shard reads it from.
    let mut expected_shards = Vec::new();
    for shard in read_stream(&kinesis, "orders").await {
        assert!(shard.records.len() * 10 < shard.users.records.len(), "aggregated: {}", shard.records.len());
        expected_shards.extend(std::iter::repeat_n(shard.shard_id.clone(), shard.users.records.len()));
    }
    let mut shards = shards;
    shards.sort();
    assert_eq!(shards, expected_shards);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deagg_from_latest_for_a_duration_prints_only_what_arrives() {
    let server = Kinesalite::start();
    let kinesis = client(server.endpoint());
    create_stream(&kinesis, "clicks", 2).await;
    produce(&server, "clicks", &records(0..100)).await;

    let mut child =
        deagg(&server, &["--stream", "clicks", "--from", "latest", "--duration", "4"]).spawn().unwrap();
    // Once it says it reads, its iterators are taken: what is put now is after LATEST.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("reading 2 shards of clicks from LATEST for 4 s"), "{first}");
    let mut put = records(100..400);
    produce(&server, "clicks", &put).await;

    // The rest of standard error, read while standard output is: kpl must never block on a full pipe.
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).map(|_| rest)
    });
    let output = child.wait_with_output().unwrap();
    let rest = rest.join().unwrap().unwrap();
    assert!(output.status.success(), "{first}{rest}");
    let (users, _) = printed(&output);
    put.sort();
    assert_eq!(users, put, "the records put after the start, and only those");
}

#[test]
fn deagg_stream_errors_are_one_line() {
    let server = Kinesalite::start();
    let output = deagg(&server, &["--stream", "missing"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("kpl: ListShards on stream missing: ") && stderr.contains("ResourceNotFound"),
        "{stderr}"
    );
}
