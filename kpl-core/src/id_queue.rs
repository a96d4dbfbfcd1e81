//! Values keyed by ids handed out in increasing order, completed in any order.

use std::collections::VecDeque;

/// A map from `u64` ids to values, for ids handed out in increasing order (a producer's record ids) and
/// removed in any order (as records complete). Insertion and removal are O(1) amortized, and the oldest
/// value is at the front: entries are a queue from the oldest id still held, removed ones leave holes that
/// are skipped once they reach the front. Memory follows the span from the oldest held id to the newest,
/// not the number held.
///
/// Used by the producer for the put times of outstanding records (the oldest record's age) and by
/// adapters for what they keep per outstanding record (the reply to send when it completes).
#[derive(Debug, Clone)]
pub struct IdQueue<T> {
    /// Id of the front entry.
    first: u64,
    /// Every id from `first` on; `None` once removed (or never inserted: a skipped id).
    entries: VecDeque<Option<T>>,
    len: usize,
}

impl<T> Default for IdQueue<T> {
    fn default() -> Self {
        Self { first: 0, entries: VecDeque::new(), len: 0 }
    }
}

impl<T> IdQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `value` under `id`, which must be at least [`end`](Self::end) (ids skipped in between hold
    /// nothing). An id below that is refused: the value comes back.
    pub fn insert(&mut self, id: u64, value: T) -> Result<(), T> {
        if self.entries.is_empty() {
            // Nothing held: the queue restarts at `id`, whatever came before.
            self.first = self.first.max(id);
        }
        let Some(gap) = id.checked_sub(self.end()) else { return Err(value) };
        let Ok(gap) = usize::try_from(gap) else { return Err(value) };
        self.entries.extend(std::iter::repeat_with(|| None).take(gap));
        self.entries.push_back(Some(value));
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the value of `id`; `None` if it holds none (removed already, or never inserted).
    pub fn remove(&mut self, id: u64) -> Option<T> {
        let index = usize::try_from(id.checked_sub(self.first)?).ok()?;
        let value = self.entries.get_mut(index)?.take()?;
        self.len -= 1;
        while let Some(None) = self.entries.front() {
            self.entries.pop_front();
            self.first += 1;
        }
        Some(value)
    }

    /// The value of `id`, if held.
    pub fn get(&self, id: u64) -> Option<&T> {
        let index = usize::try_from(id.checked_sub(self.first)?).ok()?;
        self.entries.get(index)?.as_ref()
    }

    /// The oldest id held, and its value.
    pub fn front(&self) -> Option<(u64, &T)> {
        self.entries.front()?.as_ref().map(|value| (self.first, value))
    }

    /// The id after the newest ever inserted: the lowest id [`insert`](Self::insert) accepts.
    pub fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every value, oldest first, with its id.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, T)> + '_ {
        let first = self.first;
        self.first = self.end();
        self.len = 0;
        self.entries.drain(..).zip(first..).filter_map(|(value, id)| Some((id, value?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_out_by_id_in_any_order_and_the_front_skips_holes() {
        let mut queue = IdQueue::new();
        for id in 0..4 {
            assert_eq!(queue.insert(id, id * 10), Ok(()));
        }
        assert_eq!(queue.remove(1), Some(10));
        assert_eq!(queue.front(), Some((0, &0)));
        assert_eq!(queue.remove(0), Some(0));
        assert_eq!(queue.front(), Some((2, &20)));
        assert_eq!(queue.remove(0), None);
        assert_eq!(queue.remove(1), None);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.get(3), Some(&30));
        // Below the end: refused. Skipping ids leaves holes that hold nothing.
        assert_eq!(queue.insert(3, 99), Err(99));
        assert_eq!(queue.insert(6, 60), Ok(()));
        assert_eq!(queue.get(5), None);
        assert_eq!(queue.end(), 7);
        assert_eq!(queue.drain().collect::<Vec<_>>(), vec![(2, 20), (3, 30), (6, 60)]);
        assert!(queue.is_empty());
        assert_eq!(queue.front(), None);
        assert_eq!(queue.insert(6, 0), Err(0));
        assert_eq!(queue.insert(7, 70), Ok(()));
        assert_eq!(queue.remove(7), Some(70));
        assert_eq!((queue.len(), queue.end()), (0, 8));
    }

    #[test]
    fn an_empty_queue_restarts_at_the_next_id_without_holes() {
        let mut queue = IdQueue::new();
        assert_eq!(queue.insert(1_000_000, "a"), Ok(()));
        assert_eq!(queue.front(), Some((1_000_000, &"a")));
        assert_eq!(queue.remove(1_000_000), Some("a"));
        assert_eq!(queue.insert(2_000_000, "b"), Ok(()));
        // No million holes: the queue holds one entry.
        assert_eq!(queue.entries.len(), 1);
    }
}
