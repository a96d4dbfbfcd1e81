//! The reference model: what the producer was asked to do, checked against what it does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kpl_core::{
    Event, FlushId, ProducerConfig, RecordError, RecordId, RecordOutcome, Request, RequestErrorKind,
    UserRecord,
};
use kpl_deagg::{Deaggregator, Mode, ReceivedRecord, parse_explicit_hash_key, partition_key_hash};

use super::workload::ordinal;

/// A user record as a consumer sees it: partition key and data.
type KeyAndData = (String, Vec<u8>);

use kpl_deagg::limits::{MAX_REQUEST_ENTRIES as MAX_ENTRIES, MAX_REQUEST_SIZE as MAX_REQUEST_BYTES};

/// A record the producer accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The record as put.
    pub record: UserRecord,
    /// Its hash key.
    pub hash_key: u128,
    /// When it was put.
    pub put_at: Instant,
}

/// What the model knows, and the checks it makes.
#[derive(Debug)]
pub struct Model {
    ttl: Duration,
    fail_if_throttled: bool,
    aggregation_max_size: usize,
    collection_max_count: usize,
    collection_max_size: usize,
    max_record_size: usize,
    /// Every record accepted, by id.
    pub accepted: BTreeMap<RecordId, Accepted>,
    /// Every completion, by id.
    pub outcomes: BTreeMap<RecordId, RecordOutcome>,
    /// When `Drained` was reported.
    pub drained_at: Option<Instant>,
    /// Flushes not reported complete yet, with the records accepted and not completed when they were asked.
    flushes: BTreeMap<FlushId, Vec<RecordId>>,
}

impl Model {
    /// A model of a producer with this configuration.
    pub fn new(config: &ProducerConfig) -> Self {
        Self {
            ttl: config.record_ttl(),
            fail_if_throttled: config.fail_if_throttled(),
            aggregation_max_size: config.aggregation_max_size() as usize,
            collection_max_count: config.collection_max_count() as usize,
            collection_max_size: config.collection_max_size() as usize,
            max_record_size: config.max_record_size() as usize,
            accepted: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            drained_at: None,
            flushes: BTreeMap::new(),
        }
    }

    /// The producer accepted `record` at `now`.
    pub fn on_put(&mut self, id: RecordId, record: &UserRecord, now: Instant) -> Result<(), String> {
        let hash_key = match &record.explicit_hash_key {
            Some(text) => parse_explicit_hash_key(text).map_err(|e| e.to_string())?,
            None => partition_key_hash(&record.partition_key),
        };
        let previous = self.accepted.insert(id, Accepted { record: record.clone(), hash_key, put_at: now });
        match previous {
            Some(_) => Err(format!("record id {id:?} handed out twice")),
            None => Ok(()),
        }
    }

    /// The producer was asked to flush every stream; it answered with `id`.
    pub fn on_flush(&mut self, id: FlushId) -> Result<(), String> {
        let outstanding =
            self.accepted.keys().filter(|record| !self.outcomes.contains_key(record)).copied().collect();
        match self.flushes.insert(id, outstanding) {
            Some(_) => Err(format!("flush id {id:?} handed out twice")),
            None => Ok(()),
        }
    }

    /// Checks a request the producer emitted: the wire limits, and that an aggregate's records all belong to
    /// one shard under one of the `layouts` the stream has had (each a list of open hash ranges).
    pub fn check_request(&self, request: &Request, layouts: &[Vec<(u128, u128)>]) -> Result<(), String> {
        let Request::PutRecords(put) = request else { return Ok(()) };
        if put.entries.is_empty() || put.entries.len() > MAX_ENTRIES.min(self.collection_max_count) {
            return Err(format!("PutRecords with {} entries", put.entries.len()));
        }
        let size: usize = put.entries.iter().map(|e| e.partition_key.len() + e.data.len()).sum();
        if size > MAX_REQUEST_BYTES.min(self.collection_max_size) && put.entries.len() > 1 {
            return Err(format!("PutRecords of {size} bytes"));
        }
        for entry in &put.entries {
            let length = kpl_deagg::limits::utf16_length(&entry.partition_key);
            if !(1..=kpl_deagg::limits::MAX_PARTITION_KEY_LENGTH).contains(&length) {
                return Err(format!("partition key of {length} UTF-16 units"));
            }
            if entry.partition_key.len() + entry.data.len() > self.max_record_size {
                return Err(format!("entry of {} bytes", entry.partition_key.len() + entry.data.len()));
            }
            let outer = match &entry.explicit_hash_key {
                Some(text) => {
                    parse_explicit_hash_key(text).map_err(|e| format!("bad explicit hash key: {e}"))?
                }
                None => partition_key_hash(&entry.partition_key),
            };
            if !entry.data.starts_with(&kpl_deagg::MAGIC) {
                continue;
            }
            // AggregationMaxSize bounds the whole Kinesis record, outer partition key included.
            if entry.partition_key.len() + entry.data.len() > self.aggregation_max_size {
                return Err(format!(
                    "aggregate of {} bytes with its key",
                    entry.partition_key.len() + entry.data.len()
                ));
            }
            let received = ReceivedRecord {
                data: entry.data.clone(),
                partition_key: entry.partition_key.clone(),
                explicit_hash_key: None,
                sequence_number: "0".into(),
            };
            let users: Vec<_> = Deaggregator::new(Mode::Strict)
                .deaggregate(received)
                .map_err(|e| format!("the producer wrote an invalid aggregate: {e}"))?
                .collect();
            if users.first().map(|u| u.hash_key) != Some(outer) {
                return Err("an aggregate's explicit hash key is not its first record's".into());
            }
            let one_shard = layouts.iter().any(|layout| {
                let shard_of =
                    |hash: u128| layout.iter().position(|&(start, end)| (start..=end).contains(&hash));
                let first = shard_of(outer);
                first.is_some() && users.iter().all(|u| shard_of(u.hash_key) == first)
            });
            if !one_shard {
                return Err("an aggregate mixes records of different shards".into());
            }
        }
        Ok(())
    }

    /// Checks an event the producer reported at `now`.
    pub fn on_event(&mut self, event: &Event, now: Instant) -> Result<(), String> {
        match event {
            Event::RecordCompleted(outcome) => {
                let Some(accepted) = self.accepted.get(&outcome.id) else {
                    return Err(format!("completion of unknown record {:?}", outcome.id));
                };
                if let Err(failure) = &outcome.result {
                    match &failure.error {
                        RecordError::Expired { .. } if now < accepted.put_at + self.ttl => {
                            return Err(format!(
                                "record {:?} expired after {:?}, before its TTL",
                                outcome.id,
                                now - accepted.put_at
                            ));
                        }
                        RecordError::Throttled { .. } if !self.fail_if_throttled => {
                            return Err("failed as throttled without fail_if_throttled".into());
                        }
                        RecordError::Rejected(error)
                            if !matches!(
                                error.kind,
                                RequestErrorKind::Fatal | RequestErrorKind::InvalidRequest
                            ) =>
                        {
                            return Err(format!("rejected without a fatal error: {error}"));
                        }
                        _ => {}
                    }
                }
                if self.outcomes.insert(outcome.id, outcome.clone()).is_some() {
                    return Err(format!("record {:?} completed twice", outcome.id));
                }
            }
            Event::FlushCompleted(id) => {
                let Some(covered) = self.flushes.remove(id) else {
                    return Err(format!("completion of unknown or completed flush {id:?}"));
                };
                if let Some(record) = covered.iter().find(|record| !self.outcomes.contains_key(record)) {
                    return Err(format!("flush {id:?} completed before record {record:?}"));
                }
            }
            Event::Drained => {
                if self.outcomes.len() != self.accepted.len() {
                    return Err("drained with records outstanding".into());
                }
                if let Some(id) = self.flushes.keys().next() {
                    return Err(format!("drained with flush {id:?} not reported complete"));
                }
                self.drained_at = Some(now);
            }
            _ => {}
        }
        Ok(())
    }

    /// The final check against what the stream holds: `shards` gives, per shard, its hash range and its
    /// records as a consumer reads them. Every success is there, at the shard and sequence number its result
    /// names, with its key and data; a record is visible (after the KCL's hash-range filter) more than once
    /// only if its result says it may be duplicated. Returns the number of duplicate copies seen.
    pub fn check_stream(
        &self,
        shards: &[(String, (u128, u128), Vec<ReceivedRecord>)],
    ) -> Result<usize, String> {
        let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
        // (shard id, sequence number) → the (partition key, data) of every user record in that Kinesis record.
        let mut located: BTreeMap<(String, String), Vec<KeyAndData>> = BTreeMap::new();
        for (shard_id, (start, end), records) in shards {
            for record in records {
                let sequence_number = record.sequence_number.clone();
                let batch = Deaggregator::new(Mode::KclCompatible)
                    .with_hash_range(*start..=*end)
                    .deaggregate_all([record.clone()]);
                let all =
                    Deaggregator::new(Mode::Strict).deaggregate(record.clone()).map_err(|e| e.to_string())?;
                located.insert(
                    (shard_id.clone(), sequence_number),
                    all.map(|u| (u.partition_key.to_string(), u.data.to_vec())).collect(),
                );
                for user in batch.records {
                    if let Some(ordinal) = ordinal(&user.data) {
                        *copies.entry(ordinal).or_default() += 1;
                    }
                }
            }
        }
        let mut duplicates = 0;
        for (id, outcome) in &self.outcomes {
            let accepted = &self.accepted[id];
            let data = accepted.record.data.to_vec();
            let ordinal = ordinal(&data).ok_or("record without an ordinal")?;
            let seen = copies.get(&ordinal).copied().unwrap_or(0);
            let maybe_duplicated = match &outcome.result {
                Ok(receipt) => receipt.maybe_duplicated,
                Err(failure) => failure.maybe_duplicated,
            };
            if seen > 1 {
                duplicates += seen - 1;
                if !maybe_duplicated {
                    return Err(format!("record {id:?} is in the stream {seen} times, not flagged"));
                }
            }
            if let Ok(receipt) = &outcome.result {
                let key = (receipt.shard_id.to_string(), receipt.sequence_number.to_string());
                let users = located
                    .get(&key)
                    .ok_or_else(|| format!("record {id:?}: {key:?} is not in the stream"))?;
                if !users.iter().any(|(k, d)| *k == accepted.record.partition_key && *d == data) {
                    return Err(format!("record {id:?}: {key:?} does not hold it"));
                }
                if seen == 0 {
                    return Err(format!("record {id:?} succeeded but a KCL consumer would not see it"));
                }
            }
        }
        Ok(duplicates)
    }
}
