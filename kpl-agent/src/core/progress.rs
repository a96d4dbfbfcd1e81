//! Checkpoint arithmetic: the offset below which every record of a file has been confirmed written.
//!
//! The Kinesis Agent's `Checkpointer` keeps "the highest buffer id committed": a later buffer that succeeds
//! first moves the checkpoint past an earlier one still being retried, and a crash then loses the earlier
//! one. Here each record is a byte range `[start, end)` of its file; ranges are issued in file order and
//! confirmed in any order, and the checkpoint is the low-water mark: the start of the oldest unconfirmed
//! range, or the end of the last issued one when none is outstanding. It never passes a byte that is not
//! confirmed.
//!
//! Ranges confirmed above the checkpoint ([`Progress::completed_above`]) are saved with it, so that after
//! a crash a record read again that lies wholly inside one of them is not sent again
//! ([`Progress::completed_before`]): only what was really in flight is re-sent.

use std::collections::BTreeMap;

/// Issued and confirmed byte ranges of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// End of the last range issued (where the next one starts).
    next: u64,
    /// Unconfirmed ranges: start → end.
    outstanding: BTreeMap<u64, u64>,
    /// Ranges confirmed in an earlier run (from a saved checkpoint), sorted and disjoint, that end above
    /// `next`: not read again yet.
    restored: Vec<(u64, u64)>,
}

/// A range issued out of order: not contiguous with the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("range {start}..{end} does not continue at {expected}")]
pub struct NotContiguous {
    /// The range's start.
    pub start: u64,
    /// The range's end.
    pub end: u64,
    /// Where it had to start.
    pub expected: u64,
}

impl Progress {
    /// Progress of a file read from `offset` on (its checkpoint, or 0).
    pub fn starting_at(offset: u64) -> Progress {
        Progress::resuming(offset, &[])
    }

    /// Progress of a file resumed at its checkpoint `offset`, with the ranges above it that an earlier
    /// run saved as confirmed ([`completed_above`](Self::completed_above)); ranges below `offset`,
    /// empty or overlapping ones are ignored.
    pub fn resuming(offset: u64, completed: &[(u64, u64)]) -> Progress {
        let mut ranges: Vec<(u64, u64)> =
            completed.iter().copied().filter(|&(start, end)| start >= offset && end > start).collect();
        ranges.sort_unstable();
        let mut restored: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            if restored.last().is_none_or(|last| last.1 <= start) {
                restored.push((start, end));
            }
        }
        Progress { next: offset, outstanding: BTreeMap::new(), restored }
    }

    /// Whether the record `[start, end)` lies wholly inside a range an earlier run confirmed: its bytes
    /// were written (or needed no delivery) then, so it is [`skip`](Self::skip)ped instead of sent again.
    pub fn completed_before(&self, start: u64, end: u64) -> bool {
        let after = self.restored.partition_point(|range| range.0 <= start);
        after > 0 && self.restored[after - 1].1 >= end
    }

    /// The ranges above the checkpoint that are confirmed (or skipped), sorted: at most `max`, the
    /// longest. What a checkpoint saves besides its offset; any subset of them is safe to save.
    pub fn completed_above(&self, max: usize) -> Vec<(u64, u64)> {
        let mut ranges = Vec::new();
        let mut cursor = self.low_water();
        for (&start, &end) in &self.outstanding {
            if start > cursor {
                ranges.push((cursor, start));
            }
            cursor = end;
        }
        if self.next > cursor {
            ranges.push((cursor, self.next));
        }
        for &(start, end) in &self.restored {
            let start = start.max(self.next);
            match ranges.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => ranges.push((start, end)),
            }
        }
        if ranges.len() > max {
            ranges.sort_unstable_by_key(|&(start, end)| std::cmp::Reverse(end - start));
            ranges.truncate(max);
            ranges.sort_unstable();
        }
        ranges
    }

    /// A record's range, now being sent. Ranges must follow one another; an empty one is ignored.
    pub fn issue(&mut self, start: u64, end: u64) -> Result<(), NotContiguous> {
        self.advance(start, end)?;
        if end > start {
            self.outstanding.insert(start, end);
        }
        Ok(())
    }

    /// A range that needs no delivery (a skipped header, discarded oversize bytes, a record a processor
    /// dropped): confirmed at once.
    pub fn skip(&mut self, start: u64, end: u64) -> Result<(), NotContiguous> {
        self.advance(start, end)
    }

    fn advance(&mut self, start: u64, end: u64) -> Result<(), NotContiguous> {
        if start != self.next || end < start {
            return Err(NotContiguous { start, end, expected: self.next });
        }
        self.next = end;
        let passed = self.restored.partition_point(|range| range.1 <= end);
        self.restored.drain(..passed);
        Ok(())
    }

    /// The record starting at `start` was written. Returns whether it was outstanding (a second
    /// confirmation, or one for an unknown range, changes nothing).
    pub fn confirm(&mut self, start: u64) -> bool {
        self.outstanding.remove(&start).is_some()
    }

    /// The checkpoint: every byte below it belongs to a confirmed or skipped range.
    pub fn low_water(&self) -> u64 {
        self.outstanding.keys().next().copied().unwrap_or(self.next)
    }

    /// End of the last range issued.
    pub fn issued_end(&self) -> u64 {
        self.next
    }

    /// Records issued and not yet confirmed.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_later_record_confirmed_first_does_not_move_the_checkpoint_past_an_earlier_one() {
        let mut progress = Progress::starting_at(100);
        progress.issue(100, 110).unwrap();
        progress.issue(110, 125).unwrap();
        progress.skip(125, 130).unwrap();
        progress.issue(130, 140).unwrap();
        assert!(progress.confirm(110));
        assert!(progress.confirm(130));
        assert_eq!(progress.low_water(), 100, "the record at 100 is still being retried");
        assert!(progress.confirm(100));
        assert_eq!(progress.low_water(), 140);
        assert!(!progress.confirm(100));
    }

    #[test]
    fn gaps_and_overlaps_are_refused() {
        let mut progress = Progress::starting_at(0);
        progress.issue(0, 5).unwrap();
        assert_eq!(progress.issue(6, 8), Err(NotContiguous { start: 6, end: 8, expected: 5 }));
        assert!(progress.issue(4, 8).is_err());
        assert!(progress.skip(5, 4).is_err());
    }

    #[test]
    fn completed_ranges_above_the_checkpoint_are_saved_and_restored() {
        let mut progress = Progress::starting_at(0);
        for start in (0..100).step_by(10) {
            progress.issue(start, start + 10).unwrap();
        }
        for start in [0, 20, 30, 60, 90] {
            progress.confirm(start);
        }
        assert_eq!(progress.low_water(), 10);
        assert_eq!(progress.completed_above(8), vec![(20, 40), (60, 70), (90, 100)]);
        assert_eq!(progress.completed_above(2), vec![(20, 40), (60, 70)], "the longest");
        let resumed = Progress::resuming(10, &progress.completed_above(8));
        assert!(resumed.completed_before(20, 30) && resumed.completed_before(30, 40));
        assert!(resumed.completed_before(20, 40), "framed differently, still inside");
        assert!(!resumed.completed_before(35, 45), "partly outside: sent again");
        assert!(!resumed.completed_before(10, 20));
        assert_eq!(resumed.completed_above(8), vec![(20, 40), (60, 70), (90, 100)], "kept until read again");
        assert_eq!(Progress::resuming(50, &[(20, 40), (60, 70)]).completed_above(8), vec![(60, 70)]);
    }

    proptest! {
        /// Whatever the order of confirmations, the checkpoint is exactly the start of the first range not
        /// confirmed (so every byte below it was confirmed), and it only moves forward.
        #[test]
        fn the_checkpoint_is_the_first_unconfirmed_byte(
            lengths in prop::collection::vec((1u64..50, any::<bool>()), 1..40),
            order in prop::collection::vec(any::<prop::sample::Index>(), 0..60),
        ) {
            let mut progress = Progress::starting_at(7);
            let mut ranges = Vec::new();
            let mut at = 7;
            for (length, skipped) in &lengths {
                if *skipped {
                    progress.skip(at, at + length).unwrap();
                } else {
                    progress.issue(at, at + length).unwrap();
                    ranges.push((at, at + length));
                }
                at += length;
            }
            let mut confirmed = vec![false; ranges.len()];
            let mut last = progress.low_water();
            for index in order {
                if ranges.is_empty() { break; }
                let i = index.index(ranges.len());
                progress.confirm(ranges[i].0);
                confirmed[i] = true;
                let expected = ranges.iter().zip(&confirmed).find(|(_, c)| !**c).map_or(at, |(r, _)| r.0);
                prop_assert_eq!(progress.low_water(), expected);
                prop_assert!(progress.low_water() >= last);
                last = progress.low_water();
            }
        }
    }
}
