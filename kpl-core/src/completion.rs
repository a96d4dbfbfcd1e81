//! Completion: what is outstanding (records, bytes, the oldest one), admission against the limits, and what
//! waits on completions: flushes, `CapacityAvailable` after backpressure, `Drained` after `close`.

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::ProducerConfig;
use crate::event::Event;
use crate::ids::{FlushId, RecordId, StreamIx};
use crate::oldest::OldestTracker;
use crate::record::PutError;

/// A flush whose records have not all completed.
#[derive(Debug)]
struct PendingFlush {
    id: FlushId,
    /// The stream flushed, or `None` for all.
    stream: Option<StreamIx>,
    /// It covers the records with smaller ids (all accepted before it).
    before: RecordId,
    /// Covered records not completed yet.
    remaining: u64,
}

/// The outstanding records and what waits on them.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    next_record_id: u64,
    outstanding_bytes: usize,
    oldest: OldestTracker,
    /// Flushes waiting for their records, in the order they were asked for.
    flushes: Vec<PendingFlush>,
    next_flush_id: u64,
    /// A put was refused for backpressure: `CapacityAvailable` is owed.
    backpressured: bool,
    closed: bool,
    drained: bool,
}

impl Completion {
    pub(crate) fn outstanding_records(&self) -> usize {
        self.oldest.len()
    }

    pub(crate) fn outstanding_bytes(&self) -> usize {
        self.outstanding_bytes
    }

    pub(crate) fn oldest_put_at(&self) -> Option<Instant> {
        self.oldest.oldest()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closed with nothing left: no more work at all.
    pub(crate) fn is_drained(&self) -> bool {
        self.drained
    }

    /// Admits a record of `cost` bytes under the limits (see `ProducerConfig::admits`), or refuses it.
    pub(crate) fn admit(&mut self, config: &ProducerConfig, cost: usize) -> Result<(), PutError> {
        let outstanding_records = self.oldest.len();
        if config.admits(outstanding_records, self.outstanding_bytes, cost) {
            return Ok(());
        }
        Err(self.refuse())
    }

    /// Refuses a record for backpressure (here, or for its stream's drain-time limit): `CapacityAvailable`
    /// follows the next completion under the limits.
    pub(crate) fn refuse(&mut self) -> PutError {
        self.backpressured = true;
        PutError::Backpressure {
            outstanding_records: self.oldest.len(),
            outstanding_bytes: self.outstanding_bytes,
        }
    }

    /// Takes an admitted record: its id.
    pub(crate) fn accept(&mut self, now: Instant, cost: usize) -> RecordId {
        let id = RecordId(self.next_record_id);
        self.next_record_id += 1;
        self.outstanding_bytes += cost;
        self.oldest.push(id, now);
        id
    }

    /// A flush of stream `stream` (or all, `None`), with `outstanding` of its records not completed. Reports
    /// it complete at once if none is.
    pub(crate) fn flush(
        &mut self,
        stream: Option<StreamIx>,
        outstanding: u64,
        events: &mut VecDeque<Event>,
    ) -> FlushId {
        let id = FlushId(self.next_flush_id);
        self.next_flush_id += 1;
        if outstanding == 0 {
            events.push_back(Event::FlushCompleted(id));
        } else {
            let before = RecordId(self.next_record_id);
            self.flushes.push(PendingFlush { id, stream, before, remaining: outstanding });
        }
        id
    }

    /// Record `id` of stream `s`, of `cost` bytes, completed (its `RecordCompleted` is already queued): reports
    /// the flushes it completes, capacity regained, and the drain.
    pub(crate) fn complete(
        &mut self,
        config: &ProducerConfig,
        s: StreamIx,
        id: RecordId,
        cost: usize,
        events: &mut VecDeque<Event>,
    ) {
        self.outstanding_bytes -= cost;
        self.oldest.complete(id);
        if !self.flushes.is_empty() {
            self.flushes.retain_mut(|flush| {
                if id < flush.before && flush.stream.is_none_or(|stream| stream == s) {
                    flush.remaining -= 1;
                    if flush.remaining == 0 {
                        events.push_back(Event::FlushCompleted(flush.id));
                        return false;
                    }
                }
                true
            });
        }
        if self.backpressured
            && (self.oldest.len() as u64) < config.max_outstanding_records()
            && (self.outstanding_bytes as u64) < config.max_outstanding_bytes()
        {
            self.backpressured = false;
            events.push_back(Event::CapacityAvailable);
        }
        self.check_drained(events);
    }

    /// Refuses new records from now on; `Drained` follows once none is outstanding.
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Reports `Drained` once closed with nothing outstanding.
    pub(crate) fn check_drained(&mut self, events: &mut VecDeque<Event>) {
        if self.closed && !self.drained && self.oldest.len() == 0 {
            self.drained = true;
            events.push_back(Event::Drained);
        }
    }
}
