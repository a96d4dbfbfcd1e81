//! `kpl produce` as a process against kinesalite, read back with GetRecords and deaggregated. The server
//! and the SDK helpers come from the workspace's test harness, `kpl_tests::kinesalite` (it installs
//! kinesalite from npm into `target/kinesalite` on first use).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Output;

use common::{kpl_command, run, text};
use kpl_tests::kinesalite::{Kinesalite, client, read_stream};

async fn create_stream(server: &Kinesalite, name: &str, shards: i32) {
    kpl_tests::kinesalite::create_stream(&client(server.endpoint()), name, shards).await;
}

/// Runs `kpl produce --region us-east-1 --endpoint-url <server> args...` with `stdin`, with test
/// credentials and no other AWS configuration from the machine.
fn produce(server: &Kinesalite, args: &[&str], stdin: Vec<u8>) -> Output {
    run(
        kpl_command()
            .args(["produce", "--region", "us-east-1", "--endpoint-url", server.endpoint()])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/kpl-cli-test/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/kpl-cli-test/credentials")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN"),
        &stdin,
    )
}

/// Every user record in the stream, as a KCL consumer of each shard reads it: (partition key, data), sorted.
async fn stream_contents(server: &Kinesalite, stream: &str) -> Vec<(String, Vec<u8>)> {
    let mut users = Vec::new();
    for shard in read_stream(&client(server.endpoint()), stream).await {
        assert!(shard.users.rejected.is_empty(), "{}: {:?}", shard.shard_id, shard.users.rejected);
        users.extend(
            shard.users.records.into_iter().map(|user| (user.partition_key.to_string(), user.data.to_vec())),
        );
    }
    users.sort();
    users
}

#[tokio::test]
async fn every_line_reaches_the_stream_keyed_by_its_json_field() {
    let server = Kinesalite::start();
    create_stream(&server, "lines", 3).await;
    let n = 2_000;
    let input: String = (0..n).map(|i| format!("{{\"user\":\"user-{}\",\"n\":{i}}}\r\n", i % 37)).collect();
    let output = produce(&server, &["--stream", "lines", "--key-field", "user"], input.into_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().next().unwrap_or_default().split(' ').next(), Some("2000"));

    let users = stream_contents(&server, "lines").await;
    let mut expected: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (format!("user-{}", i % 37), format!("{{\"user\":\"user-{}\",\"n\":{i}}}", i % 37).into_bytes())
        })
        .collect();
    expected.sort();
    assert_eq!(users.len(), expected.len());
    assert!(users == expected, "the stream does not hold exactly the lines put");
}

#[tokio::test]
async fn length_delimited_binary_records_keep_every_byte() {
    let server = Kinesalite::start();
    create_stream(&server, "frames", 2).await;
    let records: Vec<Vec<u8>> =
        (0..500u32).map(|i| (0..i % 300).map(|j| (i.wrapping_mul(7) + j) as u8).collect()).collect();
    let mut input = Vec::new();
    for record in &records {
        input.extend(u32::try_from(record.len()).unwrap().to_be_bytes());
        input.extend(record);
    }
    let output = produce(&server, &["--stream", "frames", "--framing", "length"], input);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let users = stream_contents(&server, "frames").await;
    // Random partition keys: spread over keys, each record under its own.
    let keys: BTreeMap<&str, usize> = users.iter().fold(BTreeMap::new(), |mut keys, (key, _)| {
        *keys.entry(key.as_str()).or_default() += 1;
        keys
    });
    assert_eq!(keys.len(), records.len());
    let mut data: Vec<Vec<u8>> = users.into_iter().map(|(_, data)| data).collect();
    let mut expected = records;
    data.sort();
    expected.sort();
    assert!(data == expected, "the stream does not hold exactly the records put");
}

#[tokio::test]
async fn failed_records_are_reported_one_line_each_and_fail_the_run() {
    let server = Kinesalite::start();
    create_stream(&server, "mixed", 1).await;

    // Record 2 is over 1 MiB: refused, the others written.
    let big = "x".repeat(1024 * 1024 + 10);
    let input = format!("first\n{big}\nthird\n");
    let output = produce(&server, &["--stream", "mixed", "--key", "k"], input.into_bytes());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr: Vec<&str> = text(&output.stderr).lines().collect();
    assert_eq!(
        stderr,
        ["record 2: record of 1048587 bytes is over the 1048576 byte limit", "kpl: 1 of 3 records failed"]
    );
    let users = stream_contents(&server, "mixed").await;
    assert_eq!(users, [("k".to_owned(), b"first".to_vec()), ("k".to_owned(), b"third".to_vec())]);

    // A stream that does not exist: every record fails, with Kinesis's reason. The settings file is read,
    // and what kpl does not use in it is warned about.
    let config = std::env::temp_dir().join(format!("kpl-cli-produce-{}.properties", std::process::id()));
    std::fs::write(&config, "RecordTtl = 3000\nLogLevel = info\nBogusSetting = 1\n").unwrap();
    let output =
        produce(&server, &["--stream", "missing", "--config", config.to_str().unwrap()], b"a\nb\n".to_vec());
    std::fs::remove_file(&config).unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    let failures: Vec<&str> = stderr.lines().filter(|line| line.starts_with("record ")).collect();
    assert_eq!(failures.len(), 2, "{stderr}");
    assert!(failures.iter().all(|line| line.contains("ResourceNotFoundException")), "{stderr}");
    assert!(stderr.contains("warning") && stderr.contains("BogusSetting"), "{stderr}");
    assert!(stderr.contains("not used by kpl produce: LogLevel"), "{stderr}");
    assert_eq!(stderr.lines().last(), Some("kpl: 2 of 2 records failed"));
}
