//! Which outstanding record is the oldest, and how many there are, in O(1) per put and per completion and
//! about one bit per outstanding record when records are put in batches at one `now` (as kpl-tokio's driver
//! puts them); at worst, with a fresh `now` per put behind a stuck oldest record, one 24-byte put time per
//! record.

use std::collections::VecDeque;
use std::time::Instant;

use crate::ids::RecordId;

/// Ids per word of [`OldestTracker::outstanding`].
const WORD: u64 = u64::BITS as u64;

/// Record ids are handed out in increasing order and `now` never goes backwards, so the records form a queue
/// by put time, and put times change only between batches of puts: one flag bit per record says whether it
/// is outstanding, and one entry per distinct put instant says when the records from its first id on were
/// put. (A put time per record would cost 16 bytes each, and far more while the queue's capacity doubles.)
#[derive(Debug, Default)]
pub(crate) struct OldestTracker {
    /// Bit `i` of word `w` is set while record `first + 64 w + i` is outstanding. Leading words with no bit
    /// set, below every id put so far, are dropped.
    outstanding: VecDeque<u64>,
    /// The id of bit 0 of the first word: a multiple of 64.
    first: u64,
    /// The id after the last one put.
    end: u64,
    len: usize,
    /// `(first id put at, put time)`, increasing: the put time of an id is that of the last entry at or
    /// below it. Entries below the oldest outstanding record's are dropped.
    put_times: VecDeque<(u64, Instant)>,
}

impl OldestTracker {
    pub(crate) fn push(&mut self, id: RecordId, put_at: Instant) {
        let id = id.0;
        // Ids increase: a refused put takes no id.
        debug_assert!(id >= self.end, "record ids must increase");
        if id < self.end {
            return;
        }
        if self.len == 0 {
            // Nothing outstanding: start afresh at this id, with no run of empty words up to it.
            self.outstanding.clear();
            self.put_times.clear();
            self.first = id - id % WORD;
        }
        let word = usize::try_from((id - self.first) / WORD).unwrap_or(usize::MAX);
        while self.outstanding.len() <= word {
            self.outstanding.push_back(0);
        }
        self.outstanding[word] |= 1 << (id % WORD);
        self.end = id + 1;
        self.len += 1;
        if self.put_times.back().is_none_or(|&(_, at)| at != put_at) {
            self.put_times.push_back((id, put_at));
        }
    }

    /// Record `id` completed; an id not outstanding is ignored.
    pub(crate) fn complete(&mut self, id: RecordId) {
        let Some(offset) = id.0.checked_sub(self.first) else { return };
        let Ok(word) = usize::try_from(offset / WORD) else { return };
        let Some(bits) = self.outstanding.get_mut(word) else { return };
        let bit = 1 << (offset % WORD);
        if *bits & bit == 0 {
            return;
        }
        *bits &= !bit;
        self.len -= 1;
        // Drop leading empty words whose ids were all put (a later put may still set the last one's bits).
        while self.outstanding.front() == Some(&0) && self.first + WORD <= self.end {
            self.outstanding.pop_front();
            self.first += WORD;
        }
        if let Some(oldest) = self.oldest_id() {
            while self.put_times.get(1).is_some_and(|&(from, _)| from <= oldest) {
                self.put_times.pop_front();
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The id of the oldest outstanding record.
    fn oldest_id(&self) -> Option<u64> {
        let (word, bits) = self.outstanding.iter().enumerate().find(|&(_, &bits)| bits != 0)?;
        Some(self.first + word as u64 * WORD + u64::from(bits.trailing_zeros()))
    }

    pub(crate) fn oldest(&self) -> Option<Instant> {
        let oldest = self.oldest_id()?;
        let after = self.put_times.partition_point(|&(from, _)| from <= oldest);
        self.put_times.get(after.checked_sub(1)?).map(|&(_, at)| at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn oldest_skips_completed_records() {
        let t0 = crate::test_epoch();
        let mut tracker = OldestTracker::default();
        for i in 0..4 {
            tracker.push(RecordId(i), t0 + Duration::from_secs(i));
        }
        tracker.complete(RecordId(1));
        assert_eq!(tracker.oldest(), Some(t0));
        tracker.complete(RecordId(0));
        assert_eq!(tracker.oldest(), Some(t0 + Duration::from_secs(2)));
        tracker.complete(RecordId(0));
        assert_eq!(tracker.len(), 2);
        tracker.complete(RecordId(3));
        tracker.complete(RecordId(2));
        assert_eq!((tracker.len(), tracker.oldest()), (0, None));
        tracker.push(RecordId(4), t0);
        assert_eq!(tracker.oldest(), Some(t0));
    }

    #[test]
    fn records_put_together_share_a_put_time_and_words_go_once_completed() {
        let t0 = crate::test_epoch();
        let at = |second: u64| t0 + Duration::from_secs(second);
        let mut tracker = OldestTracker::default();
        // 200 records in two batches: ids 0..150 at second 1, 150..200 at second 2.
        for id in 0..200 {
            tracker.push(RecordId(id), at(if id < 150 { 1 } else { 2 }));
        }
        assert_eq!((tracker.len(), tracker.put_times.len(), tracker.outstanding.len()), (200, 2, 4));
        for id in (0..150).rev() {
            assert_eq!(tracker.oldest(), Some(at(1)));
            tracker.complete(RecordId(id));
        }
        assert_eq!((tracker.len(), tracker.oldest()), (50, Some(at(2))));
        // The first two words (ids 0..128) are gone, and so is the first put time.
        assert_eq!((tracker.first, tracker.outstanding.len(), tracker.put_times.len()), (128, 2, 1));
        // Ids not outstanding, below or above, change nothing.
        for id in [3, 149, 200, 10_000] {
            tracker.complete(RecordId(id));
        }
        assert_eq!(tracker.len(), 50);
        // The last word is kept while it has ids still to be put.
        for id in 150..200 {
            tracker.complete(RecordId(id));
        }
        assert_eq!((tracker.len(), tracker.oldest(), tracker.first), (0, None, 192));
        tracker.push(RecordId(200), at(3));
        assert_eq!((tracker.oldest(), tracker.first), (Some(at(3)), 192));
        // Nothing outstanding and a jump in ids: no run of empty words.
        tracker.complete(RecordId(200));
        tracker.push(RecordId(1_000_000), at(4));
        assert_eq!((tracker.outstanding.len(), tracker.oldest()), (1, Some(at(4))));
    }

    /// Checked against a model (a `BTreeMap` of put times), with out-of-order completions, id jumps (while
    /// records are outstanding and while none are), repeated and distinct put instants.
    #[test]
    fn the_tracker_matches_a_model_under_random_operations() {
        use std::collections::BTreeMap;
        let t0 = crate::test_epoch();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..200 {
            let mut tracker = OldestTracker::default();
            let mut model: BTreeMap<u64, Instant> = BTreeMap::new();
            let mut next = rand(1000);
            let mut now = t0;
            for _ in 0..2000 {
                match rand(10) {
                    0..=3 => {
                        if rand(4) == 0 {
                            now += Duration::from_millis(rand(3));
                        }
                        if rand(50) == 0 {
                            next += rand(500); // an id jump (not what Completion does, but push allows it)
                        }
                        tracker.push(RecordId(next), now);
                        model.insert(next, now);
                        next += 1;
                    }
                    4..=8 if !model.is_empty() => {
                        // a random outstanding one, biased both ways
                        let keys: Vec<u64> = model.keys().copied().collect();
                        let k = keys[rand(keys.len() as u64) as usize];
                        tracker.complete(RecordId(k));
                        model.remove(&k);
                    }
                    _ => {
                        // a spurious completion of an id not outstanding
                        let k = rand(next + 200);
                        if !model.contains_key(&k) {
                            tracker.complete(RecordId(k));
                        }
                    }
                }
                assert_eq!(tracker.len(), model.len(), "round {round}");
                assert_eq!(tracker.oldest(), model.values().next().copied(), "round {round}");
            }
            // words and put times stay bounded by what is outstanding
            if let Some(lo) = model.keys().next() {
                // from the oldest outstanding id's word to the last id put's word
                assert!(tracker.outstanding.len() as u64 <= (next - 1 - lo) / WORD + 2, "round {round}");
            }
        }
    }

    /// With a distinct put instant per record (the core driven with a fresh `now` per put) and the oldest
    /// record stuck, a put time is kept per put, 24 bytes each, until the oldest completes: the worst case,
    /// about what the former queue of one put time per record cost.
    #[test]
    fn a_put_time_is_kept_per_distinct_instant_behind_a_stuck_record() {
        let t0 = crate::test_epoch();
        let mut tracker = OldestTracker::default();
        tracker.push(RecordId(0), t0);
        for id in 1..10_001u64 {
            tracker.push(RecordId(id), t0 + Duration::from_nanos(id));
            tracker.complete(RecordId(id));
        }
        assert_eq!(tracker.len(), 1);
        assert_eq!(tracker.put_times.len(), 10_001);
        tracker.complete(RecordId(0));
        assert_eq!((tracker.len(), tracker.oldest()), (0, None));
    }
}
