//! The producer's rate through three backends, in one run, so each reads as a ratio to the first:
//!
//! - `null`: a [`Backend`] that answers every request at once, in process: the producer alone.
//! - `mock`: the in-process simulated Kinesis as `kpl bench --shard-limits off` uses it (20 ms ± 10 ms
//!   latency, no shard quota, committed records counted and not kept).
//! - `aws`: [`AwsBackend`], the real wire path (SigV4 signing, JSON with base64 data, HTTP/1.1 through the
//!   SDK's client), to a loopback sink on 127.0.0.1: a small hyper server in this process, on the same two
//!   runtime threads, that answers `ListShards` and `PutRecords` at once (each entry routed to its shard by
//!   its explicit hash key, as Kinesis does).
//!
//! 100-byte records with 36-byte partition keys (10,000 distinct), 4 shards, the producer's defaults with
//! `ShardMapWait::Hold` and the per-shard quota lifted; two tasks put, on a 2-worker tokio runtime. The rate
//! counts from the first `put` to the last record's result. Each run also reports the process's CPU time
//! per record (user and system, all threads, the sink's included, from `/proc/self/stat` on Linux): the
//! producer's driver is one task, so a backend's cost can hide in the other core's idle time and show in the
//! CPU time before it shows in the rate; on a shared machine it also varies less than the rate.
//!
//! ```sh
//! cargo bench -p kpl-cli --bench wire_path                        # 3 rounds of 1,000,000 records each
//! cargo bench -p kpl-cli --bench wire_path -- aws 2000000 rounds=1 # one backend (names: null, mock, aws)
//! ```
//!
//! Measures only: asserts nothing about speed (it does check that every record was written).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kpl_core::ShardDescription;
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tokio::{
    AwsBackend, Backend, KinesisProducer, MockBackend, ProducerConfig, ShardMapWait, StreamTarget, UserRecord,
};
use serde::Deserialize;
use tokio::net::TcpListener;

use self::support::{NullBackend, SHARDS, STREAM, hash_key, route, sequence_number, shard_layout};

const RECORD_SIZE: usize = 100;
const DISTINCT_KEYS: usize = 10_000;
const PUTTERS: usize = 2;

/// The part of a `PutRecords` body the sink reads (the data is skipped).
#[derive(Deserialize)]
struct PutRecordsInput<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<PutRecordsInputEntry<'a>>,
}

#[derive(Deserialize)]
struct PutRecordsInputEntry<'a> {
    #[serde(rename = "ExplicitHashKey", borrow)]
    explicit_hash_key: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "PartitionKey", borrow)]
    partition_key: std::borrow::Cow<'a, str>,
}

/// The loopback sink's answer to one request: the JSON body, or an HTTP 400 for what it does not serve.
fn answer(shards: &[ShardDescription], target: &str, body: &[u8]) -> (u16, String) {
    match target {
        "Kinesis_20131202.ListShards" => {
            let listed: Vec<String> = shards
                .iter()
                .map(|shard| {
                    format!(
                        r#"{{"ShardId":"{}","HashKeyRange":{{"StartingHashKey":"{}","EndingHashKey":"{}"}},"SequenceNumberRange":{{"StartingSequenceNumber":"49000000000000000000000000000000000000000000000000000000"}}}}"#,
                        shard.shard_id, shard.starting_hash_key, shard.ending_hash_key
                    )
                })
                .collect();
            (200, format!(r#"{{"Shards":[{}]}}"#, listed.join(",")))
        }
        "Kinesis_20131202.PutRecords" => {
            let input: PutRecordsInput = serde_json::from_slice(body).unwrap();
            let mut out = String::with_capacity(40 + input.records.len() * 110);
            out.push_str(r#"{"FailedRecordCount":0,"Records":["#);
            for (i, entry) in input.records.iter().enumerate() {
                let shard = route(shards, hash_key(entry.explicit_hash_key.as_deref(), &entry.partition_key));
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!(
                    r#"{{"SequenceNumber":"{}","ShardId":"{}"}}"#,
                    sequence_number(),
                    shard.shard_id
                ));
            }
            out.push_str("]}");
            (200, out)
        }
        other => (400, format!(r#"{{"__type":"UnknownOperationException","message":"{other}"}}"#)),
    }
}

/// Starts the loopback sink on the current runtime; returns its endpoint (`http://127.0.0.1:PORT`).
async fn start_sink(shards: Arc<Vec<ShardDescription>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            let shards = Arc::clone(&shards);
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let shards = Arc::clone(&shards);
                async move {
                    let target = request
                        .headers()
                        .get("x-amz-target")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let (status, json) = answer(&shards, &target, &body);
                    let response = hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/x-amz-json-1.1")
                        .body(Full::new(Bytes::from(json)))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    endpoint
}

fn config() -> ProducerConfig {
    let unlimited = u64::from(u32::MAX);
    ProducerConfig::builder()
        .shard_map_wait(ShardMapWait::Hold)
        .shard_max_records_per_second(unlimited)
        .shard_max_bytes_per_second(unlimited)
        .build()
        .unwrap()
}

/// The CPU time the process used so far (user and system, every thread), from `/proc/self/stat` in clock
/// ticks of 1/100 s (`USER_HZ`, fixed at 100 by the Linux ABI); `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime
    // and stime are fields 14 and 15 (proc(5)).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some(Duration::from_millis((ticks(14)? + ticks(15)?) * 10))
}

/// One run's figures.
#[derive(Clone, Copy)]
struct Figures {
    /// Records per second, from the first `put` to the last result.
    rate: f64,
    /// The process's CPU time per record over the same span, in microseconds (`None` without `/proc`).
    cpu_us_per_record: Option<f64>,
}

/// Puts `records` records and waits for every result.
async fn run(backend: impl Backend, records: usize) -> Figures {
    let producer = KinesisProducer::builder(config(), backend).seed(1).spawn().unwrap();
    let keys: Arc<Vec<String>> = Arc::new((0..DISTINCT_KEYS).map(|i| format!("{i:036}")).collect());
    let data = Bytes::from(vec![b'x'; RECORD_SIZE]);
    let cpu_before = cpu_time();
    let started = Instant::now();
    let putters: Vec<_> = (0..PUTTERS)
        .map(|putter| {
            let (producer, keys, data) = (producer.clone(), Arc::clone(&keys), data.clone());
            tokio::spawn(async move {
                let stream = StreamTarget::name(STREAM);
                let mut futures = Vec::with_capacity(records / PUTTERS + 1);
                for i in (putter..records).step_by(PUTTERS) {
                    let record = UserRecord::new(stream.clone(), keys[i % keys.len()].clone(), data.clone());
                    futures.push(producer.put(record).await.unwrap());
                    if i % 64 == putter {
                        // `put` does not yield while there is room: let the driver run.
                        tokio::task::yield_now().await;
                    }
                }
                let mut failed = 0usize;
                for future in futures {
                    failed += usize::from(future.await.is_err());
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for putter in putters {
        failed += putter.await.unwrap();
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    let cpu = cpu_time().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    assert_eq!(failed, 0, "records failed");
    producer.shutdown(Duration::from_secs(60)).await.unwrap();
    Figures { rate, cpu_us_per_record: cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / records as f64) }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `2.31 µs CPU/record`, or nothing without `/proc`.
fn cpu_text(cpu_us_per_record: Option<f64>) -> String {
    cpu_us_per_record.map(|cpu| format!("  {cpu:.2} µs CPU/record")).unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let records = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let rounds = args.iter().find_map(|a| a.strip_prefix("rounds=")?.parse().ok()).unwrap_or(3);
    let mut backends: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| ["null", "mock", "aws"].contains(a)).collect();
    if backends.is_empty() {
        backends = vec!["null", "mock", "aws"];
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let shards = Arc::new(shard_layout());
    let endpoint = runtime.block_on(start_sink(Arc::clone(&shards)));
    println!(
        "{records} records of {RECORD_SIZE} B per run, {rounds} rounds, {SHARDS} shards, sink at {endpoint}"
    );
    let mut figures: Vec<Vec<Figures>> = vec![Vec::new(); backends.len()];
    for round in 0..rounds {
        for (which, name) in backends.iter().enumerate() {
            let run_figures = runtime.block_on(async {
                match *name {
                    "null" => run(NullBackend { shards: shards.to_vec(), stall_puts: false }, records).await,
                    "mock" => {
                        let config =
                            MockConfig { shard_limits: None, retain_committed: false, ..MockConfig::calm() };
                        let mut kinesis = MockKinesis::new(config, 1).unwrap();
                        kinesis.create_stream(STREAM, SHARDS).unwrap();
                        run(MockBackend::new(kinesis), records).await
                    }
                    _ => {
                        let backend = AwsBackend::from_conf(kpl_tests::kinesalite::sdk_config(&endpoint));
                        run(backend, records).await
                    }
                }
            });
            println!(
                "round {round}: {name:<5} {:>10.0} records/s{}",
                run_figures.rate,
                cpu_text(run_figures.cpu_us_per_record)
            );
            figures[which].push(run_figures);
        }
    }
    // Medians of each figure on its own; the CPU time only when every run had it.
    let medians: Vec<Figures> = figures
        .iter()
        .map(|runs| Figures {
            rate: median(runs.iter().map(|run| run.rate).collect()),
            cpu_us_per_record: runs
                .iter()
                .map(|run| run.cpu_us_per_record)
                .collect::<Option<Vec<f64>>>()
                .map(median),
        })
        .collect();
    println!("median of {rounds} rounds:");
    let baseline = medians[0];
    for (name, run) in backends.iter().zip(&medians) {
        let cpu_ratio = run
            .cpu_us_per_record
            .zip(baseline.cpu_us_per_record)
            .map(|(cpu, base)| format!(" ({:.3} x {}'s CPU)", cpu / base, backends[0]))
            .unwrap_or_default();
        println!(
            "  {name:<5} {:>10.0} records/s  {:.3} x {}{}{cpu_ratio}",
            run.rate,
            run.rate / baseline.rate,
            backends[0],
            cpu_text(run.cpu_us_per_record)
        );
    }
}
