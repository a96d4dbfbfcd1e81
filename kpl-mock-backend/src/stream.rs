//! Streams and shards: the hash-key layout, resharding, routing, sequence numbers and the committed log.

use std::ops::RangeInclusive;
use std::time::Instant;

use bytes::Bytes;
use kpl_core::{RequestId, ShardDescription, ShardId};
use kpl_deagg::{Batch, Deaggregator, Mode, ReceivedRecord};

use crate::MockError;
use crate::config::ShardLimits;
use crate::limits::ShardLimiter;

/// One record as the service stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRecord {
    /// The shard that took it.
    pub shard_id: ShardId,
    /// Its sequence number: 56 decimal digits, increasing along the shard.
    pub sequence_number: String,
    /// The partition key, as sent.
    pub partition_key: String,
    /// The explicit hash key, as sent.
    pub explicit_hash_key: Option<String>,
    /// The hash key that routed it: the explicit hash key, else the MD5 of the partition key.
    pub hash_key: u128,
    /// The data, as sent.
    pub data: Bytes,
    /// When the service took it (the `now` of the request).
    pub arrival: Instant,
    /// The request that carried it.
    pub request_id: RequestId,
    /// Whether the response to that request was lost (an injected fault): the producer was told `Timeout`
    /// and may have written the record again.
    pub response_lost: bool,
}

impl CommittedRecord {
    /// The record as `GetRecords` returns it, which does not include the explicit hash key.
    pub fn to_received(&self) -> ReceivedRecord {
        ReceivedRecord {
            data: self.data.clone(),
            partition_key: self.partition_key.clone(),
            explicit_hash_key: None,
            sequence_number: self.sequence_number.clone(),
        }
    }
}

/// One shard of a stream: its place in the hash-key space, its lineage and its committed records.
#[derive(Debug, Clone)]
pub struct Shard {
    id: ShardId,
    starting_hash_key: u128,
    ending_hash_key: u128,
    parent_shard_id: Option<ShardId>,
    adjacent_parent_shard_id: Option<ShardId>,
    closed_at: Option<Instant>,
    records: Vec<CommittedRecord>,
    limiter: Option<ShardLimiter>,
}

impl Shard {
    /// `ShardId`, e.g. `shardId-000000000003`.
    pub fn id(&self) -> &ShardId {
        &self.id
    }

    /// `HashKeyRange`, inclusive at both ends.
    pub fn hash_range(&self) -> RangeInclusive<u128> {
        self.starting_hash_key..=self.ending_hash_key
    }

    /// Whether records are still routed here (false once a split or merge closed it).
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// When a split or merge closed it.
    pub fn closed_at(&self) -> Option<Instant> {
        self.closed_at
    }

    /// `ParentShardId`: the shard split, or the first of the two merged.
    pub fn parent_shard_id(&self) -> Option<&ShardId> {
        self.parent_shard_id.as_ref()
    }

    /// `AdjacentParentShardId`: the second of the two merged.
    pub fn adjacent_parent_shard_id(&self) -> Option<&ShardId> {
        self.adjacent_parent_shard_id.as_ref()
    }

    /// Every record committed here, in sequence-number order.
    pub fn committed(&self) -> &[CommittedRecord] {
        &self.records
    }

    /// The committed records as `GetRecords` returns them (from `TRIM_HORIZON`, no explicit hash keys).
    pub fn received_records(&self) -> impl Iterator<Item = ReceivedRecord> + '_ {
        self.records.iter().map(CommittedRecord::to_received)
    }

    /// The user records a KCL consumer of this shard would see: deaggregated, with the KCL's filter that
    /// drops an aggregate holding a user record outside the shard's hash range.
    pub fn deaggregate(&self, mode: Mode) -> Batch {
        Deaggregator::new(mode).with_hash_range(self.hash_range()).deaggregate_all(self.received_records())
    }

    /// The shard as `ListShards` describes it.
    pub fn description(&self) -> ShardDescription {
        ShardDescription {
            shard_id: self.id.clone(),
            starting_hash_key: self.starting_hash_key,
            ending_hash_key: self.ending_hash_key,
            is_open: self.is_open(),
        }
    }
}

/// The hash-key ranges of a new stream of `count` shards, as Kinesis (and kinesalite) lays them out: with
/// `w = floor(2^128 / count)`, shard `i` covers `[w·i, w·(i+1) − 1]`, and the last one ends at 2^128 − 1.
pub(crate) fn initial_ranges(count: u32) -> Vec<(u128, u128)> {
    let count = u128::from(count);
    // floor(2^128 / count) without 2^128: 2^128 = q·count + r + 1 with q, r from u128::MAX. It only fits for
    // count ≥ 2; with one shard there is no boundary to compute.
    let width = (count >= 2).then(|| {
        let (q, r) = (u128::MAX / count, u128::MAX % count);
        if r + 1 == count { q + 1 } else { q }
    });
    match width {
        None => vec![(0, u128::MAX)],
        Some(width) => (0..count)
            .map(|i| (width * i, if i + 1 == count { u128::MAX } else { width * (i + 1) - 1 }))
            .collect(),
    }
}

fn shard_id(index: usize) -> ShardId {
    ShardId::from(format!("shardId-{index:012}"))
}

/// One stream.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    name: String,
    /// Every shard ever, in creation order: a shard's index is its number.
    shards: Vec<Shard>,
    /// The open shards as `(ending hash key, index)`, sorted: they tile the hash-key space, so the first
    /// whose end is at or above a hash key holds it (the KPL's `lower_bound` lookup).
    open: Vec<(u128, usize)>,
    /// Records committed to the stream so far, the counter inside sequence numbers.
    committed: u64,
    limits: Option<ShardLimits>,
}

impl Stream {
    pub(crate) fn new(name: &str, shard_count: u32, limits: Option<ShardLimits>) -> Self {
        let mut stream =
            Self { name: name.to_owned(), shards: Vec::new(), open: Vec::new(), committed: 0, limits };
        for (start, end) in initial_ranges(shard_count) {
            stream.add_shard(start, end, None, None);
        }
        stream.rebuild_open();
        stream
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Appends an open shard with the next number; call [`Self::rebuild_open`] after.
    fn add_shard(
        &mut self,
        start: u128,
        end: u128,
        parent: Option<ShardId>,
        adjacent: Option<ShardId>,
    ) -> ShardId {
        let id = shard_id(self.shards.len());
        self.shards.push(Shard {
            id: id.clone(),
            starting_hash_key: start,
            ending_hash_key: end,
            parent_shard_id: parent,
            adjacent_parent_shard_id: adjacent,
            closed_at: None,
            records: Vec::new(),
            limiter: self.limits.map(ShardLimiter::new),
        });
        id
    }

    /// Call after opening or closing shards.
    fn rebuild_open(&mut self) {
        self.open = self
            .shards
            .iter()
            .enumerate()
            .filter(|(_, shard)| shard.is_open())
            .map(|(index, shard)| (shard.ending_hash_key, index))
            .collect();
        self.open.sort_unstable();
    }

    /// The index of the open shard holding `hash_key`.
    pub(crate) fn route(&self, hash_key: u128) -> usize {
        // The open shards tile 0..=u128::MAX, so some end is at or above any key: the position is in bounds.
        self.open[self.open.partition_point(|&(end, _)| end < hash_key)].1
    }

    /// Takes `bytes` from the write limits of shard `index`; false if they refuse.
    pub(crate) fn try_take(&mut self, index: usize, now: Instant, bytes: usize) -> bool {
        self.shards[index].limiter.as_mut().is_none_or(|limiter| limiter.try_take(now, bytes))
    }

    /// Appends a record to shard `index`; returns its shard id and sequence number.
    pub(crate) fn commit(&mut self, index: usize, retain: bool, record: Commit) -> (ShardId, String) {
        self.committed += 1;
        let shard = &mut self.shards[index];
        // 56 digits like real ones: "49", the shard number, then the stream's commit counter.
        let sequence_number = format!("49{index:012}{:042}", self.committed);
        if !retain {
            return (shard.id.clone(), sequence_number);
        }
        shard.records.push(CommittedRecord {
            shard_id: shard.id.clone(),
            sequence_number: sequence_number.clone(),
            partition_key: record.partition_key,
            explicit_hash_key: record.explicit_hash_key,
            hash_key: record.hash_key,
            data: record.data,
            arrival: record.arrival,
            request_id: record.request_id,
            response_lost: record.response_lost,
        });
        (shard.id.clone(), sequence_number)
    }

    fn open_shard(&self, shard_id: &str) -> Result<usize, MockError> {
        let index = self.shards.iter().position(|shard| shard.id.as_str() == shard_id).ok_or_else(|| {
            MockError::ShardNotFound { stream: self.name.clone(), shard: shard_id.to_owned() }
        })?;
        if self.shards[index].is_open() {
            Ok(index)
        } else {
            Err(MockError::ShardClosed { stream: self.name.clone(), shard: shard_id.to_owned() })
        }
    }

    /// `SplitShard`: closes the shard and opens two children, the lower half first.
    pub(crate) fn split(
        &mut self,
        now: Instant,
        shard_id: &str,
        new_starting_hash_key: u128,
    ) -> Result<[ShardId; 2], MockError> {
        let index = self.open_shard(shard_id)?;
        let (start, end, parent) = {
            let shard = &self.shards[index];
            (shard.starting_hash_key, shard.ending_hash_key, shard.id.clone())
        };
        // As the service: "not both greater than one plus the shard's StartingHashKey and less than the
        // shard's EndingHashKey" is refused.
        if new_starting_hash_key <= start.saturating_add(1) || new_starting_hash_key >= end {
            return Err(MockError::InvalidSplitKey {
                stream: self.name.clone(),
                shard: shard_id.to_owned(),
                key: new_starting_hash_key,
                start,
                end,
            });
        }
        self.shards[index].closed_at = Some(now);
        let lower = self.add_shard(start, new_starting_hash_key - 1, Some(parent.clone()), None);
        let upper = self.add_shard(new_starting_hash_key, end, Some(parent), None);
        self.rebuild_open();
        Ok([lower, upper])
    }

    /// `MergeShards`: closes two adjacent shards (in either order) and opens one child covering both.
    pub(crate) fn merge(
        &mut self,
        now: Instant,
        shard_id: &str,
        adjacent_shard_id: &str,
    ) -> Result<ShardId, MockError> {
        let first = self.open_shard(shard_id)?;
        let second = self.open_shard(adjacent_shard_id)?;
        let (a, b) = (&self.shards[first], &self.shards[second]);
        let (low, high) = if a.starting_hash_key <= b.starting_hash_key { (a, b) } else { (b, a) };
        if first == second || low.ending_hash_key.checked_add(1) != Some(high.starting_hash_key) {
            return Err(MockError::NotAdjacent {
                stream: self.name.clone(),
                shard: shard_id.to_owned(),
                adjacent: adjacent_shard_id.to_owned(),
            });
        }
        let (start, end) = (low.starting_hash_key, high.ending_hash_key);
        let (parent, adjacent) = (a.id.clone(), b.id.clone());
        self.shards[first].closed_at = Some(now);
        self.shards[second].closed_at = Some(now);
        let child = self.add_shard(start, end, Some(parent), Some(adjacent));
        self.rebuild_open();
        Ok(child)
    }
}

/// What [`Stream::commit`] stores besides the shard and sequence number.
pub(crate) struct Commit {
    pub(crate) partition_key: String,
    pub(crate) explicit_hash_key: Option<String>,
    pub(crate) hash_key: u128,
    pub(crate) data: Bytes,
    pub(crate) arrival: Instant,
    pub(crate) request_id: RequestId,
    pub(crate) response_lost: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `w = floor(2^128 / count)` exactly: `w·count ≤ 2^128 < (w+1)·count`, in wrapping u128 arithmetic
    /// (a product of exactly 2^128 wraps to 0; anything between 2^128 and 2^129 wraps to a non-zero value).
    fn is_floor_of_pow128_over(width: u128, count: u128) -> bool {
        let at_most = width.checked_mul(count).is_some() || width.wrapping_mul(count) == 0;
        let above = (width + 1).checked_mul(count).is_none() && (width + 1).wrapping_mul(count) != 0;
        at_most && above
    }

    #[test]
    fn ranges_tile_the_key_space_by_the_kinesis_formula() {
        let expected_width = [
            (2, 170_141_183_460_469_231_731_687_303_715_884_105_728u128),
            (3, 113_427_455_640_312_821_154_458_202_477_256_070_485),
            (4, 85_070_591_730_234_615_865_843_651_857_942_052_864),
            (16, 21_267_647_932_558_653_966_460_912_964_485_513_216),
        ];
        assert_eq!(initial_ranges(1), vec![(0, u128::MAX)]);
        for count in [2u32, 3, 4, 5, 7, 16, 100, 1000, 65_536] {
            let ranges = initial_ranges(count);
            assert_eq!(ranges.len(), count as usize);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges[ranges.len() - 1].1, u128::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0, "{count} shards: contiguous");
            }
            let width = ranges[1].0;
            assert!(is_floor_of_pow128_over(width, u128::from(count)), "{count} shards: width {width}");
            if let Some(&(_, expected)) = expected_width.iter().find(|(n, _)| *n == count) {
                assert_eq!(width, expected);
            }
            for (i, &(start, end)) in ranges.iter().enumerate() {
                assert_eq!(start, width * i as u128);
                if i + 1 < ranges.len() {
                    assert_eq!(end, width * (i as u128 + 1) - 1);
                }
            }
        }
    }
}
