//! The driver's reply table: for each record the core holds, where its result goes and the capacity it
//! gives back. Results for tagged puts are gathered per [`Sink`] and handed over once per round.

use std::sync::Arc;

use kpl_core::{IdQueue, RecordId};

use crate::error::DeliveryError;
use crate::shared::{GaugeSlot, RecordResult, Released, Reply, Sink};

/// Results of one round for one sink, each under its tag's key.
type SinkBatch = (Arc<dyn Sink>, Vec<(u64, RecordResult)>);

/// A record the core accepted and has not completed.
struct Outstanding {
    reply: Reply,
    /// Its size in the handles' gauge.
    size: usize,
    /// Its stream's slot in the gauge.
    gauge: GaugeSlot,
}

#[derive(Default)]
pub(crate) struct Replies {
    /// By the core's record id.
    outstanding: IdQueue<Outstanding>,
    /// Results of this round for each sink, delivered by [`deliver`](Self::deliver).
    batches: Vec<SinkBatch>,
    /// Records answered this round and their bytes: the capacity to give back to the handles.
    answered: Released,
}

impl Replies {
    /// Keeps where the result of the core's record `id` goes.
    pub(crate) fn insert(&mut self, id: RecordId, reply: Reply, size: usize, gauge: GaugeSlot) {
        let outstanding = Outstanding { reply, size, gauge };
        if let Err(Outstanding { reply, size, gauge }) = self.outstanding.insert(id.0, outstanding) {
            // The core hands out increasing ids; answer rather than lose the record if it ever did not.
            debug_assert!(false, "record id {id:?} out of order");
            self.answer(reply, size, gauge, Err(DeliveryError::DriverStopped));
        }
    }

    /// Record `id` completed; unknown ids are ignored.
    pub(crate) fn complete(&mut self, id: RecordId, result: RecordResult) {
        if let Some(Outstanding { reply, size, gauge }) = self.outstanding.remove(id.0) {
            self.answer(reply, size, gauge, result);
        }
    }

    /// Answers a record the core never took: its capacity is still counted.
    pub(crate) fn refuse(&mut self, reply: Reply, size: usize, gauge: GaugeSlot, error: DeliveryError) {
        self.answer(reply, size, gauge, Err(error));
    }

    /// Fails every outstanding record with `error`; returns how many.
    pub(crate) fn fail_all(&mut self, error: &DeliveryError) -> usize {
        let failed: Vec<Outstanding> = self.outstanding.drain().map(|(_, outstanding)| outstanding).collect();
        let count = failed.len();
        for Outstanding { reply, size, gauge } in failed {
            self.answer(reply, size, gauge, Err(error.clone()));
        }
        count
    }

    fn answer(&mut self, reply: Reply, size: usize, gauge: GaugeSlot, result: RecordResult) {
        self.answered.add(gauge, size);
        match reply {
            // A dropped future: nobody wants the result.
            Reply::Future(sender) => drop(sender.send(result)),
            Reply::Sink { sink, key } => {
                let batch = match self.batches.iter().position(|(known, _)| Arc::ptr_eq(known, &sink)) {
                    Some(index) => &mut self.batches[index].1,
                    None => {
                        self.batches.push((sink, Vec::new()));
                        let last = self.batches.len() - 1;
                        &mut self.batches[last].1
                    }
                };
                batch.push((key, result));
            }
        }
    }

    /// Hands this round's results to their sinks, one call per sink, and returns the capacity answered
    /// since the capacity was last given back (to give back with `Shared::release`, which empties it).
    pub(crate) fn deliver(&mut self) -> &mut Released {
        for (sink, mut results) in self.batches.drain(..) {
            sink.deliver(&mut results);
        }
        &mut self.answered
    }
}
