//! Which outstanding record is the oldest, in O(1) per put and per completion.

use std::time::Instant;

use crate::id_queue::IdQueue;
use crate::ids::RecordId;

/// Record ids are handed out in order and `now` never goes backwards, so the records form a queue by put
/// time: the front of an [`IdQueue`] of put times is the oldest.
#[derive(Debug, Default)]
pub(crate) struct OldestTracker {
    put_times: IdQueue<Instant>,
}

impl OldestTracker {
    pub(crate) fn push(&mut self, id: RecordId, put_at: Instant) {
        // Ids increase: a refused put takes no id.
        let inserted = self.put_times.insert(id.0, put_at);
        debug_assert!(inserted.is_ok(), "record ids must increase");
    }

    pub(crate) fn complete(&mut self, id: RecordId) {
        self.put_times.remove(id.0);
    }

    pub(crate) fn len(&self) -> usize {
        self.put_times.len()
    }

    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.put_times.front().map(|(_, put_at)| *put_at)
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
