//! Which outstanding record is the oldest, in O(1) per put and per completion.

use std::collections::VecDeque;
use std::time::Instant;

use crate::ids::RecordId;

/// Record ids are handed out in order and `now` never goes backwards, so the records form a queue by put
/// time; completions in any order leave holes that are skipped when they reach the front.
#[derive(Debug, Default)]
pub(crate) struct OldestTracker {
    /// Put time of every record from `first` on, `None` once completed.
    entries: VecDeque<Option<Instant>>,
    first: u64,
    outstanding: usize,
}

impl OldestTracker {
    pub(crate) fn push(&mut self, id: RecordId, put_at: Instant) {
        if self.entries.is_empty() {
            self.first = id.0;
        }
        // Ids are consecutive; a refused put takes no id.
        debug_assert_eq!(id.0, self.first + self.entries.len() as u64);
        self.entries.push_back(Some(put_at));
        self.outstanding += 1;
    }

    pub(crate) fn complete(&mut self, id: RecordId) {
        let Some(index) = id.0.checked_sub(self.first) else { return };
        if let Some(entry) = self.entries.get_mut(index as usize)
            && entry.take().is_some()
        {
            self.outstanding -= 1;
        }
        while self.entries.front().is_some_and(Option::is_none) {
            self.entries.pop_front();
            self.first += 1;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.outstanding
    }

    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.entries.front().copied().flatten()
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
}
