//! kinesalite, a Kinesis-compatible server, installed by the tests themselves and run per test, and SDK
//! helpers to create streams on it and read them back (feature `kinesalite`; used by the kpl-tokio and
//! kpl-cli tests).
//!
//! [`Kinesalite::start`] installs `kinesalite@3.3.3` from npm into `target/kinesalite` (under the workspace
//! root) on first use, then starts a server on 127.0.0.1 with a port the OS chooses. The install is
//! idempotent and safe when test processes race ([`crate::install`]). Anything missing (node, npm, the
//! registry) fails the test with what the tools said: these tests never skip.
//!
//! The server dies with its guard (even when the test panics), and with the test process: it exits when its
//! standard input, held by the guard, closes.
// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use kpl_deagg::{Batch, Deaggregator, Mode, ReceivedRecord};

use crate::install::{install_once, run};

/// The package installed.
const PACKAGE: &str = "kinesalite@3.3.3";

/// Starts kinesalite on loopback with short stream state transitions, prints the port, and exits when its
/// standard input closes.
const SERVER: &str = r#"
const kinesalite = require('kinesalite');
const server = kinesalite({ createStreamMs: 10, deleteStreamMs: 10, updateStreamMs: 10, shardLimit: 100 });
server.listen(0, '127.0.0.1', (err) => {
  if (err) { console.error(err); process.exit(1); }
  console.log('PORT ' + server.address().port);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
"#;

/// A running kinesalite; stopped when dropped.
pub struct Kinesalite {
    child: Child,
    endpoint: String,
}

impl Kinesalite {
    /// Installs kinesalite if needed and starts a server. Panics, with the reason, if it cannot.
    pub fn start() -> Kinesalite {
        let dir = ensure_installed().unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new("node")
            .arg("-e")
            .arg(SERVER)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (the kinesalite tests need Node.js on PATH): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, port) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = port.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(port) = line.trim().strip_prefix("PORT ").and_then(|p| p.parse::<u16>().ok()) else {
            let _ = child.kill();
            let output = child.wait_with_output().expect("kinesalite exited");
            panic!(
                "kinesalite did not start (first line {line:?}):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        Kinesalite { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_ready(dir: &Path, marker: &str) -> Option<PathBuf> {
    (marker == PACKAGE && dir.join("node_modules/kinesalite/package.json").is_file()).then(|| dir.to_owned())
}

/// `target/kinesalite` holding kinesalite, installed now if it is not there yet.
fn ensure_installed() -> Result<PathBuf, String> {
    install_once("kinesalite", is_ready, |staging| {
        fs::create_dir_all(staging).map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
        let manifest =
            r#"{ "name": "kpl-kinesalite", "private": true, "description": "kinesalite for the kpl tests" }"#;
        fs::write(staging.join("package.json"), manifest)
            .map_err(|e| format!("cannot write package.json: {e}"))?;
        let hint = "(the kinesalite tests need Node.js and npm)";
        run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", PACKAGE])
                .current_dir(staging),
            "npm install kinesalite",
        )
        .map_err(|e| format!("{e}\n{hint}"))?;
        run(
            Command::new("node").args(["-e", "require('kinesalite')"]).current_dir(staging),
            "loading kinesalite",
        )
        .map_err(|e| format!("{e}\n{hint}"))?;
        Ok(PACKAGE.to_owned())
    })
}

/// SDK configuration for a local server: static test credentials, plain http.
pub fn sdk_config(endpoint: &str) -> aws_sdk_kinesis::Config {
    aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "static"))
        .endpoint_url(endpoint)
        .build()
}

/// A client for setting up and reading streams.
pub fn client(endpoint: &str) -> Client {
    Client::from_conf(sdk_config(endpoint))
}

/// Creates a stream and waits until it is active.
pub async fn create_stream(client: &Client, name: &str, shards: i32) {
    client.create_stream().stream_name(name).shard_count(shards).send().await.unwrap();
    wait_active(client, name).await;
}

/// Waits until a stream is active (after creation or resharding).
pub async fn wait_active(client: &Client, name: &str) {
    for _ in 0..200 {
        let summary = client.describe_stream_summary().stream_name(name).send().await.unwrap();
        if summary.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("stream {name} did not become active");
}

/// One shard as read back.
pub struct ShardContents {
    /// The shard's id.
    pub shard_id: String,
    /// The shard's hash key range.
    pub range: RangeInclusive<u128>,
    /// Whether the shard is open (not closed by resharding).
    pub is_open: bool,
    /// The Kinesis records, in sequence-number order.
    pub records: Vec<ReceivedRecord>,
    /// The user records a KCL consumer of this shard sees.
    pub users: Batch,
}

/// Every shard of a stream (closed ones too) and everything in it, deaggregated with the KCL's filter.
pub async fn read_stream(client: &Client, name: &str) -> Vec<ShardContents> {
    let listing = client.list_shards().stream_name(name).send().await.unwrap();
    let mut shards = Vec::new();
    for shard in listing.shards() {
        let range = shard.hash_key_range().unwrap();
        let range: RangeInclusive<u128> =
            range.starting_hash_key().parse().unwrap()..=range.ending_hash_key().parse().unwrap();
        let is_open = shard.sequence_number_range().unwrap().ending_sequence_number().is_none();
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_owned);
        let mut records = Vec::new();
        while let Some(current) = iterator {
            let page = client.get_records().shard_iterator(current).limit(10_000).send().await.unwrap();
            let got = page.records();
            records.extend(got.iter().map(|record| ReceivedRecord {
                data: bytes::Bytes::copy_from_slice(record.data().as_ref()),
                partition_key: record.partition_key().unwrap_or_default().to_owned(),
                explicit_hash_key: None,
                sequence_number: record.sequence_number().to_owned(),
            }));
            iterator = if got.is_empty() { None } else { page.next_shard_iterator().map(str::to_owned) };
        }
        let users = Deaggregator::new(Mode::Strict)
            .with_hash_range(range.clone())
            .deaggregate_all(records.iter().cloned());
        shards.push(ShardContents { shard_id: shard.shard_id().to_owned(), range, is_open, records, users });
    }
    shards
}
