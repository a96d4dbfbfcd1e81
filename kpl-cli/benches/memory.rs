//! Memory the producer holds per outstanding user record, beyond the record's own data and partition key.
//!
//! One run: the heap in use is counted by the global allocator (`cap`, which adds up the sizes asked of it,
//! so allocator slack is not counted), and read when the producer holds `N` records that the stream cannot
//! take yet. They are put as fast as the producer takes them into a 4-shard stream with Kinesis's per-shard
//! quota (the producer's defaults, `ShardMapWait::Hold`), against a backend that lists the shards and never
//! answers `PutRecords`: as in `kpl bench` under overload, nearly all of them wait in the producer,
//! aggregated, for their shard's quota, and the few sent stay in flight. Each record has data and a key of its own (100 B and 36 B, allocated exactly), as an
//! application's records do. The figure is the heap grown while putting them, less their data and keys,
//! per record; and the heap grown as a ratio to the data and keys held. Twice in one run, once for each way
//! to put: with a `RecordFuture` per record (`put`; the futures' channels are counted, as the producer's,
//! not the `Vec` the benchmark keeps them in), and tagged through `TaggedProducer::put_batch`, whose results
//! would go to `Completions` (no channel per record).
//!
//! ```sh
//! cargo bench -p kpl-cli --bench memory             # 500,000 records
//! cargo bench -p kpl-cli --bench memory -- 900000
//! ```
//!
//! Measures only: asserts nothing about memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::alloc::System;
use std::fmt::Write;
use std::time::Duration;

use bytes::Bytes;
use cap::Cap;
use kpl_tokio::{KinesisProducer, ProducerConfig, RecordFuture, ShardMapWait, StreamTarget, UserRecord};

use self::support::{NullBackend, STREAM, shard_layout};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const RECORD_SIZE: usize = 100;
const KEY_SIZE: usize = 36;

/// A 36-byte key of its own, allocated exactly.
fn key(n: usize) -> String {
    let mut key = String::with_capacity(KEY_SIZE);
    write!(key, "{n:036}").unwrap();
    key
}

/// 100 bytes of data of its own, allocated exactly (a `Bytes` that owns its `Vec`).
fn data(n: usize) -> Bytes {
    let mut data = vec![b'x'; RECORD_SIZE];
    data[..8].copy_from_slice(&(n as u64).to_le_bytes());
    Bytes::from(data)
}

/// The process's resident memory (`VmRSS`), in bytes, where Linux tells it.
fn resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// How the records are put.
#[derive(Debug, Clone, Copy)]
enum Api {
    /// `KinesisProducer::put`: a `RecordFuture` per record (its channel is counted, as the producer's).
    Futures,
    /// `TaggedProducer::put_batch` with `u64` tags, results through `Completions`: no channel per record.
    Tagged,
}

const PUT_BATCH: usize = 64;

fn main() {
    let records: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(500_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("{records} records of {RECORD_SIZE} B data and {KEY_SIZE} B key outstanding");
    println!("  data and keys held    {}", mib(records as f64 * (RECORD_SIZE + KEY_SIZE) as f64));
    for api in [Api::Futures, Api::Tagged] {
        runtime.block_on(measure(api, records));
    }
    println!("  peak heap of the run  {}", mib(ALLOCATOR.max_allocated() as f64));
}

/// Puts `records` records through `api` into a producer that cannot send them, and prints what the heap
/// grew by.
async fn measure(api: Api, records: usize) {
    // Without the drain-time limit (it would hold the puts back at about 40 MiB, 10 s of the 4 shards'
    // quota): this measures what each held record costs, whatever holds it.
    let config = ProducerConfig::builder()
        .shard_map_wait(ShardMapWait::Hold)
        .drain_window_percent(0)
        .max_outstanding_records(1_000_000)
        .build()
        .unwrap();
    assert!(records as u64 <= config.max_outstanding_records(), "more records than the producer holds");
    let backend = NullBackend { shards: shard_layout(), stall_puts: true };
    let producer = KinesisProducer::builder(config, backend).seed(1).spawn().unwrap();
    let (tagged, completions) = producer.with_completions::<u64>();
    let stream = StreamTarget::name(STREAM);
    // The shard map is in before the count starts: it is the producer's, not the records'. A first record,
    // left out of the count, makes the producer list the stream.
    let first = producer.put(UserRecord::new(stream.clone(), key(0), data(0))).await.unwrap();
    while producer.stats().await.unwrap().list_shards_requests == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut futures: Vec<RecordFuture> = Vec::with_capacity(records);
    let (heap_before, resident_before) = (ALLOCATOR.allocated(), resident());

    match api {
        Api::Futures => {
            for n in 1..=records {
                futures.push(producer.put(UserRecord::new(stream.clone(), key(n), data(n))).await.unwrap());
                if n % PUT_BATCH == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
        Api::Tagged => {
            for start in (1..=records).step_by(PUT_BATCH) {
                let end = (start + PUT_BATCH).min(records + 1);
                let batch = (start..end)
                    .map(|n| (n as u64, UserRecord::new(stream.clone(), key(n), data(n))))
                    .collect();
                assert!(tagged.put_batch(batch).await.is_empty());
                tokio::task::yield_now().await;
            }
        }
    }
    // Answered after the driver took every put before it.
    let stats = producer.stats().await.unwrap();
    let (heap_after, resident_after) = (ALLOCATOR.allocated(), resident());

    assert_eq!(stats.user_records_received, records as u64 + 1);
    drop(first);
    let held = records as f64 * (RECORD_SIZE + KEY_SIZE) as f64;
    let grown = heap_after as f64 - heap_before as f64;
    println!(
        "{api:?} (put {})",
        match api {
            Api::Futures => "with a RecordFuture per record",
            Api::Tagged => "in batches of 64 through TaggedProducer::put_batch",
        }
    );
    println!("  heap grown            {}  ({:.3} x the data and keys)", mib(grown), grown / held);
    println!(
        "  overhead per record   {:.0} B beyond data and key (heap, requested sizes)",
        (grown - held) / records as f64
    );
    if let (Some(before), Some(after)) = (resident_before, resident_after) {
        let grown = after as f64 - before as f64;
        println!(
            "  resident grown        {}  ({:.3} x; {:.0} B per record beyond data and key)",
            mib(grown),
            grown / held,
            (grown - held) / records as f64
        );
    }
    drop(futures);
    drop((tagged, completions));
    // What is still queued fails at once: only the measurement mattered.
    let _ = producer.shutdown(Duration::ZERO).await;
}
