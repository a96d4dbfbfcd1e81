//! What the benchmark sees as it runs, in counters shared by the putting tasks, the result trackers and the
//! backend: per shard, user records (from each record's receipt) and Kinesis records, bytes and throttled
//! entries (from each `PutRecords` and its response); requests in flight; records outstanding.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kpl_core::{PutRecordsEntry, PutRecordsResultEntry};
use kpl_tokio::{Backend, Request, Response, ShardId};

/// The error code of an entry refused by its shard's write limits.
const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// A counter that only grows, read at any time.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A level that goes up and down, with the highest it reached.
#[derive(Debug, Default)]
pub struct Level {
    now: AtomicU64,
    peak: AtomicU64,
}

impl Level {
    pub fn rise(&self, n: u64) -> u64 {
        let level = self.now.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(level, Ordering::Relaxed);
        level
    }

    pub fn fall(&self, n: u64) {
        self.now.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// User records written to it.
    pub user_records: Counter,
    /// Their data, in bytes.
    pub user_bytes: Counter,
    /// Kinesis records (`PutRecords` entries) written to it.
    pub kinesis_records: Counter,
    /// Their partition keys and data, in bytes: what the shard's 1 MiB/s quota counts.
    pub kinesis_bytes: Counter,
    /// Entries it refused with `ProvisionedThroughputExceededException`.
    pub throttled: Counter,
}

/// The shards of the stream, in `ListShards` order, with their hash-key ranges.
#[derive(Debug)]
pub struct Shards {
    ids: Vec<ShardId>,
    ranges: Vec<(u128, u128)>,
    by_id: HashMap<ShardId, usize>,
}

impl Shards {
    /// `shards`: each shard's id and inclusive hash-key range.
    pub fn new(shards: Vec<(ShardId, u128, u128)>) -> Self {
        let by_id = shards.iter().enumerate().map(|(i, (id, _, _))| (id.clone(), i)).collect();
        let ranges = shards.iter().map(|&(_, start, end)| (start, end)).collect();
        Self { ids: shards.into_iter().map(|(id, _, _)| id).collect(), ranges, by_id }
    }

    pub fn ids(&self) -> &[ShardId] {
        &self.ids
    }

    fn index(&self, id: &ShardId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The shard an entry goes to, by its explicit hash key (the producer always sets one, as the KPL does).
    fn route(&self, entry: &PutRecordsEntry) -> Option<usize> {
        let hash_key: u128 = entry.explicit_hash_key.as_deref()?.parse().ok()?;
        self.ranges.iter().position(|&(start, end)| (start..=end).contains(&hash_key))
    }
}

/// Everything counted during a run.
#[derive(Debug)]
pub struct Counters {
    pub shards: Shards,
    pub per_shard: Vec<ShardCounters>,
    /// User records with a result, written or failed.
    pub completed: Counter,
    /// User data bytes of the records written.
    pub completed_bytes: Counter,
    /// User records failed.
    pub failed: Counter,
    /// User records put and without a result yet.
    pub outstanding_records: Level,
    /// Their data, in bytes.
    pub outstanding_bytes: Level,
    /// `PutRecords` requests answered (or abandoned).
    pub requests: Counter,
    /// Kinesis records written.
    pub kinesis_records: Counter,
    /// Entries throttled.
    pub throttled: Counter,
    /// `PutRecords` requests in flight.
    pub in_flight: Level,
    /// How long every connection was busy (`MaxConnections` requests in flight).
    connections_saturated: Mutex<Saturation>,
    max_connections: u64,
}

#[derive(Debug, Default)]
struct Saturation {
    since: Option<Instant>,
    total: Duration,
}

impl Counters {
    /// Counters for `shards`, with a producer of `max_connections`.
    pub fn new(shards: Shards, max_connections: u64) -> Self {
        let per_shard = shards.ids.iter().map(|_| ShardCounters::default()).collect();
        Self {
            shards,
            per_shard,
            completed: Counter::default(),
            completed_bytes: Counter::default(),
            failed: Counter::default(),
            outstanding_records: Level::default(),
            outstanding_bytes: Level::default(),
            requests: Counter::default(),
            kinesis_records: Counter::default(),
            throttled: Counter::default(),
            in_flight: Level::default(),
            connections_saturated: Mutex::new(Saturation::default()),
            max_connections,
        }
    }

    /// A record of `bytes` was put.
    pub fn put(&self, records: u64, bytes: u64) {
        self.outstanding_records.rise(records);
        self.outstanding_bytes.rise(bytes);
    }

    /// A record of `bytes` put got its result: written to `shard`, or failed (`None`).
    pub fn completed(&self, bytes: u64, shard: Option<&ShardId>) {
        self.outstanding_records.fall(1);
        self.outstanding_bytes.fall(bytes);
        self.completed.add(1);
        match shard {
            Some(shard) => {
                self.completed_bytes.add(bytes);
                if let Some(counters) = self.shards.index(shard).and_then(|i| self.per_shard.get(i)) {
                    counters.user_records.add(1);
                    counters.user_bytes.add(bytes);
                }
            }
            None => self.failed.add(1),
        }
    }

    /// How long all `MaxConnections` were busy, up to `now`.
    pub fn connections_saturated(&self, now: Instant) -> Duration {
        let saturation = self.connections_saturated.lock().unwrap_or_else(PoisonError::into_inner);
        saturation.total
            + saturation.since.map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    pub fn max_connections(&self) -> u64 {
        self.max_connections
    }

    fn request_started(&self) {
        if self.in_flight.rise(1) >= self.max_connections {
            let mut saturation = self.connections_saturated.lock().unwrap_or_else(PoisonError::into_inner);
            saturation.since.get_or_insert_with(Instant::now);
        }
    }

    fn request_ended(&self) {
        let mut saturation = self.connections_saturated.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(since) = saturation.since.take() {
            saturation.total += since.elapsed();
        }
        self.in_flight.fall(1);
        self.requests.add(1);
    }

    fn response(&self, sent: &[(Option<usize>, u64)], entries: &[PutRecordsResultEntry]) {
        for (entry, &(routed, bytes)) in entries.iter().zip(sent) {
            match entry {
                PutRecordsResultEntry::Success { shard_id, .. } => {
                    self.kinesis_records.add(1);
                    if let Some(counters) = self.shards.index(shard_id).and_then(|i| self.per_shard.get(i)) {
                        counters.kinesis_records.add(1);
                        counters.kinesis_bytes.add(bytes);
                    }
                }
                PutRecordsResultEntry::Failure { error_code, .. } if error_code == THROTTLED => {
                    self.throttled.add(1);
                    if let Some(counters) = routed.and_then(|i| self.per_shard.get(i)) {
                        counters.throttled.add(1);
                    }
                }
                PutRecordsResultEntry::Failure { .. } => {}
            }
        }
    }
}

/// A [`Backend`] that counts what goes through it into [`Counters`].
#[derive(Debug)]
pub struct Observed<B> {
    inner: B,
    counters: Arc<Counters>,
}

impl<B> Observed<B> {
    pub fn new(inner: B, counters: Arc<Counters>) -> Self {
        Self { inner, counters }
    }
}

/// Counts a request as ended when dropped: answered, or abandoned by the driver's timeout.
struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

#[async_trait]
impl<B: Backend> Backend for Observed<B> {
    async fn send(&self, request: Request) -> Response {
        let Request::PutRecords(put) = &request else { return self.inner.send(request).await };
        let counters = &self.counters;
        let sent: Vec<(Option<usize>, u64)> = put
            .entries
            .iter()
            .map(|entry| {
                (counters.shards.route(entry), (entry.partition_key.len() + entry.data.len()) as u64)
            })
            .collect();
        counters.request_started();
        let _in_flight = InFlight(counters);
        let response = self.inner.send(request).await;
        if let Response::PutRecords(Ok(entries)) = &response {
            counters.response(&sent, entries);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn entry(hash_key: u128, bytes: usize) -> PutRecordsEntry {
        PutRecordsEntry {
            partition_key: "k".to_owned(),
            explicit_hash_key: Some(hash_key.to_string()),
            data: Bytes::from(vec![0; bytes - 1]),
        }
    }

    #[test]
    fn entries_are_counted_on_their_shards() {
        let shards =
            Shards::new(vec![(ShardId::from("shard-0"), 0, 99), (ShardId::from("shard-1"), 100, u128::MAX)]);
        let counters = Counters::new(shards, 2);
        let sent: Vec<_> = [entry(5, 10), entry(500, 20), entry(7, 30)]
            .iter()
            .map(|e| (counters.shards.route(e), (e.partition_key.len() + e.data.len()) as u64))
            .collect();
        assert_eq!(sent, [(Some(0), 10), (Some(1), 20), (Some(0), 30)]);
        let written = |shard: &str| PutRecordsResultEntry::Success {
            shard_id: ShardId::from(shard),
            sequence_number: "1".to_owned(),
        };
        let throttled = PutRecordsResultEntry::Failure {
            error_code: THROTTLED.to_owned(),
            error_message: "slow down".to_owned(),
        };
        counters.response(&sent, &[written("shard-0"), written("shard-1"), throttled]);
        let shard0 = &counters.per_shard[0];
        assert_eq!(
            (shard0.kinesis_records.get(), shard0.kinesis_bytes.get(), shard0.throttled.get()),
            (1, 10, 1)
        );
        let shard1 = &counters.per_shard[1];
        assert_eq!(
            (shard1.kinesis_records.get(), shard1.kinesis_bytes.get(), shard1.throttled.get()),
            (1, 20, 0)
        );
        assert_eq!((counters.kinesis_records.get(), counters.throttled.get()), (2, 1));
    }

    #[test]
    fn outstanding_records_keep_their_peak() {
        let counters = Counters::new(Shards::new(vec![(ShardId::from("s"), 0, u128::MAX)]), 1);
        counters.put(1, 10);
        counters.put(1, 20);
        counters.completed(10, Some(&ShardId::from("s")));
        counters.put(1, 5);
        counters.completed(20, None);
        assert_eq!((counters.outstanding_records.get(), counters.outstanding_records.peak()), (1, 2));
        assert_eq!((counters.outstanding_bytes.get(), counters.outstanding_bytes.peak()), (5, 30));
        assert_eq!(
            (counters.completed.get(), counters.failed.get(), counters.completed_bytes.get()),
            (2, 1, 10)
        );
        assert_eq!(
            (counters.per_shard[0].user_records.get(), counters.per_shard[0].user_bytes.get()),
            (1, 10)
        );
    }
}
