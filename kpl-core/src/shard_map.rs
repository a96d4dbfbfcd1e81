//! Shard prediction: which open shard a 128-bit hash key belongs to.

use crate::ids::ShardSlot;
use crate::request::ShardDescription;

/// The open shards of a stream, sorted by ending hash key, each with the producer's slot for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardMap {
    /// `(ending_hash_key, slot)`, ascending.
    ends: Vec<(u128, ShardSlot)>,
}

impl ShardMap {
    /// Builds the map from open shards and their slots. Closed shards must already be filtered out.
    pub(crate) fn new(mut ends: Vec<(u128, ShardSlot)>) -> Self {
        ends.sort_unstable();
        Self { ends }
    }

    /// The slots of the open shards.
    pub(crate) fn slots(&self) -> impl Iterator<Item = ShardSlot> + '_ {
        self.ends.iter().map(|&(_, slot)| slot)
    }

    /// The slot of the shard whose range holds `hash_key`: the first shard ending at or after it. `None` only
    /// when the map is empty or does not reach `hash_key` (an incomplete listing).
    pub(crate) fn predict(&self, hash_key: u128) -> Option<ShardSlot> {
        let index = self.ends.partition_point(|&(end, _)| end < hash_key);
        self.ends.get(index).map(|&(_, slot)| slot)
    }
}

/// Whether the open shards of a listing cover the whole hash-key space with no gap or overlap. A listing
/// taken in the middle of a reshard may not; the producer then predicts nothing it cannot be sure of.
pub(crate) fn covers_key_space(open: &[&ShardDescription]) -> bool {
    let mut ranges: Vec<(u128, u128)> =
        open.iter().map(|shard| (shard.starting_hash_key, shard.ending_hash_key)).collect();
    ranges.sort_unstable();
    let mut next = Some(0u128);
    for (start, end) in ranges {
        if Some(start) != next || end < start {
            return false;
        }
        next = end.checked_add(1);
    }
    next.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ShardId;

    fn shard(start: u128, end: u128) -> ShardDescription {
        ShardDescription {
            shard_id: ShardId::from("s"),
            starting_hash_key: start,
            ending_hash_key: end,
            is_open: true,
        }
    }

    #[test]
    fn lookup_at_range_boundaries() {
        let third = u128::MAX / 3;
        let slot = ShardSlot;
        let map = ShardMap::new(vec![(u128::MAX, slot(2)), (third, slot(0)), (2 * third, slot(1))]);
        assert_eq!(map.predict(0), Some(slot(0)));
        assert_eq!(map.predict(third), Some(slot(0)));
        assert_eq!(map.predict(third + 1), Some(slot(1)));
        assert_eq!(map.predict(2 * third), Some(slot(1)));
        assert_eq!(map.predict(2 * third + 1), Some(slot(2)));
        assert_eq!(map.predict(u128::MAX), Some(slot(2)));
        assert_eq!(ShardMap::default().predict(5), None);
        assert_eq!(ShardMap::new(vec![(10, slot(0))]).predict(11), None);
    }

    #[test]
    fn coverage_detects_gaps_and_overlaps() {
        let whole = [shard(0, 99), shard(100, u128::MAX)];
        assert!(covers_key_space(&whole.iter().collect::<Vec<_>>()));
        let gap = [shard(0, 98), shard(100, u128::MAX)];
        assert!(!covers_key_space(&gap.iter().collect::<Vec<_>>()));
        let overlap = [shard(0, 100), shard(100, u128::MAX)];
        assert!(!covers_key_space(&overlap.iter().collect::<Vec<_>>()));
        let short = [shard(0, 100)];
        assert!(!covers_key_space(&short.iter().collect::<Vec<_>>()));
        assert!(!covers_key_space(&[]));
    }
}
